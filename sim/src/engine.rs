//! The simulation: a clock stepping 10 ms at a time, the players' events through the public
//! edge (one request each, written at once and answered with the count) or into an SQS queue
//! (the SQS trigger invoking livecount's ingest handler on batches: the relays' path), the
//! sessions table's stream
//! split into shards and lanes, the stream trigger invoking livecount's aggregate handler per
//! lane, and once a second, every stream's counter (and, with breakdowns, each of its values'
//! counters) read and held against the oracles.
//!
//! The handlers are livecount's own (`Ingest::process`, `Aggregator::process`), given a
//! [`Store`] whose `UpdateItem`s go to the [`Aws`] model. What the network and Lambda would add
//! is modelled:
//!
//! - **SQS trigger**: five concurrent batches at first, up to 300 more per minute while messages
//!   wait, at most the maximum concurrency; batches, visibility, receive counts and dead
//!   letters are `livecount_local::trigger::queue`'s, the same rules `livecount dev` and the
//!   tests run.
//! - **Stream trigger**: one shard per table partition; each shard's records in
//!   `ParallelizationFactor` lanes by item (order kept per item only), polled four times a
//!   second; each lane is a `livecount_local::trigger::stream` lane (batching, the retry shapes
//!   after a partial response or a function error, retry attempts, record age), the same
//!   rules `livecount dev` and the tests run.
//! - **Edge**: each request goes to the instance of the edge function that became idle last
//!   (AWS does not document its routing; this keeps the busy set as small as the load allows,
//!   and an instance's count reads are at most one a second whatever the routing), or to a new
//!   one, cold, when none is idle (warm in a scenario whose audience was already there), as fast
//!   as Lambda's scaling rate allows: 1,000 more
//!   instances every 10 seconds, refilled continuously; beyond it the request is throttled and
//!   the event lost, as a 429 to a player whose next heartbeat comes 5 s later); it runs livecount's own checks and session write
//!   ([`livecount_core::edge::check_player_request`], `Ingest::write_player_events`) and reads
//!   the stream's count when the instance's copy is older than [`COUNT_MAX_AGE_MS`], as
//!   the edge's `Counts` does. Forged requests (an attack) are refused by the same check,
//!   with a real token secret, before any write.
//! - **Invocations** last the measured handler cost (scaled by the function's share of a vCPU),
//!   plus [`REQUEST_MS`] per round of concurrent requests, plus the SDK's retry backoffs, plus a
//!   cold start on a lane's or slot's first use; they are billed in GB-seconds.

use crate::audience::{AudienceSpec, Players, Sent};
use crate::aws::{Aws, Change};
use crate::hash::stable_hash;
use crate::oracle::{ListedValues, SentAudience, Settled};
use aws_lambda_events::event::dynamodb::EventRecord;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsMessage};
use livecount_aggregate::Aggregator;
use livecount_core::breakdown::{Breakdowns, Dimension, Dimensions};
use livecount_core::capacity::{item_size, read_units};
use livecount_core::edge::COUNT_MAX_AGE_MS;
use livecount_core::histogram::viewers;
use livecount_core::ids::StreamId;
use livecount_core::model::CounterItem;
use livecount_core::{Clock, Config, Store, Timing};
use livecount_ingest::Ingest;
use livecount_local::trigger::queue::{Queue, QueueMapping, QueueOutcome, QueuedMessage};
use livecount_local::trigger::stream::{Lane as StreamLane, LaneOutcome, StreamMapping};
use serde::Deserialize;
use std::collections::HashMap;

/// One round of concurrent DynamoDB requests from Lambda, in ms (DynamoDB documents
/// "single-digit millisecond" latency; 5 ms is taken).
pub const REQUEST_MS: i64 = 5;

/// The simulated clock's step, in ms.
pub const STEP_MS: i64 = 10;

/// A Lambda execution environment's first invocation, in ms.
pub const COLD_START_MS: i64 = 150;

/// Lambda's concurrency scaling rate per function: 1,000 execution environments every 10 s
/// ([Lambda scaling behavior](https://docs.aws.amazon.com/lambda/latest/dg/scaling-behavior.html)).
pub const SCALING_PER_10_S: f64 = 1000.0;

/// The edge's CPU per request beyond parsing the event: one HMAC-SHA256 over about 200 bytes
/// (about a microsecond; taken generously, as it is far below Lambda's 1 ms billing unit).
pub const EDGE_VERIFY_NS: f64 = 5_000.0;

/// A Lambda function's share of a vCPU at 1,769 MB.
const FULL_VCPU_MB: f64 = 1769.0;

/// How the players' events reach the sessions table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    /// The public edge: one request per event, written at once, answered with the count (the
    /// deployments' default).
    Edge,
    /// The events queue and the ingest function's batches (what relays use).
    Queue,
}

/// What livecount is deployed with, as the simulation needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub door: Door,
    pub timing: Timing,
    pub session_shards: u32,
    pub max_concurrent_writes: usize,
    /// The ingest queue and its trigger (batch, window, visibility, receives).
    pub queue: QueueMapping,
    pub ingest_max_concurrency: usize,
    /// The aggregate trigger (batch, window, retries, record age, bisecting).
    pub stream: StreamMapping,
    pub parallelization_factor: usize,
    pub memory_mb: u32,
    /// Warm throughput (write units per second) of the sessions and counters tables.
    pub sessions_warm_writes: Option<f64>,
    pub counters_warm_writes: Option<f64>,
    /// What streams are broken down by (`LIVECOUNT_BREAKDOWNS`; none by default).
    pub breakdowns: Breakdowns,
}

/// Measured handler costs on one core, ns: criterion's numbers (`make bench`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HandlerCost {
    pub ingest_ns_per_event: f64,
    pub aggregate_ns_per_record: f64,
}

