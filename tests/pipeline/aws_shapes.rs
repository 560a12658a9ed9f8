use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Context, LambdaEvent};
use livecount_tests::{Pipeline, PipelineOptions, aggregate_handler};

/// The SQS event as AWS documents it goes through the ingest Lambda handler.
#[tokio::test]
async fn an_aws_shaped_sqs_event_is_ingested() {
    // The fixture is dated 2023: no TTL sweep (on the real clock) may delete what it writes.
    let p = Pipeline::with_options(
        "aws-sqs",
        PipelineOptions {
            ttl: false,
            ..PipelineOptions::default()
        },
    )
    .await;
    // The fixture was sent at 1700000000000: received a second later, not too old to count.
    p.clock.set_ms(1_700_000_001_000);
    let event: SqsEvent =
        serde_json::from_str(include_str!("../fixtures/sqs-event.json")).expect("fixture");
    let response = livecount_ingest::handler(
        &p.ingest,
        LambdaEvent::new(event.clone(), Context::default()),
    )
    .await
    .expect("handler");
    assert!(response.batch_item_failures.is_empty());
    let report = p.ingest(&event.records).await;
    assert_eq!(
        (report.events, report.applied, report.stale),
        (3, 0, 3),
        "a redelivery is all stale"
    );
    p.cleanup().await;
}

/// INSERT, MODIFY, REMOVE and a TTL REMOVE (with the service `userIdentity`), as AWS documents
/// them, deserialize and aggregate: two sessions join, one moves bucket, one is deleted, and an
/// old TTL deletion is dropped as late; a retry of the batch changes nothing.
#[tokio::test]
async fn aws_shaped_stream_records_aggregate() {
    // The fixture is dated 2023: no TTL sweep (on the real clock) may delete what it writes.
    let p = Pipeline::with_options(
        "aws-stream",
        PipelineOptions {
            ttl: false,
            ..PipelineOptions::default()
        },
    )
    .await;
    p.clock.set_ms(1_700_000_005_000);
    let event: Event =
        serde_json::from_str(include_str!("../fixtures/dynamodb-event.json")).expect("fixture");
    // An invocation that applied the batch and died before finishing it, then Lambda's retry
    // through the handler: the retry is recognised (else 020 would hold 2).
    let died = p.aggregator.apply_until(&event.records, None).await;
    assert_eq!(died.report.applied, 5);
    let response = aggregate_handler(&p.aggregator, event.clone())
        .await
        .expect("handler");
    assert!(response.batch_item_failures.is_empty());

    let counter = p
        .store
        .get_counter(&livecount_tests::stream("launch-keynote"))
        .await
        .expect("read")
        .expect("counter");
    let buckets: Vec<(i64, i64)> = counter.tallies.buckets.into_iter().collect();
    assert_eq!(
        buckets,
        [(1_700_000_020, 1)],
        "the two sessions that left 015 cancel out in the batch"
    );
    assert_eq!(p.viewers("launch-keynote").await, 1);
    assert_eq!(p.viewers_at("launch-keynote", 1_700_000_021).await, 0);
    p.cleanup().await;
}
