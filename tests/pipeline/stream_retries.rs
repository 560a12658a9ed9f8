//! Every retry Lambda makes of a stream batch with the deployed settings (no bisecting, partial
//! batch responses, the aggregator naming the batch's first record), driven by the local
//! poller, which shapes retries as AWS's pages say: the counts and the peak stay exact. And why
//! the deployments do not bisect.

// Test helpers outside #[test] functions: a failed step is a failed test.
#![allow(clippy::expect_used)]

use aws_lambda_events::event::dynamodb::Event;
use livecount_core::EventKind;
use livecount_tests::faults::{Fault, FaultPlan, Faults};
use livecount_tests::{Pipeline, PipelineOptions, event_body};
use std::cell::Cell;

async fn five_sessions(p: &Pipeline, stream: &str) {
    let now = p.clock.now_ms();
    let messages: Vec<_> = (0..5)
        .map(|i| p.message_now(event_body(stream, &format!("s-{i}"), "start", now)))
        .collect();
    let report = p.ingest(&messages).await;
    assert_eq!(report.applied, 5);
}

/// Starts `a` viewers of stream "a" and `b` of stream "b", interleaved in the stream.
async fn start_two_streams(p: &Pipeline, a: usize, b: usize) {
    let now = p.clock.now_ms();
    let bodies = (0..a.max(b)).flat_map(|i| {
        let a = (i < a).then(|| event_body("a", &format!("a-{i:02}"), "start", now));
        let b = (i < b).then(|| event_body("b", &format!("b-{i:02}"), "start", now));
        a.into_iter().chain(b)
    });
    let report = p.send(bodies).await;
    assert_eq!(report.applied, a + b);
}

/// The peaks of streams "a" and "b", once the seconds up to now are published.
async fn peaks(p: &mut Pipeline) -> (u64, u64) {
    p.publish_history(&["a", "b"]).await;
    let mut peaks = [0; 2];
    for (peak, stream) in peaks.iter_mut().zip(["a", "b"]) {
        let stream_id = livecount_tests::stream(stream);
        let now = p.clock.now_seconds();
        let summary = livecount_core::read::summary(&p.store, &stream_id, now)
            .await
            .expect("read");
        *peak = summary.peak;
    }
    (peaks[0], peaks[1])
}

fn options(faults: Option<Faults>, lanes: u32, bisect: bool) -> PipelineOptions {
    PipelineOptions {
        faults,
        sdk_max_attempts: Some(1),
        virtual_shards: lanes,
        parallelization_factor: 1,
        bisect_on_error: bisect,
        ..PipelineOptions::default()
    }
}

/// The first case: the function dies after its counter updates went through (a timeout,
/// an out-of-memory), and Lambda retries the batch from its first record. 40 viewers stay 40,
/// with a peak of 40, not 80.
#[tokio::test]
async fn an_invocation_dying_after_its_updates_is_retried_without_a_double_count() {
    let p = &mut Pipeline::with_options("retry-function-error", options(None, 4, false)).await;
    start_two_streams(p, 40, 20).await;
    let (calls, recognised) = (Cell::new(0), Cell::new(0));
    let aggregator = &p.aggregator;
    let dying = async |event: Event| {
        calls.set(calls.get() + 1);
        let applied = aggregator.apply_until(&event.records, None).await;
        recognised.set(recognised.get() + applied.report.duplicates);
        if calls.get() <= 4 {
            return Err("the invocation died after its updates".to_owned());
        }
        Ok(aggregator.finish(applied, None).await.response)
    };
    let report = p.poller.drain(&dying).await.expect("poll");
    assert!(
        report.failed_deliveries >= 4 && recognised.get() > 0,
        "{report:?}"
    );
    assert_eq!((p.viewers("a").await, p.viewers("b").await), (40, 20));
    assert_eq!(peaks(p).await, (40, 20));
    p.cleanup().await;
}

