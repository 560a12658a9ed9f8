//! An in-process stand-in for SQS and its Lambda event source mapping: messages are stamped with
//! `SentTimestamp` when enqueued and handed to the ingest handler in SQS-shaped batches; the
//! messages a partial batch response names become visible again after the visibility timeout
//! and move to a dead-letter list after `max_receive_count` receives; [`LocalQueue::redrive`]
//! moves the dead letters back as new messages, their message attributes kept.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage, SqsMessageAttribute};
use livecount_core::Clock;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Display;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// The event source mapping settings the queue imitates.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Most messages per handler call (SQS event source `BatchSize`, default 10).
    pub batch_size: usize,
    /// How long to gather a batch before calling the handler with fewer messages
    /// (`MaximumBatchingWindowInSeconds`, default 0).
    pub batching_window: Duration,
    /// How long a failed message stays invisible before it is delivered again.
    pub visibility_timeout: Duration,
    /// Receives before a message moves to the dead-letter list (the redrive policy).
    pub max_receive_count: u32,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            batch_size: 10,
            batching_window: Duration::ZERO,
            visibility_timeout: Duration::from_secs(2),
            max_receive_count: 5,
        }
    }
}

#[derive(Debug, Clone)]
struct Queued {
    id: String,
    body: String,
    /// Message attributes (string and number ones), kept when a message is dead-lettered and
    /// redriven, as SQS keeps them.
    attributes: BTreeMap<String, String>,
    sent_ms: i64,
    receives: u32,
    visible_at: Instant,
}

/// A message on the dead-letter list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub message_id: String,
    pub body: String,
    /// Its message attributes (ingest's reasons and original receive time among them).
    pub attributes: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
struct State {
    ready: VecDeque<Queued>,
    next_id: u64,
    dead_letters: Vec<DeadLetter>,
    enqueued: u64,
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
    config: QueueConfig,
    clock: Clock,
}

impl LocalQueue {
    pub fn new(config: QueueConfig, clock: Clock) -> Self {
        Self {
            state: Arc::default(),
            notify: Arc::default(),
            config,
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
        let sent_ms = self.clock.now_ms();
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
            state.next_id += 1;
            state.enqueued += 1;
            for stream in streams {
                *state.events_by_stream.entry(stream).or_default() += 1;
            }
            let id = format!("{:08x}-local-{:012}", fastrand::u32(..), state.next_id);
            state.ready.push_back(Queued {
                id: id.clone(),
                body,
                attributes,
                sent_ms,
                receives: 0,
                visible_at: Instant::now(),
            });
            id
        };
        self.notify.notify_one();
        id
    }

    pub fn stats(&self) -> QueueStats {
        let state = self.lock();
        QueueStats {
            enqueued: state.enqueued,
            waiting: state.ready.len(),
            dead_letters: state.dead_letters.len(),
            events_by_stream: state.events_by_stream.clone(),
        }
    }

