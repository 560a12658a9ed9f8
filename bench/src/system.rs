//! The local pipeline running in real time: freshness (enqueue → visible in a counter read) and
//! end-to-end throughput against raw `PutItem`s in the same run.

use crate::designs::Error;
use crate::read_cost::percentile;
use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_dynamodb::types::AttributeValue;
use futures::stream::{self, StreamExt};
use livecount_aggregate::Aggregator;
use livecount_core::ids::StreamId;
use livecount_core::{Clock, Config, Store, Timing, live_count};
use livecount_ingest::Ingest;
use livecount_local::poller::{PollerConfig, StreamPoller};
use livecount_local::queue::LocalQueue;
use livecount_local::trigger::queue::QueueMapping;
use livecount_local::trigger::stream::StreamMapping;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub struct Freshness {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub probes: usize,
    pub poll_interval_ms: u128,
}

/// Throughput end to end through the local pipeline, against raw `PutItem`s into the same table.
pub struct EndToEnd {
    pub events: u64,
    pub pipeline_events_per_s: f64,
    pub raw_puts_per_s: f64,
}

/// The handlers, the queue and counters of what went through.
pub struct Parts {
    pub store: Store,
    ingest: Ingest,
    aggregator: Aggregator,
    pub queue: LocalQueue,
    pub ingested: AtomicU64,
    pub written: AtomicU64,
    pub aggregated: AtomicU64,
}

async fn parts(
    sdk: &aws_config::SdkConfig,
    name: &str,
    queue_batch: usize,
) -> Result<(Parts, StreamPoller), Error> {
    let suffix = format!("{}-{}", std::process::id(), fastrand::u32(..));
    let config = Config {
        sessions_table: format!("bench-{name}-sessions-{suffix}"),
        counters_table: format!("bench-{name}-counters-{suffix}"),
        viewers_table: format!("bench-{name}-viewers-{suffix}"),
        timing: Timing {
            window_seconds: 600,
            ..Timing::default()
        },
        ..Config::default()
    };
    let store = Store::new(aws_sdk_dynamodb::Client::new(sdk), &config);
    livecount_core::admin::TableAdmin::of(&store)
        .create_tables()
        .await?;
    let poller = StreamPoller::new(
        livecount_local::streams_client(sdk),
        livecount_core::admin::TableAdmin::of(&store)
            .sessions_stream_arn()
            .await?,
        PollerConfig {
            // the pipeline's own latency: the deployed batching windows (1 s each) add to it
            mapping: StreamMapping {
                batching_window_ms: 0,
                ..StreamMapping::deployed()
            },
            ..PollerConfig::default()
        },
    );
    let parts = Parts {
        ingest: Ingest::new(store.clone(), config.clone()),
        aggregator: Aggregator::new(store.clone(), config),
        queue: LocalQueue::new(
            QueueMapping {
                batch_size: queue_batch,
                batching_window_ms: 0,
                ..QueueMapping::deployed()
            },
            Clock::system(),
        ),
        store,
        ingested: AtomicU64::new(0),
        written: AtomicU64::new(0),
        aggregated: AtomicU64::new(0),
    };
    Ok((parts, poller))
}

/// Runs the local queue and stream poller, with the real handlers, while `work` runs.
async fn with_pipeline<T>(parts: &Parts, poller: StreamPoller, work: impl Future<Output = T>) -> T {
    let stop = CancellationToken::new();
    let ingesting = async {
        let handler = async |event: SqsEvent| {
            let report = parts.ingest.process(&event.records).await?;
            parts
                .ingested
                .fetch_add(report.events as u64, Ordering::SeqCst);
            parts
                .written
                .fetch_add(report.applied as u64, Ordering::SeqCst);
            Ok::<_, livecount_ingest::IngestError>(report.batch_response(&event.records))
        };
        parts.queue.run(handler, stop.cancelled()).await;
    };
    let aggregating = async {
        let handler = async |event: Event| {
            let records = event.records.len() as u64;
            let response = parts.aggregator.process(&event.records).await.response;
            parts.aggregated.fetch_add(records, Ordering::SeqCst);
            Ok::<_, std::convert::Infallible>(response)
        };
        poller.run(handler, stop.cancelled()).await;
    };
    let working = async {
        let out = work.await;
        stop.cancel();
        out
    };
    let ((), (), out) = tokio::join!(ingesting, aggregating, working);
    out
}

