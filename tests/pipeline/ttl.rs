use aws_lambda_events::event::dynamodb::Event;
use livecount_core::ids::session_shard;
use livecount_core::{EventKind, Timing};
use livecount_local::dynamodb_local::Storage;
use livecount_local::lambda_events::{
    REGION, SESSIONS_STREAM_ARN, StreamChange, service_identity, stream_record,
};
use livecount_tests::{Pipeline, PipelineOptions, event_body, wait_for};
use std::time::Duration;

/// Rows of sessions that left are deleted by DynamoDB Local's own TTL sweep, late, as on AWS.
/// The deletions arrive as service `REMOVE`s and never change the count of watching sessions;
/// expired rows the sweep has not reached yet never count. The test has a DynamoDB Local of its
/// own: the sweep scans every TTL-enabled table of its process, so the other tests' tables
/// would only slow it down.
#[tokio::test]
async fn ttl_deletions_never_change_the_count_and_expired_rows_never_count() {
    let local = livecount_tests::own_dynamodb_local(&Storage::InMemory).await;
    // A ten-minute window: the three watching sessions stay far from TTL for the whole test.
    let timing = Timing {
        window_seconds: 600,
        ..Timing::default()
    };
    let options = PipelineOptions {
        timing,
        endpoint: Some(local.endpoint()),
        ..PipelineOptions::default()
    };
    let p = &mut Pipeline::with_options("ttl-sweep", options).await;
    let t0 = p.clock.now_ms();

    // Four viewers whose last heartbeat, almost a window ago, keeps them counting a few more
    // seconds; then they are gone. Three more are watching now.
    let left_ms = t0 - 590_000;
    let gone: Vec<_> = (0..4)
        .map(|i| {
            p.message(
                event_body("st", &format!("gone-{i}"), "heartbeat", left_ms),
                left_ms,
            )
        })
        .collect();
    let here: Vec<_> = (0..3)
        .map(|i| p.message_now(event_body("st", &format!("here-{i}"), "heartbeat", t0)))
        .collect();
    p.ingest(&gone).await;
    p.ingest(&here).await;
    p.aggregate().await;
    let gone_expiry = timing.expiry(EventKind::Heartbeat, left_ms);
    assert!(
        gone_expiry * 1000 > livecount_tests::wall_clock_second_ms(),
        "not yet expired when applied"
    );
    assert_eq!(p.viewers("st").await, 7, "all seven count while they watch");
    assert_eq!(p.session_rows().await, 7);
    // A second after their expiry the four rows are still in the table (the real clock has not
    // even reached their expDate), and they no longer count.
    assert_eq!(
        p.viewers_at("st", gone_expiry + 1).await,
        3,
        "expired rows not yet deleted never count"
    );

    // DynamoDB Local's sweep deletes the four rows once the real clock passes their expDate.
    let swept = wait_for(Duration::from_secs(180), || async {
        p.session_rows().await == 3
    })
    .await;
    assert!(
        swept,
        "DynamoDB Local's TTL sweep did not delete the expired rows within 180 s"
    );
    p.clock.set_ms(livecount_tests::wall_clock_second_ms());
    let batches = p.poller.next_batches().await.expect("poll");
    let removes: Vec<_> = batches.iter().flat_map(|b| &b.records).collect();
    assert_eq!(removes.len(), 4);
    for record in &removes {
        assert_eq!(record.event_name, "REMOVE");
        assert_eq!(
            record.user_identity.as_ref(),
            Some(&service_identity()),
            "TTL deletions are service REMOVEs"
        );
    }
    for batch in &batches {
        let report = p.aggregate_batch(batch).await;
        assert_eq!(report.unreadable, 0);
        assert!(report.response.batch_item_failures.is_empty());
    }
    assert_eq!(
        p.viewers("st").await,
        3,
        "TTL deletions did not change the count"
    );
    p.cleanup().await;
    local.stop().await;
}

/// The TTL `REMOVE` AWS emits for a row whose window has passed changes no count, even when it
/// lands inside the grace period: the session's state had ended before the deletion, so the
/// record leaves nothing (its bucket keeps the state, which the count of its past seconds
/// needs).
#[tokio::test]
async fn a_ttl_shaped_remove_of_an_expired_session_changes_nothing() {
    let p = &mut Pipeline::new("ttl-shaped").await;
    let t0 = p.clock.now_ms();
    let beats: Vec<_> = ["a", "b"]
        .iter()
        .map(|s| p.message_now(event_body("st", s, "heartbeat", t0)))
        .collect();
    p.ingest(&beats).await;
    p.aggregate().await;

    // "a" keeps watching; "b" goes silent.
    p.clock.set_ms(t0 + 10_000);
    let beat = p.message_now(event_body("st", "a", "heartbeat", t0 + 10_000));
    p.ingest(&[beat]).await;
    p.aggregate().await;
    p.clock.set_ms(t0 + 20_000);
    let before: Vec<u64> = counts_from_now(p).await;
    assert_eq!(before[0], 1, "only \"a\" is watching");

    let b_expiry = p.config.timing.expiry(EventKind::Heartbeat, t0);
    let pk = format!("st#{}", session_shard("b", p.config.session_shards));
    let item = |json| serde_dynamo::to_item(json).expect("an item");
    let ttl_remove = stream_record(
        StreamChange {
            event_id: "7c2a4b1e".to_owned(),
            event_name: "REMOVE".to_owned(),
            keys: item(serde_json::json!({"PK": pk, "SK": "b"})),
            old_image: item(serde_json::json!({
                "PK": pk, "SK": "b", "streamId": "st", "expDate": b_expiry, "watching": true
            })),
            sequence_number: "900000000000000000000000000000".to_owned(),
            created_ms: t0 + 20_000,
            size_bytes: 120,
            user_identity: Some(service_identity()),
            ..StreamChange::default()
        },
        REGION,
        SESSIONS_STREAM_ARN,
    );
    let mut batch = Event::default();
    batch.records = vec![ttl_remove];
    let report = p.aggregate_batch(&batch).await;
    assert_eq!(
        (report.applied, report.late_deltas),
        (1, 0),
        "applied inside the grace period"
    );
    let counter = p
        .store
        .get_counter(&livecount_tests::stream("st"))
        .await
        .expect("read")
        .expect("counter");
    assert_eq!(
        counter.tallies.buckets.get(&b_expiry),
        Some(&1),
        "b's ended state stays in its bucket"
    );
    assert_eq!(
        counts_from_now(p).await,
        before,
        "no current or future count changed"
    );
    p.cleanup().await;
}

/// The count now and at each of the next 30 seconds.
async fn counts_from_now(p: &Pipeline) -> Vec<u64> {
    let now = p.clock.now_seconds();
    let mut counts = Vec::new();
    for t in now..now + 30 {
        counts.push(p.viewers_at("st", t).await);
    }
    counts
}
