//! Every DynamoDB write livecount makes, built as a value by a pure function and then sent by
//! [`crate::Store`]. Every attribute name and value goes through a placeholder; each builder's
//! output is unit-tested, and every counter request is checked against DynamoDB's expression
//! limits (300 operators, 4 KB per expression) for any batch.

use crate::histogram::{CounterRequest, Receipt, ReceiptKey};
use crate::ids::StreamId;
use crate::model::{
    HourItem, ItemKey, LifetimeItem, SessionState, bucket_attribute, minute_attributes,
    new_sessions_attribute, new_viewers_attribute, start_attribute,
};
use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;
use std::collections::HashMap;

/// Why a request could not be built: a value that does not map to a DynamoDB attribute.
#[derive(Debug, thiserror::Error)]
#[error("{what} does not map to a DynamoDB item of table {table}")]
pub struct RequestError {
    pub what: &'static str,
    pub table: String,
    #[source]
    pub source: serde_dynamo::Error,
}

/// The counters table's TTL attribute: a stream's items expire some days after their last
/// update, so the counters of ended streams go away by themselves.
pub const EXPIRES_AT: &str = "expiresAt";

/// An item as the SDK holds it.
pub type Item = HashMap<String, AttributeValue>;

/// DynamoDB's most operators and functions in one expression.
pub const MAX_OPERATORS: usize = 300;

/// DynamoDB's longest expression string, in bytes.
pub const MAX_EXPRESSION_BYTES: usize = 4096;

/// One `UpdateItem`, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateRequest {
    pub table: String,
    pub key: Item,
    pub update: String,
    pub condition: Option<String>,
    pub names: HashMap<String, String>,
    pub values: Item,
}

impl UpdateRequest {
    /// An upper bound of the operators and functions DynamoDB counts in the request's largest
    /// expression: every action of an update clause, every comparator, logical operator,
    /// arithmetic sign and function call.
    pub fn operators(&self) -> usize {
        let update = count_operators(&self.update);
        let condition = self.condition.as_deref().map_or(0, count_operators);
        update.max(condition)
    }

    /// The longer of the update and condition expressions, in bytes.
    pub fn expression_bytes(&self) -> usize {
        self.update
            .len()
            .max(self.condition.as_ref().map_or(0, String::len))
    }

    /// Whether the request is inside DynamoDB's expression limits.
    pub fn within_limits(&self) -> bool {
        self.operators() <= MAX_OPERATORS && self.expression_bytes() <= MAX_EXPRESSION_BYTES
    }
}

fn count_operators(expression: &str) -> usize {
    let mut count = 0;
    for token in
        expression.split_inclusive(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')')
    {
        let word =
            token.trim_end_matches(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')');
        count += match word {
            "SET" | "ADD" | "REMOVE" | "DELETE" | "AND" | "OR" | "NOT" | "BETWEEN" | "IN" | "="
            | "<>" | "<" | "<=" | ">" | ">=" | "+" | "-" => 1,
            _ => 0,
        };
        if token.ends_with(',') {
            count += 1;
        }
        if token.ends_with('(') && !word.is_empty() {
            count += 1; // a function call
        }
    }
    count
}

