//! # livecount-aggregate
//!
//! The aggregate Lambda (see `docs/design.md`): DynamoDB stream records of the sessions table
//! become one counter update per live stream. [`Aggregator::process`] is the algorithm;
//! [`handler`] is the Lambda entry point, also called by the local stream poller.
//!
//! - Each record moves one session between expiry buckets: `-1` at its old bucket if the old
//!   image was watching, `+1` at its new bucket if the new image is. INSERT, MODIFY, REMOVE and
//!   TTL deletions are handled alike; deltas older than `now - G` are dropped.
//! - Deltas are summed per stream and bucket over the batch; each stream gets one `UpdateItem`.
//! - Each update carries the fingerprint of its exact set of records and is conditioned on the
//!   counter not holding it: the same records delivered again as a set (a retried invocation, a
//!   lost response) are recognised and not applied twice. No order across items is assumed, so
//!   no record is ever skipped because another was applied.
//! - A record that cannot be understood is logged with its keys, counted and skipped; a stream
//!   whose update fails transiently (throttling, 5xx) reports its earliest record as the batch
//!   item failure; one DynamoDB rejects as invalid is logged, counted (`RecordsNotApplied`) and
//!   not retried, and the rest of the batch goes on.

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use futures::stream::{self, StreamExt};
use lambda_runtime::LambdaEvent;
use livecount_core::histogram::{
    SequenceNumber, SessionMove, minute_of, plan_counter_update, viewers,
};
use livecount_core::model::{CounterItem, HistoryItem, ItemKey, SessionImage};
use livecount_core::requests::HistoryUpdate;
use livecount_core::store::CounterWrite;
use livecount_core::{Clock, Config, Store, StoreError, Timing, error_chain};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

/// What the aggregate handler needs, plus what it remembers between invocations about each
/// stream's items, so old buckets and minutes can be pruned and history written only when it
/// changes.
#[derive(Debug)]
pub struct Aggregator {
    pub store: Store,
    pub config: Config,
    pub clock: Clock,
    known: Mutex<HashMap<String, StreamMemory>>,
}

/// What an aggregator last saw of a stream's counter items.
#[derive(Debug, Clone, Default)]
struct StreamMemory {
    buckets: BTreeSet<i64>,
    /// The history item's minutes and peak, once seen.
    history: Option<(BTreeMap<i64, u64>, u64)>,
}

/// Why a stream record was skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnreadableRecord {
    #[error("record has no valid SequenceNumber ({0:?})")]
    SequenceNumber(Option<String>),
    #[error("record has no Keys with PK and SK")]
    Keys,
    #[error("{image} does not hold a livecount session: {reason}")]
    Image { image: &'static str, reason: String },
    #[error("PK {0:?} is not \"{{streamId}}#{{shard}}\"")]
    PartitionKey(String),
}

/// Why a stream's counter update failed.
#[derive(Debug, thiserror::Error)]
#[error("counter update for stream {stream_id} failed")]
pub struct StreamUpdateError {
    pub stream_id: String,
    #[source]
    pub source: StoreError,
}

/// What one batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AggregateReport {
    pub records: usize,
    /// Records skipped because they could not be understood (logged with their keys).
    pub unreadable: usize,
    /// Records applied to counters.
    pub applied: usize,
    /// Records not applied because their counter holds the fingerprint of the very same set
    /// (an exact redelivery).
    pub duplicates: usize,
    /// Records of streams whose update DynamoDB rejected as invalid: logged and counted, not
    /// retried (a retry would fail the same way and hold up the shard).
    pub not_applied: usize,
    /// Deltas dropped as older than `now - G`.
    pub late_deltas: usize,
    /// Counter `UpdateItem`s that committed.
    pub counter_updates: usize,
    /// Streams whose update failed transiently; their earliest records are the batch item
    /// failures.
    pub failed_streams: Vec<String>,
    pub response: DynamoDbEventResponse,
}

