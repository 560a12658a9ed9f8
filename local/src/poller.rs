//! A DynamoDB Streams poller with Lambda's event source mapping semantics, for DynamoDB Local
//! (which has no Lambda triggers).
//!
//! It reads every shard of a stream (parents before their children, following new shards),
//! turns each record into the `aws_lambda_events` shape Lambda delivers, and hands it to the
//! lane [`crate::trigger::stream`] assigns; those lanes decide, as Lambda's mapping does, which
//! batches go to the handler and how a failure is retried (the deployed mapping by default).
//!
//! DynamoDB Local has one shard and Lambda's poller, here, one lane; AWS is harsher. With
//! `virtual_shards` K and `parallelization_factor` PF, each shard's records are spread over
//! K × PF lanes by a hash of their item key (partition key and sort key): the records of one
//! partition key land on different lanes, as after DynamoDB splits a hot item collection over
//! sibling shards, while each item's records stay in order in one lane, which is all Lambda
//! promises. Every lane's batch is delivered at once, each after a random delay up to
//! `max_delivery_delay`, so lanes finish in any order.

use crate::lambda_events::{StreamChange, service_identity, stream_record};
use crate::trigger::stream::{Lane, LaneOutcome, StreamMapping, lane_of};
use aws_lambda_events::event::dynamodb::{Event, EventRecord, UserIdentity};
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use aws_sdk_dynamodbstreams::Client;
use aws_sdk_dynamodbstreams::error::SdkError;
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use std::collections::BTreeMap;
use std::fmt::Display;
use std::time::Duration;

/// The poller: the event source mapping it imitates, and how it reads and delivers.
#[derive(Debug, Clone)]
pub struct PollerConfig {
    /// Batch size, batching window, retry attempts, record age, bisecting.
    pub mapping: StreamMapping,
    /// Pause between polls of an idle stream in [`StreamPoller::run`] (Lambda polls each shard
    /// about four times a second).
    pub poll_interval: Duration,
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
    /// The aggregate mapping as CDK and Terraform deploy it ([`StreamMapping::deployed`]), read
    /// from one shard in one lane.
    fn default() -> Self {
        Self {
            mapping: StreamMapping::deployed(),
            poll_interval: Duration::from_millis(250),
            region: "local".to_owned(),
            virtual_shards: 1,
            parallelization_factor: 1,
            max_delivery_delay: Duration::ZERO,
            seed: 0x5eed,
        }
    }
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

impl ShardState {
    fn pending(&self) -> usize {
        self.lanes.values().map(Lane::len).sum()
    }

    fn finished(&self) -> bool {
        self.closed && self.pending() == 0
    }
}

/// A batch on its way to the handler: its shard, lane and size.
struct Delivery {
    shard: String,
    lane: u32,
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
            let batch_size = self.config.mapping.batch_size;
            for lane in self
                .shards
                .get_mut(&id)
                .into_iter()
                .flat_map(|s| s.lanes.values_mut())
            {
                for records in lane.take_all(batch_size) {
                    let mut event = Event::default();
                    event.records = records;
                    batches.push(event);
                }
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
        if shard.closed
            || shard.pending() >= self.config.mapping.batch_size * self.config.lanes() as usize
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
        let now_ms = now_ms();
        let Some(shard) = self.shards.get_mut(id) else {
            return Ok(());
        };
        for record in output.records.unwrap_or_default() {
            let (record, ttl) = lambda_record(record, &region, &arn);
            report.fetched += 1;
            report.ttl_removes += usize::from(ttl);
            shard.last_read = record.change.sequence_number.clone();
            let lane = shard.lanes.entry(lane_of(&record, lanes)).or_default();
            lane.push(record, now_ms);
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
                let lane = (delivery.shard.clone(), delivery.lane);
                if !self.settle(delivery, result, report) {
                    waiting.insert(lane);
                }
            }
        }
    }

