//! The public edge's rules (`docs/design.md`, "The public edge"): what one request from the
//! internet may carry, and the reason each refused request is counted under. One request is what
//! one player sends: the events of one session, at most [`MAX_PLAYER_EVENTS`] of them in at most
//! [`MAX_PLAYER_BODY_BYTES`], each with a valid token when sessions are signed. Relays that
//! batch many sessions send to the events queue instead (IAM-signed `SendMessage`).
//!
//! Everything here is decided before a write or a queue message is spent on the request.

use crate::event::{InvalidBody, InvalidEvent, PlayerEvent, parse_body};
use crate::token::{TokenError, VerifyToken};

/// The largest body the public edge takes. One event is about 200 bytes with its token.
pub const MAX_PLAYER_BODY_BYTES: usize = 4096;

/// Most events one public request may carry (the web client sends one; a player that queued a
/// few while offline may send them together).
pub const MAX_PLAYER_EVENTS: usize = 4;

/// How old the count an edge answer carries may be, ms: an edge instance reads a stream's live
/// counter at most this often, whatever the audience it serves.
pub const COUNT_MAX_AGE_MS: i64 = 1000;

/// Why the public edge refused a request. Each reason is a metric ([`Refusal::metric`]).
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("the body is {bytes} bytes; one player's request is at most {MAX_PLAYER_BODY_BYTES}")]
    TooLarge { bytes: usize },
    #[error(
        "the body holds {count} events; one player's request is at most {MAX_PLAYER_EVENTS} (relays send to the events queue)"
    )]
    TooManyEvents { count: usize },
    #[error("{0}")]
    Body(#[source] InvalidBody),
    #[error("event {index}: {reason}")]
    Event { index: usize, reason: InvalidEvent },
    #[error(
        "the body holds events of more than one session; one request is one player's (relays send to the events queue)"
    )]
    ManySessions,
    #[error("event {index}: {reason}")]
    Token { index: usize, reason: TokenError },
    #[error("this deployment takes events only through its shield (the CDN in front of the edge)")]
    Bypass,
}

/// The refusal metrics, in [`Refusal::metric`]'s terms (`infra/contract.json`, `edge`).
pub const REFUSAL_METRICS: [&str; 7] = [
    "RefusedInvalid",
    "RefusedTooLarge",
    "RefusedManySessions",
    "RefusedUnsigned",
    "RefusedForged",
    "RefusedExpired",
    "RefusedBypass",
];

impl Refusal {
    /// The metric this refusal is counted under: one of [`REFUSAL_METRICS`].
    pub fn metric(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } | Self::TooManyEvents { .. } => "RefusedTooLarge",
            Self::Body(InvalidBody::TooLarge { .. } | InvalidBody::TooManyEvents { .. }) => {
                "RefusedTooLarge"
            }
            Self::Body(_) | Self::Event { .. } => "RefusedInvalid",
            Self::ManySessions => "RefusedManySessions",
            Self::Token {
                reason: TokenError::Missing,
                ..
            } => "RefusedUnsigned",
            Self::Token {
                reason: TokenError::Malformed | TokenError::Wrong,
                ..
            } => "RefusedForged",
            Self::Token {
                reason: TokenError::Expired { .. },
                ..
            } => "RefusedExpired",
            Self::Bypass => "RefusedBypass",
        }
    }

    /// The HTTP status this refusal is answered with: 413 for a body too large, 401 for a
    /// missing token, 403 for a forged or expired one, 400 otherwise.
    pub fn status(&self) -> u16 {
        match self.metric() {
            "RefusedTooLarge" => 413,
            "RefusedUnsigned" => 401,
            "RefusedForged" | "RefusedExpired" | "RefusedBypass" => 403,
            _ => 400,
        }
    }
}

/// Checks one public request's body at `now` (epoch seconds): its size, its events, that they
/// are one session's, and, with `keys`, each event's token. Returns the events, in order.
pub fn check_player_request(
    body: &str,
    keys: Option<&dyn VerifyToken>,
    now: i64,
) -> Result<Vec<PlayerEvent>, Refusal> {
    if body.len() > MAX_PLAYER_BODY_BYTES {
        return Err(Refusal::TooLarge { bytes: body.len() });
    }
    let parsed = parse_body(body).map_err(Refusal::Body)?;
    if parsed.events.len() > MAX_PLAYER_EVENTS {
        return Err(Refusal::TooManyEvents {
            count: parsed.events.len(),
        });
    }
    let mut events = Vec::with_capacity(parsed.events.len());
    for (index, event) in parsed.events.into_iter().enumerate() {
        let event = event.map_err(|reason| Refusal::Event { index, reason })?;
        if let Some(first) = events.first() {
            let first: &PlayerEvent = first;
            if first.stream_id != event.stream_id || first.session_id != event.session_id {
                return Err(Refusal::ManySessions);
            }
        }
        if let Some(keys) = keys {
            keys.verify(
                event.token.as_deref(),
                &event.stream_id,
                &event.session_id,
                now,
            )
            .map_err(|reason| Refusal::Token { index, reason })?;
        }
        events.push(event);
    }
    Ok(events)
}

