use crate::harness::{Dev, run_within, unique};
use std::path::Path;
use std::time::Duration;
use tokio::process::Command;

async fn smoke(dev: &Dev, secret: Option<&str>) -> (bool, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/smoke.sh");
    let base = dev.url.trim_end_matches('/');
    let mut command = Command::new(script);
    command
        .arg(format!("{base}/events"))
        .arg(base)
        .env("SMOKE_DEADLINE_SECONDS", "20");
    if let Some(secret) = secret {
        command.env("SMOKE_TOKEN_SECRET", secret);
    }
    let output = run_within(&mut command, Duration::from_secs(90)).await;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// `scripts/smoke.sh`, the check to run after a deploy, against `livecount dev` (in-process): it
/// passes through the same `POST /events` and badge, with and without signed sessions, and fails
/// naming the refusal when the edge refuses (here: a signed deployment and no secret to sign
/// with).
#[tokio::test]
async fn the_post_deploy_smoke_test_passes_against_livecount_dev_and_fails_when_counts_do_not_follow()
 {
    let plain = Dev::start(&unique("smoke"), &["--players", "0"]).await;
    let (ok, text) = smoke(&plain, None).await;
    assert!(ok, "{text}");
    assert!(text.contains("smoke: ok"), "{text}");
    plain.stop().await;

    let secret = "a smoke-test secret of 32 bytes!";
    let signed = Dev::start_with(
        &unique("smoke-signed"),
        &["--players", "0"],
        &[("LIVECOUNT_TOKEN_SECRET", secret)],
    )
    .await;
    let (ok, text) = smoke(&signed, Some(secret)).await;
    assert!(ok, "the script's tokens (openssl) verify in Rust: {text}");
    let (ok, text) = smoke(&signed, None).await;
    assert!(!ok, "an unsigned session must not count: {text}");
    assert!(text.contains("answered 401"), "{text}");
    assert!(text.contains("RefusedUnsigned"), "{text}");
    signed.stop().await;
}
