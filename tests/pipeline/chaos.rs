//! Under failure, and under stream delivery as harsh as AWS (virtual shards and parallel lanes
//! that keep order per item only, finishing in any order; retries shaped as Lambda shapes them
//! with the deployed settings): every chaos test compares the counters with the [`Oracle`] at
//! every sample, and they must be equal; at the end, every stream's peak, `peakAt` and
//! per-minute history equal the oracle's too. Stream records delivered again are recognised by
//! their receipts, whatever was applied in between.

// Test helpers outside #[test] functions: a failed step is a failed test.
#![allow(clippy::expect_used)]

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::sqs::SqsMessage;
use livecount_core::breakdown::Breakdowns;
use livecount_core::coalesce::newest_per_session;
use livecount_core::event::parse_body;
use livecount_core::ids::SessionPartition;
use livecount_tests::faults::{Fault, FaultPlan, Faults, within_call};
use livecount_tests::oracle::Oracle;
use livecount_tests::{Crowd, Deliveries, Pipeline, PipelineOptions, aggregate_handler};
use std::cell::Cell;
use std::collections::BTreeSet;

/// A first delivery's live counter update (not a figures write, whose condition on an item not
/// yet written is `NOT attribute_exists(`, nor a receipt's removal).
const COUNTER_UPDATE: &str = "\"ConditionExpression\":\"attribute_not_exists(";

/// Ticks the faulty tests run without faults at the end: more than `W + B`, so every record
/// delivered again has left the counted buckets and the counts must be exact.
const HEALING_TICKS: i64 = 25;

