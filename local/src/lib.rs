//! # livecount-local
//!
//! The local runtime: what Lambda and its event source mappings do on AWS, for DynamoDB Local
//! on one machine (DESIGN §7).
//!
//! - [`poller`]: reads the sessions table's stream and calls the aggregate handler with
//!   Lambda-shaped batches, with Lambda's batch size, batching window and partial-batch retry;
//!   DynamoDB Local's TTL deletions become the service `REMOVE`s AWS emits.
//! - [`streams_client`]: a DynamoDB Streams client pointed where the DynamoDB client points.

pub mod poller;

pub use poller::{PollReport, PollerConfig, PollerError, StreamPoller};

/// A DynamoDB Streams client from the standard AWS environment. DynamoDB Local serves Streams on
/// its one endpoint, so without `AWS_ENDPOINT_URL_DYNAMODB_STREAMS` the client uses
/// `AWS_ENDPOINT_URL_DYNAMODB`.
pub fn streams_client(sdk_config: &aws_config::SdkConfig) -> aws_sdk_dynamodbstreams::Client {
    let mut config = aws_sdk_dynamodbstreams::config::Builder::from(sdk_config);
    let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB_STREAMS")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL_DYNAMODB"));
    if let Ok(url) = endpoint {
        config = config.endpoint_url(url);
    }
    aws_sdk_dynamodbstreams::Client::from_conf(config.build())
}