/// The second case: another stream's counter update is throttled, so the batch is
/// retried, and the retry holds records of a stream that was applied, and more of its records
/// that arrived meanwhile. Both streams exact, both peaks exact.
#[tokio::test]
async fn a_retry_after_another_streams_throttle_applies_each_record_once() {
    let faults = Faults::new(3);
    let p =
        &mut Pipeline::with_options("retry-partial", options(Some(faults.clone()), 1, false)).await;
    start_two_streams(p, 20, 20).await;
    faults.set(vec![FaultPlan {
        fault: Fault::Throttle,
        rate: 1.0,
        operation: "UpdateItem",
        table: p.config.counters_table.clone(),
        body_contains: Some("\"PK\":{\"S\":\"b\"}"),
    }]);
    let first = p.poller.next_batches().await.expect("poll");
    assert_eq!(first.len(), 1, "one lane");
    let report = p.aggregate_batch(&first[0]).await;
    assert_eq!(report.failed_streams, vec!["b".to_owned()]);
    let first_record = first[0].records[0].change.sequence_number.clone();
    let reported: Vec<_> = report
        .response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(reported, vec![first_record], "the batch's first record");
    assert_eq!(p.viewers("a").await, 20);
    faults.set(Vec::new());
    // Lambda re-reads from the checkpoint: the same records, and five more viewers of "a".
    let now = p.clock.now_ms();
    let more = (20..25).map(|i| event_body("a", &format!("a-{i:02}"), "start", now));
    p.send(more).await;
    let mut retry = first[0].clone();
    let later = p.poller.next_batches().await.expect("poll");
    retry
        .records
        .extend(later.into_iter().flat_map(|b| b.records));
    assert_eq!(retry.records.len(), 45);
    let report = p.aggregate_batch(&retry).await;
    assert!(report.response.batch_item_failures.is_empty(), "{report:?}");
    assert_eq!((report.duplicates, report.applied), (20, 25));
    assert_eq!((p.viewers("a").await, p.viewers("b").await), (25, 20));
    assert_eq!(peaks(p).await, (25, 20));
    p.cleanup().await;
}

/// A counter update applied by DynamoDB whose answer was lost: the retry of the batch finds the
/// receipt and applies nothing again.
#[tokio::test]
async fn a_lost_counter_answer_is_recognised_on_the_retry() {
    let faults = Faults::new(4);
    let p =
        &mut Pipeline::with_options("retry-lost-answer", options(Some(faults.clone()), 1, false))
            .await;
    start_two_streams(p, 40, 0).await;
    faults.set(vec![FaultPlan {
        fault: Fault::LostResponse,
        rate: 1.0,
        operation: "UpdateItem",
        table: p.config.counters_table.clone(),
        body_contains: Some("\"ConditionExpression\":\"attribute_not_exists("),
    }]);
    let aggregator = &p.aggregator;
    let calls = Cell::new(0);
    let handler = async |event: Event| {
        calls.set(calls.get() + 1);
        if calls.get() > 1 {
            faults.set(Vec::new());
        }
        let report = aggregator.process(&event.records).await;
        Ok::<_, String>(report.response)
    };
    let report = p.poller.drain(&handler).await.expect("poll");
    assert_eq!(faults.take_injected().len(), 1, "one answer lost");
    assert_eq!(report.failed_deliveries, 1, "{report:?}");
    assert_eq!(p.viewers("a").await, 40);
    assert_eq!(peaks(p).await.0, 40);
    p.cleanup().await;
}

/// Why the deployments do not bisect: with `BisectBatchOnFunctionError`, the second half of a
/// failed batch begins with a record no receipt is named after, so a stream whose records
/// straddle the cut is applied twice in part, and its peak keeps that. (The aggregator reports
/// failures instead of failing, so with bisecting off every retry starts at the batch's first
/// record.)
#[tokio::test]
async fn a_bisected_retry_would_count_twice_which_is_why_nothing_bisects() {
    let p = &mut Pipeline::with_options("retry-bisected", options(None, 1, true)).await;
    start_two_streams(p, 40, 20).await;
    let aggregator = &p.aggregator;
    let calls = Cell::new(0);
    let dying_once = async |event: Event| {
        calls.set(calls.get() + 1);
        let applied = aggregator.apply_until(&event.records, None).await;
        if calls.get() == 1 {
            return Err("the invocation died after its updates".to_owned());
        }
        Ok(aggregator.finish(applied, None).await.response)
    };
    p.poller.drain(&dying_once).await.expect("poll");
    assert!(calls.get() >= 3, "the batch came back in halves");
    assert!(p.viewers("a").await > 40, "the second half counted again");
    assert!(peaks(p).await.0 > 40);
    p.cleanup().await;
}

/// Lambda may deliver a batch again even after it succeeded (at least once). Its receipts
/// were removed when it succeeded, so such a duplicate is applied again: one session per record
/// too many or too few, in buckets at most `W + B` after the record's receive time.
#[tokio::test]
async fn a_batch_delivered_again_after_it_succeeded_errs_by_one_per_record() {
    let p = &mut Pipeline::new("retry-same-batch").await;
    five_sessions(p, "st").await;
    let batches = p.poller.next_batches().await.expect("poll");
    let records: usize = batches.iter().map(|b| b.records.len()).sum();
    assert_eq!(records, 5);
    for batch in &batches {
        let first = p.aggregate_batch(batch).await;
        assert!(first.response.batch_item_failures.is_empty());
        assert_eq!(first.receipts_released, first.counter_updates, "{first:?}");
    }
    assert_eq!(p.viewers("st").await, 5);
    for batch in &batches {
        p.aggregate_batch(batch).await;
    }
    assert_eq!(p.viewers("st").await, 10);
    p.cleanup().await;
}

