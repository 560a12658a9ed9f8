//! # livecount-aggregate
//!
//! The aggregate Lambda (see `docs/design.md`): DynamoDB stream records of the sessions table
//! become one counter update per live stream. [`Aggregator::process`] is the algorithm;
//! [`handler`] is the Lambda entry point, also called by the local stream poller.
//!
//! - Each record moves one session between expiry buckets from the second its new state began:
//!   `-1` at its old bucket if the old image was watching and still counting then, `+1` at its
//!   new bucket if the new image is, and their difference at that start second. INSERT,
//!   MODIFY, REMOVE and TTL deletions are handled alike; deltas older than `now - G` are
//!   dropped.
//! - Deltas are summed per stream and bucket over the batch; each stream gets one `UpdateItem`
//!   (more only for a run of records touching more than 48 buckets).
//! - Each update writes a receipt named after the stream's first record in the batch, under the
//!   condition that the name holds nothing (or the receipt a redelivery found there): a
//!   redelivery that begins with the same record skips exactly the records applied before and
//!   applies the rest. Receipts are removed once the whole batch succeeded.
//! - After its updates, a stream's seconds settled since its last publication (10 s ago and
//!   older) are published, each once: the count of each, from the buckets and start seconds,
//!   is added to the hour item of its minute and to the lifetime item (peak, watch time), each
//!   written under the condition that its `through` is still what the aggregator read
//!   ([`livecount_core::figures`]).
//! - When anything fails that a retry can fix (throttling, 5xx, the invocation's deadline
//!   near), the batch item failure is the batch's *first* record, so Lambda retries from there
//!   and every stream's redelivery begins with the record its receipt is named after. A record
//!   that cannot be understood is logged with its keys, counted and skipped; an update DynamoDB
//!   rejects as invalid is logged, counted (`RecordsNotApplied`) and not retried.
//! - What the aggregator remembers of streams (known buckets, receipts, history) is bounded to
//!   [`MAX_REMEMBERED_STREAMS`], least recently used first out.

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use futures::stream::{self, StreamExt};
use lambda_runtime::LambdaEvent;
use livecount_core::breakdown::{Dimensions, value_moves};
use livecount_core::figures::{
    Counters, MAX_PUBLICATION_SECONDS, PUBLISH_EVERY_SECONDS, hours_of, settled, settled_by,
};
use livecount_core::histogram::{
    KnownCounter, Receipt, ReceiptKey, Redelivery, SequenceNumber, SessionMove,
    plan_counter_update, runs,
};
use livecount_core::ids::StreamId;
use livecount_core::model::{
    CounterItem, HourItem, ImageViewer, ItemKey, LifetimeItem, SessionImage,
};
use livecount_core::store::CounterWrite;
use livecount_core::{Clock, Config, Store, StoreError, Timing, error_chain};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most streams an aggregator remembers (their known buckets, receipts and history); beyond,
/// the least recently updated are forgotten (an update then relies on its blind pruning).
pub const MAX_REMEMBERED_STREAMS: usize = 10_000;

/// How long before its deadline an invocation stops starting counter updates (or a quarter of
/// the time it has, if less): what one update may take with the SDK's retries. The streams not
/// started are reported for a retry.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(3);

/// What the aggregate handler needs, plus what it remembers between invocations about each
/// stream's items, so old buckets, receipts and minutes can be pruned and history written only
/// when it changes.
#[derive(Debug)]
pub struct Aggregator {
    pub store: Store,
    pub config: Config,
    pub clock: Clock,
    known: Mutex<Memory>,
    /// This aggregator's own spread of publication times (see [`Aggregator::publish`]).
    spread: std::hash::RandomState,
}

/// What an aggregator remembers, bounded to [`MAX_REMEMBERED_STREAMS`] streams.
#[derive(Debug, Default)]
struct Memory {
    streams: HashMap<StreamId, StreamMemory>,
    /// Counts uses, to forget the least recently used streams first.
    uses: u64,
}

impl Memory {
    fn entry(&mut self, stream_id: &StreamId) -> &mut StreamMemory {
        self.uses += 1;
        if !self.streams.contains_key(stream_id) && self.streams.len() >= MAX_REMEMBERED_STREAMS {
            self.forget_least_recent();
        }
        let uses = self.uses;
        let memory = self.streams.entry(stream_id.clone()).or_default();
        memory.used = uses;
        memory
    }

    /// Forgets the least recently used tenth, so forgetting costs O(1) per stream on average.
    fn forget_least_recent(&mut self) {
        let mut uses: Vec<u64> = self.streams.values().map(|m| m.used).collect();
        let cut = uses.len() / 10;
        let (_, &mut threshold, _) = uses.select_nth_unstable(cut);
        self.streams.retain(|_, m| m.used > threshold);
    }
}

