//! The DynamoDB stream trigger's lanes: each lane holds the records of the items hashed to it,
//! in order, and hands them to the function one batch at a time, as Lambda's event source
//! mapping does. What happens after a failure is what AWS's pages say
//! (<https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-batchfailurereporting.html>,
//! <https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html>), no kinder:
//!
//! - a partial batch response: "Lambda uses the record with the lowest sequence number as the
//!   checkpoint. Lambda then retries all records starting from that checkpoint": the records
//!   before it are committed and the next batch is cut afresh from the checkpoint, so it may
//!   hold more records than the failed one (those that arrived meanwhile); an identifier that
//!   names no record of the batch fails the whole batch;
//! - a function error: without `BisectBatchOnFunctionError`, the batch is retried from its
//!   first record (cut afresh, likewise); with it, "the batch is bisected regardless of your
//!   ReportBatchItemFailures setting": the first half, then the second, each bisected again if
//!   it fails;
//! - with both on, a partial response "bisects the batch at the returned sequence number and
//!   Lambda retries only the remaining records": exactly those, not a fresh cut;
//! - after `MaximumRetryAttempts` failed deliveries of a batch (counted afresh once a delivery
//!   made progress), or once a record is older than `MaximumRecordAgeInSeconds` by its
//!   `ApproximateCreationDateTime`, the records are discarded (sent to the on-failure
//!   destination instead of the function);
//! - one batch per lane at a time: a lane waits for its batch's outcome before the next.
//!
//! Lanes are what Lambda keeps order in: one shard's records spread over `ParallelizationFactor`
//! lanes by item ([`lane_of`]), so order holds per item only.

use aws_lambda_events::event::dynamodb::EventRecord;
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use livecount_core::ids::session_shard;
use livecount_core::model::ItemKey;
use std::collections::VecDeque;

/// The settings of a stream event source mapping that shape deliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamMapping {
    /// Most records per invocation (`BatchSize`; 1-10,000).
    pub batch_size: usize,
    /// How long a lane gathers records before invoking with a short batch
    /// (`MaximumBatchingWindowInSeconds`, in ms).
    pub batching_window_ms: i64,
    /// Failed deliveries of one batch before its records are discarded
    /// (`MaximumRetryAttempts`).
    pub max_retries: u32,
    /// Records older than this are discarded instead of delivered
    /// (`MaximumRecordAgeInSeconds`, in ms; `None`: -1, never).
    pub max_record_age_ms: Option<i64>,
    /// `BisectBatchOnFunctionError`.
    pub bisect_on_error: bool,
}

impl StreamMapping {
    /// The aggregate mapping as CDK and Terraform deploy it (`infra/contract.json`): batch size,
    /// batching window, retry attempts, record age, no bisecting.
    pub fn deployed() -> Self {
        use super::{deployed_ms, deployed_setting as deployed};
        Self {
            batch_size: deployed("aggregate_batch_size").map_or(100, |v| v as usize),
            batching_window_ms: deployed_ms("aggregate_max_batching_window_seconds").unwrap_or(0),
            max_retries: deployed("aggregate_retry_attempts").map_or(5, |v| v as u32),
            max_record_age_ms: deployed_ms("aggregate_max_record_age_seconds"),
            bisect_on_error: false,
        }
    }
}

/// How an invocation ended, as the mapping sees it.
#[derive(Debug, Clone, Copy)]
pub enum LaneOutcome<'a> {
    /// The function returned this response (an empty one: the whole batch succeeded).
    Response(&'a DynamoDbEventResponse),
    /// The function failed: an error, a timeout, an out-of-memory.
    FunctionError,
}

/// What settling one delivery did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LaneSettled {
    /// Records in the delivery.
    pub delivered: usize,
    /// Records committed: the lane will not deliver them again.
    pub committed: usize,
    /// Records left for a retry.
    pub retried: usize,
    /// Records discarded after the retry attempts.
    pub discarded: usize,
}

impl LaneSettled {
    /// Whether the delivery failed in whole or in part.
    pub fn failed(&self) -> bool {
        self.committed < self.delivered
    }
}

#[derive(Debug, Clone)]
struct Pending {
    record: EventRecord,
    /// When the trigger could first deliver it (read from the shard, or its retry due).
    visible_ms: i64,
}

