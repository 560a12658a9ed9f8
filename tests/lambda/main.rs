//! The real Lambda contract: the release `bootstrap` binaries that `make package` builds with
//! cargo-lambda (the very files the zips hold: arm64 by default, run through qemu's user-mode
//! emulator on an x86_64 machine) run under `cargo lambda watch`'s runtime emulator against
//! DynamoDB Local, and are invoked with SQS, DynamoDB Streams and Function URL events shaped
//! exactly as AWS sends them. Run by `make lambda-test` (after `make package`), which `.ci/run`
//! calls.

// Test plumbing: a failed step is a failed test, said with its reason.
#![allow(clippy::expect_used)]

use livecount_core::token::TokenSecret;
use livecount_tests::{Pipeline, event_body, event_body_with, wait_for, wait_for_port};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A child process killed when the test ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// `cargo lambda watch --only-lambda-apis`: the runtime API emulator, no function build.
async fn emulator(port: u16) -> Running {
    let cargo_lambda = std::env::var("CARGO_LAMBDA").unwrap_or_else(|_| "cargo-lambda".to_owned());
    let child = Command::new(&cargo_lambda)
        .args([
            "lambda",
            "watch",
            "--only-lambda-apis",
            "-A",
            "127.0.0.1",
            "-P",
            &port.to_string(),
        ])
        .current_dir(workspace())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {cargo_lambda}: {e} (make lambda-test installs cargo-lambda)")
        });
    let running = Running(child);
    let listening = wait_for_port(port, Duration::from_secs(60)).await;
    assert!(
        listening,
        "cargo lambda watch did not listen on {port} within 60 s"
    );
    running
}

/// Runs `target/lambda/{name}/bootstrap` against the emulator, with the pipeline's tables.
fn function(
    name: &str,
    port: u16,
    p: &Pipeline,
    endpoint: &str,
    extra: &[(&str, &str)],
) -> Running {
    let dir = std::env::var("LIVECOUNT_LAMBDA_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| workspace().join("target/lambda"));
    let bootstrap = dir.join(format!("{name}/bootstrap"));
    assert!(
        bootstrap.is_file(),
        "{} is missing: run `make package` first",
        bootstrap.display()
    );
    // The shipped arm64 binaries run on an x86_64 machine through qemu's user-mode emulator:
    // `LIVECOUNT_LAMBDA_RUNNER` is the command (and its arguments) to run them with.
    let runner = std::env::var("LIVECOUNT_LAMBDA_RUNNER").unwrap_or_default();
    let mut runner = runner.split_whitespace();
    let mut command = match runner.next() {
        Some(program) => {
            let mut command = Command::new(program);
            command.args(runner).arg(&bootstrap);
            command
        }
        None => Command::new(&bootstrap),
    };
    let mut child = command
        .env_clear()
        // What `cargo lambda watch --only-lambda-apis` asks the function's environment for.
        .env(
            "AWS_LAMBDA_RUNTIME_API",
            format!("http://127.0.0.1:{port}/.rt"),
        )
        .env("AWS_LAMBDA_FUNCTION_NAME", "_")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_ENDPOINT_URL_DYNAMODB", endpoint)
        .env("LIVECOUNT_SESSIONS_TABLE", &p.config.sessions_table)
        .env("LIVECOUNT_COUNTERS_TABLE", &p.config.counters_table)
        .envs(extra.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run bootstrap");
    // Keep its log lines (EMF metrics among them) readable in the test output.
    let stdout = child.stdout.take().expect("stdout");
    let label = name.to_owned();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            eprintln!("[{label}] {line}");
        }
    });
    Running(child)
}

/// `POST /2015-03-31/functions/_/invocations` (the Lambda Invoke API) to the emulator that
/// serves function `name`, with retries while the function starts.
async fn invoke(port: u16, name: &str, event: &Value) -> Value {
    let url = format!("http://127.0.0.1:{port}/2015-03-31/functions/_/invocations");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let body = event.to_string();
    let answer = std::cell::RefCell::new(None);
    let answered = wait_for(Duration::from_secs(60), || async {
        let reply = agent
            .post(&url)
            .header("content-type", "application/json")
            .send(&body)
            .ok()
            .and_then(|mut reply| reply.body_mut().read_to_string().ok());
        *answer.borrow_mut() = reply.and_then(|text| serde_json::from_str::<Value>(&text).ok());
        answer.borrow().is_some()
    })
    .await;
    assert!(answered, "no answer from {name} within 60 s");
    answer.into_inner().expect("an answer")
}

/// An SQS record as Lambda sends it, as JSON.
fn sqs_record(id: &str, body: &str, sent_ms: i64) -> Value {
    let message =
        livecount_local::lambda_events::sqs_message(id, body, sent_ms, 1, &Default::default());
    serde_json::to_value(message).expect("an SQS record")
}

