//! # livecount-ingest
//!
//! The ingest Lambda (see `docs/design.md`): an SQS batch of player events becomes conditional
//! writes to the TTL'd sessions table. [`Ingest::process`] is the whole algorithm; [`handler`] is
//! the Lambda entry point that `main.rs` wires to `lambda_runtime`, and the local runtime calls
//! the same function with SQS-shaped batches.
//!
//! - Each message is parsed and validated; an invalid one is logged with its reason and sent to
//!   the dead-letter queue once, its reasons in a message attribute (or, without a dead-letter
//!   queue configured or when that send fails, reported as a batch item failure, so SQS moves it
//!   after `maxReceiveCount` receives), while the valid events beside it, in the same body or the
//!   same batch, are still applied.
//! - Within the batch only the newest event per session is written, each with one `UpdateItem`
//!   conditioned on the stored event being older; a failed condition is a stale event, counted
//!   and acknowledged.
//! - Writes run concurrently (bounded); one that still fails after the SDK's retries reports
//!   exactly the message its event came from.
//! - When sessions must be signed, an event without a valid token for its stream and session is
//!   refused with its reason (`TokensRejected`).
//! - A message received longer than `W + G` ago (after an outage, or redriven from the DLQ) can
//!   no longer count: it is acknowledged, logged and counted (`MessagesExpired`), never written.
//!   A message ingest dead-letters carries its original receive time ([`RECEIVED_AT_ATTRIBUTE`]);
//!   a redriven message (a new message to SQS, with a new `SentTimestamp`) is read as received
//!   then, so none of its events counts twice or after its window.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures::stream::{self, StreamExt};
use lambda_runtime::LambdaEvent;
use livecount_core::coalesce::newest_per_session;
use livecount_core::config::TokenSecretSource;
use livecount_core::event::parse_body;
use livecount_core::ids::session_shard;
use livecount_core::model::{ItemKey, SessionState};
use livecount_core::store::SessionWrite;
use livecount_core::token::VerifyToken;
use livecount_core::{Clock, Config, PlayerEvent, Store, error_chain};
use std::collections::BTreeSet;
use std::sync::Arc;

pub mod tokens;
pub use tokens::Tokens;

/// The SQS attribute holding the time the queue received the message (epoch ms, server clock).
pub const SENT_TIMESTAMP: &str = "SentTimestamp";

/// What the ingest handler needs: the store, the configuration and a clock (the fallback receive
/// time when a message carries no `SentTimestamp`).
#[derive(Debug, Clone)]
pub struct Ingest {
    pub store: Store,
    pub config: Config,
    pub clock: Clock,
    /// The signed-session secrets, when every event must carry a valid token.
    pub tokens: Option<Tokens>,
    /// Where invalid messages go, once, with their reasons.
    pub dead_letters: Option<DeadLetters>,
}

/// The SQS message attribute holding why a message was dead-lettered.
pub const REASONS_ATTRIBUTE: &str = "livecount-reasons";

/// The SQS message attribute holding when the queue first received a dead-lettered message
/// (epoch ms): a redriven message is read as received then, or at its `SentTimestamp` if that
/// is earlier (so the attribute can only shorten a message's life, never lengthen it; the public
/// endpoint sets no message attributes at all).
pub const RECEIVED_AT_ATTRIBUTE: &str = "livecount-received-at";

/// An invalid message on its way to the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub message_id: String,
    pub body: String,
    pub reasons: String,
    /// When the queue first received it (epoch ms), sent as [`RECEIVED_AT_ATTRIBUTE`].
    pub received_ms: i64,
}

impl DeadLetter {
    /// The message attributes it goes to the dead-letter queue with, as (name, SQS data type,
    /// value): its reasons (at most 1,000 characters) and when the queue first received it.
    pub fn attributes(&self) -> [(&'static str, &'static str, String); 2] {
        [
            (
                REASONS_ATTRIBUTE,
                "String",
                self.reasons.chars().take(1000).collect(),
            ),
            (
                RECEIVED_AT_ATTRIBUTE,
                "Number",
                self.received_ms.to_string(),
            ),
        ]
    }
}

/// A function given each invalid message.
pub type DeadLetterSink = Arc<dyn Fn(&DeadLetter) + Send + Sync>;

