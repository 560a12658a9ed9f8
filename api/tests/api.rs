//! The API router in-process, as `livecount dev` and the read Lambda serve it: the status,
//! headers and body of every answer a dashboard, a tool or the audience can get.

// Test helpers: a failed step is a failed test.
#![allow(clippy::expect_used)]

use livecount_api::{ApiState, EventSink, PUBLIC_HEADER, router};
use livecount_core::{Clock, Config, Store};
use livecount_tests::oracle::Oracle;
use livecount_tests::{Pipeline, call, event_body, event_body_with};
use std::sync::{Arc, Mutex};

/// Collects what `POST /api/events` enqueues.
#[derive(Default)]
struct Sink(Mutex<Vec<String>>);

impl EventSink for Sink {
    fn enqueue(&self, body: String) -> String {
        let mut bodies = self.0.lock().expect("sink");
        bodies.push(body);
        format!("message-{}", bodies.len())
    }
}

fn api(p: &Pipeline, events: Option<Arc<dyn EventSink>>) -> axum::Router {
    router(ApiState {
        store: p.store.clone(),
        clock: p.clock.clone(),
        events,
        breakdowns: p.config.breakdowns.clone(),
    })
}

fn header<'a>(answer: &'a livecount_tests::Answer, name: &str) -> Option<&'a str> {
    answer.headers.get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn a_stream_count_is_200_a_bad_id_400_an_unknown_path_404() {
    let p = Pipeline::new("api-reads").await;
    let app = api(&p, None);
    let answer = call(&app, "GET", "/api/streams/launch", &[], "").await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    assert_eq!(answer.json["streamId"], "launch");
    assert_eq!(answer.json["viewers"], 0);
    assert_eq!(header(&answer, "cache-control"), Some("no-store"));

    let answer = call(&app, "GET", "/api/streams/bad%23id", &[], "").await;
    assert_eq!(answer.status, 400);
    assert!(
        answer.json["error"]
            .as_str()
            .is_some_and(|e| e.contains("invalid stream id")),
        "{}",
        answer.json
    );
    assert_eq!(
        call(&app, "GET", "/api/nothing-here", &[], "").await.status,
        404
    );
    assert_eq!(call(&app, "GET", "/api/streams", &[], "").await.status, 200);
    p.cleanup().await;
}

/// The badge: the live count alone, cacheable by a CDN for a second, a weak `ETag` that
/// changes with the count and a `304` while it has not, CORS for any page.
#[tokio::test]
async fn the_badge_is_small_cacheable_and_answers_304_while_unchanged() {
    let mut p = Pipeline::new("api-badge").await;
    let app = api(&p, None);
    let path = "/api/streams/launch/viewers";
    let origin = [("origin", "https://fans.example")];
    let answer = call(&app, "GET", path, &origin, "").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json["viewers"], 0);
    assert_eq!(header(&answer, "cache-control"), Some("public, max-age=1"));
    assert_eq!(header(&answer, "etag"), Some("W/\"0\""));
    assert_eq!(header(&answer, "access-control-allow-origin"), Some("*"));

    let unchanged = call(&app, "GET", path, &[("if-none-match", "W/\"0\"")], "").await;
    assert_eq!(unchanged.status, 304);
    assert_eq!(header(&unchanged, "etag"), Some("W/\"0\""));

    let now = p.clock.now_ms();
    p.send(["a", "b"].map(|s| event_body("launch", s, "start", now)))
        .await;
    p.aggregate().await;
    let changed = call(&app, "GET", path, &[("if-none-match", "W/\"0\"")], "").await;
    assert_eq!(changed.status, 200);
    assert_eq!(changed.json["viewers"], 2);
    assert_eq!(header(&changed, "etag"), Some("W/\"2\""));
    assert!(
        serde_json::to_vec(&changed.json).expect("json").len() < 64,
        "{}",
        changed.json
    );

    let bad = call(&app, "GET", "/api/streams/a%23b/viewers", &[], "").await;
    assert_eq!(bad.status, 400);
    p.cleanup().await;
}

/// What the CDN forwards carries [`PUBLIC_HEADER`]: it gets the badge and nothing else.
#[tokio::test]
async fn the_public_gets_the_badge_and_nothing_else() {
    let p = Pipeline::new("api-public").await;
    let app = api(&p, None);
    let public = [(PUBLIC_HEADER, "1")];
    for path in ["/api/streams/launch", "/api/streams", "/", "/player"] {
        let answer = call(&app, "GET", path, &public, "").await;
        assert_eq!(answer.status, 404, "{path}");
    }
    let badge = call(&app, "GET", "/api/streams/launch/viewers", &public, "").await;
    assert_eq!(badge.status, 200);
    p.cleanup().await;
}