/// One lane: the records of the items hashed to it, in order.
#[derive(Debug, Default, Clone)]
pub struct Lane {
    /// Records not yet delivered or left for a retry, oldest first.
    pending: VecDeque<Pending>,
    /// Records of the batch out for delivery, which come before `pending`.
    out: Option<usize>,
    /// Failed deliveries of the batch at the lane's head.
    attempts: u32,
    /// The sizes of the next batches to deliver exactly (the halves of a bisected batch, or the
    /// records a partial response left when bisecting): empty means cut afresh.
    exact_takes: VecDeque<usize>,
}

impl Lane {
    /// Appends a record read from the shard, deliverable from `visible_ms`.
    pub fn push(&mut self, record: EventRecord, visible_ms: i64) {
        self.pending.push_back(Pending { record, visible_ms });
    }

    /// Records not yet committed (a batch out for delivery included).
    pub fn len(&self) -> usize {
        self.pending.len() + self.out.unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a batch is out for delivery.
    pub fn busy(&self) -> bool {
        self.out.is_some()
    }

    /// The lane's next batch if one is due at `now_ms`: no batch out, and a full batch of
    /// visible records, or the oldest waited the batching window, or `force`. The batch is the
    /// lane's again at [`Lane::settle`], which must follow.
    pub fn next_batch(
        &mut self,
        mapping: &StreamMapping,
        now_ms: i64,
        force: bool,
    ) -> Option<Vec<EventRecord>> {
        if self.out.is_some() {
            return None;
        }
        let first = self.pending.front()?;
        let waited = now_ms - first.visible_ms >= mapping.batching_window_ms;
        let visible = if force {
            self.pending.len()
        } else if first.visible_ms > now_ms || (self.pending.len() < mapping.batch_size && !waited)
        {
            return None;
        } else {
            self.pending
                .iter()
                .take(mapping.batch_size)
                .take_while(|p| p.visible_ms <= now_ms)
                .count()
        };
        if visible < mapping.batch_size && !waited && !force {
            return None;
        }
        let take = self
            .exact_takes
            .front()
            .copied()
            .unwrap_or(mapping.batch_size)
            .min(visible);
        self.out = Some(take);
        Some(self.pending.drain(..take).map(|p| p.record).collect())
    }

    /// Takes back the batch out with its outcome: commits what the outcome acknowledges and
    /// shapes the retry (see the module's documentation). Records left for a retry are
    /// deliverable again from `retry_at_ms`.
    pub fn settle(
        &mut self,
        mapping: &StreamMapping,
        batch: Vec<EventRecord>,
        outcome: LaneOutcome<'_>,
        retry_at_ms: i64,
    ) -> LaneSettled {
        self.out = None;
        let take = batch.len();
        let exact = self.exact_takes.pop_front();
        let ok = match outcome {
            LaneOutcome::Response(response) => {
                committed_before_first_failure(response, batch.iter()).unwrap_or(take)
            }
            LaneOutcome::FunctionError => 0,
        };
        let mut settled = LaneSettled {
            delivered: take,
            committed: ok,
            ..LaneSettled::default()
        };
        let left = take - ok;
        if left == 0 {
            self.attempts = 0;
            return settled;
        }
        self.attempts = if ok > 0 { 1 } else { self.attempts + 1 };
        if self.attempts > mapping.max_retries {
            settled.discarded = left;
            self.attempts = 0;
            self.exact_takes.clear();
            return settled;
        }
        settled.retried = left;
        if mapping.bisect_on_error {
            match outcome {
                LaneOutcome::FunctionError if left > 1 => {
                    self.exact_takes.push_front(left - left / 2);
                    self.exact_takes.push_front(left / 2);
                }
                // a single record, or "bisected at the returned sequence number": exactly the
                // remaining records again
                _ => self.exact_takes.push_front(left),
            }
        } else if let Some(exact) = exact {
            // a batch that had to be delivered exactly (a half) stays that size
            self.exact_takes.push_front(exact - ok);
        }
        for record in batch.into_iter().skip(ok).rev() {
            self.pending.push_front(Pending {
                record,
                visible_ms: retry_at_ms,
            });
        }
        settled
    }

    /// Discards the records at the lane's head older than the maximum record age at `now_ms`
    /// (not while a batch is out); returns how many. Records without a creation time are kept.
    pub fn discard_expired(&mut self, mapping: &StreamMapping, now_ms: i64) -> usize {
        let Some(age) = mapping.max_record_age_ms else {
            return 0;
        };
        if self.out.is_some() {
            return 0;
        }
        let expired = self
            .pending
            .iter()
            .map(|p| {
                p.record
                    .change
                    .approximate_creation_date_time
                    .timestamp_millis()
            })
            .take_while(|&t| t > 0 && t < now_ms - age)
            .count();
        if expired > 0 {
            self.pending.drain(..expired);
            self.exact_takes.clear();
            self.attempts = 0;
        }
        expired
    }

    /// Hands over every pending record as batches of at most `batch_size`, forgetting them
    /// (for tests that deliver batches themselves).
    pub fn take_all(&mut self, batch_size: usize) -> Vec<Vec<EventRecord>> {
        let mut batches = Vec::new();
        while !self.pending.is_empty() {
            let take = self.pending.len().min(batch_size.max(1));
            batches.push(self.pending.drain(..take).map(|p| p.record).collect());
        }
        self.exact_takes.clear();
        self.attempts = 0;
        batches
    }
}

/// The lane of a record among `lanes`: a hash of its item key (partition and sort key), so one
/// item's records keep their order while one partition key's items spread over every lane.
pub fn lane_of(record: &EventRecord, lanes: u32) -> u32 {
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

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::streams::DynamoDbBatchItemFailure;

    fn record(seq: &str) -> EventRecord {
        crate::lambda_events::stream_record(
            crate::lambda_events::StreamChange {
                sequence_number: seq.to_owned(),
                ..Default::default()
            },
            crate::lambda_events::REGION,
            crate::lambda_events::SESSIONS_STREAM_ARN,
        )
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

    fn mapping(bisect: bool) -> StreamMapping {
        StreamMapping {
            batch_size: 8,
            batching_window_ms: 0,
            max_retries: 3,
            max_record_age_ms: None,
            bisect_on_error: bisect,
        }
    }

    /// A lane holding records with sequence numbers 001..=n, visible at 0.
    fn lane_with(n: usize) -> Lane {
        let mut lane = Lane::default();
        for i in 1..=n {
            lane.push(record(&format!("{i:03}")), 0);
        }
        lane
    }

    /// The first and last sequence numbers of a batch.
    fn span(batch: &[EventRecord]) -> (String, String) {
        let seq = |r: Option<&EventRecord>| {
            r.and_then(|r| r.change.sequence_number.clone())
                .unwrap_or_default()
        };
        (seq(batch.first()), seq(batch.last()))
    }

    /// The lane's next batch at time 0, taken out.
    fn next(lane: &mut Lane, mapping: &StreamMapping) -> Vec<EventRecord> {
        lane.next_batch(mapping, 0, false).expect("a batch")
    }

    fn span_of(a: &str, b: &str) -> (String, String) {
        (a.to_owned(), b.to_owned())
    }

    /// A partial batch response: the records before the reported one are committed, and the
    /// retry is cut afresh from it, so it holds records the failed batch did not.
    #[test]
    fn after_a_partial_response_lambda_retries_from_the_checkpoint_with_a_fresh_batch() {
        let (m, mut lane) = (mapping(false), lane_with(12));
        let batch = next(&mut lane, &m);
        assert_eq!(span(&batch), span_of("001", "008"));
        let failures = response(&[Some("006"), Some("004")]);
        let settled = lane.settle(&m, batch, LaneOutcome::Response(&failures), 0);
        assert_eq!((settled.committed, settled.retried), (3, 5));
        assert_eq!(span(&next(&mut lane, &m)), span_of("004", "011"));
    }

    /// A function error without bisecting: the batch again from its first record (cut afresh).
    #[test]
    fn after_a_function_error_lambda_retries_the_batch_from_its_first_record() {
        let (m, mut lane) = (mapping(false), lane_with(12));
        let batch = next(&mut lane, &m);
        let settled = lane.settle(&m, batch, LaneOutcome::FunctionError, 0);
        assert_eq!((settled.committed, settled.retried), (0, 8));
        assert_eq!(span(&next(&mut lane, &m)), span_of("001", "008"));
    }

    /// With `BisectBatchOnFunctionError`: a failed batch of 8 comes back as 4 + 4, a failed half
    /// as 2 + 2; a partial response bisects at the reported record and retries exactly the rest.
    #[test]
    fn with_bisect_a_failed_batch_comes_back_in_halves() {
        let (m, mut lane) = (mapping(true), lane_with(12));
        let ok = response(&[]);
        let deliver = |lane: &mut Lane, outcome: LaneOutcome<'_>| {
            let batch = next(lane, &m);
            let delivered = span(&batch);
            let settled = lane.settle(&m, batch, outcome, 0);
            (delivered, settled.committed)
        };
        let died = LaneOutcome::FunctionError;
        assert_eq!(deliver(&mut lane, died), (span_of("001", "008"), 0));
        assert_eq!(
            deliver(&mut lane, died),
            (span_of("001", "004"), 0),
            "first half"
        );
        let quarter = deliver(&mut lane, LaneOutcome::Response(&ok));
        assert_eq!(quarter, (span_of("001", "002"), 2), "a quarter");
        let quarter = deliver(&mut lane, LaneOutcome::Response(&ok));
        assert_eq!(quarter, (span_of("003", "004"), 2), "the next quarter");
        // both on: bisected at the returned record, only the remaining records again
        let at_007 = response(&[Some("007")]);
        let half = deliver(&mut lane, LaneOutcome::Response(&at_007));
        assert_eq!(half, (span_of("005", "008"), 2), "second half");
        let rest = deliver(&mut lane, LaneOutcome::Response(&ok));
        assert_eq!(rest, (span_of("007", "008"), 2), "the rest");
        let fresh = deliver(&mut lane, LaneOutcome::Response(&ok));
        assert_eq!(fresh, (span_of("009", "012"), 4), "a fresh batch");
    }

    /// `MaximumRetryAttempts` 3: the fourth failure discards the batch's records.
    #[test]
    fn a_batch_failing_past_its_retry_attempts_is_discarded() {
        let (m, mut lane) = (mapping(false), lane_with(10));
        for attempt in 0..4 {
            let batch = next(&mut lane, &m);
            assert_eq!(span(&batch).0, "001", "attempt {attempt}");
            let settled = lane.settle(&m, batch, LaneOutcome::FunctionError, 0);
            assert_eq!(settled.discarded, if attempt == 3 { 8 } else { 0 });
        }
        assert_eq!(span(&next(&mut lane, &m)), span_of("009", "010"));
    }

    /// One batch out per lane; a retry waits until the time it is given.
    #[test]
    fn a_lane_delivers_one_batch_at_a_time_and_a_retry_waits_its_time() {
        let (m, mut lane) = (mapping(false), lane_with(12));
        let batch = next(&mut lane, &m);
        assert!(lane.next_batch(&m, 0, false).is_none(), "a batch is out");
        assert_eq!(lane.len(), 12);
        lane.settle(&m, batch, LaneOutcome::FunctionError, 500);
        assert!(lane.next_batch(&m, 499, false).is_none());
        let retry = lane.next_batch(&m, 500, false).expect("the retry");
        assert_eq!(span(&retry), span_of("001", "008"));
    }

    /// A short batch waits for the batching window; a full one goes at once.
    #[test]
    fn a_short_batch_waits_for_the_batching_window() {
        let m = StreamMapping {
            batching_window_ms: 1000,
            ..mapping(false)
        };
        let mut short = lane_with(3);
        assert!(short.next_batch(&m, 999, false).is_none());
        assert_eq!(short.next_batch(&m, 1000, false).map(|b| b.len()), Some(3));
        let mut full = lane_with(9);
        assert_eq!(full.next_batch(&m, 0, false).map(|b| b.len()), Some(8));
    }

    /// `MaximumRecordAgeInSeconds`: records older than the age at the lane's head are dropped.
    #[test]
    fn records_older_than_the_maximum_age_are_discarded() {
        let m = StreamMapping {
            max_record_age_ms: Some(80_000),
            ..mapping(false)
        };
        let mut lane = Lane::default();
        for (seq, created_ms) in [("001", 1_000), ("002", 2_000), ("003", 90_000)] {
            let mut r = record(seq);
            r.change.approximate_creation_date_time =
                chrono::DateTime::from_timestamp_millis(created_ms).expect("a time");
            lane.push(r, created_ms);
        }
        assert_eq!(lane.discard_expired(&m, 81_500), 1);
        let rest = lane.next_batch(&m, 90_000, false).expect("a batch");
        assert_eq!(span(&rest), span_of("002", "003"));
    }

    #[test]
    fn the_deployed_mapping_is_the_contracts() {
        let m = StreamMapping::deployed();
        assert_eq!(m.max_retries, 5);
        assert_eq!(m.max_record_age_ms, Some(80_000));
        assert_eq!(m.batch_size, 100);
        assert_eq!(m.batching_window_ms, 1000);
        assert!(!m.bisect_on_error);
    }

    #[test]
    fn a_partial_failure_commits_the_records_before_the_earliest_reported_one() {
        let batch: Vec<EventRecord> = ["10", "11", "12", "13"].map(record).to_vec();
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
}
