//! # livecount-cli
//!
//! The `livecount` command. Each subcommand is a function here; `main.rs` parses arguments,
//! runs one, and turns an error into one line on stderr and a non-zero exit.
//!
//! - `livecount dev`: the whole pipeline locally, with the dashboard ([`dev`], players from
//!   [`simulator`]), on the AWS emulation of `livecount-local`;
//! - `livecount send [FILE|-]`: validates events (JSON lines or arrays) and posts them to a
//!   running `livecount dev`;
//! - `livecount count STREAM [--json]`: the one-GetItem read;
//! - `livecount setup`: creates the three tables at the configured endpoint;
//! - `livecount token --stream S --session ID --ttl 6h`: a signed-session token, signed with
//!   `LIVECOUNT_TOKEN_SECRET`.

pub mod dev;
pub mod simulator;

use clap::{Args, Parser, Subcommand};
use dev::{Database, DevError, DevOptions};
use livecount_core::ids::{SessionId, StreamId};
use livecount_core::{Config, ConfigError, Store, StoreError, error_chain};
use livecount_local::poller::PollerConfig;
use livecount_local::trigger::queue::QueueMapping;
use livecount_local::trigger::stream::StreamMapping;
use simulator::SimulatorConfig;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "livecount",
    version,
    about = "Exact live viewer counts: run the pipeline locally, send events, read counts"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole pipeline on this machine, with simulated players and a live dashboard.
    Dev(DevArgs),
    /// Send events (JSON lines or JSON arrays, from FILE or stdin) to a running `livecount dev`.
    Send(SendArgs),
    /// Print a stream's live count, read with one GetItem.
    Count(CountArgs),
    /// Create the sessions and counters tables at the configured endpoint.
    Setup(EndpointArgs),
    /// Print a signed-session token for one stream and session (secret: LIVECOUNT_TOKEN_SECRET).
    Token(TokenArgs),
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The stream the player watches.
    #[arg(long)]
    pub stream: String,
    /// The player's session id.
    #[arg(long)]
    pub session: String,
    /// How long the token stays valid (`90s`, `30m`, `6h`, `2d`).
    #[arg(long, default_value = "6h", value_parser = humantime::parse_duration)]
    pub ttl: Duration,
}

#[derive(Debug, Args)]
pub struct DevArgs {
    /// Port of the HTTP API and dashboard (0 for any free port).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Port for the DynamoDB Local started here (ignored when AWS_ENDPOINT_URL_DYNAMODB is set).
    #[arg(long, default_value_t = 8000)]
    pub dynamodb_port: u16,
    /// Where DynamoDB Local is (or gets) installed.
    #[arg(long, env = "LIVECOUNT_DYNAMODB_LOCAL_DIR")]
    pub dynamodb_local_dir: Option<PathBuf>,
    /// Use this DynamoDB endpoint instead of starting DynamoDB Local.
    #[arg(long, env = "AWS_ENDPOINT_URL_DYNAMODB")]
    pub endpoint: Option<String>,
    /// Simulated live streams.
    #[arg(long, default_value_t = 1)]
    pub streams: usize,
    /// Simulated players per stream at the start (0 for none: events then come from `send`).
    #[arg(long, default_value_t = 5)]
    pub players: usize,
    /// Heartbeat interval of each player, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    pub heartbeat_ms: u64,
    /// Each heartbeat is sent up to this many milliseconds early or late.
    #[arg(long, default_value_t = 250)]
    pub jitter_ms: u64,
    /// Players joining each stream per minute.
    #[arg(long, default_value_t = 0.0)]
    pub joins_per_minute: f64,
    /// Players leaving each stream per minute.
    #[arg(long, default_value_t = 0.0)]
    pub leaves_per_minute: f64,
    /// Share of leaves that are silent (no `stop` event), 0 to 1.
    #[arg(long, default_value_t = 0.5)]
    pub silent_share: f64,
    /// Share of messages sent twice, 0 to 1.
    #[arg(long, default_value_t = 0.0)]
    pub duplicate_rate: f64,
    /// Share of messages held back until after the session's next one, 0 to 1.
    #[arg(long, default_value_t = 0.0)]
    pub reorder_rate: f64,
    /// Messages per ingest batch (the SQS event source's BatchSize; default: the deployed one).
    #[arg(long, default_value_t = QueueMapping::deployed().batch_size)]
    pub queue_batch_size: usize,
    /// Milliseconds the queue waits to fill an ingest batch (default: the deployed window).
    #[arg(long, default_value_t = QueueMapping::deployed().batching_window_ms as u64)]
    pub queue_batching_window_ms: u64,
    /// Records per aggregate batch (the stream event source's BatchSize; default: the deployed
    /// one).
    #[arg(long, default_value_t = StreamMapping::deployed().batch_size)]
    pub stream_batch_size: usize,
    /// Milliseconds the stream poller waits to fill an aggregate batch (default: the deployed
    /// window).
    #[arg(long, default_value_t = StreamMapping::deployed().batching_window_ms as u64)]
    pub stream_batching_window_ms: u64,
    /// Split DynamoDB Local's one stream shard into this many virtual shards, over which one
    /// partition key's items spread (as after DynamoDB splits a hot partition).
    #[arg(
        long,
        alias = "stream-shards",
        default_value_t = 1,
        value_parser = clap::value_parser!(u32).range(1..=64)
    )]
    pub virtual_shards: u32,
    /// Concurrent aggregate batches per shard (Lambda's ParallelizationFactor), which keep the
    /// order of each item's records only and finish in any order.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub parallelization_factor: u32,
    /// Print no status line.
    #[arg(long)]
    pub quiet: bool,
    /// Origins allowed to POST /events from a browser (repeatable; `*` for any).
    #[arg(long = "cors-origin", default_value = "*")]
    pub cors_origins: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// A file of events, or `-` (the default) for stdin.
    #[arg(default_value = "-")]
    pub file: String,
    /// The HTTP API of a running `livecount dev`.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub api: String,
}