/// Faults injected into the aggregate side: AWS's failures as they reach livecount.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct InjectedFaults {
    /// Share of aggregate invocations that die after their counter updates, before they finish
    /// (an out-of-memory, a timeout): Lambda retries the batch from its first record.
    pub function_errors: f64,
    /// Share of applied counter-table requests whose answer is lost (the SDK sends the same
    /// request again).
    pub lost_answers: f64,
    /// Share of counter-table attempts throttled whatever the throughput (the SDK retries; after
    /// three throttled attempts the stream fails and the batch is retried).
    pub throttles: f64,
}

/// One run.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub audience: AudienceSpec,
    pub seconds: i64,
    pub settings: Settings,
    /// Dashboards reading counters (spread over the streams), each every 5 s.
    pub dashboards: u64,
    /// The second from which the audience no longer changes (the load settled).
    pub settles_at_s: Option<i64>,
    /// The second from which the audience error is measured (after a steady audience's start).
    pub measure_from_s: i64,
    /// Whether the SQS trigger starts scaled out (an audience that has been there for a while),
    /// or at five concurrent batches.
    pub scaled_out: bool,
    pub faults: InjectedFaults,
    /// Forged requests a second at the edge (an attack), refused before any write.
    pub attack_per_second: u64,
    pub seed: u64,
}

/// Lag from enqueue to counter, in 10 ms bins.
#[derive(Debug, Clone, Default)]
pub struct LagHistogram {
    bins: Vec<u64>,
    pub count: u64,
}

impl LagHistogram {
    fn add(&mut self, lag_ms: i64, n: u64) {
        let bin = (lag_ms.max(0) / 10) as usize;
        if self.bins.len() <= bin {
            self.bins.resize(bin + 1, 0);
        }
        self.bins[bin] += n;
        self.count += n;
    }

    /// The `q` quantile in ms (upper edge of its bin).
    pub fn quantile(&self, q: f64) -> i64 {
        let target = (self.count as f64 * q).ceil() as u64;
        let mut seen = 0;
        for (bin, &n) in self.bins.iter().enumerate() {
            seen += n;
            if seen >= target.max(1) {
                return (bin as i64 + 1) * 10;
            }
        }
        0
    }
}

/// One second of the run, for the chart (the first stream).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub second: i64,
    pub audience: i64,
    pub settled: i64,
    pub counter: i64,
}

/// Lambda use of one function.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FunctionUse {
    pub invocations: u64,
    pub peak_concurrency: usize,
    pub gb_seconds: f64,
    pub cold_starts: u64,
}

/// What the edge did: its Lambda use, the count reads it made and how old the counts it
/// answered with were.
#[derive(Debug, Clone, Default)]
pub struct EdgeUse {
    /// The players' requests.
    pub function: FunctionUse,
    /// The attack's forged requests (what the attack costs the operator).
    pub attack: FunctionUse,
    /// Requests answered with the count (every accepted one).
    pub answered: u64,
    /// Forged requests refused.
    pub refused: u64,
    /// Requests Lambda throttled (no idle instance, and the scaling rate spent).
    pub throttled: u64,
    pub count_reads: u64,
    /// The most count reads (`GetItem`s) in one second, over all streams, and per stream.
    pub peak_count_reads_per_second: u64,
    pub peak_count_reads_per_stream_second: u64,
    /// How old each answered count was (since its instance read it), in 10 ms bins.
    pub count_age: LagHistogram,
}

/// What a run measured.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub name: String,
    pub seconds: i64,
    pub streams: u32,
    pub peak_audience: i64,
    pub viewer_seconds: f64,
    /// Stream-seconds sampled, and those where the counter equalled [`Settled`].
    pub samples: u64,
    pub exact_samples: u64,
    /// With breakdowns: value-seconds sampled (every value of every dimension of every stream,
    /// each second), those where the value's counter equalled the settled oracle's, the largest
    /// difference, and the stream-seconds where a dimension's values did not add up to the
    /// stream's counter.
    pub value_samples: u64,
    pub exact_value_samples: u64,
    pub max_value_error: i64,
    pub unbalanced_samples: u64,
    /// Largest |counter - settled| and |counter - audience|, and when.
    pub max_error: i64,
    pub max_error_at: i64,
    pub max_audience_error: i64,
    pub p99_audience_error: i64,
    /// Seconds after the load settled until the counter stayed equal to the audience: `None`
    /// when the scenario has no settling point, `Some(None)` when it was still wrong at the end.
    pub heal_seconds: Option<Option<i64>>,
    pub hottest_session_key_wcu: f64,
    pub hottest_counter_key_wcu: f64,
    pub sessions_table_peak_wcu: f64,
    pub counters_table_peak_wcu: f64,
    pub throttled_requests: u64,
    pub throttled_session_requests: u64,
    pub throttled_attempts: u64,
    pub largest_counter_item: usize,
    pub lag: LagHistogram,
    pub ingest: FunctionUse,
    pub edge: EdgeUse,
    pub aggregate: FunctionUse,
    pub write_units: f64,
    pub read_units: f64,
    pub messages: u64,
    pub messages_dead_lettered: u64,
    pub messages_expired: u64,
    pub records_lost: u64,
    pub duplicates_recognised: u64,
    /// Faults injected, and the records Lambda delivered again because of them.
    pub function_errors: u64,
    pub lost_answers: u64,
    pub injected_throttles: u64,
    pub records_redelivered: u64,
    pub counter_updates: u64,
    pub partitions: usize,
    pub invalid_requests: usize,
    pub series: Vec<Sample>,
    pub wall_seconds: f64,
}

/// One lane of the stream trigger, with its aggregator (a Lambda instance of its own) and
/// when its current invocation ends.
struct Lane {
    trigger: StreamLane,
    busy_until: i64,
    aggregator: Aggregator,
    warm: bool,
}

