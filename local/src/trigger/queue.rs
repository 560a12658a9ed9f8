//! An SQS queue under its Lambda trigger, as the pages say it behaves
//! (<https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html>: "if Lambda
//! encounters an error at any point while processing a batch, all messages in that batch return
//! to the queue. After the visibility timeout, the messages become visible to Lambda again";
//! <https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-parameters.html>):
//!
//! - `SendMessage` stamps `SentTimestamp`; message attributes travel with the message;
//! - the trigger invokes with up to `BatchSize` visible messages, once it has a full batch or
//!   its oldest visible message has waited `MaximumBatchingWindowInSeconds`;
//! - each receive adds one to the message's `ApproximateReceiveCount` and hides it for the
//!   visibility timeout; a message the function acknowledges is deleted; with
//!   `ReportBatchItemFailures`, the messages a response names (all of them after a function
//!   error) stay and become visible again when the visibility timeout ends;
//! - a failed message received `maxReceiveCount` times moves to the dead-letter queue
//!   (the redrive policy);
//! - an operator's redrive moves dead letters back as new messages: a new id and a new
//!   `SentTimestamp`, body and message attributes kept.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsMessage};
use std::collections::{BTreeMap, BinaryHeap, HashSet, VecDeque};

/// The settings of an SQS queue and its event source mapping that shape deliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMapping {
    /// Most messages per invocation (`BatchSize`).
    pub batch_size: usize,
    /// How long to gather a batch before invoking with fewer messages
    /// (`MaximumBatchingWindowInSeconds`, in ms).
    pub batching_window_ms: i64,
    /// How long a received message stays invisible (the queue's visibility timeout, in ms).
    pub visibility_timeout_ms: i64,
    /// Receives of a failed message before it moves to the dead-letter queue (the redrive
    /// policy's `maxReceiveCount`).
    pub max_receive_count: u32,
}

impl QueueMapping {
    /// The ingest queue and mapping as CDK and Terraform deploy them (`infra/contract.json`).
    pub fn deployed() -> Self {
        use super::{deployed_ms, deployed_setting as deployed};
        Self {
            batch_size: deployed("ingest_batch_size").map_or(100, |v| v as usize),
            batching_window_ms: deployed_ms("ingest_max_batching_window_seconds").unwrap_or(0),
            visibility_timeout_ms: deployed_ms("queue_visibility_timeout_seconds")
                .unwrap_or(61_000),
            max_receive_count: deployed("max_receive_count").map_or(3, |v| v as u32),
        }
    }
}

/// A message in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    pub id: String,
    pub body: String,
    /// Message attributes (string and number ones).
    pub attributes: BTreeMap<String, String>,
    /// `SentTimestamp` (epoch ms).
    pub sent_ms: i64,
    /// `ApproximateReceiveCount`.
    pub receives: u32,
    /// When it is visible (epoch ms).
    visible_ms: i64,
}

impl QueuedMessage {
    /// The message as Lambda's SQS event source delivers it.
    pub fn to_sqs(&self) -> SqsMessage {
        crate::lambda_events::sqs_message(
            &self.id,
            &self.body,
            self.sent_ms,
            self.receives,
            &self.attributes,
        )
    }
}

/// A message on the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DlqMessage {
    pub message_id: String,
    pub body: String,
    /// Its message attributes (ingest's reasons and original receive time among them).
    pub attributes: BTreeMap<String, String>,
}

/// How an invocation ended, as the mapping sees it.
#[derive(Debug, Clone, Copy)]
pub enum QueueOutcome<'a> {
    /// The function returned this partial batch response (empty: every message succeeded).
    Response(&'a SqsBatchResponse),
    /// The function failed: every message of the batch stays.
    FunctionError,
}

/// What settling one batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueSettled {
    pub deleted: usize,
    /// Failed messages that will be visible again after the visibility timeout.
    pub returning: usize,
    pub dead_lettered: usize,
}

/// A hidden message, ordered by when it becomes visible (earliest first out of the heap).
#[derive(Debug)]
struct Hidden(QueuedMessage);

impl PartialEq for Hidden {
    fn eq(&self, other: &Self) -> bool {
        self.0.visible_ms == other.0.visible_ms
    }
}
impl Eq for Hidden {}
impl PartialOrd for Hidden {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Hidden {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.0.visible_ms.cmp(&self.0.visible_ms)
    }
}

