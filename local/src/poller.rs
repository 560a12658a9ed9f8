//! A DynamoDB Streams poller with Lambda's event source mapping semantics, for DynamoDB Local
//! (which has no Lambda triggers).
//!
//! It reads every shard of a stream (parents before their children, following new shards),
//! turns each record into the `aws_lambda_events` shape Lambda delivers, and calls the handler
//! with batches of up to `batch_size` records of one lane, waiting up to `batching_window` to
//! fill one. What happens after a failure is what AWS's pages say
//! (<https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-batchfailurereporting.html>,
//! <https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html>), no kinder:
//!
//! - a partial batch response: "Lambda uses the record with the lowest sequence number as the
//!   checkpoint. Lambda then retries all records starting from that checkpoint": the records
//!   before it are committed and the next batch is cut afresh from the checkpoint, so it may
//!   hold more records than the failed one (those that arrived meanwhile);
//! - a function error: without `BisectBatchOnFunctionError`, the batch is retried from its
//!   first record (cut afresh, likewise); with it, "the batch is bisected regardless of your
//!   ReportBatchItemFailures setting": the first half, then the second, each bisected again if
//!   it fails;
//! - with both on, a partial response "bisects the batch at the returned sequence number and
//!   Lambda retries only the remaining records": exactly those, not a fresh cut;
//! - after `max_retries` failed deliveries of a batch, or once a record is older than
//!   `max_record_age`, the records are discarded (Lambda's on-failure destination: counted in
//!   [`PollReport::discarded`]).
//!
//! DynamoDB Local has one shard and Lambda's poller, here, one lane; AWS is harsher. With
//! `virtual_shards` K and `parallelization_factor` PF, each shard's records are spread over
//! K × PF lanes by a hash of their item key (partition key and sort key): the records of one
//! partition key land on different lanes, as after DynamoDB splits a hot item collection over
//! sibling shards, while each item's records stay in order in one lane, which is all Lambda
//! promises. Every lane's batch is delivered at once, each after a random delay up to
//! `max_delivery_delay`, so lanes finish in any order.

use aws_lambda_events::event::dynamodb::{
    Event, EventRecord, StreamRecord, StreamViewType, UserIdentity,
};
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use aws_sdk_dynamodbstreams::Client;
use aws_sdk_dynamodbstreams::error::SdkError;
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use chrono::DateTime;
use livecount_core::expiry::session_shard;
use livecount_core::model::ItemKey;
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Display;
use std::time::{Duration, Instant};

/// The event source mapping settings the poller imitates.
#[derive(Debug, Clone)]
pub struct PollerConfig {
    /// Most records per handler call (Lambda's `BatchSize`; 1-10,000, default 100).
    pub batch_size: usize,
    /// How long to gather records before calling the handler with a short batch
    /// (Lambda's `MaximumBatchingWindowInSeconds`; default 0).
    pub batching_window: Duration,
    /// Pause between polls of an idle stream in [`StreamPoller::run`] (Lambda polls each shard
    /// about four times a second).
    pub poll_interval: Duration,
    /// Failed deliveries of one batch before it is discarded (Lambda's
    /// `MaximumRetryAttempts`).
    pub max_retries: u32,
    /// Records older than this are discarded instead of delivered (Lambda's
    /// `MaximumRecordAgeInSeconds`, by the record's `ApproximateCreationDateTime`).
    pub max_record_age: Option<Duration>,
    /// Lambda's `BisectBatchOnFunctionError`.
    pub bisect_on_error: bool,
    /// The region written into records (`awsRegion`).
    pub region: String,
    /// Virtual shards each real shard is split into (K; 1 = as DynamoDB Local has it).
    pub virtual_shards: u32,
    /// Concurrent lanes per shard (Lambda's `ParallelizationFactor`, 1-10).
    pub parallelization_factor: u32,
    /// Longest random pause before a lane's delivery, so concurrent lanes finish in any order.
    pub max_delivery_delay: Duration,
    /// Seed of the delays and of the order of [`StreamPoller::next_batches`].
    pub seed: u64,
}

impl PollerConfig {
    /// Lanes per shard: `virtual_shards × parallelization_factor`.
    pub fn lanes(&self) -> u32 {
        self.virtual_shards.max(1) * self.parallelization_factor.max(1)
    }

