//! The API router served in-process on port 0, as `livecount dev` and the read Lambda serve it:
//! the status and body of every answer a dashboard or a player can get.

// Test helpers: a failed step is a failed test.
#![allow(clippy::expect_used)]

use livecount_api::{ApiState, EventSink, router};
use livecount_core::{Clock, Config, Store};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// Collects what `POST /events` enqueues.
#[derive(Default)]
struct Sink(Mutex<Vec<String>>);

impl EventSink for Sink {
    fn enqueue(&self, body: String) -> String {
        let mut bodies = self.0.lock().expect("sink");
        bodies.push(body);
        format!("message-{}", bodies.len())
    }
}

/// A store at `endpoint` with tables of this test's own.
async fn store(endpoint: &str, name: &str) -> Store {
    let config = Config {
        sessions_table: livecount_tests::unique_name(&format!("api-sessions-{name}")),
        counters_table: livecount_tests::unique_name(&format!("api-counters-{name}")),
        ..Config::default()
    };
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "local", "local", None, None, "test",
        ))
        .load()
        .await;
    let client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
            .build(),
    );
    Store::new(client, &config)
}

/// Serves the router on a free port; the server stops with the test's runtime.
async fn serve(store: Store, events: Option<Arc<dyn EventSink>>) -> SocketAddr {
    let state = ApiState {
        store,
        clock: Clock::system(),
        events,
        cors_origins: vec!["https://player.example".to_owned()],
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, router(state)).await });
    address
}

/// (status, access-control-allow-origin, body) of one request.
async fn request(
    method: &'static str,
    url: String,
    content_type: Option<&'static str>,
    body: &'static str,
) -> (u16, Option<String>, String) {
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut response = if method == "GET" {
            agent.get(&url).call()
        } else {
            let mut request = agent.post(&url).header("origin", "https://player.example");
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type);
            }
            request.send(body.as_bytes())
        }
        .expect("request");
        let origin = response
            .headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = response.body_mut().read_to_string().unwrap_or_default();
        (response.status().as_u16(), origin, text)
    })
    .await
    .expect("request thread")
}

use livecount_tests::dynamodb_endpoint as endpoint;

#[tokio::test]
async fn a_stream_count_is_200_a_bad_id_400_an_unknown_path_404() {
    let store = store(&endpoint(), "reads").await;
    store.create_tables().await.expect("tables");
    let base = format!("http://{}", serve(store.clone(), None).await);

    let (status, _, body) = request("GET", format!("{base}/api/streams/launch"), None, "").await;
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(json["streamId"], "launch");
    assert_eq!(json["viewers"], 0);

    let (status, _, body) = request("GET", format!("{base}/api/streams/bad%23id"), None, "").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid stream id"), "{body}");

    let (status, _, _) = request("GET", format!("{base}/api/nothing-here"), None, "").await;
    assert_eq!(status, 404);

    let (status, _, body) = request("GET", format!("{base}/api/streams"), None, "").await;
    assert_eq!(status, 200, "{body}");
    store.delete_tables().await.expect("delete");
}

#[tokio::test]
async fn reads_are_503_while_dynamodb_is_down() {
    // Nothing listens on this port: every DynamoDB call fails at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead = format!("http://{}", closed.local_addr().expect("address"));
    drop(closed);
    let base = format!("http://{}", serve(store(&dead, "down").await, None).await);
    for path in ["/api/streams/launch", "/api/streams"] {
        let (status, _, body) = request("GET", format!("{base}{path}"), None, "").await;
        assert_eq!(status, 503, "{path}: {body}");
        assert!(body.contains("try again"), "{body}");
    }
}

#[tokio::test]
async fn post_events_enqueues_the_body_as_it_is_with_cors_and_refuses_what_sqs_would() {
    let sink = Arc::new(Sink::default());
    let store = store(&endpoint(), "events").await;
    let base = format!("http://{}", serve(store.clone(), Some(sink.clone())).await);
    let event = r#"{"streamId":"x","sessionId":"a","type":"start","ts":1}"#;
    for content_type in ["application/json", "text/plain;charset=UTF-8"] {
        let (status, origin, body) =
            request("POST", format!("{base}/events"), Some(content_type), event).await;
        assert_eq!(status, 200, "{content_type}: {body}");
        assert!(body.contains("messageId"), "{body}");
        assert_eq!(origin.as_deref(), Some("https://player.example"));
    }
    assert_eq!(sink.0.lock().expect("sink").as_slice(), [event, event]);

    let (status, _, _) = request("POST", format!("{base}/events"), Some("image/png"), event).await;
    assert_eq!(status, 415);
    let (status, _, _) = request("POST", format!("{base}/events"), Some("text/plain"), "  ").await;
    assert_eq!(status, 400);

    // The read Lambda has no queue: players post to the deployment's ingest endpoint instead.
    let read_only = format!("http://{}", serve(store, None).await);
    let (status, _, body) = request(
        "POST",
        format!("{read_only}/events"),
        Some("text/plain"),
        event,
    )
    .await;
    assert_eq!(status, 404, "{body}");
}