/// The header CloudFront adds with the viewer's country, when the origin request policy lists it
/// (the flood shield's does): an ISO 3166-1 alpha-2 code.
pub const VIEWER_COUNTRY_HEADER: &str = "cloudfront-viewer-country";

/// The `country` a session counts under, from [`VIEWER_COUNTRY_HEADER`]'s value: two capital
/// letters, as CloudFront sends them; anything else (absent, empty, longer, lower case, not
/// UTF-8) is no country, never an error, as a viewer's request is not at fault for its CDN.
pub fn viewer_country(header: Option<&[u8]>) -> Option<String> {
    let value = header?;
    (value.len() == 2 && value.iter().all(u8::is_ascii_uppercase))
        .then(|| String::from_utf8_lossy(value).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::{TokenKeys, TokenSecret};

    #[test]
    fn viewer_country_is_two_capital_letters_or_none() {
        assert_eq!(viewer_country(Some(b"US")).as_deref(), Some("US"));
        assert_eq!(viewer_country(Some(b"GB")).as_deref(), Some("GB"));
        for refused in [&b""[..], b"U", b"us", b"USA", b"U1", b"\xc3\x9c", b"  "] {
            assert_eq!(viewer_country(Some(refused)), None, "{refused:?}");
        }
        assert_eq!(viewer_country(None), None);
    }

    fn keys() -> TokenKeys {
        TokenSecret::new(b"0123456789abcdef".to_vec())
            .expect("16 bytes")
            .into()
    }

    fn event(stream: &str, session: &str, token: Option<String>) -> String {
        let mut e = serde_json::json!({
            "streamId": stream, "sessionId": session, "type": "heartbeat", "ts": 1_000, "seq": 1
        });
        if let Some(token) = token {
            e["token"] = token.into();
        }
        e.to_string()
    }

    fn token(stream: &str, session: &str, expiry: i64) -> Option<String> {
        let stream = crate::ids::StreamId::parse(stream).expect("valid");
        let session = crate::ids::SessionId::parse(session).expect("valid");
        Some(keys().current.sign(&stream, &session, expiry))
    }

    fn refusal(body: &str) -> &'static str {
        match check_player_request(body, Some(&keys() as &dyn VerifyToken), 100) {
            Ok(_) => "accepted",
            Err(refusal) => refusal.metric(),
        }
    }

    #[test]
    fn one_players_signed_events_are_accepted() {
        let one = event("s", "a", token("s", "a", 200));
        let events =
            check_player_request(&one, Some(&keys() as &dyn VerifyToken), 100).expect("accepted");
        assert_eq!(events.len(), 1);
        let four = format!("[{one},{one},{one},{one}]");
        assert_eq!(refusal(&four), "accepted");
        // Unsigned deployments check everything but the token.
        let unsigned = event("s", "a", None);
        assert!(check_player_request(&unsigned, None, 100).is_ok());
    }

    #[test]
    fn each_refusal_has_its_reason_and_status() {
        let signed =
            |stream: &str, session: &str| event(stream, session, token(stream, session, 200));
        let cases = [
            (event("s", "a", None), "RefusedUnsigned", 401),
            (
                event("s", "a", Some("v1.200.AAAA".into())),
                "RefusedForged",
                403,
            ),
            (
                event("s", "a", Some("nonsense".into())),
                "RefusedForged",
                403,
            ),
            // A token of another stream (swapped) or another session is forged for this one.
            (event("t", "a", token("s", "a", 200)), "RefusedForged", 403),
            (event("s", "b", token("s", "a", 200)), "RefusedForged", 403),
            (event("s", "a", token("s", "a", 99)), "RefusedExpired", 403),
            (
                format!("[{},{}]", signed("s", "a"), signed("s", "b")),
                "RefusedManySessions",
                400,
            ),
            (
                format!("[{},{}]", signed("s", "a"), signed("t", "a")),
                "RefusedManySessions",
                400,
            ),
            (
                format!("[{}]", vec![signed("s", "a"); 5].join(",")),
                "RefusedTooLarge",
                413,
            ),
            (
                " ".repeat(MAX_PLAYER_BODY_BYTES + 1),
                "RefusedTooLarge",
                413,
            ),
            ("{\"streamId\":\"s\"}".to_owned(), "RefusedInvalid", 400),
            ("not json".to_owned(), "RefusedInvalid", 400),
            ("[]".to_owned(), "RefusedInvalid", 400),
        ];
        for (body, metric, status) in cases {
            let refused = check_player_request(&body, Some(&keys() as &dyn VerifyToken), 100)
                .expect_err("refused");
            assert_eq!(refused.metric(), metric, "{body:.80}: {refused}");
            assert_eq!(refused.status(), status, "{body:.80}");
            assert!(REFUSAL_METRICS.contains(&refused.metric()));
        }
    }

    #[test]
    fn a_refusal_names_the_event_and_the_rule() {
        let body = format!(
            "[{},{}]",
            event("s", "a", token("s", "a", 200)),
            event("s", "a", None)
        );
        let refused = check_player_request(&body, Some(&keys() as &dyn VerifyToken), 100)
            .expect_err("refused");
        assert_eq!(
            refused.to_string(),
            "event 1: `token` is missing; this deployment only counts signed sessions"
        );
    }
}
