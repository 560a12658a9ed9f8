use livecount_tests::{Pipeline, event_body};
use serde_json::json;

/// Every kind of bad message is reported as a batch item failure (so SQS moves it to the DLQ)
/// with its own reason, and the valid messages around it, in the same batch and the same body,
/// are applied.
#[tokio::test]
async fn bad_messages_fail_alone_with_their_reason_and_valid_ones_still_apply() {
    let p = Pipeline::new("bad-input").await;
    let now = p.clock.now_ms();
    let good = |session: &str| event_body("st", session, "heartbeat", now);
    let long_id = "x".repeat(10 * 1024);
    // (body, the reason it must give; empty for a valid message)
    let cases: Vec<(String, &str)> = vec![
        (good("ok-1"), ""),
        (
            "{\"streamId\": \"st\", ".to_owned(),
            "body is not valid JSON",
        ),
        (
            json!({"streamId": "st", "type": "heartbeat", "ts": now}).to_string(),
            "`sessionId` is missing",
        ),
        (
            json!({"streamId": "st", "sessionId": 42, "type": "heartbeat", "ts": now}).to_string(),
            "`sessionId` must be a string, got a number",
        ),
        (
            json!({"streamId": "st", "sessionId": "s", "type": "seek", "ts": now}).to_string(),
            "`type` is \"seek\"; expected start, heartbeat, pause or stop",
        ),
        (
            json!({"streamId": "st#1", "sessionId": "s", "type": "start", "ts": now}).to_string(),
            "`streamId` contains '#', which is reserved",
        ),
        (
            json!({"streamId": "st", "sessionId": long_id, "type": "start", "ts": now}).to_string(),
            "`sessionId` is 10240 characters; the limit is 128",
        ),
        (
            json!({"streamId": "st", "sessionId": "s", "type": "start", "ts": "half past nine"})
                .to_string(),
            "`ts` is \"half past nine\"",
        ),
        ("[]".to_owned(), "body is an empty array"),
        (
            json!([
                {"streamId": "st", "sessionId": "ok-2", "type": "start", "ts": now},
                {"streamId": "st", "sessionId": "bad", "type": "start"},
                {"streamId": "st", "sessionId": "ok-3", "type": "heartbeat", "ts": now}
            ])
            .to_string(),
            "event 1: `ts` is missing",
        ),
        (good("ok-4"), ""),
    ];
    let messages: Vec<_> = cases
        .iter()
        .map(|(body, _)| p.message_now(body.clone()))
        .collect();
    let report = p.ingest(&messages).await;

    let expected_failures: Vec<&str> = messages
        .iter()
        .zip(&cases)
        .filter(|(_, (_, reason))| !reason.is_empty())
        .map(|(m, _)| m.message_id.as_deref().unwrap_or_default())
        .collect();
    let response = p.ingest_handler(messages.clone()).await;
    let reported: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(reported, expected_failures);

    assert_eq!(report.invalid.len(), expected_failures.len());
    for ((message, (_, reason)), invalid) in messages
        .iter()
        .zip(&cases)
        .filter(|(_, (_, reason))| !reason.is_empty())
        .zip(&report.invalid)
    {
        assert_eq!(
            Some(invalid.message_id.as_str()),
            message.message_id.as_deref()
        );
        assert_eq!(invalid.reasons.len(), 1, "{invalid:?}");
        assert!(
            invalid.reasons[0].starts_with(reason),
            "{:?} should start with {reason:?}",
            invalid.reasons[0]
        );
    }
    assert!(report.failed.is_empty());
    assert_eq!(report.applied, 4, "ok-1, ok-2, ok-3 and ok-4 are applied");

    let mut p = p;
    p.aggregate().await;
    assert_eq!(p.viewers("st").await, 4);
    p.cleanup().await;
}