#[derive(Debug, Args)]
pub struct CountArgs {
    pub stream: String,
    /// Print the count as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub endpoint: EndpointArgs,
}

#[derive(Debug, Args)]
pub struct EndpointArgs {
    /// DynamoDB endpoint (by default the AWS environment: AWS_ENDPOINT_URL_DYNAMODB, region, credentials).
    #[arg(long, env = "AWS_ENDPOINT_URL_DYNAMODB")]
    pub endpoint: Option<String>,
}

/// Every way a command fails; `main` prints it as one line.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Dev(#[from] DevError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Input(String),
    #[error("cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("could not post events to {url}: {reason}")]
    Post { url: String, reason: String },
    #[error("invalid stream id")]
    StreamId(#[from] livecount_core::ids::InvalidId),
}

impl CliError {
    /// The error with its causes, on one line.
    pub fn line(&self) -> String {
        error_chain(self)
    }
}

/// What `livecount dev` breaks streams down by when `LIVECOUNT_BREAKDOWNS` is unset: the
/// devices and CDNs its simulated players send.
pub const DEV_BREAKDOWNS: &str = "device=web,ios,android,tv;cdn=cloudfront,fastly";

/// Runs one command.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let config = Config::from_env()?;
    match cli.command {
        Command::Dev(args) => dev(args, config).await,
        Command::Send(args) => send(&args),
        Command::Count(args) => count(&args, &config).await,
        Command::Token(args) => token(&args, &config),
        Command::Setup(args) => {
            let store = store(&args, &config).await;
            livecount_core::admin::TableAdmin::of(&store)
                .create_tables()
                .await?;
            println!(
                "tables {}, {} and {} are ready",
                config.sessions_table, config.counters_table, config.viewers_table
            );
            Ok(())
        }
    }
}

fn token(args: &TokenArgs, config: &Config) -> Result<(), CliError> {
    let Some(livecount_core::config::TokenSecretSource::Value(secret)) = &config.token_secret
    else {
        return Err(CliError::Input(
            "set LIVECOUNT_TOKEN_SECRET to the secret ingest verifies tokens with".to_owned(),
        ));
    };
    let refused =
        |flag: &str, e: livecount_core::ids::InvalidId| CliError::Input(format!("--{flag}: {e}"));
    let stream = StreamId::parse(&args.stream).map_err(|e| refused("stream", e))?;
    let session = SessionId::parse(&args.session).map_err(|e| refused("session", e))?;
    let expiry = livecount_core::Clock::system().now_seconds() + args.ttl.as_secs() as i64;
    println!("{}", secret.sign(&stream, &session, expiry));
    Ok(())
}

async fn dev(args: DevArgs, config: Config) -> Result<(), CliError> {
    dev::run(dev_options(args, config)?, shutdown_signal()).await?;
    Ok(())
}