#[tokio::test]
async fn reads_are_503_while_dynamodb_is_down() {
    // Nothing listens on this port: every DynamoDB call fails at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead = format!("http://{}", closed.local_addr().expect("address"));
    drop(closed);
    let sdk = livecount_local::local_sdk_config(&dead).await;
    let store = Store::new(aws_sdk_dynamodb::Client::new(&sdk), &Config::default());
    let app = router(ApiState {
        store,
        clock: Clock::system(),
        events: None,
        breakdowns: Default::default(),
    });
    for path in [
        "/api/streams/launch",
        "/api/streams",
        "/api/streams/launch/viewers",
    ] {
        let answer = call(&app, "GET", path, &[], "").await;
        assert_eq!(answer.status, 503, "{path}: {}", answer.json);
        assert!(
            answer.json["error"]
                .as_str()
                .is_some_and(|e| e.contains("try again")),
            "{}",
            answer.json
        );
    }
}

#[tokio::test]
async fn post_api_events_enqueues_each_message_or_names_the_bad_line() {
    let p = Pipeline::new("api-events").await;
    let sink = Arc::new(Sink::default());
    let app = api(&p, Some(sink.clone()));
    let event = r#"{"streamId":"x","sessionId":"a","type":"start","ts":1}"#;
    let answer = call(
        &app,
        "POST",
        "/api/events",
        &[],
        format!("{event}\n{event}"),
    )
    .await;
    assert_eq!(answer.status, 202, "{}", answer.json);
    assert_eq!(answer.json["accepted"], 2);
    assert_eq!(sink.0.lock().expect("sink").as_slice(), [event, event]);

    let answer = call(&app, "POST", "/api/events", &[], "{\"streamId\":\"x\"}").await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json["error"], "line 1: `sessionId` is missing");

    // The read Lambda has no queue: players post to the deployment's edge instead.
    let read_only = api(&p, None);
    assert_eq!(
        call(&read_only, "POST", "/api/events", &[], event)
            .await
            .status,
        404
    );
    p.cleanup().await;
}

