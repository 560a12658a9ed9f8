//! The public edge under attack: players post through the edge router in-process, as the edge
//! Lambda and `livecount dev` serve it, while one client floods it with what no real player
//! sends. Only the honest count moves; every refusal is counted under its reason and costs no
//! write.

// Test helpers outside #[test] functions: a failed step is a failed test.
#![allow(clippy::expect_used)]

use livecount_core::breakdown::Breakdowns;
use livecount_core::edge::VIEWER_COUNTRY_HEADER;
use livecount_core::token::TokenSecret;
use livecount_tests::recorder::Recorder;
use livecount_tests::{Pipeline, PipelineOptions, call, edge_metrics, event_body_with};
use serde_json::{Value, json};
use std::collections::BTreeMap;

const STREAM: &str = "keynote";

fn secret() -> TokenSecret {
    TokenSecret::new(b"a-test-secret-of-32-bytes-length".to_vec()).expect("long enough")
}

/// One event of `session` on `stream`, with `seq` and `token`.
fn body(stream: &str, session: &str, kind: &str, ts: i64, seq: u64, token: &str) -> String {
    event_body_with(
        stream,
        session,
        kind,
        ts,
        &[("seq", json!(seq)), ("token", json!(token))],
    )
}

async fn post(router: &axum::Router, body: String) -> (u16, Value) {
    let answer = call(
        router,
        "POST",
        "/events",
        &[("content-type", "text/plain")],
        body,
    )
    .await;
    (answer.status, answer.json)
}