/// What an aggregator last saw of a stream's counter items.
#[derive(Debug, Clone, Default)]
struct StreamMemory {
    counter: KnownCounter,
    /// The lifetime item as last written or read.
    lifetime: LifetimeItem,
    /// The hour item of the last second published, as last written or read.
    hour: Option<HourItem>,
    /// Since when (aggregator clock) this aggregator has left the stream's publication to the
    /// lane whose counter holds seconds its own does not.
    deferred_since: Option<i64>,
    used: u64,
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
    pub stream_id: StreamId,
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
    /// Records not applied because their counter holds a receipt covering them (a redelivery).
    pub duplicates: usize,
    /// Redeliveries shorter than the receipt they found (Lambda does not shorten a retry; if one
    /// ever did, the records it left out were applied and come again in a later batch).
    pub shorter_redeliveries: usize,
    /// Records of streams whose update DynamoDB rejected as invalid: logged and counted, not
    /// retried (a retry would fail the same way and hold up the shard).
    pub not_applied: usize,
    /// Deltas dropped as older than `now - G`.
    pub late_deltas: usize,
    /// Start deltas dropped as older than the seconds history still reads (their records came
    /// more than `HISTORY_LAG_SECONDS + HISTORY_SPAN_SECONDS` after they were received: the
    /// history of the seconds in between was published without them).
    pub late_starts: usize,
    /// Counter `UpdateItem`s that committed.
    pub counter_updates: usize,
    /// Streams whose update failed transiently.
    pub failed_streams: Vec<String>,
    /// Streams not started because the invocation's deadline was near.
    pub deferred_streams: Vec<String>,
    /// Receipts removed after the batch succeeded.
    pub receipts_released: usize,
    /// Seconds of the streams' figures published without a count: no counter this batch saw
    /// held them any more (`missedSeconds` of the lifetime item).
    pub seconds_missed: u64,
    /// When a stream failed or was deferred: the batch's first record, so Lambda retries the
    /// batch from its start.
    pub response: DynamoDbEventResponse,
}