    /// Messages moved to the dead-letter list.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.lock().dead_letters.clone()
    }

    /// Puts a message on the dead-letter list at once, with its message attributes (what ingest
    /// does with an invalid one, as it sends it to the dead-letter queue on AWS).
    pub fn dead_letter(&self, letter: DeadLetter) {
        tracing::warn!(
            message_id = %letter.message_id,
            attributes = ?letter.attributes,
            "invalid message moved to the dead-letter list"
        );
        self.lock().dead_letters.push(letter);
    }

    /// Moves every dead letter back to the queue, as an operator's DLQ redrive does on AWS: each
    /// becomes a new message (a new id and `SentTimestamp`) with its body and message
    /// attributes. Returns how many.
    pub fn redrive(&self) -> usize {
        let letters = std::mem::take(&mut self.lock().dead_letters);
        let count = letters.len();
        for letter in letters {
            self.enqueue_with(letter.body, letter.attributes);
        }
        count
    }

    /// Delivers batches to `handler` until `shutdown` resolves.
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

    /// Delivers everything visible now, batch by batch, then returns (for tests and `send`).
    pub async fn drain<H, E>(&self, handler: &mut H) -> usize
    where
        H: AsyncFnMut(SqsEvent) -> Result<SqsBatchResponse, E>,
        E: Display,
    {
        let mut delivered = 0;
        loop {
            let batch = self.take_visible();
            if batch.is_empty() {
                return delivered;
            }
            delivered += batch.len();
            self.deliver(batch, handler).await;
        }
    }

    async fn next_batch(&self) -> Vec<Queued> {
        loop {
            let notified = self.notify.notified();
            let first_visible = self.lock().ready.iter().map(|m| m.visible_at).min();
            match first_visible {
                Some(at) if at <= Instant::now() => {
                    if !self.config.batching_window.is_zero()
                        && self.visible_count() < self.config.batch_size
                    {
                        tokio::time::sleep(self.config.batching_window).await;
                    }
                    let batch = self.take_visible();
                    if !batch.is_empty() {
                        return batch;
                    }
                }
                Some(at) => {
                    tokio::select! {
                        () = notified => {}
                        () = tokio::time::sleep_until(at.into()) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    fn visible_count(&self) -> usize {
        let now = Instant::now();
        self.lock()
            .ready
            .iter()
            .filter(|m| m.visible_at <= now)
            .count()
    }

    fn take_visible(&self) -> Vec<Queued> {
        let now = Instant::now();
        let mut state = self.lock();
        let mut batch = Vec::new();
        let mut kept = VecDeque::with_capacity(state.ready.len());
        while let Some(message) = state.ready.pop_front() {
            if message.visible_at <= now && batch.len() < self.config.batch_size {
                batch.push(message);
            } else {
                kept.push_back(message);
            }
        }
        state.ready = kept;
        batch
    }

    async fn deliver<H, E>(&self, mut batch: Vec<Queued>, handler: &mut H)
    where
        H: AsyncFnMut(SqsEvent) -> Result<SqsBatchResponse, E>,
        E: Display,
    {
        for message in &mut batch {
            message.receives += 1;
        }
        let mut event = SqsEvent::default();
        event.records = batch.iter().map(sqs_message).collect();
        let failed: Vec<String> = match handler(event).await {
            Ok(response) => response
                .batch_item_failures
                .into_iter()
                .map(|f| f.item_identifier)
                .collect(),
            Err(error) => {
                tracing::warn!(error = %error, "ingest handler failed; the whole batch will be delivered again");
                batch.iter().map(|m| m.id.clone()).collect()
            }
        };
        if failed.is_empty() {
            return;
        }
        let visible_at = Instant::now() + self.config.visibility_timeout;
        let mut state = self.lock();
        for message in batch.into_iter().filter(|m| failed.contains(&m.id)) {
            if message.receives >= self.config.max_receive_count {
                tracing::error!(message_id = %message.id, "message moved to the dead-letter list after {} receives", message.receives);
                state.dead_letters.push(DeadLetter {
                    message_id: message.id,
                    body: message.body,
                    attributes: message.attributes,
                });
            } else {
                state.ready.push_back(Queued {
                    visible_at,
                    ..message
                });
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The message as Lambda's SQS event source delivers it.
fn sqs_message(message: &Queued) -> SqsMessage {
    let mut sqs = SqsMessage::default();
    sqs.message_id = Some(message.id.clone());
    sqs.receipt_handle = Some(format!("local-{}", message.id));
    sqs.body = Some(message.body.clone());
    sqs.attributes = HashMap::from([
        (
            "ApproximateReceiveCount".to_owned(),
            message.receives.to_string(),
        ),
        ("SentTimestamp".to_owned(), message.sent_ms.to_string()),
        ("SenderId".to_owned(), "livecount-local".to_owned()),
        (
            "ApproximateFirstReceiveTimestamp".to_owned(),
            message.sent_ms.to_string(),
        ),
    ]);
    sqs.message_attributes = message
        .attributes
        .iter()
        .map(|(name, value)| {
            let mut attribute = SqsMessageAttribute::default();
            attribute.string_value = Some(value.clone());
            attribute.data_type = Some(
                if value.parse::<f64>().is_ok() {
                    "Number"
                } else {
                    "String"
                }
                .to_owned(),
            );
            (name.clone(), attribute)
        })
        .collect();
    sqs.event_source = Some("aws:sqs".to_owned());
    sqs.event_source_arn = Some("arn:aws:sqs:local:000000000000:livecount-events".to_owned());
    sqs.aws_region = Some("local".to_owned());
    sqs
}