    /// As harsh as AWS delivers: `k` virtual shards, `pf` lanes each, finishing in random order.
    pub fn harsh(k: u32, pf: u32) -> Self {
        Self {
            virtual_shards: k,
            parallelization_factor: pf,
            max_delivery_delay: Duration::from_millis(15),
            ..Self::default()
        }
    }
}

impl Default for PollerConfig {
    /// The aggregate mapping as CDK and Terraform deploy it (`infra/contract.json`: batch size,
    /// retry attempts, record age, no bisecting), with no batching window: tests and the dev
    /// pipeline deliver at once.
    fn default() -> Self {
        let deployed = |name: &str| deployed_setting(name);
        Self {
            batch_size: deployed("aggregate_batch_size").map_or(100, |v| v as usize),
            batching_window: Duration::ZERO,
            poll_interval: Duration::from_millis(250),
            max_retries: deployed("aggregate_retry_attempts").map_or(5, |v| v as u32),
            max_record_age: deployed("aggregate_max_record_age_seconds").map(Duration::from_secs),
            bisect_on_error: false,
            region: "local".to_owned(),
            virtual_shards: 1,
            parallelization_factor: 1,
            max_delivery_delay: Duration::ZERO,
            seed: 0x5eed,
        }
    }
}

/// A deployment default of `infra/contract.json` ("settings"), as a whole number.
fn deployed_setting(name: &str) -> Option<u64> {
    let contract: serde_json::Value =
        serde_json::from_str(livecount_core::metrics::CONTRACT_JSON).ok()?;
    contract["settings"][name]["default"].as_u64()
}

/// A stream call that failed; [`StreamPoller::run`] logs it and polls again.
#[derive(Debug, thiserror::Error)]
pub enum PollerError {
    #[error("DynamoDB Streams {operation} failed")]
    Streams {
        operation: &'static str,
        #[source]
        source: Box<aws_sdk_dynamodbstreams::Error>,
    },
}

/// What one poll or drain did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollReport {
    /// Records read from the stream.
    pub fetched: usize,
    /// Handler calls, and records in them (a redelivered record counts again).
    pub batches: usize,
    pub delivered: usize,
    /// Records committed (acknowledged by the handler).
    pub committed: usize,
    /// Deliveries the handler failed in whole or in part.
    pub failed_deliveries: usize,
    /// Records given up on after `max_retries`.
    pub discarded: usize,
    /// TTL deletions turned into service `REMOVE`s.
    pub ttl_removes: usize,
}

impl PollReport {
    fn add(&mut self, other: &PollReport) {
        self.fetched += other.fetched;
        self.batches += other.batches;
        self.delivered += other.delivered;
        self.committed += other.committed;
        self.failed_deliveries += other.failed_deliveries;
        self.discarded += other.discarded;
        self.ttl_removes += other.ttl_removes;
    }
}

#[derive(Debug, Default)]
struct ShardState {
    parent: Option<String>,
    iterator: Option<String>,
    /// No more records will come: GetRecords returned no next iterator.
    closed: bool,
    /// Last sequence number read, to resume when an iterator expires.
    last_read: Option<String>,
    /// The shard's lanes, by number.
    lanes: BTreeMap<u32, Lane>,
}

/// One lane: the records of the items hashed to it, in order.
#[derive(Debug, Default)]
struct Lane {
    /// Records read and not yet committed, oldest first.
    pending: VecDeque<EventRecord>,
    /// When the oldest pending record was read (the batching window's start).
    pending_since: Option<Instant>,
    /// Failed deliveries of the batch at the head of `pending`.
    attempts: u32,
    /// The sizes of the next batches to deliver exactly (the halves of a bisected batch, or the
    /// records a partial response left when bisecting): empty means cut afresh.
    exact_takes: VecDeque<usize>,
}

impl ShardState {
    fn pending(&self) -> usize {
        self.lanes.values().map(|l| l.pending.len()).sum()
    }

    fn finished(&self) -> bool {
        self.closed && self.pending() == 0
    }
}

/// A batch on its way to the handler: its shard, lane and size.
struct Delivery {
    shard: String,
    lane: u32,
    take: usize,
    event: Event,
}

/// Reads one stream and feeds its records to a handler, as Lambda would.
pub struct StreamPoller {
    client: Client,
    stream_arn: String,
    config: PollerConfig,
    shards: BTreeMap<String, ShardState>,
    rng: fastrand::Rng,
}

