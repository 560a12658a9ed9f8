//! What ingest refuses before anything is written: unsigned sessions where signing is required,
//! and messages too old to count.

use livecount_core::token::TokenSecret;
use livecount_tests::{Pipeline, event_body_with};
use serde_json::json;

fn signed(stream: &str, session: &str, token: Option<String>, ts: i64) -> String {
    event_body_with(stream, session, "start", ts, &[("token", json!(token))])
}

/// With a token secret configured, only events carrying a valid token for their stream and
/// session count; a missing, wrong or expired token is refused with its reason and counted.
#[tokio::test]
async fn signed_sessions_count_only_with_a_valid_token() {
    let mut p = Pipeline::new("signed").await;
    p.run_ahead_of_ttl();
    let secret = TokenSecret::new("test secret, 32 bytes long......").expect("long enough");
    p.ingest.tokens = Some(secret.clone());
    let now = p.clock.now_ms();
    let later = now / 1000 + 3600;
    let cases = [
        ("valid", Some(secret.sign("st", "valid", later))),
        ("missing", None),
        ("wrong", Some(secret.sign("st", "someone-else", later))),
        (
            "expired",
            Some(secret.sign("st", "expired", now / 1000 - 1)),
        ),
        ("forged", Some("v1.99999999999.AAAA".to_owned())),
    ];
    let messages: Vec<_> = cases
        .iter()
        .map(|(session, token)| p.message_now(signed("st", session, token.clone(), now)))
        .collect();
    let report = p.ingest(&messages).await;
    assert_eq!(report.applied, 1);
    assert_eq!(report.tokens_rejected, 4);
    let reasons: Vec<String> = report
        .invalid
        .iter()
        .flat_map(|m| m.reasons.clone())
        .collect();
    assert_eq!(
        reasons,
        [
            "`token` is missing; this deployment only counts signed sessions".to_owned(),
            "`token` was not issued for this stream and session".to_owned(),
            format!("`token` expired at {} (epoch seconds)", now / 1000 - 1),
            "`token` was not issued for this stream and session".to_owned(),
        ]
    );
    p.aggregate().await;
    assert_eq!(p.viewers("st").await, 1);
    p.cleanup().await;
}

/// A message SQS received longer than `W + G` ago (after an outage, or redriven from the DLQ)
/// is acknowledged and counted as expired, never written: it would only make a ghost viewer.
#[tokio::test]
async fn messages_older_than_window_plus_grace_are_dropped_not_counted() {
    let mut p = Pipeline::new("expired").await;
    p.run_ahead_of_ttl();
    let timing = p.config.timing;
    let now = p.clock.now_ms();
    let limit_ms = 1000 * (timing.window_seconds + timing.grace_seconds);
    let old = p.message(signed("st", "ghost", None, now), now - limit_ms - 1);
    let recent = p.message(signed("st", "late-but-live", None, now), now - limit_ms);
    let report = p.ingest_handler(vec![old.clone(), recent]).await;
    assert!(report.batch_item_failures.is_empty(), "acknowledged");
    let report = p.ingest(std::slice::from_ref(&old)).await;
    assert_eq!(
        report.expired,
        vec![old.message_id.clone().unwrap_or_default()]
    );
    assert_eq!(report.applied, 0);
    p.aggregate().await;
    assert_eq!(
        p.session_rows().await,
        1,
        "the expired message wrote nothing"
    );
    p.cleanup().await;
}

/// An invalid message goes to the dead-letter queue once, with its reasons, and is acknowledged:
/// it does not come back `maxReceiveCount` times first. Valid messages beside it are applied.
#[tokio::test]
async fn an_invalid_message_goes_to_the_dead_letter_queue_once_with_its_reasons() {
    let mut p = Pipeline::new("dead-letters").await;
    p.run_ahead_of_ttl();
    let sent: std::sync::Arc<std::sync::Mutex<Vec<(String, String, String)>>> = Default::default();
    let sink = sent.clone();
    p.ingest.dead_letters = Some(livecount_ingest::DeadLetters::Local(std::sync::Arc::new(
        move |id: &str, body: &str, reasons: &str| {
            sink.lock()
                .expect("sink")
                .push((id.to_owned(), body.to_owned(), reasons.to_owned()));
        },
    )));
    let now = p.clock.now_ms();
    let bad = p.message_now(r#"{"streamId":"st","type":"start","ts":1}"#);
    let good = p.message_now(signed("st", "viewer", None, now));
    let response = p.ingest_handler(vec![bad.clone(), good]).await;
    assert!(
        response.batch_item_failures.is_empty(),
        "the invalid one is acknowledged too"
    );
    let sent = sent.lock().expect("sink").clone();
    assert_eq!(
        sent,
        vec![(
            bad.message_id.clone().unwrap_or_default(),
            bad.body.clone().unwrap_or_default(),
            "`sessionId` is missing".to_owned()
        )]
    );
    p.aggregate().await;
    assert_eq!(p.viewers("st").await, 1);
    p.cleanup().await;
}