/// The session write: `SET` every attribute of `state` (and `startedAt` if not set), only if
/// the event is newer than the row's (the order of `PlayerEvent::order`):
///
/// - with `seq`: `attribute_not_exists(PK) OR attribute_not_exists(lastSeq) OR` the event is
///   later (`lastSeq < :seq OR (lastSeq = :seq AND lastRank < :rank)`); a `start` also when
///   `lastTs < :ts`, any other event only if the row is not a `start` with a later `ts` (a
///   reloaded player's new run, [`crate::PlayerEvent::supersedes`]);
/// - without: `attribute_not_exists(PK) OR (attribute_not_exists(lastSeq) AND (lastTs < :ts OR
///   (lastTs = :ts AND lastRank < :rank)))`.
pub fn session_write_request(
    table: &str,
    key: &ItemKey,
    state: &SessionState,
) -> Result<UpdateRequest, RequestError> {
    let mut expr = Expression::new(table);
    let assignments = expr.assign_all(state, "session state")?;
    let started = expr.name("startedAt");
    let recv = expr.value(&state.recv_at)?;
    let (pk, last_seq, last_rank) = (expr.name("PK"), expr.name("lastSeq"), expr.name("lastRank"));
    let rank = expr.value(&state.last_rank)?;
    let newer = match state.last_seq {
        Some(seq) => {
            let seq = expr.value(&seq)?;
            let (last_ts, ts) = (expr.name("lastTs"), expr.value(&state.last_ts)?);
            let later =
                format!("{last_seq} < {seq} OR ({last_seq} = {seq} AND {last_rank} < {rank})");
            if state.last_type == crate::EventKind::Start.as_str() {
                format!("attribute_not_exists({last_seq}) OR {later} OR {last_ts} < {ts}")
            } else {
                let start = expr.value(&crate::EventKind::Start.rank())?;
                format!(
                    "attribute_not_exists({last_seq}) OR (({later}) AND NOT ({last_rank} = {start} AND {last_ts} > {ts}))"
                )
            }
        }
        None => {
            let last_ts = expr.name("lastTs");
            let ts = expr.value(&state.last_ts)?;
            format!(
                "(attribute_not_exists({last_seq}) AND ({last_ts} < {ts} OR ({last_ts} = {ts} AND {last_rank} < {rank})))"
            )
        }
    };
    // A dimension the event does not send is removed: the row's are its newest event's, so a
    // session's value never depends on which of its older events were written first.
    let absent: Vec<String> = crate::breakdown::Dimension::ALL
        .into_iter()
        .filter(|&d| state.dimensions.get(d).is_none())
        .map(|d| expr.name(d.name()))
        .collect();
    let remove = match absent.is_empty() {
        true => String::new(),
        false => format!(" REMOVE {}", absent.join(", ")),
    };
    Ok(expr.finish(
        to_item(key, table, "a session key")?,
        format!("SET {assignments}, {started} = if_not_exists({started}, {recv}){remove}"),
        Some(format!("attribute_not_exists({pk}) OR {newer}")),
    ))
}

/// The marker of a viewer (`userId`) first seen with a session of a stream
/// ([`ItemKey::viewer`]): `SET firstRecord = if_not_exists(firstRecord, :record), seen = :now, expiresAt = :exp`,
/// with no condition, asking for `ALL_NEW`. The viewer is first seen by the stream record
/// `record_id` iff the marker's `firstRecord` comes back as `record_id`: a retry of that record finds its
/// own id (and its counter update's receipt keeps it from counting twice), any other record of
/// the same viewer (another session, the same session's row created again after it expired, a
/// record applied at once on another lane) finds the first one's. Every session start of the
/// viewer keeps the marker for the counters' retention from then (`expires_at`).
pub fn viewer_marker_request(
    table: &str,
    key: &ItemKey,
    record_id: &str,
    now: i64,
    expires_at: i64,
) -> Result<UpdateRequest, RequestError> {
    let mut expr = Expression::new(table);
    let (first, seen, expires) = (
        expr.name(VIEWER_FIRST_RECORD),
        expr.name("seen"),
        expr.name(EXPIRES_AT),
    );
    let (record, now, expires_at) = (
        expr.value(record_id)?,
        expr.value(&now)?,
        expr.value(&expires_at)?,
    );
    Ok(expr.finish(
        to_item(key, table, "a viewer marker key")?,
        format!(
            "SET {first} = if_not_exists({first}, {record}), {seen} = {now}, {expires} = {expires_at}"
        ),
        None,
    ))
}

/// The attribute of a viewer marker that names the stream record that first saw the viewer.
pub const VIEWER_FIRST_RECORD: &str = "firstRecord";

