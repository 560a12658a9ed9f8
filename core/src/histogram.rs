//! The expiry histogram (DESIGN §5): how stream records move sessions between expiry buckets,
//! how one batch becomes one counter update per stream, and how a reader turns the buckets into
//! a viewer count. Plain functions over plain types; the store applies what they plan.

use crate::config::Timing;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A DynamoDB Streams sequence number (21 digits on DynamoDB Local, up to 40 on AWS).
///
/// Never parsed into an integer: it is kept as text, and compared and stored left-padded with
/// zeros to [`SequenceNumber::WIDTH`] digits so that text order is numeric order.
#[derive(Debug, Clone)]
pub struct SequenceNumber {
    raw: String,
}

impl SequenceNumber {
    /// Digits of the padded form stored in counter items.
    pub const WIDTH: usize = 48;

    /// Accepts 1 to [`Self::WIDTH`] ASCII digits.
    pub fn parse(text: &str) -> Option<Self> {
        let valid = !text.is_empty()
            && text.len() <= Self::WIDTH
            && text.bytes().all(|b| b.is_ascii_digit());
        valid.then(|| Self {
            raw: text.to_owned(),
        })
    }

    /// The sequence number as the stream gave it (the batch item failure identifier).
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Zero-padded to [`Self::WIDTH`] digits: stored in counters and compared as text.
    pub fn padded(&self) -> String {
        format!("{:0>width$}", self.raw, width = Self::WIDTH)
    }

    fn significant(&self) -> &str {
        let trimmed = self.raw.trim_start_matches('0');
        if trimmed.is_empty() { "0" } else { trimmed }
    }
}

impl Ord for SequenceNumber {
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b) = (self.significant(), other.significant());
        a.len().cmp(&b.len()).then_with(|| a.cmp(b))
    }
}

impl PartialEq for SequenceNumber {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for SequenceNumber {}

impl PartialOrd for SequenceNumber {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// One stream record, reduced to what the histogram needs: which bucket the session left and
/// which it joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionMove {
    pub stream_id: String,
    /// The sessions-table shard of the row (`PK = "{streamId}#{shard}"`). All records of one
    /// partition key arrive in order on one stream shard, so the counter keeps one watermark
    /// per shard.
    pub shard: u32,
    pub sequence: SequenceNumber,
    /// `bucket(OldImage.expDate)` if the old image exists and was watching.
    pub left: Option<i64>,
    /// `bucket(NewImage.expDate)` if the new image exists and is watching.
    pub joined: Option<i64>,
}

impl SessionMove {
    /// The record's deltas that still matter at `now` (buckets at or after `now - G`).
    fn live_deltas(&self, oldest_live: i64) -> impl Iterator<Item = (i64, i64)> {
        let left = self.left.filter(|&b| b >= oldest_live).map(|b| (b, -1));
        let joined = self.joined.filter(|&b| b >= oldest_live).map(|b| (b, 1));
        let cancel = left.is_some() && left.map(|(b, _)| b) == joined.map(|(b, _)| b);
        left.into_iter().chain(joined).filter(move |_| !cancel)
    }
}

/// The range of sequence numbers one update applies for one sessions-table shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatermarkAdvance {
    pub first: SequenceNumber,
    pub last: SequenceNumber,
}

/// Everything one counter `UpdateItem` does for one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterPlan {
    pub stream_id: String,
    /// `ADD b{bucket} :delta`, non-zero deltas only, all at buckets `>= now - G`.
    pub deltas: BTreeMap<i64, i64>,
    /// `REMOVE b{bucket}`: buckets older than `now - G` that the counter is known to hold.
    pub prune: BTreeSet<i64>,
    /// `REMOVE h{minute}`: history minutes older than [`HISTORY_SECONDS`] the counter is known
    /// to hold.
    pub prune_minutes: BTreeSet<i64>,
    /// Per sessions-table shard, the records applied: the update is conditioned on the stored
    /// watermark being below `first` and sets it to `last` (exact dedupe of redelivered records).
    pub watermarks: BTreeMap<u32, WatermarkAdvance>,
    /// The aggregator's clock (`updatedAt`), epoch seconds.
    pub now: i64,
    /// How many records the plan applies (after dedupe).
    pub records: usize,
    /// How many of their deltas were dropped as older than `now - G`.
    pub late_deltas: usize,
}

/// How much per-minute history a counter keeps (an hour: about 1 KB).
pub const HISTORY_SECONDS: i64 = 3600;

/// The start (epoch seconds) of the minute holding `now`.
pub fn minute_of(now: i64) -> i64 {
    now - now.rem_euclid(60)
}

