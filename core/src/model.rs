//! The items of the two tables (see `docs/design.md`), mapped with `serde_dynamo`.

use crate::histogram::{Receipt, ReceiptKey};
use crate::ids::{SessionId, StreamId};
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The sort key of a stream's live counter item.
pub const LIVE_COUNTER_SK: &str = "live";

/// The sort key of a stream's peak and per-minute history item.
pub const HISTORY_SK: &str = "history";

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

    /// A stream's peak and history: `PK = streamId`, `SK = "history"`.
    pub fn history(stream_id: &StreamId) -> Self {
        Self {
            pk: stream_id.to_string(),
            sk: HISTORY_SK.to_owned(),
        }
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
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
}

impl SessionImage {
    /// The attributes it reads from an image.
    pub const ATTRIBUTES: [&'static str; 4] = ["PK", "expDate", "watching", "recvAt"];

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

/// A stream's peak and per-minute history, in its own item beside the live counter (pruned to
/// the last [`crate::histogram::HISTORY_SECONDS`]).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryItem {
    #[serde(rename = "PK")]
    pub stream_id: String,
    /// Most concurrent viewers seen by the aggregator, and when (epoch seconds).
    #[serde(default)]
    pub peak: Option<u64>,
    #[serde(default)]
    pub peak_at: Option<i64>,
    #[serde(flatten)]
    pub tallies: Tallies,
}

/// The dynamic attributes of the counter items: `b{epoch}` buckets, `s{epoch}` starts and
/// `r{key}` receipts (live item), `h{minute}` history (history item).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tallies {
    /// Bucket (epoch seconds) → sessions expiring there.
    pub buckets: BTreeMap<i64, i64>,
    /// Second (epoch seconds) → sessions that began counting at it less those that stopped
    /// (see [`crate::histogram::viewers_at`]); kept for the seconds history still reads.
    pub starts: BTreeMap<i64, i64>,
    /// Receipts of the deliveries whose batches have not finished (see
    /// [`crate::histogram::Receipt`]).
    pub receipts: BTreeMap<ReceiptKey, Receipt>,
    /// Minute (epoch seconds of its start) → most viewers the aggregator saw in it.
    pub history: BTreeMap<i64, u64>,
}

/// Attribute name of a bucket.
pub fn bucket_attribute(bucket: i64) -> String {
    format!("b{bucket}")
}

/// Attribute name of a second's starts.
pub fn start_attribute(second: i64) -> String {
    format!("s{second}")
}

/// Attribute name of a minute's viewer peak.
pub fn minute_attribute(minute: i64) -> String {
    format!("h{minute}")
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
                    } else if let Some(minute) = numbered(&name, 'h').and_then(|n| n.parse().ok()) {
                        tallies.history.insert(minute, map.next_value()?);
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
    fn counter_items_map_buckets_receipts_history_and_peak() {
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
            ("SK".to_owned(), s("history")),
            ("peak".to_owned(), n("9")),
            ("peakAt".to_owned(), n("1700000001")),
            ("h1699999980".to_owned(), n("4")),
        ]);
        let history: HistoryItem = serde_dynamo::from_item(item).expect("maps");
        assert_eq!(history.peak, Some(9));
        assert_eq!(history.peak_at, Some(1_700_000_001));
        assert_eq!(
            history.tallies.history,
            BTreeMap::from([(1_699_999_980, 4)])
        );

        let bad = HashMap::from([
            ("PK".to_owned(), s("st")),
            ("r00000000007b".to_owned(), s("nope")),
        ]);
        assert!(serde_dynamo::from_item::<_, CounterItem>(bad).is_err());
    }

    /// The largest live counter item a valid configuration can make: a 128-character stream id,
    /// every bucket of the widest allowed span plus the blind-pruned ones and every start second
    /// history still reads holding a seven-digit count, [`RECEIPTS_IN_ONE_KB`] receipts of
    /// ten-thousand-record deliveries outstanding. It stays within 1 KB: one write unit per update, half a read unit per read.
    #[test]
    fn the_largest_live_counter_item_stays_within_one_kilobyte() {
        use crate::capacity::{item_size, read_units, write_units};
        use crate::histogram::{
            BLIND_PRUNE_BUCKETS, Fingerprint, RECEIPTS_IN_ONE_KB, oldest_published_second,
        };
        use crate::timing::MAX_LIVE_BUCKETS;
        let now = 1_700_000_000_i64;
        let mut item: HashMap<String, AttributeValue> = HashMap::from([
            ("PK".to_owned(), AttributeValue::S("s".repeat(128))),
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
                device: None,
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
