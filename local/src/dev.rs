//! `livecount dev`: the whole pipeline on one machine. DynamoDB Local (started here unless an
//! endpoint is given), the local queue feeding the ingest handler, the stream poller feeding the
//! aggregate handler, the player simulator, the HTTP API and dashboard, and a status line.

use crate::dynamodb_local::{DynamoDbLocal, LaunchError};
use crate::poller::{PollerConfig, StreamPoller};
use crate::queue::{LocalQueue, QueueConfig};
use crate::simulator::{self, SimulatorConfig};
use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Context, LambdaEvent};
use livecount_aggregate::Aggregator;
use livecount_api::{ApiState, EventSink};
use livecount_core::{Clock, Config, Store, StoreError};
use livecount_ingest::Ingest;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Where the tables live.
#[derive(Debug, Clone)]
pub enum Database {
    /// An endpoint that is already running (`AWS_ENDPOINT_URL_DYNAMODB`).
    Endpoint(String),
    /// DynamoDB Local started (and stopped) here, installed under `install_dir` if missing.
    Embedded { install_dir: PathBuf, port: u16 },
}

/// Everything `livecount dev` runs with.
#[derive(Debug, Clone)]
pub struct DevOptions {
    pub config: Config,
    pub http: SocketAddr,
    pub database: Database,
    /// `None` runs no simulated players (events come from `POST /api/events`).
    pub simulator: Option<SimulatorConfig>,
    pub queue: QueueConfig,
    pub poller: PollerConfig,
    /// How often to print the status line (`None`: never).
    pub status_every: Option<Duration>,
    /// Origins allowed to `POST /events` from a browser (`*` for any).
    pub cors_origins: Vec<String>,
}

/// Why `livecount dev` could not start.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error("cannot listen on {address}: {reason}")]
    Listen { address: SocketAddr, reason: String },
    #[error("DynamoDB Local could not be started")]
    DynamoDbLocal(#[from] LaunchError),
    #[error("could not create the tables at {endpoint}")]
    Tables {
        endpoint: String,
        #[source]
        source: StoreError,
    },
}

/// Runs until `shutdown` resolves, then stops every task and DynamoDB Local.
pub async fn run(options: DevOptions, shutdown: impl Future<Output = ()>) -> Result<(), DevError> {
    let listener = tokio::net::TcpListener::bind(options.http)
        .await
        .map_err(|e| DevError::Listen {
            address: options.http,
            reason: if e.kind() == std::io::ErrorKind::AddrInUse {
                "the port is in use (choose another with --port)".to_owned()
            } else {
                e.to_string()
            },
        })?;
    let http = listener.local_addr().unwrap_or(options.http);

    let (endpoint, embedded) = match &options.database {
        Database::Endpoint(url) => (url.clone(), None),
        Database::Embedded { install_dir, port } => {
            let local = DynamoDbLocal::start(install_dir, *port).await?;
            (local.endpoint(), Some(local))
        }
    };
    let result = serve(&options, listener, http, &endpoint, shutdown).await;
    if let Some(local) = embedded {
        local.stop().await;
    }
    result
}

async fn serve(
    options: &DevOptions,
    listener: tokio::net::TcpListener,
    http: SocketAddr,
    endpoint: &str,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DevError> {
    let sdk = crate::local_sdk_config(endpoint).await;
    let config = options.config.clone();
    let store = Store::new(aws_sdk_dynamodb::Client::new(&sdk), &config);
    store
        .create_tables()
        .await
        .map_err(|source| DevError::Tables {
            endpoint: endpoint.to_owned(),
            source,
        })?;
    let stream_arn = store
        .sessions_stream_arn()
        .await
        .map_err(|source| DevError::Tables {
            endpoint: endpoint.to_owned(),
            source,
        })?;
    let clock = Clock::system();
    let aggregator = Aggregator::new(store.clone(), config.clone());
    let queue = LocalQueue::new(options.queue.clone(), clock.clone());
    let dead_letters = queue.clone();
    let ingest = Ingest {
        dead_letters: Some(livecount_ingest::DeadLetters::Local(std::sync::Arc::new(
            move |id, body, reasons| dead_letters.dead_letter(id, body, reasons),
        ))),
        ..Ingest::new(store.clone(), config.clone())
    };
    let poller = StreamPoller::new(
        crate::streams_client(&sdk),
        stream_arn,
        options.poller.clone(),
    );
    let lag = Lag::default();
    let stop = CancellationToken::new();

    // Every part runs as a future of this one task, joined below: nothing here needs threads.
    let ingesting = async {
        let handler = async |event: SqsEvent| {
            livecount_ingest::handler(&ingest, LambdaEvent::new(event, Context::default())).await
        };
        queue.run(handler, stop.cancelled()).await;
    };
    let aggregating = async {
        let handler = async |event: Event| {
            let received = lag.received_at(&event);
            let response = livecount_aggregate::handler(
                &aggregator,
                LambdaEvent::new(event, Context::default()),
            )
            .await;
            lag.record(received);
            response
        };
        poller.run(handler, stop.cancelled()).await;
    };
    let simulating = async {
        if let Some(simulation) = options.simulator.clone() {
            simulator::run(
                simulation,
                |body| drop(queue.enqueue(body)),
                stop.cancelled(),
            )
            .await;
        }
    };
    let serving = async {
        let state = ApiState {
            store: store.clone(),
            clock: clock.clone(),
            events: Some(Arc::new(queue.clone())),
            cors_origins: options.cors_origins.clone(),
        };
        let app = livecount_api::router(state);
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stop.clone().cancelled_owned())
            .await
        {
            tracing::error!(error = %e, "HTTP server failed");
        }
    };
    let reporting = async {
        if let Some(every) = options.status_every {
            status_lines(every, &store, &queue, &lag, &stop).await;
        }
    };
    let stopping = async {
        shutdown.await;
        println!("livecount dev: stopping");
        stop.cancel();
    };

    println!("livecount dev: dashboard on http://{http}/");
    println!(
        "livecount dev: DynamoDB at {endpoint} (tables {} and {})",
        config.sessions_table, config.counters_table
    );
    println!("livecount dev: Ctrl-C stops everything");
    tokio::join!(
        ingesting,
        aggregating,
        simulating,
        serving,
        reporting,
        stopping
    );
    Ok(())
}

