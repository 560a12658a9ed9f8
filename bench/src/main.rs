//! `livecount-bench`: runs every benchmark against the DynamoDB Local at
//! `AWS_ENDPOINT_URL_DYNAMODB` and writes `BENCHMARKS.md` and `docs/benchmarks.svg`
//! (`make bench` runs it, after the criterion benches, under a fresh DynamoDB Local);
//! `livecount-bench scale` runs the scale simulation (`make bench-scale`). Unknown arguments are
//! refused before anything runs. Progress goes to stderr; `LIVECOUNT_LOG` takes a `tracing`
//! filter for more (`livecount_sim=debug`: the simulation's queue and sessions table each
//! second; `livecount_bench=debug`: every fifth second of each scale scenario's first stream).

mod accuracy;
mod designs;
mod read_cost;
mod report;
mod scale;
mod system;
mod table;

use accuracy::Workload;
use clap::{Parser, Subcommand};
use livecount_tests::Crowd;

use report::{Handlers, Report};
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use tracing_subscriber::EnvFilter;

/// The simulation allocates and frees millions of small items a second; mimalloc does that
/// several times faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "livecount-bench", about = "livecount's benchmarks")]
struct Args {
    /// A smoke run with small sizes (the numbers are not the published ones; BENCHMARKS.md is
    /// written all the same).
    #[arg(long)]
    quick: bool,
    #[command(subcommand)]
    mode: Option<Mode>,
}

#[derive(Subcommand)]
enum Mode {
    /// The scale scenarios in the simulation (no DynamoDB needed); a full run writes the scale
    /// section of BENCHMARKS.md and docs/scale.svg.
    Scale {
        /// Scale every audience by this factor (a partial run: nothing is written).
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        /// Run only the scenario with this key (a, b, …; a partial run: nothing is written).
        #[arg(long)]
        only: Option<String>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("LIVECOUNT_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("livecount-bench: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), designs::Error> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    if let Some(Mode::Scale { scale, only }) = args.mode {
        return run_scale(&root, scale, only);
    }
    let endpoint = livecount_tests::dynamodb_endpoint();
    let sdk = livecount_local::local_sdk_config(&endpoint).await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);

    let quick = args.quick;
    let (seconds, sizes, probes, events): (i64, &[u64], usize, u64) = if quick {
        (40, &[100, 1_000], 10, 2_000)
    } else {
        (180, &[100, 1_000, 10_000, 50_000], 100, 20_000)
    };

    eprintln!("bench: accuracy, five players");
    let five = accuracy::run(
        Workload::FivePlayers(Crowd::five_players("five")),
        if quick { 90 } else { 120 },
        1,
    )
    .await?;
    eprintln!("bench: accuracy, 1,000 players over 20 streams");
    let crowd = Workload::Crowd {
        crowd: Crowd::random(6, 20, 50, seconds),
        duplicate_rate: 0.1,
        reorder_rate: 0.05,
    };
    let thousand = accuracy::run(crowd, seconds, 2).await?;
    let mut reads = Vec::new();
    for &sessions in sizes {
        eprintln!("bench: read cost, {sessions} sessions");
        reads.push(read_cost::run(&client, sessions).await?);
    }
    eprintln!("bench: freshness");
    let freshness = system::freshness(&sdk, probes).await?;
    eprintln!("bench: end-to-end throughput");
    let throughput = system::throughput(&sdk, events).await?;

    let report = Report {
        machine: machine(),
        accuracy: vec![five, thousand],
        reads,
        freshness,
        throughput,
        handlers: Handlers {
            ingest_ns_per_event: criterion_mean(&root, "ingest/parse_validate_coalesce_per_event")
                .map(|ns| ns / 1000.0),
            aggregate_ns_per_record: criterion_mean(&root, "aggregate/read_and_plan_per_record")
                .map(|ns| ns / 1000.0),
        },
    };
    // The scale section (`make bench-scale`) is kept as it is.
    let path = root.join("BENCHMARKS.md");
    let existing = std::fs::read_to_string(&path).unwrap_or_default();
    let markdown = match (existing.find(scale::BEGIN), existing.find(scale::END)) {
        (Some(a), Some(b)) if a < b => {
            scale::splice(&report.markdown(), &existing[a..b + scale::END.len()])
        }
        _ => report.markdown(),
    };
    std::fs::write(&path, markdown)?;
    report.write_chart(&root.join(report::CHART))?;
    eprintln!("bench: wrote BENCHMARKS.md and {}", report::CHART);
    Ok(())
}