    /// The next batch of each lane that is due (full, older than the batching window, or all
    /// when `force` or the shard is closed), except lanes `waiting` for the next poll.
    fn due_batches(
        &mut self,
        ids: &[String],
        force: bool,
        waiting: &std::collections::BTreeSet<(String, u32)>,
    ) -> Vec<Delivery> {
        let (mapping, now_ms) = (&self.config.mapping, now_ms());
        let mut deliveries = Vec::new();
        for id in ids {
            let Some(shard) = self.shards.get_mut(id) else {
                continue;
            };
            let force = force || shard.closed;
            for (&number, lane) in &mut shard.lanes {
                if waiting.contains(&(id.clone(), number)) {
                    continue;
                }
                if let Some(records) = lane.next_batch(mapping, now_ms, force) {
                    let mut event = Event::default();
                    event.records = records;
                    deliveries.push(Delivery {
                        shard: id.clone(),
                        lane: number,
                        event,
                    });
                }
            }
        }
        deliveries
    }

    /// Settles a delivery's result in its lane (which shapes the retry as Lambda would).
    /// Returns whether the lane may go on.
    fn settle<E: Display>(
        &mut self,
        delivery: Delivery,
        result: Result<DynamoDbEventResponse, E>,
        report: &mut PollReport,
    ) -> bool {
        let Some(lane) = self
            .shards
            .get_mut(&delivery.shard)
            .and_then(|s| s.lanes.get_mut(&delivery.lane))
        else {
            return false;
        };
        let outcome = match &result {
            Ok(response) => LaneOutcome::Response(response),
            Err(error) => {
                tracing::warn!(shard = %delivery.shard, error = %error, "handler failed; the batch will be delivered again");
                LaneOutcome::FunctionError
            }
        };
        let settled = lane.settle(
            &self.config.mapping,
            delivery.event.records,
            outcome,
            now_ms(),
        );
        report.batches += 1;
        report.delivered += settled.delivered;
        report.committed += settled.committed;
        report.discarded += settled.discarded;
        if settled.discarded > 0 {
            tracing::error!(shard = %delivery.shard, records = settled.discarded, "discarding records after the retry attempts");
        }
        if settled.failed() {
            report.failed_deliveries += 1;
        }
        !settled.failed()
    }

    /// Discards the records of every lane older than the maximum record age (Lambda sends them
    /// to the on-failure destination instead of the function).
    fn discard_expired(&mut self, report: &mut PollReport) {
        let (mapping, now_ms) = (&self.config.mapping, now_ms());
        for lane in self.shards.values_mut().flat_map(|s| s.lanes.values_mut()) {
            let expired = lane.discard_expired(mapping, now_ms);
            if expired > 0 {
                tracing::error!(
                    records = expired,
                    "discarding records older than the maximum record age"
                );
                report.discarded += expired;
            }
        }
    }
}

/// The time the lanes run on: the wall clock, as records' `ApproximateCreationDateTime` is.
fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
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
    let (old_image, new_image) = (item(stream.old_image), item(stream.new_image));
    let ttl = !matches!(name.as_str(), "INSERT" | "MODIFY" | "REMOVE")
        && record.user_identity.is_none()
        && new_image.is_empty()
        && !old_image.is_empty();
    let change = StreamChange {
        event_id: record.event_id.unwrap_or_default(),
        event_name: if ttl { "REMOVE".to_owned() } else { name },
        keys: item(stream.keys),
        old_image,
        new_image,
        sequence_number: stream.sequence_number.unwrap_or_default(),
        created_ms: stream.approximate_creation_date_time.map_or(0, |t| {
            t.secs() * 1000 + i64::from(t.subsec_nanos() / 1_000_000)
        }),
        size_bytes: stream.size_bytes.unwrap_or_default(),
        user_identity: if ttl {
            Some(service_identity())
        } else {
            record.user_identity.map(|identity| {
                let mut user = UserIdentity::default();
                user.type_ = identity.r#type.unwrap_or_default();
                user.principal_id = identity.principal_id.unwrap_or_default();
                user
            })
        },
    };
    let region = record
        .aws_region
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| region.to_owned());
    (stream_record(change, &region, stream_arn), ttl)
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
    use aws_sdk_dynamodbstreams::types::{
        AttributeValue, OperationType, StreamRecord as SdkRecord,
    };

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
