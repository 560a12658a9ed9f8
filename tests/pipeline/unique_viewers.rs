//! Unique viewers against DynamoDB Local: the viewer marker's answers, each `userId` counted once
//! per stream however its sessions arrive, and a viewers table that rejects every marker
//! holding back neither the live count nor sessions started.

// Test helpers outside #[test] functions: a failed step is a failed test.
#![allow(clippy::expect_used)]

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use livecount_core::capacity::item_size;
use livecount_core::model::ItemKey;
use livecount_tests::{Pipeline, event_body_with, stream};
use serde_json::json;

/// A viewer counts once per stream: against DynamoDB Local, the marker answers "first" to the
/// record that first marked the viewer and to its retries (which the counter's receipt keeps
/// from counting twice), and "not first" to every other record of the viewer, on any stream's
/// shard; the item holds no `userId`, and stays far within one write unit.
#[tokio::test]
async fn a_viewer_marker_answers_first_only_to_the_record_that_first_saw_the_viewer() {
    let p = Pipeline::new("viewer-markers").await;
    let now = p.clock.now_seconds();
    let (launch, other) = (stream("launch"), stream("other"));
    let mark = |stream: &livecount_core::ids::StreamId, user: &str, record: &str, at: i64| {
        let (store, stream) = (&p.store, stream.clone());
        let (user, record) = (user.to_owned(), record.to_owned());
        async move {
            store
                .mark_viewer(&stream, 8, &user, &record, at, at + 86_400)
                .await
                .expect("marks")
        }
    };
    assert!(mark(&launch, "ada", "r1", now).await, "the first record");
    assert!(mark(&launch, "ada", "r1", now + 1).await, "its retry");
    assert!(
        !mark(&launch, "ada", "r2", now + 2).await,
        "another session"
    );
    assert!(
        !mark(&launch, "ada", "r3", now + 3).await,
        "its row created again"
    );
    assert!(
        mark(&launch, "ada", "r1", now + 4).await,
        "the first, retried late"
    );
    assert!(
        mark(&launch, "grace", "r2", now + 5).await,
        "another viewer"
    );
    assert!(
        mark(&other, "ada", "r9", now + 6).await,
        "the same viewer, another stream"
    );
    let key = ItemKey::viewer(&launch, 8, "ada");
    assert_eq!(key.sk.len(), 64, "a hex SHA-256");
    let item = p
        .store
        .client()
        .get_item()
        .table_name(&p.config.viewers_table)
        .key("PK", AttributeValue::S(key.pk.clone()))
        .key("SK", AttributeValue::S(key.sk.clone()))
        .consistent_read(true)
        .send()
        .await
        .expect("reads")
        .item
        .expect("the marker");
    assert_eq!(
        item.get("firstRecord"),
        Some(&AttributeValue::S("r1".into()))
    );
    assert_eq!(
        item.get("expiresAt"),
        Some(&AttributeValue::N((now + 4 + 86_400).to_string())),
        "every session start keeps the marker"
    );
    assert!(
        item.values()
            .all(|v| v.as_s().map_or(true, |s| !s.contains("ada"))),
        "no userId stored: {item:?}"
    );
    assert!(item_size(&item) < 300, "{} bytes", item_size(&item));
    p.cleanup().await;
}

/// A player event body with a `userId`.
fn start_of(stream: &str, session: &str, user: &str, now_ms: i64) -> String {
    event_body_with(stream, session, "start", now_ms, &[("userId", json!(user))])
}

/// The summary of `id` once every minute so far has settled: 70 s on, a publication made.
async fn settled_summary(p: &mut Pipeline, id: &str) -> livecount_core::read::Summary {
    p.clock.advance_ms(70_000);
    p.publish_history(&[id]).await;
    livecount_core::read::summary(&p.store, &stream(id), p.clock.now_seconds())
        .await
        .expect("summary")
}

/// Three sessions of one viewer (two in one delivery, one a minute later) and one of another:
/// 4 sessions started, 2 unique viewers, once every minute has settled.
#[tokio::test]
async fn each_viewer_counts_once_however_many_sessions_they_start() {
    let mut p = Pipeline::new("unique-viewers").await;
    let now = p.clock.now_ms();
    p.send([
        start_of("uv", "s1", "ada", now),
        start_of("uv", "s2", "ada", now),
        start_of("uv", "s3", "grace", now),
    ])
    .await;
    p.aggregate().await;
    p.clock.advance_ms(60_000);
    let now = p.clock.now_ms();
    p.send([start_of("uv", "s4", "ada", now)]).await;
    p.aggregate().await;
    let summary = settled_summary(&mut p, "uv").await;
    assert_eq!(
        (summary.sessions_started, summary.unique_viewers),
        (4, 2),
        "{summary:?}"
    );
    p.cleanup().await;
}

/// A viewers table DynamoDB rejects every marker of (a wrong key schema: `ValidationException`,
/// which will fail the same way again) leaves the viewers uncounted and nothing else: the live
/// count and sessions started are exact, no stream fails.
#[tokio::test]
async fn rejected_markers_hold_back_neither_the_count_nor_sessions_started() {
    let mut p = Pipeline::new("viewers-rejected").await;
    let client = p.store.client().clone();
    let table = p.config.viewers_table.clone();
    client
        .delete_table()
        .table_name(&table)
        .send()
        .await
        .expect("delete the viewers table");
    client
        .create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("PK")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("definition"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("PK")
                .key_type(KeyType::Hash)
                .build()
                .expect("key"),
        )
        .send()
        .await
        .expect("create it with the wrong key schema");
    let now = p.clock.now_ms();
    p.send([
        start_of("rej", "s1", "ada", now),
        start_of("rej", "s2", "grace", now),
    ])
    .await;
    let report = p.aggregate().await;
    assert_eq!(
        (report.failed_deliveries, report.discarded),
        (0, 0),
        "{report:?}"
    );
    let count = livecount_core::live_count(&p.store, &stream("rej"), p.clock.now_seconds())
        .await
        .expect("count");
    assert_eq!(count.viewers, 2);
    let summary = settled_summary(&mut p, "rej").await;
    assert_eq!(
        (summary.sessions_started, summary.unique_viewers),
        (2, 0),
        "{summary:?}"
    );
    p.cleanup().await;
}
