//! The tests of the `livecount` process itself: its exit statuses, its one-line errors and its
//! signals. Everything else runs the app in-process.

use crate::harness::{BIN, dynamodb_local_dir, endpoint, livecount, run_within, unique};
use std::net::TcpListener;
use std::process::{Output, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// A failed command: exit status 1, exactly one line on stderr naming `expected`, no panic.
fn assert_one_clear_line(output: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(1),
        "expected exit status 1; stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "it panicked: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one error line, got: {stderr}");
    assert!(
        lines[0].contains(expected),
        "{:?} does not say {expected:?}",
        lines[0]
    );
}

#[tokio::test]
async fn an_unknown_flag_is_refused_with_the_flag_named() {
    let output = run_within(
        Command::new(BIN).args(["dev", "--bogus"]),
        Duration::from_secs(10),
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(!stderr.contains("panicked"));
    let first = stderr.lines().next().unwrap_or_default();
    assert!(first.contains("unexpected argument '--bogus'"), "{first}");
}

/// `livecount send FILE` with `events` to a port where no `livecount dev` listens.
#[allow(clippy::expect_used)] // test plumbing: a failed write is a failed test
async fn send_to_nowhere(events: &str) -> Output {
    let file = std::env::temp_dir()
        .join(unique("events"))
        .with_extension("jsonl");
    std::fs::write(&file, events).expect("write");
    let output = run_within(
        livecount("unused").args([
            "send",
            &file.to_string_lossy(),
            "--api",
            "http://127.0.0.1:9",
        ]),
        Duration::from_secs(30),
    )
    .await;
    let _ = std::fs::remove_file(file);
    output
}

const START: &str = "{\"streamId\":\"s\",\"sessionId\":\"a\",\"type\":\"start\",\"ts\":1}\n";

#[tokio::test]
async fn a_malformed_events_file_names_the_line_and_the_rule() {
    let output = send_to_nowhere(&format!(
        "{START}{{\"streamId\":\"s\",\"sessionId\":\"b\",\"type\":\"start\"}}\n"
    ))
    .await;
    assert_one_clear_line(&output, "line 2: `ts` is missing");
}

#[tokio::test]
async fn sending_with_no_dev_running_says_so() {
    assert_one_clear_line(&send_to_nowhere(START).await, "is `livecount dev` running?");
}

#[tokio::test]
async fn an_empty_events_input_is_refused() {
    let output = run_within(
        livecount("unused")
            .args(["send", "-", "--api", "http://127.0.0.1:9"])
            .stdin(std::fs::File::open("/dev/null").expect("null")),
        Duration::from_secs(10),
    )
    .await;
    assert_one_clear_line(&output, "no events");
}

#[tokio::test]
async fn a_port_in_use_is_named() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("address").port();
    let output = run_within(
        livecount(&unique("port")).args([
            "dev",
            "--port",
            &port.to_string(),
            "--endpoint",
            &endpoint(),
        ]),
        Duration::from_secs(30),
    )
    .await;
    assert_one_clear_line(
        &output,
        &format!("cannot listen on 127.0.0.1:{port}: the port is in use"),
    );
}

#[tokio::test]
async fn dynamodb_local_failing_to_start_is_one_clear_line() {
    let output = run_within(
        livecount(&unique("nojava"))
            .env_remove("AWS_ENDPOINT_URL_DYNAMODB")
            .env("LIVECOUNT_JAVA", "/nonexistent/java")
            .env("LIVECOUNT_DYNAMODB_LOCAL_DIR", dynamodb_local_dir())
            .args(["dev", "--port", "0", "--dynamodb-port", "0"]),
        Duration::from_secs(120),
    )
    .await;
    assert_one_clear_line(
        &output,
        "DynamoDB Local could not be started: could not run \"/nonexistent/java\"",
    );
}

/// The processes whose parent is `pid`, from `/proc`.
fn children(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&child| {
            // `/proc/{pid}/stat`: `pid (comm) state ppid …`; comm may hold spaces.
            std::fs::read_to_string(format!("/proc/{child}/stat")).is_ok_and(|stat| {
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                    == Some(pid)
            })
        })
        .collect()
}

/// Whether process `pid` is still running (not gone, not a zombie).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

/// `livecount dev` with its own DynamoDB Local stops everything on SIGINT (Ctrl-C), leaving no
/// process behind.
#[tokio::test]
async fn ctrl_c_stops_everything_and_leaves_no_process_behind() {
    let mut child = livecount(&unique("sigint"))
        .env_remove("AWS_ENDPOINT_URL_DYNAMODB")
        .env("LIVECOUNT_DYNAMODB_LOCAL_DIR", dynamodb_local_dir())
        .args(["dev", "--port", "0", "--dynamodb-port", "0", "--quiet"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn livecount dev");
    // Its stdout, read to the end (a closed pipe would fail its last lines).
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let started = tokio::time::timeout(Duration::from_secs(120), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.starts_with("livecount dev: dashboard on ") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(
        started,
        Ok(true),
        "livecount dev did not print its dashboard address within 120 s"
    );
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let pid = child.id().expect("running");
    let java = children(pid);
    assert_eq!(java.len(), 1, "DynamoDB Local runs as livecount's child");
    let java = java[0];
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).expect("a pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("SIGINT");
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("livecount dev did not stop within 30 s of Ctrl-C")
        .expect("its exit status");
    assert!(status.success(), "exit status {status}");
    assert!(
        !running(java),
        "DynamoDB Local (pid {java}) is still running"
    );
}