/// The part of a new image the oracle reads (its own reading, not the aggregator's).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Written {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
    recv_at: i64,
    last_type: String,
    /// What the session's newest event sent for each dimension.
    #[serde(flatten)]
    dimensions: Dimensions,
}

/// Simulated time starts here (epoch ms, a whole minute).
pub const EPOCH_MS: i64 = 1_800_000_000_000;

/// The stream a record's session belongs to (`PK = "{stream}#{shard}"`).
fn stream_of(record: &EventRecord) -> &str {
    match record.change.keys.get("PK") {
        Some(serde_dynamo::AttributeValue::S(pk)) => pk.split('#').next().unwrap_or_default(),
        _ => "",
    }
}

fn stream_index(pk: &str) -> u32 {
    pk.strip_prefix("live-")
        .and_then(|rest| rest.split('#').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(u32::MAX)
}

fn session_index(sk: &str) -> u32 {
    sk.rsplit('-')
        .next()
        .and_then(|hex| u32::from_str_radix(hex, 16).ok())
        .unwrap_or(u32::MAX)
}

/// Runs one scenario to its end, on two threads: the players, the queue, ingest and the
/// sessions table on one; the stream, the aggregators, the counters table and the oracles on
/// the other. The second takes each step's stream records from the first, so the result does
/// not depend on how the threads interleave.
pub fn run(scenario: &Scenario, cost: HandlerCost) -> Outcome {
    let started = std::time::Instant::now();
    let settings = &scenario.settings;
    let config = Config {
        timing: settings.timing,
        session_shards: settings.session_shards,
        max_concurrent_writes: settings.max_concurrent_writes,
        breakdowns: settings.breakdowns.clone(),
        ..Config::default()
    };
    let aws = Aws::new(
        &config.sessions_table,
        settings.sessions_warm_writes,
        settings.counters_warm_writes,
        scenario.seed,
    );
    {
        let mut counters = aws.counters();
        counters.lost_answer_rate = scenario.faults.lost_answers;
        counters.throttle_rate = scenario.faults.throttles;
    }
    let store = aws.store(&config);
    let cpu_factor = (FULL_VCPU_MB / f64::from(settings.memory_mb)).max(1.0);
    let parts = Parts {
        scenario,
        cost,
        aws: &aws,
        store: &store,
        config: &config,
        cpu_factor,
    };
    let front = Front::new(&parts);
    let back = Back::new(&parts);
    let (sender, receiver) = std::sync::mpsc::sync_channel::<StepOut>(512);
    let (front_use, mut out) = std::thread::scope(|scope| {
        let front = scope.spawn(move || front.run(sender));
        let out = back.run(receiver);
        (front.join().unwrap_or_default(), out)
    });
    out.ingest = front_use.ingest;
    out.edge = front_use.edge;
    out.messages = front_use.messages;
    out.messages_dead_lettered = front_use.dead_lettered;
    out.messages_expired = front_use.expired;
    {
        let (s, c) = (aws.sessions(), aws.counters());
        out.hottest_session_key_wcu = s.throughput.hottest().map_or(0.0, |(_, v)| v);
        out.hottest_counter_key_wcu = c.throughput.hottest().map_or(0.0, |(_, v)| v);
        out.sessions_table_peak_wcu = s.throughput.table_peak;
        out.counters_table_peak_wcu = c.throughput.table_peak;
        out.throttled_requests = s.throughput.throttled_requests + c.throughput.throttled_requests;
        out.throttled_session_requests = s.throughput.throttled_requests;
        out.throttled_attempts = s.throughput.throttled_attempts + c.throughput.throttled_attempts;
        out.write_units = s.throughput.units + c.throughput.units;
        out.invalid_requests = s.invalid.len() + c.invalid.len();
        out.lost_answers = c.lost_answers;
        out.injected_throttles = c.injected_throttles;
        out.partitions = s.throughput.partitions();
    }
    out.wall_seconds = started.elapsed().as_secs_f64();
    out
}

/// What both sides are built from.
struct Parts<'a, 'b> {
    scenario: &'a Scenario,
    cost: HandlerCost,
    aws: &'b Aws,
    store: &'b Store,
    config: &'b Config,
    cpu_factor: f64,
}

/// What the ingest side hands the aggregate side each step.
struct StepOut {
    t: i64,
    changes: Vec<Change>,
    /// At whole seconds: each stream's audience (what the players sent).
    audience: Option<Vec<i64>>,
}

#[derive(Debug, Default)]
struct FrontUse {
    ingest: FunctionUse,
    edge: EdgeUse,
    waited: std::time::Duration,
    messages: u64,
    dead_lettered: u64,
    expired: u64,
}

/// The players, the queue, the SQS trigger, ingest and the sessions table.
struct Front<'a> {
    scenario: &'a Scenario,
    settings: &'a Settings,
    cost: HandlerCost,
    cpu_factor: f64,
    clock: Clock,
    aws: Aws,
    ingest: Ingest,
    players: Players,
    audience: SentAudience,
    queue: Queue,
    slots: Vec<(i64, bool)>,
    allowed: f64,
    next_message: u64,
    edge: EdgePool,
    out: FrontUse,
}

/// The edge function's instances: each busy until some time, each with its copy of the counts
/// of the streams it answered for (stream → when it read it, ms).
struct EdgePool {
    instances: Vec<HashMap<u32, i64>>,
    /// How many instances Lambda's scaling rate allows so far.
    allowance: f64,
    busy: std::collections::BinaryHeap<std::cmp::Reverse<(i64, usize)>>,
    /// Idle instances, the one that became idle last at the end.
    idle: Vec<usize>,
    /// Whether new instances start warm (an audience that was already there).
    warm: bool,
    /// The secret forged requests fail against.
    keys: livecount_core::token::TokenKeys,
    /// Count reads in the current second: in all, and per stream.
    second: i64,
    reads_this_second: u64,
    reads_by_stream: HashMap<u32, u64>,
}

