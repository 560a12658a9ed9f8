//! # livecount-tests
//!
//! The one test kit of livecount: the integration tests (`tests/pipeline/`), the CLI and API
//! tests and the benchmarks take their DynamoDB endpoint ([`dynamodb_endpoint`]), unique names
//! ([`unique_name`]), audiences ([`Crowd`]), oracle, fault injection and fixtures from here.
//! Every [`Pipeline`] gets its own uniquely named tables in the DynamoDB Local that `make test`
//! starts, and drives the real ingest and aggregate handlers, the real stream poller and the
//! one-GetItem read.
//!
//! Time is a [`Clock`] the test sets, so a minute of heartbeats runs in seconds; expiry still
//! comes from each message's `SentTimestamp`, exactly as on AWS.
//!
//! Stream delivery is as harsh as AWS by default: the poller splits DynamoDB Local's one shard
//! into [`HARSH_VIRTUAL_SHARDS`] virtual shards of [`HARSH_PARALLELIZATION`] lanes each, which keep the
//! order of each item's records only and finish in random order.

// A test harness: a failed setup step is a failed test, said with its reason.
#![allow(clippy::expect_used)]

pub mod audience;
pub mod faults;
pub mod http_cache;
pub mod oracle;

pub use audience::{Crowd, Player, PlayerState};
pub mod recorder;

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use lambda_runtime::{Context, LambdaEvent};
use livecount_aggregate::{AggregateReport, Aggregator};
use livecount_core::histogram::HISTORY_LAG_SECONDS;
use livecount_core::ids::{SessionId, StreamId};
use livecount_core::token::TokenSecret;
use livecount_core::{Clock, Config, Store, Timing, viewers_now};
use livecount_ingest::{Ingest, IngestReport, tokens as ingest_tokens};
use livecount_local::{PollReport, PollerConfig, StreamPoller};
use oracle::Figures;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Virtual shards (K) every test pipeline splits the one stream shard of DynamoDB Local into.
pub const HARSH_VIRTUAL_SHARDS: u32 = 4;

/// Concurrent lanes per virtual shard every test pipeline runs (PF).
pub const HARSH_PARALLELIZATION: u32 = 4;

/// One isolated pipeline: its own tables, handlers, poller and clock.
pub struct Pipeline {
    pub config: Config,
    pub store: Store,
    pub ingest: Ingest,
    pub aggregator: Aggregator,
    pub poller: StreamPoller,
    pub clock: Clock,
    next_message: AtomicU64,
}

/// How a test pipeline is built.
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    pub timing: Timing,
    /// An interceptor on the handlers' DynamoDB client.
    pub faults: Option<faults::Faults>,
    /// Records the DynamoDB operations the handlers and the read call.
    pub recorder: Option<recorder::Recorder>,
    /// The SDK's attempts per call (its default is 3).
    pub sdk_max_attempts: Option<u32>,
    /// Failed deliveries of one stream batch before the poller gives up on it.
    pub poller_max_retries: u32,
    /// A DynamoDB endpoint other than `AWS_ENDPOINT_URL_DYNAMODB`.
    pub endpoint: Option<String>,
    /// Virtual shards (K) and lanes per shard (PF) of the poller.
    pub virtual_shards: u32,
    pub parallelization_factor: u32,
    /// `S`, the sessions-table shards per stream.
    pub session_shards: u32,
    /// Lambda's `BisectBatchOnFunctionError` in the poller (the deployments leave it off).
    pub bisect_on_error: bool,
    /// TTL turned on for every table, as deployed. Tests of fixtures dated in the past turn it
    /// off: DynamoDB Local's sweep runs on the real clock, so it would delete what they write,
    /// whenever it happens to pass.
    pub ttl: bool,
    /// `LIVECOUNT_BREAKDOWNS` (none by default).
    pub breakdowns: livecount_core::breakdown::Breakdowns,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        Self {
            timing: Timing::default(),
            faults: None,
            recorder: None,
            sdk_max_attempts: None,
            poller_max_retries: PollerConfig::default().mapping.max_retries,
            endpoint: None,
            virtual_shards: HARSH_VIRTUAL_SHARDS,
            parallelization_factor: HARSH_PARALLELIZATION,
            session_shards: Config::default().session_shards,
            bisect_on_error: false,
            ttl: true,
            breakdowns: Default::default(),
        }
    }
}

