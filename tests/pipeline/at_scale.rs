//! What AWS does that DynamoDB Local alone does not: lanes that commit in any order, hundreds of
//! sessions shards and thousands of records in one batch, requests DynamoDB rejects, and
//! streams that run for a week.

// Test helpers outside #[test] functions: a failed step is a failed test.
#![allow(clippy::expect_used)]

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_sdk_dynamodb::types::{ReturnConsumedCapacity, ReturnValue};
use livecount_core::EventKind;
use livecount_core::capacity::item_size;
use livecount_core::figures::{HOUR_SECONDS, hour_of};
use livecount_core::histogram::{CounterRequest, Fingerprint, Receipt, ReceiptKey, ReceiptWrite};
use livecount_core::model::ItemKey;
use livecount_core::requests::{
    Item, UpdateRequest, counter_request, hour_request, lifetime_request,
};
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

async fn measured_update(p: &Pipeline, update: UpdateRequest) -> f64 {
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

/// One stream through seven days on the manual clock, its viewers heartbeating and changing
/// every ten minutes (falling silent in between): at every simulated hour the live counter item
/// is at most 1 KB, an update of it costs one write unit and a read half a read unit (as
/// DynamoDB Local reports them); the hour just completed has an item of at most 2 KB whose
/// write costs its size in units, the lifetime item is at most 1 KB and a write of it one unit;
/// no second is missed, and the week's watch time and peak are the schedule's.
#[tokio::test]
async fn a_week_long_stream_keeps_every_item_within_its_bound() {
    let mut p = Pipeline::new("a-week").await;
    p.run_ahead_of_ttl();
    // Twenty minutes into an hour, whatever the wall clock says: each hourly check below then
    // finds the hour before it complete and watched (the first viewers arrive ten minutes on).
    let start = hour_of(p.clock.now_seconds()) + HOUR_SECONDS + 20 * 60;
    p.clock.set_ms(start * 1000);
    let stream = "s".repeat(128); // the longest stream id
    let stream_id = livecount_tests::stream(&stream);
    let sessions: Vec<String> = (0..12).map(|i| format!("{i:036}")).collect();
    let step_ms = 10 * 60_000;
    // Each step's heartbeats count from their receive second to their expiry, inclusive.
    let (mut expected_seconds, mut first_twelve) = (0, None);
    for step in 0..7 * 24 * 6 {
        p.clock.advance_ms(step_ms);
        let watching = &sessions[..4 + step % 9];
        let recv_ms = p.clock.now_ms();
        let exp = p.config.timing.expiry(EventKind::Heartbeat, recv_ms);
        expected_seconds += watching.len() as u64 * (exp - recv_ms.div_euclid(1000) + 1) as u64;
        if watching.len() == 12 {
            first_twelve.get_or_insert(recv_ms.div_euclid(1000));
        }
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
                new_sessions: vec![(now - now.rem_euclid(60), delta)],
                new_viewers: vec![(now - now.rem_euclid(60), delta)],
                prune: Vec::new(),
                prune_starts: Vec::new(),
                prune_new_sessions: Vec::new(),
                prune_new_viewers: Vec::new(),
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
            let update = counter_request(&p.config.counters_table, &request).expect("builds");
            let write = measured_update(&p, update).await;
            assert_eq!(write, 1.0, "hour {hour}: an update costs one write unit");
        }
        // The hour just completed and the lifetime item: their size, what a read and a
        // rewrite of them cost as DynamoDB Local reports it.
        let past = hour_of(now) - HOUR_SECONDS;
        let (hour_size, hour_read) = measured_read(&p, &ItemKey::hour(&stream_id, past)).await;
        let (life_size, life_read) = measured_read(&p, &ItemKey::lifetime(&stream_id)).await;
        assert!(hour_size > 0, "hour {hour}: the past hour has an item");
        assert!(
            hour_size <= 2048,
            "hour {hour}: hour item is {hour_size} bytes"
        );
        assert!(
            life_size <= 1024,
            "hour {hour}: lifetime item is {life_size} bytes"
        );
        assert_eq!((hour_read, life_read), (0.5, 0.5), "hour {hour}: reads");
        let hours = p
            .store
            .get_hours(&stream_id, past, past)
            .await
            .expect("read");
        let item = hours.first().expect("the past hour");
        assert_eq!(
            item.through,
            Some(past + HOUR_SECONDS - 1),
            "hour {hour}: complete"
        );
        let table = &p.config.counters_table;
        let rewrite = hour_request(table, &stream_id, item, item, now).expect("builds");
        let units = measured_update(&p, rewrite).await;
        assert_eq!(
            units,
            hour_size.div_ceil(1024) as f64,
            "hour {hour}: an hour write costs its size in write units"
        );
        let life = p
            .store
            .get_lifetime(&stream_id)
            .await
            .expect("read")
            .expect("an item");
        let rewrite = lifetime_request(table, &stream_id, &life, &life, now).expect("builds");
        assert_eq!(
            measured_update(&p, rewrite).await,
            1.0,
            "hour {hour}: a lifetime write"
        );
        assert_eq!(life.missed_seconds, 0, "hour {hour}: no second missed");
    }
    // Every second settled: the week's figures are the schedule's.
    p.clock.advance_ms(60_000);
    let summary = livecount_core::read::summary(&p.store, &stream_id, p.clock.now_seconds())
        .await
        .expect("summary");
    assert_eq!(
        summary.viewer_seconds, expected_seconds,
        "a week's watch time"
    );
    assert_eq!((summary.peak, summary.peak_at), (12, first_twelve), "peak");
    assert_eq!(summary.missed_seconds, 0);
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