/// Enqueues one `start` at a time and times how long until a counter read shows it.
pub async fn freshness(sdk: &aws_config::SdkConfig, probes: usize) -> Result<Freshness, Error> {
    let (parts, poller) = parts(sdk, "fresh", 10).await?;
    let fresh = StreamId::parse("fresh")?;
    let latencies = with_pipeline(&parts, poller, async {
        let mut latencies = Vec::new();
        for i in 0..probes {
            let body = serde_json::json!({"streamId": "fresh", "sessionId": format!("probe-{i}"), "type": "start",
                "ts": Clock::system().now_ms()})
            .to_string();
            let start = Instant::now();
            parts.queue.enqueue(body);
            loop {
                let now = Clock::system().now_seconds();
                if live_count(&parts.store, &fresh, now).await.is_ok_and(|c| c.viewers > i as u64) {
                    break;
                }
                if start.elapsed() > Duration::from_secs(30) {
                    return Err("a probe was not visible within 30 s");
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            latencies.push(start.elapsed().as_secs_f64() * 1000.0);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(latencies)
    })
    .await?;
    let _ = livecount_core::admin::TableAdmin::of(&parts.store)
        .delete_tables()
        .await;
    let mut latencies = latencies;
    Ok(Freshness {
        p50_ms: percentile(&mut latencies, 0.5),
        p99_ms: percentile(&mut latencies, 0.99),
        probes,
        poll_interval_ms: PollerConfig::default().poll_interval.as_millis(),
    })
}

/// `events` heartbeats (10 per session, 50 streams) in one burst through the local pipeline,
/// until every event is ingested and every stream record aggregated; then the same number of
/// plain `PutItem`s into the same sessions table with the same concurrency (16).
pub async fn throughput(sdk: &aws_config::SdkConfig, events: u64) -> Result<EndToEnd, Error> {
    let (parts, poller) = parts(sdk, "throughput", 100).await?;
    let sessions = events / 10;
    let elapsed = with_pipeline(&parts, poller, async {
        let start = Instant::now();
        let t0 = Clock::system().now_ms();
        for round in 0..10 {
            for s in 0..sessions {
                let kind = if round == 0 { "start" } else { "heartbeat" };
                let body = serde_json::json!({"streamId": format!("load-{}", s % 50), "sessionId": format!("load-session-{s}"),
                    "type": kind, "ts": t0 + round})
                .to_string();
                parts.queue.enqueue(body);
            }
        }
        while parts.ingested.load(Ordering::SeqCst) < events
            || parts.aggregated.load(Ordering::SeqCst) < parts.written.load(Ordering::SeqCst)
        {
            if start.elapsed() > Duration::from_secs(600) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        start.elapsed()
    })
    .await;
    // Raw writes go to the same sessions table (with its stream and TTL), so the ratio is the
    // pipeline's own overhead.
    let store = parts.store.clone();
    let table = store.sessions_table().to_owned();
    let client = store.client().clone();
    let start = Instant::now();
    let puts = stream::iter(0..events)
        .map(|i| {
            let client = client.clone();
            let table = table.clone();
            async move {
                client
                    .put_item()
                    .table_name(table)
                    .item("PK", AttributeValue::S(format!("raw-{}#0", i % 50)))
                    .item("SK", AttributeValue::S(format!("item-{i}")))
                    .item("expDate", AttributeValue::N("1700000000".to_owned()))
                    .send()
                    .await
                    .is_ok()
            }
        })
        .buffer_unordered(16)
        .filter(|ok| std::future::ready(*ok))
        .count()
        .await;
    let raw_elapsed = start.elapsed();
    let _ = livecount_core::admin::TableAdmin::of(&store)
        .delete_tables()
        .await;
    Ok(EndToEnd {
        events,
        pipeline_events_per_s: events as f64 / elapsed.as_secs_f64(),
        raw_puts_per_s: puts as f64 / raw_elapsed.as_secs_f64(),
    })
}
