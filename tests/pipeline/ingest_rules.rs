//! What ingest refuses before anything is written: unsigned sessions where signing is required,
//! and messages too old to count; what a dead-letter redrive does; what ingest leaves for a
//! redelivery when its deadline is near.

use livecount_core::token::TokenSecret;
use livecount_tests::{Pipeline, event_body_with, session, stream};
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
    p.ingest.tokens = Some(livecount_ingest::Tokens::fixed(secret.clone()));
    let now = p.clock.now_ms();
    let later = now / 1000 + 3600;
    let cases = [
        (
            "valid",
            Some(secret.sign(&stream("st"), &session("valid"), later)),
        ),
        ("missing", None),
        (
            "wrong",
            Some(secret.sign(&stream("st"), &session("someone-else"), later)),
        ),
        (
            "expired",
            Some(secret.sign(&stream("st"), &session("expired"), now / 1000 - 1)),
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
        move |letter: &livecount_ingest::DeadLetter| {
            sink.lock().expect("sink").push((
                letter.message_id.clone(),
                letter.body.clone(),
                letter.reasons.clone(),
            ));
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

/// The issue's redrive: a body holding a valid heartbeat and an invalid event applies the valid
/// one and goes to the dead-letter queue whole, with its original receive time. When an
/// operator redrives the queue (a new message, a new `SentTimestamp`), no event of it counts
/// again: within its window the valid event is refused as stale, past it the message is dropped
/// as expired; the viewer who stopped sending does not come back.
#[tokio::test]
async fn a_redriven_dead_letter_makes_no_ghost_viewer() {
    use livecount_local::queue::{DlqMessage, LocalQueue};
    use livecount_local::trigger::queue::QueueMapping;
    let mut p = Pipeline::new("redrive").await;
    p.run_ahead_of_ttl();
    let queue = LocalQueue::new(QueueMapping::deployed(), p.clock.clone());
    let dead_letters = queue.clone();
    p.ingest.dead_letters = Some(livecount_ingest::DeadLetters::Local(std::sync::Arc::new(
        move |letter: &livecount_ingest::DeadLetter| {
            dead_letters.dead_letter(DlqMessage {
                message_id: letter.message_id.clone(),
                body: letter.body.clone(),
                attributes: letter
                    .attributes()
                    .into_iter()
                    .map(|(name, _, value)| (name.to_owned(), value))
                    .collect(),
            });
        },
    )));
    let t0 = p.clock.now_ms();
    let valid = json!({"streamId": "st", "sessionId": "leaver", "type": "heartbeat", "ts": t0});
    let body = json!([valid, {"streamId": "st"}]).to_string();
    queue.enqueue(body);
    let ingest = p.ingest.clone();
    let mut handler = async |event: aws_lambda_events::event::sqs::SqsEvent| {
        livecount_ingest::handler(
            &ingest,
            lambda_runtime::LambdaEvent::new(event, lambda_runtime::Context::default()),
        )
        .await
    };
    queue.drain(&mut handler).await;
    assert_eq!(
        queue.stats().dead_letters,
        1,
        "the invalid body is dead-lettered"
    );
    p.aggregate().await;
    assert_eq!(p.viewers("st").await, 1, "its valid heartbeat counted");

    // Redriven 10 s later, inside the window: the heartbeat is the one already stored.
    p.clock.set_ms(t0 + 10_000);
    assert_eq!(queue.redrive(), 1);
    queue.drain(&mut handler).await;
    p.aggregate().await;
    let timing = p.config.timing;
    let gone = t0 / 1000 + timing.window_seconds + timing.bucket_seconds + 1;
    assert_eq!(
        p.viewers_at("st", gone).await,
        0,
        "no second window for the viewer"
    );

    // Redriven again past its window: dropped as expired, nothing written.
    p.clock
        .set_ms(t0 + 1000 * (timing.window_seconds + timing.grace_seconds) + 1_000);
    assert_eq!(queue.redrive(), 1);
    let redriven = queue.stats().enqueued;
    queue.drain(&mut handler).await;
    p.aggregate().await;
    assert_eq!(p.viewers("st").await, 0, "no ghost after the redrive");
    assert_eq!(redriven, 3);
    p.cleanup().await;
}

/// 100 messages of 500 events (50,000 sessions) with the invocation's deadline near: ingest
/// starts no write it cannot finish, and reports exactly the messages it did not write in full;
/// their redelivery writes the rest (shown for two of them: 1,000 sessions, each written once).
#[tokio::test]
async fn a_batch_larger_than_its_deadline_reports_what_it_did_not_write() {
    let p = Pipeline::new("ingest-deadline").await;
    p.run_ahead_of_ttl();
    let now = p.clock.now_ms();
    let messages: Vec<_> = (0..100)
        .map(|m| {
            let events: Vec<serde_json::Value> = (0..500)
                .map(|e| json!({"streamId": "big", "sessionId": format!("v-{m}-{e}"), "type": "start", "ts": now}))
                .collect();
            p.message_now(serde_json::Value::Array(events).to_string())
        })
        .collect();
    // Past the time to stop starting work: nothing is started, everything is reported.
    let soon = std::time::Instant::now();
    let report = p
        .ingest
        .process_until(&messages, Some(soon))
        .await
        .expect("ingest");
    assert_eq!((report.applied, report.deferred), (0, 50_000));
    assert_eq!(report.failed.len(), 100, "every message is reported");
    // A stop that passes while the batch is written (5 s is far too little for 50,000 writes to
    // DynamoDB Local): some events written, the rest deferred; the report accounts for every
    // event.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let first = p
        .ingest
        .process_until(&messages, Some(deadline))
        .await
        .expect("ingest");
    assert!(
        first.deferred > 0 && first.applied > 0,
        "{} applied, {} deferred",
        first.applied,
        first.deferred
    );
    assert_eq!(first.applied + first.stale + first.deferred, 50_000);
    let failed: std::collections::BTreeSet<&str> =
        first.failed.iter().map(String::as_str).collect();
    // However far it got, every message with an event not written is reported.
    assert!(
        failed.len() >= first.deferred.div_ceil(500).max(2),
        "{} messages reported for {} events deferred",
        failed.len(),
        first.deferred
    );
    // Each reported message redelivered alone is written in full; what the first call wrote
    // of it is stale.
    for message in messages
        .iter()
        .filter(|m| failed.contains(m.message_id.as_deref().unwrap_or_default()))
        .take(2)
    {
        let again = p.ingest(std::slice::from_ref(message)).await;
        assert!(again.failed.is_empty(), "{again:?}");
        assert_eq!(again.applied + again.stale, 500, "{again:?}");
    }
    p.cleanup().await;
}
