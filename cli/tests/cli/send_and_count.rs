use crate::harness::{Dev, run, unique, wait_for};
use std::time::Duration;

fn events(kind: &str, sessions: &[&str]) -> String {
    let ts = livecount_core::Clock::system().now_ms();
    sessions
        .iter()
        .map(|s| format!("{{\"streamId\":\"from-file\",\"sessionId\":\"{s}\",\"type\":\"{kind}\",\"ts\":{ts}}}\n"))
        .collect()
}

/// `livecount send FILE` to the running `dev`; fails the test if it does not succeed.
async fn send(dev: &Dev, file: &std::path::Path) {
    let sent = run(&["send", &file.to_string_lossy(), "--api", &dev.url]).await;
    assert_eq!(sent, Ok(()), "livecount send failed");
}

/// `livecount send` with a file of events for three sessions gives 3 from `livecount count`;
/// two of them sending `stop` gives 1. `dev`, `send` and `count` run in-process, as the
/// binary runs them.
#[tokio::test]
async fn sent_events_for_three_sessions_count_three_and_two_stops_leave_one() {
    let dev = Dev::start(&unique("send"), &["--players", "0"]).await;
    let dir = std::env::temp_dir().join(unique("events"));
    std::fs::create_dir_all(&dir).expect("temp dir");

    let starts = dir.join("starts.jsonl");
    std::fs::write(&starts, events("start", &["a", "b", "c"])).expect("write events");
    send(&dev, &starts).await;
    assert!(
        wait_for(Duration::from_secs(20), || async {
            dev.count("from-file").await == 3
        })
        .await,
        "3 sessions never counted 3"
    );

    let stops = dir.join("stops.json");
    std::fs::write(
        &stops,
        format!(
            "[{}]",
            events("stop", &["a", "b"]).trim().replace('\n', ",")
        ),
    )
    .expect("write events");
    send(&dev, &stops).await;
    assert!(
        wait_for(Duration::from_secs(20), || async {
            dev.count("from-file").await == 1
        })
        .await,
        "two stops did not leave 1"
    );
    let _ = std::fs::remove_dir_all(dir);
    dev.stop().await;
}