/// The endpoint of the DynamoDB Local that `make test` (or `make bench`) started.
pub fn dynamodb_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL_DYNAMODB").unwrap_or_else(|_| {
        panic!("AWS_ENDPOINT_URL_DYNAMODB is not set: run with `make test`, which starts DynamoDB Local")
    })
}

/// A name no other test of this run (of any test binary) uses: for tables and streams.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst),
        fastrand::u32(..)
    )
}

/// Where `make test` installed DynamoDB Local (`LIVECOUNT_DYNAMODB_LOCAL_DIR`, else `.local/`).
pub fn dynamodb_local_install_dir() -> std::path::PathBuf {
    livecount_local::dynamodb_local::repository_install_dir()
}

/// A DynamoDB Local of the test's own, for tests that must not share its process (a restart)
/// or its TTL sweep (which scans every TTL-enabled table of the process, so its lag grows with
/// what the other tests hold).
pub async fn own_dynamodb_local(
    storage: &livecount_local::dynamodb_local::Storage,
) -> livecount_local::dynamodb_local::DynamoDbLocal {
    livecount_local::dynamodb_local::DynamoDbLocal::start_with(
        &dynamodb_local_install_dir(),
        0,
        storage,
    )
    .await
    .expect("start DynamoDB Local")
}

/// One answer of an in-process router.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: axum::http::HeaderMap,
    /// The body as JSON (`Null` if empty or not JSON).
    pub json: serde_json::Value,
    /// The body as text (lossy).
    pub text: String,
}

