//! The badge behind a real HTTP cache (nginx, configured as the CDN is): 2,000 viewers polling
//! every 5 s cost DynamoDB at most one read per second per stream, and every figure they see was
//! the truth at most the cache's age ago (max-age 1 s, which nginx rounds to whole seconds: 2 s
//! at most), the pipeline's lag included.

// Test helpers outside #[test] functions: a failed step is a failed test.
#![allow(clippy::expect_used)]

use livecount_api::{ApiState, BADGE_MAX_AGE_SECONDS, PUBLIC_HEADER, router};
use livecount_tests::http_cache::HttpCache;
use livecount_tests::recorder::Recorder;
use livecount_tests::{Pipeline, PipelineOptions, event_body};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CLIENTS: usize = 2_000;
const POLL_EVERY: Duration = Duration::from_secs(5);
const RUN_FOR: Duration = Duration::from_secs(16);
const STREAMS: [&str; 2] = ["final", "semi"];
/// Threads the clients' polls are spread over (each poll is one request on a kept-alive
/// connection to nginx).
const THREADS: usize = 32;

/// One figure a client saw: when it asked, when the answer arrived, for which stream, what it
/// said.
#[derive(Debug, Clone, Copy)]
struct Seen {
    sent: Instant,
    at: Instant,
    stream: usize,
    viewers: u64,
}

/// When a stream's count changed: the update landed between `from` and `until`.
#[derive(Debug, Clone, Copy)]
struct Change {
    from: Instant,
    until: Instant,
    viewers: u64,
}