/// The stream list comes in pages of at most 100 (one `Scan` request each), every stream on
/// exactly one page; it is for IAM callers (the CDN's requests get 404, above).
#[tokio::test]
async fn the_stream_list_comes_in_pages_that_hold_every_stream_once() {
    let mut p = Pipeline::new("api-pages").await;
    let app = api(&p, None);
    let now = p.clock.now_ms();
    let streams: Vec<String> = (0..7).map(|i| format!("stream-{i}")).collect();
    p.send(
        streams
            .iter()
            .map(|s| event_body(s, "viewer", "start", now)),
    )
    .await;
    p.aggregate().await;
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &after {
            Some(a) => format!("/api/streams?limit=3&after={a}"),
            None => "/api/streams?limit=3".to_owned(),
        };
        let answer = call(&app, "GET", &path, &[], "").await;
        assert_eq!(answer.status, 200, "{}", answer.json);
        assert_eq!(header(&answer, "cache-control"), Some("private, max-age=5"));
        let page = answer.json["streams"].as_array().expect("streams").clone();
        assert!(page.len() <= 3, "{page:?}");
        seen.extend(
            page.iter()
                .map(|s| s["streamId"].as_str().expect("id").to_owned()),
        );
        pages += 1;
        match answer.json["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, streams, "every stream once");
    assert!(pages >= 3);
    for bad in ["limit=0", "limit=101", "after=a%23b"] {
        let answer = call(&app, "GET", &format!("/api/streams?{bad}"), &[], "").await;
        assert_eq!(answer.status, 400, "{bad}: {}", answer.json);
    }
    p.cleanup().await;
}

/// A stream's summary and history, as JSON and as CSV: five viewers for half a minute, two of
/// them for a minute more, every figure the oracle's; bad parameters are 400s naming what is
/// wrong; the public gets neither.
#[tokio::test]
async fn summary_and_history_are_the_oracles_in_json_and_csv() {
    let mut p = Pipeline::new("api-figures").await;
    let mut oracle = Oracle::new(p.config.timing);
    let first = p.clock.now_seconds();
    for step in 0..18 {
        let kind = if step == 0 { "start" } else { "heartbeat" };
        let viewers = if step < 6 { 5 } else { 2 };
        let now = p.clock.now_ms();
        // Five sessions of three viewers (`userId`s u0, u1, u2).
        let user = |i: i32| serde_json::json!(format!("u{}", i % 3));
        let bodies: Vec<String> = (0..viewers)
            .map(|i| {
                let fields = [("userId", user(i))];
                event_body_with("launch", &format!("v{i}"), kind, now, &fields)
            })
            .collect();
        for body in &bodies {
            oracle.deliver_body(body, now);
        }
        let stops: Vec<String> = (viewers..5)
            .filter(|_| step == 6)
            .map(|i| event_body("launch", &format!("v{i}"), "stop", now))
            .collect();
        for body in &stops {
            oracle.deliver_body(body, now);
        }
        p.send(bodies.into_iter().chain(stops)).await;
        p.aggregate().await;
        p.clock.advance_ms(5_000);
    }
    p.clock.advance_ms(30_000);
    let now = p.clock.now_seconds();
    let last = now - 10;
    let expected = oracle.figures("launch", first..=last);
    assert_eq!(expected.peak, 5);
    let app = api(&p, None);

    let summary = call(&app, "GET", "/api/streams/launch/summary", &[], "").await;
    assert_eq!(summary.status, 200, "{}", summary.json);
    let json = &summary.json;
    assert_eq!(json["through"], last);
    assert_eq!(json["peak"], expected.peak);
    assert_eq!(json["peakAt"], serde_json::json!(expected.peak_at));
    assert_eq!(json["viewerSeconds"], expected.viewer_seconds);
    assert_eq!(json["firstAt"], serde_json::json!(expected.first_at));
    assert_eq!(json["lastAt"], serde_json::json!(expected.last_at));
    assert_eq!(json["missedSeconds"], 0);
    assert_eq!(expected.sessions_started, 5);
    assert_eq!(json["sessionsStarted"], expected.sessions_started);
    assert_eq!(expected.unique_viewers, 3);
    assert_eq!(json["uniqueViewers"], expected.unique_viewers);
    let span = expected.last_at.unwrap_or(0) - expected.first_at.unwrap_or(0) + 1;
    let average = expected.viewer_seconds as f64 / span as f64;
    assert!((json["averageViewers"].as_f64().unwrap_or(0.0) - average).abs() < 1e-9);

    let path = format!("/api/streams/launch/history?from={}&to={}", first - 60, now);
    let history = call(&app, "GET", &path, &[], "").await;
    assert_eq!(history.status, 200, "{}", history.json);
    let minutes = history.json["minutes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let shown: Vec<(i64, u64, u64)> = minutes
        .iter()
        .map(|m| {
            let n = |k: &str| m[k].as_u64().unwrap_or(u64::MAX);
            (
                m["minute"].as_i64().unwrap_or(0),
                n("highest"),
                n("viewerSeconds"),
            )
        })
        .filter(|(_, highest, _)| *highest > 0)
        .collect();
    let wanted: Vec<(i64, u64, u64)> = expected
        .minutes
        .iter()
        .filter(|(_, (highest, _))| *highest > 0)
        .map(|(&m, &(highest, seconds))| (m, highest, seconds))
        .collect();
    assert_eq!(
        shown, wanted,
        "minutes with viewers: (minute, highest, viewer-seconds)"
    );
    let started: std::collections::BTreeMap<i64, u64> = minutes
        .iter()
        .filter(|m| m["sessionsStarted"].as_u64() != Some(0))
        .map(|m| {
            let minute = m["minute"].as_i64().unwrap_or(0);
            (minute, m["sessionsStarted"].as_u64().unwrap_or(u64::MAX))
        })
        .collect();
    assert_eq!(
        started, expected.sessions_by_minute,
        "sessions started by minute"
    );

    let csv = call(&app, "GET", &format!("{path}&format=csv"), &[], "").await;
    assert_eq!(csv.status, 200);
    assert_eq!(
        header(&csv, "content-type"),
        Some("text/csv; charset=utf-8")
    );
    let mut lines = csv.text.lines();
    assert_eq!(
        lines.next(),
        Some("minute,highest,average,viewer_seconds,viewer_minutes,seconds,sessions_started")
    );
    assert_eq!(lines.count(), minutes.len(), "one row per minute");
    let by_accept = call(&app, "GET", &path, &[("accept", "text/csv")], "").await;
    assert_eq!(by_accept.text, csv.text);
    let summary_csv = call(
        &app,
        "GET",
        "/api/streams/launch/summary?format=csv",
        &[],
        "",
    )
    .await;
    assert!(
        summary_csv
            .text
            .starts_with("stream_id,through,peak,peak_at,viewer_seconds,"),
        "{}",
        summary_csv.text
    );
    assert!(
        summary_csv
            .text
            .contains(",sessions_started,unique_viewers,"),
        "{}",
        summary_csv.text
    );

    for (query, named) in [
        ("format=xml", "format"),
        ("from=yesterday", "from"),
        ("from=100&to=100", "before"),
        ("from=0&to=3456000", "744 hours"),
    ] {
        let path = format!("/api/streams/launch/history?{query}");
        let answer = call(&app, "GET", &path, &[], "").await;
        assert_eq!(answer.status, 400, "{query}");
        let error = answer.json["error"].as_str().unwrap_or_default();
        assert!(error.contains(named), "{query}: {error}");
    }
    for path in ["/api/streams/launch/summary", "/api/streams/launch/history"] {
        let answer = call(&app, "GET", path, &[(PUBLIC_HEADER, "1")], "").await;
        assert_eq!(answer.status, 404, "{path}");
    }
    p.cleanup().await;
}

/// A stream broken down by device: `/breakdown` gives each value's viewers (listed values,
/// `other` and `none`) adding up to the stream's, a value's history is the history of its own
/// stream, and a dimension or value the deployment does not break down by is a 400 naming it.
#[tokio::test]
async fn a_breakdown_gives_each_values_viewers_and_history() {
    let options = livecount_tests::PipelineOptions {
        breakdowns: livecount_core::breakdown::Breakdowns::parse("device=web,tv").expect("valid"),
        ..livecount_tests::PipelineOptions::default()
    };
    let mut p = Pipeline::with_options("api-breakdown", options).await;
    let devices = [Some("web"), Some("web"), Some("tv"), Some("fridge"), None];
    let first = p.clock.now_seconds();
    for step in 0..4 {
        let kind = if step == 0 { "start" } else { "heartbeat" };
        let now = p.clock.now_ms();
        let bodies = devices.iter().enumerate().map(|(i, device)| {
            let device = device.map_or(serde_json::Value::Null, Into::into);
            let session = format!("v{i}");
            livecount_tests::event_body_with("show", &session, kind, now, &[("device", device)])
        });
        p.send(bodies).await;
        p.aggregate().await;
        p.clock.advance_ms(5_000);
    }
    let app = api(&p, None);
    let answer = call(&app, "GET", "/api/streams/show/breakdown", &[], "").await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    assert_eq!(answer.json["viewers"], 5);
    let values: Vec<(String, u64)> = answer.json["dimensions"][0]["values"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|v| {
            let name = v["value"].as_str().unwrap_or_default().to_owned();
            (name, v["viewers"].as_u64().unwrap_or(u64::MAX))
        })
        .collect();
    let expected = [("web", 2), ("tv", 1), ("other", 1), ("none", 1)];
    let expected: Vec<(String, u64)> = expected.map(|(v, n)| (v.to_owned(), n)).to_vec();
    assert_eq!(answer.json["dimensions"][0]["dimension"], "device");
    assert_eq!(values, expected);

    let path = format!(
        "/api/streams/show/history?from={}&to={}&dimension=device&value=web",
        first - 60,
        p.clock.now_seconds()
    );
    let history = call(&app, "GET", &path, &[], "").await;
    assert_eq!(history.status, 200, "{}", history.json);
    let highest = history.json["minutes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|m| m["highest"].as_u64())
        .max();
    assert_eq!(highest, Some(2), "web's own history");
    for (query, named) in [
        ("dimension=colour&value=red", "broken down by: device"),
        ("dimension=device&value=fridge", "web, tv, other, none"),
        ("dimension=device", "go together"),
    ] {
        let path = format!("/api/streams/show/history?{query}");
        let answer = call(&app, "GET", &path, &[], "").await;
        assert_eq!(answer.status, 400, "{query}");
        let message = answer.json["error"].as_str().unwrap_or_default();
        assert!(message.contains(named), "{query}: {message}");
    }
    p.cleanup().await;
}