impl StreamPoller {
    pub fn new(client: Client, stream_arn: impl Into<String>, config: PollerConfig) -> Self {
        Self {
            client,
            stream_arn: stream_arn.into(),
            rng: fastrand::Rng::with_seed(config.seed),
            config,
            shards: BTreeMap::new(),
        }
    }

    pub fn stream_arn(&self) -> &str {
        &self.stream_arn
    }

    /// Reads the next records of every readable shard and hands them over, without calling any
    /// handler, as the batches Lambda would deliver next (lanes in random order); the poller
    /// forgets them. For tests that deliver a batch themselves: twice, in part, or changed.
    pub async fn next_batches(&mut self) -> Result<Vec<Event>, PollerError> {
        let mut report = PollReport::default();
        self.discover_shards().await?;
        let ids: Vec<String> = self.readable_shards();
        let mut batches = Vec::new();
        for id in ids {
            self.read_shard(&id, &mut report).await?;
            let batch_size = self.config.batch_size;
            for lane in self
                .shards
                .get_mut(&id)
                .into_iter()
                .flat_map(|s| s.lanes.values_mut())
            {
                while !lane.pending.is_empty() {
                    let take = lane.pending.len().min(batch_size);
                    let mut event = Event::default();
                    event.records = lane.pending.drain(..take).collect();
                    batches.push(event);
                }
                lane.pending_since = None;
            }
        }
        self.rng.shuffle(&mut batches);
        Ok(batches)
    }

    /// One round: discovers shards, reads each readable shard once, and delivers the batches
    /// that are due (full, or older than the batching window; all of them when `force`).
    pub async fn poll_once<H, E>(
        &mut self,
        handler: &H,
        force: bool,
    ) -> Result<PollReport, PollerError>
    where
        H: AsyncFn(Event) -> Result<DynamoDbEventResponse, E>,
        E: Display,
    {
        let mut report = PollReport::default();
        self.discover_shards().await?;
        let ids = self.readable_shards();
        for id in &ids {
            self.read_shard(id, &mut report).await?;
        }
        self.discard_expired(&mut report);
        self.deliver_due(&ids, handler, force, &mut report).await;
        Ok(report)
    }

    /// Polls until everything the stream holds now has been delivered and committed (or
    /// discarded): the handler has seen every record written before the call.
    pub async fn drain<H, E>(&mut self, handler: &H) -> Result<PollReport, PollerError>
    where
        H: AsyncFn(Event) -> Result<DynamoDbEventResponse, E>,
        E: Display,
    {
        let mut total = PollReport::default();
        loop {
            let round = self.poll_once(handler, true).await?;
            total.add(&round);
            let idle = round.fetched == 0 && round.batches == 0;
            if idle && self.shards.values().all(|s| s.pending() == 0) {
                return Ok(total);
            }
        }
    }