/// 50 honest players heartbeat for two minutes while one client sends, each round, forged
/// tokens, tokens swapped onto other streams and sessions, expired tokens, unsigned events,
/// bodies of many sessions, oversized bodies, and replays of real players' earlier events
/// (including those of players who have stopped). At every sample the count is exactly 50; no
/// attacker stream gets a counter item; each refusal is counted under its reason; and the
/// refused requests made no DynamoDB call.
#[tokio::test]
async fn a_flood_of_forged_replayed_swapped_and_oversized_requests_adds_no_viewer() {
    let recorder = Recorder::default();
    let mut p = Pipeline::with_options(
        "edge-attack",
        PipelineOptions {
            recorder: Some(recorder.clone()),
            ..PipelineOptions::default()
        },
    )
    .await;
    p.run_ahead_of_ttl();
    let router = livecount_edge::router(p.edge(Some(secret())));
    let expiry = p.clock.now_seconds() + 3600;
    let honest: Vec<String> = (0..50).map(|i| format!("viewer-{i:02}")).collect();
    let left: Vec<String> = (0..5).map(|i| format!("left-{i}")).collect();
    let token = |stream: &str, session: &str| {
        let (stream, session) = (
            livecount_tests::stream(stream),
            livecount_tests::session(session),
        );
        secret().sign(&stream, &session, expiry)
    };
    let mut seq = 1_000u64;
    let mut replays: Vec<String> = Vec::new();

    // Five players watch for a moment and leave: their old events are the replays' material.
    let now = p.clock.now_ms();
    for session in &left {
        let start = body(STREAM, session, "start", now, seq, &token(STREAM, session));
        assert_eq!(post(&router, start.clone()).await.0, 202);
        replays.push(start);
    }
    seq += 1;
    for session in &left {
        let stop = body(STREAM, session, "stop", now, seq, &token(STREAM, session));
        assert_eq!(post(&router, stop).await.0, 202);
    }

    let mut sent: BTreeMap<&str, u64> = BTreeMap::new();
    let rounds = 24;
    for round in 0..rounds {
        p.clock.advance_ms(5_000);
        let now = p.clock.now_ms();
        seq += 1;
        let kind = if round == 0 { "start" } else { "heartbeat" };
        for session in &honest {
            let event = body(STREAM, session, kind, now, seq, &token(STREAM, session));
            let (status, answer) = post(&router, event.clone()).await;
            assert_eq!(status, 202, "{answer}");
            if round > 1 {
                assert_eq!(answer["viewers"], 50, "round {round}: the answer's count");
            }
            if round % 6 == 0 {
                replays.push(event);
            }
        }

        // The attack, every kind a few times a round.
        recorder.take();
        let victim = &honest[round % honest.len()];
        let forged = format!("v1.{expiry}.{}", "A".repeat(43));
        let attack: Vec<(&str, String)> = vec![
            (
                "RefusedForged",
                body(STREAM, &format!("fake-{round}"), "start", now, 1, &forged),
            ),
            (
                "RefusedForged",
                body(STREAM, &format!("fake-{round}"), "start", now, 1, "v2.x.y"),
            ),
            // A real player's token on another stream, and on another session.
            (
                "RefusedForged",
                body(
                    &format!("attack-{round}"),
                    victim,
                    "start",
                    now,
                    seq,
                    &token(STREAM, victim),
                ),
            ),
            (
                "RefusedForged",
                body(
                    STREAM,
                    &format!("fake-{round}"),
                    "start",
                    now,
                    seq,
                    &token(STREAM, victim),
                ),
            ),
            (
                "RefusedExpired",
                body(
                    STREAM,
                    "late",
                    "start",
                    now,
                    1,
                    &secret().sign(
                        &livecount_tests::stream(STREAM),
                        &livecount_tests::session("late"),
                        now / 1000 - 1,
                    ),
                ),
            ),
            (
                "RefusedUnsigned",
                event_body_with(&format!("attack-{round}"), "u", "start", now, &[]),
            ),
            (
                "RefusedManySessions",
                format!(
                    "[{},{}]",
                    body(
                        STREAM,
                        &honest[0],
                        "heartbeat",
                        now,
                        seq + 1,
                        &token(STREAM, &honest[0])
                    ),
                    body(
                        STREAM,
                        &honest[1],
                        "heartbeat",
                        now,
                        seq + 1,
                        &token(STREAM, &honest[1])
                    )
                ),
            ),
            (
                "RefusedTooLarge",
                format!(
                    "[{}]",
                    vec![
                        body(
                            STREAM,
                            victim,
                            "heartbeat",
                            now,
                            seq,
                            &token(STREAM, victim)
                        );
                        5
                    ]
                    .join(",")
                ),
            ),
            (
                "RefusedTooLarge",
                format!("{{\"pad\":\"{}\"}}", "x".repeat(8192)),
            ),
            ("RefusedInvalid", "{\"streamId\":\"keynote\"}".to_owned()),
            ("RefusedInvalid", "\u{0}\u{1} not json".to_owned()),
        ];
        for (reason, request) in attack {
            let (status, answer) = post(&router, request).await;
            assert!(
                (400..500).contains(&status),
                "round {round}, {reason}: {status} {answer}"
            );
            assert_eq!(answer["reason"], reason, "round {round}: {answer}");
            *sent.entry(reason).or_default() += 1;
        }
        assert!(
            recorder.take().is_empty(),
            "round {round}: a refused request called DynamoDB"
        );
        // Replays of real events: valid tokens, older than what the table holds; they are
        // acknowledged as stale and change nothing (not even for players who left).
        for replay in &replays {
            assert_eq!(post(&router, replay.clone()).await.0, 202);
        }

        p.aggregate().await;
        assert_eq!(p.viewers(STREAM).await, 50, "round {round}");
    }

    for round in 0..rounds {
        let stream = format!("attack-{round}");
        let stream_id = livecount_tests::stream(&stream);
        let counter = p.store.get_counter(&stream_id).await.expect("read");
        assert!(counter.is_none(), "{stream} has a counter");
    }
    let counted = edge_metrics(&router).await;
    for (reason, times) in &sent {
        assert_eq!(counted[*reason], *times, "{reason}");
    }
    let replayed = replays.len() as u64;
    assert!(counted["EventsStale"] >= replayed, "{counted:?}");
    assert_eq!(
        counted["EventsApplied"],
        50 * rounds as u64 + 2 * left.len() as u64
    );
    p.cleanup().await;
}

/// The answer's count is read at most once a second per stream, whatever the players on it:
/// 200 heartbeats in one second cost one `GetItem`.
#[tokio::test]
async fn the_answers_count_costs_one_read_per_stream_per_second() {
    let p = Pipeline::new("edge-reads").await;
    let router = livecount_edge::router(p.edge(None));
    let now = p.clock.now_ms();
    for i in 0..200 {
        let event = event_body_with(STREAM, &format!("v{i}"), "start", now, &[]);
        assert_eq!(post(&router, event).await.0, 202);
    }
    assert_eq!(edge_metrics(&router).await["CountReads"], 1);
    p.clock.advance_ms(1_000);
    let event = event_body_with(STREAM, "v0", "heartbeat", p.clock.now_ms(), &[]);
    assert_eq!(post(&router, event).await.0, 202);
    assert_eq!(edge_metrics(&router).await["CountReads"], 2);
    p.cleanup().await;
}