impl AggregateReport {
    /// Adds one stream's outcome; returns the receipts to release if the whole batch succeeds.
    fn add_outcome(
        &mut self,
        stream_id: StreamId,
        moves: &StreamMoves,
        outcome: StreamOutcome,
    ) -> Vec<(StreamId, ReceiptKey, Receipt)> {
        // A breakdown's value streams apply the stream's records again, split by value: their
        // updates and missed seconds count, their records do not (the stream's already did).
        let records = usize::from(!StreamId::is_value_stream(&stream_id));
        match outcome {
            StreamOutcome::Done(done) => {
                self.applied += records * done.applied;
                self.duplicates += records * done.duplicates;
                self.shorter_redeliveries += records * done.shorter;
                self.late_deltas += records * done.late_deltas;
                self.late_starts += records * done.late_starts;
                self.counter_updates += done.updates;
                self.seconds_missed += done.seconds_missed;
                done.receipts
                    .into_iter()
                    .map(|(key, receipt)| (stream_id.clone(), key, receipt))
                    .collect()
            }
            StreamOutcome::Failed(error) if !error.source.is_retryable() => {
                tracing::error!(
                    stream_id = %stream_id,
                    records = moves.len(),
                    error = %error_chain(&error),
                    "counter update rejected; its records are not applied and not retried"
                );
                self.not_applied += records * moves.len();
                Vec::new()
            }
            StreamOutcome::Failed(error) => {
                tracing::error!(stream_id = %stream_id, error = %error_chain(&error), "counter update failed");
                self.failed_streams.push(stream_id.into());
                Vec::new()
            }
            StreamOutcome::Deferred => {
                self.deferred_streams.push(stream_id.into());
                Vec::new()
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
            late_starts = self.late_starts,
            unreadable = self.unreadable,
            counter_updates = self.counter_updates,
            failed_streams = self.failed_streams.len(),
            deferred_streams = self.deferred_streams.len(),
            receipts_released = self.receipts_released,
            "aggregate batch"
        );
    }

    /// The counters this batch adds to the `aggregate` metrics (`infra/contract.json`).
    pub fn metrics(&self) -> [(&'static str, u64); 11] {
        [
            ("RecordsApplied", self.applied as u64),
            ("DuplicateRecords", self.duplicates as u64),
            ("RecordsNotApplied", self.not_applied as u64),
            ("DeltasLate", self.late_deltas as u64),
            ("UnreadableRecords", self.unreadable as u64),
            ("CounterUpdates", self.counter_updates as u64),
            ("StreamsFailed", self.failed_streams.len() as u64),
            ("StreamsDeferred", self.deferred_streams.len() as u64),
            ("ShorterRedeliveries", self.shorter_redeliveries as u64),
            ("StartsLate", self.late_starts as u64),
            ("SecondsMissed", self.seconds_missed),
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

/// The Lambda entry point: stream batch in, partial batch response out. The invocation's
/// deadline (`context.deadline`, epoch ms; 0 means none) bounds what it starts.
pub async fn handler(
    aggregator: &Aggregator,
    event: LambdaEvent<Event>,
) -> Result<DynamoDbEventResponse, AggregateError> {
    let stop = livecount_core::clock::stop_starting_work(event.context.deadline, DEADLINE_MARGIN);
    Ok(aggregator
        .process_until(&event.payload.records, stop)
        .await
        .response)
}

/// A batch whose counters are updated and whose receipts are not yet removed (see
/// [`Aggregator::apply_until`]).
#[derive(Debug)]
pub struct Applied {
    pub report: AggregateReport,
    receipts: Vec<(StreamId, ReceiptKey, Receipt)>,
}

/// One stream's records reduced to their moves, in batch order.
#[derive(Default)]
struct StreamMoves {
    sessions: Vec<SessionMove>,
    /// The moves (by index) that create a session's row with a `userId`, and that id: each
    /// marks its viewer before the counter update, which counts the viewer if it is the first.
    viewers: Vec<(usize, String)>,
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
            known: Mutex::new(Memory::default()),
            spread: std::hash::RandomState::new(),
        }
    }

    /// Applies one batch of stream records, with no deadline.
    pub async fn process(&self, records: &[EventRecord]) -> AggregateReport {
        self.process_until(records, None).await
    }

    /// Applies one batch of stream records, starting no counter update after `stop` (see
    /// [`livecount_core::clock::stop_starting_work`]): first [`Aggregator::apply_until`], then
    /// [`Aggregator::finish`].
    pub async fn process_until(
        &self,
        records: &[EventRecord],
        deadline: Option<Instant>,
    ) -> AggregateReport {
        let applied = self.apply_until(records, deadline).await;
        self.finish(applied, deadline).await
    }

    /// The first step of a batch: every stream's counter updated under its receipts. If any
    /// stream failed transiently or was not started, the response names the batch's first
    /// record: Lambda retries the whole batch, and each stream's receipt recognises what was
    /// applied. An invocation that dies after this step and before [`Aggregator::finish`] is
    /// retried the same way.
    pub async fn apply_until(&self, records: &[EventRecord], deadline: Option<Instant>) -> Applied {
        let now = self.clock.now_seconds();
        let mut report = AggregateReport {
            records: records.len(),
            ..AggregateReport::default()
        };
        let mut by_stream = self.moves_by_stream(records, &mut report);
        let mut unmarked = self.mark_viewers(&mut by_stream, now).await;
        let streams = by_stream.into_iter().map(|(stream_id, moves)| {
            let unmarked = unmarked.remove(&stream_id);
            (stream_id, moves, unmarked)
        });
        let outcomes = stream::iter(streams)
            .map(|(stream_id, moves, unmarked)| async move {
                let outcome = if let Some(source) = unmarked {
                    // Its viewers' markers could not be written: not counted now, retried.
                    StreamOutcome::Failed(StreamUpdateError {
                        stream_id: stream_id.clone(),
                        source,
                    })
                } else if near(deadline) {
                    StreamOutcome::Deferred
                } else {
                    match self.update_stream(&stream_id, &moves, now).await {
                        Ok(done) => StreamOutcome::Done(done),
                        Err(error) => StreamOutcome::Failed(error),
                    }
                };
                (stream_id, moves, outcome)
            })
            .buffer_unordered(self.config.max_concurrent_writes.max(1))
            .collect::<Vec<_>>()
            .await;
        let mut receipts = Vec::new();
        for (stream_id, moves, outcome) in outcomes {
            receipts.extend(report.add_outcome(stream_id, &moves, outcome));
        }
        if !(report.failed_streams.is_empty() && report.deferred_streams.is_empty())
            && let Some(first) = records.first()
        {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier =
                Some(first.change.sequence_number.clone().unwrap_or_default());
            report.response.batch_item_failures.push(failure);
        }
        Applied { report, receipts }
    }

    /// The last step of a batch: when it succeeded (and the deadline allows), its receipts are
    /// removed; then the batch is logged and its metrics emitted.
    pub async fn finish(&self, applied: Applied, deadline: Option<Instant>) -> AggregateReport {
        let Applied {
            mut report,
            receipts,
        } = applied;
        if report.response.batch_item_failures.is_empty() && !near(deadline) {
            report.receipts_released = self.release(receipts).await;
        }
        report.log();
        livecount_core::metrics::emit("aggregate", &report.metrics());
        report
    }

    /// Marks the viewers of the batch's moves that create a session's row with a `userId`, before
    /// any counter update (one `UpdateItem` each, [`Store::mark_viewer`], at most
    /// `max_concurrent_writes` at once), and sets `new_viewer` on the moves whose record is the
    /// first to see its viewer. A viewer's later moves in the same batch are not marked: the
    /// first in batch order is the one that may count. A redelivery of the same records gets the
    /// same answers (the marker keeps the first record's id), so its runs are cut the same way and
    /// its receipts keep the viewers it counted from counting twice.
    ///
    /// Returns the streams whose markers failed transiently: they are failed for the batch's
    /// retry, before their counter update. A marker DynamoDB rejects (it will fail the same way
    /// again) is logged and its viewer left uncounted, so the live count is never held back by
    /// a figure.
    async fn mark_viewers(
        &self,
        by_stream: &mut BTreeMap<StreamId, StreamMoves>,
        now: i64,
    ) -> BTreeMap<StreamId, StoreError> {
        let mut marks = Vec::new();
        for (stream_id, moves) in by_stream.iter() {
            let mut seen = std::collections::HashSet::new();
            for (i, user) in &moves.viewers {
                if let Some(m) = moves.sessions.get(*i)
                    && seen.insert(user.as_str())
                {
                    marks.push((stream_id.clone(), *i, user.clone(), m.record_id.clone()));
                }
            }
        }
        let (shards, expires_at) = (self.config.session_shards, self.config.counter_expiry(now));
        let answers = stream::iter(marks)
            .map(|(stream_id, i, user, record)| async move {
                let answer = self
                    .store
                    .mark_viewer(&stream_id, shards, &user, &record, now, expires_at)
                    .await;
                (stream_id, i, answer)
            })
            .buffer_unordered(self.config.max_concurrent_writes.max(1))
            .collect::<Vec<_>>()
            .await;
        let mut failed = BTreeMap::new();
        for (stream_id, i, answer) in answers {
            match answer {
                Ok(first) => {
                    let moves = by_stream.get_mut(&stream_id);
                    if let Some(m) = moves.and_then(|moves| moves.sessions.get_mut(i)) {
                        m.new_viewer = first;
                    }
                }
                Err(error) if !error.is_retryable() => {
                    tracing::error!(stream_id = stream_id.as_str(), error = %error_chain(&error), "viewer marker rejected; this viewer is not counted among the unique viewers");
                }
                Err(error) => {
                    failed.entry(stream_id).or_insert(error);
                }
            }
        }
        failed
    }

    /// Removes the receipts of a batch that succeeded; a failure only leaves a receipt for the
    /// sweep (it is logged). Returns how many were removed.
    async fn release(&self, receipts: Vec<(StreamId, ReceiptKey, Receipt)>) -> usize {
        let released = stream::iter(receipts)
            .map(|(stream_id, key, receipt)| async move {
                match self.store.release_receipt(&stream_id, key, &receipt).await {
                    Ok(removed) => {
                        self.forget_receipt(&stream_id, key);
                        removed
                    }
                    Err(error) => {
                        tracing::warn!(stream_id = stream_id.as_str(), error = %error_chain(&error), "could not remove a receipt; it is swept later");
                        false
                    }
                }
            })
            .buffer_unordered(self.config.max_concurrent_writes.max(1))
            .collect::<Vec<bool>>()
            .await;
        released.into_iter().filter(|&r| r).count()
    }

    /// The batch's readable records as moves, by stream (and by value stream, for the
    /// breakdowns); an unreadable one is logged, counted and skipped.
    fn moves_by_stream(
        &self,
        records: &[EventRecord],
        report: &mut AggregateReport,
    ) -> BTreeMap<StreamId, StreamMoves> {
        let mut by_stream: BTreeMap<StreamId, StreamMoves> = BTreeMap::new();
        let breakdowns = &self.config.breakdowns;
        for record in records {
            match read_record(record, &self.config.timing) {
                Ok(read) => {
                    let values = value_moves(
                        &read.session,
                        read.old.as_ref(),
                        read.new.as_ref(),
                        breakdowns,
                    );
                    // Only the stream's own move marks its viewer; its value streams' do not.
                    let mut viewer = read.viewer;
                    for session in std::iter::once(read.session).chain(values) {
                        let moves = match by_stream.get_mut(&session.stream_id) {
                            Some(moves) => moves,
                            None => by_stream.entry(session.stream_id.clone()).or_default(),
                        };
                        if let Some(user) = viewer.take() {
                            moves.viewers.push((moves.sessions.len(), user));
                        }
                        moves.sessions.push(session);
                    }
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
        stream_id: &StreamId,
        moves: &StreamMoves,
        now: i64,
    ) -> Result<StreamDone, StreamUpdateError> {
        let mut done = StreamDone::default();
        // The counter before this invocation's first update of the stream, and after its last.
        let (mut before, mut latest) = (None, None);
        for run in runs(&moves.sessions) {
            if let Some(written) = self.apply_run(stream_id, run, now, &mut done).await? {
                before = before.or(written.before);
                latest = Some(written.after);
            }
        }
        if let Some(counter) = latest {
            done.seconds_missed = self
                .publish(stream_id, before.as_ref(), &counter, now)
                .await;
        }
        Ok(done)
    }

    /// Applies one run of a stream's records under its receipt: a first delivery applies them
    /// all; a redelivery applies only what its receipt does not cover. Returns the counter as the
    /// last applied update left it (and as it was before, when this run changed it).
    async fn apply_run(
        &self,
        stream_id: &StreamId,
        run: &[SessionMove],
        now: i64,
        done: &mut StreamDone,
    ) -> Result<Option<Written>, StreamUpdateError> {
        let failed = |source| StreamUpdateError {
            stream_id: stream_id.clone(),
            source,
        };
        let Some(first) = run.first() else {
            return Ok(None);
        };
        let key = ReceiptKey::of_first_record(&first.record_id);
        let (mut from, mut replaces) = (0, None);
        for _ in 0..MAX_RECEIPT_ROUNDS {
            let known = self.memory(stream_id).counter;
            let timing = &self.config.timing;
            let Some(plan) =
                plan_counter_update(stream_id, run, from, replaces, &known, timing, now)
            else {
                // Nothing that changes the count (late deltas only, or moves that cancel out).
                done.applied += run.len() - from;
                done.duplicates += from;
                done.receipts.extend(replaces.map(|r| (key, r)));
                return Ok(None);
            };
            let mut requests = plan.requests(self.config.counter_expiry(now)).into_iter();
            let Some(head) = requests.next() else {
                return Ok(None);
            };
            match self.store.update_counter(&head).await.map_err(failed)? {
                CounterWrite::Applied { before, after } => {
                    self.remember_counter(stream_id, &after);
                    done.updates += 1;
                    done.applied += plan.records;
                    done.duplicates += from;
                    done.late_deltas += plan.late_deltas;
                    done.late_starts += plan.late_starts;
                    done.receipts.push((key, plan.receipt.receipt));
                    let mut latest = after;
                    for request in requests {
                        latest = match self.store.update_counter(&request).await.map_err(failed)? {
                            CounterWrite::Applied { after, .. } => after,
                            CounterWrite::ReceiptHeld(counter) => counter,
                        };
                        self.remember_counter(stream_id, &latest);
                    }
                    return Ok(Some(Written {
                        before: Some(before),
                        after: latest,
                    }));
                }
                CounterWrite::ReceiptHeld(counter) => {
                    self.remember_counter(stream_id, &counter);
                    let Some(found) = counter.tallies.receipts.get(&key).copied() else {
                        // The receipt this redelivery found was removed meanwhile: a delivery
                        // of the same records ran at once and finished. Never skip: apply all.
                        tracing::warn!(
                            stream_id = stream_id.as_str(),
                            "a receipt went away during a redelivery; applying its records"
                        );
                        (from, replaces) = (0, None);
                        continue;
                    };
                    match found.redelivery(run) {
                        // The counter as it is now: the publication the first delivery may not
                        // have made is made from it.
                        Redelivery::Applied => {
                            tracing::info!(
                                stream_id = stream_id.as_str(),
                                records = run.len(),
                                "these records were applied before; not again"
                            );
                            done.duplicates += run.len();
                            done.receipts.push((key, found));
                            return Ok(Some(Written {
                                before: None,
                                after: counter,
                            }));
                        }
                        Redelivery::Shorter => {
                            tracing::warn!(
                                stream_id = stream_id.as_str(),
                                records = run.len(),
                                covered = found.records,
                                "a redelivery shorter than its receipt; not applied"
                            );
                            done.duplicates += run.len();
                            done.shorter += 1;
                            return Ok(Some(Written {
                                before: None,
                                after: counter,
                            }));
                        }
                        Redelivery::Rest(applied) => {
                            tracing::info!(
                                stream_id = stream_id.as_str(),
                                applied,
                                records = run.len(),
                                "a redelivery with more records; applying the rest"
                            );
                            (from, replaces) = (applied, Some(found));
                        }
                        Redelivery::Unrelated => {
                            tracing::warn!(
                                stream_id = stream_id.as_str(),
                                "a receipt of other records under this name; applying all"
                            );
                            (from, replaces) = (0, Some(found));
                        }
                    }
                }
            }
        }
        Err(failed(StoreError::Contended {
            table: self.store.counters_table().to_owned(),
        }))
    }

    /// Publishes the seconds settled since the stream's last publication, once at least
    /// [`PUBLISH_EVERY_SECONDS`] (plus this aggregator's spread) have: the hour items first, then the lifetime item, each under
    /// the condition that its `through` is what this aggregator last saw. A condition that fails
    /// returns the item as it is (another lane published, or this aggregator has not seen the
    /// stream yet): the publication is planned again from it. A failure here only delays the
    /// figures (the next publication takes the same seconds, and readers complete them from the
    /// live counter meanwhile), so it is logged and the batch goes on.
    async fn publish(
        &self,
        stream_id: &StreamId,
        before: Option<&CounterItem>,
        counter: &CounterItem,
        now: i64,
    ) -> u64 {
        let up_to = settled_by(now);
        let memory = self.memory(stream_id);
        let mut lifetime = memory.lifetime;
        // The hour items as this publication knows them (one remembered between publications).
        let mut hours: BTreeMap<i64, HourItem> =
            memory.hour.into_iter().map(|h| (h.hour, h)).collect();
        let (mut rounds, mut missed) = (0, 0);
        while rounds < MAX_PUBLISH_ROUNDS {
            rounds += 1;
            if lifetime
                .through
                .is_some_and(|w| up_to - w < PUBLISH_EVERY_SECONDS + self.spread_of(stream_id, w))
            {
                return missed;
            }
            let Some(counters) = Counters::of(before, counter) else {
                return missed;
            };
            // At most half an hour a write, so that every hour write stays within DynamoDB's
            // expression limits (three attributes for each minute it changes).
            let to = lifetime
                .through
                .map_or(up_to, |w| up_to.min(w + MAX_PUBLICATION_SECONDS));
            let more = settled(lifetime.through, &counters, to);
            let expires_at = self.config.counter_expiry(now);
            if more.missed > 0 {
                match self.deferral(stream_id, now) {
                    Deferral::Over => {}
                    Deferral::Waiting => return missed,
                    // Is what this aggregator knows of the lifetime item still so? A write of the
                    // same figures under its `through` tells: applied, it is (and the seconds
                    // are for the lane that holds them); refused, the item as it is comes back.
                    Deferral::Started => {
                        match self
                            .store
                            .publish_lifetime(stream_id, &lifetime, &lifetime, expires_at)
                            .await
                        {
                            Ok(Ok(())) => return missed,
                            Ok(Err(actual)) => {
                                lifetime = actual;
                                continue;
                            }
                            Err(error) => {
                                tracing::warn!(stream_id = stream_id.as_str(), error = %error_chain(&error), "could not check the lifetime figures");
                                return missed;
                            }
                        }
                    }
                }
            }
            let mut replan = false;
            for hour in hours_of(&more) {
                let known = hours
                    .get(&hour)
                    .cloned()
                    .unwrap_or_else(|| HourItem::empty(stream_id.as_str(), hour));
                let next = known.with(&more);
                // An hour with no viewer gets no item (nor does one only completed here).
                let no_viewer = next.minutes.values().all(|m| m.highest == 0);
                if next == known || (known.through.is_none() && no_viewer) {
                    continue;
                }
                // An hour is kept for the retention after it ended.
                let hour_expires = self.config.counter_expiry(next.end().max(now));
                match self
                    .store
                    .publish_hour(stream_id, &known, &next, hour_expires)
                    .await
                {
                    Ok(Ok(())) => {
                        hours.insert(hour, next);
                    }
                    Ok(Err(actual)) => {
                        hours.insert(hour, actual);
                        replan = true;
                        break;
                    }
                    Err(error) => {
                        tracing::warn!(stream_id = stream_id.as_str(), error = %error_chain(&error), "could not publish an hour");
                        return missed;
                    }
                }
            }
            if !replan {
                let next = lifetime.with(&more);
                match self
                    .store
                    .publish_lifetime(stream_id, &lifetime, &next, expires_at)
                    .await
                {
                    Ok(Ok(())) => {
                        let now_missed = next.missed_seconds - lifetime.missed_seconds;
                        if now_missed > 0 {
                            tracing::warn!(
                                stream_id = stream_id.as_str(),
                                missed = now_missed,
                                "seconds no counter held any more; not counted (SecondsMissed)"
                            );
                        }
                        missed += now_missed;
                        let done = next.through.is_some_and(|w| w >= up_to);
                        if !done {
                            // The next half hour: not a round of its own.
                            rounds -= 1;
                            lifetime = next;
                            continue;
                        }
                        self.remember_figures(stream_id, next, hours.pop_last().map(|(_, h)| h));
                        return missed;
                    }
                    Ok(Err(actual)) => lifetime = actual,
                    Err(error) => {
                        tracing::warn!(stream_id = stream_id.as_str(), error = %error_chain(&error), "could not publish the lifetime figures");
                        return missed;
                    }
                }
            }
            let latest = hours.last_key_value().map(|(_, h)| h.clone());
            self.remember_figures(stream_id, lifetime.clone(), latest);
        }
        tracing::warn!(
            stream_id = stream_id.as_str(),
            "the figures changed under every publication; the next update publishes them"
        );
        missed
    }

    /// Where this aggregator is in leaving a publication it cannot make whole (its counters no
    /// longer hold every second after the figures' `through`) to the lane whose update came first
    /// after the stream fell silent, whose counter before that update holds them: for
    /// [`MAX_DEFERRAL_SECONDS`], then it makes it, counting those seconds as missed.
    fn deferral(&self, stream_id: &StreamId, now: i64) -> Deferral {
        let Ok(mut known) = self.known.lock() else {
            return Deferral::Over;
        };
        match known.entry(stream_id).deferred_since {
            Some(since) if now - since >= MAX_DEFERRAL_SECONDS => Deferral::Over,
            Some(_) => Deferral::Waiting,
            ref mut none @ None => {
                *none = Some(now);
                Deferral::Started
            }
        }
    }

    /// 0 to [`PUBLISH_SPREAD_SECONDS`] more seconds this aggregator waits before it publishes a
    /// stream's figures settled after `through`: lanes that learnt the same `through` at once do
    /// not all try the next publication in the same second (all but one would fail its
    /// condition, each failure charged a write unit on the stream's key).
    fn spread_of(&self, stream_id: &StreamId, through: i64) -> i64 {
        use std::hash::BuildHasher;
        (self.spread.hash_one((stream_id.as_str(), through)) % (PUBLISH_SPREAD_SECONDS as u64 + 1))
            as i64
    }

    /// How many streams the aggregator remembers now (at most [`MAX_REMEMBERED_STREAMS`]).
    pub fn remembered_streams(&self) -> usize {
        self.known.lock().map_or(0, |k| k.streams.len())
    }

    fn memory(&self, stream_id: &StreamId) -> StreamMemory {
        self.known
            .lock()
            .map(|k| k.streams.get(stream_id).cloned().unwrap_or_default())
            .unwrap_or_default()
    }

    fn remember_counter(&self, stream_id: &StreamId, counter: &CounterItem) {
        if let Ok(mut known) = self.known.lock() {
            known.entry(stream_id).counter = KnownCounter {
                buckets: counter.tallies.buckets.keys().copied().collect(),
                starts: counter.tallies.starts.keys().copied().collect(),
                new_sessions: counter.tallies.new_sessions.keys().copied().collect(),
                new_viewers: counter.tallies.new_viewers.keys().copied().collect(),
                receipts: counter.tallies.receipts.clone(),
            };
        }
    }

    fn forget_receipt(&self, stream_id: &StreamId, key: ReceiptKey) {
        if let Ok(mut known) = self.known.lock()
            && let Some(memory) = known.streams.get_mut(stream_id)
        {
            memory.counter.receipts.remove(&key);
        }
    }

    fn remember_figures(
        &self,
        stream_id: &StreamId,
        lifetime: LifetimeItem,
        hour: Option<HourItem>,
    ) {
        if let Ok(mut known) = self.known.lock() {
            let memory = known.entry(stream_id);
            if memory.lifetime.through != lifetime.through {
                memory.deferred_since = None;
            }
            memory.lifetime = lifetime;
            memory.hour = hour;
        }
    }
}

/// Whether it is past `stop`, when no more work may start.
fn near(stop: Option<Instant>) -> bool {
    stop.is_some_and(|stop| Instant::now() >= stop)
}

/// Conditional rounds one run may take against receipts changing under it (only deliveries of
/// the same records at once make more than two).
const MAX_RECEIPT_ROUNDS: usize = 4;

/// Most seconds an aggregator adds at random to [`PUBLISH_EVERY_SECONDS`]. Their sum stays
/// below [`livecount_core::histogram::HISTORY_SPAN_SECONDS`] less the time between a stream's
/// updates, so the counter before an update still holds every second not yet published.
pub const PUBLISH_SPREAD_SECONDS: i64 = 3;

/// How long an aggregator leaves a publication it cannot make whole to another lane before it
/// makes it anyway, counting the seconds it cannot count (`missedSeconds`).
pub const MAX_DEFERRAL_SECONDS: i64 = 60;

/// Conditional rounds one publication may take: an aggregator that has not seen the stream
/// learns its hour item, then its lifetime item, from two failed conditions; more only when
/// other lanes publish at once.
const MAX_PUBLISH_ROUNDS: usize = 4;

/// A counter as an applied run left it, and as it was before the run's first update (`None`
/// when the run found its receipt and changed nothing).
struct Written {
    before: Option<CounterItem>,
    after: CounterItem,
}

/// See [`Aggregator::deferral`].
enum Deferral {
    /// Just begun: check that the lifetime item is still as this aggregator knows it.
    Started,
    Waiting,
    Over,
}

/// How one stream's update went.
enum StreamOutcome {
    Done(StreamDone),
    Failed(StreamUpdateError),
    Deferred,
}

#[derive(Default)]
struct StreamDone {
    applied: usize,
    duplicates: usize,
    shorter: usize,
    late_deltas: usize,
    late_starts: usize,
    updates: usize,
    /// Seconds the stream's figures were published without (see [`AggregateReport`]).
    seconds_missed: u64,
    /// Receipts to remove once the whole batch succeeded.
    receipts: Vec<(ReceiptKey, Receipt)>,
}

/// Reads a stream record as the move of one session between expiry buckets: out of
/// `bucket(OldImage.expDate)` if the old image was watching, into `bucket(NewImage.expDate)` if
/// the new image is. INSERT, MODIFY, REMOVE and TTL deletions are read alike.
pub fn session_move(
    record: &EventRecord,
    timing: &Timing,
) -> Result<SessionMove, UnreadableRecord> {
    read_record(record, timing).map(|r| r.session)
}

/// A stream record read: its session's move, the dimensions of its old and new images
/// (`None` where it has no such image), which move the session between value streams, and the
/// `userId` of a record that creates a session's row with one (its viewer, to mark).
#[derive(Debug, Clone)]
pub struct RecordRead {
    pub session: SessionMove,
    pub old: Option<Dimensions>,
    pub new: Option<Dimensions>,
    pub viewer: Option<String>,
}

/// [`session_move`], with the images' dimensions.
pub fn read_record(record: &EventRecord, timing: &Timing) -> Result<RecordRead, UnreadableRecord> {
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
    // When the new state began: its event's receive second, or the old state's if that was
    // later (an event written after one received later takes effect from then, so a session's
    // states follow one another in the order its row was written); for a deletion (or a row
    // written before rows carried `recvAt`), when the stream record was made.
    let made = change.approximate_creation_date_time.timestamp();
    let received = |image: &Option<SessionImage>| {
        image
            .as_ref()
            .and_then(|i| i.recv_at)
            .map(|ms| ms.div_euclid(1000))
    };
    let at = match (received(&new), received(&old)) {
        (Some(new), old) => new.max(old.unwrap_or(i64::MIN)),
        (None, _) => made,
    };
    let new_session = old.is_none() && new.is_some();
    let viewer = match new_session {
        true => projected::<ImageViewer>(&change.new_image, &ImageViewer::ATTRIBUTES)
            .ok()
            .and_then(|v| v.user_id),
        false => None,
    };
    let dimensions = |image: &Option<SessionImage>| image.as_ref().map(|i| i.dimensions.clone());
    let (old_dimensions, new_dimensions) = (dimensions(&old), dimensions(&new));
    let left = old
        .filter(|i| i.watching && i.exp_date >= at)
        .map(|i| timing.bucket(i.exp_date));
    let joined = new
        .filter(|i| i.watching)
        .map(|i| timing.bucket(i.exp_date));
    let record_id = if record.event_id.is_empty() {
        sequence.as_str().to_owned()
    } else {
        record.event_id.clone()
    };
    Ok(RecordRead {
        session: SessionMove {
            stream_id: partition.stream_id,
            record_id,
            sequence,
            at,
            left,
            joined,
            new_session,
            new_viewer: false,
        },
        old: old_dimensions,
        new: new_dimensions,
        viewer,
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

/// Maps only the named attributes of an item, such as a stream record's image, to `T` (what a
/// `ProjectionExpression` would return), so the image is not copied whole: the planning path's
/// main cost was cloning them. The one projection of an image: `livecount dev`'s lag and the
/// simulation's oracle read images through it too.
pub fn projected<T: serde::de::DeserializeOwned>(
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
            .map(|m| (m.stream_id.to_string(), m.left, m.joined))
            .collect();
        let stream = "launch-keynote".to_owned();
        assert_eq!(
            moves,
            [
                (stream.clone(), None, Some(1_700_000_015)), // INSERT
                (stream.clone(), None, Some(1_700_000_015)), // INSERT
                (stream.clone(), Some(1_700_000_015), Some(1_700_000_020)), // MODIFY
                (stream.clone(), Some(1_700_000_015), None), // REMOVE
                // TTL REMOVE: its state had expired before the deletion, so it leaves nothing
                (stream, None, None),
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
            serde_json::from_str(livecount_core::contract::CONTRACT_JSON).expect("contract");
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