impl EdgePool {
    fn new(scaled_out: bool) -> Self {
        let secret =
            livecount_core::token::TokenSecret::new(b"the simulation's token secret".to_vec())
                .unwrap_or_else(|| unreachable!("a secret of 16 bytes or more"));
        Self {
            instances: Vec::new(),
            allowance: if scaled_out {
                f64::INFINITY
            } else {
                SCALING_PER_10_S
            },
            busy: std::collections::BinaryHeap::new(),
            idle: Vec::new(),
            warm: scaled_out,
            keys: secret.into(),
            second: 0,
            reads_this_second: 0,
            reads_by_stream: HashMap::new(),
        }
    }

    /// Frees the instances whose invocation ended by `now_ms`.
    fn free(&mut self, now_ms: i64) {
        while let Some(std::cmp::Reverse((until, i))) = self.busy.peek().copied() {
            if until > now_ms {
                break;
            }
            self.busy.pop();
            self.idle.push(i);
        }
    }

    /// The instance that became idle last, or a new one: (index, cold); `None` when Lambda
    /// would throttle the request. In a scenario whose audience was already there (`warm`), the
    /// instances it needs exist already: new ones start warm.
    fn take(&mut self) -> Option<(usize, bool)> {
        if let Some(instance) = self.idle.pop() {
            return Some((instance, false));
        }
        if self.instances.len() as f64 >= self.allowance {
            return None;
        }
        self.instances.push(HashMap::new());
        Some((self.instances.len() - 1, !self.warm))
    }

    fn note_read(&mut self, stream: u32, now_ms: i64, out: &mut EdgeUse) {
        let second = now_ms.div_euclid(1000);
        if second != self.second {
            self.second = second;
            self.reads_this_second = 0;
            self.reads_by_stream.clear();
        }
        self.reads_this_second += 1;
        let by_stream = self.reads_by_stream.entry(stream).or_default();
        *by_stream += 1;
        out.count_reads += 1;
        out.peak_count_reads_per_second =
            out.peak_count_reads_per_second.max(self.reads_this_second);
        out.peak_count_reads_per_stream_second =
            out.peak_count_reads_per_stream_second.max(*by_stream);
    }
}

impl<'a> Front<'a> {
    fn new(parts: &Parts<'a, '_>) -> Self {
        let Parts {
            scenario,
            cost,
            aws,
            store,
            config,
            cpu_factor,
        } = *parts;
        let settings = &scenario.settings;
        let clock = Clock::manual(EPOCH_MS);
        let mut ingest = Ingest::new(store.clone(), config.clone());
        ingest.clock = clock.clone();
        let timing = settings.timing;
        Self {
            scenario,
            settings,
            cost,
            cpu_factor,
            clock,
            aws: aws.clone(),
            ingest,
            players: Players::new(scenario.audience.clone(), STEP_MS, scenario.seed),
            audience: SentAudience::new(timing.window_seconds, timing.bucket_seconds),
            queue: Queue::default(),
            slots: vec![(0, false); settings.ingest_max_concurrency],
            allowed: if scenario.scaled_out {
                settings.ingest_max_concurrency as f64
            } else {
                5.0
            },
            next_message: 0,
            edge: EdgePool::new(scenario.scaled_out),
            out: FrontUse::default(),
        }
    }

    fn run(mut self, sender: std::sync::mpsc::SyncSender<StepOut>) -> FrontUse {
        let mut sent = Vec::new();
        for step in 0..self.scenario.seconds * 1000 / STEP_MS {
            let t = step * STEP_MS;
            let now_ms = EPOCH_MS + t;
            self.clock.set_ms(now_ms);
            self.aws.sessions().now_ms = now_ms;
            sent.clear();
            self.players.step(t, EPOCH_MS, &mut sent);
            match self.settings.door {
                Door::Queue => {
                    self.enqueue(&sent, now_ms);
                    self.run_ingest(now_ms);
                }
                Door::Edge => self.through_the_edge(&sent, now_ms),
            }
            let changes = std::mem::take(&mut self.aws.sessions().changes);
            if (t + STEP_MS) % 1000 == 0 && tracing::enabled!(tracing::Level::DEBUG) {
                let world = self.aws.sessions();
                tracing::debug!(
                    second = (t + STEP_MS) / 1000,
                    queue = self.queue.len(),
                    allowed = format_args!("{:.0}", self.allowed),
                    busy = self.slots.iter().filter(|(u, _)| *u > now_ms).count(),
                    table_peak = format_args!("{:.0}", world.throughput.table_peak),
                    throttled_attempts = world.throughput.throttled_attempts,
                    hottest = ?world.throughput.hottest(),
                    "ingest side",
                );
            }
            let audience = ((t + STEP_MS) % 1000 == 0).then(|| {
                let second = (now_ms + STEP_MS).div_euclid(1000);
                let counts = (0..self.scenario.audience.streams)
                    .map(|stream| self.audience.viewers(stream, second))
                    .collect();
                let timing = self.settings.timing;
                self.audience
                    .forget_before(second - timing.window_seconds - 2 * timing.bucket_seconds);
                counts
            });
            let waiting = std::time::Instant::now();
            if sender
                .send(StepOut {
                    t,
                    changes,
                    audience,
                })
                .is_err()
            {
                break;
            }
            self.out.waited += waiting.elapsed();
        }
        tracing::debug!(waited = ?self.out.waited, "ingest side waited for the aggregate side");
        self.out
    }