/// One counter request: `SET updatedAt, expiresAt[, r{key} = receipt] ADD b{bucket} delta …,
/// s{second} delta …, n{minute} count …, u{minute} count … REMOVE b{bucket} …, s{second} …,
/// n{minute} …, u{minute} …, r{old} …`.
/// With a receipt it is conditioned on the receipt's name: empty
/// (`attribute_not_exists`) for a first delivery, or holding exactly the receipt a redelivery
/// found there; a request that only removes has no condition (removing is idempotent).
pub fn counter_request(
    table: &str,
    request: &CounterRequest,
) -> Result<UpdateRequest, RequestError> {
    let mut expr = Expression::new(table);
    let updated = expr.name("updatedAt");
    let now = expr.value(&request.now)?;
    let expires = expr.name(EXPIRES_AT);
    let expires_at = expr.value(&request.expires_at)?;
    let mut update = format!("SET {updated} = {now}, {expires} = {expires_at}");
    let mut condition = None;
    if let Some(write) = &request.receipt {
        let name = expr.name(&write.key.attribute());
        let receipt = expr.value(&write.receipt.to_text())?;
        update.push_str(&format!(", {name} = {receipt}"));
        condition = Some(match &write.replaces {
            None => format!("attribute_not_exists({name})"),
            Some(old) => format!("{name} = {}", expr.value(&old.to_text())?),
        });
    }
    let buckets = request
        .deltas
        .iter()
        .map(|(bucket, delta)| (bucket_attribute(*bucket), delta));
    let starts = request
        .starts
        .iter()
        .map(|(second, delta)| (start_attribute(*second), delta));
    let new_sessions = request
        .new_sessions
        .iter()
        .map(|(minute, count)| (new_sessions_attribute(*minute), count));
    let new_viewers = request
        .new_viewers
        .iter()
        .map(|(minute, count)| (new_viewers_attribute(*minute), count));
    let adds = buckets
        .chain(starts)
        .chain(new_sessions)
        .chain(new_viewers)
        .map(|(name, delta)| Ok(format!("{} {}", expr.name(&name), expr.value(delta)?)))
        .collect::<Result<Vec<_>, RequestError>>()?;
    if !adds.is_empty() {
        update.push_str(&format!(" ADD {}", adds.join(", ")));
    }
    let attributes = request
        .prune
        .iter()
        .map(|b| bucket_attribute(*b))
        .chain(request.prune_starts.iter().map(|s| start_attribute(*s)))
        .chain((request.prune_new_sessions.iter()).map(|m| new_sessions_attribute(*m)))
        .chain((request.prune_new_viewers.iter()).map(|m| new_viewers_attribute(*m)))
        .chain(request.remove_receipts.iter().map(|k| k.attribute()));
    let removes: Vec<String> = attributes.map(|a| expr.name(&a)).collect();
    if !removes.is_empty() {
        update.push_str(&format!(" REMOVE {}", removes.join(", ")));
    }
    Ok(expr.finish(
        to_item(
            &ItemKey::live_counter(&request.stream_id),
            table,
            "a counter key",
        )?,
        update,
        condition,
    ))
}

/// Removes a receipt once its batch succeeded: `REMOVE r{key}` if it still holds `receipt` (a
/// receipt a later redelivery replaced stays).
pub fn receipt_release_request(
    table: &str,
    stream_id: &StreamId,
    key: ReceiptKey,
    receipt: &Receipt,
) -> Result<UpdateRequest, RequestError> {
    let mut expr = Expression::new(table);
    let name = expr.name(&key.attribute());
    let value = expr.value(&receipt.to_text())?;
    Ok(expr.finish(
        to_item(&ItemKey::live_counter(stream_id), table, "a counter key")?,
        format!("REMOVE {name}"),
        Some(format!("{name} = {value}")),
    ))
}

/// The attributes a lifetime write sets: the item's figures (all but the key) and its expiry.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LifetimeAttributes<'a> {
    #[serde(flatten)]
    figures: &'a LifetimeItem,
    expires_at: i64,
}

/// The condition every figures write is under: the item's `through` is still `known`'s (or the
/// item has none, when `known` has none), so no second is added twice.
fn through_condition(expr: &mut Expression, known: Option<i64>) -> Result<String, RequestError> {
    let through = expr.name("through");
    Ok(match known {
        Some(w) => format!("{through} = {}", expr.value(&w)?),
        // Not `attribute_not_exists`, which begins a first delivery's counter condition: a
        // log line or a test can tell the two writes apart by their text.
        None => format!("NOT attribute_exists({through})"),
    })
}