/// `livecount dev`'s arguments as the options the dev app runs with (the tests build
/// [`dev::DevApp`] in-process from them).
pub fn dev_options(args: DevArgs, config: Config) -> Result<DevOptions, CliError> {
    for (name, share) in [
        ("--silent-share", args.silent_share),
        ("--duplicate-rate", args.duplicate_rate),
        ("--reorder-rate", args.reorder_rate),
    ] {
        if !(0.0..=1.0).contains(&share) {
            return Err(CliError::Input(format!(
                "{name} must be between 0 and 1, not {share}"
            )));
        }
    }
    let database = match args.endpoint {
        Some(url) => Database::Endpoint(url),
        None => Database::Embedded {
            install_dir: args.dynamodb_local_dir.unwrap_or_else(default_install_dir),
            port: args.dynamodb_port,
        },
    };
    let simulator = (args.players > 0 || args.joins_per_minute > 0.0).then(|| SimulatorConfig {
        streams: args.streams.max(1),
        players: args.players,
        heartbeat: Duration::from_millis(args.heartbeat_ms.max(100)),
        jitter: Duration::from_millis(args.jitter_ms),
        joins_per_minute: args.joins_per_minute,
        leaves_per_minute: args.leaves_per_minute,
        silent_share: args.silent_share,
        duplicate_rate: args.duplicate_rate,
        reorder_rate: args.reorder_rate,
        ..SimulatorConfig::default()
    });
    // `livecount dev` breaks its streams down by what its simulated players send, unless
    // LIVECOUNT_BREAKDOWNS says otherwise.
    let mut config = config;
    if std::env::var_os("LIVECOUNT_BREAKDOWNS").is_none() {
        config.breakdowns = livecount_core::breakdown::Breakdowns::parse(DEV_BREAKDOWNS)
            .map_err(|e| CliError::Input(format!("the dev breakdowns: {e}")))?;
    }
    let options = DevOptions {
        config,
        http: SocketAddr::from((Ipv4Addr::LOCALHOST, args.port)),
        database,
        simulator,
        queue: QueueMapping {
            batch_size: args.queue_batch_size.clamp(1, 10_000),
            batching_window_ms: args.queue_batching_window_ms as i64,
            ..QueueMapping::deployed()
        },
        poller: {
            let mut poller = if args.virtual_shards > 1 || args.parallelization_factor > 1 {
                PollerConfig::harsh(args.virtual_shards, args.parallelization_factor)
            } else {
                PollerConfig::default()
            };
            poller.mapping.batch_size = args.stream_batch_size.clamp(1, 10_000);
            poller.mapping.batching_window_ms = args.stream_batching_window_ms as i64;
            poller
        },
        status_every: (!args.quiet).then_some(Duration::from_secs(1)),
        cors_origins: args.cors_origins,
    };
    Ok(options)
}

/// `~/.cache/livecount/dynamodb-local`.
fn default_install_dir() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache.join("livecount/dynamodb-local")
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM. Both are caught from the call on (not from the first
/// poll), so a signal that comes once the app has said where it listens stops it cleanly.
fn shutdown_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let signals = signal(SignalKind::interrupt()).and_then(|interrupt| {
            signal(SignalKind::terminate()).map(|terminate| (interrupt, terminate))
        });
        async move {
            match signals {
                Ok((mut interrupt, mut terminate)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = terminate.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn send(args: &SendArgs) -> Result<(), CliError> {
    let mut text = String::new();
    let source = if args.file == "-" {
        "stdin".to_owned()
    } else {
        args.file.clone()
    };
    let read = if args.file == "-" {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::read_to_string(&args.file).map(|t| text = t)
    };
    read.map_err(|source_error| CliError::Read {
        path: source.clone(),
        source: source_error,
    })?;
    let messages = livecount_api::split_messages(&text)
        .map_err(|reason| CliError::Input(format!("{source}: {reason}")))?;
    let url = format!("{}/api/events", args.api.trim_end_matches('/'));
    let body = messages.join("\n");
    let mut response = ureq::post(&url)
        .header("content-type", "application/x-ndjson")
        .config()
        .http_status_as_error(false)
        .build()
        .send(body.as_bytes())
        .map_err(|e| CliError::Post {
            url: url.clone(),
            reason: format!("{e} (is `livecount dev` running?)"),
        })?;
    let answer = response.body_mut().read_to_string().unwrap_or_default();
    if !response.status().is_success() {
        return Err(CliError::Post {
            url,
            reason: format!("{}: {answer}", response.status()),
        });
    }
    println!("sent {} message(s)", messages.len());
    Ok(())
}

async fn count(args: &CountArgs, config: &Config) -> Result<(), CliError> {
    let count = live_count(args, config).await?;
    if args.json {
        println!("{}", serde_json::to_string(&count).unwrap_or_default());
    } else {
        let time = |t: Option<i64>| {
            t.and_then(|t| chrono::DateTime::from_timestamp(t, 0))
                .map_or("never".to_owned(), |t| {
                    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
                })
        };
        println!("{}: {} watching", count.stream_id, count.viewers);
        println!("peak: {} at {}", count.peak, time(count.peak_at));
        println!("as of: {}", time(Some(count.as_of)));
    }
    Ok(())
}

/// What `livecount count` prints: the stream's live count now, read with one GetItem.
pub async fn live_count(
    args: &CountArgs,
    config: &Config,
) -> Result<livecount_core::LiveCount, CliError> {
    let stream = StreamId::parse(&args.stream)?;
    let store = store(&args.endpoint, config).await;
    let now = livecount_core::Clock::system().now_seconds();
    Ok(livecount_core::live_count(&store, &stream, now).await?)
}

async fn store(args: &EndpointArgs, config: &Config) -> Store {
    let sdk = match &args.endpoint {
        Some(endpoint) => livecount_local::local_sdk_config(endpoint).await,
        None => aws_config::load_from_env().await,
    };
    Store::new(aws_sdk_dynamodb::Client::new(&sdk), config)
}