    fn enqueue(&mut self, sent: &[Sent], now_ms: i64) {
        for message in sent {
            self.audience
                .sent(message.stream, message.session, message.watching, now_ms);
            let id = format!("m{}", self.next_message);
            self.next_message += 1;
            self.queue
                .send(id, message.body.clone(), Default::default(), now_ms);
            self.out.messages += 1;
        }
    }

    /// The public edge: each event one request to an instance, checked, written at once, and
    /// answered with its stream's count; each forged request of the attack refused.
    fn through_the_edge(&mut self, sent: &[Sent], now_ms: i64) {
        self.edge.free(now_ms);
        self.edge.allowance += SCALING_PER_10_S * STEP_MS as f64 / 10_000.0;
        let attack = self.scenario.attack_per_second * STEP_MS as u64 / 1000;
        for _ in 0..attack {
            self.forged_request(now_ms);
        }
        for message in sent {
            self.audience
                .sent(message.stream, message.session, message.watching, now_ms);
            self.out.messages += 1;
            self.edge_request(message, now_ms);
        }
        self.out.edge.function.peak_concurrency = self
            .out
            .edge
            .function
            .peak_concurrency
            .max(self.edge.busy.len());
    }

    fn edge_request(&mut self, message: &Sent, now_ms: i64) {
        let Some((instance, cold)) = self.edge.take() else {
            self.out.edge.throttled += 1;
            return;
        };
        {
            let mut world = self.aws.sessions();
            world.attempts = 0;
            world.longest_backoff_ms = 0;
        }
        let now_s = now_ms.div_euclid(1000);
        let written = match livecount_core::edge::check_player_request(&message.body, None, now_s) {
            Ok(events) => {
                futures::executor::block_on(self.ingest.write_player_events(events, now_ms))
            }
            Err(_) => None,
        };
        let (attempts, backoff) = {
            let world = self.aws.sessions();
            (world.attempts, world.longest_backoff_ms)
        };
        let mut ms = duration(
            self.settings,
            self.cpu_factor,
            cold,
            self.cost.ingest_ns_per_event + EDGE_VERIFY_NS,
            attempts,
            backoff,
        );
        if matches!(written, Some(Ok(_))) {
            // The answer's count: the instance's copy, or one GetItem if it is too old.
            let held = self.edge.instances[instance].get(&message.stream).copied();
            let read_at = match held {
                Some(at) if now_ms - at < COUNT_MAX_AGE_MS => at,
                _ => {
                    ms += REQUEST_MS;
                    self.edge
                        .note_read(message.stream, now_ms, &mut self.out.edge);
                    self.edge.instances[instance].insert(message.stream, now_ms);
                    now_ms
                }
            };
            self.out.edge.answered += 1;
            self.out.edge.count_age.add(now_ms - read_at, 1);
        }
        bill(
            &mut self.out.edge.function,
            ms,
            self.settings.memory_mb,
            cold,
        );
        self.edge
            .busy
            .push(std::cmp::Reverse((now_ms + ms, instance)));
    }

    /// A forged request: a new session with a made-up token, refused by the token check.
    fn forged_request(&mut self, now_ms: i64) {
        let Some((instance, cold)) = self.edge.take() else {
            self.out.edge.throttled += 1;
            return;
        };
        let id = self.next_message;
        self.next_message += 1;
        let body = format!(
            r#"{{"streamId":"live-0","sessionId":"forged-{id}","type":"start","ts":{now_ms},"token":"v1.{}.{}"}}"#,
            now_ms / 1000 + 3600,
            "A".repeat(43)
        );
        let refused = livecount_core::edge::check_player_request(
            &body,
            Some(&self.edge.keys as &dyn livecount_core::token::VerifyToken),
            now_ms.div_euclid(1000),
        )
        .is_err();
        self.out.edge.refused += u64::from(refused);
        let ms = duration(
            self.settings,
            self.cpu_factor,
            cold,
            self.cost.ingest_ns_per_event + EDGE_VERIFY_NS,
            0,
            0,
        );
        bill(&mut self.out.edge.attack, ms, self.settings.memory_mb, cold);
        self.edge
            .busy
            .push(std::cmp::Reverse((now_ms + ms, instance)));
    }

    /// The SQS trigger: free slots take batches that are due (full, or waited the window).
    fn run_ingest(&mut self, now_ms: i64) {
        let s = self.settings;
        if self.queue.visible(now_ms) > 0 {
            self.allowed = (self.allowed + 300.0 * STEP_MS as f64 / 60_000.0)
                .min(s.ingest_max_concurrency as f64);
        }
        let busy = self
            .slots
            .iter()
            .filter(|(until, _)| *until > now_ms)
            .count();
        self.out.ingest.peak_concurrency = self.out.ingest.peak_concurrency.max(busy);
        for slot in 0..(self.allowed as usize).min(self.slots.len()) {
            if self.slots[slot].0 > now_ms {
                continue;
            }
            if !self.queue.batch_due(&s.queue, now_ms, false) {
                break;
            }
            let batch = self.queue.receive(&s.queue, now_ms);
            let until = self.invoke_ingest(batch, now_ms, !self.slots[slot].1);
            self.slots[slot] = (until, true);
        }
    }