/// Where an invalid message goes.
#[derive(Clone)]
pub enum DeadLetters {
    /// `SendMessage` to the dead-letter queue (`LIVECOUNT_DEAD_LETTER_QUEUE_URL`), the reasons in
    /// the [`REASONS_ATTRIBUTE`] message attribute.
    Sqs {
        client: aws_sdk_sqs::Client,
        queue_url: String,
    },
    /// A function given each message: the local queue's dead-letter list, tests.
    Local(DeadLetterSink),
}

impl std::fmt::Debug for DeadLetters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqs { queue_url, .. } => write!(f, "DeadLetters::Sqs({queue_url})"),
            Self::Local(_) => f.write_str("DeadLetters::Local"),
        }
    }
}

impl DeadLetters {
    /// The dead-letter queue the configuration names, if any.
    pub async fn from_config(config: &Config) -> Option<Self> {
        let queue_url = config.dead_letter_queue_url.clone()?;
        let sdk = aws_config::load_from_env().await;
        Some(Self::Sqs {
            client: aws_sdk_sqs::Client::new(&sdk),
            queue_url,
        })
    }

    /// Sends one invalid message with its reasons and receive time; the error says why it could
    /// not.
    async fn send(&self, letter: &DeadLetter) -> Result<(), String> {
        match self {
            Self::Local(sink) => {
                sink(letter);
                Ok(())
            }
            Self::Sqs { client, queue_url } => {
                let body = if letter.body.is_empty() {
                    "(empty body)"
                } else {
                    &letter.body
                };
                let mut request = client
                    .send_message()
                    .queue_url(queue_url)
                    .message_body(body);
                for (name, data_type, value) in letter.attributes() {
                    let value = aws_sdk_sqs::types::MessageAttributeValue::builder()
                        .data_type(data_type)
                        .string_value(value)
                        .build()
                        .map_err(|e| e.to_string())?;
                    request = request.message_attributes(name, value);
                }
                request
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| error_chain(&aws_sdk_sqs::Error::from(e)))
            }
        }
    }
}

/// Reads the signed-session secrets the configuration names: from Secrets Manager (the
/// deployed Lambda, read again while it runs, [`Tokens`]), or as given (`livecount dev`, tests).
pub async fn resolve_tokens(config: &Config) -> Result<Option<Tokens>, IngestError> {
    match &config.token_secret {
        None => Ok(None),
        Some(TokenSecretSource::Value(secret)) => Ok(Some(Tokens::fixed(secret.clone()))),
        Some(TokenSecretSource::SecretsManager(arn)) => Tokens::secrets_manager(arn)
            .await
            .map(Some)
            .map_err(|reason| IngestError::TokenSecret {
                arn: arn.clone(),
                reason,
            }),
    }
}

/// A message refused as invalid, with one reason per rule it broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidMessage {
    pub message_id: String,
    pub reasons: Vec<String>,
}

/// What one batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestReport {
    /// Valid events in the batch.
    pub events: usize,
    /// Session rows written.
    pub applied: usize,
    /// Events superseded by a newer event of their session: within the batch, or already stored.
    pub stale: usize,
    pub invalid: Vec<InvalidMessage>,
    /// Messages whose write failed after the SDK's retries (to be redelivered).
    pub failed: Vec<String>,
    /// Invalid messages sent to the dead-letter queue (and so acknowledged).
    pub dead_lettered: Vec<String>,
    /// Messages received longer than `W + G` ago: acknowledged without a write.
    pub expired: Vec<String>,
    /// Events refused for a missing, malformed, wrong or expired token.
    pub tokens_rejected: usize,
    /// Session writes not started because the invocation's deadline was near (their messages
    /// are in `failed`).
    pub deferred: usize,
}

impl IngestReport {
    fn log(&self, messages: usize) {
        tracing::info!(
            messages,
            events = self.events,
            applied = self.applied,
            stale = self.stale,
            invalid = self.invalid.len(),
            failed = self.failed.len(),
            expired = self.expired.len(),
            tokens_rejected = self.tokens_rejected,
            deferred = self.deferred,
            "ingest batch"
        );
    }

