//! What the end-to-end tests share: running the binary, `livecount dev`, waiting with deadlines.

// A test harness: a failed setup step is a failed test, said with its reason.
#![allow(clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_livecount");

pub use livecount_tests::dynamodb_endpoint as endpoint;
pub use livecount_tests::unique_name as unique;

pub use livecount_tests::dynamodb_local_install_dir as dynamodb_local_dir;

/// A `livecount` command with its own tables (so tests do not see each other's streams).
pub fn livecount(tables: &str) -> Command {
    let mut command = Command::new(BIN);
    command
        .env("LIVECOUNT_SESSIONS_TABLE", format!("sessions-{tables}"))
        .env("LIVECOUNT_COUNTERS_TABLE", format!("counters-{tables}"))
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_REGION", "us-east-1")
        .stdin(Stdio::null());
    command
}

/// Runs a command to its end, failing the test if it takes longer than `limit` (a hang).
pub fn run_within(command: &mut Command, limit: Duration) -> Output {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn livecount");
    let id = child.id();
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match finished.recv_timeout(limit) {
        Ok(output) => output.expect("livecount output"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &id.to_string()])
                .status();
            panic!("livecount did not finish within {limit:?}: it hangs");
        }
    }
}

/// A running `livecount dev`, stopped with SIGTERM when dropped.
pub struct Dev {
    pub child: Child,
    pub url: String,
    pub tables: String,
}

impl Dev {
    /// Starts `livecount dev --port 0 ARGS` against the test DynamoDB Local and waits for its
    /// dashboard address.
    pub fn start(tables: &str, args: &[&str]) -> Self {
        Self::start_with(tables, args, &[])
    }

    /// [`Dev::start`] with more environment variables.
    pub fn start_with(tables: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = livecount(tables)
            .envs(env.iter().copied())
            .env("AWS_ENDPOINT_URL_DYNAMODB", endpoint())
            .args(["dev", "--port", "0", "--quiet"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn livecount dev");
        let url = dashboard_url(&mut child);
        Self {
            child,
            url,
            tables: tables.to_owned(),
        }
    }

    /// `livecount count STREAM --json` against the same tables.
    pub fn count(&self, stream: &str) -> u64 {
        let output = run_within(
            livecount(&self.tables).args(["count", stream, "--json", "--endpoint", &endpoint()]),
            Duration::from_secs(30),
        );
        assert!(
            output.status.success(),
            "count failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let json: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("count --json prints JSON");
        json["viewers"].as_u64().expect("viewers")
    }

    pub fn stop(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("livecount dev did not stop within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

/// Reads `livecount dev`'s stdout until it names its dashboard address.
pub fn dashboard_url(child: &mut Child) -> String {
    let stdout = child.stdout.take().expect("piped stdout");
    let (found, url) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("livecount dev: dashboard on ") {
                let _ = found.send(rest.trim_end_matches('/').to_owned());
            }
        }
    });
    url.recv_timeout(Duration::from_secs(120))
        .expect("livecount dev did not print its dashboard address within 120 s")
}

/// Polls `condition` every 250 ms until it holds or `limit` passes; returns whether it held.
pub fn wait_for(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into()
}

/// `GET url` → body, if it answered 2xx.
pub fn http_get(url: &str) -> Option<String> {
    let mut response = agent().get(url).call().ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.body_mut().read_to_string().ok()
}

/// `POST url` with `body` as `text/plain` → the status.
pub fn http_post(url: &str, body: &str) -> Option<u16> {
    let response = agent()
        .post(url)
        .header("content-type", "text/plain")
        .send(body)
        .ok()?;
    Some(response.status().as_u16())
}