/// An SQS queue with its dead-letter queue.
#[derive(Debug, Default)]
pub struct Queue {
    /// Visible messages, in the order they became visible.
    visible: VecDeque<QueuedMessage>,
    /// Messages waiting out a visibility timeout.
    hidden: BinaryHeap<Hidden>,
    dead_letters: Vec<DlqMessage>,
    sent: u64,
}

impl Queue {
    /// `SendMessage` at `now_ms` with an id of the caller's; returns it.
    pub fn send(
        &mut self,
        id: String,
        body: String,
        attributes: BTreeMap<String, String>,
        now_ms: i64,
    ) -> String {
        self.sent += 1;
        self.visible.push_back(QueuedMessage {
            id: id.clone(),
            body,
            attributes,
            sent_ms: now_ms,
            receives: 0,
            visible_ms: now_ms,
        });
        id
    }

    /// Messages sent so far (redriven ones included).
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Messages visible at `now_ms`.
    pub fn visible(&mut self, now_ms: i64) -> usize {
        self.reveal(now_ms);
        self.visible.len()
    }

    /// Messages in the queue, visible or not (not the dead-letter queue).
    pub fn len(&self) -> usize {
        self.visible.len() + self.hidden.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// When the next message becomes visible, if none is visible now.
    pub fn next_visible_ms(&self) -> Option<i64> {
        match self.visible.front() {
            Some(m) => Some(m.visible_ms),
            None => self.hidden.peek().map(|h| h.0.visible_ms),
        }
    }

    /// Whether the trigger invokes at `now_ms`: a full batch is visible, or the oldest visible
    /// message has waited the batching window (or `force` and anything is visible).
    pub fn batch_due(&mut self, mapping: &QueueMapping, now_ms: i64, force: bool) -> bool {
        self.reveal(now_ms);
        let Some(first) = self.visible.front() else {
            return false;
        };
        force
            || self.visible.len() >= mapping.batch_size
            || now_ms - first.visible_ms >= mapping.batching_window_ms
    }

    /// Receives up to a batch of visible messages at `now_ms` (each one's receive count up by
    /// one), hidden for the visibility timeout until [`Queue::settle`].
    pub fn receive(&mut self, mapping: &QueueMapping, now_ms: i64) -> Vec<QueuedMessage> {
        self.reveal(now_ms);
        let take = self.visible.len().min(mapping.batch_size);
        self.visible
            .drain(..take)
            .map(|mut m| {
                m.receives += 1;
                m.visible_ms = now_ms + mapping.visibility_timeout_ms;
                m
            })
            .collect()
    }

    /// Deletes what the outcome acknowledges; the rest stays hidden until its visibility
    /// timeout ends, or moves to the dead-letter queue after `maxReceiveCount` receives.
    pub fn settle(
        &mut self,
        mapping: &QueueMapping,
        batch: Vec<QueuedMessage>,
        outcome: QueueOutcome<'_>,
    ) -> QueueSettled {
        let failed: Option<HashSet<&str>> = match outcome {
            QueueOutcome::Response(response) => Some(
                response
                    .batch_item_failures
                    .iter()
                    .map(|f| f.item_identifier.as_str())
                    .collect(),
            ),
            QueueOutcome::FunctionError => None,
        };
        let mut settled = QueueSettled::default();
        let mut stays = Vec::new();
        for message in batch {
            if failed
                .as_ref()
                .is_some_and(|f| !f.contains(message.id.as_str()))
            {
                settled.deleted += 1;
            } else {
                stays.push(message);
            }
        }
        for message in stays {
            if message.receives >= mapping.max_receive_count {
                settled.dead_lettered += 1;
                self.dead_letters.push(DlqMessage {
                    message_id: message.id,
                    body: message.body,
                    attributes: message.attributes,
                });
            } else {
                settled.returning += 1;
                self.hidden.push(Hidden(message));
            }
        }
        settled
    }

    /// Puts a message on the dead-letter queue directly (what a function does with a message it
    /// cannot process).
    pub fn dead_letter(&mut self, letter: DlqMessage) {
        self.dead_letters.push(letter);
    }

    pub fn dead_letters(&self) -> &[DlqMessage] {
        &self.dead_letters
    }

    /// Moves every dead letter back as a new message sent at `now_ms`, named by `new_id`.
    /// Returns how many.
    pub fn redrive(&mut self, now_ms: i64, mut new_id: impl FnMut() -> String) -> usize {
        let letters = std::mem::take(&mut self.dead_letters);
        let count = letters.len();
        for letter in letters {
            self.send(new_id(), letter.body, letter.attributes, now_ms);
        }
        count
    }

    fn reveal(&mut self, now_ms: i64) {
        while self.hidden.peek().is_some_and(|h| h.0.visible_ms <= now_ms) {
            if let Some(Hidden(message)) = self.hidden.pop() {
                self.visible.push_back(message);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::sqs::BatchItemFailure;

    fn mapping() -> QueueMapping {
        QueueMapping {
            batch_size: 2,
            batching_window_ms: 1000,
            visibility_timeout_ms: 61_000,
            max_receive_count: 3,
        }
    }

    fn queue_with(n: usize) -> Queue {
        let mut queue = Queue::default();
        for i in 0..n {
            queue.send(format!("m{i}"), format!("body {i}"), BTreeMap::new(), 0);
        }
        queue
    }

    fn failing(ids: &[&str]) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        for id in ids {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = (*id).to_owned();
            response.batch_item_failures.push(failure);
        }
        response
    }

    fn ids(batch: &[QueuedMessage]) -> Vec<&str> {
        batch.iter().map(|m| m.id.as_str()).collect()
    }

    /// A short batch waits for the batching window; a full one goes at once.
    #[test]
    fn a_batch_is_due_when_full_or_after_the_batching_window() {
        let m = mapping();
        let mut one = queue_with(1);
        assert!(!one.batch_due(&m, 999, false));
        assert!(one.batch_due(&m, 1000, false));
        assert!(queue_with(2).batch_due(&m, 0, false));
    }

    /// A partial batch response: the named messages come back after the visibility timeout,
    /// with their receive count; the others are deleted.
    #[test]
    fn failed_messages_come_back_after_the_visibility_timeout() {
        let m = mapping();
        let mut queue = queue_with(2);
        let batch = queue.receive(&m, 0);
        assert_eq!(ids(&batch), ["m0", "m1"]);
        let settled = queue.settle(&m, batch, QueueOutcome::Response(&failing(&["m1"])));
        assert_eq!((settled.deleted, settled.returning), (1, 1));
        assert_eq!(queue.visible(60_999), 0);
        let again = queue.receive(&m, 61_000);
        assert_eq!(ids(&again), ["m1"]);
        assert_eq!(again[0].receives, 2);
        assert_eq!(again[0].to_sqs().attributes["ApproximateReceiveCount"], "2");
    }

    /// A function error keeps every message; the third failed receive dead-letters it, and a
    /// redrive sends it again as a new message, attributes kept.
    #[test]
    fn a_message_failing_max_receive_count_times_is_dead_lettered_and_can_be_redriven() {
        let m = mapping();
        let mut queue = Queue::default();
        let attributes = BTreeMap::from([("reason".to_owned(), "x".to_owned())]);
        queue.send("m0".into(), "body".into(), attributes.clone(), 0);
        for receive in 1..=3 {
            let now = (receive - 1) * m.visibility_timeout_ms;
            let batch = queue.receive(&m, now);
            assert_eq!(batch[0].receives as i64, receive);
            let settled = queue.settle(&m, batch, QueueOutcome::FunctionError);
            assert_eq!(settled.dead_lettered, usize::from(receive == 3));
        }
        assert!(queue.is_empty());
        assert_eq!(queue.dead_letters().len(), 1);
        assert_eq!(queue.redrive(500_000, || "m1".to_owned()), 1);
        let redriven = queue.receive(&m, 500_000);
        assert_eq!(ids(&redriven), ["m1"]);
        assert_eq!(
            (redriven[0].sent_ms, redriven[0].receives),
            (500_000, 1),
            "a new message"
        );
        assert_eq!(redriven[0].attributes, attributes);
    }

    #[test]
    fn the_deployed_mapping_is_the_contracts() {
        let m = QueueMapping::deployed();
        assert_eq!(
            (
                m.batch_size,
                m.batching_window_ms,
                m.visibility_timeout_ms,
                m.max_receive_count
            ),
            (100, 1000, 61_000, 3)
        );
    }
}
