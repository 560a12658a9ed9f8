//! A viewer's clock can't hide them: device clocks that jump (a TV booting in 2100, a phone's
//! NTP step back an hour) never freeze a session that keeps watching, and with `seq` any delivery
//! order gives the counts of in-order delivery.

use livecount_tests::oracle::Oracle;
use livecount_tests::{Pipeline, event_body_with};
use serde_json::json;

const HOUR_MS: i64 = 3_600_000;
/// 2100-01-01T00:00:00Z.
const YEAR_2100_MS: i64 = 4_102_444_800_000;

fn body(stream: &str, session: &str, kind: &str, ts: i64, seq: Option<u64>) -> String {
    event_body_with(stream, session, kind, ts, &[("seq", json!(seq))])
}

/// A session whose clock steps back an hour mid-stream stays counted at every sample when it
/// sends `seq`. Without `seq` the same session's later events are older than the one it sent
/// before the step, so they are stale and it stops counting within `W + B` (documented: the
/// row holds its newest `ts` until the clock passes it again).
#[tokio::test]
async fn a_clock_stepping_back_an_hour_mid_stream_with_seq_stays_counted() {
    let mut p = Pipeline::new("clock-back").await;
    p.run_ahead_of_ttl();
    let t0 = p.clock.now_ms();
    let limit = p.config.timing.window_seconds + p.config.timing.bucket_seconds;
    for tick in 0..70 {
        p.clock.set_ms(t0 + tick * 1000);
        if tick % 5 == 0 {
            let step = if tick >= 30 { -HOUR_MS } else { 0 };
            let ts = p.clock.now_ms() + step;
            let kind = if tick == 0 { "start" } else { "heartbeat" };
            let seq = (tick / 5) as u64;
            p.send([
                body("with-seq", "tv-1", kind, ts, Some(seq)),
                body("without-seq", "tv-1", kind, ts, None),
            ])
            .await;
        }
        p.aggregate().await;
        assert_eq!(p.viewers("with-seq").await, 1, "tick {tick}: with seq");
        let without = p.viewers("without-seq").await;
        if tick < 30 {
            assert_eq!(without, 1, "tick {tick}: without seq, before the step");
        } else if tick > 25 + limit {
            assert_eq!(
                without, 0,
                "tick {tick}: without seq, its events after the step are stale"
            );
        }
    }
    p.cleanup().await;
}

/// Without `seq`, a clock ahead of the server cannot freeze a session: one heartbeat dated 2100
/// followed by correct ones, and a clock always an hour ahead, both stay counted at every sample.
#[tokio::test]
async fn a_clock_ahead_of_the_server_never_freezes_a_session() {
    let mut p = Pipeline::new("clock-ahead").await;
    p.run_ahead_of_ttl();
    let t0 = p.clock.now_ms();
    for tick in 0..60 {
        p.clock.set_ms(t0 + tick * 1000);
        if tick % 5 == 0 {
            let now = p.clock.now_ms();
            let kind = if tick == 0 { "start" } else { "heartbeat" };
            let once_2100 = if tick == 5 { YEAR_2100_MS } else { now };
            p.send([
                body("st", "set-top-box", kind, once_2100, None),
                body("st", "fast-phone", kind, now + HOUR_MS, None),
            ])
            .await;
        }
        p.aggregate().await;
        assert_eq!(p.viewers("st").await, 2, "tick {tick}");
    }
    p.cleanup().await;
}

