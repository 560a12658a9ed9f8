use crate::harness::{Dev, run_within, unique};
use std::path::Path;
use std::time::Duration;
use tokio::process::Command;

/// The web client in a real browser against `livecount dev` (in-process): headless Chromium
/// (driven by `playwright-core`, with Debian's Chromium) opens the `/player` page, whose
/// `<video>` plays a tone the page makes itself. The count is 1 within 6 s of playing;
/// `pause()`, `play()`, closing the page (the beacon) and closing three pages change it within
/// 3 s. `clients/web/test/e2e/player.e2e.mjs` holds the steps and their deadlines.
#[tokio::test]
async fn a_real_video_in_chromium_counts_while_it_plays() {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../clients/web");
    assert!(
        web.join("node_modules/playwright-core").is_dir(),
        "clients/web has no node_modules: `make test` runs `npm ci` there"
    );
    let dev = Dev::start(&unique("player"), &["--players", "0"]).await;
    let output = run_within(
        Command::new("node")
            .current_dir(&web)
            .arg("test/e2e/player.e2e.mjs")
            .arg(dev.url.trim_end_matches('/')),
        Duration::from_secs(120),
    )
    .await;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "player e2e failed:\n{text}");
    assert!(text.contains("player e2e passed"), "{text}");
    println!("{}", text.trim());
    dev.stop().await;
}