/// The lifetime write: `SET` every figure of `next` (expiring at `expires_at`) under the
/// condition that `through` is still `known`'s (see [`crate::figures`]).
pub fn lifetime_request(
    table: &str,
    stream_id: &StreamId,
    known: &LifetimeItem,
    next: &LifetimeItem,
    expires_at: i64,
) -> Result<UpdateRequest, RequestError> {
    let mut expr = Expression::new(table);
    let set = expr.assign_all(
        &LifetimeAttributes {
            figures: next,
            expires_at,
        },
        "a lifetime item",
    )?;
    let condition = through_condition(&mut expr, known.through)?;
    Ok(expr.finish(
        to_item(&ItemKey::lifetime(stream_id), table, "a lifetime key")?,
        format!("SET {set}"),
        Some(condition),
    ))
}

/// The hour write: `SET through = :to, x{m} = :highest, v{m} = :seconds …` for the minutes
/// `next` changed since `known`, under the condition that `through` is still `known`'s.
pub fn hour_request(
    table: &str,
    stream_id: &StreamId,
    known: &HourItem,
    next: &HourItem,
    expires_at: i64,
) -> Result<UpdateRequest, RequestError> {
    let mut expr = Expression::new(table);
    let mut set = Vec::with_capacity(4);
    let through = expr.name("through");
    set.push(format!("{through} = {}", expr.value(&next.through)?));
    let expires = expr.name(EXPIRES_AT);
    set.push(format!("{expires} = {}", expr.value(&expires_at)?));
    for (minute, figures) in next.changed_since(known) {
        let [highest, seconds, started] = minute_attributes(minute);
        let highest = expr.name(&highest);
        set.push(format!("{highest} = {}", expr.value(&figures.highest)?));
        let seconds = expr.name(&seconds);
        set.push(format!(
            "{seconds} = {}",
            expr.value(&figures.viewer_seconds)?
        ));
        if figures.sessions_started > 0 {
            let started = expr.name(&started);
            set.push(format!(
                "{started} = {}",
                expr.value(&figures.sessions_started)?
            ));
        }
    }
    let condition = through_condition(&mut expr, known.through)?;
    Ok(expr.finish(
        to_item(&ItemKey::hour(stream_id, next.hour), table, "an hour key")?,
        format!("SET {}", set.join(", ")),
        Some(condition),
    ))
}

pub(crate) fn to_item<T: Serialize>(
    value: &T,
    table: &str,
    what: &'static str,
) -> Result<Item, RequestError> {
    serde_dynamo::to_item(value).map_err(|source| RequestError {
        what,
        table: table.to_owned(),
        source,
    })
}

/// Placeholders for an expression: `#n0`, `#n1`… for names and `:v0`, `:v1`… for values, so
/// no attribute name or value is ever spliced into expression text.
struct Expression<'a> {
    table: &'a str,
    names: HashMap<String, String>,
    values: Item,
}

impl<'a> Expression<'a> {
    fn new(table: &'a str) -> Self {
        Self {
            table,
            names: HashMap::with_capacity(16),
            values: HashMap::with_capacity(16),
        }
    }

    /// The placeholder of `attribute` (a request names a few dozen attributes at most, so a scan
    /// is cheaper than a second map).
    fn name(&mut self, attribute: &str) -> String {
        if let Some((placeholder, _)) = self.names.iter().find(|(_, a)| *a == attribute) {
            return placeholder.clone();
        }
        let placeholder = format!("#n{}", self.names.len());
        self.names.insert(placeholder.clone(), attribute.to_owned());
        placeholder
    }

    fn value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<String, RequestError> {
        let value = serde_dynamo::to_attribute_value(value).map_err(|source| RequestError {
            what: "an expression value",
            table: self.table.to_owned(),
            source,
        })?;
        Ok(self.placeholder(value))
    }

