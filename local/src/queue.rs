//! An in-process SQS queue and its Lambda trigger, feeding the ingest handler: the rules are
//! [`crate::trigger::queue`]'s (the deployed mapping by default); this is the async driver that
//! runs them on a [`Clock`]: messages are stamped with `SentTimestamp` by it when enqueued, and
//! handed to the handler in SQS-shaped batches when due; [`LocalQueue::redrive`] moves the dead
//! letters back as new messages, their message attributes kept.

use crate::trigger::queue::{Queue, QueueMapping, QueueOutcome, QueuedMessage};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use livecount_core::Clock;
use std::collections::BTreeMap;
use std::fmt::Display;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;

pub use crate::trigger::queue::DlqMessage;

#[derive(Debug, Default)]
struct State {
    queue: Queue,
    next_id: u64,
    /// Enqueued events per stream (by a light parse of each body), for the status line.
    events_by_stream: BTreeMap<String, u64>,
}

/// Counters of the queue, for status lines and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub enqueued: u64,
    pub waiting: usize,
    pub dead_letters: usize,
    pub events_by_stream: BTreeMap<String, u64>,
}

/// A local queue; clones share it.
#[derive(Clone)]
pub struct LocalQueue {
    state: Arc<Mutex<State>>,
    notify: Arc<Notify>,
    mapping: QueueMapping,
    clock: Clock,
}

/// Longest pause of [`LocalQueue::run`] before it looks at the queue again (so a clock moved by
/// hand is noticed).
const MAX_WAIT: Duration = Duration::from_millis(250);

impl LocalQueue {
    pub fn new(mapping: QueueMapping, clock: Clock) -> Self {
        Self {
            state: Arc::default(),
            notify: Arc::default(),
            mapping,
            clock,
        }
    }

    /// Enqueues one message body, stamping `SentTimestamp` now; returns its message id.
    pub fn enqueue(&self, body: String) -> String {
        self.enqueue_with(body, BTreeMap::new())
    }

    /// Enqueues a message with message attributes (what `SendMessage` with
    /// `MessageAttributes` does).
    pub fn enqueue_with(&self, body: String, attributes: BTreeMap<String, String>) -> String {
        let streams: Vec<String> = livecount_core::event::parse_body(&body)
            .map(|b| {
                b.events
                    .into_iter()
                    .filter_map(Result::ok)
                    .map(|e| e.stream_id.to_string())
                    .collect()
            })
            .unwrap_or_default();
        let id = {
            let mut state = self.lock();
            for stream in streams {
                *state.events_by_stream.entry(stream).or_default() += 1;
            }
            let id = state.new_id();
            state
                .queue
                .send(id.clone(), body, attributes, self.clock.now_ms());
            id
        };
        self.notify.notify_one();
        id
    }

    pub fn stats(&self) -> QueueStats {
        let state = self.lock();
        QueueStats {
            enqueued: state.queue.sent(),
            waiting: state.queue.len(),
            dead_letters: state.queue.dead_letters().len(),
            events_by_stream: state.events_by_stream.clone(),
        }
    }

    /// Messages moved to the dead-letter list.
    pub fn dead_letters(&self) -> Vec<DlqMessage> {
        self.lock().queue.dead_letters().to_vec()
    }

    /// Puts a message on the dead-letter list at once, with its message attributes (what ingest
    /// does with an invalid one, as it sends it to the dead-letter queue on AWS).
    pub fn dead_letter(&self, letter: DlqMessage) {
        tracing::warn!(
            message_id = %letter.message_id,
            attributes = ?letter.attributes,
            "invalid message moved to the dead-letter list"
        );
        self.lock().queue.dead_letter(letter);
    }

    /// Moves every dead letter back to the queue, as an operator's DLQ redrive does on AWS: each
    /// becomes a new message (a new id and `SentTimestamp`) with its body and message
    /// attributes. Returns how many.
    pub fn redrive(&self) -> usize {
        let now_ms = self.clock.now_ms();
        let count = {
            let mut guard = self.lock();
            let state = &mut *guard;
            let ids = &mut state.next_id;
            state.queue.redrive(now_ms, || {
                *ids += 1;
                message_id(*ids)
            })
        };
        self.notify.notify_one();
        count
    }

    /// Delivers batches to `handler` as they fall due, until `shutdown` resolves.
    pub async fn run<H, E>(&self, mut handler: H, shutdown: impl Future<Output = ()>)
    where
        H: AsyncFnMut(SqsEvent) -> Result<SqsBatchResponse, E>,
        E: Display,
    {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let batch = tokio::select! {
                () = &mut shutdown => return,
                batch = self.next_batch() => batch,
            };
            self.deliver(batch, &mut handler).await;
        }
    }

    /// Delivers everything visible now, batch by batch without waiting for batching windows,
    /// then returns (for tests and `send`).
    pub async fn drain<H, E>(&self, handler: &mut H) -> usize
    where
        H: AsyncFnMut(SqsEvent) -> Result<SqsBatchResponse, E>,
        E: Display,
    {
        let mut delivered = 0;
        loop {
            let batch = self.take(true);
            if batch.is_empty() {
                return delivered;
            }
            delivered += batch.len();
            self.deliver(batch, handler).await;
        }
    }

    async fn next_batch(&self) -> Vec<QueuedMessage> {
        loop {
            let notified = self.notify.notified();
            let batch = self.take(false);
            if !batch.is_empty() {
                return batch;
            }
            let now_ms = self.clock.now_ms();
            let wait = {
                let state = self.lock();
                state.queue.next_visible_ms().map(|visible_ms| {
                    let due_ms = visible_ms.max(now_ms) + self.mapping.batching_window_ms;
                    Duration::from_millis((due_ms - now_ms).max(1) as u64).min(MAX_WAIT)
                })
            };
            match wait {
                Some(wait) => {
                    tokio::select! {
                        () = notified => {}
                        () = tokio::time::sleep(wait) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// The batch due now (or anything visible, when `force`), received.
    fn take(&self, force: bool) -> Vec<QueuedMessage> {
        let now_ms = self.clock.now_ms();
        let mut state = self.lock();
        if !state.queue.batch_due(&self.mapping, now_ms, force) {
            return Vec::new();
        }
        state.queue.receive(&self.mapping, now_ms)
    }

    async fn deliver<H, E>(&self, batch: Vec<QueuedMessage>, handler: &mut H)
    where
        H: AsyncFnMut(SqsEvent) -> Result<SqsBatchResponse, E>,
        E: Display,
    {
        let mut event = SqsEvent::default();
        event.records = batch.iter().map(QueuedMessage::to_sqs).collect();
        let result = handler(event).await;
        let outcome = match &result {
            Ok(response) => QueueOutcome::Response(response),
            Err(error) => {
                tracing::warn!(error = %error, "ingest handler failed; the whole batch will be delivered again");
                QueueOutcome::FunctionError
            }
        };
        let settled = self.lock().queue.settle(&self.mapping, batch, outcome);
        if settled.dead_lettered > 0 {
            tracing::error!(
                messages = settled.dead_lettered,
                "messages moved to the dead-letter list after {} receives",
                self.mapping.max_receive_count
            );
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl State {
    fn new_id(&mut self) -> String {
        self.next_id += 1;
        message_id(self.next_id)
    }
}

/// A message id shaped like SQS's.
fn message_id(n: u64) -> String {
    format!("{:08x}-local-{n:012}", fastrand::u32(..))
}
