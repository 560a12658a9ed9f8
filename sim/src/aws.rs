//! The model of AWS the simulation runs livecount against: the sessions and counters tables (its
//! players send no `userId`, so no viewer marker is written) with their
//! throughput limits, the sessions table's stream, and the SDK's retries. Every `UpdateItem`
//! livecount's handlers send arrives here through the store's port,
//! [`livecount_core::store::UpdateItems`].
//!
//! What the model grants is what AWS documents (see `docs/benchmarks.md`, "The model"):
//!
//! - 1,000 write units per second per partition key; above it a request is throttled
//!   (`ProvisionedThroughputExceededException`) and charged nothing;
//! - a table's throughput: its warm throughput when set, else what an on-demand table serves at
//!   once, double its previous peak (a new table: 4,000 write units per second). AWS promises no
//!   faster growth within 30 minutes, so the model grants none within the simulated minutes;
//! - the SDK's standard retry mode: three attempts, each after a random backoff of up to 1 s,
//!   then 2 s.

use crate::dynamodb::{Table, ValidationError, Written};
use crate::expression::Item;
use aws_lambda_events::event::dynamodb::EventRecord;
use aws_sdk_dynamodb::types::error::ProvisionedThroughputExceededException;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use livecount_core::requests::UpdateRequest;
use livecount_core::store::{UpdateFuture, UpdateItems, UpdateOutcome};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Write units one partition key takes per second.
pub const KEY_WRITE_UNITS: f64 = 1000.0;

/// Write units a new on-demand table serves at once.
pub const ON_DEMAND_START_WRITE_UNITS: f64 = 4000.0;

/// Write units per second one table partition takes (and so, one stream shard per partition).
pub const PARTITION_WRITE_UNITS: f64 = 1000.0;

const SECONDS_KEPT: usize = 4;

/// Units consumed per second, for one key or one table, over the last few seconds.
#[derive(Debug, Clone, Copy, Default)]
struct Window {
    seconds: [(i64, f64); SECONDS_KEPT],
}

impl Window {
    fn slot(&mut self, second: i64) -> &mut (i64, f64) {
        let slot = &mut self.seconds[second.rem_euclid(SECONDS_KEPT as i64) as usize];
        if slot.0 != second {
            *slot = (second, 0.0);
        }
        slot
    }
}

/// One table's throughput: per key, per table, and what it consumed.
#[derive(Debug)]
pub struct Throughput {
    pub table_limit: f64,
    keys: HashMap<String, Window>,
    table: Window,
    /// Most units any key consumed in one second, by key.
    pub key_peaks: HashMap<String, f64>,
    pub table_peak: f64,
    pub units: f64,
    pub requests: u64,
    /// Attempts refused for throughput (each a `ProvisionedThroughputExceededException`).
    pub throttled_attempts: u64,
    /// Requests that still failed after the SDK's retries.
    pub throttled_requests: u64,
}

impl Throughput {
    /// A table with `warm` write units per second of warm throughput, or a new on-demand table.
    pub fn new(warm: Option<f64>) -> Self {
        Self {
            table_limit: warm
                .unwrap_or(ON_DEMAND_START_WRITE_UNITS)
                .max(ON_DEMAND_START_WRITE_UNITS),
            keys: HashMap::new(),
            table: Window::default(),
            key_peaks: HashMap::new(),
            table_peak: 0.0,
            units: 0.0,
            requests: 0,
            throttled_attempts: 0,
            throttled_requests: 0,
        }
    }

    /// Partitions (and stream shards) the table starts with.
    pub fn partitions(&self) -> usize {
        (self.table_limit / PARTITION_WRITE_UNITS).ceil() as usize
    }

    /// Whether `key` or the table has less than one unit left in `second` (a throttle that needs
    /// no look at the item).
    fn exhausted(&mut self, key: &str, second: i64) -> bool {
        if self.table.slot(second).1 + 1.0 > self.table_limit {
            return true;
        }
        self.keys
            .get_mut(key)
            .is_some_and(|window| window.slot(second).1 + 1.0 > KEY_WRITE_UNITS)
    }

    /// Takes `units` for `key` in `second` if both the key and the table have them left.
    fn take(&mut self, key: &str, second: i64, units: f64) -> bool {
        let table = self.table.slot(second);
        if table.1 + units > self.table_limit {
            return false;
        }
        let window = match self.keys.get_mut(key) {
            Some(window) => window,
            None => self.keys.entry(key.to_owned()).or_default(),
        };
        let slot = window.slot(second);
        if slot.1 + units > KEY_WRITE_UNITS {
            return false;
        }
        slot.1 += units;
        let used = slot.1;
        self.table.slot(second).1 += units;
        let table_used = self.table.slot(second).1;
        self.table_peak = self.table_peak.max(table_used);
        match self.key_peaks.get_mut(key) {
            Some(peak) => *peak = peak.max(used),
            None => {
                self.key_peaks.insert(key.to_owned(), used);
            }
        }
        self.units += units;
        true
    }

