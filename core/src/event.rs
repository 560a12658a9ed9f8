//! Player events (`docs/design.md`, "The model"; the README's "Events"): the SQS message body, its validation, and the clear reason given
//! for every message that breaks a rule.

use chrono::DateTime;
use serde::Deserialize;
use serde_json::Value;
use std::fmt;

/// Largest message body accepted, in bytes (SQS itself caps bodies at 256 KiB).
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Most events one body may carry as a JSON array.
pub const MAX_EVENTS_PER_BODY: usize = 500;
/// Longest `userId` kept on the session row.
pub const MAX_TEXT_CHARS: usize = 256;
/// How much of a dimension's value (`device`, `player`, `cdn`, `label`, `country`) the session
/// row keeps: every row stays within 1 KB, one write unit (a unit test builds the largest).
pub const MAX_DIMENSION_CHARS: usize = 32;
/// Latest `ts` accepted: 9999-12-31T23:59:59.999Z.
const MAX_TS_MS: i64 = 253_402_300_799_999;
/// Longest `token` read (a valid one is about 60 characters).
pub const MAX_TOKEN_CHARS: usize = 512;
/// Largest `seq` accepted: 2^53 - 1, the largest integer every JSON parser keeps exactly.
pub const MAX_SEQ: u64 = (1 << 53) - 1;

/// What a player says about its playback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventKind {
    // The order is the tie-break of equal `ts` or `seq`: stop > pause > heartbeat > start.
    Start,
    Heartbeat,
    Pause,
    Stop,
}

impl EventKind {
    /// `start` and `heartbeat` mean watching; `pause` and `stop` do not.
    pub fn is_watching(self) -> bool {
        matches!(self, Self::Start | Self::Heartbeat)
    }

    /// The rank used to order events with the same `ts` (higher wins).
    pub fn rank(self) -> u8 {
        self as u8
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Heartbeat => "heartbeat",
            Self::Pause => "pause",
            Self::Stop => "stop",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "start" => Self::Start,
            "heartbeat" => Self::Heartbeat,
            "pause" => Self::Pause,
            "stop" => Self::Stop,
            _ => return None,
        })
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One validated player event.
#[derive(Debug, Clone, PartialEq)]
pub struct PlayerEvent {
    pub stream_id: crate::ids::StreamId,
    pub session_id: crate::ids::SessionId,
    pub kind: EventKind,
    /// The player's clock in epoch milliseconds; it only orders one session's events (those
    /// without `seq`), and ingest bounds it by the receive time ([`Self::received_at`]).
    pub ts: i64,
    /// The player's own counter, increased with every event of the session: when present it
    /// orders the session's events instead of `ts`.
    pub seq: Option<u64>,
    /// The signed-session token (see [`crate::token`]), checked by ingest when configured.
    pub token: Option<String>,
    pub position: Option<f64>,
    pub user_id: Option<String>,
    /// `device`, `player`, `cdn`, `label` and `country` (the breakdowns' dimensions).
    pub dimensions: crate::breakdown::Dimensions,
}

/// Where an event stands among its session's events (higher is newer): events with `seq` come
/// after every event without it, and are ordered by `seq`; the others by `ts`; ties by kind
/// (`stop` > `pause` > `heartbeat` > `start`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EventOrder {
    pub sequenced: bool,
    /// `seq`, or `ts` in epoch ms.
    pub value: i64,
    pub rank: u8,
}

impl PlayerEvent {
    /// Whether this event replaces `held` as its session's newest. By [`Self::order`], with one
    /// rule for players reloaded with the same `sessionId` that restart their `seq`: between
    /// events that both carry `seq`, a `start` begins a new run, so a `start` with a later `ts`
    /// (bounded by the receive time) replaces `held` whatever the two `seq`s, and an event with
    /// an earlier `ts` than a held `start` (the old page's last heartbeat or `stop`, delivered
    /// late) does not replace it. A replayed old `start` is never later than the `stop` that
    /// followed it, so it cannot bring a viewer back. (The session write's condition is the same
    /// rule, `crate::requests::session_write_request`.)
    pub fn supersedes(&self, held: &PlayerEvent) -> bool {
        if self.seq.is_some() && held.seq.is_some() {
            if self.kind == EventKind::Start && self.ts > held.ts {
                return true;
            }
            if held.kind == EventKind::Start && held.ts > self.ts {
                return false;
            }
        }
        self.order() > held.order()
    }

