//! Amazon's DynamoDB Local for async callers (`livecount dev`, the tests): the one launcher,
//! `livecount-dynamodb-local` (which `make` runs too, as `with-dynamodb-local`), started and
//! stopped off the runtime's threads. The version is pinned once, in that crate's
//! `package.json`.

pub use livecount_dynamodb_local::{
    LaunchError, PACKAGE_JSON, Storage, install, jar_dir, pinned_version, repository_install_dir,
};

/// A running DynamoDB Local; killed when stopped or dropped.
#[derive(Debug)]
pub struct DynamoDbLocal(livecount_dynamodb_local::LocalProcess);

impl DynamoDbLocal {
    /// Installs the jar under `install_dir` if it is missing, starts it in memory on `port` (0
    /// for any free port) and waits until it answers.
    pub async fn start(install_dir: &std::path::Path, port: u16) -> Result<Self, LaunchError> {
        Self::start_with(install_dir, port, &Storage::InMemory).await
    }

    /// [`DynamoDbLocal::start`] with a choice of [`Storage`].
    pub async fn start_with(
        install_dir: &std::path::Path,
        port: u16,
        storage: &Storage,
    ) -> Result<Self, LaunchError> {
        let (install_dir, storage) = (install_dir.to_owned(), storage.clone());
        blocking(move || {
            livecount_dynamodb_local::LocalProcess::start_with(&install_dir, port, &storage)
        })
        .await
        .map(Self)
    }

    /// `http://127.0.0.1:{port}`.
    pub fn endpoint(&self) -> String {
        self.0.endpoint()
    }

    pub fn port(&self) -> u16 {
        self.0.port()
    }

    /// The Java process's id.
    pub fn pid(&self) -> u32 {
        self.0.pid()
    }

    /// Kills the process and waits for it to exit.
    pub async fn stop(self) {
        let local = self.0;
        blocking(move || local.stop()).await;
    }

    /// Kills the process at once, as a crash would (for failure tests).
    pub async fn kill(self) {
        self.stop().await;
    }
}

/// Runs `f` on the runtime's blocking threads; its panic, if any, is the caller's.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => value,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}
