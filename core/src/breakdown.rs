//! Breakdowns (docs/design.md §3, "Breakdowns"): a stream's viewers by the value of a few
//! low-cardinality dimensions (device, player, CDN, a custom label, country).
//!
//! Each value of each dimension is counted as a stream of its own, a **value stream**
//! (`"{streamId}/{code}={value}"`), by the very counter, receipts and figures the stream has:
//! a stream record moves its session between the value streams of its old and new values
//! exactly as it moves it between buckets ([`value_moves`]). A session is in one value of each
//! dimension at every moment (its own value if the deployment lists it, `other` if not, `none`
//! when it sent none), so the values of a dimension add up to the stream's count at every
//! settled second, by construction: the same deltas, split by value.

use crate::histogram::SessionMove;
use crate::ids::StreamId;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Most values a deployment may list for one dimension (besides `other` and `none`).
pub const MAX_VALUES: usize = 8;

/// Longest value a deployment may list (a value stream's id is its stream's and at most 15
/// more characters, which keeps its live counter item within 1 KB).
pub const MAX_VALUE_CHARS: usize = 12;

/// The value of a session whose value the deployment does not list.
pub const OTHER: &str = "other";

/// The value of a session that sent none.
pub const NONE: &str = "none";

/// What a stream can be broken down by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dimension {
    /// `device`: the player's device or platform.
    Device,
    /// `player`: the player and its version.
    Player,
    /// `cdn`: the CDN the player plays from.
    Cdn,
    /// `label`: anything the customer's player sets (an A/B test arm, a camera angle).
    Label,
    /// `country`: the viewer's country, as the public edge's CDN reports it
    /// (`CloudFront-Viewer-Country`), never as the player says.
    Country,
}

impl Dimension {
    pub const ALL: [Dimension; 5] = [
        Self::Device,
        Self::Player,
        Self::Cdn,
        Self::Label,
        Self::Country,
    ];

    /// Its name: the event field, the API's and the configuration's word for it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Device => "device",
            Self::Player => "player",
            Self::Cdn => "cdn",
            Self::Label => "label",
            Self::Country => "country",
        }
    }

    /// The letter that names it in a value stream's id.
    fn code(self) -> char {
        match self {
            Self::Device => 'd',
            Self::Player => 'p',
            Self::Cdn => 'c',
            Self::Label => 'l',
            Self::Country => 'g',
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.name() == name)
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What an event, and the session row it writes, says of each dimension (the row keeps its
/// newest event's). `country` is the public edge's to set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dimensions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub player: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cdn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

impl Dimensions {
    pub fn get(&self, dimension: Dimension) -> Option<&str> {
        match dimension {
            Dimension::Device => self.device.as_deref(),
            Dimension::Player => self.player.as_deref(),
            Dimension::Cdn => self.cdn.as_deref(),
            Dimension::Label => self.label.as_deref(),
            Dimension::Country => self.country.as_deref(),
        }
    }
}

/// Why `LIVECOUNT_BREAKDOWNS` cannot be used: the part that is wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{part:?}: {rule}")]
pub struct BreakdownsError {
    pub part: String,
    pub rule: String,
}

/// `LIVECOUNT_BREAKDOWNS`: the dimensions a deployment breaks its streams down by, and the
/// values it lists for each, as `device=web,ios,android,tv;country=US,GB` (empty: none, the
/// default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Breakdowns {
    dimensions: Vec<(Dimension, Vec<String>)>,
}

impl Breakdowns {
    pub fn parse(text: &str) -> Result<Self, BreakdownsError> {
        let mut dimensions: Vec<(Dimension, Vec<String>)> = Vec::new();
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let wrong = |rule: String| BreakdownsError {
                part: part.to_owned(),
                rule,
            };
            let (name, values) = part
                .split_once('=')
                .ok_or_else(|| wrong("expected dimension=value,value,…".into()))?;
            let dimension = Dimension::parse(name.trim()).ok_or_else(|| {
                let names: Vec<&str> = Dimension::ALL.iter().map(|d| d.name()).collect();
                wrong(format!("the dimensions are {}", names.join(", ")))
            })?;
            if dimensions.iter().any(|(d, _)| *d == dimension) {
                return Err(wrong(format!("{dimension} is listed twice")));
            }
            let mut listed: Vec<String> = Vec::new();
            for value in values.split(',').map(str::trim).filter(|v| !v.is_empty()) {
                let valid = value.chars().count() <= MAX_VALUE_CHARS
                    && value
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
                if !valid {
                    return Err(wrong(format!(
                        "{value:?}: a value is 1-{MAX_VALUE_CHARS} characters of A-Z a-z 0-9 . _ -"
                    )));
                }
                if value == OTHER || value == NONE {
                    return Err(wrong(format!("{value:?} is every breakdown's own value")));
                }
                if !listed.iter().any(|v| v == value) {
                    listed.push(value.to_owned());
                }
            }
            if listed.is_empty() || listed.len() > MAX_VALUES {
                return Err(wrong(format!("list 1 to {MAX_VALUES} values")));
            }
            dimensions.push((dimension, listed));
        }
        dimensions.sort_by_key(|(d, _)| *d);
        Ok(Self { dimensions })
    }

    pub fn is_empty(&self) -> bool {
        self.dimensions.is_empty()
    }

    /// The dimensions broken down, in [`Dimension::ALL`]'s order.
    pub fn dimensions(&self) -> impl Iterator<Item = Dimension> + '_ {
        self.dimensions.iter().map(|(d, _)| *d)
    }

    /// Every value a session can have in `dimension`: those listed, then `other` and `none`
    /// (nothing when it is not broken down).
    pub fn values(&self, dimension: Dimension) -> Vec<&str> {
        match self.dimensions.iter().find(|(d, _)| *d == dimension) {
            Some((_, listed)) => listed
                .iter()
                .map(String::as_str)
                .chain([OTHER, NONE])
                .collect(),
            None => Vec::new(),
        }
    }

    /// The value a session that sent `sent` counts under in `dimension`.
    pub fn value_of<'a>(&'a self, dimension: Dimension, sent: Option<&str>) -> &'a str {
        let listed = self
            .dimensions
            .iter()
            .find(|(d, _)| *d == dimension)
            .map_or(&[][..], |(_, v)| v.as_slice());
        match sent {
            None => NONE,
            Some(sent) => listed
                .iter()
                .find(|v| v.as_str() == sent)
                .map_or(OTHER, String::as_str),
        }
    }
}