/// `livecount-bench scale [--scale F] [--only KEY]`: the scale scenarios (no DynamoDB needed).
fn run_scale(root: &Path, factor: f64, only: Option<String>) -> Result<(), designs::Error> {
    let cost = livecount_sim::engine::HandlerCost {
        ingest_ns_per_event: criterion_mean(root, "ingest/parse_validate_coalesce_per_event")
            .map_or(600.0, |ns| ns / 1000.0),
        aggregate_ns_per_record: criterion_mean(root, "aggregate/read_and_plan_per_record")
            .map_or(900.0, |ns| ns / 1000.0),
    };
    let outcomes = scale::run_all(factor, only.as_deref(), cost);
    if let Some(key) = only.as_deref()
        && outcomes.is_empty()
    {
        return Err(format!("no scale scenario has the key {key:?}").into());
    }
    if factor != 1.0 || only.is_some() {
        eprintln!("bench-scale: a partial run (--scale or --only); BENCHMARKS.md left as it is");
        return Ok(());
    }
    let path = root.join("BENCHMARKS.md");
    let existing = std::fs::read_to_string(&path).unwrap_or_default();
    let section = scale::markdown(&outcomes, &machine_cpu());
    std::fs::write(&path, scale::splice(&existing, &section))?;
    scale::write_chart(&outcomes, &root.join(scale::CHART))?;
    eprintln!(
        "bench-scale: wrote the scale section of BENCHMARKS.md and {}",
        scale::CHART
    );
    Ok(())
}

/// Criterion's mean time of one iteration (1,000 elements), in ns.
fn criterion_mean(root: &Path, bench: &str) -> Option<f64> {
    let text = std::fs::read_to_string(
        root.join("target/criterion")
            .join(bench)
            .join("new/estimates.json"),
    )
    .ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["mean"]["point_estimate"].as_f64()
}

/// The CPU, cores and date (the scale runs need no DynamoDB Local).
fn machine_cpu() -> String {
    let full = machine();
    let cpu = full.split(';').next().unwrap_or_default().to_owned();
    format!("{cpu}; {}", chrono::Utc::now().format("%Y-%m-%d"))
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or("?".to_owned(), |kb| format!("{} GiB", kb / 1024 / 1024));
    let rustc = Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let jar = std::env::var("LIVECOUNT_DYNAMODB_LOCAL_DIR")
        .ok()
        .and_then(|dir| livecount_local::dynamodb_local::jar_dir(Path::new(&dir)))
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "DynamoDB Local".to_owned());
    format!(
        "{cpu}, {cores} cores, {memory} memory; {rustc}, release build; {jar} in memory, on the same machine; {}",
        chrono::Utc::now().format("%Y-%m-%d")
    )
}

#[cfg(test)]
mod tests {
    /// The text of every `<text>` element of `svg`, which must be a well-formed SVG document.
    pub fn svg_texts(svg: &str) -> Vec<String> {
        let doc = roxmltree::Document::parse(svg).expect("well-formed XML");
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        doc.descendants()
            .filter(|n| n.has_tag_name("text"))
            .map(|n| n.text().unwrap_or_default().trim().to_owned())
            .collect()
    }

    /// What `draw` writes to a file of its own (removed afterwards), as text.
    pub fn drawn(
        name: &str,
        draw: impl FnOnce(&std::path::Path) -> Result<(), crate::designs::Error>,
    ) -> String {
        let path = std::env::temp_dir().join(format!("{name}-{}.svg", std::process::id()));
        draw(&path).expect("draws");
        let svg = std::fs::read_to_string(&path).expect("written");
        std::fs::remove_file(&path).ok();
        svg
    }

    /// Asserts that `svg` is well-formed and has a `<text>` with each of `names`.
    pub fn assert_svg_with(svg: &str, names: &[&str]) {
        let texts = svg_texts(svg);
        for name in names {
            assert!(texts.iter().any(|t| t == name), "no {name:?} in {texts:?}");
        }
    }
}
