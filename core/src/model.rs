//! The items of the two tables (see `docs/design.md`), mapped with `serde_dynamo`.

use crate::histogram::{CounterRequest, Receipt, ReceiptKey};
use crate::ids::{SessionId, StreamId};
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The sort key of a stream's live counter item.
pub const LIVE_COUNTER_SK: &str = "live";

/// The sort key of a stream's lifetime item: its figures since its first viewer (sorts before
/// [`LIVE_COUNTER_SK`], so a scan meets a stream's lifetime item before its live counter).
pub const LIFETIME_SK: &str = "lifetime";

/// The sort key prefix of a stream's hour items: `"m{epoch of the hour}"`, its per-minute
/// history (sorts after [`LIVE_COUNTER_SK`]).
pub const HOUR_SK_PREFIX: &str = "m";

/// Primary key of both tables.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ItemKey {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
}

impl ItemKey {
    /// A session row: `PK = "{streamId}#{shard}"`, `SK = sessionId`.
    pub fn session(stream_id: &StreamId, shard: u32, session_id: &SessionId) -> Self {
        Self {
            pk: crate::ids::SessionPartition::new(stream_id, shard).to_string(),
            sk: session_id.to_string(),
        }
    }

    /// A stream's live counter: `PK = streamId`, `SK = "live"`.
    pub fn live_counter(stream_id: &StreamId) -> Self {
        Self {
            pk: stream_id.to_string(),
            sk: LIVE_COUNTER_SK.to_owned(),
        }
    }

    /// A stream's lifetime figures: `PK = streamId`, `SK = "lifetime"`.
    pub fn lifetime(stream_id: &StreamId) -> Self {
        Self {
            pk: stream_id.to_string(),
            sk: LIFETIME_SK.to_owned(),
        }
    }

    /// A stream's marker of one viewer (`userId`), in the viewers table: `PK =
    /// "{streamId}#{shard}"` (the viewer's shard of `shards`, as sessions are spread, so a
    /// stream's starts spread over as many keys), `SK = hex SHA-256 of userId` (64 bytes whatever
    /// the id; the id itself is not stored). See [`crate::requests::viewer_marker_request`].
    pub fn viewer(stream_id: &StreamId, shards: u32, user_id: &str) -> Self {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(user_id.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        Self {
            pk: crate::ids::SessionPartition::new(
                stream_id,
                crate::ids::session_shard(&hex, shards),
            )
            .to_string(),
            sk: hex,
        }
    }

    /// The minutes of one hour of a stream: `PK = streamId`, `SK = "m{hour}"` (`hour`: epoch
    /// seconds of its start).
    pub fn hour(stream_id: &StreamId, hour: i64) -> Self {
        Self {
            pk: stream_id.to_string(),
            sk: format!("{HOUR_SK_PREFIX}{hour}"),
        }
    }

    /// The hour of an hour item's key, if it is one.
    pub fn hour_of(&self) -> Option<i64> {
        let digits = self.sk.strip_prefix(HOUR_SK_PREFIX)?;
        (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| digits.parse().ok())
            .flatten()
    }
}

/// The attributes ingest sets on a session row with each accepted event (besides `startedAt`,
/// which only the first write sets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionState {
    pub stream_id: String,
    /// Epoch seconds at which the session stops counting; the table's TTL attribute.
    pub exp_date: i64,
    /// The player's `ts` of the newest applied event (epoch ms), at most its receive time.
    pub last_ts: i64,
    /// The player's `seq` of the newest applied event, if it sent one: once a session's row has
    /// it, only events with a higher `seq` (or the same, of a higher kind) replace it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seq: Option<u64>,
    /// The tie-break rank of that event's type (`start` 0 … `stop` 3).
    pub last_rank: u8,
    pub last_type: String,
    /// Receive time of that event on the server's clock (epoch ms).
    pub recv_at: i64,
    pub watching: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The breakdowns' dimensions, as its newest event gave them.
    #[serde(flatten)]
    pub dimensions: crate::breakdown::Dimensions,
}

/// A whole session row as stored (and as stream images carry it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRow {
    #[serde(flatten)]
    pub key: ItemKey,
    #[serde(flatten)]
    pub state: SessionState,
    /// Receive time of the session's first applied event (epoch ms).
    pub started_at: i64,
}