/// A record applied twice in a way no dedupe can see (here: the same change under another
/// sessions-table shard, sequence number and event id) over-counts by at most one, and only
/// until the bucket it added to has passed: within W + B of the record's receive time.
#[tokio::test]
async fn a_record_applied_twice_errs_by_at_most_one_and_heals_within_one_window() {
    let p = &mut Pipeline::new("retry-applied-twice").await;
    five_sessions(p, "st").await;
    let recv_ms = p.clock.now_ms();
    let mut batches = p.poller.next_batches().await.expect("poll");
    for batch in &batches {
        p.aggregate_batch(batch).await;
    }
    let mut twice = batches.remove(0);
    twice.records.truncate(1);
    let mut json = serde_json::to_value(&twice).expect("serializes");
    let record = &mut json["Records"][0]["dynamodb"];
    record["Keys"]["PK"] = serde_json::json!({"S": "st#999"});
    record["NewImage"]["PK"] = serde_json::json!({"S": "st#999"});
    record["SequenceNumber"] = serde_json::json!("999999999999999999999999");
    json["Records"][0]["eventID"] = serde_json::json!("another-event");
    let twice: Event = serde_json::from_value(json).expect("record");
    p.aggregate_batch(&twice).await;
    assert_eq!(
        p.viewers("st").await,
        6,
        "the double application is visible"
    );

    // The five sessions keep heartbeating every 5 s; the error must vanish by recv + W + B.
    let timing = p.config.timing;
    let healed_by = recv_ms / 1000 + timing.window_seconds + timing.bucket_seconds;
    assert!(timing.expiry(EventKind::Start, recv_ms) <= healed_by);
    for second in 1..=30 {
        p.clock.set_ms(recv_ms + second * 1000);
        if second % 5 == 0 {
            let now = p.clock.now_ms();
            let beats: Vec<_> = (0..5)
                .map(|i| p.message_now(event_body("st", &format!("s-{i}"), "heartbeat", now)))
                .collect();
            p.ingest(&beats).await;
            p.aggregate().await;
        }
        let viewers = p.viewers("st").await;
        assert!((5..=6).contains(&viewers), "second {second}: {viewers}");
        if p.clock.now_seconds() > healed_by {
            assert_eq!(viewers, 5, "second {second}: the error outlived W + B");
        }
    }
    p.cleanup().await;
}

/// A second is published once the records received in it are all applied, whatever order the
/// lanes apply them in: 20 viewers, then at one second 10 of them stop and 10 others start; the
/// starts are applied at once, the stops' session writes only 5 s later (their messages
/// redelivered, received at that second). The live count showed 30 meanwhile; the peak and the
/// minute's high are 20, the audience of every second.
#[tokio::test]
async fn a_second_is_published_only_once_its_stops_are_applied_too() {
    let p = &mut Pipeline::with_options("history-late-stop", options(None, 4, false)).await;
    let t0 = p.clock.now_ms();
    p.send((0..20).map(|i| event_body("a", &format!("v-{i:02}"), "start", t0)))
        .await;
    p.aggregate().await;
    p.clock.advance_ms(2_000);
    let t1 = p.clock.now_ms();
    p.send((20..30).map(|i| event_body("a", &format!("v-{i:02}"), "start", t1)))
        .await;
    p.aggregate().await;
    assert_eq!(p.viewers("a").await, 30, "the stops are not applied yet");
    p.clock.advance_ms(5_000);
    let stops: Vec<_> = (0..10)
        .map(|i| p.message(event_body("a", &format!("v-{i:02}"), "stop", t1), t1))
        .collect();
    assert_eq!(p.ingest(&stops).await.applied, 10);
    p.aggregate().await;
    assert_eq!(p.viewers("a").await, 20);
    assert_eq!(peaks(p).await.0, 20);
    let a = livecount_tests::stream("a");
    let now = p.clock.now_seconds();
    let highs: Vec<u64> = livecount_core::read::history(&p.store, &a, now - 3600, now, now)
        .await
        .expect("read")
        .iter()
        .map(|m| m.highest)
        .collect();
    assert_eq!(highs.iter().max(), Some(&20), "{highs:?}");
    p.cleanup().await;
}
