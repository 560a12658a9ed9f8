//! `livecount dev`: the whole pipeline on one machine. DynamoDB Local (started here unless an
//! endpoint is given), the local queue feeding the ingest handler, the stream poller feeding the
//! aggregate handler, the player simulator, the HTTP API and dashboard, and a status line.
//!
//! [`DevApp::build`] binds the port, starts DynamoDB Local and makes every part;
//! [`DevApp::run_until_stopped`] runs them until a shutdown future resolves (as in mini-redis'
//! `server::run(listener, shutdown)`), so a test can run the real app in-process on port 0.

use crate::simulator::{self, SimulatorConfig};
use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Context, LambdaEvent};
use livecount_aggregate::Aggregator;
use livecount_api::{ApiState, EventSink};
use livecount_core::{Clock, Config, Store, StoreError};
use livecount_edge::Edge;
use livecount_ingest::Ingest;
use livecount_local::dynamodb_local::{DynamoDbLocal, LaunchError};
use livecount_local::poller::{PollerConfig, StreamPoller};
use livecount_local::queue::LocalQueue;
use livecount_local::trigger::queue::QueueMapping;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
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
    pub queue: QueueMapping,
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

/// Builds the app and runs it until `shutdown` resolves; DynamoDB Local (if started here) stops
/// with it.
pub async fn run(options: DevOptions, shutdown: impl Future<Output = ()>) -> Result<(), DevError> {
    DevApp::build(options)
        .await?
        .run_until_stopped(shutdown)
        .await;
    Ok(())
}

/// The dev app, built: port bound, DynamoDB up with its tables, every part made.
pub struct DevApp {
    options: DevOptions,
    listener: TcpListener,
    endpoint: String,
    embedded: Option<DynamoDbLocal>,
    parts: Parts,
}

/// The pipeline's parts, as `livecount dev` wires them.
struct Parts {
    store: Store,
    ingest: Ingest,
    aggregator: Aggregator,
    queue: LocalQueue,
    poller: StreamPoller,
    clock: Clock,
}

impl DevApp {
    /// Binds the HTTP port (first, so a port in use fails before anything starts), starts
    /// DynamoDB Local unless an endpoint is given, creates the tables and makes every part.
    pub async fn build(options: DevOptions) -> Result<Self, DevError> {
        let listener = bind(options.http).await?;
        let (endpoint, embedded) = match &options.database {
            Database::Endpoint(url) => (url.clone(), None),
            Database::Embedded { install_dir, port } => {
                let local = DynamoDbLocal::start(install_dir, *port).await?;
                (local.endpoint(), Some(local))
            }
        };
        match Parts::build(&options, &endpoint).await {
            Ok(parts) => Ok(Self {
                options,
                listener,
                endpoint,
                embedded,
                parts,
            }),
            Err(error) => {
                if let Some(local) = embedded {
                    local.stop().await;
                }
                Err(error)
            }
        }
    }

    /// The address the HTTP API and dashboard listen on.
    pub fn address(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.options.http)
    }

    /// Runs every part until `shutdown` resolves, then stops them and DynamoDB Local.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) {
        let http = self.address();
        let config = &self.options.config;
        println!("livecount dev: dashboard on http://{http}/");
        println!(
            "livecount dev: DynamoDB at {} (tables {}, {} and {})",
            self.endpoint, config.sessions_table, config.counters_table, config.viewers_table
        );
        println!("livecount dev: Ctrl-C stops everything");
        self.parts.run(&self.options, self.listener, shutdown).await;
        if let Some(local) = self.embedded {
            local.stop().await;
        }
    }
}

async fn bind(address: SocketAddr) -> Result<TcpListener, DevError> {
    TcpListener::bind(address)
        .await
        .map_err(|e| DevError::Listen {
            address,
            reason: if e.kind() == std::io::ErrorKind::AddrInUse {
                "the port is in use (choose another with --port)".to_owned()
            } else {
                e.to_string()
            },
        })
}