    /// Polls until `shutdown` resolves, logging stream errors and going on.
    pub async fn run<H, E>(mut self, handler: H, shutdown: impl Future<Output = ()>)
    where
        H: AsyncFn(Event) -> Result<DynamoDbEventResponse, E>,
        E: Display,
    {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let busy = match self.poll_once(&handler, false).await {
                Ok(report) => report.fetched > 0 || report.batches > 0,
                Err(error) => {
                    tracing::warn!(error = %livecount_core::error_chain(&error), "stream poll failed");
                    false
                }
            };
            let pause = if busy {
                Duration::ZERO
            } else {
                self.config.poll_interval
            };
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// Shards whose records may be delivered: open or with pending records, and whose parent
    /// (if we know it) is finished, so a key's records stay in order across a shard split.
    fn readable_shards(&self) -> Vec<String> {
        self.shards
            .iter()
            .filter(|(_, s)| !s.finished())
            .filter(|(_, s)| {
                s.parent
                    .as_ref()
                    .and_then(|p| self.shards.get(p))
                    .is_none_or(ShardState::finished)
            })
            .map(|(id, _)| id.clone())
            .collect()
    }

    async fn discover_shards(&mut self) -> Result<(), PollerError> {
        let mut start: Option<String> = None;
        loop {
            let output = self
                .client
                .describe_stream()
                .stream_arn(&self.stream_arn)
                .set_exclusive_start_shard_id(start)
                .send()
                .await
                .map_err(|e| streams_error("DescribeStream", e))?;
            let Some(description) = output.stream_description else {
                return Ok(());
            };
            for shard in description.shards.unwrap_or_default() {
                if let Some(id) = shard.shard_id {
                    self.shards.entry(id).or_insert_with(|| ShardState {
                        parent: shard.parent_shard_id,
                        ..ShardState::default()
                    });
                }
            }
            start = description.last_evaluated_shard_id;
            if start.is_none() {
                return Ok(());
            }
        }
    }

    async fn read_shard(&mut self, id: &str, report: &mut PollReport) -> Result<(), PollerError> {
        let Some(shard) = self.shards.get(id) else {
            return Ok(());
        };
        if shard.closed || shard.pending() >= self.config.batch_size * self.config.lanes() as usize
        {
            return Ok(());
        }
        let iterator = match shard.iterator.clone() {
            Some(iterator) => iterator,
            None => self.shard_iterator(id, shard.last_read.clone()).await?,
        };
        let result = self
            .client
            .get_records()
            .shard_iterator(iterator)
            .limit(1000)
            .send()
            .await;
        let output = match result {
            Ok(output) => output,
            Err(SdkError::ServiceError(e)) if e.err().is_expired_iterator_exception() => {
                if let Some(shard) = self.shards.get_mut(id) {
                    shard.iterator = None;
                }
                return Ok(());
            }
            Err(e) => {
                // The iterator may be dead too (DynamoDB Local restarted, say): resume after the
                // last record read on the next poll.
                if let Some(shard) = self.shards.get_mut(id) {
                    shard.iterator = None;
                }
                return Err(streams_error("GetRecords", e));
            }
        };
        let region = self.config.region.clone();
        let arn = self.stream_arn.clone();
        let lanes = self.config.lanes();
        let Some(shard) = self.shards.get_mut(id) else {
            return Ok(());
        };
        for record in output.records.unwrap_or_default() {
            let (record, ttl) = lambda_record(record, &region, &arn);
            report.fetched += 1;
            report.ttl_removes += usize::from(ttl);
            shard.last_read = record.change.sequence_number.clone();
            let lane = shard.lanes.entry(lane_of(&record, lanes)).or_default();
            lane.pending.push_back(record);
            lane.pending_since.get_or_insert_with(Instant::now);
        }
        shard.closed = output.next_shard_iterator.is_none();
        shard.iterator = output.next_shard_iterator;
        Ok(())
    }

    async fn shard_iterator(&self, id: &str, after: Option<String>) -> Result<String, PollerError> {
        let request = self
            .client
            .get_shard_iterator()
            .stream_arn(&self.stream_arn)
            .shard_id(id);
        let request = match after {
            Some(sequence) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(sequence),
            None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
        };
        let output = request
            .send()
            .await
            .map_err(|e| streams_error("GetShardIterator", e))?;
        Ok(output.shard_iterator.unwrap_or_default())
    }

    /// Delivers every due batch of the given shards' lanes at once, each after its random delay,
    /// and again while lanes have due batches; a lane whose delivery failed waits for the next
    /// poll, as Lambda retries after a failure.
    async fn deliver_due<H, E>(
        &mut self,
        ids: &[String],
        handler: &H,
        force: bool,
        report: &mut PollReport,
    ) where
        H: AsyncFn(Event) -> Result<DynamoDbEventResponse, E>,
        E: Display,
    {
        let mut waiting: std::collections::BTreeSet<(String, u32)> = Default::default();
        loop {
            let deliveries = self.due_batches(ids, force, &waiting);
            if deliveries.is_empty() {
                return;
            }
            let max_delay = self.config.max_delivery_delay.as_millis() as u64;
            let delays: Vec<u64> = deliveries
                .iter()
                .map(|_| {
                    if max_delay == 0 {
                        0
                    } else {
                        self.rng.u64(0..=max_delay)
                    }
                })
                .collect();
            let results = futures::future::join_all(deliveries.iter().zip(delays).map(
                |(delivery, delay)| async move {
                    if delay > 0 {
                        tokio::time::sleep(Duration::from_millis(delay)).await;
                    }
                    handler(delivery.event.clone()).await
                },
            ))
            .await;
            for (delivery, result) in deliveries.into_iter().zip(results) {
                if !self.settle(&delivery, result, report) {
                    waiting.insert((delivery.shard, delivery.lane));
                }
            }
        }
    }

    /// The next batch of each lane that is due (full, older than the batching window, or all
    /// when `force`), except lanes `waiting` for the next poll.
    fn due_batches(
        &mut self,
        ids: &[String],
        force: bool,
        waiting: &std::collections::BTreeSet<(String, u32)>,
    ) -> Vec<Delivery> {
        let (batch_size, window) = (self.config.batch_size, self.config.batching_window);
        let mut deliveries = Vec::new();
        for id in ids {
            let Some(shard) = self.shards.get(id) else {
                continue;
            };
            for (&number, lane) in &shard.lanes {
                let due = lane.pending.len() >= batch_size
                    || force
                    || shard.closed
                    || lane.pending_since.is_some_and(|t| t.elapsed() >= window);
                if lane.pending.is_empty() || !due || waiting.contains(&(id.clone(), number)) {
                    continue;
                }
                let take = lane
                    .exact_takes
                    .front()
                    .copied()
                    .unwrap_or(batch_size)
                    .min(lane.pending.len());
                let mut event = Event::default();
                event.records = lane.pending.iter().take(take).cloned().collect();
                deliveries.push(Delivery {
                    shard: id.clone(),
                    lane: number,
                    take,
                    event,
                });
            }
        }
        deliveries
    }

    /// Commits what a delivery's result acknowledges and shapes the retry as Lambda would (see
    /// the module's documentation). Returns whether the lane may go on.
    fn settle<E: Display>(
        &mut self,
        delivery: &Delivery,
        result: Result<DynamoDbEventResponse, E>,
        report: &mut PollReport,
    ) -> bool {
        let (max_retries, bisect) = (self.config.max_retries, self.config.bisect_on_error);
        let (id, take) = (&delivery.shard, delivery.take);
        let Some(lane) = self
            .shards
            .get_mut(id)
            .and_then(|s| s.lanes.get_mut(&delivery.lane))
        else {
            return false;
        };
        report.batches += 1;
        report.delivered += take;
        let exact = lane.exact_takes.pop_front();
        let outcome = match result {
            Ok(response) => {
                match committed_before_first_failure(&response, lane.pending.iter().take(take)) {
                    None => Retry::Done,
                    Some(ok) => Retry::From(ok),
                }
            }
            Err(error) => {
                tracing::warn!(shard = %id, error = %error, "handler failed; the batch will be delivered again");
                Retry::FunctionError
            }
        };
        let ok = match outcome {
            Retry::Done => take,
            Retry::From(ok) => ok,
            Retry::FunctionError => 0,
        };
        lane.pending.drain(..ok);
        report.committed += ok;
        let left = take - ok;
        if left == 0 {
            lane.attempts = 0;
            lane.pending_since = (!lane.pending.is_empty()).then(Instant::now);
            return true;
        }
        report.failed_deliveries += 1;
        lane.attempts = if ok > 0 { 1 } else { lane.attempts + 1 };
        if lane.attempts > max_retries {
            tracing::error!(shard = %id, records = left, "discarding records after {max_retries} retries");
            lane.pending.drain(..left);
            report.discarded += left;
            lane.attempts = 0;
            lane.exact_takes.clear();
        } else if bisect {
            match outcome {
                Retry::FunctionError if left > 1 => {
                    lane.exact_takes.push_front(left - left / 2);
                    lane.exact_takes.push_front(left / 2);
                }
                // a single record, or "bisected at the returned sequence number": exactly the
                // remaining records again
                _ => lane.exact_takes.push_front(left),
            }
        } else if let Some(exact) = exact {
            // a batch that had to be delivered exactly (a half) stays that size
            lane.exact_takes.push_front(exact - ok);
        }
        lane.pending_since = (!lane.pending.is_empty()).then(Instant::now);
        false
    }

    /// Discards the records of every lane older than `max_record_age` (Lambda sends them to the
    /// on-failure destination instead of the function).
    fn discard_expired(&mut self, report: &mut PollReport) {
        let Some(age) = self.config.max_record_age else {
            return;
        };
        let Ok(age) = chrono::Duration::from_std(age) else {
            return;
        };
        let oldest = chrono::Utc::now() - age;
        let known = chrono::DateTime::UNIX_EPOCH;
        for lane in self.shards.values_mut().flat_map(|s| s.lanes.values_mut()) {
            let expired = lane
                .pending
                .iter()
                .map(|r| r.change.approximate_creation_date_time)
                .take_while(|&t| t > known && t < oldest)
                .count();
            if expired > 0 {
                tracing::error!(
                    records = expired,
                    "discarding records older than the maximum record age"
                );
                lane.pending.drain(..expired);
                report.discarded += expired;
                lane.exact_takes.clear();
                lane.attempts = 0;
            }
        }
    }
}

/// How a delivery ended, for the shape of its retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    Done,
    /// A partial batch response: records before this position are committed.
    From(usize),
    FunctionError,
}