    fn invoke_ingest(&mut self, batch: Vec<QueuedMessage>, now_ms: i64, cold: bool) -> i64 {
        {
            let mut world = self.aws.sessions();
            world.attempts = 0;
            world.longest_backoff_ms = 0;
        }
        let messages: Vec<SqsMessage> = batch.iter().map(QueuedMessage::to_sqs).collect();
        let report = futures::executor::block_on(self.ingest.process(&messages));
        let (attempts, backoff) = {
            let world = self.aws.sessions();
            (world.attempts, world.longest_backoff_ms)
        };
        let (events, settled) = match report {
            Ok(report) => {
                self.out.expired += report.expired.len() as u64;
                let mut response = SqsBatchResponse::default();
                response.batch_item_failures = report
                    .failed
                    .iter()
                    .map(|id| {
                        let mut failure = BatchItemFailure::default();
                        failure.item_identifier = id.clone();
                        failure
                    })
                    .collect();
                let outcome = QueueOutcome::Response(&response);
                let settled = self.queue.settle(&self.settings.queue, batch, outcome);
                (report.events, settled)
            }
            Err(_) => {
                let outcome = QueueOutcome::FunctionError;
                (0, self.queue.settle(&self.settings.queue, batch, outcome))
            }
        };
        self.out.dead_lettered += settled.dead_lettered as u64;
        let duration = duration(
            self.settings,
            self.cpu_factor,
            cold,
            events as f64 * self.cost.ingest_ns_per_event,
            attempts,
            backoff,
        );
        bill(
            &mut self.out.ingest,
            duration,
            self.settings.memory_mb,
            cold,
        );
        now_ms + duration
    }
}

fn duration(
    settings: &Settings,
    cpu_factor: f64,
    cold: bool,
    cpu_ns: f64,
    attempts: u64,
    backoff_ms: i64,
) -> i64 {
    let rounds = attempts.div_ceil(settings.max_concurrent_writes.max(1) as u64) as i64;
    let cpu_ms = (cpu_ns * cpu_factor / 1e6).ceil() as i64;
    i64::from(cold) * COLD_START_MS + cpu_ms + rounds * REQUEST_MS + backoff_ms + 1
}

/// The stream, its lanes, the aggregators, the counters table and the oracles.
struct Back<'a> {
    scenario: &'a Scenario,
    settings: &'a Settings,
    cost: HandlerCost,
    cpu_factor: f64,
    clock: Clock,
    aws: Aws,
    settled: Settled,
    /// The dimensions broken down, in the oracle's order, and each one's value streams'
    /// partition keys by stream (in [`ListedValues::all`]'s order).
    dimensions: Vec<Dimension>,
    value_keys: Vec<Vec<Vec<String>>>,
    /// The attributes of a new image the oracle reads: the keys, `recvAt`, `lastType` and the
    /// dimensions broken down.
    projection: Vec<&'static str>,
    lanes: Vec<Lane>,
    shards: usize,
    out: Outcome,
    audience_errors: Vec<i64>,
    last_wrong_after_settle: Option<i64>,
    /// Decides which invocations die (the faults scenario).
    rng: fastrand::Rng,
}

impl<'a> Back<'a> {
    fn new(parts: &Parts<'a, '_>) -> Self {
        let Parts {
            scenario,
            cost,
            aws,
            store,
            config,
            cpu_factor,
        } = *parts;
        let settings = &scenario.settings;
        let clock = Clock::manual(EPOCH_MS);
        let shards = aws.sessions().throughput.partitions();
        let lanes = (0..shards * settings.parallelization_factor)
            .map(|_| Lane {
                trigger: StreamLane::default(),
                busy_until: 0,
                aggregator: Aggregator::with_clock(store.clone(), config.clone(), clock.clone()),
                warm: false,
            })
            .collect();
        let timing = settings.timing;
        let breakdowns = &settings.breakdowns;
        let dimensions: Vec<Dimension> = breakdowns.dimensions().collect();
        let listed: Vec<ListedValues> = dimensions
            .iter()
            .map(|&d| {
                let values = breakdowns.values(d);
                ListedValues {
                    listed: values[..values.len().saturating_sub(2)]
                        .iter()
                        .map(|v| (*v).to_owned())
                        .collect(),
                }
            })
            .collect();
        let value_keys = (0..scenario.audience.streams)
            .map(|stream| {
                let Ok(id) = StreamId::parse(&crate::audience::stream_name(stream)) else {
                    return Vec::new();
                };
                dimensions
                    .iter()
                    .zip(&listed)
                    .map(|(&d, values)| {
                        values
                            .all()
                            .iter()
                            .map(|v| id.value_stream(d, v).to_string())
                            .collect()
                    })
                    .collect()
            })
            .collect();
        Self {
            scenario,
            settings,
            cost,
            cpu_factor,
            clock,
            aws: aws.clone(),
            settled: Settled::with_dimensions(timing.window_seconds, timing.bucket_seconds, listed),
            projection: ["PK", "SK", "recvAt", "lastType"]
                .into_iter()
                .chain(dimensions.iter().map(|d| d.name()))
                .collect(),
            dimensions,
            value_keys,
            lanes,
            shards,
            out: Outcome {
                name: scenario.name.clone(),
                seconds: scenario.seconds,
                streams: scenario.audience.streams,
                ..Outcome::default()
            },
            audience_errors: Vec::new(),
            last_wrong_after_settle: None,
            rng: fastrand::Rng::with_seed(scenario.seed ^ 0xfa17),
        }
    }

    fn run(mut self, receiver: std::sync::mpsc::Receiver<StepOut>) -> Outcome {
        let mut waited = std::time::Duration::ZERO;
        loop {
            let waiting = std::time::Instant::now();
            let Ok(step) = receiver.recv() else { break };
            waited += waiting.elapsed();
            let now_ms = EPOCH_MS + step.t;
            self.clock.set_ms(now_ms);
            self.aws.counters().now_ms = now_ms;
            self.route(step.changes);
            self.run_aggregate(now_ms);
            if let Some(audience) = step.audience {
                self.sample(now_ms + STEP_MS, &audience);
            }
        }
        tracing::debug!(?waited, "aggregate side waited for the ingest side");
        self.finish()
    }

