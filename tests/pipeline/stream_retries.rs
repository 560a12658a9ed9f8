use aws_lambda_events::event::dynamodb::Event;
use livecount_core::EventKind;
use livecount_tests::{Pipeline, event_body};

async fn five_sessions(p: &Pipeline, stream: &str) {
    let now = p.clock.now_ms();
    let messages: Vec<_> = (0..5)
        .map(|i| p.message_now(event_body(stream, &format!("s-{i}"), "start", now)))
        .collect();
    let report = p.ingest(&messages).await;
    assert_eq!(report.applied, 5);
}

#[tokio::test]
async fn the_same_stream_batch_delivered_twice_leaves_the_count_exact() {
    let p = &mut Pipeline::new("retry-same-batch").await;
    five_sessions(p, "st").await;
    let batches = p.poller.next_batches().await.expect("poll");
    let records: usize = batches.iter().map(|b| b.records.len()).sum();
    assert_eq!(records, 5);

    for batch in &batches {
        let first = p.aggregate_batch(batch).await;
        assert!(first.response.batch_item_failures.is_empty());
        let again = p.aggregate_batch(batch).await;
        assert_eq!(again.applied, 0, "{again:?}");
        assert_eq!(again.duplicates, batch.records.len());
        assert!(again.response.batch_item_failures.is_empty());
    }
    assert_eq!(p.viewers("st").await, 5);

    // Lambda retrying from the middle of a batch (after a partial failure) delivers a set that
    // was never applied as such: it is applied again (a dedupe that guessed could drop real
    // records), and the count errs by at most one per record delivered again (a heartbeat's
    // record counts one too many, a stop's one too few).
    p.clock.advance_ms(1000);
    let now = p.clock.now_ms();
    let heartbeats: Vec<_> = (0..5)
        .map(|i| p.message_now(event_body("st", &format!("s-{i}"), "heartbeat", now)))
        .collect();
    let stops: Vec<_> = (0..2)
        .map(|i| p.message_now(event_body("st", &format!("s-{i}"), "stop", now + 1)))
        .collect();
    p.ingest(&heartbeats).await;
    p.ingest(&stops).await;
    let mut records: Vec<_> = p
        .poller
        .next_batches()
        .await
        .expect("poll")
        .into_iter()
        .flat_map(|b| b.records)
        .collect();
    assert_eq!(records.len(), 7);
    let mut whole = Event::default();
    whole.records = records.clone();
    p.aggregate_batch(&whole).await;
    let mut tail = Event::default();
    tail.records = records.split_off(3);
    assert_eq!(p.viewers("st").await, 3);
    let retry = p.aggregate_batch(&tail).await;
    assert_eq!(retry.duplicates, 0, "{retry:?}");
    let viewers = p.viewers("st").await;
    assert!(
        viewers.abs_diff(3) <= tail.records.len() as u64,
        "{viewers} viewers after {} records delivered again",
        tail.records.len()
    );
    // The same tail delivered once more is recognised as a set applied before.
    let again = p.aggregate_batch(&tail).await;
    assert_eq!(again.duplicates, tail.records.len(), "{again:?}");
    assert_eq!(p.viewers("st").await, viewers);
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