impl Parts {
    async fn build(options: &DevOptions, endpoint: &str) -> Result<Self, DevError> {
        let tables = |source| DevError::Tables {
            endpoint: endpoint.to_owned(),
            source,
        };
        let sdk = livecount_local::local_sdk_config(endpoint).await;
        let config = options.config.clone();
        let store = Store::new(aws_sdk_dynamodb::Client::new(&sdk), &config);
        livecount_core::admin::TableAdmin::of(&store)
            .create_tables()
            .await
            .map_err(tables)?;
        let stream_arn = livecount_core::admin::TableAdmin::of(&store)
            .sessions_stream_arn()
            .await
            .map_err(tables)?;
        let clock = Clock::system();
        let queue = LocalQueue::new(options.queue.clone(), clock.clone());
        let dead_letters = queue.clone();
        let ingest = Ingest {
            dead_letters: Some(livecount_ingest::DeadLetters::Local(Arc::new(
                move |letter: &livecount_ingest::DeadLetter| {
                    dead_letters.dead_letter(livecount_local::queue::DlqMessage {
                        message_id: letter.message_id.clone(),
                        body: letter.body.clone(),
                        attributes: letter
                            .attributes()
                            .into_iter()
                            .map(|(name, _, value)| (name.to_owned(), value))
                            .collect(),
                    })
                },
            ))),
            ..Ingest::new(store.clone(), config.clone())
        };
        let poller = StreamPoller::new(
            livecount_local::streams_client(&sdk),
            stream_arn,
            options.poller.clone(),
        );
        Ok(Self {
            aggregator: Aggregator::new(store.clone(), config),
            store,
            ingest,
            queue,
            poller,
            clock,
        })
    }

    /// Every part as a future of this one task, joined: nothing here needs threads.
    async fn run(
        self,
        options: &DevOptions,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) {
        let Self {
            store,
            ingest,
            aggregator,
            queue,
            poller,
            clock,
        } = self;
        let lag = Lag::default();
        let stop = CancellationToken::new();
        let state = ApiState {
            store: store.clone(),
            clock,
            events: Some(Arc::new(QueueSink(queue.clone()))),
            breakdowns: options.config.breakdowns.clone(),
        };
        let edge = Edge {
            serve_metrics: true,
            ..Edge::new(ingest.clone(), options.cors_origins.clone())
        };
        let stopping = async {
            shutdown.await;
            println!("livecount dev: stopping");
            stop.cancel();
        };
        tokio::join!(
            ingesting(&ingest, &queue, &stop),
            aggregating(&aggregator, poller, &lag, &stop),
            simulating(options.simulator.clone(), &queue, &stop),
            serving(listener, state, edge, &stop),
            reporting(options.status_every, &store, &queue, &lag, &stop),
            stopping
        );
    }
}

async fn ingesting(ingest: &Ingest, queue: &LocalQueue, stop: &CancellationToken) {
    let handler = async |event: SqsEvent| {
        livecount_ingest::handler(ingest, LambdaEvent::new(event, Context::default())).await
    };
    queue.run(handler, stop.cancelled()).await;
}

async fn aggregating(
    aggregator: &Aggregator,
    poller: StreamPoller,
    lag: &Lag,
    stop: &CancellationToken,
) {
    let handler = async |event: Event| {
        let received = lag.received_at(&event);
        let response =
            livecount_aggregate::handler(aggregator, LambdaEvent::new(event, Context::default()))
                .await;
        lag.record(received);
        response
    };
    poller.run(handler, stop.cancelled()).await;
}

async fn simulating(
    simulation: Option<SimulatorConfig>,
    queue: &LocalQueue,
    stop: &CancellationToken,
) {
    if let Some(simulation) = simulation {
        simulator::run(
            simulation,
            |body| drop(queue.enqueue(body)),
            stop.cancelled(),
        )
        .await;
    }
}

async fn serving(listener: TcpListener, state: ApiState, edge: Edge, stop: &CancellationToken) {
    let app = livecount_api::router(state).merge(livecount_edge::router(edge));
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stop.clone().cancelled_owned())
        .await
    {
        tracing::error!(error = %e, "HTTP server failed");
    }
}

async fn reporting(
    every: Option<Duration>,
    store: &Store,
    queue: &LocalQueue,
    lag: &Lag,
    stop: &CancellationToken,
) {
    if let Some(every) = every {
        status_lines(every, store, queue, lag, stop).await;
    }
}

/// The local queue as the API's event sink (`POST /api/events`: the relays' path, as SQS is).
struct QueueSink(LocalQueue);

impl EventSink for QueueSink {
    fn enqueue(&self, body: String) -> String {
        self.0.enqueue(body)
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
            if let Ok(probe) = livecount_aggregate::projected::<RecvProbe>(
                &record.change.new_image,
                &["streamId", "recvAt"],
            ) {
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