    /// Stream records to their shard's lanes: shard by partition key, lane by item.
    fn route(&mut self, changes: Vec<Change>) {
        let pf = self.settings.parallelization_factor;
        for change in changes {
            // A stable hash (`crate::hash`): where a record goes decides the run's outcome.
            let shard = (stable_hash(&[&change.partition_key]) % self.shards as u64) as usize;
            let lane = shard * pf
                + (stable_hash(&[&change.partition_key, &change.sort_key]) % pf as u64) as usize;
            // Lambda polls each shard about four times a second.
            let visible_ms = change.committed_ms + 250 - change.committed_ms.rem_euclid(250);
            self.lanes[lane]
                .trigger
                .push(change.into_record(), visible_ms);
        }
    }

    /// The stream trigger: each idle lane drops records past the maximum record age, then
    /// takes a batch if one is due (full, or waited the window).
    fn run_aggregate(&mut self, now_ms: i64) {
        let mapping = &self.settings.stream;
        let mut busy = 0;
        for index in 0..self.lanes.len() {
            let lane = &mut self.lanes[index];
            if lane.busy_until > now_ms {
                busy += 1;
                continue;
            }
            if lane.trigger.is_empty() {
                continue;
            }
            self.out.records_lost += lane.trigger.discard_expired(mapping, now_ms) as u64;
            let Some(records) = lane.trigger.next_batch(mapping, now_ms, false) else {
                continue;
            };
            self.invoke_aggregate(index, records, now_ms);
            busy += 1;
        }
        self.out.aggregate.peak_concurrency = self.out.aggregate.peak_concurrency.max(busy);
    }

    fn invoke_aggregate(&mut self, index: usize, records: Vec<EventRecord>, now_ms: i64) {
        {
            let mut world = self.aws.counters();
            world.attempts = 0;
            world.longest_backoff_ms = 0;
        }
        let aggregator = &self.lanes[index].aggregator;
        let applied = futures::executor::block_on(aggregator.apply_until(&records, None));
        let rate = self.scenario.faults.function_errors;
        let dies = rate > 0.0 && self.rng.f64() < rate;
        let report = if dies {
            // Died after its updates, before finishing: its receipts stay; Lambda retries as
            // after any function error.
            self.out.function_errors += 1;
            applied.report.clone()
        } else {
            futures::executor::block_on(aggregator.finish(applied, None))
        };
        let (attempts, backoff) = {
            let world = self.aws.counters();
            (world.attempts, world.longest_backoff_ms)
        };
        let cold = !self.lanes[index].warm;
        let duration = duration(
            self.settings,
            self.cpu_factor,
            cold,
            records.len() as f64 * self.cost.aggregate_ns_per_record,
            attempts,
            backoff,
        );
        let done_ms = now_ms + duration;
        self.out.duplicates_recognised += report.duplicates as u64;
        self.out.counter_updates += report.counter_updates as u64;
        // What the counters took in: every record of a stream whose update went through, even
        // in an invocation that then died or failed for another stream.
        let not_applied: std::collections::HashSet<&str> = report
            .failed_streams
            .iter()
            .chain(&report.deferred_streams)
            .map(String::as_str)
            .collect();
        for record in &records {
            if !not_applied.contains(stream_of(record)) {
                self.settle(record, done_ms);
            }
        }
        let outcome = if dies {
            LaneOutcome::FunctionError
        } else {
            LaneOutcome::Response(&report.response)
        };
        let lane = &mut self.lanes[index];
        let settled = lane
            .trigger
            .settle(&self.settings.stream, records, outcome, done_ms);
        self.out.records_redelivered += settled.retried as u64;
        self.out.records_lost += settled.discarded as u64;
        lane.warm = true;
        lane.busy_until = done_ms;
        bill(
            &mut self.out.aggregate,
            duration,
            self.settings.memory_mb,
            cold,
        );
    }