/// The part of a session image the aggregator needs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionImage {
    #[serde(rename = "PK")]
    pub pk: String,
    pub exp_date: i64,
    pub watching: bool,
    /// Receive time of the row's event (epoch ms): when the row's state began.
    #[serde(default)]
    pub recv_at: Option<i64>,
    /// Its dimensions (the breakdowns move a session between their values).
    #[serde(flatten)]
    pub dimensions: crate::breakdown::Dimensions,
}

/// The viewer of a session image: read only from the new image of a record that creates a
/// session's row (unique viewers), so no other record copies it.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageViewer {
    #[serde(default)]
    pub user_id: Option<String>,
}

impl ImageViewer {
    /// The attribute it reads.
    pub const ATTRIBUTES: [&'static str; 1] = ["userId"];
}

impl SessionImage {
    /// The attributes it reads from an image.
    pub const ATTRIBUTES: [&'static str; 9] = [
        "PK", "expDate", "watching", "recvAt", "device", "player", "cdn", "label", "country",
    ];

    /// The stream and shard of `PK = "{streamId}#{shard}"`.
    pub fn partition(&self) -> Option<crate::ids::SessionPartition> {
        crate::ids::SessionPartition::parse(&self.pk)
    }
}

/// A stream's live counter item: what a dashboard reads, within 1 KB (its buckets within
/// `now - G … now + W + B`, and the receipts of the deliveries not yet finished: up to
/// [`crate::histogram::RECEIPTS_IN_ONE_KB`] of them fit).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CounterItem {
    #[serde(rename = "PK")]
    pub stream_id: String,
    /// Aggregator clock of the last update (epoch seconds).
    #[serde(default)]
    pub updated_at: Option<i64>,
    #[serde(flatten)]
    pub tallies: Tallies,
}

impl CounterItem {
    /// The counter as `request` leaves it: what DynamoDB would return as `ALL_NEW` for the
    /// item it returned as `ALL_OLD` (a test holds the two to DynamoDB Local's). The aggregator
    /// asks for the item before its update, so that it has both: the seconds a stream's figures
    /// have not taken yet may need what the update prunes.
    pub fn after(&self, request: &CounterRequest) -> CounterItem {
        let mut after = self.clone();
        after.stream_id = request.stream_id.to_string();
        after.updated_at = Some(request.now);
        let tallies = &mut after.tallies;
        for &(bucket, delta) in &request.deltas {
            *tallies.buckets.entry(bucket).or_default() += delta;
        }
        for &(second, delta) in &request.starts {
            *tallies.starts.entry(second).or_default() += delta;
        }
        for &(minute, count) in &request.new_sessions {
            *tallies.new_sessions.entry(minute).or_default() += count;
        }
        for &(minute, count) in &request.new_viewers {
            *tallies.new_viewers.entry(minute).or_default() += count;
        }
        for bucket in &request.prune {
            tallies.buckets.remove(bucket);
        }
        for second in &request.prune_starts {
            tallies.starts.remove(second);
        }
        for minute in &request.prune_new_sessions {
            tallies.new_sessions.remove(minute);
        }
        for minute in &request.prune_new_viewers {
            tallies.new_viewers.remove(minute);
        }
        for key in &request.remove_receipts {
            tallies.receipts.remove(key);
        }
        if let Some(write) = &request.receipt {
            tallies.receipts.insert(write.key, write.receipt);
        }
        after
    }
}

/// A stream's figures since its first viewer (docs/design.md, "Figures"), published by the
/// aggregator for every second once it has settled, in order: `through` is the last second
/// published.
/// Serialized, it is the attributes a lifetime write sets (all but the key).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LifetimeItem {
    #[serde(rename = "PK", skip_serializing)]
    pub stream_id: String,
    /// The last second published (epoch seconds); `None` before the first publication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub through: Option<i64>,
    /// Most concurrent viewers of a published second, and the first second that had them.
    #[serde(default)]
    pub peak: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_at: Option<i64>,
    /// The sum over published seconds of their viewers: watch time in viewer-seconds.
    #[serde(default)]
    pub viewer_seconds: u64,
    /// Sessions started in the published minutes (see [`MinuteFigures::sessions_started`]).
    #[serde(default)]
    pub sessions_started: u64,
    /// Viewers (`userId`) first seen in the published minutes: unique viewers (docs/design.md,
    /// "Figures").
    #[serde(default)]
    pub unique_viewers: u64,
    /// The first and the last published second with a viewer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_at: Option<i64>,
    /// Seconds no publication could count (the counter had pruned what they need before a
    /// publication took them): zero unless publications failed for more than 10 s while the
    /// stream's counter went on being updated.
    #[serde(default)]
    pub missed_seconds: u64,
}