    /// The hottest key and its peak units per second.
    pub fn hottest(&self) -> Option<(&str, f64)> {
        self.key_peaks
            .iter()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(k, v)| (k.as_str(), *v))
    }
}

/// A change the sessions table's stream carries, with where and when it was committed.
#[derive(Debug)]
pub struct Change {
    pub key: Item,
    pub old: Option<Item>,
    pub new: Option<Item>,
    pub sequence: u64,
    pub partition_key: String,
    pub sort_key: String,
    pub committed_ms: i64,
}

impl Change {
    /// The stream record Lambda delivers for it (`NEW_AND_OLD_IMAGES`).
    pub fn into_record(self) -> EventRecord {
        use livecount_local::lambda_events::{
            REGION, SESSIONS_STREAM_ARN, StreamChange, stream_record,
        };
        let to_stream = |item: Option<Item>| item.map(serde_dynamo::Item::from).unwrap_or_default();
        let change = StreamChange {
            event_id: format!("{:032x}", self.sequence),
            event_name: if self.old.is_some() {
                "MODIFY"
            } else {
                "INSERT"
            }
            .to_owned(),
            keys: serde_dynamo::Item::from(self.key),
            old_image: to_stream(self.old),
            new_image: to_stream(self.new),
            sequence_number: format!("{:021}", self.sequence),
            created_ms: self.committed_ms,
            size_bytes: 0,
            user_identity: None,
        };
        stream_record(change, REGION, SESSIONS_STREAM_ARN)
    }
}

/// One table as the model holds it, with its throughput and what the current invocation did.
#[derive(Debug)]
pub struct World {
    pub now_ms: i64,
    pub table: Table,
    pub throughput: Throughput,
    /// Whether the table has a stream (the sessions table): its changes are kept as records.
    streams: bool,
    /// New stream records since the engine last took them.
    pub changes: Vec<Change>,
    next_sequence: u64,
    rng: fastrand::Rng,
    /// The current invocation's requests (attempts) and its longest retry backoff.
    pub attempts: u64,
    pub longest_backoff_ms: i64,
    /// Requests DynamoDB would refuse as invalid (none is expected).
    pub invalid: Vec<ValidationError>,
    /// Injected faults (the counters table's, in the faults scenario): the share of attempts
    /// throttled whatever the throughput, and of applied attempts whose answer is lost (the SDK
    /// then sends the same request again, as it does after a 500).
    pub throttle_rate: f64,
    pub lost_answer_rate: f64,
    pub injected_throttles: u64,
    pub lost_answers: u64,
}

/// The model behind every `UpdateItem`: the sessions table (with its stream) and the counters
/// table, each behind its own lock, so the ingest and aggregate sides can run on two threads.
#[derive(Debug, Clone)]
pub struct Aws {
    sessions_table: String,
    sessions: Arc<Mutex<World>>,
    counters: Arc<Mutex<World>>,
}

fn locked(world: &Mutex<World>) -> MutexGuard<'_, World> {
    match world.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Aws {
    pub fn new(
        sessions_table: &str,
        sessions_warm: Option<f64>,
        counters_warm: Option<f64>,
        seed: u64,
    ) -> Self {
        let world = |warm, streams, seed| {
            Arc::new(Mutex::new(World {
                now_ms: 0,
                table: Table::new(),
                throughput: Throughput::new(warm),
                streams,
                changes: Vec::new(),
                next_sequence: 1,
                rng: fastrand::Rng::with_seed(seed),
                attempts: 0,
                longest_backoff_ms: 0,
                invalid: Vec::new(),
                throttle_rate: 0.0,
                lost_answer_rate: 0.0,
                injected_throttles: 0,
                lost_answers: 0,
            }))
        };
        Self {
            sessions_table: sessions_table.to_owned(),
            sessions: world(sessions_warm, true, seed),
            counters: world(counters_warm, false, seed ^ 0x5eed),
        }
    }

    /// A livecount [`Store`](livecount_core::Store) whose `UpdateItem`s go to this model instead
    /// of the network (its client, for reads, is never used: the handlers only update).
    pub fn store(&self, config: &livecount_core::Config) -> livecount_core::Store {
        let sdk = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .build();
        livecount_core::Store::with_updates(
            aws_sdk_dynamodb::Client::from_conf(sdk),
            Arc::new(self.clone()),
            config,
        )
    }

    /// The sessions table (the ingest side's).
    pub fn sessions(&self) -> MutexGuard<'_, World> {
        locked(&self.sessions)
    }

    /// The counters table (the aggregate side's).
    pub fn counters(&self) -> MutexGuard<'_, World> {
        locked(&self.counters)
    }
}