    /// The order of events of one session (see [`EventOrder`]).
    pub fn order(&self) -> EventOrder {
        EventOrder {
            sequenced: self.seq.is_some(),
            value: self.seq.map_or(self.ts, |seq| seq as i64),
            rank: self.kind.rank(),
        }
    }

    /// The event as received at `recv_ms` (the queue's clock): a `ts` later than that orders as
    /// `recv_ms`, so a device clock ahead of the server (one event dated 2100, a clock an hour
    /// fast) cannot make the session's later events look stale.
    pub fn received_at(mut self, recv_ms: i64) -> Self {
        self.ts = self.ts.min(recv_ms);
        self
    }
}

/// Why a whole message body was refused.
#[derive(Debug, thiserror::Error)]
pub enum InvalidBody {
    #[error("body is missing or empty")]
    Empty,
    #[error("body is {bytes} bytes; the limit is {MAX_BODY_BYTES}")]
    TooLarge { bytes: usize },
    #[error("body is not valid JSON")]
    NotJson(#[source] serde_json::Error),
    #[error("body must be a JSON object or an array of objects, not {found}")]
    NotObjectOrArray { found: &'static str },
    #[error("body is an empty array")]
    EmptyArray,
    #[error("body holds {count} events; the limit is {MAX_EVENTS_PER_BODY}")]
    TooManyEvents { count: usize },
}

/// Why one event of a body was refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum InvalidEvent {
    #[error("expected a JSON object, got {found}")]
    NotAnObject { found: &'static str },
    #[error("`{field}` is missing")]
    Missing { field: &'static str },
    #[error("`{field}` must be {expected}, got {found}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
        found: &'static str,
    },
    #[error(transparent)]
    Id(#[from] crate::ids::InvalidId),
    #[error("`type` is {found:?}; expected start, heartbeat, pause or stop")]
    UnknownType { found: String },
    #[error("`ts` is {found}; expected epoch milliseconds (0 to year 9999) or an RFC 3339 time")]
    BadTs { found: String },
    #[error("`seq` is {found}; expected a whole number from 0 to {MAX_SEQ}")]
    BadSeq { found: String },
    #[error(transparent)]
    Token(#[from] crate::token::TokenError),
}

/// A body's events, in order, each valid or with its reason.
#[derive(Debug)]
pub struct ParsedBody {
    pub events: Vec<Result<PlayerEvent, InvalidEvent>>,
    /// Whether the body was a JSON array (so reasons can name the element).
    pub is_array: bool,
}

/// Parses an SQS message body: one JSON event object, or a non-empty array of them.
pub fn parse_body(body: &str) -> Result<ParsedBody, InvalidBody> {
    if body.trim().is_empty() {
        return Err(InvalidBody::Empty);
    }
    if body.len() > MAX_BODY_BYTES {
        return Err(InvalidBody::TooLarge { bytes: body.len() });
    }
    let value: Value = serde_json::from_str(body).map_err(InvalidBody::NotJson)?;
    match value {
        Value::Object(_) => Ok(ParsedBody {
            events: vec![parse_event(value)],
            is_array: false,
        }),
        Value::Array(items) if items.is_empty() => Err(InvalidBody::EmptyArray),
        Value::Array(items) if items.len() > MAX_EVENTS_PER_BODY => {
            Err(InvalidBody::TooManyEvents { count: items.len() })
        }
        Value::Array(items) => Ok(ParsedBody {
            events: items.into_iter().map(parse_event).collect(),
            is_array: true,
        }),
        other => Err(InvalidBody::NotObjectOrArray {
            found: json_type(&other),
        }),
    }
}

/// The fields we read; everything else a player sends is ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEvent {
    stream_id: Option<Value>,
    session_id: Option<Value>,
    #[serde(rename = "type")]
    kind: Option<Value>,
    ts: Option<Value>,
    seq: Option<Value>,
    token: Option<Value>,
    position: Option<Value>,
    user_id: Option<Value>,
    device: Option<Value>,
    player: Option<Value>,
    cdn: Option<Value>,
    label: Option<Value>,
    country: Option<Value>,
}

/// Validates one event object against the rules of the README's "Events".
pub fn parse_event(value: Value) -> Result<PlayerEvent, InvalidEvent> {
    if !value.is_object() {
        return Err(InvalidEvent::NotAnObject {
            found: json_type(&value),
        });
    }
    // Every field is an `Option<Value>`, so an object always deserializes.
    let raw: RawEvent = serde_json::from_value(value).map_err(|_| InvalidEvent::NotAnObject {
        found: "an object with duplicate fields",
    })?;
    let stream_id = crate::ids::StreamId::parse(&id_text("streamId", raw.stream_id)?)?;
    let session_id = crate::ids::SessionId::parse(&id_text("sessionId", raw.session_id)?)?;
    let kind = match required("type", raw.kind)? {
        Value::String(text) => {
            EventKind::parse(&text).ok_or(InvalidEvent::UnknownType { found: text })?
        }
        other => return Err(wrong_type("type", "a string", &other)),
    };
    let ts = parse_ts(required("ts", raw.ts)?)?;
    let seq = match raw.seq {
        None | Some(Value::Null) => None,
        Some(value) => Some(parse_seq(value)?),
    };
    Ok(PlayerEvent {
        stream_id,
        session_id,
        kind,
        ts,
        seq,
        token: match raw.token {
            Some(Value::String(token)) if token.len() <= MAX_TOKEN_CHARS => Some(token),
            _ => None,
        },
        position: optional_position(raw.position),
        user_id: optional_text("userId", raw.user_id),
        dimensions: crate::breakdown::Dimensions {
            device: optional_dimension("device", raw.device),
            player: optional_dimension("player", raw.player),
            cdn: optional_dimension("cdn", raw.cdn),
            label: optional_dimension("label", raw.label),
            country: optional_dimension("country", raw.country),
        },
    })
}

fn required(field: &'static str, value: Option<Value>) -> Result<Value, InvalidEvent> {
    match value {
        None | Some(Value::Null) => Err(InvalidEvent::Missing { field }),
        Some(value) => Ok(value),
    }
}

/// The text of an id field, before its rules are checked.
fn id_text(field: &'static str, value: Option<Value>) -> Result<String, InvalidEvent> {
    match required(field, value)? {
        Value::String(id) => Ok(id),
        other => Err(wrong_type(field, "a string", &other)),
    }
}

fn parse_ts(value: Value) -> Result<i64, InvalidEvent> {
    let ms = match &value {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(text) => DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| t.timestamp_millis()),
        _ => None,
    };
    match ms {
        Some(ms) if (0..=MAX_TS_MS).contains(&ms) => Ok(ms),
        _ => Err(InvalidEvent::BadTs {
            found: describe(&value),
        }),
    }
}

fn parse_seq(value: Value) -> Result<u64, InvalidEvent> {
    match value.as_u64() {
        Some(seq) if seq <= MAX_SEQ => Ok(seq),
        _ => Err(InvalidEvent::BadSeq {
            found: describe(&value),
        }),
    }
}

/// The largest `position` kept, in seconds (about 31 years of playback).
pub const MAX_POSITION: f64 = 1e9;

/// Optional fields are kept when valid; an invalid one is left off the row (and logged), since
/// it says nothing about whether the viewer is watching. `position` is kept to the millisecond
/// and up to [`MAX_POSITION`], so it is always a number DynamoDB stores (its range is
/// 1e-130 to 1e126; a value outside it would fail the whole session write).
fn optional_position(value: Option<Value>) -> Option<f64> {
    match value? {
        Value::Null => None,
        Value::Number(n) => {
            let kept = n
                .as_f64()
                .filter(|p| p.is_finite() && (0.0..=MAX_POSITION).contains(p))
                .map(|p| (p * 1000.0).round() / 1000.0);
            if kept.is_none() {
                tracing::warn!(found = %n, "ignoring `position`: expected 0 to 1e9 seconds");
            }
            kept
        }
        other => {
            tracing::warn!(
                found = json_type(&other),
                "ignoring `position`: expected a number"
            );
            None
        }
    }
}

fn optional_text(field: &'static str, value: Option<Value>) -> Option<String> {
    match value? {
        Value::Null => None,
        Value::String(text) if !text.is_empty() && text.chars().count() <= MAX_TEXT_CHARS => {
            Some(text)
        }
        other => {
            tracing::warn!(
                field,
                found = json_type(&other),
                "ignoring optional field: expected a string of 1-{MAX_TEXT_CHARS} characters"
            );
            None
        }
    }
}

/// A dimension's value: a non-empty string, kept to its first [`MAX_DIMENSION_CHARS`]
/// characters (no value a deployment lists is longer, so a longer one counts as `other`
/// whatever is cut).
fn optional_dimension(field: &'static str, value: Option<Value>) -> Option<String> {
    match value? {
        Value::Null => None,
        Value::String(text) if !text.is_empty() => {
            Some(text.chars().take(MAX_DIMENSION_CHARS).collect())
        }
        other => {
            tracing::warn!(
                field,
                found = json_type(&other),
                "ignoring optional field: expected a string"
            );
            None
        }
    }
}

fn wrong_type(field: &'static str, expected: &'static str, found: &Value) -> InvalidEvent {
    InvalidEvent::WrongType {
        field,
        expected,
        found: json_type(found),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A short rendering of a bad value for an error message (never the whole of a huge value).
fn describe(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 40 {
        format!("{}…", text.chars().take(40).collect::<String>())
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{InvalidId, MAX_ID_CHARS};
    use serde_json::json;

    fn event(fields: Value) -> Result<PlayerEvent, InvalidEvent> {
        parse_event(fields)
    }

    fn valid() -> Value {
        json!({"streamId": "s-1", "sessionId": "a", "type": "heartbeat", "ts": 1_700_000_000_000_i64})
    }

    fn with(field: &str, value: Value) -> Value {
        let mut event = valid();
        event[field] = value;
        event
    }

    fn without(field: &str) -> Value {
        let mut event = valid();
        event.as_object_mut().map(|o| o.remove(field));
        event
    }

    #[test]
    fn each_rule_gives_its_own_reason() {
        let long = "x".repeat(10 * 1024);
        let cases: Vec<(&str, Value, InvalidEvent)> = vec![
            (
                "missing streamId",
                without("streamId"),
                InvalidEvent::Missing { field: "streamId" },
            ),
            (
                "missing sessionId",
                without("sessionId"),
                InvalidEvent::Missing { field: "sessionId" },
            ),
            (
                "missing type",
                without("type"),
                InvalidEvent::Missing { field: "type" },
            ),
            (
                "missing ts",
                without("ts"),
                InvalidEvent::Missing { field: "ts" },
            ),
            (
                "null ts",
                with("ts", Value::Null),
                InvalidEvent::Missing { field: "ts" },
            ),
            (
                "number id",
                with("streamId", json!(7)),
                InvalidEvent::WrongType {
                    field: "streamId",
                    expected: "a string",
                    found: "a number",
                },
            ),
            (
                "empty id",
                with("sessionId", json!("")),
                InvalidEvent::Id(InvalidId::Empty { field: "sessionId" }),
            ),
            (
                "10 KB id",
                with("sessionId", json!(long)),
                InvalidEvent::Id(InvalidId::TooLong {
                    field: "sessionId",
                    chars: 10 * 1024,
                }),
            ),
            (
                "hash",
                with("streamId", json!("a#b")),
                InvalidEvent::Id(InvalidId::ReservedHash { field: "streamId" }),
            ),
            (
                "space",
                with("streamId", json!("a b")),
                InvalidEvent::Id(InvalidId::BadCharacter {
                    field: "streamId",
                    character: ' ',
                }),
            ),
            (
                "unknown type",
                with("type", json!("seek")),
                InvalidEvent::UnknownType {
                    found: "seek".into(),
                },
            ),
            (
                "type not a string",
                with("type", json!(["start"])),
                InvalidEvent::WrongType {
                    field: "type",
                    expected: "a string",
                    found: "an array",
                },
            ),
            (
                "ts text",
                with("ts", json!("yesterday")),
                InvalidEvent::BadTs {
                    found: "\"yesterday\"".into(),
                },
            ),
            (
                "ts negative",
                with("ts", json!(-1)),
                InvalidEvent::BadTs { found: "-1".into() },
            ),
            (
                "ts fraction",
                with("ts", json!(1.5)),
                InvalidEvent::BadTs {
                    found: "1.5".into(),
                },
            ),
            (
                "ts bool",
                with("ts", json!(true)),
                InvalidEvent::BadTs {
                    found: "true".into(),
                },
            ),
            (
                "ts past 9999",
                with("ts", json!(MAX_TS_MS + 1)),
                InvalidEvent::BadTs {
                    found: (MAX_TS_MS + 1).to_string(),
                },
            ),
            (
                "not an object",
                json!("hello"),
                InvalidEvent::NotAnObject { found: "a string" },
            ),
            (
                "negative seq",
                with("seq", json!(-1)),
                InvalidEvent::BadSeq { found: "-1".into() },
            ),
            (
                "fractional seq",
                with("seq", json!(2.5)),
                InvalidEvent::BadSeq {
                    found: "2.5".into(),
                },
            ),
            (
                "seq as a string",
                with("seq", json!("7")),
                InvalidEvent::BadSeq {
                    found: "\"7\"".into(),
                },
            ),
            (
                "seq past 2^53 - 1",
                with("seq", json!(MAX_SEQ + 1)),
                InvalidEvent::BadSeq {
                    found: (MAX_SEQ + 1).to_string(),
                },
            ),
        ];
        for (name, input, expected) in cases {
            assert_eq!(event(input).expect_err(name), expected, "{name}");
        }
    }

    #[test]
    fn seq_orders_a_session_and_is_optional() {
        assert_eq!(event(valid()).map(|e| e.seq), Ok(None));
        assert_eq!(event(with("seq", Value::Null)).map(|e| e.seq), Ok(None));
        assert_eq!(event(with("seq", json!(0))).map(|e| e.seq), Ok(Some(0)));
        assert_eq!(
            event(with("seq", json!(MAX_SEQ))).map(|e| e.seq),
            Ok(Some(MAX_SEQ))
        );
        let at = |seq: Option<u64>, ts: i64, kind: EventKind| PlayerEvent {
            seq,
            ts,
            kind,
            ..event(valid()).expect("valid")
        };
        // seq orders, whatever the clock says
        assert!(
            at(Some(2), 0, EventKind::Heartbeat).order()
                > at(Some(1), 9_000, EventKind::Stop).order()
        );
        // equal seq: by kind
        assert!(
            at(Some(2), 0, EventKind::Stop).order() > at(Some(2), 0, EventKind::Heartbeat).order()
        );
        // an event with seq is newer than any without
        assert!(
            at(Some(0), 0, EventKind::Start).order() > at(None, i64::MAX, EventKind::Stop).order()
        );
        // without seq: ts, then kind
        assert!(at(None, 2, EventKind::Start).order() > at(None, 1, EventKind::Stop).order());
    }

    #[test]
    fn a_ts_after_the_receive_time_orders_as_the_receive_time() {
        let year_2100 = 4_102_444_800_000;
        let e = event(with("ts", json!(year_2100))).expect("valid");
        assert_eq!(
            e.clone().received_at(1_700_000_000_000).ts,
            1_700_000_000_000
        );
        assert_eq!(e.received_at(year_2100 + 1).ts, year_2100);
    }

    #[test]
    fn ts_may_be_epoch_millis_or_rfc3339() {
        assert_eq!(event(valid()).map(|e| e.ts), Ok(1_700_000_000_000));
        let rfc = with("ts", json!("2023-11-14T22:13:20.250Z"));
        assert_eq!(event(rfc).map(|e| e.ts), Ok(1_700_000_000_250));
        let offset = with("ts", json!("2023-11-14T23:13:20+01:00"));
        assert_eq!(event(offset).map(|e| e.ts), Ok(1_700_000_000_000));
        assert_eq!(
            event(with("ts", json!(1.7e12))).map(|e| e.ts),
            Ok(1_700_000_000_000)
        );
    }

    #[test]
    fn ids_allow_exactly_the_documented_characters() {
        let id = "Az09._:-".repeat(16);
        assert_eq!(id.len(), MAX_ID_CHARS);
        assert_eq!(
            event(with("sessionId", json!(id.clone()))).map(|e| e.session_id.to_string()),
            Ok(id)
        );
        assert!(event(with("sessionId", json!("x".repeat(MAX_ID_CHARS + 1)))).is_err());
        assert!(event(with("sessionId", json!("é"))).is_err());
    }

    #[test]
    fn optional_fields_are_kept_when_valid_and_unknown_fields_ignored() {
        let mut input = valid();
        input["position"] = json!(12.5);
        input["userId"] = json!("u-9");
        input["device"] = json!(42);
        input["bitrate"] = json!(3000);
        let parsed = event(input).expect("valid");
        assert_eq!(parsed.position, Some(12.5));
        assert_eq!(parsed.user_id.as_deref(), Some("u-9"));
        assert_eq!(parsed.dimensions.device, None);
    }

    /// DynamoDB refuses numbers beyond 1e126 or below 1e-130 in magnitude (DynamoDB Local:
    /// "Number overflow"), which would fail the session write of a valid heartbeat.
    #[test]
    fn a_position_dynamodb_could_not_store_is_left_off() {
        for (given, kept) in [
            (json!(1e300), None),
            (json!(1e10), None),
            (json!(-1.0), None),
            (json!(1e-200), Some(0.0)),
            (json!(5400.1254), Some(5400.125)),
            (json!(1e9), Some(1e9)),
        ] {
            let mut input = valid();
            input["position"] = given.clone();
            assert_eq!(event(input).expect("valid").position, kept, "{given}");
        }
    }

    #[test]
    fn every_type_parses_and_only_start_and_heartbeat_watch() {
        for (text, watching) in [
            ("start", true),
            ("heartbeat", true),
            ("pause", false),
            ("stop", false),
        ] {
            let parsed = event(with("type", json!(text))).expect(text);
            assert_eq!(parsed.kind.as_str(), text);
            assert_eq!(parsed.kind.is_watching(), watching, "{text}");
        }
    }

    #[test]
    fn bodies_are_an_object_or_a_non_empty_array() {
        let one = parse_body(&valid().to_string()).expect("object");
        assert!(!one.is_array);
        assert_eq!(one.events.len(), 1);

        let mixed = json!([valid(), with("type", json!("nope")), valid()]).to_string();
        let parsed = parse_body(&mixed).expect("array");
        assert!(parsed.is_array);
        let reasons: Vec<bool> = parsed.events.iter().map(Result::is_ok).collect();
        assert_eq!(reasons, [true, false, true]);

        assert!(matches!(parse_body("{"), Err(InvalidBody::NotJson(_))));
        assert!(matches!(parse_body(""), Err(InvalidBody::Empty)));
        assert!(matches!(parse_body("[]"), Err(InvalidBody::EmptyArray)));
        assert!(matches!(
            parse_body("42"),
            Err(InvalidBody::NotObjectOrArray { found: "a number" })
        ));
        let many = Value::Array(vec![valid(); MAX_EVENTS_PER_BODY + 1]).to_string();
        assert!(matches!(
            parse_body(&many),
            Err(InvalidBody::TooManyEvents { .. })
        ));
        let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(MAX_BODY_BYTES));
        assert!(matches!(
            parse_body(&huge),
            Err(InvalidBody::TooLarge { .. })
        ));
    }
}