/// The messages whose write a fault hit: the message of each coalesced winner whose session
/// row write was chosen.
fn expected_failed_messages(
    messages: &[SqsMessage],
    hit: &BTreeSet<(String, String)>,
    shards: u32,
) -> BTreeSet<String> {
    let tagged = messages.iter().flat_map(|m| {
        let id = m.message_id.clone().unwrap_or_default();
        parse_body(m.body.as_deref().unwrap_or_default())
            .map(|b| b.events.into_iter().flatten().collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .map(move |e| (e, id.clone()))
    });
    newest_per_session(tagged)
        .into_iter()
        .filter(|(e, _)| {
            let shard = livecount_core::ids::session_shard(&e.session_id, shards);
            let partition = SessionPartition::new(&e.stream_id, shard).to_string();
            hit.contains(&(partition, e.session_id.to_string()))
        })
        .map(|(_, id)| id)
        .collect()
}

/// Ingests `messages` as SQS would: redelivering exactly the messages the partial batch
/// response names until none is left, and checking each response against the faults injected.
/// Feeds the oracle with each message when it is acknowledged.
async fn ingest_until_acknowledged(
    p: &Pipeline,
    faults: &Faults,
    oracle: &mut Oracle,
    messages: Vec<SqsMessage>,
) -> usize {
    let mut pending = messages;
    let mut rounds = 0;
    while !pending.is_empty() {
        rounds += 1;
        assert!(rounds < 200, "messages never acknowledged");
        faults.take_injected();
        let response = p.ingest_handler(pending.clone()).await;
        let hit: BTreeSet<(String, String)> = faults
            .take_injected()
            .into_iter()
            .filter(|i| i.table == p.config.sessions_table)
            .map(|i| (i.pk, i.sk))
            .collect();
        let failed: BTreeSet<String> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect();
        assert_eq!(
            failed,
            expected_failed_messages(&pending, &hit, p.config.session_shards),
            "the batch response names exactly the messages whose write failed"
        );
        deliver(
            oracle,
            pending
                .iter()
                .filter(|m| !failed.contains(m.message_id.as_deref().unwrap_or_default())),
        );
        pending.retain(|m| failed.contains(m.message_id.as_deref().unwrap_or_default()));
    }
    rounds
}

/// Delivers the stream to the aggregate handler until everything is committed, checking that a
/// batch whose counter update a fault hit in that very call (calls run concurrently, one per
/// lane) is reported from its first record, and any other batch not at all. Returns how many
/// deliveries failed.
async fn aggregate_checking_failures(
    p: &mut Pipeline,
    faults: &Faults,
    deliveries: &Deliveries,
) -> usize {
    let counters = p.config.counters_table.clone();
    let timing = p.config.timing;
    let aggregator = &p.aggregator;
    let calls = Cell::new(0u64);
    let handler = async |event: Event| {
        let call = calls.get();
        calls.set(call + 1);
        deliveries.note(&event, &timing);
        let response = within_call(call, aggregate_handler(aggregator, event.clone())).await;
        let hit = faults
            .take_injected_in(call)
            .into_iter()
            .any(|i| i.table == counters);
        let expected: BTreeSet<String> = event
            .records
            .first()
            .filter(|_| hit)
            .and_then(|r| r.change.sequence_number.clone())
            .into_iter()
            .collect();
        let reported: BTreeSet<String> = response
            .as_ref()
            .map(|r| {
                r.batch_item_failures
                    .iter()
                    .filter_map(|f| f.item_identifier.clone())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(
            reported, expected,
            "a failed batch is reported from its first record"
        );
        response
    };
    p.poller
        .drain(&handler)
        .await
        .expect("stream poll")
        .failed_deliveries
}

async fn assert_counts_match(p: &Pipeline, oracle: &Oracle, tick: i64) {
    let now = p.clock.now_seconds();
    for stream in oracle.streams() {
        assert_eq!(
            p.viewers(stream).await,
            oracle.viewers(stream, now),
            "stream {stream} at tick {tick}"
        );
        if !p.config.breakdowns.is_empty() {
            assert_breakdown_matches(p, oracle, stream, tick).await;
        }
    }
}

/// Every value of every dimension the pipeline breaks `stream` down by has the oracle's viewers
/// (its sessions whose newest event sent that value), and the values add up to the stream.
async fn assert_breakdown_matches(p: &Pipeline, oracle: &Oracle, stream: &str, tick: i64) {
    let now = p.clock.now_seconds();
    let breakdowns = &p.config.breakdowns;
    let breakdown = livecount_core::read::breakdown(
        &p.store,
        breakdowns,
        &livecount_tests::stream(stream),
        now,
    )
    .await
    .expect("breakdown");
    assert_eq!(breakdown.viewers, oracle.viewers(stream, now));
    assert!(!breakdown.dimensions.is_empty());
    for dimension in &breakdown.dimensions {
        let values = livecount_core::breakdown::Dimension::parse(dimension.dimension)
            .map(|d| breakdowns.values(d))
            .unwrap_or_default();
        let listed: Vec<&str> = values
            .iter()
            .copied()
            .filter(|v| !matches!(*v, "other" | "none"))
            .collect();
        let expected = oracle.viewers_by(stream, now, dimension.dimension, &listed);
        let shown: std::collections::BTreeMap<String, u64> = dimension
            .values
            .iter()
            .filter(|v| v.viewers > 0)
            .map(|v| (v.value.clone(), v.viewers))
            .collect();
        assert_eq!(
            shown, expected,
            "stream {stream}, {} at tick {tick}",
            dimension.dimension
        );
        let sum: u64 = dimension.values.iter().map(|v| v.viewers).sum();
        assert_eq!(
            sum, breakdown.viewers,
            "stream {stream}: the values of {} add up to its count at tick {tick}",
            dimension.dimension
        );
    }
}

/// At the end: each dimension's values' watch time and sessions started add up to the stream's.
async fn assert_breakdown_figures_add_up(p: &Pipeline, oracle: &Oracle) {
    let now = p.clock.now_seconds();
    for stream in oracle.streams() {
        let stream_id = livecount_tests::stream(stream);
        let breakdown =
            livecount_core::read::breakdown(&p.store, &p.config.breakdowns, &stream_id, now)
                .await
                .expect("breakdown");
        let summary = livecount_core::read::summary(&p.store, &stream_id, now)
            .await
            .expect("summary");
        for dimension in &breakdown.dimensions {
            let watched: u64 = dimension.values.iter().map(|v| v.viewer_seconds).sum();
            let started: u64 = dimension.values.iter().map(|v| v.sessions_started).sum();
            assert_eq!(
                (watched, started),
                (summary.viewer_seconds, summary.sessions_started),
                "stream {stream}: {}'s watch time and sessions started",
                dimension.dimension
            );
        }
    }
}

/// Publishes every second up to now, then holds each stream's figures, as a reader gets them,
/// to the oracle's over the seconds from `from` (the first with deliveries) to now: peak and
/// `peakAt`, watch time, first and last second with a viewer, and each minute's highest count
/// and viewer-seconds.
async fn assert_history_matches(p: &mut Pipeline, oracle: &Oracle, from: i64) {
    let streams: Vec<String> = oracle.streams().cloned().collect();
    let names: Vec<&str> = streams.iter().map(String::as_str).collect();
    let last = p.publish_history(&names).await;
    for stream in &streams {
        let expected = oracle.figures(stream, from..=last);
        p.assert_figures(stream, &expected, from, last).await;
    }
}

/// A pipeline whose handlers' DynamoDB client goes through [`Faults`], with SDK retries off so
/// every injected fault reaches a batch response, and its clock ahead of TTL.
async fn faulty_pipeline(name: &str, seed: u64) -> (Faults, Pipeline) {
    let faults = Faults::new(seed);
    let options = PipelineOptions {
        faults: Some(faults.clone()),
        sdk_max_attempts: Some(1),
        poller_max_retries: 1000,
        ..PipelineOptions::default()
    };
    let p = Pipeline::with_options(name, options).await;
    p.run_ahead_of_ttl();
    (faults, p)
}

/// Feeds the oracle with messages as they are acknowledged, at their `SentTimestamp`.
fn deliver<'a>(oracle: &mut Oracle, messages: impl IntoIterator<Item = &'a SqsMessage>) {
    for message in messages {
        let sent = message
            .attributes
            .get("SentTimestamp")
            .and_then(|t| t.parse().ok())
            .unwrap_or_default();
        oracle.deliver_body(message.body.as_deref().unwrap_or_default(), sent);
    }
}

/// (a) Throttling and 5xx on a share of both handlers' writes: the partial batch responses name
/// exactly the affected messages, and a batch's first record when a counter update failed; the
/// records Lambda delivers again are recognised, and every count is exact at every sample.
#[tokio::test]
async fn throttling_and_server_errors_fail_exactly_the_affected_messages_and_heal_on_redelivery() {
    let (faults, mut p) = faulty_pipeline("chaos-throttle", 0xfa17).await;
    let mut oracle = Oracle::new(p.config.timing);
    let deliveries = Deliveries::default();
    let mut crowd = Crowd::random(41, 12, 5, 60 + HEALING_TICKS);
    let t0 = p.clock.now_ms();
    let (mut ingest_redeliveries, mut aggregate_redeliveries) = (0, 0);
    for tick in 0..60 + HEALING_TICKS {
        p.clock.set_ms(t0 + tick * 1000);
        let fault = if tick % 2 == 0 {
            Fault::Throttle
        } else {
            Fault::ServerError
        };
        let rate = if tick < 60 { 0.3 } else { 0.0 };
        faults.set(vec![
            FaultPlan {
                fault,
                rate,
                operation: "UpdateItem",
                table: p.config.sessions_table.clone(),
                body_contains: None,
            },
            FaultPlan {
                fault,
                rate,
                operation: "UpdateItem",
                table: p.config.counters_table.clone(),
                body_contains: Some(COUNTER_UPDATE),
            },
        ]);
        let messages: Vec<_> = crowd
            .bodies(tick, p.clock.now_ms())
            .into_iter()
            .map(|b| p.message_now(b))
            .collect();
        ingest_redeliveries +=
            ingest_until_acknowledged(&p, &faults, &mut oracle, messages).await - 1;
        aggregate_redeliveries += aggregate_checking_failures(&mut p, &faults, &deliveries).await;
        faults.set(Vec::new());
        assert_counts_match(&p, &oracle, tick).await;
    }
    assert!(
        ingest_redeliveries > 10 && aggregate_redeliveries > 10 && deliveries.redelivered() > 10,
        "faults were injected ({ingest_redeliveries}, {aggregate_redeliveries})"
    );
    assert_history_matches(&mut p, &oracle, t0 / 1000).await;
    p.cleanup().await;
}

/// (b) The counter update applied but its answer lost, and whole invocations failing after
/// some streams' updates were applied: Lambda delivers the batch again from its first record
/// (cut afresh, so often with more records). Receipts recognise what was applied, whatever
/// other updates came in between, and every count is exact at every sample.
#[tokio::test]
async fn an_invocation_failing_after_some_updates_is_retried_without_double_counting() {
    let (faults, mut p) = faulty_pipeline("chaos-lost", 0xb0b).await;
    let mut oracle = Oracle::new(p.config.timing);
    let deliveries = Deliveries::default();
    let mut crowd = Crowd::random(42, 10, 6, 60 + HEALING_TICKS);
    let t0 = p.clock.now_ms();
    let (calls, failed_invocations, recognised) = (Cell::new(0), Cell::new(0), Cell::new(0));
    let mut lost_responses = 0;
    for tick in 0..60 + HEALING_TICKS {
        p.clock.set_ms(t0 + tick * 1000);
        let messages: Vec<_> = crowd
            .bodies(tick, p.clock.now_ms())
            .into_iter()
            .map(|b| p.message_now(b))
            .collect();
        ingest_until_acknowledged(&p, &faults, &mut oracle, messages).await;

        let faulty = tick < 60;
        faults.set(vec![FaultPlan {
            fault: Fault::LostResponse,
            rate: if faulty { 0.3 } else { 0.0 },
            operation: "UpdateItem",
            table: p.config.counters_table.clone(),
            body_contains: Some(COUNTER_UPDATE),
        }]);
        let (aggregator, timing) = (&p.aggregator, p.config.timing);
        let crashing = async |event: Event| {
            calls.set(calls.get() + 1);
            deliveries.note(&event, &timing);
            let applied = aggregator.apply_until(&event.records, None).await;
            recognised.set(recognised.get() + applied.report.duplicates);
            if faulty && calls.get() % 3 == 0 {
                // The function dies after its updates went through (before it could remove its
                // receipts): Lambda retries the batch from its first record.
                failed_invocations.set(failed_invocations.get() + 1);
                return Err("invocation failed after applying its updates".to_owned());
            }
            Ok(aggregator.finish(applied, None).await.response)
        };
        p.poller.drain(&crashing).await.expect("stream poll");
        faults.set(Vec::new());
        lost_responses += faults.take_injected().len();
        assert_counts_match(&p, &oracle, tick).await;
    }
    assert!(
        failed_invocations.get() > 5 && lost_responses > 5,
        "{} failed invocations, {lost_responses} lost responses",
        failed_invocations.get()
    );
    assert!(
        recognised.get() > 0 && deliveries.redelivered() > 0,
        "redeliveries are recognised ({} of {})",
        recognised.get(),
        deliveries.redelivered()
    );
    assert_history_matches(&mut p, &oracle, t0 / 1000).await;
    p.cleanup().await;
}

/// (d) At least 10,000 events over 50 streams, every message delivered 1 to 3 times in
/// arbitrary order and batch sizes, some copies a second late: sampled and final counts of
/// every stream equal the oracle, and so do those of each value of its breakdown by CDN
/// (players switching CDN mid-stream), which add up to the stream's count at every sample and
/// to its watch time and sessions started at the end.
#[tokio::test]
async fn ten_thousand_events_over_fifty_streams_delivered_one_to_three_times_in_any_order() {
    let options = PipelineOptions {
        breakdowns: Breakdowns::parse("cdn=cdn-a").expect("valid"),
        ..PipelineOptions::default()
    };
    let mut p = Pipeline::with_options("chaos-volume", options).await;
    p.run_ahead_of_ttl();
    let mut oracle = Oracle::new(p.config.timing);
    let mut rng = fastrand::Rng::with_seed(0xd00d);
    let mut crowd = Crowd::random(43, 50, 8, 150);
    let t0 = p.clock.now_ms();
    let mut late: Vec<SqsMessage> = Vec::new();
    let mut events = 0;
    let mut tick = 0;
    while events < 10_000 || tick % 5 != 0 {
        p.clock.set_ms(t0 + tick * 1000);
        let messages: Vec<_> = crowd
            .bodies(tick, p.clock.now_ms())
            .into_iter()
            .map(|b| p.message_now(b))
            .collect();
        events += messages.len();
        let mut deliveries = std::mem::take(&mut late);
        for message in &messages {
            for copy in 0..rng.usize(1..=3) {
                if copy > 0 && rng.f64() < 0.2 {
                    late.push(message.clone());
                } else {
                    deliveries.push(message.clone());
                }
            }
        }
        rng.shuffle(&mut deliveries);
        while !deliveries.is_empty() {
            let batch: Vec<_> = deliveries
                .drain(..rng.usize(1..=10).min(deliveries.len()))
                .collect();
            let report = p.ingest(&batch).await;
            assert!(
                report.failed.is_empty() && report.invalid.is_empty(),
                "{report:?}"
            );
            deliver(&mut oracle, &batch);
        }
        p.aggregate().await;
        if tick % 5 == 0 {
            assert_counts_match(&p, &oracle, tick).await;
        }
        tick += 1;
    }
    assert!(
        events >= 10_000 && oracle.streams().count() == 50,
        "{events} events"
    );
    assert!(oracle.delivered() > events, "duplicates were delivered");
    // Once every late copy has landed, a minute on, the final counts agree too.
    p.clock.set_ms(t0 + tick * 1000);
    let last: Vec<_> = std::mem::take(&mut late);
    p.ingest(&last).await;
    deliver(&mut oracle, &last);
    p.aggregate().await;
    assert_counts_match(&p, &oracle, tick).await;
    assert_history_matches(&mut p, &oracle, t0 / 1000).await;
    assert_breakdown_figures_add_up(&p, &oracle).await;
    p.cleanup().await;
}

/// (c) DynamoDB Local is killed in the middle of a running pipeline and started again: the
/// handlers report errors meanwhile, the same pipeline (no restart) recovers by itself, and
/// counts equal the oracle again within `W + B` of the database coming back.
#[tokio::test]
async fn the_pipeline_recovers_by_itself_when_dynamodb_restarts() {
    use livecount_local::dynamodb_local::{DynamoDbLocal, Storage};
    let install = livecount_tests::dynamodb_local_install_dir();
    let data = std::env::temp_dir().join(format!("livecount-restart-{}", std::process::id()));
    std::fs::create_dir_all(&data).expect("data folder");
    let storage = Storage::Folder(data.clone());
    let local = livecount_tests::own_dynamodb_local(&storage).await;
    let port = local.port();
    let mut local = Some(local);
    let options = PipelineOptions {
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        poller_max_retries: 1000,
        ..PipelineOptions::default()
    };
    let mut p = Pipeline::with_options("chaos-restart", options).await;
    let timing = p.config.timing;
    let mut oracle = Oracle::new(timing);
    let mut crowd = Crowd::random(44, 4, 5, 70);
    let mut pending: Vec<SqsMessage> = Vec::new();
    let (mut ingest_failures, mut poll_failures, mut exact_samples) = (0, 0, 0);
    let mut back_at: Option<i64> = None;
    let mut pace = tokio::time::interval(std::time::Duration::from_secs(1));
    // Runs until ten exact samples after recovery (bounded): a loaded machine restarts
    // DynamoDB Local more slowly, and the test waits for the samples, not a fixed time.
    for second in 0..150 {
        if exact_samples >= 10 {
            break;
        }
        pace.tick().await; // the pipeline runs in real time: DynamoDB Local's clock is real
        // …a day ahead, so DynamoDB Local's real-clock TTL sweep deletes none of the rows the
        // oracle still counts (it could otherwise catch a row in the second its bucket ends).
        p.clock
            .set_ms(livecount_tests::wall_clock_second_ms() + 86_400_000);
        let now = p.clock.now_seconds();
        if second == 12
            && let Some(running) = local.take()
        {
            running.kill().await;
        }
        if second == 17 {
            local = Some(
                DynamoDbLocal::start_with(&install, port, &storage)
                    .await
                    .expect("restart DynamoDB Local"),
            );
            back_at = Some(p.clock.now_seconds());
        }
        pending.extend(
            crowd
                .bodies(second, p.clock.now_ms())
                .into_iter()
                .map(|b| p.message_now(b)),
        );
        let response = p.ingest_handler(pending.clone()).await;
        let failed: BTreeSet<String> = response
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect();
        ingest_failures += failed.len();
        deliver(
            &mut oracle,
            pending
                .iter()
                .filter(|m| !failed.contains(m.message_id.as_deref().unwrap_or_default())),
        );
        pending.retain(|m| failed.contains(m.message_id.as_deref().unwrap_or_default()));

        let aggregator = &p.aggregator;
        let handler = async |event: Event| aggregate_handler(aggregator, event).await;
        if p.poller.poll_once(&handler, true).await.is_err() {
            poll_failures += 1;
        }
        if back_at.is_some_and(|back| now > back + timing.window_seconds + timing.bucket_seconds) {
            for stream in oracle.streams() {
                assert_eq!(
                    p.viewers(stream).await,
                    oracle.viewers(stream, now),
                    "stream {stream}, {second} s in"
                );
            }
            exact_samples += 1;
        }
    }
    assert!(
        ingest_failures > 0 && poll_failures > 0,
        "the outage was seen ({ingest_failures}, {poll_failures})"
    );
    assert!(
        exact_samples >= 5,
        "only {exact_samples} samples after recovery"
    );
    p.cleanup().await;
    if let Some(running) = local {
        running.stop().await;
    }
    let _ = std::fs::remove_dir_all(data);
}