impl StreamId {
    /// The value stream of `value` of `dimension` of this stream: `"{streamId}/{code}={value}"`.
    /// `/` is in no id a player can name, so no stream is one.
    pub fn value_stream(&self, dimension: Dimension, value: &str) -> StreamId {
        StreamId::unchecked(format!("{self}/{}={value}", dimension.code()))
    }

    /// Whether it is a value stream (the stream list leaves them out).
    pub fn is_value_stream(id: &str) -> bool {
        id.contains('/')
    }
}

/// The moves of the value streams one stream record makes, for every dimension broken down:
/// a session that keeps its value moves within that value's stream as `m` moves it within the
/// stream; one whose value changes leaves its old value's stream (as if it stopped there at
/// `m.at`) and joins its new value's (as if it began counting there), so each value stream
/// counts exactly the sessions of that value and the values add up to the stream at every
/// second. `old` and `new` are the record's images' dimensions (`None`: no such image).
pub fn value_moves(
    m: &SessionMove,
    old: Option<&Dimensions>,
    new: Option<&Dimensions>,
    breakdowns: &Breakdowns,
) -> Vec<SessionMove> {
    let mut moves = Vec::new();
    for dimension in breakdowns.dimensions() {
        let value =
            |d: Option<&Dimensions>| d.map(|d| breakdowns.value_of(dimension, d.get(dimension)));
        let on =
            |value: &str, left: Option<i64>, joined: Option<i64>, new_session: bool| SessionMove {
                stream_id: m.stream_id.value_stream(dimension, value),
                left,
                joined,
                new_session,
                // Unique viewers are the stream's figure, not a value's.
                new_viewer: false,
                ..m.clone()
            };
        match (value(old), value(new)) {
            (Some(a), Some(b)) if a != b => {
                if m.left.is_some() {
                    moves.push(on(a, m.left, None, false));
                }
                if m.joined.is_some() || m.new_session {
                    moves.push(on(b, None, m.joined, m.new_session));
                }
            }
            (Some(v), _) | (None, Some(v)) => moves.push(on(v, m.left, m.joined, m.new_session)),
            (None, None) => {}
        }
    }
    moves
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histogram::{SequenceNumber, viewers, viewers_at};
    use std::collections::BTreeMap;

    fn breakdowns() -> Breakdowns {
        Breakdowns::parse("device=web,tv; country=US").expect("valid")
    }

    #[test]
    fn the_configuration_names_what_is_wrong() {
        let b = breakdowns();
        assert_eq!(
            b.dimensions().collect::<Vec<_>>(),
            [Dimension::Device, Dimension::Country]
        );
        assert_eq!(b.values(Dimension::Device), ["web", "tv", OTHER, NONE]);
        assert!(b.values(Dimension::Cdn).is_empty());
        assert_eq!(b.value_of(Dimension::Device, Some("tv")), "tv");
        assert_eq!(b.value_of(Dimension::Device, Some("fridge")), OTHER);
        assert_eq!(b.value_of(Dimension::Device, None), NONE);
        assert!(Breakdowns::parse("").expect("valid").is_empty());
        for (text, named) in [
            ("colour=red", "the dimensions are"),
            ("device", "expected dimension="),
            ("device=web;device=tv", "twice"),
            ("device=", "list 1 to 8"),
            ("device=a,b,c,d,e,f,g,h,i", "list 1 to 8"),
            ("device=thirteen-chars", "1-12 characters"),
            ("device=we/b", "1-12 characters"),
            ("device=other", "own value"),
        ] {
            let error = Breakdowns::parse(text).expect_err(text).to_string();
            assert!(error.contains(named), "{text}: {error}");
        }
    }

    #[test]
    fn a_value_stream_is_no_stream_a_player_can_name() {
        let s = StreamId::parse("launch").expect("valid");
        let tv = s.value_stream(Dimension::Device, "tv");
        assert_eq!(tv.as_str(), "launch/d=tv");
        assert!(StreamId::is_value_stream(&tv));
        assert!(StreamId::parse(&tv).is_err());
        assert!(!StreamId::is_value_stream(&s));
    }

    /// Property: sessions starting, heartbeating, changing device, pausing, stopping and
    /// expiring, their records applied in order: at every second the value streams of a
    /// dimension add up to the stream, each counts the sessions of its value, and a session
    /// started is counted under the value it started with.
    #[test]
    fn the_values_add_up_to_the_stream_at_every_second() {
        let b = breakdowns();
        let stream = StreamId::parse("s").expect("valid");
        let devices = [Some("web"), Some("tv"), Some("fridge"), None];
        let mut rng = fastrand::Rng::with_seed(20);
        let now = 1_000_000;
        // stream id -> (buckets, starts)
        type Tallies = (BTreeMap<i64, i64>, BTreeMap<i64, i64>);
        let mut counters: BTreeMap<StreamId, Tallies> = BTreeMap::new();
        let mut sessions_started: BTreeMap<StreamId, u64> = BTreeMap::new();
        let mut apply = |m: &SessionMove| {
            *sessions_started.entry(m.stream_id.clone()).or_default() += u64::from(m.new_session);
            let (buckets, starts) = counters.entry(m.stream_id.clone()).or_default();
            let cancel = m.left.is_some() && m.left == m.joined;
            if !cancel {
                for (bucket, delta) in m
                    .left
                    .map(|b| (b, -1))
                    .into_iter()
                    .chain(m.joined.map(|b| (b, 1)))
                {
                    *buckets.entry(bucket).or_default() += delta;
                }
            }
            *starts.entry(m.at).or_default() += m.start_delta();
        };
        // session -> (watching until, device)
        let mut sessions: BTreeMap<u32, (Option<i64>, Option<&str>)> = BTreeMap::new();
        let mut truth: BTreeMap<i64, BTreeMap<&str, u64>> = BTreeMap::new();
        let mut started: BTreeMap<&str, u64> = BTreeMap::new();
        for t in now..now + 300 {
            for _ in 0..rng.usize(0..4) {
                let id = rng.u32(0..12);
                let device = devices[rng.usize(0..devices.len())];
                let watching = rng.u8(0..4) > 0;
                let until = watching.then_some(t + 15 + (5 - (t + 15) % 5) % 5);
                let old = sessions.get(&id).copied();
                let image = |d: Option<&str>| Dimensions {
                    device: d.map(str::to_owned),
                    ..Dimensions::default()
                };
                let m = SessionMove {
                    stream_id: stream.clone(),
                    record_id: format!("{t}-{id}"),
                    sequence: SequenceNumber::parse("1").expect("digits"),
                    at: t,
                    left: old.and_then(|(u, _)| u.filter(|&u| u >= t)),
                    joined: until,
                    new_session: old.is_none(),
                    new_viewer: false,
                };
                if old.is_none() {
                    *started
                        .entry(b.value_of(Dimension::Device, device))
                        .or_default() += 1;
                }
                let (old_image, new_image) = (old.map(|(_, d)| image(d)), image(device));
                apply(&m);
                for v in value_moves(&m, old_image.as_ref(), Some(&new_image), &b) {
                    apply(&v);
                }
                sessions.insert(id, (until, device));
            }
            let by_value = truth.entry(t).or_default();
            for (until, device) in sessions.values() {
                if until.is_some_and(|u| u >= t) {
                    *by_value
                        .entry(b.value_of(Dimension::Device, *device))
                        .or_default() += 1;
                }
            }
        }
        let count = |id: &StreamId, t: i64| {
            counters
                .get(id)
                .map_or(0, |(buckets, starts)| viewers_at(buckets, starts, t))
        };
        for (&t, by_value) in &truth {
            let total = count(&stream, t);
            assert_eq!(total, by_value.values().sum::<u64>(), "second {t}");
            for dimension in [Dimension::Device, Dimension::Country] {
                let values = b.values(dimension);
                let sum: u64 = values
                    .iter()
                    .map(|v| count(&stream.value_stream(dimension, v), t))
                    .sum();
                assert_eq!(sum, total, "{dimension} at second {t}");
            }
            for value in b.values(Dimension::Device) {
                assert_eq!(
                    count(&stream.value_stream(Dimension::Device, value), t),
                    by_value.get(value).copied().unwrap_or(0),
                    "{value} at second {t}"
                );
            }
        }
        let (buckets, _) = &counters[&stream];
        assert_eq!(
            viewers(buckets, now + 299),
            truth[&(now + 299)].values().sum::<u64>()
        );
        for value in b.values(Dimension::Device) {
            let id = stream.value_stream(Dimension::Device, value);
            assert_eq!(
                sessions_started.get(&id).copied().unwrap_or(0),
                started.get(value).copied().unwrap_or(0),
                "sessions started on {value}"
            );
        }
        assert_eq!(sessions_started[&stream], 12, "every session once");
    }
}