    /// The counters this batch adds to the `ingest` metrics (`infra/contract.json`).
    pub fn metrics(&self) -> [(&'static str, u64); 7] {
        [
            ("EventsApplied", self.applied as u64),
            ("EventsStale", self.stale as u64),
            ("MessagesInvalid", self.invalid.len() as u64),
            ("MessagesDeadLettered", self.dead_lettered.len() as u64),
            ("MessagesFailed", self.failed.len() as u64),
            ("MessagesExpired", self.expired.len() as u64),
            ("TokensRejected", self.tokens_rejected as u64),
        ]
    }

    /// The SQS partial batch response: every failed message, and every invalid one that did not
    /// reach the dead-letter queue, once, in batch order.
    pub fn batch_response(&self, messages: &[SqsMessage]) -> SqsBatchResponse {
        let dead_lettered: BTreeSet<&str> = self.dead_lettered.iter().map(String::as_str).collect();
        let failed: BTreeSet<&str> = self
            .invalid
            .iter()
            .map(|m| m.message_id.as_str())
            .filter(|id| !dead_lettered.contains(id))
            .chain(self.failed.iter().map(String::as_str))
            .collect();
        let mut response = SqsBatchResponse::default();
        for id in messages.iter().filter_map(|m| m.message_id.as_deref()) {
            if failed.contains(id) {
                response.add_failure(id);
            }
        }
        response
    }
}

/// Errors that fail the whole invocation (SQS then redelivers the whole batch).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("SQS message at position {position} has no messageId, so it cannot be reported")]
    MissingMessageId { position: usize },
    #[error("cannot read the token secret {arn}: {reason}")]
    TokenSecret { arn: String, reason: String },
}

impl From<IngestError> for lambda_runtime::Diagnostic {
    fn from(error: IngestError) -> Self {
        Self {
            error_type: "IngestError".to_owned(),
            error_message: error.to_string(),
        }
    }
}

/// How long before its deadline an invocation stops starting session writes (or a quarter of
/// the time it has, if less): what one write may take with the SDK's retries. The messages of
/// the writes not started are reported.
pub const DEADLINE_MARGIN: std::time::Duration = std::time::Duration::from_secs(2);

