use crate::harness::{
    BIN, dashboard_url, dynamodb_local_dir, endpoint, livecount, run_within, unique,
};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A failed command: non-zero exit, exactly one line on stderr naming `expected`, no panic.
fn assert_one_clear_line(output: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "expected a failure, got success; stderr: {stderr}"
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

#[test]
fn an_unknown_flag_is_refused_with_the_flag_named() {
    let output = run_within(
        Command::new(BIN).args(["dev", "--bogus"]),
        Duration::from_secs(10),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(!stderr.contains("panicked"));
    let first = stderr.lines().next().unwrap_or_default();
    assert!(first.contains("unexpected argument '--bogus'"), "{first}");
}

/// `livecount send FILE` with `events` to a port where no `livecount dev` listens.
#[allow(clippy::expect_used)] // test plumbing: a failed write is a failed test
fn send_to_nowhere(events: &str) -> Output {
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
    );
    let _ = std::fs::remove_file(file);
    output
}

const START: &str = "{\"streamId\":\"s\",\"sessionId\":\"a\",\"type\":\"start\",\"ts\":1}\n";

#[test]
fn a_malformed_events_file_names_the_line_and_the_rule() {
    let output = send_to_nowhere(&format!(
        "{START}{{\"streamId\":\"s\",\"sessionId\":\"b\",\"type\":\"start\"}}\n"
    ));
    assert_one_clear_line(&output, "line 2: `ts` is missing");
}

#[test]
fn sending_with_no_dev_running_says_so() {
    assert_one_clear_line(&send_to_nowhere(START), "is `livecount dev` running?");
}

#[test]
fn an_empty_events_input_is_refused() {
    let output = run_within(
        livecount("unused")
            .args(["send", "-", "--api", "http://127.0.0.1:9"])
            .stdin(std::fs::File::open("/dev/null").expect("null")),
        Duration::from_secs(10),
    );
    assert_one_clear_line(&output, "no events");
}

#[test]
fn a_port_in_use_is_named() {
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
    );
    assert_one_clear_line(
        &output,
        &format!("cannot listen on 127.0.0.1:{port}: the port is in use"),
    );
}

#[test]
fn dynamodb_local_failing_to_start_is_one_clear_line() {
    let output = run_within(
        livecount(&unique("nojava"))
            .env_remove("AWS_ENDPOINT_URL_DYNAMODB")
            .env("LIVECOUNT_JAVA", "/nonexistent/java")
            .env("LIVECOUNT_DYNAMODB_LOCAL_DIR", dynamodb_local_dir())
            .args(["dev", "--port", "0", "--dynamodb-port", "0"]),
        Duration::from_secs(120),
    );
    assert_one_clear_line(
        &output,
        "DynamoDB Local could not be started: could not run \"/nonexistent/java\"",
    );
}

/// `livecount dev` with its own DynamoDB Local stops everything on SIGINT (Ctrl-C), leaving no
/// process behind.
#[test]
fn ctrl_c_stops_everything_and_leaves_no_process_behind() {
    let mut child = livecount(&unique("sigint"))
        .env_remove("AWS_ENDPOINT_URL_DYNAMODB")
        .env("LIVECOUNT_DYNAMODB_LOCAL_DIR", dynamodb_local_dir())
        .args(["dev", "--port", "0", "--dynamodb-port", "0", "--quiet"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn");
    let _url = dashboard_url(&mut child);
    let pid = child.id();
    let java_children = || {
        let output = Command::new("pgrep")
            .args(["-P", &pid.to_string()])
            .output()
            .expect("pgrep");
        String::from_utf8_lossy(&output.stdout).lines().count()
    };
    assert_eq!(
        java_children(),
        1,
        "DynamoDB Local runs as livecount's child"
    );
    let java_pid = Command::new("pgrep")
        .args(["-P", &pid.to_string()])
        .output()
        .expect("pgrep");
    let java_pid = String::from_utf8_lossy(&java_pid.stdout).trim().to_owned();

    let _ = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "livecount dev did not stop within 30 s of Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "exit status {status}");
    let alive = Command::new("kill")
        .args(["-0", &java_pid])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(!alive, "DynamoDB Local (pid {java_pid}) is still running");
}
