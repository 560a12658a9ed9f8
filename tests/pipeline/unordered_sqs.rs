use livecount_tests::{Crowd, Pipeline, PlayerState};

/// SQS is at-least-once and unordered: every message arrives twice, shuffled, split across
/// batches of random sizes, and a third copy arrives 1 to 9 seconds late, so a session's older
/// event often arrives after its newer one (heartbeats are 5 s apart), in another batch. The
/// counts must equal those of in-order, exactly-once delivery at every sample.
#[tokio::test]
async fn duplicated_and_reordered_sqs_gives_the_same_counts_as_in_order_delivery() {
    let mut in_order = Pipeline::new("sqs-in-order").await;
    let mut chaotic = Pipeline::new("sqs-chaotic").await;
    in_order.run_ahead_of_ttl();
    chaotic.clock.set_ms(in_order.clock.now_ms());
    let mut rng = fastrand::Rng::with_seed(0x5eed_0001);
    let mut audience = Crowd::five_players("match-day");
    let t0 = in_order.clock.now_ms();
    // (tick to deliver at, tick sent, message)
    let mut late_copies: Vec<(i64, i64, aws_lambda_events::event::sqs::SqsMessage)> = Vec::new();
    let mut newest_sent: std::collections::HashMap<String, i64> = Default::default();
    let (mut samples, mut reordered) = (Vec::new(), 0);

    for tick in 0..90 {
        let now_ms = t0 + tick * 1000;
        in_order.clock.set_ms(now_ms);
        chaotic.clock.set_ms(now_ms);
        match tick {
            40 => audience.players[0].state = PlayerState::Stopping,
            55 => audience.players[3].state = PlayerState::Silent,
            _ => {}
        }
        let messages: Vec<_> = audience
            .bodies(tick, now_ms)
            .into_iter()
            .map(|body| in_order.message(body, now_ms))
            .collect();

        in_order.ingest(&messages).await;
        in_order.aggregate().await;

        let session_of = |m: &aws_lambda_events::event::sqs::SqsMessage| {
            let body: serde_json::Value =
                serde_json::from_str(m.body.as_deref().unwrap_or_default()).unwrap_or_default();
            body["sessionId"].as_str().unwrap_or_default().to_owned()
        };
        for m in &messages {
            newest_sent.insert(session_of(m), tick);
        }
        let mut deliveries: Vec<_> = messages.iter().chain(messages.iter()).cloned().collect();
        let (due, waiting): (Vec<_>, Vec<_>) =
            late_copies.drain(..).partition(|(at, ..)| *at <= tick);
        late_copies = waiting;
        for (_, sent, copy) in due {
            if newest_sent
                .get(&session_of(&copy))
                .is_some_and(|&n| n > sent)
            {
                reordered += 1; // older than an event of its session delivered before
            }
            deliveries.push(copy);
        }
        rng.shuffle(&mut deliveries);
        while !deliveries.is_empty() {
            let size = rng.usize(1..=3).min(deliveries.len());
            let batch: Vec<_> = deliveries.drain(..size).collect();
            let report = chaotic.ingest(&batch).await;
            assert!(
                report.invalid.is_empty() && report.failed.is_empty(),
                "{report:?}"
            );
        }
        for m in &messages {
            late_copies.push((tick + rng.i64(1..=9), tick, m.clone()));
        }
        chaotic.aggregate().await;

        let expected = in_order.viewers("match-day").await;
        let got = chaotic.viewers("match-day").await;
        assert_eq!(got, expected, "tick {tick}");
        samples.push(got);
    }
    assert!(
        reordered > 20,
        "older events arrived after newer ones ({reordered})"
    );
    // The scenario really moved: all five, then four after the stop, then three.
    assert!(samples.contains(&5) && samples.contains(&4));
    assert_eq!(samples.last(), Some(&3));
    in_order.cleanup().await;
    chaotic.cleanup().await;
}