/// The lane of a record: a hash of its item key (partition and sort key), so one item's records
/// keep their order while one partition key's items spread over every lane.
fn lane_of(record: &EventRecord, lanes: u32) -> u32 {
    if lanes <= 1 {
        return 0;
    }
    let key: ItemKey = serde_dynamo::from_item(record.change.keys.clone()).unwrap_or_default();
    session_shard(&format!("{}\u{0}{}", key.pk, key.sk), lanes)
}

/// The number of records committed before the first reported failure, or `None` if the whole
/// batch succeeded. An identifier that names no record of the batch fails the whole batch, as
/// on Lambda.
fn committed_before_first_failure<'a>(
    response: &DynamoDbEventResponse,
    batch: impl Iterator<Item = &'a EventRecord> + Clone,
) -> Option<usize> {
    response
        .batch_item_failures
        .iter()
        .map(|failure| {
            failure
                .item_identifier
                .as_deref()
                .and_then(|id| {
                    batch
                        .clone()
                        .position(|r| r.change.sequence_number.as_deref() == Some(id))
                })
                .unwrap_or(0)
        })
        .min()
}

/// Converts a DynamoDB Streams record into the record Lambda delivers. Returns whether it was a
/// TTL deletion, which DynamoDB Local emits with an event name the SDK does not know and no
/// `userIdentity`; AWS emits it as `REMOVE` by the DynamoDB service.
pub fn lambda_record(record: Record, region: &str, stream_arn: &str) -> (EventRecord, bool) {
    let name = record
        .event_name
        .as_ref()
        .map(|n| n.as_str().to_owned())
        .unwrap_or_default();
    let stream = record
        .dynamodb
        .unwrap_or_else(|| aws_sdk_dynamodbstreams::types::StreamRecord::builder().build());
    let item = |image: Option<std::collections::HashMap<_, _>>| {
        serde_dynamo::Item::from(image.unwrap_or_default())
    };
    let mut change = StreamRecord::default();
    change.approximate_creation_date_time = stream
        .approximate_creation_date_time
        .and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
        .unwrap_or_default();
    change.keys = item(stream.keys);
    change.new_image = item(stream.new_image);
    change.old_image = item(stream.old_image);
    change.sequence_number = stream.sequence_number;
    change.size_bytes = stream.size_bytes.unwrap_or_default();
    change.stream_view_type = Some(StreamViewType::NewAndOldImages);

    let ttl = !matches!(name.as_str(), "INSERT" | "MODIFY" | "REMOVE")
        && record.user_identity.is_none()
        && change.new_image.is_empty()
        && !change.old_image.is_empty();
    let mut out = EventRecord::default();
    out.aws_region = record
        .aws_region
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| region.to_owned());
    out.change = change;
    out.event_id = record.event_id.unwrap_or_default();
    out.event_name = if ttl { "REMOVE".to_owned() } else { name };
    out.event_source = Some("aws:dynamodb".to_owned());
    out.event_version = Some(record.event_version.unwrap_or_else(|| "1.1".to_owned()));
    out.event_source_arn = Some(stream_arn.to_owned());
    out.user_identity = if ttl {
        Some(service_identity())
    } else {
        record.user_identity.map(|identity| {
            let mut user = UserIdentity::default();
            user.type_ = identity.r#type.unwrap_or_default();
            user.principal_id = identity.principal_id.unwrap_or_default();
            user
        })
    };
    (out, ttl)
}

