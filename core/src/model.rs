//! The items of the two tables (DESIGN §4), mapped with `serde_dynamo`.

use crate::histogram::SequenceNumber;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The sort key of a stream's live counter item.
pub const LIVE_COUNTER_SK: &str = "live";

/// Primary key of both tables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemKey {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
}

impl ItemKey {
    /// A session row: `PK = "{streamId}#{shard}"`, `SK = sessionId`.
    pub fn session(stream_id: &str, shard: u32, session_id: &str) -> Self {
        Self {
            pk: format!("{stream_id}#{shard}"),
            sk: session_id.to_owned(),
        }
    }

    /// A stream's live counter: `PK = streamId`, `SK = "live"`.
    pub fn live_counter(stream_id: &str) -> Self {
        Self {
            pk: stream_id.to_owned(),
            sk: LIVE_COUNTER_SK.to_owned(),
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
    /// The player's `ts` of the newest applied event (epoch ms).
    pub last_ts: i64,
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
}

impl SessionImage {
    /// `(streamId, shard)` from `PK = "{streamId}#{shard}"`.
    pub fn stream_and_shard(&self) -> Option<(&str, u32)> {
        let (stream, shard) = self.pk.rsplit_once('#')?;
        Some((stream, shard.parse().ok()?))
    }
}

/// A stream's live counter item.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CounterItem {
    #[serde(rename = "PK")]
    pub stream_id: String,
    /// Aggregator clock of the last update (epoch seconds).
    #[serde(default)]
    pub updated_at: Option<i64>,
    /// Most concurrent viewers seen by the aggregator, and when (epoch seconds).
    #[serde(default)]
    pub peak: Option<u64>,
    #[serde(default)]
    pub peak_at: Option<i64>,
    #[serde(flatten)]
    pub tallies: Tallies,
}

/// The dynamic attributes of a counter: `b{epoch}` buckets, `q{shard}` watermarks and
/// `h{minute}` history.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tallies {
    /// Bucket (epoch seconds) → sessions expiring there.
    pub buckets: BTreeMap<i64, i64>,
    /// Sessions-table shard → highest stream sequence number applied.
    pub watermarks: BTreeMap<u32, SequenceNumber>,
    /// Minute (epoch seconds of its start) → most viewers the aggregator saw in it.
    pub history: BTreeMap<i64, u64>,
}

impl Tallies {
    /// The dynamic attributes held, for pruning by the next update.
    pub fn known(&self) -> crate::histogram::KnownAttributes {
        crate::histogram::KnownAttributes {
            buckets: self.buckets.keys().copied().collect(),
            minutes: self.history.keys().copied().collect(),
        }
    }
}

/// Attribute name of a bucket.
pub fn bucket_attribute(bucket: i64) -> String {
    format!("b{bucket}")
}

/// Attribute name of a minute's viewer peak.
pub fn minute_attribute(minute: i64) -> String {
    format!("h{minute}")
}

/// Attribute name of a shard's watermark.
pub fn watermark_attribute(shard: u32) -> String {
    format!("q{shard}")
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
                    } else if let Some(minute) = numbered(&name, 'h').and_then(|n| n.parse().ok()) {
                        tallies.history.insert(minute, map.next_value()?);
                    } else if let Some(shard) = numbered(&name, 'q').and_then(|n| n.parse().ok()) {
                        let text: String = map.next_value()?;
                        let mark = SequenceNumber::parse(&text).ok_or_else(|| {
                            serde::de::Error::custom(format!("{name} is not a sequence number"))
                        })?;
                        tallies.watermarks.insert(shard, mark);
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
    fn a_counter_item_maps_buckets_watermarks_and_peak() {
        let n = |v: &str| AttributeValue::N(v.to_owned());
        let s = |v: &str| AttributeValue::S(v.to_owned());
        let item: HashMap<String, AttributeValue> = HashMap::from([
            ("PK".to_owned(), s("st")),
            ("SK".to_owned(), s("live")),
            ("b1700000015".to_owned(), n("3")),
            ("b1700000020".to_owned(), n("-1")),
            ("q7".to_owned(), s(&format!("{:0>48}", "123"))),
            ("peak".to_owned(), n("9")),
            ("peakAt".to_owned(), n("1700000001")),
            ("updatedAt".to_owned(), n("1700000002")),
            ("h1699999980".to_owned(), n("4")),
            ("bogus".to_owned(), s("ignored")),
        ]);
        let counter: CounterItem = serde_dynamo::from_item(item).expect("maps");
        assert_eq!(counter.stream_id, "st");
        assert_eq!(counter.peak, Some(9));
        assert_eq!(counter.peak_at, Some(1_700_000_001));
        assert_eq!(counter.updated_at, Some(1_700_000_002));
        assert_eq!(
            counter.tallies.buckets,
            BTreeMap::from([(1_700_000_015, 3), (1_700_000_020, -1)])
        );
        assert_eq!(
            counter.tallies.watermarks,
            BTreeMap::from([(7, SequenceNumber::parse("123").expect("digits"))])
        );
    }

    #[test]
    fn a_session_row_round_trips_and_names_its_shard() {
        let row = SessionRow {
            key: ItemKey::session("st", 3, "abc"),
            state: SessionState {
                stream_id: "st".into(),
                exp_date: 1_700_000_015,
                last_ts: 5,
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
        assert_eq!(image.stream_and_shard(), Some(("st", 3)));
    }
}