impl EventSink for LocalQueue {
    fn enqueue(&self, body: String) -> String {
        LocalQueue::enqueue(self, body)
    }
}

/// Pipeline lag per stream: from a message's `SentTimestamp` (the session row's `recvAt`) to the
/// end of the aggregate call that applied it.
#[derive(Default)]
struct Lag {
    by_stream: Mutex<BTreeMap<String, i64>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecvProbe {
    stream_id: String,
    recv_at: i64,
}

impl Lag {
    fn received_at(&self, event: &Event) -> BTreeMap<String, i64> {
        let mut newest: BTreeMap<String, i64> = BTreeMap::new();
        for record in &event.records {
            if let Ok(probe) =
                serde_dynamo::from_item::<_, RecvProbe>(record.change.new_image.clone())
            {
                let at = newest.entry(probe.stream_id).or_insert(probe.recv_at);
                *at = (*at).max(probe.recv_at);
            }
        }
        newest
    }

    fn record(&self, received: BTreeMap<String, i64>) {
        let now = Clock::system().now_ms();
        if let Ok(mut lag) = self.by_stream.lock() {
            for (stream, at) in received {
                lag.insert(stream, now - at);
            }
        }
    }

    fn get(&self, stream: &str) -> Option<i64> {
        self.by_stream
            .lock()
            .ok()
            .and_then(|l| l.get(stream).copied())
    }
}

async fn status_lines(
    every: Duration,
    store: &Store,
    queue: &LocalQueue,
    lag: &Lag,
    stop: &CancellationToken,
) {
    let mut last = queue.stats().events_by_stream;
    let mut ticker = tokio::time::interval(every);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let stats = queue.stats();
        let now = Clock::system().now_seconds();
        let counts = match livecount_core::all_live_counts(store, now).await {
            Ok(counts) => counts,
            Err(e) => {
                eprintln!(
                    "status: cannot read counters: {}",
                    livecount_core::error_chain(&e)
                );
                continue;
            }
        };
        let mut parts = Vec::new();
        for count in &counts {
            let events = stats
                .events_by_stream
                .get(&count.stream_id)
                .copied()
                .unwrap_or(0);
            let rate = (events - last.get(&count.stream_id).copied().unwrap_or(0)) as f64
                / every.as_secs_f64();
            let lag = lag
                .get(&count.stream_id)
                .map_or("–".to_owned(), |ms| format!("{ms} ms"));
            parts.push(format!(
                "{}: {} watching (peak {}) · {rate:.1} events/s · lag {lag}",
                count.stream_id, count.viewers, count.peak
            ));
        }
        if parts.is_empty() {
            parts.push("no counters yet".to_owned());
        }
        let time = chrono::DateTime::from_timestamp(now, 0)
            .map(|t| t.format("%H:%M:%S").to_string())
            .unwrap_or_default();
        let dead = if stats.dead_letters > 0 {
            format!(" · {} dead letters", stats.dead_letters)
        } else {
            String::new()
        };
        eprintln!("[{time}] {}{dead}", parts.join(" | "));
        last = stats.events_by_stream;
    }
}