/// Behind the flood shield the edge takes only what came through it: a request without the
/// shield's origin secret (sent straight to the function URL) is refused before any write.
#[tokio::test]
async fn behind_the_shield_a_request_that_bypassed_it_is_refused() {
    let recorder = Recorder::default();
    let p = Pipeline::with_options(
        "edge-shield",
        PipelineOptions {
            recorder: Some(recorder.clone()),
            ..PipelineOptions::default()
        },
    )
    .await;
    let edge = livecount_edge::Edge {
        origin_secret: Some("the-origin-secret".to_owned()),
        ..p.edge(None)
    };
    let router = livecount_edge::router(edge);
    let event = || event_body_with(STREAM, "v", "start", p.clock.now_ms(), &[]);
    recorder.take();
    for headers in [
        vec![],
        vec![(livecount_edge::ORIGIN_HEADER, "a-guess")],
        vec![(livecount_edge::ORIGIN_HEADER, "the-origin-secre")],
    ] {
        let answer = call(&router, "POST", "/events", &headers, event()).await;
        assert_eq!(answer.status, 403, "{headers:?}");
        assert_eq!(answer.json["reason"], "RefusedBypass");
    }
    assert!(recorder.take().is_empty(), "a bypass called DynamoDB");
    let through = [(livecount_edge::ORIGIN_HEADER, "the-origin-secret")];
    let answer = call(&router, "POST", "/events", &through, event()).await;
    assert_eq!(answer.status, 202, "{}", answer.json);
    assert_eq!(edge_metrics(&router).await["RefusedBypass"], 3);
    p.cleanup().await;
}

/// `country` is the shield's to say: behind it, a session counts under the country CloudFront's
/// viewer-country header names (a listed one, else `other`), never the one the player sends, and
/// a header that is not two capital letters is no country. An edge without a shield, where
/// anyone can name any header, gives no session a country.
#[tokio::test]
async fn a_sessions_country_is_the_shields_viewer_country_never_the_players() {
    let mut p = Pipeline::with_options(
        "edge-country",
        PipelineOptions {
            breakdowns: Breakdowns::parse("country=US,GB").expect("valid"),
            ..PipelineOptions::default()
        },
    )
    .await;
    let shielded = livecount_edge::router(livecount_edge::Edge {
        origin_secret: Some("the-origin-secret".to_owned()),
        ..p.edge(None)
    });
    let open = livecount_edge::router(p.edge(None));
    let through = (livecount_edge::ORIGIN_HEADER, "the-origin-secret");
    let country = |code| (VIEWER_COUNTRY_HEADER, code);
    let now = p.clock.now_ms();
    // (session, edge, headers, the country the player claims)
    let sessions = [
        ("us", &shielded, vec![through, country("US")], Some("GB")),
        ("gb", &shielded, vec![through, country("GB")], None),
        ("fr", &shielded, vec![through, country("FR")], Some("US")),
        ("lower", &shielded, vec![through, country("gb")], None),
        ("long", &shielded, vec![through, country("GBR")], None),
        ("absent", &shielded, vec![through], Some("US")),
        ("direct", &open, vec![country("US")], Some("US")),
    ];
    for (session, edge, headers, claimed) in &sessions {
        let claimed = claimed.map_or(Value::Null, |c| json!(c));
        let event = event_body_with(STREAM, session, "start", now, &[("country", claimed)]);
        let answer = call(edge, "POST", "/events", headers, event).await;
        assert_eq!(answer.status, 202, "{session}: {}", answer.json);
    }
    p.aggregate().await;
    let breakdown = livecount_core::read::breakdown(
        &p.store,
        &p.config.breakdowns,
        &livecount_tests::stream(STREAM),
        p.clock.now_seconds(),
    )
    .await
    .expect("breakdown");
    assert_eq!(breakdown.viewers, sessions.len() as u64);
    let [countries] = breakdown.dimensions.as_slice() else {
        panic!("one dimension: {:?}", breakdown.dimensions);
    };
    let shown: BTreeMap<&str, u64> = countries
        .values
        .iter()
        .map(|v| (v.value.as_str(), v.viewers))
        .collect();
    let expected = BTreeMap::from([("US", 1), ("GB", 1), ("other", 1), ("none", 4)]);
    assert_eq!(shown, expected);
    p.cleanup().await;
}