/// Applies each request at once, on the table it names, after the retries the SDK would make
/// (the answer is ready when the future is first polled).
impl UpdateItems for Aws {
    fn update(&self, request: UpdateRequest, returns: ReturnValue) -> UpdateFuture<'_> {
        let outcome = if request.table == self.sessions_table {
            self.sessions().update(&request, &returns)
        } else {
            self.counters().update(&request, &returns)
        };
        Box::pin(std::future::ready(outcome))
    }
}

impl World {
    /// Applies `request`, answering as `returns` asks: the item before (`ALL_OLD`) or after
    /// (otherwise) an applied update, nothing for `NONE`; the item as it is when its condition
    /// failed.
    fn update(
        &mut self,
        request: &UpdateRequest,
        returns: &ReturnValue,
    ) -> Result<UpdateOutcome, Box<aws_sdk_dynamodb::Error>> {
        let pk = match request.key.get("PK") {
            Some(AttributeValue::S(pk)) => pk.clone(),
            _ => String::new(),
        };
        // The SDK's standard retry mode: up to three attempts, backing off up to 1 s, then 2 s.
        let mut backoff_ms = 0;
        let mut written = None;
        for attempt in 0..3 {
            self.attempts += 1;
            let second = (self.now_ms + backoff_ms).div_euclid(1000);
            let (table, throughput) = (&mut self.table, &mut self.throughput);
            if attempt == 0 {
                throughput.requests += 1;
            }
            let injected = self.throttle_rate > 0.0 && self.rng.f64() < self.throttle_rate;
            self.injected_throttles += u64::from(injected);
            let result = if injected || throughput.exhausted(&pk, second) {
                Ok(None)
            } else {
                table.update_admitted(request, |units| throughput.take(&pk, second, units))
            };
            match result {
                Ok(Some(done)) => {
                    let lost = attempt < 2
                        && self.lost_answer_rate > 0.0
                        && self.rng.f64() < self.lost_answer_rate;
                    if lost {
                        // Applied, but the answer never came back: the SDK tries again.
                        self.lost_answers += 1;
                        continue;
                    }
                    written = Some(done);
                    break;
                }
                Ok(None) => throughput.throttled_attempts += 1,
                Err(error) => return Err(self.invalid(error)),
            }
            backoff_ms += (self.rng.f64() * 1000.0 * f64::from(1u32 << attempt)) as i64;
        }
        self.longest_backoff_ms = self.longest_backoff_ms.max(backoff_ms);
        let Some(written) = written else {
            let throughput = &mut self.throughput;
            throughput.throttled_requests += 1;
            return Err(Box::new(aws_sdk_dynamodb::Error::ProvisionedThroughputExceededException(
                ProvisionedThroughputExceededException::builder()
                    .message("The level of configured provisioned throughput for the table was exceeded")
                    .build(),
            )));
        };
        if self.streams {
            // Session writes return nothing (`ReturnValues` NONE): their images go to the stream.
            let applied = written.applied;
            if applied {
                self.record_change(request, written, pk, backoff_ms);
            }
            return Ok(if applied { Ok(None) } else { Err(None) });
        }
        Ok(match (written.applied, returns) {
            (true, ReturnValue::None) => Ok(None),
            (true, ReturnValue::AllOld) => Ok(written.old),
            (true, _) => Ok(written.new),
            (false, _) => Err(written.old),
        })
    }

    fn invalid(&mut self, error: ValidationError) -> Box<aws_sdk_dynamodb::Error> {
        self.invalid.push(error.clone());
        let meta = aws_sdk_dynamodb::error::ErrorMetadata::builder()
            .code("ValidationException")
            .message(error.to_string())
            .build();
        Box::new(aws_sdk_dynamodb::Error::from(
            aws_sdk_dynamodb::operation::update_item::UpdateItemError::generic(meta),
        ))
    }

    fn record_change(
        &mut self,
        request: &UpdateRequest,
        written: Written,
        pk: String,
        delay_ms: i64,
    ) {
        let sort_key = match request.key.get("SK") {
            Some(AttributeValue::S(sk)) => sk.clone(),
            _ => String::new(),
        };
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        self.changes.push(Change {
            key: request.key.clone(),
            old: written.old,
            new: written.new,
            sequence,
            partition_key: pk,
            sort_key,
            committed_ms: self.now_ms + delay_ms,
        });
    }
}