/// With `seq`, sessions whose clocks say anything (years off, jumping back and forth) and whose
/// messages arrive twice, shuffled, with extra copies up to twelve seconds late (after the
/// session's newer events): the counts equal those of in-order delivery, and the independent
/// oracle's, at every sample.
#[tokio::test]
async fn with_seq_any_delivery_order_gives_the_counts_of_in_order_delivery() {
    let mut in_order = Pipeline::new("seq-in-order").await;
    let mut chaotic = Pipeline::new("seq-chaotic").await;
    in_order.run_ahead_of_ttl();
    chaotic.clock.set_ms(in_order.clock.now_ms());
    let mut oracle = Oracle::new(in_order.config.timing);
    let mut rng = fastrand::Rng::with_seed(0x5e9);
    let t0 = in_order.clock.now_ms();
    // (tick to deliver at, tick sent, session, message)
    let mut late: Vec<(i64, i64, usize, aws_lambda_events::event::sqs::SqsMessage)> = Vec::new();
    let mut newest_sent: std::collections::HashMap<usize, i64> = Default::default();
    let (mut reordered, mut samples) = (0, Vec::new());
    for tick in 0..80 {
        let now_ms = t0 + tick * 1000;
        in_order.clock.set_ms(now_ms);
        chaotic.clock.set_ms(now_ms);
        let mut messages = Vec::new();
        for session in 0..8usize {
            let phase = session as i64 % 5;
            if tick < phase || (tick - phase) % 5 != 0 || (session == 7 && tick > 50) {
                continue; // session 7 leaves silently
            }
            let kind = match tick - phase {
                0 => "start",
                40 if session % 3 == 0 => "stop",
                t if t > 40 && session % 3 == 0 => continue,
                _ => "heartbeat",
            };
            let ts = rng.i64(0..YEAR_2100_MS); // any clock at all
            let seq = ((tick - phase) / 5) as u64;
            let body = body("st", &format!("viewer-{session}"), kind, ts, Some(seq));
            newest_sent.insert(session, tick);
            messages.push((session, in_order.message(body, now_ms)));
        }
        let plain: Vec<_> = messages.iter().map(|(_, m)| m.clone()).collect();
        in_order.ingest(&plain).await;
        in_order.aggregate().await;
        for m in &plain {
            oracle.deliver_body(m.body.as_deref().unwrap_or_default(), now_ms);
        }

        let mut deliveries: Vec<_> = plain.iter().chain(plain.iter()).cloned().collect();
        let (due, waiting): (Vec<_>, Vec<_>) = late.drain(..).partition(|(at, ..)| *at <= tick);
        late = waiting;
        for (_, sent, session, copy) in due {
            if newest_sent
                .get(&session)
                .is_some_and(|&newest| newest > sent)
            {
                reordered += 1; // an older event after a newer one of the same session
            }
            deliveries.push(copy);
        }
        for (session, m) in &messages {
            late.push((tick + rng.i64(3..=12), tick, *session, m.clone()));
        }
        rng.shuffle(&mut deliveries);
        while !deliveries.is_empty() {
            let size = rng.usize(1..=4).min(deliveries.len());
            let batch: Vec<_> = deliveries.drain(..size).collect();
            chaotic.ingest(&batch).await;
        }
        chaotic.aggregate().await;
        let expected = in_order.viewers("st").await;
        assert_eq!(chaotic.viewers("st").await, expected, "tick {tick}");
        assert_eq!(
            expected,
            oracle.viewers("st", now_ms / 1000),
            "tick {tick}: oracle"
        );
        samples.push(expected);
    }
    assert!(
        reordered > 20,
        "older events arrived after newer ones ({reordered})"
    );
    // The scenario moved: all eight, then three stops and a silent leave.
    assert_eq!(samples.iter().max(), Some(&8));
    assert_eq!(samples.last(), Some(&4));
    in_order.cleanup().await;
    chaotic.cleanup().await;
}

/// A player reloaded with the same `sessionId` that restarts its `seq` at 0 (after an hour of
/// heartbeats, `seq` 720) counts again with its `start`, at once, is not hidden by the old page's
/// `stop` arriving late, and keeps counting with its heartbeats; a replayed old `start` after a
/// later `stop` does not bring the viewer back.
#[tokio::test]
async fn a_reloaded_player_counts_at_once_whatever_seq_it_restarts_from() {
    let mut p = Pipeline::new("reload").await;
    p.run_ahead_of_ttl();
    let t0 = p.clock.now_ms();
    let old_start = body("st", "tv-1", "start", t0, Some(0));
    p.send([old_start.clone()]).await;
    p.clock.set_ms(t0 + HOUR_MS);
    let late = p.clock.now_ms();
    p.send([body("st", "tv-1", "heartbeat", late, Some(720))])
        .await;
    p.aggregate().await;
    assert_eq!(p.viewers("st").await, 1);

    // The page reloads 30 s later (the viewer dropped out of the count meanwhile) and its
    // player starts again from seq 0.
    let reload = late + 30_000;
    p.clock.set_ms(reload);
    p.aggregate().await;
    assert_eq!(p.viewers("st").await, 0, "gone while the page reloaded");
    p.send([body("st", "tv-1", "start", reload, Some(0))]).await;
    p.aggregate().await;
    assert_eq!(p.viewers("st").await, 1, "counted with its start");
    // The old page's `stop` (sent on pagehide, before the reload) arrives late.
    let report = p
        .send([body("st", "tv-1", "stop", late + 2_000, Some(721))])
        .await;
    assert_eq!(
        report.stale, 1,
        "the old run's stop is older than the new start"
    );
    p.aggregate().await;
    assert_eq!(p.viewers("st").await, 1, "still counted");
    for beat in 1..=4_i64 {
        p.clock.set_ms(reload + beat * 5_000);
        let now = p.clock.now_ms();
        p.send([body("st", "tv-1", "heartbeat", now, Some(beat as u64))])
            .await;
        p.aggregate().await;
        assert_eq!(p.viewers("st").await, 1, "heartbeat {beat} of the new run");
    }

    // The viewer stops; the hour-old start replayed (same bytes) cannot bring it back, and
    // neither can one of the new run's heartbeats.
    let stop_at = p.clock.now_ms() + 1_000;
    p.clock.set_ms(stop_at);
    p.send([body("st", "tv-1", "stop", stop_at, Some(5))]).await;
    p.clock.set_ms(stop_at + 1_000);
    let replayed = p.send([
        old_start,
        body("st", "tv-1", "heartbeat", reload + 5_000, Some(1)),
    ]);
    let report = replayed.await;
    assert_eq!((report.applied, report.stale), (0, 2), "{report:?}");
    p.aggregate().await;
    assert_eq!(p.viewers("st").await, 0);
    p.cleanup().await;
}