/// One hour of a stream's per-minute history (`SK = "m{hour}"`), published with the lifetime
/// item: at most 60 minutes of three numbers each, within 2 KB.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HourItem {
    pub stream_id: String,
    /// Start of the hour (epoch seconds).
    pub hour: i64,
    /// The last second of the hour published; `None` before the first.
    pub through: Option<i64>,
    /// Minute of the hour (0-59) → its figures so far.
    pub minutes: BTreeMap<u32, MinuteFigures>,
}

/// What one minute's published seconds add up to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MinuteFigures {
    /// Most viewers of one of its seconds.
    pub highest: u64,
    /// Sum over its seconds of their viewers.
    pub viewer_seconds: u64,
    /// Sessions whose row was created by an event received in it: counted once the minute is
    /// over (with its last second).
    pub sessions_started: u64,
}

/// Attribute names of an hour item's minute: its highest count, its viewer-seconds and its
/// sessions started (written once not zero).
pub fn minute_attributes(minute: u32) -> [String; 3] {
    [
        format!("x{minute}"),
        format!("v{minute}"),
        format!("n{minute}"),
    ]
}

impl<'de> Deserialize<'de> for HourItem {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HourVisitor;
        impl<'de> Visitor<'de> for HourVisitor {
            type Value = HourItem;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an hour item")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<HourItem, A::Error> {
                let mut item = HourItem::default();
                let minute = |name: &str, prefix: char| {
                    let rest = name.strip_prefix(prefix)?;
                    let n: u32 = (rest.len() <= 2 && rest.bytes().all(|b| b.is_ascii_digit()))
                        .then(|| rest.parse().ok())
                        .flatten()?;
                    (n < 60).then_some(n)
                };
                while let Some(name) = map.next_key::<String>()? {
                    match name.as_str() {
                        "PK" => item.stream_id = map.next_value()?,
                        "SK" => {
                            let sk: String = map.next_value()?;
                            let key = ItemKey {
                                pk: String::new(),
                                sk,
                            };
                            item.hour = key.hour_of().ok_or_else(|| {
                                serde::de::Error::custom(format!(
                                    "SK {:?} is not \"{HOUR_SK_PREFIX}{{hour}}\"",
                                    key.sk
                                ))
                            })?;
                        }
                        "through" => item.through = Some(map.next_value()?),
                        _ => {
                            if let Some(m) = minute(&name, 'x') {
                                item.minutes.entry(m).or_default().highest = map.next_value()?;
                            } else if let Some(m) = minute(&name, 'v') {
                                item.minutes.entry(m).or_default().viewer_seconds =
                                    map.next_value()?;
                            } else if let Some(m) = minute(&name, 'n') {
                                item.minutes.entry(m).or_default().sessions_started =
                                    map.next_value()?;
                            } else {
                                map.next_value::<IgnoredAny>()?;
                            }
                        }
                    }
                }
                Ok(item)
            }
        }
        deserializer.deserialize_map(HourVisitor)
    }
}

/// The dynamic attributes of the live counter item: `b{epoch}` buckets, `s{epoch}` starts,
/// `n{epoch minute}` sessions started, `u{epoch minute}` viewers first seen and `r{key}`
/// receipts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tallies {
    /// Bucket (epoch seconds) → sessions expiring there.
    pub buckets: BTreeMap<i64, i64>,
    /// Second (epoch seconds) → sessions that began counting at it less those that stopped
    /// (see [`crate::histogram::viewers_at`]); kept for the seconds history still reads.
    pub starts: BTreeMap<i64, i64>,
    /// Minute (epoch seconds of its start) → sessions started in it; kept until history no
    /// longer reads its last second.
    pub new_sessions: BTreeMap<i64, i64>,
    /// Minute → viewers (`userId`) first seen in it, kept as `new_sessions` is.
    pub new_viewers: BTreeMap<i64, i64>,
    /// Receipts of the deliveries whose batches have not finished (see
    /// [`crate::histogram::Receipt`]).
    pub receipts: BTreeMap<ReceiptKey, Receipt>,
}

/// Attribute name of a bucket.
pub fn bucket_attribute(bucket: i64) -> String {
    format!("b{bucket}")
}

/// Attribute name of a second's starts.
pub fn start_attribute(second: i64) -> String {
    format!("s{second}")
}

/// Attribute name of a minute's sessions started.
pub fn new_sessions_attribute(minute: i64) -> String {
    format!("n{minute}")
}