impl AggregateReport {
    /// Adds one stream's outcome; returns the batch item failure it needs (the position and
    /// sequence number of the stream's earliest record) when the failure is worth a retry.
    fn add_outcome(
        &mut self,
        stream_id: String,
        moves: &StreamMoves,
        outcome: Result<StreamDone, StreamUpdateError>,
    ) -> Option<(usize, String)> {
        match outcome {
            Ok(done) => {
                self.applied += done.applied;
                self.duplicates += moves.len() - done.applied;
                self.late_deltas += done.late_deltas;
                self.counter_updates += done.updates;
                None
            }
            Err(error) if !error.source.is_retryable() => {
                tracing::error!(
                    stream_id = %stream_id,
                    records = moves.len(),
                    error = %error_chain(&error),
                    "counter update rejected; its records are not applied and not retried"
                );
                self.not_applied += moves.len();
                None
            }
            Err(error) => {
                tracing::error!(stream_id = %stream_id, error = %error_chain(&error), "counter update failed");
                self.failed_streams.push(stream_id);
                let (first, position) = moves
                    .positions
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, position)| **position)?;
                Some((
                    *position,
                    moves.sessions[first].sequence.as_str().to_owned(),
                ))
            }
        }
    }

    fn log(&self) {
        tracing::info!(
            records = self.records,
            applied = self.applied,
            duplicates = self.duplicates,
            not_applied = self.not_applied,
            late_deltas = self.late_deltas,
            unreadable = self.unreadable,
            counter_updates = self.counter_updates,
            failed_streams = self.failed_streams.len(),
            "aggregate batch"
        );
    }

    /// The counters this batch adds to the `aggregate` metrics (`infra/contract.json`).
    pub fn metrics(&self) -> [(&'static str, u64); 7] {
        [
            ("RecordsApplied", self.applied as u64),
            ("DuplicateRecords", self.duplicates as u64),
            ("RecordsNotApplied", self.not_applied as u64),
            ("DeltasLate", self.late_deltas as u64),
            ("UnreadableRecords", self.unreadable as u64),
            ("CounterUpdates", self.counter_updates as u64),
            ("StreamsFailed", self.failed_streams.len() as u64),
        ]
    }
}

/// Errors that fail the whole invocation. None today: every problem is confined to a record
/// or a stream; the type keeps the handler's signature honest.
#[derive(Debug, thiserror::Error)]
pub enum AggregateError {}

impl From<AggregateError> for lambda_runtime::Diagnostic {
    fn from(error: AggregateError) -> Self {
        match error {}
    }
}

/// The Lambda entry point: stream batch in, partial batch response out.
pub async fn handler(
    aggregator: &Aggregator,
    event: LambdaEvent<Event>,
) -> Result<DynamoDbEventResponse, AggregateError> {
    Ok(aggregator.process(&event.payload.records).await.response)
}

/// One stream's records reduced to their moves, with their places in the batch.
#[derive(Default)]
struct StreamMoves {
    positions: Vec<usize>,
    sessions: Vec<SessionMove>,
}

impl StreamMoves {
    fn len(&self) -> usize {
        self.sessions.len()
    }
}

impl Aggregator {
    pub fn new(store: Store, config: Config) -> Self {
        Self::with_clock(store, config, Clock::system())
    }

    pub fn with_clock(store: Store, config: Config, clock: Clock) -> Self {
        Self {
            store,
            config,
            clock,
            known: Mutex::new(HashMap::new()),
        }
    }

    /// Applies one batch of stream records.
    pub async fn process(&self, records: &[EventRecord]) -> AggregateReport {
        let now = self.clock.now_seconds();
        let mut report = AggregateReport {
            records: records.len(),
            ..AggregateReport::default()
        };
        let by_stream = self.moves_by_stream(records, &mut report);
        let outcomes = stream::iter(by_stream)
            .map(|(stream_id, moves)| async move {
                let outcome = self.update_stream(&stream_id, &moves, now).await;
                (stream_id, moves, outcome)
            })
            .buffer_unordered(self.config.max_concurrent_writes.max(1))
            .collect::<Vec<_>>()
            .await;
        let mut failures: Vec<(usize, String)> = Vec::new();
        for (stream_id, moves, outcome) in outcomes {
            if let Some(failure) = report.add_outcome(stream_id, &moves, outcome) {
                failures.push(failure);
            }
        }
        failures.sort();
        for (_, sequence) in failures {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(sequence);
            report.response.batch_item_failures.push(failure);
        }
        report.log();
        livecount_core::metrics::emit("aggregate", &report.metrics());
        report
    }

    /// The batch's readable records as moves, by stream; an unreadable one is logged, counted
    /// and skipped.
    fn moves_by_stream(
        &self,
        records: &[EventRecord],
        report: &mut AggregateReport,
    ) -> BTreeMap<String, StreamMoves> {
        let mut by_stream: BTreeMap<String, StreamMoves> = BTreeMap::new();
        for (position, record) in records.iter().enumerate() {
            match session_move(record, &self.config.timing) {
                Ok(session) => {
                    let moves = match by_stream.get_mut(&session.stream_id) {
                        Some(moves) => moves,
                        None => by_stream.entry(session.stream_id.clone()).or_default(),
                    };
                    moves.positions.push(position);
                    moves.sessions.push(session);
                }
                Err(reason) => {
                    report.unreadable += 1;
                    tracing::warn!(
                        event_id = %record.event_id,
                        keys = ?record.change.keys,
                        reason = %reason,
                        "skipping unreadable stream record"
                    );
                }
            }
        }
        by_stream
    }

