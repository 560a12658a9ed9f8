//! The `ingest` Lambda binary: wires [`livecount_ingest::handler`] to the Lambda runtime.

use lambda_runtime::{Error, run, service_fn, tracing};
use livecount_ingest::{DeadLetters, Ingest, handler, resolve_tokens};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let config = livecount_core::Config::from_env()?;
    let store = livecount_core::Store::new(livecount_core::dynamodb_client().await, &config);
    let tokens = resolve_tokens(&config).await?;
    let dead_letters = DeadLetters::from_config(&config).await;
    let ingest = Ingest {
        tokens,
        dead_letters,
        ..Ingest::new(store, config)
    };
    run(service_fn(|event| handler(&ingest, event))).await
}