/// Whether `viewers` was `stream`'s count at some moment of `[start, end]`: a settled count, or
/// while an aggregation was applying a change (each change only adds or only removes viewers),
/// any count between the one before and the one after.
fn was_true(changes: &[Change], start: Instant, end: Instant, viewers: u64) -> bool {
    changes.iter().enumerate().any(|(i, c)| {
        // `c` may count from `c.from` on, and until the next change has surely landed.
        let gone = changes.get(i + 1).map(|n| n.until);
        let settled = c.viewers == viewers && c.from <= end && gone.is_none_or(|g| g >= start);
        let applying = i > 0 && c.from <= end && c.until >= start && {
            let before = changes[i - 1].viewers;
            (before.min(c.viewers)..=before.max(c.viewers)).contains(&viewers)
        };
        settled || applying
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_viewers_polling_the_badge_through_a_cache_cost_one_read_per_second_per_stream()
 {
    let recorder = Recorder::default();
    let mut p = Pipeline::with_options(
        "badge-cdn",
        PipelineOptions {
            recorder: Some(recorder.clone()),
            ..PipelineOptions::default()
        },
    )
    .await;
    let app = router(ApiState {
        store: p.store.clone(),
        clock: p.clock.clone(),
        events: None,
        breakdowns: Default::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let origin = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let cache = HttpCache::start(&origin, PUBLIC_HEADER).await;

    // The truth at the start: no one on either stream.
    let started = Instant::now();
    let changes: Vec<Arc<Mutex<Vec<Change>>>> = STREAMS
        .iter()
        .map(|_| {
            Arc::new(Mutex::new(vec![Change {
                from: started,
                until: started,
                viewers: 0,
            }]))
        })
        .collect();

    // 2,000 viewers, half on each stream, each polling every 5 s from a random offset.
    let seen = Arc::new(Mutex::new(Vec::<Seen>::new()));
    let load = {
        let (url, seen) = (cache.url.clone(), seen.clone());
        tokio::task::spawn_blocking(move || poll_badges(&url, &seen, started))
    };

    // Meanwhile the audiences change every 2 s: sessions start and stop, through the pipeline.
    let mut watching: Vec<Vec<String>> = vec![Vec::new(); STREAMS.len()];
    let mut round = 0;
    let mut own_reads = 0; // this test's own checks of the count, not the badge's

    while started.elapsed() < RUN_FOR {
        tokio::time::sleep(Duration::from_secs(2)).await; // the pace of the audience, not a wait for a result
        round += 1;
        let now = p.clock.now_ms();
        let mut bodies = Vec::new();
        for (s, stream) in STREAMS.iter().enumerate() {
            let target = 10 * round * (s + 1) % 37 + 3;
            while watching[s].len() < target {
                let session = format!("{stream}-{round}-{}", watching[s].len());
                bodies.push(event_body(stream, &session, "start", now));
                watching[s].push(session);
            }
            while watching[s].len() > target {
                let session = watching[s].pop().expect("a session");
                bodies.push(event_body(stream, &session, "stop", now));
            }
        }
        p.send(bodies).await;
        let from = Instant::now();
        p.aggregate().await;
        let until = Instant::now();
        for (s, stream) in STREAMS.iter().enumerate() {
            let before = recorder.calls("dynamodb:GetItem");
            assert_eq!(p.viewers(stream).await, watching[s].len() as u64);
            own_reads += recorder.calls("dynamodb:GetItem") - before;
            changes[s].lock().expect("changes").push(Change {
                from,
                until,
                viewers: watching[s].len() as u64,
            });
        }
    }
    let polls = load.await.expect("the clients");
    let elapsed = started.elapsed().as_secs_f64();

    // Every client polled on schedule: the load was real.
    let expected = CLIENTS as f64 * elapsed / POLL_EVERY.as_secs_f64();
    assert!(
        polls as f64 >= 0.8 * expected,
        "{polls} polls, expected about {expected:.0}"
    );
    // DynamoDB saw at most one read per second per stream (and one more each at the start).
    let reads = recorder.calls("dynamodb:GetItem") - own_reads;
    let bound = STREAMS.len() as f64 * (elapsed.ceil() + 1.0);
    assert!(
        reads as f64 <= bound,
        "{reads} GetItems in {elapsed:.1} s for {polls} polls; at most {bound}"
    );
    // Every figure was the truth at most the cache's age before it was asked for: nginx counts
    // expiry in whole seconds, so an answer kept `max-age=1` may be served until the end of the
    // second after the one it was fetched in (up to 2 s after), plus the fetch itself.
    let age = Duration::from_secs(BADGE_MAX_AGE_SECONDS + 1) + Duration::from_millis(500);
    let seen = std::mem::take(&mut *seen.lock().expect("seen"));
    for s in &seen {
        let changes = changes[s.stream].lock().expect("changes");
        assert!(
            was_true(&changes, s.sent - age, s.at, s.viewers),
            "{} showed {} asked at {:?}, not its count at any moment from {age:?} before: {changes:?}",
            STREAMS[s.stream],
            s.viewers,
            s.sent - started,
        );
    }
    println!(
        "badge through nginx: {polls} polls by {CLIENTS} clients in {elapsed:.1} s, {reads} GetItems, every figure at most {age:?} behind"
    );
    p.cleanup().await;
}

/// Runs the clients for [`RUN_FOR`]; returns how many polls they made.
fn poll_badges(url: &str, seen: &Mutex<Vec<Seen>>, started: Instant) -> usize {
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let url = url.to_owned();
            let clients: Vec<usize> = (t..CLIENTS).step_by(THREADS).collect();
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                // Each client's next poll, from a random offset within the first interval.
                let mut next: Vec<(Instant, usize)> = clients
                    .iter()
                    .map(|&c| {
                        let offset = POLL_EVERY.mul_f64(fastrand::f64());
                        (started + offset, c)
                    })
                    .collect();
                let mut mine = Vec::new();
                loop {
                    next.sort();
                    let (due, client) = next[0];
                    if due - started >= RUN_FOR {
                        return mine;
                    }
                    // Pacing the simulated viewers, not waiting for a result.
                    std::thread::sleep(due.saturating_duration_since(Instant::now()));
                    let stream = client % STREAMS.len();
                    let sent = Instant::now();
                    let mut response = agent
                        .get(format!("{url}/api/streams/{}/viewers", STREAMS[stream]))
                        .call()
                        .expect("the cache answers");
                    assert_eq!(response.status().as_u16(), 200);
                    let text = response.body_mut().read_to_string().expect("a badge");
                    let body: serde_json::Value = serde_json::from_str(&text).expect("JSON");
                    mine.push(Seen {
                        sent,
                        at: Instant::now(),
                        stream,
                        viewers: body["viewers"].as_u64().expect("viewers"),
                    });
                    next[0].0 = due + POLL_EVERY;
                }
            })
        })
        .collect();
    let mut polls = 0;
    for thread in threads {
        let mine = thread.join().expect("a client thread");
        polls += mine.len();
        seen.lock().expect("seen").extend(mine);
    }
    polls
}