/// The dynamic attributes a counter is known to hold (from its last `ALL_NEW`), so the next
/// update can remove the old ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownAttributes {
    pub buckets: BTreeSet<i64>,
    pub minutes: BTreeSet<i64>,
}

/// Plans one stream's counter update from its records in one batch (in batch order).
///
/// Records at or below the stored watermark of their shard were applied before and are skipped.
/// Returns `None` when nothing is left to change: every remaining record either has no live
/// delta or moves a session within one bucket.
pub fn plan_counter_update(
    stream_id: &str,
    moves: &[SessionMove],
    applied: &BTreeMap<u32, SequenceNumber>,
    known: &KnownAttributes,
    timing: &Timing,
    now: i64,
) -> Option<CounterPlan> {
    let oldest_live = timing.oldest_live_bucket(now);
    let fresh: Vec<&SessionMove> = moves
        .iter()
        .filter(|m| applied.get(&m.shard).is_none_or(|mark| m.sequence > *mark))
        .collect();
    let mut deltas: BTreeMap<i64, i64> = BTreeMap::new();
    let mut late_deltas = 0;
    let mut effective = false;
    for m in &fresh {
        late_deltas += usize::from(m.left.is_some_and(|b| b < oldest_live))
            + usize::from(m.joined.is_some_and(|b| b < oldest_live));
        for (bucket, delta) in m.live_deltas(oldest_live) {
            effective = true;
            *deltas.entry(bucket).or_default() += delta;
        }
    }
    if !effective {
        return None;
    }
    deltas.retain(|_, d| *d != 0);
    let mut watermarks: BTreeMap<u32, WatermarkAdvance> = BTreeMap::new();
    for m in &fresh {
        watermarks
            .entry(m.shard)
            .and_modify(|w| {
                if m.sequence < w.first {
                    w.first = m.sequence.clone();
                }
                if m.sequence > w.last {
                    w.last = m.sequence.clone();
                }
            })
            .or_insert_with(|| WatermarkAdvance {
                first: m.sequence.clone(),
                last: m.sequence.clone(),
            });
    }
    Some(CounterPlan {
        stream_id: stream_id.to_owned(),
        deltas,
        prune: known.buckets.range(..oldest_live).copied().collect(),
        prune_minutes: known
            .minutes
            .range(..now - HISTORY_SECONDS)
            .copied()
            .collect(),
        watermarks,
        now,
        records: fresh.len(),
        late_deltas,
    })
}

