//! Integration tests: the real handlers, stream poller and read against DynamoDB Local.
//! Run with `make test`, which starts DynamoDB Local; every test makes its own tables.

mod at_scale;
mod aws_shapes;
mod bad_input;
mod badge_cdn;
mod calibration;
mod chaos;
mod contract;
mod device_clocks;
mod five_players;
mod ingest_rules;
mod public_edge;
mod stream_retries;
mod ttl;
mod unique_viewers;
mod unordered_sqs;
