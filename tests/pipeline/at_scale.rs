//! What AWS does that DynamoDB Local alone does not: lanes that commit in any order, hundreds of
//! sessions shards and thousands of records in one batch, requests DynamoDB rejects, and
//! streams that run for a week.

// Test helpers outside #[test] functions: a failed step is a failed test.
#![allow(clippy::expect_used)]

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_sdk_dynamodb::types::{ReturnConsumedCapacity, ReturnValue};
use livecount_core::capacity::item_size;
use livecount_core::histogram::{
    CounterRequest, Fingerprint, HISTORY_SECONDS, Receipt, ReceiptKey, ReceiptWrite, minute_of,
    oldest_published_second,
};
use livecount_core::model::ItemKey;
use livecount_core::requests::{Item, counter_request};
use livecount_tests::faults::{Fault, FaultPlan, Faults};
use livecount_tests::{Pipeline, PipelineOptions, event_body};
use serde_json::json;

fn session_of(record: &EventRecord) -> String {
    serde_dynamo::from_item::<_, ItemKey>(record.change.keys.clone())
        .map(|k| k.sk)
        .unwrap_or_default()
}

/// The next `count` records of the stream, as one list (a read returns at most 1,000).
async fn records(p: &mut Pipeline, count: usize) -> Vec<EventRecord> {
    let mut records = Vec::new();
    for _ in 0..count.div_ceil(1000) + 10 {
        let batches = p.poller.next_batches().await.expect("poll");
        records.extend(batches.into_iter().flat_map(|b| b.records));
        if records.len() >= count {
            break;
        }
    }
    assert_eq!(records.len(), count, "the stream holds the records written");
    records
}

fn batch(records: Vec<EventRecord>) -> Event {
    let mut event = Event::default();
    event.records = records;
    event
}

/// Ingests one event of each session, ten sessions to a message (players may batch), ten
/// messages to a batch.
async fn send_all(p: &Pipeline, stream: &str, sessions: &[String], kind: &str) {
    let now = p.clock.now_ms();
    let bodies: Vec<String> = sessions
        .chunks(10)
        .map(|chunk| {
            let events: Vec<serde_json::Value> = chunk
                .iter()
                .map(|s| json!({"streamId": stream, "sessionId": s, "type": kind, "ts": now}))
                .collect();
            serde_json::Value::Array(events).to_string()
        })
        .collect();
    for part in bodies.chunks(10) {
        p.send(part.to_vec()).await;
    }
}

/// The defect of sequence-number watermarks: 40 sessions of one stream, each round's records
/// delivered once, in two lanes split by session (each item's order kept), the later lane
/// committing first. Every round counts all 40.
#[tokio::test]
async fn a_later_lane_committing_first_never_hides_the_earlier_lanes_records() {
    let mut p = Pipeline::new("later-lane-first").await;
    p.run_ahead_of_ttl();
    let sessions: Vec<String> = (0..40).map(|i| format!("session-{i:02}")).collect();
    for round in 0..3 {
        p.clock.advance_ms(5_000);
        let kind = if round == 0 { "start" } else { "heartbeat" };
        send_all(&p, "st", &sessions, kind).await;
        let records = records(&mut p, 40).await;
        let (early, late): (Vec<_>, Vec<_>) = records
            .into_iter()
            .partition(|r| session_of(r).as_str() < "session-20");
        for lane in [late, early] {
            let report = p.aggregate_batch(&batch(lane)).await;
            assert_eq!(report.duplicates, 0, "round {round}: {report:?}");
        }
        assert_eq!(p.viewers("st").await, 40, "round {round}");
    }
    p.cleanup().await;
}