#[tokio::test]
#[ignore = "needs the cargo-lambda bootstraps: run with `make lambda-test`"]
async fn release_bootstraps_honour_the_lambda_contract() {
    let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB")
        .expect("run under scripts/with-dynamodb-local.sh");
    let p = Pipeline::new("lambda-contract").await;
    // One emulator per function: each serves the function named `_` on its own port.
    let ports = [free_port(), free_port(), free_port(), free_port()];
    let mut emulators: Vec<Running> = Vec::new();
    for &port in &ports {
        emulators.push(emulator(port).await);
    }
    let [ingest_port, aggregate_port, read_port, edge_port] = ports;
    let _ingest = function("ingest", ingest_port, &p, &endpoint, &[]);
    let _aggregate = function("aggregate", aggregate_port, &p, &endpoint, &[]);
    let _read = function("read", read_port, &p, &endpoint, &[]);
    let secret = "a lambda-test secret of 32 bytes";
    let _edge = function(
        "edge",
        edge_port,
        &p,
        &endpoint,
        &[("LIVECOUNT_TOKEN_SECRET", secret)],
    );
    let now = livecount_tests::wall_clock_second_ms();

    // SQS → ingest: three sessions and one invalid message; the response names only that one.
    let sqs = json!({"Records": [
        sqs_record("a1", &event_body("keynote", "s-1", "start", now), now),
        sqs_record("a2", &json!([{"streamId": "keynote", "sessionId": "s-2", "type": "start", "ts": now},
                                 {"streamId": "keynote", "sessionId": "s-3", "type": "heartbeat", "ts": now}]).to_string(), now),
        sqs_record("bad", "{\"streamId\": \"keynote#1\"}", now),
    ]});
    let response = invoke(ingest_port, "ingest", &sqs).await;
    assert_eq!(
        response,
        json!({"batchItemFailures": [{"itemIdentifier": "bad"}]})
    );
    assert_eq!(p.session_rows().await, 3);

    // DynamoDB Streams → aggregate: the records the sessions table produced, as Lambda sends them.
    let mut p = p;
    let batches = p.poller.next_batches().await.expect("stream");
    for batch in batches {
        let response = invoke(
            aggregate_port,
            "aggregate",
            &serde_json::to_value(&batch).expect("event JSON"),
        )
        .await;
        assert_eq!(response, json!({"batchItemFailures": []}));
    }
    assert_eq!(p.viewers_at("keynote", now / 1000).await, 3);

    // Function URL → read: the one-GetItem read over HTTP.
    let response = invoke(
        read_port,
        "read",
        &url_request("GET", "/api/streams/keynote", "", now),
    )
    .await;
    assert_eq!(response["statusCode"], 200, "{response}");
    let body = answer_body(&response);
    assert_eq!(body["streamId"], "keynote");
    assert_eq!(body["viewers"], 3, "{body}");

    // Function URL → edge: a signed player is written and answered with the count; an unsigned
    // one is refused with its reason.
    let token = TokenSecret::new(secret.as_bytes().to_vec())
        .expect("secret")
        .sign(
            &livecount_tests::stream("keynote"),
            &livecount_tests::session("s-4"),
            now / 1000 + 60,
        );
    let signed = event_body_with("keynote", "s-4", "start", now, &[("token", json!(token))]);
    let response = invoke(
        edge_port,
        "edge",
        &url_request("POST", "/events", &signed, now),
    )
    .await;
    assert_eq!(response["statusCode"], 202, "{response}");
    assert_eq!(answer_body(&response)["viewers"], 3, "{response}");
    assert_eq!(p.session_rows().await, 4);
    let unsigned = event_body("keynote", "s-5", "start", now);
    let response = invoke(
        edge_port,
        "edge",
        &url_request("POST", "/events", &unsigned, now),
    )
    .await;
    assert_eq!(response["statusCode"], 401, "{response}");
    assert_eq!(answer_body(&response)["reason"], "RefusedUnsigned");
    assert_eq!(p.session_rows().await, 4);
    p.cleanup().await;
}

/// A Function URL request (payload format 2.0) as Lambda hands it to the function.
fn url_request(method: &str, path: &str, body: &str, now: i64) -> Value {
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
        "headers": {"accept": "application/json", "content-type": "text/plain", "host": "abc.lambda-url.us-east-1.on.aws"},
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc", "domainName": "abc.lambda-url.us-east-1.on.aws",
            "domainPrefix": "abc", "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
            "sourceIp": "203.0.113.7", "userAgent": "curl/8"}, "requestId": "r-1", "routeKey": "$default",
            "stage": "$default", "time": "25/Nov/2026:20:00:00 +0000", "timeEpoch": now
        },
        "body": body,
        "isBase64Encoded": false
    })
}

/// The JSON body of a Function URL response.
fn answer_body(response: &Value) -> Value {
    serde_json::from_str(response["body"].as_str().expect("body")).expect("JSON body")
}
