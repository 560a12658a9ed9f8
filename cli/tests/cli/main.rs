//! End-to-end tests of the `livecount` binary: `dev` with its dashboard in headless Chromium,
//! `send` and `count`, and the errors a person can run into. They use the DynamoDB Local that
//! `make test` starts (`AWS_ENDPOINT_URL_DYNAMODB`), except where a test starts its own.

mod dashboard;
mod docs;
mod errors;
mod harness;
mod player;
mod send_and_count;
mod smoke;