/// Attribute name of a minute's viewers first seen.
pub fn new_viewers_attribute(minute: i64) -> String {
    format!("u{minute}")
}

fn numbered(name: &str, prefix: char) -> Option<&str> {
    let rest = name.strip_prefix(prefix)?;
    let digits = rest.strip_prefix('-').unwrap_or(rest);
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(rest)
}

impl<'de> Deserialize<'de> for Tallies {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TalliesVisitor;
        impl<'de> Visitor<'de> for TalliesVisitor {
            type Value = Tallies;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("counter attributes")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tallies, A::Error> {
                let mut tallies = Tallies::default();
                while let Some(name) = map.next_key::<String>()? {
                    if let Some(bucket) = numbered(&name, 'b').and_then(|n| n.parse().ok()) {
                        tallies.buckets.insert(bucket, map.next_value()?);
                    } else if let Some(second) = numbered(&name, 's').and_then(|n| n.parse().ok()) {
                        tallies.starts.insert(second, map.next_value()?);
                    } else if let Some(minute) = numbered(&name, 'n').and_then(|n| n.parse().ok()) {
                        tallies.new_sessions.insert(minute, map.next_value()?);
                    } else if let Some(minute) = numbered(&name, 'u').and_then(|n| n.parse().ok()) {
                        tallies.new_viewers.insert(minute, map.next_value()?);
                    } else if let Some(key) = ReceiptKey::from_attribute(&name) {
                        let text: String = map.next_value()?;
                        let receipt = Receipt::parse(&text).ok_or_else(|| {
                            serde::de::Error::custom(format!("{name} is not a receipt: {text:?}"))
                        })?;
                        tallies.receipts.insert(key, receipt);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(tallies)
            }
        }
        deserializer.deserialize_map(TalliesVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue;
    use std::collections::HashMap;

    #[test]
    fn live_lifetime_and_hour_items_map() {
        let n = |v: &str| AttributeValue::N(v.to_owned());
        let s = |v: &str| AttributeValue::S(v.to_owned());
        let item: HashMap<String, AttributeValue> = HashMap::from([
            ("PK".to_owned(), s("st")),
            ("SK".to_owned(), s("live")),
            ("b1700000015".to_owned(), n("3")),
            ("b1700000020".to_owned(), n("-1")),
            ("s1700000001".to_owned(), n("2")),
            (
                "r00000000007b".to_owned(),
                s("1700000001.12.000000000000007b"),
            ),
            ("updatedAt".to_owned(), n("1700000002")),
            ("bogus".to_owned(), s("ignored")),
        ]);
        let counter: CounterItem = serde_dynamo::from_item(item).expect("maps");
        assert_eq!(counter.stream_id, "st");
        assert_eq!(counter.updated_at, Some(1_700_000_002));
        assert_eq!(
            counter.tallies.buckets,
            BTreeMap::from([(1_700_000_015, 3), (1_700_000_020, -1)])
        );
        assert_eq!(counter.tallies.starts, BTreeMap::from([(1_700_000_001, 2)]));
        assert_eq!(
            counter.tallies.receipts.into_values().collect::<Vec<_>>(),
            vec![Receipt {
                at: 1_700_000_001,
                records: 12,
                fingerprint: crate::histogram::Fingerprint(123)
            }]
        );

        let item: HashMap<String, AttributeValue> = HashMap::from([
            ("PK".to_owned(), s("st")),
            ("SK".to_owned(), s("lifetime")),
            ("through".to_owned(), n("1700000010")),
            ("peak".to_owned(), n("9")),
            ("peakAt".to_owned(), n("1700000001")),
            ("viewerSeconds".to_owned(), n("120")),
        ]);
        let lifetime: LifetimeItem = serde_dynamo::from_item(item).expect("maps");
        assert_eq!(
            (lifetime.through, lifetime.peak, lifetime.peak_at),
            (Some(1_700_000_010), 9, Some(1_700_000_001))
        );
        assert_eq!((lifetime.viewer_seconds, lifetime.first_at), (120, None));

        let item: HashMap<String, AttributeValue> = HashMap::from([
            ("PK".to_owned(), s("st")),
            ("SK".to_owned(), s("m1699999200")),
            ("through".to_owned(), n("1699999330")),
            ("x2".to_owned(), n("4")),
            ("v2".to_owned(), n("200")),
            ("x60".to_owned(), n("1")),
        ]);
        let hour: HourItem = serde_dynamo::from_item(item).expect("maps");
        assert_eq!(
            (hour.hour, hour.through),
            (1_699_999_200, Some(1_699_999_330))
        );
        assert_eq!(
            hour.minutes,
            BTreeMap::from([(
                2,
                MinuteFigures {
                    highest: 4,
                    viewer_seconds: 200,
                    sessions_started: 0,
                }
            )])
        );
        let not_an_hour = HashMap::from([("PK".to_owned(), s("st")), ("SK".to_owned(), s("live"))]);
        assert!(serde_dynamo::from_item::<_, HourItem>(not_an_hour).is_err());

        let bad = HashMap::from([
            ("PK".to_owned(), s("st")),
            ("r00000000007b".to_owned(), s("nope")),
        ]);
        assert!(serde_dynamo::from_item::<_, CounterItem>(bad).is_err());
    }

    /// The largest live counter item a valid configuration can make: the longest value stream's
    /// id (a 128-character stream's and 15 more),
    /// every bucket of the widest allowed span plus the blind-pruned ones, every start second
    /// history still reads and the two minutes of sessions started it holds (and, for the stream
    /// itself, of viewers first seen), each a seven-digit count, [`RECEIPTS_IN_ONE_KB`] receipts of
    /// ten-thousand-record deliveries outstanding. It stays within 1 KB: one write unit per update, half a read unit per read.
    #[test]
    fn the_largest_live_counter_item_stays_within_one_kilobyte() {
        use crate::capacity::{item_size, read_units, write_units};
        use crate::histogram::{
            BLIND_PRUNE_BUCKETS, Fingerprint, RECEIPTS_IN_ONE_KB, oldest_published_second,
        };
        use crate::timing::MAX_LIVE_BUCKETS;
        let now = 1_700_000_000_i64;
        // The longest value stream's id: a 128-character stream's, `/`, a letter, `=` and a
        // 12-character value; and the stream's own, whose counter also tallies viewers first
        // seen (value streams do not).
        let value_stream = format!("{}/d={}", "s".repeat(128), "v".repeat(12));
        for (pk, viewers) in [(value_stream, false), ("s".repeat(128), true)] {
            let mut item: HashMap<String, AttributeValue> = HashMap::from([
                ("PK".to_owned(), AttributeValue::S(pk)),
                ("SK".to_owned(), AttributeValue::S(LIVE_COUNTER_SK.into())),
                ("updatedAt".to_owned(), AttributeValue::N(now.to_string())),
                (
                    "expiresAt".to_owned(),
                    AttributeValue::N((now + 365 * 86_400).to_string()),
                ),
            ]);
            for i in 0..MAX_LIVE_BUCKETS + BLIND_PRUNE_BUCKETS + 1 {
                item.insert(
                    bucket_attribute(now + i),
                    AttributeValue::N("-1000000".into()),
                );
            }
            for second in oldest_published_second(now) + 1..=now {
                item.insert(
                    start_attribute(second),
                    AttributeValue::N("-1000000".into()),
                );
            }
            for minute in [now - now % 60 - 60, now - now % 60] {
                item.insert(
                    new_sessions_attribute(minute),
                    AttributeValue::N("1000000".into()),
                );
                if viewers {
                    item.insert(
                        new_viewers_attribute(minute),
                        AttributeValue::N("1000000".into()),
                    );
                }
            }
            for i in 0..RECEIPTS_IN_ONE_KB {
                let receipt = Receipt {
                    at: now,
                    records: 10_000,
                    fingerprint: Fingerprint(u64::MAX),
                };
                item.insert(
                    ReceiptKey::of_first_record(&format!("event-{i}")).attribute(),
                    AttributeValue::S(receipt.to_text()),
                );
            }
            let size = item_size(&item);
            assert!(size <= 1024, "{size} bytes");
            assert_eq!(write_units(size, size), 1.0);
            assert_eq!(read_units(size, false), 0.5);
            let counter: CounterItem = serde_dynamo::from_item(item).expect("maps");
            assert_eq!(counter.tallies.receipts.len(), RECEIPTS_IN_ONE_KB);
            assert_eq!(
                counter.tallies.new_viewers.len(),
                if viewers { 2 } else { 0 }
            );
        }
    }

    /// The largest figures items: a 128-character stream id, every minute of an hour at
    /// 9,999,999 viewers and as many sessions started, a lifetime of a year at as many. An hour item stays within 2 KB (at
    /// most two write units per publication, half a read unit per eventually consistent read),
    /// the lifetime item within 1 KB (one write unit).
    #[test]
    fn the_largest_figures_items_stay_within_their_bounds() {
        use crate::capacity::{item_size, read_units, write_units};
        use crate::figures::{Settled, hour_of};
        use crate::requests::{hour_request, lifetime_request};
        let now = 1_700_000_000_i64;
        let hour = hour_of(now);
        let stream_id = StreamId::parse(&"s".repeat(128)).expect("valid");
        let whole = Settled {
            from: hour,
            seconds: (hour..hour + 3600).map(|t| (t, 9_999_999)).collect(),
            through: hour + 3599,
            missed: 0,
            new_sessions: (0..60).map(|m| (hour + 60 * m, 9_999_999)).collect(),
            new_viewers: (0..60).map(|m| (hour + 60 * m, 9_999_999)).collect(),
        };
        let full = HourItem::empty(stream_id.as_str(), hour).with(&whole);
        let life = LifetimeItem {
            stream_id: stream_id.to_string(),
            through: Some(now),
            peak: 9_999_999,
            peak_at: Some(now),
            viewer_seconds: 9_999_999 * 365 * 86_400 - 1,
            sessions_started: 9_999_999 * 365 * 1440,
            unique_viewers: 9_999_999 * 365 * 1440,
            first_at: Some(now - 365 * 86_400),
            last_at: Some(now),
            missed_seconds: 1_000_000,
        };
        // The items as the writes leave them: their SET values on the key.
        let written = |request: crate::requests::UpdateRequest| {
            let mut item = request.key.clone();
            for (placeholder, name) in &request.names {
                let value = request.update.split(&format!("{placeholder} = ")).nth(1);
                let value = value.and_then(|rest| rest.split([',', ' ']).next());
                if let Some(v) = value.and_then(|v| request.values.get(v)) {
                    item.insert(name.clone(), v.clone());
                }
            }
            item
        };
        let expires = now + 365 * 86_400;
        let hour_item = written(
            hour_request(
                "t",
                &stream_id,
                &HourItem::empty(stream_id.as_str(), hour),
                &full,
                expires,
            )
            .expect("builds"),
        );
        assert_eq!(
            hour_item.len(),
            2 + 2 + 180,
            "key, through, expiresAt, 60 minutes"
        );
        let size = item_size(&hour_item);
        assert!(size <= 2048, "hour item: {size} bytes");
        assert!(write_units(size, size) <= 2.0);
        assert_eq!(read_units(size, false), 0.5);
        let back: HourItem = serde_dynamo::from_item(hour_item).expect("maps");
        assert_eq!(back.minutes, full.minutes);
        let life_item = written(
            lifetime_request("t", &stream_id, &LifetimeItem::default(), &life, expires)
                .expect("builds"),
        );
        let size = item_size(&life_item);
        assert!(size <= 1024, "lifetime item: {size} bytes");
        let back: LifetimeItem = serde_dynamo::from_item(life_item).expect("maps");
        assert_eq!(back, life);
    }

    #[test]
    fn a_session_row_round_trips_and_names_its_shard() {
        let row = SessionRow {
            key: ItemKey::session(
                &StreamId::parse("st").expect("valid"),
                3,
                &SessionId::parse("abc").expect("valid"),
            ),
            state: SessionState {
                stream_id: "st".into(),
                exp_date: 1_700_000_015,
                last_ts: 5,
                last_seq: Some(3),
                last_rank: 1,
                last_type: "heartbeat".into(),
                recv_at: 1_700_000_000_000,
                watching: true,
                position: Some(1.5),
                user_id: None,
                dimensions: Default::default(),
            },
            started_at: 1_700_000_000_000,
        };
        let item: HashMap<String, AttributeValue> =
            serde_dynamo::to_item(&row).expect("serializes");
        assert_eq!(item.get("PK"), Some(&AttributeValue::S("st#3".into())));
        assert_eq!(
            item.get("expDate"),
            Some(&AttributeValue::N("1700000015".into()))
        );
        assert!(!item.contains_key("userId"));
        let back: SessionRow = serde_dynamo::from_item(item.clone()).expect("maps");
        assert_eq!(back, row);
        let image: SessionImage = serde_dynamo::from_item(item).expect("maps");
        assert_eq!(
            image.partition(),
            Some(crate::ids::SessionPartition::new(
                &StreamId::parse("st").expect("valid"),
                3
            ))
        );
    }
}
