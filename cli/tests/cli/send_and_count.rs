use crate::harness::{Dev, livecount, run_within, unique, wait_for};
use std::time::Duration;

fn events(kind: &str, sessions: &[&str]) -> String {
    let ts = chrono_like_now_ms();
    sessions
        .iter()
        .map(|s| format!("{{\"streamId\":\"from-file\",\"sessionId\":\"{s}\",\"type\":\"{kind}\",\"ts\":{ts}}}\n"))
        .collect()
}

fn chrono_like_now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default()
}

/// `livecount send FILE` to the running `dev`; fails the test if it does not succeed.
fn send(dev: &Dev, file: &std::path::Path) {
    let sent = run_within(
        livecount(&dev.tables).args(["send", &file.to_string_lossy(), "--api", &dev.url]),
        Duration::from_secs(30),
    );
    assert!(
        sent.status.success(),
        "send failed: {}",
        String::from_utf8_lossy(&sent.stderr)
    );
}

/// `livecount send` with a file of events for three sessions gives 3 from `livecount count`;
/// two of them sending `stop` gives 1.
#[test]
fn sent_events_for_three_sessions_count_three_and_two_stops_leave_one() {
    let dev = Dev::start(&unique("send"), &["--players", "0"]);
    let dir = std::env::temp_dir().join(unique("events"));
    std::fs::create_dir_all(&dir).expect("temp dir");

    let starts = dir.join("starts.jsonl");
    std::fs::write(&starts, events("start", &["a", "b", "c"])).expect("write events");
    send(&dev, &starts);
    assert!(
        wait_for(Duration::from_secs(20), || dev.count("from-file") == 3),
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
    send(&dev, &stops);
    assert!(
        wait_for(Duration::from_secs(20), || dev.count("from-file") == 1),
        "two stops did not leave 1"
    );
    let _ = std::fs::remove_dir_all(dir);
}
