//! The `read` Lambda binary: serves [`livecount_api::router`] through `lambda_http`.

use lambda_http::{Error, run, tracing};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let config = livecount_core::Config::from_env()?;
    let store = livecount_core::Store::new(livecount_core::dynamodb_client().await, &config);
    run(livecount_api::router(livecount_read::state(
        store,
        config.breakdowns,
    )))
    .await
}