/// The `userIdentity` AWS puts on TTL deletions.
pub fn service_identity() -> UserIdentity {
    let mut user = UserIdentity::default();
    user.type_ = "Service".to_owned();
    user.principal_id = "dynamodb.amazonaws.com".to_owned();
    user
}

fn streams_error<E, R>(operation: &'static str, source: SdkError<E, R>) -> PollerError
where
    aws_sdk_dynamodbstreams::Error: From<SdkError<E, R>>,
{
    PollerError::Streams {
        operation,
        source: Box::new(source.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::dynamodb::EventRecord;
    use aws_lambda_events::event::streams::DynamoDbBatchItemFailure;
    use aws_sdk_dynamodbstreams::types::{
        AttributeValue, OperationType, StreamRecord as SdkRecord,
    };

    fn records(seqs: &[&str]) -> Vec<EventRecord> {
        seqs.iter()
            .map(|s| {
                let mut r = EventRecord::default();
                r.change.sequence_number = Some((*s).to_owned());
                r
            })
            .collect()
    }

    fn response(ids: &[Option<&str>]) -> DynamoDbEventResponse {
        let mut response = DynamoDbEventResponse::default();
        for id in ids {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = id.map(str::to_owned);
            response.batch_item_failures.push(failure);
        }
        response
    }

    /// A poller with one shard and one lane holding records with sequence numbers 1..=n, and no
    /// stream behind it (settling never calls the stream).
    fn poller_with(n: usize, bisect: bool) -> StreamPoller {
        let config = aws_sdk_dynamodbstreams::Config::builder()
            .behavior_version(aws_sdk_dynamodbstreams::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodbstreams::config::Region::new("local"))
            .build();
        let mut poller = StreamPoller::new(
            Client::from_conf(config),
            "arn:stream",
            PollerConfig {
                batch_size: 8,
                max_retries: 3,
                bisect_on_error: bisect,
                ..PollerConfig::default()
            },
        );
        let seqs: Vec<String> = (1..=n).map(|i| format!("{i:03}")).collect();
        let refs: Vec<&str> = seqs.iter().map(String::as_str).collect();
        let mut lane = Lane::default();
        lane.pending.extend(records(&refs));
        let mut shard = ShardState::default();
        shard.lanes.insert(0, lane);
        poller.shards.insert("shard".into(), shard);
        poller
    }

    /// What the lane would deliver next (first and last sequence numbers), as `due_batches` cuts
    /// it.
    fn next_delivery(poller: &mut StreamPoller) -> Option<Delivery> {
        poller
            .due_batches(&["shard".to_owned()], true, &Default::default())
            .pop()
    }

    fn span(delivery: &Delivery) -> (String, String) {
        let seq = |r: Option<&EventRecord>| {
            r.and_then(|r| r.change.sequence_number.clone())
                .unwrap_or_default()
        };
        (
            seq(delivery.event.records.first()),
            seq(delivery.event.records.last()),
        )
    }

    fn settle(
        poller: &mut StreamPoller,
        delivery: &Delivery,
        result: Result<DynamoDbEventResponse, String>,
    ) -> PollReport {
        let mut report = PollReport::default();
        poller.settle(delivery, result, &mut report);
        report
    }

    /// A partial batch response: the records before the reported one are committed, and the
    /// retry is cut afresh from it, so it holds records the failed batch did not.
    #[test]
    fn after_a_partial_response_lambda_retries_from_the_checkpoint_with_a_fresh_batch() {
        let mut poller = poller_with(12, false);
        let first = next_delivery(&mut poller).expect("a batch");
        assert_eq!(span(&first), ("001".into(), "008".into()));
        let report = settle(
            &mut poller,
            &first,
            Ok(response(&[Some("006"), Some("004")])),
        );
        assert_eq!((report.committed, report.failed_deliveries), (3, 1));
        let retry = next_delivery(&mut poller).expect("a retry");
        assert_eq!(span(&retry), ("004".into(), "011".into()));
    }

    /// A function error without bisecting: the batch again from its first record (cut afresh).
    #[test]
    fn after_a_function_error_lambda_retries_the_batch_from_its_first_record() {
        let mut poller = poller_with(12, false);
        let first = next_delivery(&mut poller).expect("a batch");
        let report = settle(&mut poller, &first, Err("died".into()));
        assert_eq!((report.committed, report.failed_deliveries), (0, 1));
        let retry = next_delivery(&mut poller).expect("a retry");
        assert_eq!(span(&retry), ("001".into(), "008".into()));
    }

    /// With `BisectBatchOnFunctionError`: a failed batch of 8 comes back as 4 + 4, a failed half
    /// as 2 + 2; a partial response bisects at the reported record and retries exactly the rest.
    #[test]
    fn with_bisect_a_failed_batch_comes_back_in_halves() {
        let mut poller = poller_with(12, true);
        let first = next_delivery(&mut poller).expect("a batch");
        settle(&mut poller, &first, Err("died".into()));
        let half = next_delivery(&mut poller).expect("first half");
        assert_eq!(span(&half), ("001".into(), "004".into()));
        settle(&mut poller, &half, Err("died again".into()));
        let quarter = next_delivery(&mut poller).expect("a quarter");
        assert_eq!(span(&quarter), ("001".into(), "002".into()));
        assert!(settle(&mut poller, &quarter, Ok(response(&[]))).committed == 2);
        let quarter = next_delivery(&mut poller).expect("the next quarter");
        assert_eq!(span(&quarter), ("003".into(), "004".into()));
        settle(&mut poller, &quarter, Ok(response(&[])));
        let half = next_delivery(&mut poller).expect("second half");
        assert_eq!(span(&half), ("005".into(), "008".into()));
        // both on: bisected at the returned record, only the remaining records again
        settle(&mut poller, &half, Ok(response(&[Some("007")])));
        let rest = next_delivery(&mut poller).expect("the rest");
        assert_eq!(span(&rest), ("007".into(), "008".into()));
        settle(&mut poller, &rest, Ok(response(&[])));
        let fresh = next_delivery(&mut poller).expect("a fresh batch");
        assert_eq!(span(&fresh), ("009".into(), "012".into()));
    }

    /// `MaximumRetryAttempts` 3: the fourth failure discards the batch's records.
    #[test]
    fn a_batch_failing_past_its_retry_attempts_is_discarded() {
        let mut poller = poller_with(10, false);
        for attempt in 0..4 {
            let batch = next_delivery(&mut poller).expect("a batch");
            assert_eq!(span(&batch).0, "001", "attempt {attempt}");
            let report = settle(&mut poller, &batch, Err("died".into()));
            assert_eq!(report.discarded, if attempt == 3 { 8 } else { 0 });
        }
        let next = next_delivery(&mut poller).expect("the rest");
        assert_eq!(span(&next), ("009".into(), "010".into()));
    }

    #[test]
    fn the_default_mapping_is_the_deployed_one() {
        let config = PollerConfig::default();
        assert_eq!(config.max_retries, 5);
        assert_eq!(config.max_record_age, Some(Duration::from_secs(80)));
        assert_eq!(config.batch_size, 100);
        assert!(!config.bisect_on_error);
    }

    #[test]
    fn a_partial_failure_commits_the_records_before_the_earliest_reported_one() {
        let batch = records(&["10", "11", "12", "13"]);
        // (reported identifiers, records committed; None = all)
        let cases: Vec<(Vec<Option<&str>>, Option<usize>)> = vec![
            (vec![], None),
            (vec![Some("12")], Some(2)),
            (vec![Some("13"), Some("11")], Some(1)),
            (vec![Some("10")], Some(0)),
            (vec![Some("99")], Some(0)),
            (vec![None], Some(0)),
        ];
        for (ids, committed) in cases {
            assert_eq!(
                committed_before_first_failure(&response(&ids), batch.iter()),
                committed,
                "{ids:?}"
            );
        }
    }

    #[test]
    fn dynamodb_local_ttl_deletions_become_service_removes() {
        let image =
            std::collections::HashMap::from([("PK".to_owned(), AttributeValue::S("st#1".into()))]);
        let stream = SdkRecord::builder()
            .set_keys(Some(image.clone()))
            .set_old_image(Some(image.clone()))
            .sequence_number("000000000000000000042")
            .build();
        let ttl = Record::builder()
            .event_name(OperationType::from("UNKNOWN_TO_SDK_VERSION"))
            .dynamodb(stream.clone())
            .build();
        let (record, was_ttl) = lambda_record(ttl, "local", "arn:stream");
        assert!(was_ttl);
        assert_eq!(record.event_name, "REMOVE");
        assert_eq!(record.user_identity, Some(service_identity()));
        assert_eq!(
            record.change.sequence_number.as_deref(),
            Some("000000000000000000042")
        );
        assert!(record.change.new_image.is_empty() && !record.change.old_image.is_empty());

        let delete = Record::builder()
            .event_name(OperationType::Remove)
            .dynamodb(stream)
            .build();
        let (record, was_ttl) = lambda_record(delete, "local", "arn:stream");
        assert!(!was_ttl);
        assert_eq!(record.event_name, "REMOVE");
        assert_eq!(
            record.user_identity, None,
            "a user's delete has no service identity"
        );
    }
}