/// Sends one request to `router` in-process (no socket): `headers` as given, `body` as is.
pub async fn call(
    router: &axum::Router,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<axum::body::Body>,
) -> Answer {
    use tower::ServiceExt;
    let mut request = axum::http::Request::builder().method(method).uri(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(body.into()).expect("a request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("a body");
    Answer {
        status,
        headers,
        json: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// The edge's counters, as `GET /events/metrics` serves them (`livecount dev`, tests).
pub async fn edge_metrics(router: &axum::Router) -> std::collections::BTreeMap<String, u64> {
    let answer = call(router, "GET", "/events/metrics", &[], "").await;
    serde_json::from_value(answer.json).expect("the edge's counters")
}

/// The real wall clock, in epoch milliseconds, rounded down to a whole second.
pub fn wall_clock_second_ms() -> i64 {
    Clock::system().now_seconds() * 1000
}

impl Pipeline {
    /// A pipeline with the default timing and a manual clock at the current wall-clock second.
    pub async fn new(test: &str) -> Self {
        Self::with_options(test, PipelineOptions::default()).await
    }

    pub async fn with_timing(test: &str, timing: Timing) -> Self {
        Self::with_options(
            test,
            PipelineOptions {
                timing,
                ..PipelineOptions::default()
            },
        )
        .await
    }

    pub async fn with_options(test: &str, options: PipelineOptions) -> Self {
        let endpoint = options.endpoint.clone().unwrap_or_else(dynamodb_endpoint);
        let unique = unique_name(test);
        let config = Config {
            sessions_table: format!("sessions-{unique}"),
            counters_table: format!("counters-{unique}"),
            viewers_table: format!("viewers-{unique}"),
            timing: options.timing,
            session_shards: options.session_shards,
            breakdowns: options.breakdowns.clone(),
            ..Config::default()
        };
        let sdk = livecount_local::local_sdk_config(&endpoint).await;
        let mut client_config = aws_sdk_dynamodb::config::Builder::from(&sdk);
        if let Some(faults) = &options.faults {
            client_config = client_config.interceptor(faults.clone());
        }
        if let Some(recorder) = &options.recorder {
            client_config = client_config.interceptor(recorder.clone());
        }
        if let Some(attempts) = options.sdk_max_attempts {
            client_config = client_config.retry_config(
                aws_sdk_dynamodb::config::retry::RetryConfig::standard()
                    .with_max_attempts(attempts)
                    .with_initial_backoff(Duration::from_millis(5)),
            );
        }
        let store = Store::new(
            aws_sdk_dynamodb::Client::from_conf(client_config.build()),
            &config,
        );
        if options.ttl {
            livecount_core::admin::TableAdmin::of(&store)
                .create_tables()
                .await
                .expect("create tables");
        } else {
            for (table, with_stream) in [
                (&config.sessions_table, true),
                (&config.counters_table, false),
                (&config.viewers_table, false),
            ] {
                livecount_core::admin::TableAdmin::of(&store)
                    .create_key_table(table, with_stream)
                    .await
                    .expect("create a table");
            }
        }
        let stream_arn = livecount_core::admin::TableAdmin::of(&store)
            .sessions_stream_arn()
            .await
            .expect("stream ARN");
        let clock = Clock::manual(wall_clock_second_ms());
        let ingest = Ingest {
            clock: clock.clone(),
            ..Ingest::new(store.clone(), config.clone())
        };
        let aggregator = Aggregator::with_clock(store.clone(), config.clone(), clock.clone());
        let mut poller_config = PollerConfig {
            seed: fastrand::u64(..),
            ..PollerConfig::harsh(options.virtual_shards, options.parallelization_factor)
        };
        poller_config.mapping.max_retries = options.poller_max_retries;
        poller_config.mapping.bisect_on_error = options.bisect_on_error;
        let poller = StreamPoller::new(
            livecount_local::streams_client(&sdk),
            stream_arn,
            poller_config,
        );
        Self {
            config,
            store,
            ingest,
            aggregator,
            poller,
            clock,
            next_message: AtomicU64::new(0),
        }
    }

    /// The public edge over this pipeline's store and clock; with `secret`, only signed
    /// sessions count.
    pub fn edge(&self, secret: Option<TokenSecret>) -> livecount_edge::Edge {
        let ingest = Ingest {
            tokens: secret.map(ingest_tokens::Tokens::fixed),
            ..self.ingest.clone()
        };
        livecount_edge::Edge {
            serve_metrics: true,
            ..livecount_edge::Edge::new(ingest, vec!["*".to_owned()])
        }
    }

    /// Moves the manual clock a day ahead of the wall clock. DynamoDB Local's TTL sweep uses the
    /// real clock, so a simulation that could fall behind real time would see rows it still
    /// considers live deleted under it; a day ahead, nothing it writes expires during the test.
    pub fn run_ahead_of_ttl(&self) {
        self.clock.advance_ms(86_400_000);
    }

    /// An SQS message as Lambda delivers it, sent (`SentTimestamp`) at `sent_ms`.
    pub fn message(&self, body: impl Into<String>, sent_ms: i64) -> SqsMessage {
        let n = self.next_message.fetch_add(1, Ordering::SeqCst);
        livecount_local::lambda_events::sqs_message(
            &format!("msg-{n:06}"),
            &body.into(),
            sent_ms,
            1,
            &Default::default(),
        )
    }

    /// A message sent now (on the pipeline's clock).
    pub fn message_now(&self, body: impl Into<String>) -> SqsMessage {
        self.message(body, self.clock.now_ms())
    }

    /// Runs the ingest handler's algorithm on one batch.
    pub async fn ingest(&self, messages: &[SqsMessage]) -> IngestReport {
        self.ingest
            .process(messages)
            .await
            .expect("every message has an id")
    }

    /// Sends `bodies` now, one message each, in one ingest batch, which must accept them all.
    pub async fn send(&self, bodies: impl IntoIterator<Item = String>) -> IngestReport {
        let messages: Vec<_> = bodies.into_iter().map(|b| self.message_now(b)).collect();
        let report = self.ingest(&messages).await;
        assert!(
            report.invalid.is_empty() && report.failed.is_empty(),
            "{report:?}"
        );
        report
    }

    /// Runs the ingest Lambda handler itself on one batch.
    pub async fn ingest_handler(&self, messages: Vec<SqsMessage>) -> SqsBatchResponse {
        let mut event = SqsEvent::default();
        event.records = messages;
        livecount_ingest::handler(&self.ingest, LambdaEvent::new(event, Context::default()))
            .await
            .expect("ingest handler")
    }

    /// Delivers everything the stream holds now to the aggregate handler.
    pub async fn aggregate(&mut self) -> PollReport {
        let aggregator = &self.aggregator;
        let handler = async |event: Event| aggregate_handler(aggregator, event).await;
        self.poller.drain(&handler).await.expect("stream poll")
    }

    /// Publishes the history of every second up to now for `streams`, as their next records
    /// would: advances the clock by [`HISTORY_LAG_SECONDS`] and updates each stream's counter
    /// with the start of a probe session (received after every second it publishes). Returns
    /// the last second published (the clock's second before the call).
    pub async fn publish_history(&mut self, streams: &[&str]) -> i64 {
        let last = self.clock.now_seconds();
        self.clock.advance_ms(HISTORY_LAG_SECONDS * 1000);
        let now = self.clock.now_ms();
        self.send(
            streams
                .iter()
                .map(|stream| event_body(stream, "history-probe", "start", now)),
        )
        .await;
        self.aggregate().await;
        last
    }

    /// Holds `stream`'s figures, as a reader at the pipeline's clock gets them (the summary and
    /// the history of the minutes from `from`'s to `last`'s), to `expected` (the oracle's over
    /// `from ..= last`), and checks no second was missed.
    pub async fn assert_figures(&self, stream: &str, expected: &Figures, from: i64, last: i64) {
        let now = self.clock.now_seconds();
        let stream_id = self::stream(stream);
        let summary = livecount_core::read::summary(&self.store, &stream_id, now)
            .await
            .expect("summary");
        assert_eq!(summary.through, last, "stream {stream}: counted through");
        assert_eq!(summary.peak, expected.peak, "stream {stream}: peak");
        if expected.peak > 0 {
            assert_eq!(summary.peak_at, expected.peak_at, "stream {stream}: peakAt");
        }
        assert_eq!(
            summary.viewer_seconds, expected.viewer_seconds,
            "stream {stream}: watch time"
        );
        assert_eq!(
            (summary.first_at, summary.last_at),
            (expected.first_at, expected.last_at),
            "stream {stream}: first and last second with a viewer"
        );
        assert_eq!(summary.missed_seconds, 0, "stream {stream}: missed seconds");
        assert_eq!(
            summary.sessions_started, expected.sessions_started,
            "stream {stream}: sessions started"
        );
        assert_eq!(
            summary.unique_viewers, expected.unique_viewers,
            "stream {stream}: unique viewers"
        );
        let first_minute = from - from.rem_euclid(60);
        let rows =
            livecount_core::read::history(&self.store, &stream_id, first_minute, last + 1, now)
                .await
                .expect("history");
        for row in &rows {
            let (highest, seconds) = expected
                .minutes
                .get(&row.minute)
                .copied()
                .unwrap_or_default();
            assert_eq!(
                (row.highest, row.viewer_seconds),
                (highest, seconds),
                "stream {stream}: minute {} (highest, viewer-seconds)",
                row.minute
            );
        }
        // Each minute's sessions started add up to the stream's (the minute a session starts in
        // is its first write's, which delivery in any order may change).
        let by_minute: u64 = rows.iter().map(|r| r.sessions_started).sum();
        assert_eq!(
            by_minute, summary.sessions_started,
            "stream {stream}: sessions started by minute"
        );
        for (minute, (highest, _)) in &expected.minutes {
            if *highest > 0 {
                assert!(
                    rows.iter().any(|r| r.minute == *minute),
                    "stream {stream}: minute {minute} had viewers and is not in the history"
                );
            }
        }
    }

    /// Runs the aggregator on one batch of records the test holds.
    pub async fn aggregate_batch(&self, event: &Event) -> AggregateReport {
        self.aggregator.process(&event.records).await
    }

    /// The one-GetItem read at the pipeline's clock.
    pub async fn viewers(&self, stream_id: &str) -> u64 {
        self.viewers_at(stream_id, self.clock.now_seconds()).await
    }

    pub async fn viewers_at(&self, stream_id: &str, now: i64) -> u64 {
        viewers_now(&self.store, &stream(stream_id), now)
            .await
            .expect("read")
    }

    /// Items in the sessions table (a Scan: for assertions only).
    pub async fn session_rows(&self) -> usize {
        let mut rows = 0;
        let mut start = None;
        loop {
            let page = self
                .store
                .client()
                .scan()
                .table_name(&self.config.sessions_table)
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("scan");
            rows += page.items.map_or(0, |i| i.len());
            start = page.last_evaluated_key;
            if start.is_none() {
                return rows;
            }
        }
    }

    /// Deletes the test's tables.
    pub async fn cleanup(&self) {
        let _ = livecount_core::admin::TableAdmin::of(&self.store)
            .delete_tables()
            .await;
    }
}

/// A stream id a test names (it must be a valid one).
pub fn stream(id: &str) -> StreamId {
    StreamId::parse(id).expect("a valid stream id")
}

/// A session id a test names (it must be a valid one).
pub fn session(id: &str) -> SessionId {
    SessionId::parse(id).expect("a valid session id")
}

/// The aggregate Lambda handler, called as Lambda calls it.
pub async fn aggregate_handler(
    aggregator: &Aggregator,
    event: Event,
) -> Result<DynamoDbEventResponse, livecount_aggregate::AggregateError> {
    livecount_aggregate::handler(aggregator, LambdaEvent::new(event, Context::default())).await
}

/// Every stream record handed to the aggregate handler, counted by `eventID`, so a test can
/// show that records really were delivered again.
#[derive(Debug, Default)]
pub struct Deliveries {
    records: std::sync::Mutex<std::collections::HashMap<String, u64>>,
}

impl Deliveries {
    /// Notes every record of a batch about to be delivered.
    pub fn note(&self, event: &Event, timing: &Timing) {
        let mut records = self.records.lock().expect("deliveries");
        for record in &event.records {
            let Ok(moved) = livecount_aggregate::session_move(record, timing) else {
                continue;
            };
            *records.entry(moved.record_id).or_default() += 1;
        }
    }

    /// Records handed over more than once.
    pub fn redelivered(&self) -> u64 {
        let records = self.records.lock().expect("deliveries");
        records.values().map(|times| times - 1).sum()
    }
}

/// A player event body.
pub fn event_body(stream_id: &str, session_id: &str, kind: &str, ts: i64) -> String {
    event_body_with(stream_id, session_id, kind, ts, &[])
}

/// A player event body with more fields (`seq`, `token`, …); a `null` value leaves its field out.
pub fn event_body_with(
    stream_id: &str,
    session_id: &str,
    kind: &str,
    ts: i64,
    fields: &[(&str, serde_json::Value)],
) -> String {
    let mut event = json!({"streamId": stream_id, "sessionId": session_id, "type": kind, "ts": ts});
    for (name, value) in fields {
        if !value.is_null() {
            event[*name] = value.clone();
        }
    }
    event.to_string()
}

/// Polls `condition` until it holds or `deadline` passes; returns whether it held. The one wait
/// of the tests (the pipeline's, the CLI's, the Lambda contract test's and the kit's own, such as
/// [`http_cache::HttpCache::start`]): no test sleeps to let something happen. It asks again
/// after 10 ms, then twice as long each time, at most every 500 ms.
pub async fn wait_for<F, Fut>(deadline: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let end = Instant::now() + deadline;
    let mut pause = Duration::from_millis(10);
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// Waits (with [`wait_for`]) until something listens on `127.0.0.1:port`, at most `deadline`.
pub async fn wait_for_port(port: u16, deadline: Duration) -> bool {
    wait_for(deadline, || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
    })
    .await
}