/// `viewers(now) = sum of b{e} for e >= now`, never below zero.
pub fn viewers(buckets: &BTreeMap<i64, i64>, now: i64) -> u64 {
    let sum: i64 = buckets.range(now..).map(|(_, n)| n).sum();
    sum.max(0).unsigned_abs()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timing = Timing {
        window_seconds: 15,
        bucket_seconds: 5,
        grace_seconds: 60,
    };
    const NOW: i64 = 1_000_000;

    fn seq(n: u64) -> SequenceNumber {
        SequenceNumber::parse(&format!("{n:021}")).expect("digits")
    }

    fn mv(shard: u32, n: u64, left: Option<i64>, joined: Option<i64>) -> SessionMove {
        SessionMove {
            stream_id: "s".into(),
            shard,
            sequence: seq(n),
            left,
            joined,
        }
    }

    fn plan(moves: &[SessionMove]) -> Option<CounterPlan> {
        plan_counter_update(
            "s",
            moves,
            &BTreeMap::new(),
            &KnownAttributes::default(),
            &T,
            NOW,
        )
    }

    #[test]
    fn insert_modify_and_remove_move_one_session() {
        // (record, expected deltas)
        let cases: Vec<(SessionMove, Vec<(i64, i64)>)> = vec![
            (mv(0, 1, None, Some(NOW + 15)), vec![(NOW + 15, 1)]),
            (
                mv(0, 1, Some(NOW + 15), Some(NOW + 20)),
                vec![(NOW + 15, -1), (NOW + 20, 1)],
            ),
            (mv(0, 1, Some(NOW + 15), None), vec![(NOW + 15, -1)]),
            // a TTL REMOVE: its bucket is long past, so its delta is dropped
            (mv(0, 1, Some(NOW - 600), None), vec![]),
            // a heartbeat that stays in its bucket changes nothing
            (mv(0, 1, Some(NOW + 15), Some(NOW + 15)), vec![]),
            // exactly at now - G is still live
            (mv(0, 1, Some(NOW - 60), None), vec![(NOW - 60, -1)]),
            (mv(0, 1, Some(NOW - 61), None), vec![]),
        ];
        for (record, expected) in cases {
            let got: Vec<(i64, i64)> = plan(std::slice::from_ref(&record))
                .map(|p| p.deltas.into_iter().collect())
                .unwrap_or_default();
            assert_eq!(got, expected, "{record:?}");
        }
    }

    #[test]
    fn deltas_sum_per_bucket_over_the_batch() {
        let p = plan(&[
            mv(0, 1, None, Some(NOW + 15)),
            mv(1, 2, None, Some(NOW + 15)),
            mv(0, 3, Some(NOW + 15), Some(NOW + 20)),
            mv(2, 4, Some(NOW - 300), None),
        ])
        .expect("plan");
        assert_eq!(p.deltas, BTreeMap::from([(NOW + 15, 1), (NOW + 20, 1)]));
        assert_eq!(p.records, 4);
        assert_eq!(p.late_deltas, 1);
        assert_eq!(
            p.watermarks[&0],
            WatermarkAdvance {
                first: seq(1),
                last: seq(3)
            }
        );
        assert_eq!(
            p.watermarks[&1],
            WatermarkAdvance {
                first: seq(2),
                last: seq(2)
            }
        );
    }

    #[test]
    fn cancelling_records_still_advance_the_watermark() {
        // +1 then -1 at one bucket sums to zero, but a retry of only the second record must
        // not apply it again, so the watermark still moves.
        let p = plan(&[
            mv(0, 1, None, Some(NOW + 15)),
            mv(0, 2, Some(NOW + 15), None),
        ])
        .expect("plan");
        assert!(p.deltas.is_empty());
        assert_eq!(p.watermarks[&0].last, seq(2));
    }

    #[test]
    fn records_at_or_below_the_watermark_are_skipped() {
        let applied = BTreeMap::from([(0, seq(2))]);
        let moves = [
            mv(0, 1, None, Some(NOW + 15)),
            mv(0, 2, None, Some(NOW + 15)),
            mv(0, 3, None, Some(NOW + 20)),
        ];
        let p = plan_counter_update("s", &moves, &applied, &KnownAttributes::default(), &T, NOW)
            .expect("plan");
        assert_eq!(p.deltas, BTreeMap::from([(NOW + 20, 1)]));
        assert_eq!(p.watermarks[&0].first, seq(3));
        let all_seen = BTreeMap::from([(0, seq(3))]);
        assert_eq!(
            plan_counter_update("s", &moves, &all_seen, &KnownAttributes::default(), &T, NOW),
            None
        );
    }

    #[test]
    fn known_buckets_older_than_grace_are_pruned() {
        let known = KnownAttributes {
            buckets: BTreeSet::from([NOW - 200, NOW - 61, NOW - 60, NOW + 5]),
            minutes: BTreeSet::from([minute_of(NOW) - 3660, minute_of(NOW) - 3540, minute_of(NOW)]),
        };
        let p = plan_counter_update(
            "s",
            &[mv(0, 1, None, Some(NOW + 15))],
            &BTreeMap::new(),
            &known,
            &T,
            NOW,
        )
        .expect("plan");
        assert_eq!(p.prune, BTreeSet::from([NOW - 200, NOW - 61]));
        assert_eq!(p.prune_minutes, BTreeSet::from([minute_of(NOW) - 3660]));
        assert!(p.prune.iter().all(|b| !p.deltas.contains_key(b)));
    }

    #[test]
    fn viewers_sum_buckets_at_or_after_now() {
        let buckets = BTreeMap::from([(NOW - 5, 4), (NOW, 2), (NOW + 5, 3), (NOW + 10, -1)]);
        assert_eq!(viewers(&buckets, NOW), 4);
        assert_eq!(viewers(&buckets, NOW + 1), 2);
        assert_eq!(viewers(&buckets, NOW + 11), 0);
        assert_eq!(viewers(&BTreeMap::from([(NOW, -3)]), NOW), 0);
    }

    #[test]
    fn sequence_numbers_order_numerically_whatever_their_length() {
        let short = SequenceNumber::parse("999").expect("digits");
        let long = SequenceNumber::parse("1000").expect("digits");
        let aws = SequenceNumber::parse(&"9".repeat(40)).expect("digits");
        assert!(short < long && long < aws);
        assert!(short.padded() < long.padded() && long.padded() < aws.padded());
        assert_eq!(long.padded().len(), SequenceNumber::WIDTH);
        assert_eq!(SequenceNumber::parse("0012"), SequenceNumber::parse("12"));
        for bad in ["", "12a", "-1", &"1".repeat(49)] {
            assert_eq!(SequenceNumber::parse(bad), None, "{bad:?}");
        }
    }
}