    /// A record the counters took in: into the settled oracle, and its lag measured.
    fn settle(&mut self, record: &EventRecord, done_ms: i64) {
        let Ok(written) =
            livecount_aggregate::projected::<Written>(&record.change.new_image, &self.projection)
        else {
            return;
        };
        let sequence = record
            .change
            .sequence_number
            .as_deref()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0);
        let watching = matches!(written.last_type.as_str(), "start" | "heartbeat");
        let sent: Vec<Option<&str>> = self
            .dimensions
            .iter()
            .map(|&d| written.dimensions.get(d))
            .collect();
        let new = self.settled.take(
            stream_index(&written.pk),
            session_index(&written.sk),
            sequence,
            watching,
            written.recv_at,
            &sent,
        );
        if new {
            self.out.lag.add(done_ms - written.recv_at, 1);
        }
    }

    /// Once a second: every stream's counter against both oracles, and the dashboards' reads.
    fn sample(&mut self, now_ms: i64, audiences: &[i64]) {
        let second = now_ms.div_euclid(1000);
        let streams = self.scenario.audience.streams;
        let reads_per_stream = self.scenario.dashboards as f64 / 5.0 / f64::from(streams);
        let mut worst_audience = 0;
        let mut total_audience = 0;
        let mut all_right = true;
        for stream in 0..streams {
            let name = crate::audience::stream_name(stream);
            let (counter, size) = self.counter_at(&name, second);
            self.out.read_units += reads_per_stream * read_units(size, false);
            self.out.largest_counter_item = self.out.largest_counter_item.max(size);
            let settled = self.settled.viewers(stream, second);
            self.sample_values(stream, second, counter);
            let audience = audiences.get(stream as usize).copied().unwrap_or(0);
            total_audience += audience;
            self.out.samples += 1;
            if counter == settled {
                self.out.exact_samples += 1;
            }
            let error = (counter - settled).abs();
            if error > self.out.max_error {
                self.out.max_error = error;
                self.out.max_error_at = second - EPOCH_MS / 1000;
            }
            let audience_error = (counter - audience).abs();
            worst_audience = worst_audience.max(audience_error);
            all_right &= audience_error == 0;
            if stream == 0 {
                self.out.series.push(Sample {
                    second: second - EPOCH_MS / 1000,
                    audience,
                    settled,
                    counter,
                });
            }
        }
        self.out.peak_audience = self.out.peak_audience.max(total_audience);
        self.out.viewer_seconds += total_audience as f64;
        let elapsed = second - EPOCH_MS / 1000;
        if elapsed >= self.scenario.measure_from_s {
            self.out.max_audience_error = self.out.max_audience_error.max(worst_audience);
            self.audience_errors.push(worst_audience);
        }
        if let Some(settles) = self.scenario.settles_at_s
            && elapsed >= settles
            && !all_right
        {
            self.last_wrong_after_settle = Some(elapsed);
        }
        let oldest =
            second - self.settings.timing.window_seconds - 2 * self.settings.timing.bucket_seconds;
        self.settled.forget_before(oldest);
    }

    /// The viewers `pk`'s live counter shows at `second`, and the item's size.
    fn counter_at(&self, pk: &str, second: i64) -> (i64, usize) {
        let world = self.aws.counters();
        let (item, _) = world.table.get(pk, "live", false);
        let size = item.map_or(0, item_size);
        let counter = item
            .and_then(|i| serde_dynamo::from_item::<_, CounterItem>(i.clone()).ok())
            .map_or(0, |c| viewers(&c.tallies.buckets, second) as i64);
        (counter, size)
    }

    /// Each value of each dimension of `stream`: its counter against the settled oracle's, and
    /// the values' sum against the stream's `counter`.
    fn sample_values(&mut self, stream: u32, second: i64, counter: i64) {
        let Some(dimensions) = self.value_keys.get(stream as usize) else {
            return;
        };
        for (d, keys) in dimensions.iter().enumerate() {
            let mut sum = 0;
            for (value, key) in keys.iter().enumerate() {
                let (shown, size) = self.counter_at(key, second);
                self.out.largest_counter_item = self.out.largest_counter_item.max(size);
                let settled = self.settled.value_viewers(d, value, stream, second);
                self.out.value_samples += 1;
                self.out.exact_value_samples += u64::from(shown == settled);
                self.out.max_value_error = self.out.max_value_error.max((shown - settled).abs());
                sum += shown;
            }
            self.out.unbalanced_samples += u64::from(sum != counter);
        }
    }

    fn finish(mut self) -> Outcome {
        let mut errors = std::mem::take(&mut self.audience_errors);
        errors.sort_unstable();
        self.out.p99_audience_error = errors
            .get(((errors.len() as f64 * 0.99).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(0);
        if let Some(settles) = self.scenario.settles_at_s {
            let last_second = self.scenario.seconds;
            self.out.heal_seconds = Some(match self.last_wrong_after_settle {
                None => Some(0),
                Some(last) if last >= last_second => None,
                Some(last) => Some(last + 1 - settles),
            });
        }
        self.out
    }
}

fn bill(function: &mut FunctionUse, duration_ms: i64, memory_mb: u32, cold: bool) {
    function.invocations += 1;
    function.cold_starts += u64::from(cold);
    function.gb_seconds += duration_ms as f64 / 1000.0 * f64::from(memory_mb) / 1024.0;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audience::{DimensionMix, Shape};
    use crate::sizing::{PeakAudience, size};

    /// 3,000 viewers over two streams, churning, sending two dimensions with values not listed
    /// and none, a share switching CDN: every value's counter equals the settled oracle's at
    /// every simulated second, and each dimension's values add up to the stream's counter.
    #[test]
    fn a_broken_down_audience_is_exact_per_value_at_every_second() {
        let breakdowns = Breakdowns::parse("device=web,tv;cdn=a,b").expect("valid");
        let mix = |field, options| DimensionMix { field, options };
        let scenario = Scenario {
            name: "breakdowns".to_owned(),
            audience: AudienceSpec {
                shape: Shape::Steady {
                    viewers: 3_000,
                    churn_per_minute: 0.3,
                },
                streams: 2,
                silent_share: 1.0 / 3.0,
                duplicate_share: 0.05,
                dimensions: vec![
                    mix(
                        "device",
                        vec![
                            (Some("web"), 0.6),
                            (Some("tv"), 0.3),
                            (Some("car"), 0.05),
                            (None, 0.05),
                        ],
                    ),
                    mix(
                        "cdn",
                        vec![(Some("a"), 0.5), (Some("b"), 0.4), (Some("c"), 0.1)],
                    ),
                ],
                switch_share: 0.05,
            },
            seconds: 40,
            settings: Settings {
                breakdowns,
                ..size(PeakAudience {
                    viewers_per_stream: 1_500,
                    streams: 2,
                    value_streams: 8,
                })
                .settings(true)
            },
            dashboards: 10,
            settles_at_s: None,
            measure_from_s: 10,
            scaled_out: true,
            faults: InjectedFaults::default(),
            attack_per_second: 0,
            seed: 9,
        };
        let cost = HandlerCost {
            ingest_ns_per_event: 600.0,
            aggregate_ns_per_record: 900.0,
        };
        let o = run(&scenario, cost);
        // 2 streams x (4 device values + 4 CDN values: two listed, `other`, `none`) x 40 s.
        assert_eq!(o.value_samples, 2 * 8 * 40);
        assert_eq!(
            o.exact_value_samples, o.value_samples,
            "largest error {}",
            o.max_value_error
        );
        assert_eq!(o.unbalanced_samples, 0);
        assert_eq!(o.exact_samples, o.samples);
        assert!(o.peak_audience >= 2_900, "{}", o.peak_audience);
    }
}
