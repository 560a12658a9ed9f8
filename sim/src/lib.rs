//! # livecount-sim
//!
//! livecount at the scale of a big live event, on a simulated clock. Everything but the network
//! is livecount's own code: ingest's parsing, validation, coalescing and session writes, the
//! aggregator's reading of stream records, its counter plans and every request it builds. The
//! network and AWS are an in-process model ([`dynamodb`] for items, sizes and request units;
//! the simulation for per-key and per-table throughput, stream shards, Lambda concurrency and
//! duration), calibrated against DynamoDB Local by `tests/pipeline/calibration.rs`. The SQS and
//! stream triggers are `livecount_local::trigger`'s, the same state machines `livecount dev` and
//! the tests run, here on the simulated clock.
//!
//! `make bench-scale` runs the scenarios and writes the scale section of `BENCHMARKS.md` (the
//! model is described in `docs/benchmarks.md`). Its debug output is `tracing` events at `debug`
//! (each simulated second's queue, ingest slots and sessions table, and how long each thread
//! waited), shown by the bench binary with `LIVECOUNT_LOG=livecount_sim=debug`.

pub mod audience;
pub mod aws;
pub mod dynamodb;
pub mod engine;
pub mod expression;
pub mod hash;
pub mod oracle;
pub mod sizing;