/// The Lambda entry point: SQS batch in, partial batch response out. The invocation's deadline
/// (`context.deadline`, epoch ms; 0 means none) bounds what it starts.
pub async fn handler(
    ingest: &Ingest,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, IngestError> {
    let messages = &event.payload.records;
    let stop = livecount_core::clock::stop_starting_work(event.context.deadline, DEADLINE_MARGIN);
    let report = ingest.process_until(messages, stop).await?;
    Ok(report.batch_response(messages))
}

impl Ingest {
    /// An ingest with the system clock; a token secret given as a value is used, one in
    /// Secrets Manager needs [`resolve_tokens`].
    pub fn new(store: Store, config: Config) -> Self {
        let tokens = match &config.token_secret {
            Some(TokenSecretSource::Value(secret)) => Some(Tokens::fixed(secret.clone())),
            _ => None,
        };
        Self {
            store,
            config,
            clock: Clock::system(),
            tokens,
            dead_letters: None,
        }
    }

    /// Parses, validates, coalesces and writes one SQS batch, with no deadline.
    pub async fn process(&self, messages: &[SqsMessage]) -> Result<IngestReport, IngestError> {
        self.process_until(messages, None).await
    }

    /// Parses, validates, coalesces and writes one SQS batch, starting no write after `stop`
    /// (see [`livecount_core::clock::stop_starting_work`]): the messages whose writes were not
    /// started (or failed) are reported, so SQS delivers them again instead of the whole batch
    /// failing.
    pub async fn process_until(
        &self,
        messages: &[SqsMessage],
        stop: Option<std::time::Instant>,
    ) -> Result<IngestReport, IngestError> {
        if let Some(tokens) = &self.tokens {
            tokens.refresh_if_due().await;
        }
        let mut report = IngestReport::default();
        // (event, index of its message, receive time in ms)
        let mut accepted: Vec<(PlayerEvent, (usize, i64))> = Vec::new();
        let mut ids = Vec::with_capacity(messages.len());
        for (position, message) in messages.iter().enumerate() {
            let id = message
                .message_id
                .clone()
                .ok_or(IngestError::MissingMessageId { position })?;
            ids.push(id.clone());
            let recv_ms = self.receive_time(message);
            if self.clock.now_ms() - recv_ms > self.can_count_ms() {
                tracing::warn!(message_id = %id, sent_ms = recv_ms, "message too old to count; dropped");
                report.expired.push(id);
                continue;
            }
            let (events, reasons) = self.read_message(message, recv_ms, &mut report);
            accepted.extend(events.into_iter().map(|e| (e, (position, recv_ms))));
            if !reasons.is_empty() {
                self.refuse(id, message, reasons, recv_ms, &mut report)
                    .await;
            }
        }
        report.events = accepted.len();
        let winners = newest_per_session(accepted);
        report.stale = report.events - winners.len();
        self.write_winners(winners, &ids, stop, &mut report).await;
        report.log(messages.len());
        livecount_core::metrics::emit("ingest", &report.metrics());
        Ok(report)
    }

    /// A message's valid events (as received at `recv_ms`), and a reason for each invalid one
    /// or for the whole body.
    fn read_message(
        &self,
        message: &SqsMessage,
        recv_ms: i64,
        report: &mut IngestReport,
    ) -> (Vec<PlayerEvent>, Vec<String>) {
        let (mut events, mut reasons) = (Vec::new(), Vec::new());
        let body = match parse_body(message.body.as_deref().unwrap_or_default()) {
            Ok(body) => body,
            Err(error) => return (events, vec![error_chain(&error)]),
        };
        for (index, event) in body.events.into_iter().enumerate() {
            let event = event.and_then(|e| match self.check_token(&e, recv_ms) {
                Ok(()) => Ok(e),
                Err(reason) => {
                    report.tokens_rejected += 1;
                    Err(reason)
                }
            });
            match event {
                Ok(event) => events.push(event.received_at(recv_ms)),
                Err(error) if body.is_array => reasons.push(format!("event {index}: {error}")),
                Err(error) => reasons.push(error.to_string()),
            }
        }
        (events, reasons)
    }

    /// Logs an invalid message and sends it to the dead-letter queue with its reasons.
    async fn refuse(
        &self,
        id: String,
        message: &SqsMessage,
        reasons: Vec<String>,
        recv_ms: i64,
        report: &mut IngestReport,
    ) {
        tracing::warn!(message_id = %id, reasons = ?reasons, "invalid message");
        if self.dead_letter(&id, message, &reasons, recv_ms).await {
            report.dead_lettered.push(id.clone());
        }
        report.invalid.push(InvalidMessage {
            message_id: id,
            reasons,
        });
    }

    /// Writes each session's newest event, concurrently (bounded); a write that still fails
    /// names its message in `report.failed`.
    async fn write_winners(
        &self,
        winners: Vec<(PlayerEvent, (usize, i64))>,
        ids: &[String],
        stop: Option<std::time::Instant>,
        report: &mut IngestReport,
    ) {
        let near = || stop.is_some_and(|stop| std::time::Instant::now() >= stop);
        let writes = stream::iter(winners)
            .map(|(event, (position, recv_ms))| async move {
                if near() {
                    return (position, None);
                }
                (position, Some(self.write(&event, recv_ms).await))
            })
            .buffer_unordered(self.config.max_concurrent_writes.max(1))
            .collect::<Vec<_>>()
            .await;
        let mut failed = BTreeSet::new();
        for (position, outcome) in writes {
            match outcome {
                Some(Ok(SessionWrite::Applied)) => report.applied += 1,
                Some(Ok(SessionWrite::Stale)) => report.stale += 1,
                Some(Err(error)) => {
                    tracing::error!(message_id = %ids[position], error = %error_chain(&error), "session write failed");
                    failed.insert(position);
                }
                None => {
                    report.deferred += 1;
                    failed.insert(position);
                }
            }
        }
        report.failed = failed.into_iter().map(|p| ids[p].clone()).collect();
    }

    /// Sends an invalid message to the dead-letter queue; whether it got there.
    async fn dead_letter(
        &self,
        id: &str,
        message: &SqsMessage,
        reasons: &[String],
        received_ms: i64,
    ) -> bool {
        let Some(dead_letters) = &self.dead_letters else {
            return false;
        };
        let letter = DeadLetter {
            message_id: id.to_owned(),
            body: message.body.clone().unwrap_or_default(),
            reasons: reasons.join("; "),
            received_ms,
        };
        match dead_letters.send(&letter).await {
            Ok(()) => true,
            Err(reason) => {
                tracing::error!(message_id = %id, reason = %reason, "could not dead-letter an invalid message; SQS will redeliver it");
                false
            }
        }
    }

    /// How long after its receive time a message can still count: `W + G`.
    fn can_count_ms(&self) -> i64 {
        1000 * (self.config.timing.window_seconds + self.config.timing.grace_seconds)
    }

    /// The event's token, when sessions must be signed.
    fn check_token(
        &self,
        event: &PlayerEvent,
        recv_ms: i64,
    ) -> Result<(), livecount_core::event::InvalidEvent> {
        let Some(secret) = &self.tokens else {
            return Ok(());
        };
        secret
            .verify(
                event.token.as_deref(),
                &event.stream_id,
                &event.session_id,
                recv_ms.div_euclid(1000),
            )
            .map_err(livecount_core::event::InvalidEvent::Token)
    }

    /// When the queue received the message: its `SentTimestamp` (the ingest clock without one),
    /// or the [`RECEIVED_AT_ATTRIBUTE`] a dead-lettered message carries back, if earlier.
    fn receive_time(&self, message: &SqsMessage) -> i64 {
        let sent = message
            .attributes
            .get(SENT_TIMESTAMP)
            .and_then(|t| t.parse::<i64>().ok())
            .unwrap_or_else(|| self.clock.now_ms());
        let first = message
            .message_attributes
            .get(RECEIVED_AT_ATTRIBUTE)
            .and_then(|a| a.string_value.as_deref())
            .and_then(|t| t.parse::<i64>().ok());
        first.map_or(sent, |first| first.min(sent))
    }

    /// Writes one player's events, already checked, as received at `recv_ms` (the public edge:
    /// the events of one session): only the newest is written, with one conditional write.
    /// `None` if there were none.
    pub async fn write_player_events(
        &self,
        events: Vec<PlayerEvent>,
        recv_ms: i64,
    ) -> Option<Result<SessionWrite, livecount_core::StoreError>> {
        let winners = newest_per_session(events.into_iter().map(|e| (e.received_at(recv_ms), ())));
        let mut outcome = None;
        for (event, ()) in winners {
            outcome = Some(self.write(&event, recv_ms).await);
        }
        outcome
    }

    async fn write(
        &self,
        event: &PlayerEvent,
        recv_ms: i64,
    ) -> Result<SessionWrite, livecount_core::StoreError> {
        let shard = session_shard(&event.session_id, self.config.session_shards);
        let key = ItemKey::session(&event.stream_id, shard, &event.session_id);
        let state = SessionState {
            stream_id: event.stream_id.to_string(),
            exp_date: self.config.timing.expiry(event.kind, recv_ms),
            last_ts: event.ts,
            last_seq: event.seq,
            last_rank: event.kind.rank(),
            last_type: event.kind.as_str().to_owned(),
            recv_at: recv_ms,
            watching: event.kind.is_watching(),
            position: event.position,
            user_id: event.user_id.clone(),
            dimensions: event.dimensions.clone(),
        };
        self.store.write_session(&key, &state).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The message ids the partial batch response reports.
    fn failed_ids(report: &IngestReport, messages: &[SqsMessage]) -> Vec<String> {
        report
            .batch_response(messages)
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect()
    }

    fn message(id: &str) -> SqsMessage {
        livecount_local::lambda_events::sqs_message(id, "", 0, 1, &Default::default())
    }

    #[test]
    fn the_batch_response_names_each_failed_message_once_in_batch_order() {
        let messages = [message("a"), message("b"), message("c"), message("d")];
        let report = IngestReport {
            invalid: vec![InvalidMessage {
                message_id: "c".into(),
                reasons: vec!["x".into()],
            }],
            failed: vec!["a".into(), "c".into()],
            ..IngestReport::default()
        };
        assert_eq!(failed_ids(&report, &messages), ["a", "c"]);
    }

    #[test]
    fn dead_lettered_messages_are_acknowledged() {
        let messages = [message("a"), message("b")];
        let invalid = |id: &str| InvalidMessage {
            message_id: id.into(),
            reasons: vec!["x".into()],
        };
        let report = IngestReport {
            invalid: vec![invalid("a"), invalid("b")],
            dead_lettered: vec!["a".into()],
            ..IngestReport::default()
        };
        assert_eq!(failed_ids(&report, &messages), ["b"]);
    }

    #[test]
    fn the_metrics_are_the_contracts() {
        let contract: serde_json::Value =
            serde_json::from_str(livecount_core::contract::CONTRACT_JSON).expect("contract");
        let names: Vec<&str> = IngestReport::default()
            .metrics()
            .iter()
            .map(|(n, _)| *n)
            .collect();
        assert_eq!(serde_json::json!(names), contract["metrics"]["ingest"]);
    }

    #[test]
    fn sqs_fixture_deserializes_with_sent_timestamp() {
        let fixture = include_str!("../../tests/fixtures/sqs-event.json");
        let event: SqsEvent = serde_json::from_str(fixture).expect("fixture");
        assert_eq!(event.records.len(), 2);
        let sent = event.records[0]
            .attributes
            .get(SENT_TIMESTAMP)
            .map(String::as_str);
        assert_eq!(sent, Some("1700000000000"));
    }
}
