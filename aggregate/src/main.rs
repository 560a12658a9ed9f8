//! The `aggregate` Lambda binary: wires [`livecount_aggregate::handler`] to the Lambda runtime.

use lambda_runtime::{Error, run, service_fn, tracing};
use livecount_aggregate::{Aggregator, handler};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let config = livecount_core::Config::from_env()?;
    let store = livecount_core::Store::new(livecount_core::dynamodb_client().await, &config);
    let aggregator = Aggregator::new(store, config);
    run(service_fn(|event| handler(&aggregator, event))).await
}