    fn placeholder(&mut self, value: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    /// `#a = :a, #b = :b, …` for every attribute `value` serializes to (its names are new to the
    /// expression: this is called first).
    fn assign_all<T: Serialize>(
        &mut self,
        value: &T,
        what: &'static str,
    ) -> Result<String, RequestError> {
        let mut attributes: Vec<(String, AttributeValue)> =
            to_item(value, self.table, what)?.into_iter().collect();
        attributes.sort_by(|a, b| a.0.cmp(&b.0));
        let mut assignments = String::with_capacity(attributes.len() * 12);
        for (attribute, value) in attributes {
            let name = match self.names.iter().find(|(_, a)| **a == attribute) {
                Some((placeholder, _)) => placeholder.clone(),
                None => {
                    let placeholder = format!("#n{}", self.names.len());
                    self.names.insert(placeholder.clone(), attribute);
                    placeholder
                }
            };
            if !assignments.is_empty() {
                assignments.push_str(", ");
            }
            assignments.push_str(&name);
            assignments.push_str(" = ");
            assignments.push_str(&self.placeholder(value));
        }
        Ok(assignments)
    }

    fn finish(self, key: Item, update: String, condition: Option<String>) -> UpdateRequest {
        UpdateRequest {
            table: self.table.to_owned(),
            key,
            update,
            condition,
            names: self.names,
            values: self.values,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histogram::{KnownCounter, SequenceNumber, SessionMove, plan_counter_update, runs};
    use crate::timing::Timing;
    use std::collections::BTreeSet;

    const NOW: i64 = 1_700_000_000;

    fn stream(text: &str) -> StreamId {
        StreamId::parse(text).expect("valid")
    }

    fn session_key(stream_id: &str, shard: u32, session_id: &str) -> ItemKey {
        let session = crate::ids::SessionId::parse(session_id).expect("valid");
        ItemKey::session(&stream(stream_id), shard, &session)
    }

    fn state() -> SessionState {
        SessionState {
            stream_id: "st".into(),
            exp_date: NOW + 15,
            last_ts: 5,
            last_seq: None,
            last_rank: 1,
            last_type: "heartbeat".into(),
            recv_at: NOW * 1000,
            watching: true,
            position: Some(1.5),
            user_id: Some("u".repeat(256)),
            dimensions: crate::breakdown::Dimensions {
                device: Some("d".repeat(32)),
                player: Some("p".repeat(32)),
                cdn: Some("c".repeat(32)),
                label: Some("l".repeat(32)),
                country: Some("g".repeat(32)),
            },
        }
    }

    /// The largest session row an event can make (128-character ids, a 256-character `userId`,
    /// every dimension at its longest, a position and a `seq`): within 1 KB, one write unit per
    /// event.
    #[test]
    fn the_largest_session_row_costs_one_write_unit() {
        let mut state = state();
        state.stream_id = "s".repeat(128);
        state.last_seq = Some(crate::event::MAX_SEQ);
        state.last_type = "heartbeat".into();
        let row = crate::model::SessionRow {
            key: session_key(&"s".repeat(128), 4095, &"x".repeat(128)),
            state,
            started_at: NOW * 1000,
        };
        let item: Item = serde_dynamo::to_item(&row).expect("maps");
        let size = crate::capacity::item_size(&item);
        assert!(size <= 1024, "{size} bytes");
    }

    #[test]
    fn operators_are_counted_conservatively() {
        assert_eq!(
            count_operators("attribute_not_exists(#n0) OR #n0 <> :v1"),
            3
        );
        assert_eq!(
            count_operators("SET #a = :a, #b = :b ADD #c :c REMOVE #d, #e"),
            7
        );
        assert_eq!(count_operators("SET #s = if_not_exists(#s, :r)"), 4);
    }

    #[test]
    fn the_session_write_is_conditioned_on_order() {
        let request = session_write_request("sessions", &session_key("st", 3, "a"), &state())
            .expect("builds");
        let condition = request.condition.as_deref().expect("a condition");
        let name = |attribute: &str| {
            request
                .names
                .iter()
                .find(|(_, a)| *a == attribute)
                .map(|(p, _)| p.clone())
                .expect("named")
        };
        assert!(condition.starts_with(&format!("attribute_not_exists({})", name("PK"))));
        assert!(condition.contains(&format!("{} <", name("lastTs"))));
        assert!(condition.contains(&format!("(attribute_not_exists({}) AND", name("lastSeq"))));
        assert!(
            request
                .update
                .contains(&format!("{} = if_not_exists(", name("startedAt")))
        );
        assert_eq!(
            request.key.get("PK"),
            Some(&AttributeValue::S("st#3".into()))
        );
        assert!(request.within_limits(), "{} operators", request.operators());
    }

    /// With `seq`, a `start` also replaces an event with an earlier `ts` (a reloaded player's new
    /// run); every other kind is refused by a `start` with a later `ts`.
    #[test]
    fn a_sequenced_start_may_begin_a_new_run_and_nothing_else_may() {
        let key = session_key("st", 3, "a");
        for (kind, new_run) in [("start", true), ("heartbeat", false), ("stop", false)] {
            let state = SessionState {
                last_seq: Some(0),
                last_type: kind.into(),
                ..state()
            };
            let request = session_write_request("sessions", &key, &state).expect("builds");
            let condition = request.condition.as_deref().expect("a condition");
            let last_ts = request
                .names
                .iter()
                .find(|(_, a)| *a == "lastTs")
                .map(|(p, _)| p.clone());
            let name = last_ts.expect("lastTs named");
            assert_eq!(
                condition.contains(&format!(" OR {name} < ")),
                new_run,
                "{kind}: {condition}"
            );
            assert_eq!(
                condition.contains(&format!("{name} > ")),
                !new_run,
                "{kind}: {condition}"
            );
        }
    }

    fn moves(rng: &mut fastrand::Rng, count: usize) -> Vec<SessionMove> {
        (0..count)
            .map(|i| {
                let at = NOW - rng.i64(0..40);
                let mut bucket = || rng.bool().then(|| NOW - 120 + 5 * rng.i64(0..2_000));
                SessionMove {
                    stream_id: stream("s"),
                    record_id: format!("{i}"),
                    sequence: SequenceNumber::parse("1").expect("digits"),
                    at,
                    left: bucket(),
                    joined: bucket(),
                    new_session: rng.bool(),
                    new_viewer: false,
                }
            })
            .collect()
    }

    /// Property: whatever a batch holds (up to Lambda's 10,000 records, over many streams and
    /// buckets, with a long list of known buckets to prune), every counter request the store
    /// would send is inside DynamoDB's expression limits, and the requests together carry out
    /// the plan.
    #[test]
    fn every_counter_request_is_inside_dynamodb_limits_for_any_batch() {
        let mut rng = fastrand::Rng::with_seed(0x1e55);
        let timing = Timing::default();
        for case in 0..200 {
            let count = if case % 20 == 0 {
                10_000
            } else {
                rng.usize(1..600)
            };
            let known = KnownCounter {
                buckets: (0..rng.i64(0..500)).map(|i| NOW - 9_000 + 5 * i).collect(),
                starts: (0..rng.i64(0..500)).map(|i| NOW - 600 + i).collect(),
                new_sessions: (0..rng.i64(0..20))
                    .map(|i| NOW - NOW % 60 - 60 * i)
                    .collect(),
                new_viewers: (0..rng.i64(0..20))
                    .map(|i| NOW - NOW % 60 - 60 * i)
                    .collect(),
                receipts: Default::default(),
            };
            let batch = moves(&mut rng, count);
            for run in batch.chunks(rng.usize(1..=count)).flat_map(runs) {
                let Some(plan) =
                    plan_counter_update(&stream("s"), run, 0, None, &known, &timing, NOW)
                else {
                    continue;
                };
                let mut actions = 0;
                for part in plan.requests(NOW + 86_400) {
                    let request = counter_request("counters", &part).expect("builds");
                    assert!(
                        request.within_limits(),
                        "{} operators, {} bytes",
                        request.operators(),
                        request.expression_bytes()
                    );
                    actions += part.deltas.len()
                        + part.starts.len()
                        + part.prune.len()
                        + part.prune_starts.len();
                }
                let planned = plan.deltas.len()
                    + plan.starts.len()
                    + plan.prune.len()
                    + plan.prune_starts.len();
                assert_eq!(actions, planned);
            }
        }
    }

    #[test]
    fn a_counter_request_adds_removes_and_writes_its_receipt_under_its_condition() {
        let batch = moves(&mut fastrand::Rng::with_seed(1), 20);
        let known = KnownCounter {
            buckets: BTreeSet::from([NOW - 500]),
            ..KnownCounter::default()
        };
        let plan = plan_counter_update(
            &stream("s"),
            &batch,
            0,
            None,
            &known,
            &Timing::default(),
            NOW,
        )
        .expect("plan");
        let part = &plan.requests(NOW + 86_400)[0];
        let request = counter_request("counters", part).expect("builds");
        let write = part.receipt.expect("a receipt");
        let placeholder = |request: &UpdateRequest, attribute: &str| {
            request
                .names
                .iter()
                .find(|(_, a)| **a == attribute)
                .map(|(p, _)| p.clone())
                .expect("named")
        };
        let name = placeholder(&request, &write.key.attribute());
        assert_eq!(
            request.condition.as_deref(),
            Some(format!("attribute_not_exists({name})").as_str())
        );
        assert!(
            request
                .values
                .values()
                .any(|v| v == &AttributeValue::S(write.receipt.to_text()))
        );
        assert!(request.update.contains(" ADD ") && request.update.contains(" REMOVE "));
        assert!(
            request
                .names
                .values()
                .any(|a| a == &format!("b{}", NOW - 500))
        );
        assert_eq!(
            request.key.get("SK"),
            Some(&AttributeValue::S("live".into()))
        );

        // A redelivery replaces exactly the receipt it found.
        let found = write.receipt;
        let again = plan_counter_update(
            &stream("s"),
            &batch,
            5,
            Some(found),
            &known,
            &Timing::default(),
            NOW + 1,
        )
        .expect("plan");
        let request =
            counter_request("counters", &again.requests(NOW + 86_400)[0]).expect("builds");
        let name = placeholder(&request, &write.key.attribute());
        let (old, _) = request
            .values
            .iter()
            .find(|(_, v)| **v == AttributeValue::S(found.to_text()))
            .expect("the old receipt is a value");
        assert_eq!(
            request.condition.as_deref(),
            Some(format!("{name} = {old}").as_str())
        );

        let release =
            receipt_release_request("counters", &stream("s"), write.key, &found).expect("builds");
        assert!(release.update.starts_with("REMOVE "));
        assert!(
            release
                .condition
                .as_deref()
                .is_some_and(|c| c.contains(" = "))
        );
        assert!(release.within_limits());
    }

    /// The marker sets its first record only if none is there, refreshes the rest, has no
    /// condition (it is never refused: its answer is what it returns), and names the record, not
    /// the viewer.
    #[test]
    fn a_viewer_marker_keeps_its_first_record_and_refreshes_its_expiry() {
        let key = ItemKey::viewer(&stream("s"), 8, "ada@example.com");
        let request =
            viewer_marker_request("viewers", &key, "record-1", NOW, NOW + 86_400).expect("builds");
        assert_eq!(
            request.update,
            "SET #n0 = if_not_exists(#n0, :v0), #n1 = :v1, #n2 = :v2"
        );
        assert_eq!(request.names["#n0"], VIEWER_FIRST_RECORD);
        assert_eq!(request.names["#n1"], "seen");
        assert_eq!(request.names["#n2"], EXPIRES_AT);
        assert_eq!(request.values[":v0"], AttributeValue::S("record-1".into()));
        assert_eq!(
            request.values[":v2"],
            AttributeValue::N((NOW + 86_400).to_string())
        );
        assert_eq!(request.condition, None);
        assert!(request.within_limits());
        let text = format!("{request:?}");
        assert!(!text.contains("ada"), "the userId is not sent: {text}");
        // The key: the viewer's shard of 8 under the stream, a 64-digit hex SHA-256.
        let partition = crate::ids::SessionPartition::parse(&key.pk).expect("a partition");
        assert_eq!(partition.stream_id.as_str(), "s");
        assert!(partition.shard < 8);
        assert_eq!(key.sk.len(), 64);
        assert!(key.sk.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(key, ItemKey::viewer(&stream("s"), 8, "ada@example.com"));
        assert_ne!(key.sk, ItemKey::viewer(&stream("s"), 8, "grace").sk);
    }

    #[test]
    fn figures_writes_set_what_changed_under_the_known_through() {
        use crate::figures::Settled;
        let hour = crate::figures::hour_of(NOW);
        let settled = Settled {
            from: hour,
            seconds: vec![(hour + 5, 3), (hour + 70, 4)],
            through: hour + 70,
            missed: 0,
            ..Settled::default()
        };
        let known = HourItem::empty("s", hour);
        let next = known.with(&settled);
        let request = hour_request("counters", &stream("s"), &known, &next, NOW).expect("builds");
        for name in ["x0", "v0", "x1", "v1", "through", "expiresAt"] {
            assert!(request.names.values().any(|a| a == name), "{name}");
        }
        assert!(
            request
                .condition
                .as_deref()
                .is_some_and(|c| c.starts_with("NOT attribute_exists("))
        );
        let later = next.with(&Settled {
            from: hour + 71,
            seconds: vec![(hour + 71, 9)],
            through: hour + 71,
            missed: 0,
            ..Settled::default()
        });
        let request = hour_request("counters", &stream("s"), &next, &later, NOW).expect("builds");
        assert!(
            !request.names.values().any(|a| a == "x0"),
            "minute 0 did not change"
        );
        let (w, _) = request
            .values
            .iter()
            .find(|(_, v)| **v == AttributeValue::N((hour + 70).to_string()))
            .expect("the known through is a value");
        assert!(
            request
                .condition
                .as_deref()
                .is_some_and(|c| c.ends_with(&format!(" = {w}")))
        );
        assert_eq!(
            request.key.get("SK"),
            Some(&AttributeValue::S(format!("m{hour}")))
        );
        assert!(request.within_limits());

        let known = LifetimeItem::default();
        let next = known.with(&settled);
        let request =
            lifetime_request("counters", &stream("s"), &known, &next, NOW).expect("builds");
        for name in [
            "through",
            "peak",
            "peakAt",
            "viewerSeconds",
            "firstAt",
            "lastAt",
        ] {
            assert!(request.names.values().any(|a| a == name), "{name}");
        }
        assert_eq!(
            request.key.get("SK"),
            Some(&AttributeValue::S("lifetime".into()))
        );
        assert!(request.within_limits());
    }

    #[test]
    fn the_largest_hour_write_fits_one_request() {
        use crate::figures::{MAX_PUBLICATION_SECONDS, Settled};
        // The most minutes one publication changes: a second before a minute, then its half
        // hour, every second watched and every minute with sessions started.
        let hour = crate::figures::hour_of(NOW);
        let (from, to) = (hour + 59, hour + 59 + MAX_PUBLICATION_SECONDS);
        let settled = Settled {
            from,
            seconds: (from..=to).map(|t| (t, 9_999_999)).collect(),
            through: to,
            missed: 0,
            new_sessions: (0..=31).map(|m| (hour + 60 * m, 9_999_999)).collect(),
            new_viewers: (0..=31).map(|m| (hour + 60 * m, 9_999_999)).collect(),
        };
        let known = HourItem::empty("s".repeat(128).as_str(), hour);
        let next = known.with(&settled);
        assert_eq!(
            next.minutes.len(),
            32,
            "minute 0's last second, then 31 more"
        );
        let request = hour_request("counters", &stream(&"s".repeat(128)), &known, &next, NOW)
            .expect("builds");
        assert!(request.within_limits(), "{} operators", request.operators());
    }
}