    async fn update_stream(
        &self,
        stream_id: &str,
        moves: &StreamMoves,
        now: i64,
    ) -> Result<StreamDone, StreamUpdateError> {
        let sessions = &moves.sessions;
        let known = self.memory(stream_id).buckets;
        let Some(plan) = plan_counter_update(stream_id, sessions, &known, &self.config.timing, now)
        else {
            // Nothing that changes the count: only late deltas, or moves that cancel out.
            return Ok(StreamDone {
                applied: sessions.len(),
                late_deltas: 0,
                updates: 0,
            });
        };
        let mut done = StreamDone {
            applied: 0,
            late_deltas: plan.late_deltas,
            updates: 0,
        };
        let mut latest = None;
        for request in plan.requests(self.config.counter_expiry(now)) {
            let write = self
                .store
                .update_counter(&request)
                .await
                .map_err(|source| StreamUpdateError {
                    stream_id: stream_id.to_owned(),
                    source,
                })?;
            let counter = match write {
                CounterWrite::Applied(counter) => {
                    done.updates += 1;
                    done.applied = plan.records;
                    latest = Some(counter.clone());
                    counter
                }
                CounterWrite::AlreadyApplied(counter) => {
                    tracing::info!(stream_id, "these records were applied before; not again");
                    counter
                }
            };
            self.remember_counter(stream_id, &counter);
        }
        if let Some(counter) = latest {
            self.record_viewers(stream_id, &counter, now).await;
        }
        Ok(done)
    }

    /// Keeps the minute's history entry and `peak` at the most viewers seen, with one more
    /// write only when the count reached a new high for the minute (or the first of a minute).
    /// A failure here only delays the history, so it is logged and the batch goes on.
    async fn record_viewers(&self, stream_id: &str, counter: &CounterItem, now: i64) {
        let current = viewers(&counter.tallies.buckets, now);
        let (minutes, peak) = self.memory(stream_id).history.unwrap_or_default();
        let new_peak = current > peak;
        if minutes
            .get(&minute_of(now))
            .is_some_and(|&high| current <= high)
            && !new_peak
        {
            return;
        }
        let update = HistoryUpdate::new(
            stream_id,
            current,
            now,
            new_peak,
            minutes.into_keys(),
            self.config.counter_expiry(now),
        );
        match self.store.record_viewers(&update).await {
            Ok((_, history)) => self.remember_history(stream_id, &history),
            Err(error) => {
                tracing::warn!(stream_id, error = %error_chain(&error), "could not record viewers");
            }
        }
    }

    fn memory(&self, stream_id: &str) -> StreamMemory {
        self.known
            .lock()
            .map(|k| k.get(stream_id).cloned().unwrap_or_default())
            .unwrap_or_default()
    }

    fn remember_counter(&self, stream_id: &str, counter: &CounterItem) {
        if let Ok(mut known) = self.known.lock() {
            known.entry(stream_id.to_owned()).or_default().buckets =
                counter.tallies.buckets.keys().copied().collect();
        }
    }

    fn remember_history(&self, stream_id: &str, history: &HistoryItem) {
        if let Ok(mut known) = self.known.lock() {
            known.entry(stream_id.to_owned()).or_default().history =
                Some((history.tallies.history.clone(), history.peak.unwrap_or(0)));
        }
    }
}

struct StreamDone {
    applied: usize,
    late_deltas: usize,
    updates: usize,
}