/// 2,000 sessions of one stream over S = 1,024 sessions shards, all their records in one batch:
/// every request stays inside DynamoDB's limits and the count is exact.
#[tokio::test]
async fn two_thousand_sessions_over_1024_shards_in_one_batch_count_exactly() {
    let options = PipelineOptions {
        session_shards: 1024,
        ..PipelineOptions::default()
    };
    let mut p = Pipeline::with_options("one-big-batch", options).await;
    p.run_ahead_of_ttl();
    let sessions: Vec<String> = (0..2000).map(|i| format!("viewer-{i:04}")).collect();
    send_all(&p, "big", &sessions, "start").await;
    let records = records(&mut p, 2000).await;
    let report = p.aggregate_batch(&batch(records)).await;
    assert!(
        report.response.batch_item_failures.is_empty() && report.not_applied == 0,
        "{report:?}"
    );
    assert_eq!(report.applied, 2000);
    assert_eq!(p.viewers("big").await, 2000);
    p.cleanup().await;
}

/// A counter update DynamoDB rejects as invalid is not retried as if transient: its records are
/// logged and counted as not applied, no batch item failure holds up the shard, and the other
/// streams of the batch are applied.
#[tokio::test]
async fn a_request_dynamodb_rejects_is_counted_and_not_retried() {
    let faults = Faults::new(9);
    let options = PipelineOptions {
        faults: Some(faults.clone()),
        ..PipelineOptions::default()
    };
    let mut p = Pipeline::with_options("rejected", options).await;
    p.run_ahead_of_ttl();
    let now = p.clock.now_ms();
    let messages: Vec<_> = ["bad", "good"]
        .into_iter()
        .flat_map(|stream| (0..3).map(move |i| (stream, i)))
        .map(|(stream, i)| {
            p.message_now(event_body(stream, &format!("{stream}-{i}"), "start", now))
        })
        .collect();
    p.ingest(&messages).await;
    faults.set(vec![FaultPlan {
        fault: Fault::Invalid,
        rate: 1.0,
        operation: "UpdateItem",
        table: p.config.counters_table.clone(),
        body_contains: Some("\"PK\":{\"S\":\"bad\"}"),
    }]);
    let records = records(&mut p, 6).await;
    let report = p.aggregate_batch(&batch(records)).await;
    assert!(report.response.batch_item_failures.is_empty(), "{report:?}");
    assert_eq!(report.not_applied, 3);
    assert_eq!(report.applied, 3);
    assert_eq!(faults.take_injected().len(), 1, "tried once, not retried");
    assert_eq!(p.viewers("good").await, 3);
    assert_eq!(p.viewers("bad").await, 0);
    p.cleanup().await;
}

/// The item and what one request costs, as DynamoDB Local reports it.
async fn measured_read(p: &Pipeline, key: &ItemKey) -> (usize, f64) {
    let output = p
        .store
        .client()
        .get_item()
        .table_name(&p.config.counters_table)
        .set_key(Some(serde_dynamo::to_item(key).expect("key")))
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .expect("read");
    let item: Item = output.item.unwrap_or_default();
    let units = output
        .consumed_capacity
        .and_then(|c| c.capacity_units)
        .expect("consumed capacity");
    (item_size(&item), units)
}

async fn measured_update(p: &Pipeline, request: &CounterRequest) -> f64 {
    let update = counter_request(&p.config.counters_table, request).expect("builds");
    let output = p
        .store
        .client()
        .update_item()
        .table_name(update.table)
        .set_key(Some(update.key))
        .update_expression(update.update)
        .set_condition_expression(update.condition)
        .set_expression_attribute_names(Some(update.names))
        .set_expression_attribute_values(Some(update.values))
        .return_values(ReturnValue::None)
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .expect("update");
    output
        .consumed_capacity
        .and_then(|c| c.capacity_units)
        .expect("consumed capacity")
}

