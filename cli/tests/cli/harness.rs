//! What the end-to-end tests share: `livecount dev` run in-process (the real app, [`DevApp`],
//! built from the same arguments the command parses), the binary itself for the tests of the
//! process (signals, exit statuses, one-line errors), and commands run with deadlines. Waiting
//! for a condition is the test kit's one [`wait_for`].

// A test harness: a failed setup step is a failed test, said with its reason.
#![allow(clippy::expect_used)]

use clap::Parser;
use livecount_cli::dev::DevApp;
use livecount_cli::{Cli, Command as Subcommand};
use livecount_core::Config;
use std::process::{Output, Stdio};
use std::time::Duration;
use tokio::process::Command;

pub const BIN: &str = env!("CARGO_BIN_EXE_livecount");

pub use livecount_tests::dynamodb_endpoint as endpoint;
pub use livecount_tests::dynamodb_local_install_dir as dynamodb_local_dir;
pub use livecount_tests::unique_name as unique;
pub use livecount_tests::wait_for;

/// The settings a `livecount` process would read from its environment: its own tables (so
/// tests do not see each other's streams) and `settings` (`LIVECOUNT_TOKEN_SECRET`, …).
fn config(tables: &str, settings: &[(&str, &str)]) -> Config {
    let sessions = format!("sessions-{tables}");
    let counters = format!("counters-{tables}");
    Config::from_lookup(|name| match name {
        "LIVECOUNT_SESSIONS_TABLE" => Some(sessions.clone()),
        "LIVECOUNT_COUNTERS_TABLE" => Some(counters.clone()),
        _ => settings
            .iter()
            .find(|(setting, _)| *setting == name)
            .map(|(_, value)| (*value).to_owned()),
    })
    .expect("the test's settings")
}

/// The `livecount` binary with its own tables, for the tests of the process itself; killed if
/// the test ends first.
pub fn livecount(tables: &str) -> Command {
    let mut command = Command::new(BIN);
    command
        .env("LIVECOUNT_SESSIONS_TABLE", format!("sessions-{tables}"))
        .env("LIVECOUNT_COUNTERS_TABLE", format!("counters-{tables}"))
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_REGION", "us-east-1")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// Runs a command to its end, failing the test (and killing the command) if it takes longer
/// than `limit`: a hang.
pub async fn run_within(command: &mut Command, limit: Duration) -> Output {
    let program = command
        .as_std()
        .get_program()
        .to_string_lossy()
        .into_owned();
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    match tokio::time::timeout(limit, child.wait_with_output()).await {
        Ok(output) => output.expect("the command's output"),
        Err(_) => panic!("{program} did not finish within {limit:?}: it hangs"),
    }
}

/// Parses a `livecount` command line as the binary does.
fn parse(args: &[&str]) -> Subcommand {
    Cli::try_parse_from(std::iter::once("livecount").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("livecount {args:?}: {e}"))
        .command
}

/// `livecount dev` running in-process on a free port against the test DynamoDB Local: the app
/// `livecount dev ARGS` builds, on a runtime of its own (as the binary's `main` gives it: the
/// app's future is not `Send`, so it cannot be spawned on the test's), until [`Dev::stop`] or
/// the test's end.
pub struct Dev {
    /// `http://127.0.0.1:{port}`: the API, the edge and the dashboard.
    pub url: String,
    config: Config,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    stopped: Option<tokio::sync::oneshot::Receiver<()>>,
}

impl Dev {
    /// Builds the app of `livecount dev --port 0 --quiet ARGS` with tables of its own and runs
    /// it.
    pub async fn start(tables: &str, args: &[&str]) -> Self {
        Self::start_with(tables, args, &[]).await
    }

    /// [`Dev::start`] with settings the process would read from its environment
    /// (`LIVECOUNT_TOKEN_SECRET`, …).
    pub async fn start_with(tables: &str, args: &[&str], settings: &[(&str, &str)]) -> Self {
        let endpoint = endpoint();
        let mut line = vec!["dev", "--port", "0", "--quiet", "--endpoint", &endpoint];
        line.extend(args);
        let Subcommand::Dev(args) = parse(&line) else {
            unreachable!("`livecount dev` parses as dev")
        };
        let config = config(tables, settings);
        let options =
            livecount_cli::dev_options(args, config.clone()).expect("livecount dev's options");
        let (ready, address) = tokio::sync::oneshot::channel();
        let (stop, stopping) = tokio::sync::oneshot::channel::<()>();
        let (done, stopped) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("livecount-dev".to_owned())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("a runtime for the app");
                runtime.block_on(async move {
                    match DevApp::build(options).await {
                        Ok(app) => {
                            let _ = ready.send(Ok(app.address()));
                            app.run_until_stopped(async {
                                let _ = stopping.await;
                            })
                            .await;
                        }
                        Err(e) => drop(ready.send(Err(livecount_core::error_chain(&e)))),
                    }
                });
                let _ = done.send(());
            })
            .expect("a thread for the app");
        let address = address
            .await
            .expect("the app's thread")
            .unwrap_or_else(|e| panic!("livecount dev did not start: {e}"));
        Self {
            url: format!("http://{address}"),
            config,
            stop: Some(stop),
            stopped: Some(stopped),
        }
    }

    /// What `livecount count STREAM --json` reads from the same tables: the live count.
    pub async fn count(&self, stream: &str) -> u64 {
        let Subcommand::Count(args) =
            parse(&["count", stream, "--json", "--endpoint", &endpoint()])
        else {
            unreachable!("`livecount count` parses as count")
        };
        livecount_cli::live_count(&args, &self.config)
            .await
            .expect("livecount count")
            .viewers
    }

    /// Stops the app as Ctrl-C does (its shutdown future resolves); fails the test unless every
    /// part has stopped within 30 s.
    pub async fn stop(mut self) {
        drop(self.stop.take());
        let stopped = self.stopped.take().expect("running");
        let stopped = tokio::time::timeout(Duration::from_secs(30), stopped).await;
        assert!(
            matches!(stopped, Ok(Ok(()))),
            "livecount dev did not stop within 30 s of being asked"
        );
    }
}

impl Drop for Dev {
    /// A test that failed before [`Dev::stop`]: the app is asked to stop, not waited for.
    fn drop(&mut self) {
        drop(self.stop.take());
    }
}

/// Runs `livecount ARGS` in-process (as the binary's `main` does) and returns its error line,
/// if it failed.
pub async fn run(args: &[&str]) -> Result<(), String> {
    let line: Vec<&str> = std::iter::once("livecount")
        .chain(args.iter().copied())
        .collect();
    let cli = Cli::try_parse_from(line).unwrap_or_else(|e| panic!("livecount {args:?}: {e}"));
    livecount_cli::run(cli).await.map_err(|e| e.line())
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into()
}

/// `GET url` → body, if it answered 2xx.
pub async fn http_get(url: &str) -> Option<String> {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut response = agent().get(&url).call().ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.body_mut().read_to_string().ok()
    })
    .await
    .ok()
    .flatten()
}

/// `POST url` with `body` as `text/plain` → the status.
pub async fn http_post(url: &str, body: &str) -> Option<u16> {
    let (url, body) = (url.to_owned(), body.to_owned());
    tokio::task::spawn_blocking(move || {
        let response = agent()
            .post(&url)
            .header("content-type", "text/plain")
            .send(&body)
            .ok()?;
        Some(response.status().as_u16())
    })
    .await
    .ok()
    .flatten()
}