/// Reads a stream record as the move of one session between expiry buckets: out of
/// `bucket(OldImage.expDate)` if the old image was watching, into `bucket(NewImage.expDate)` if
/// the new image is. INSERT, MODIFY, REMOVE and TTL deletions are read alike.
pub fn session_move(
    record: &EventRecord,
    timing: &Timing,
) -> Result<SessionMove, UnreadableRecord> {
    let change = &record.change;
    let sequence = change
        .sequence_number
        .as_deref()
        .and_then(SequenceNumber::parse)
        .ok_or_else(|| UnreadableRecord::SequenceNumber(change.sequence_number.clone()))?;
    let old = image("OldImage", &change.old_image)?;
    let new = image("NewImage", &change.new_image)?;
    let pk = match old.as_ref().or(new.as_ref()) {
        Some(image) => image.pk.clone(),
        None => {
            projected::<ItemKey>(&change.keys, &["PK", "SK"])
                .map_err(|_| UnreadableRecord::Keys)?
                .pk
        }
    };
    let partition = livecount_core::ids::SessionPartition::parse(&pk)
        .ok_or_else(|| UnreadableRecord::PartitionKey(pk.clone()))?;
    let bucket = |image: Option<SessionImage>| {
        image
            .filter(|i| i.watching)
            .map(|i| timing.bucket(i.exp_date))
    };
    let record_id = if record.event_id.is_empty() {
        sequence.as_str().to_owned()
    } else {
        record.event_id.clone()
    };
    Ok(SessionMove {
        stream_id: partition.stream_id,
        record_id,
        sequence,
        left: bucket(old),
        joined: bucket(new),
    })
}

fn image(
    name: &'static str,
    item: &serde_dynamo::Item,
) -> Result<Option<SessionImage>, UnreadableRecord> {
    if item.is_empty() {
        return Ok(None);
    }
    projected(item, &SessionImage::ATTRIBUTES)
        .map(Some)
        .map_err(|e| UnreadableRecord::Image {
            image: name,
            reason: e.to_string(),
        })
}

/// Maps only the named attributes of an item (what a `ProjectionExpression` would return), so
/// a record's images are not copied whole: the planning path's main cost was cloning them.
fn projected<T: serde::de::DeserializeOwned>(
    item: &serde_dynamo::Item,
    names: &[&str],
) -> Result<T, serde_dynamo::Error> {
    let projection: HashMap<String, serde_dynamo::AttributeValue> = names
        .iter()
        .filter_map(|&name| item.get_key_value(name))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    serde_dynamo::from_item(serde_dynamo::Item::from(projection))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> Event {
        serde_json::from_str(include_str!("../../tests/fixtures/dynamodb-event.json"))
            .expect("fixture")
    }

    #[test]
    fn aws_shaped_records_read_as_session_moves() {
        let timing = Timing::default();
        let records = fixture().records;
        let moves: Vec<(String, Option<i64>, Option<i64>)> = records
            .iter()
            .map(|r| session_move(r, &timing).expect("readable"))
            .map(|m| (m.stream_id, m.left, m.joined))
            .collect();
        let stream = "launch-keynote".to_owned();
        assert_eq!(
            moves,
            [
                (stream.clone(), None, Some(1_700_000_015)), // INSERT
                (stream.clone(), None, Some(1_700_000_015)), // INSERT
                (stream.clone(), Some(1_700_000_015), Some(1_700_000_020)), // MODIFY
                (stream.clone(), Some(1_700_000_015), None), // REMOVE
                (stream, Some(1_699_999_400), None),         // TTL REMOVE
            ]
        );
        for record in &records {
            let id = session_move(record, &timing).expect("readable").record_id;
            assert_eq!(
                id, record.event_id,
                "records are identified by their eventID"
            );
        }
    }

    #[test]
    fn the_metrics_are_the_contracts() {
        let contract: serde_json::Value =
            serde_json::from_str(livecount_core::metrics::CONTRACT_JSON).expect("contract");
        let names: Vec<&str> = AggregateReport::default()
            .metrics()
            .iter()
            .map(|(n, _)| *n)
            .collect();
        assert_eq!(serde_json::json!(names), contract["metrics"]["aggregate"]);
    }

    #[test]
    fn unreadable_records_name_what_is_wrong() {
        let timing = Timing::default();
        let mut record = fixture().records.remove(1);
        record.change.sequence_number = Some("12ab".into());
        assert_eq!(
            session_move(&record, &timing),
            Err(UnreadableRecord::SequenceNumber(Some("12ab".into())))
        );

        let mut record = fixture().records.remove(2);
        record.change.new_image.remove("expDate");
        assert!(matches!(
            session_move(&record, &timing),
            Err(UnreadableRecord::Image {
                image: "NewImage",
                ..
            })
        ));

        let record = fixture().records.remove(3);
        let mut json = serde_json::to_value(&record).expect("serializes");
        json["dynamodb"]["Keys"]["PK"] = serde_json::json!({"S": "no-shard"});
        json["dynamodb"]["OldImage"]["PK"] = serde_json::json!({"S": "no-shard"});
        let record: EventRecord = serde_json::from_value(json).expect("record");
        assert_eq!(
            session_move(&record, &timing),
            Err(UnreadableRecord::PartitionKey("no-shard".into()))
        );
    }
}
