//! The `edge` Lambda binary: serves [`livecount_edge::router`] behind a Function URL.

use lambda_http::{Error, run, tracing};
use livecount_edge::{Edge, EdgeSettings, read_secret, router};
use livecount_ingest::{Ingest, resolve_tokens};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let config = livecount_core::Config::from_env()?;
    let settings = EdgeSettings::from_lookup(|name| std::env::var(name).ok())?;
    let tokens = resolve_tokens(&config).await?;
    settings.check_signing(tokens.is_some())?;
    let store = livecount_core::Store::new(livecount_core::dynamodb_client().await, &config);
    let ingest = Ingest {
        tokens,
        ..Ingest::new(store, config)
    };
    let origin_secret = match &settings.origin_secret_arn {
        Some(arn) => Some(read_secret(arn).await?),
        None => None,
    };
    let edge = Edge {
        origin_secret,
        ..Edge::new(ingest, settings.cors_origins)
    };
    run(router(edge)).await
}
