//! # livecount-core
//!
//! The domain of livecount, the exact "viewers watching right now" counter (see `docs/design.md`
//! and the README). Nothing here knows about Lambda; the handlers in `livecount-ingest` and
//! `livecount-aggregate` and the local runtime in `livecount-local` are built from these parts:
//!
//! - [`event`]: the player event, SQS body parsing and validation with a reason per rule;
//! - [`edge`]: what one public request may carry, and the reason each refused one is counted
//!   under;
//! - [`ids`]: `StreamId`, `SessionId` (an id is checked once, by its `parse`, where it enters:
//!   an event body, an HTTP path, a command's argument, a stream record's key; everything after
//!   takes the type), the sessions partition key `"{streamId}#{shard}"` and the session shard of
//!   a session;
//! - [`coalesce`]: the newest event per session within a batch;
//! - [`breakdown`]: the dimensions a stream is broken down by, their values' own streams, and
//!   the moves a stream record makes in them;
//! - [`timing`]: `W`, `B`, `G`, their bound, `expDate` and bucket math;
//! - [`histogram`]: stream records as moves between expiry buckets, the per-stream counter plan
//!   (with receipts for dedupe) split into bounded requests, and `viewers(now)`;
//! - [`model`]: the session row, the live counter and history items, mapped with `serde_dynamo`;
//! - [`capacity`]: DynamoDB's item size and capacity unit rules;
//! - [`requests`]: every write as a value, built by a pure function and checked against
//!   DynamoDB's expression limits;
//! - [`store`]: the one DynamoDB adapter that sends them (every `UpdateItem` through its
//!   [`store::UpdateItems`] port: the SDK client, or the simulation's model), and the reads;
//!   [`admin`]: creating, deleting and describing the tables (tools and tests);
//! - [`read`]: a stream's live count from one `GetItem`, and the stream list in pages;
//! - [`token`]: signed sessions (HMAC-SHA256 tokens the customer's backend issues);
//! - [`metrics`]: the handlers' counters as CloudWatch Embedded Metric Format lines;
//! - [`config`] and [`clock`]: environment configuration and an injectable clock;
//! - [`contract`]: `infra/contract.json`, what the functions and the infrastructure agree on.

pub mod admin;
pub mod breakdown;
pub mod capacity;
pub mod clock;
pub mod coalesce;
pub mod config;
pub mod contract;
pub mod edge;
pub mod event;
pub mod figures;
pub mod histogram;
pub mod ids;
pub mod metrics;
pub mod model;
pub mod read;
pub mod requests;
pub mod store;
pub mod timing;
pub mod token;

pub use clock::Clock;
pub use config::{Config, ConfigError};
pub use event::{EventKind, PlayerEvent};
pub use read::{LiveCount, all_live_counts, live_count, live_counts_page, viewers_now};
pub use store::{Store, StoreError};
pub use timing::Timing;

/// Builds a DynamoDB client from the standard AWS environment (`AWS_ENDPOINT_URL_DYNAMODB`,
/// `AWS_REGION`, credentials), as both Lambdas and the local tools do.
pub async fn dynamodb_client() -> aws_sdk_dynamodb::Client {
    let sdk_config = aws_config::load_from_env().await;
    aws_sdk_dynamodb::Client::new(&sdk_config)
}

/// An error and its sources, joined with ": ", for one log line or one reason.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
