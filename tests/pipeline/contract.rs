//! The functions call exactly the DynamoDB operations `infra/contract.json` lists for them, the
//! list the CDK and Terraform tests hold the roles' policies against: a new SDK call without its
//! IAM action fails here or there.

// Test helpers outside #[test] functions: a failed step is a failed test.
#![allow(clippy::expect_used)]

use livecount_tests::recorder::Recorder;
use livecount_tests::{Pipeline, PipelineOptions, event_body};
use std::collections::BTreeSet;

fn contract_dynamodb_operations(function: &str) -> BTreeSet<String> {
    let contract: serde_json::Value =
        serde_json::from_str(livecount_core::contract::CONTRACT_JSON).expect("contract");
    contract["operations"][function]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|o| o.as_str())
        .filter(|o| o.starts_with("dynamodb:"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn each_function_calls_exactly_the_dynamodb_operations_the_contract_grants() {
    let recorder = Recorder::default();
    let options = PipelineOptions {
        recorder: Some(recorder.clone()),
        ..PipelineOptions::default()
    };
    let mut p = Pipeline::with_options("contract", options).await;
    p.run_ahead_of_ttl();
    recorder.take(); // table creation is not a function's

    let now = p.clock.now_ms();
    let messages: Vec<_> = (0..3)
        .map(|i| p.message_now(event_body("st", &format!("s-{i}"), "start", now)))
        .chain([p.message_now("not json")])
        .collect();
    p.ingest_handler(messages).await;
    assert_eq!(
        recorder.take(),
        contract_dynamodb_operations("ingest"),
        "ingest"
    );

    p.aggregate().await;
    assert_eq!(
        recorder.take(),
        contract_dynamodb_operations("aggregate"),
        "aggregate"
    );

    // What the read function's routes call: one stream's count, its summary and history, and
    // the stream list.
    let now = p.clock.now_seconds();
    let st = livecount_tests::stream("st");
    livecount_core::live_count(&p.store, &st, now)
        .await
        .expect("read");
    livecount_core::read::summary(&p.store, &st, now)
        .await
        .expect("summary");
    livecount_core::read::history(&p.store, &st, now - 3600, now, now)
        .await
        .expect("history");
    livecount_core::all_live_counts(&p.store, now)
        .await
        .expect("list");
    assert_eq!(
        recorder.take(),
        contract_dynamodb_operations("read"),
        "read"
    );

    // The edge: one player's event written, and the count it answers with.
    let edge = livecount_edge::router(p.edge(None));
    let event = event_body("st", "s-9", "start", p.clock.now_ms());
    let answer = livecount_tests::call(&edge, "POST", "/events", &[], event).await;
    assert_eq!(answer.status, 202, "{}", answer.json);
    assert_eq!(
        recorder.take(),
        contract_dynamodb_operations("edge"),
        "edge"
    );
    p.cleanup().await;
}
