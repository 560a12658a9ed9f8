use livecount_core::EventKind;
use livecount_tests::{Crowd, Pipeline, PlayerState};

#[tokio::test]
async fn five_players_stay_five_then_stops_and_a_silent_leave_count_down() {
    let mut p = Pipeline::new("five-players").await;
    p.run_ahead_of_ttl();
    let mut audience = Crowd::five_players("launch-keynote");
    let t0 = p.clock.now_ms();
    let mut exact_samples = 0;

    // 70 s of heartbeats, one sample per second.
    for tick in 0..70 {
        p.clock.set_ms(t0 + tick * 1000);
        let messages: Vec<_> = audience
            .bodies(tick, p.clock.now_ms())
            .into_iter()
            .map(|body| p.message_now(body))
            .collect();
        let report = p.ingest(&messages).await;
        assert!(
            report.invalid.is_empty() && report.failed.is_empty(),
            "{report:?}"
        );
        p.aggregate().await;
        let started = audience
            .players
            .iter()
            .filter(|pl| tick >= pl.phase)
            .count() as u64;
        assert_eq!(
            p.viewers(audience.stream_id()).await,
            started,
            "tick {tick}"
        );
        if started == 5 {
            exact_samples += 1;
        }
    }
    assert!(exact_samples >= 60, "only {exact_samples} samples at 5");

    // Players 0 and 1 stop, player 2 goes silent; 3 and 4 go on.
    audience.players[0].state = PlayerState::Stopping;
    audience.players[1].state = PlayerState::Stopping;
    audience.players[2].state = PlayerState::Silent;
    let silent_last_heartbeat_ms = t0 + 67 * 1000; // phase 2: its last turn was tick 67
    let silent_expiry = p
        .config
        .timing
        .expiry(EventKind::Heartbeat, silent_last_heartbeat_ms);
    let window_plus_bucket = p.config.timing.window_seconds + p.config.timing.bucket_seconds;
    assert!(silent_expiry * 1000 <= silent_last_heartbeat_ms + window_plus_bucket * 1000);

    for tick in 70..100 {
        p.clock.set_ms(t0 + tick * 1000);
        let now = p.clock.now_seconds();
        let messages: Vec<_> = audience
            .bodies(tick, p.clock.now_ms())
            .into_iter()
            .map(|body| p.message_now(body))
            .collect();
        p.ingest(&messages).await;
        p.aggregate().await;
        let stopped = audience.players[..2]
            .iter()
            .filter(|pl| pl.state == PlayerState::Stopped)
            .count() as u64;
        let silent_counts = u64::from(now <= silent_expiry);
        let expected = 2 + (2 - stopped) + silent_counts;
        assert_eq!(
            p.viewers(audience.stream_id()).await,
            expected,
            "tick {tick}"
        );
    }
    // Both stops landed within one heartbeat cycle, the silent player aged out by its window.
    assert_eq!(p.viewers(audience.stream_id()).await, 2);
    // …and no row was deleted: none of this waited for TTL.
    assert_eq!(p.session_rows().await, 5);
    p.cleanup().await;
}