/// One stream through seven days on the manual clock, its viewers heartbeating and changing:
/// at every simulated hour the live counter item is at most 1 KB, an update of it costs one
/// write unit and a read half a read unit (as DynamoDB Local reports them), and the history
/// item holds at most the hour before the oldest second an update publishes (the clock starts at
/// the wall-clock second, so where a minute begins varies from run to run).
#[tokio::test]
async fn a_week_long_stream_keeps_its_counter_within_one_kilobyte() {
    let mut p = Pipeline::new("a-week").await;
    p.run_ahead_of_ttl();
    let stream = "s".repeat(128); // the longest stream id
    let stream_id = livecount_tests::stream(&stream);
    let sessions: Vec<String> = (0..12).map(|i| format!("{i:036}")).collect();
    let step_ms = 10 * 60_000;
    for step in 0..7 * 24 * 6 {
        p.clock.advance_ms(step_ms);
        let watching = &sessions[..4 + step % 9];
        send_all(&p, &stream, watching, "heartbeat").await;
        p.aggregate().await;
        assert_eq!(
            p.viewers(&stream).await,
            watching.len() as u64,
            "step {step}"
        );
        if step % 6 != 5 {
            continue;
        }
        let hour = step / 6;
        let (size, read) = measured_read(&p, &ItemKey::live_counter(&stream_id)).await;
        assert!(size <= 1024, "hour {hour}: live counter is {size} bytes");
        assert_eq!(read, 0.5, "hour {hour}: a read costs half a unit");
        let now = p.clock.now_seconds();
        let bucket = now + 60;
        for (i, delta) in [1, -1].into_iter().enumerate() {
            let request = CounterRequest {
                stream_id: stream_id.clone(),
                deltas: vec![(bucket, delta)],
                starts: vec![(now, delta)],
                prune: Vec::new(),
                prune_starts: Vec::new(),
                remove_receipts: Vec::new(),
                receipt: Some(ReceiptWrite {
                    key: ReceiptKey::of_first_record(&format!("probe-{hour}-{i}")),
                    receipt: Receipt {
                        at: now,
                        records: 1,
                        fingerprint: Fingerprint(i as u64),
                    },
                    replaces: None,
                }),
                now,
                expires_at: p.config.counter_expiry(now),
            };
            let write = measured_update(&p, &request).await;
            assert_eq!(write, 1.0, "hour {hour}: an update costs one write unit");
        }
        let (history, _) = measured_read(&p, &ItemKey::history(&stream_id)).await;
        let minutes = p
            .store
            .get_history(&stream_id)
            .await
            .expect("read")
            .expect("a history item")
            .tallies
            .history;
        let oldest = minutes.keys().next().copied().unwrap_or(now);
        assert!(
            oldest >= minute_of(oldest_published_second(now)) - HISTORY_SECONDS,
            "hour {hour}: history reaches back {} s",
            now - oldest
        );
        assert!(
            history <= 2048,
            "hour {hour}: history item is {history} bytes"
        );
    }
    p.cleanup().await;
}

/// The parallelization factors CDK and Terraform accept (1 to 10), with and without virtual
/// shards: sessions starting, heartbeating and stopping count exactly after every round.
#[tokio::test]
async fn every_parallelization_factor_the_infrastructure_accepts_counts_exactly() {
    for (virtual_shards, parallelization_factor) in [(1, 1), (1, 10), (4, 10)] {
        let options = PipelineOptions {
            virtual_shards,
            parallelization_factor,
            ..PipelineOptions::default()
        };
        let mut p = Pipeline::with_options("parallelization", options).await;
        p.run_ahead_of_ttl();
        let sessions: Vec<String> = (0..30).map(|i| format!("pf-{i:02}")).collect();
        for round in 0..4 {
            p.clock.advance_ms(5_000);
            let (kind, watching) = match round {
                0 => ("start", 30),
                3 => ("stop", 0),
                _ => ("heartbeat", 30),
            };
            send_all(&p, "st", &sessions, kind).await;
            p.aggregate().await;
            assert_eq!(
                p.viewers("st").await,
                watching,
                "K = {virtual_shards}, PF = {parallelization_factor}, round {round}"
            );
        }
        p.cleanup().await;
    }
}
