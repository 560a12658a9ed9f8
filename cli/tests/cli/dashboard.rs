use crate::harness::{Dev, http_get, http_post, run_within, unique, wait_for};
use std::path::PathBuf;
use std::time::Duration;
use tokio::process::Command;

fn chromium() -> String {
    for candidate in ["chromium", "chromium-browser", "google-chrome"] {
        if std::process::Command::new(candidate)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return candidate.to_owned();
        }
    }
    panic!("Chromium is not installed: `make test` installs Debian's chromium package");
}

/// Runs headless Chromium on `url` with the flags this machine needs.
async fn headless(url: &str, action: &[&str]) -> String {
    let profile = std::env::temp_dir().join(unique("chromium-profile"));
    let mut command = Command::new(chromium());
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        .args([
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .args([
            "--disable-quic",
            "--hide-scrollbars",
            "--window-size=1280,720",
            "--virtual-time-budget=4000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(action)
        .arg(url);
    let output = run_within(&mut command, Duration::from_secs(90)).await;
    let _ = std::fs::remove_dir_all(profile);
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The number in `<span id="viewers" data-stream="STREAM">N</span>` of the rendered page.
fn shown_viewers(dom: &str, stream: &str) -> Option<u64> {
    let start = dom.find("id=\"viewers\"")?;
    let tag_end = start + dom[start..].find('>')?;
    let tag = &dom[start..tag_end];
    if !tag.contains(&format!("data-stream=\"{stream}\"")) {
        return None;
    }
    let text_end = tag_end + 1 + dom[tag_end + 1..].find('<')?;
    dom[tag_end + 1..text_end].trim().parse().ok()
}

/// The default five players show as exactly 5 on the dashboard, the number `livecount count`
/// reads, with the stream's watch time and average and its breakdowns by device and CDN adding
/// up to 5, its sessions started and unique viewers, and what the edge refused is shown by reason; a screenshot is kept in
/// `target/e2e/dashboard.png`. The app runs in-process, as `livecount dev` builds it.
#[tokio::test]
async fn the_dashboard_shows_the_count_that_livecount_count_reads() {
    let dev = Dev::start(&unique("dashboard"), &[]).await;
    let api = format!("{}/api/streams/demo", dev.url);
    let five = wait_for(Duration::from_secs(30), || async {
        http_get(&api)
            .await
            .is_some_and(|body| body.contains("\"viewers\":5"))
    })
    .await;
    assert!(five, "the API did not reach 5 viewers within 30 s");
    for body in ["not json", "{\"streamId\":\"demo\"}"] {
        assert_eq!(
            http_post(&format!("{}/events", dev.url), body).await,
            Some(400)
        );
    }

    let dom = headless(&format!("{}/", dev.url), &["--dump-dom"]).await;
    let shown = shown_viewers(&dom, "demo")
        .unwrap_or_else(|| panic!("no viewer count for demo in the page:\n{dom}"));
    assert_eq!(
        shown,
        dev.count("demo").await,
        "the dashboard and `livecount count` disagree"
    );
    assert_eq!(shown, 5);
    let refused = dom
        .split("id=\"edge-refused\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap_or_default();
    assert_eq!(refused, "2", "the edge's refusals on the dashboard:\n{dom}");
    assert!(dom.contains("Invalid<b>2</b>"), "refused by reason:\n{dom}");
    // The stream's figures, from /summary and /history: watch time and average are shown.
    let shown = |id: &str| {
        dom.split(&format!("id=\"{id}\">"))
            .nth(1)
            .and_then(|rest| rest.split('<').next())
            .unwrap_or_default()
            .to_owned()
    };
    let watch = shown("watch-time");
    assert!(
        watch.ends_with(" viewer-min") || watch.ends_with(" viewer-h"),
        "the watch time on the dashboard: {watch:?}"
    );
    assert!(
        shown("average").parse::<f64>().is_ok(),
        "the average on the dashboard: {:?}",
        shown("average")
    );
    // Sessions started and unique viewers (the simulator's players send `userId`s): numbers,
    // and never more viewers than sessions.
    let count = |id: &str| {
        shown(id)
            .parse::<u64>()
            .unwrap_or_else(|_| panic!("{id} on the dashboard: {:?}", shown(id)))
    };
    assert!(count("unique-viewers") <= count("sessions-started"));

    // The breakdowns `livecount dev` makes by default: each dimension's bars add up to 5.
    for dimension in ["device", "cdn"] {
        let chart = dom
            .split(&format!("data-dimension=\"{dimension}\""))
            .nth(1)
            .and_then(|rest| rest.split("data-dimension=").next())
            .unwrap_or_else(|| panic!("no {dimension} breakdown on the dashboard:\n{dom}"));
        let bars: u64 = chart
            .split("<b>")
            .skip(1)
            .filter_map(|rest| rest.split('<').next()?.trim().parse::<u64>().ok())
            .sum();
        assert_eq!(bars, 5, "the {dimension} bars on the dashboard:\n{chart}");
    }

    let artifacts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/e2e");
    std::fs::create_dir_all(&artifacts).expect("artifact folder");
    let screenshot = artifacts.join("dashboard.png");
    let _ = std::fs::remove_file(&screenshot);
    headless(
        &format!("{}/", dev.url),
        &[&format!("--screenshot={}", screenshot.display())],
    )
    .await;
    let size = std::fs::metadata(&screenshot).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 10_000,
        "the screenshot is missing or blank ({size} bytes)"
    );
    dev.stop().await;
}
