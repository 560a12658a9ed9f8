//! The expiry histogram (see `docs/design.md`): how stream records move sessions between expiry
//! buckets, how one batch becomes one counter update per stream, and how a reader turns the
//! buckets into a viewer count. Plain functions over plain types; the store sends what they plan.
//!
//! Dedupe is by batch fingerprint, never by sequence-number order: Lambda keeps the order of one
//! *item's* records only, so no order across items of a stream may be assumed. A plan carries
//! the fingerprint of the exact set of records it applies (their `eventID`s, which DynamoDB
//! Streams makes globally unique); the counter keeps the last few fingerprints in
//! [`FINGERPRINT_SLOTS`] fixed slots, and an update whose fingerprint a slot still holds is that
//! same set applied before. Anything else is applied: a record is never skipped unless the very
//! same set of records was applied together.

use crate::config::Timing;
use sha2::{Digest, Sha256};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A DynamoDB Streams sequence number (21 digits on DynamoDB Local, up to 40 on AWS).
///
/// Never parsed into an integer: kept as text and compared by value. Sequence numbers identify
/// the record a batch item failure names; they are never used to decide what was applied.
#[derive(Debug, Clone)]
pub struct SequenceNumber {
    raw: String,
}

impl SequenceNumber {
    /// The most digits accepted.
    pub const MAX_DIGITS: usize = 48;

    /// Accepts 1 to [`Self::MAX_DIGITS`] ASCII digits.
    pub fn parse(text: &str) -> Option<Self> {
        let valid = !text.is_empty()
            && text.len() <= Self::MAX_DIGITS
            && text.bytes().all(|b| b.is_ascii_digit());
        valid.then(|| Self {
            raw: text.to_owned(),
        })
    }

    /// The sequence number as the stream gave it (the batch item failure identifier).
    pub fn as_str(&self) -> &str {
        &self.raw
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
/// which it joined, and what identifies the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionMove {
    pub stream_id: String,
    /// The record's `eventID` (unique in the stream), or its sequence number if it has none.
    pub record_id: String,
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

/// Most buckets `(W + B + G) / B` a configuration may span (16 with the defaults), so that the
/// live counter item stays within 1 KB.
pub const MAX_LIVE_BUCKETS: i64 = 20;

/// Slots for recent fingerprints on a counter item (`f0` … `f7`): a fingerprint lives in slot
/// `fingerprint mod 8` until another update's fingerprint takes the slot.
pub const FINGERPRINT_SLOTS: u32 = 8;

/// 128 bits of SHA-256 over the sorted record ids of one counter request: equal fingerprints
/// mean the same set of records (a collision is a 2^-128 event, not a design case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fingerprint(pub u128);

impl Fingerprint {
    /// The fingerprint of a set of records, whatever their order.
    pub fn of_records<'a>(ids: impl IntoIterator<Item = &'a str>) -> Self {
        let mut ids: Vec<&str> = ids.into_iter().collect();
        ids.sort_unstable();
        ids.dedup();
        let mut hasher = Sha256::new();
        for id in ids {
            hasher.update(id.len().to_le_bytes());
            hasher.update(id.as_bytes());
        }
        Self::from_digest(&hasher.finalize())
    }

    /// The fingerprint of part `index` of a plan split over several requests.
    pub fn part(self, index: usize) -> Self {
        if index == 0 {
            return self;
        }
        let mut hasher = Sha256::new();
        hasher.update(self.0.to_le_bytes());
        hasher.update(index.to_le_bytes());
        Self::from_digest(&hasher.finalize())
    }

    fn from_digest(digest: &[u8]) -> Self {
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Self(u128::from_le_bytes(bytes))
    }

    /// The counter slot this fingerprint is kept in.
    pub fn slot(self) -> u32 {
        (self.0 % u128::from(FINGERPRINT_SLOTS)) as u32
    }

    /// The stored form: 32 lowercase hex digits.
    pub fn to_hex(self) -> String {
        format!("{:032x}", self.0)
    }

    pub fn parse_hex(text: &str) -> Option<Self> {
        (text.len() == 32)
            .then(|| u128::from_str_radix(text, 16).ok())
            .flatten()
            .map(Self)
    }
}

/// Everything one stream's counter must do for one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterPlan {
    pub stream_id: String,
    /// `ADD b{bucket} :delta`, non-zero deltas only, all at buckets `>= now - G`.
    pub deltas: BTreeMap<i64, i64>,
    /// `REMOVE b{bucket}`: buckets older than `now - G`: those the counter is known to hold and
    /// the few just below `now - G`, which any writer may have created.
    pub prune: BTreeSet<i64>,
    /// The records' fingerprint: the update applies only if the counter does not hold it.
    pub fingerprint: Fingerprint,
    /// The aggregator's clock (`updatedAt`), epoch seconds.
    pub now: i64,
    /// How many records the plan applies.
    pub records: usize,
    /// How many of their deltas were dropped as older than `now - G`.
    pub late_deltas: usize,
}

/// One `UpdateItem` of a plan: a plan whose actions exceed [`MAX_ACTIONS_PER_REQUEST`] is
/// split, each part with its own fingerprint, so every request stays far inside DynamoDB's
/// expression limits (300 operators, 4 KB) whatever the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterRequest {
    pub stream_id: String,
    pub deltas: Vec<(i64, i64)>,
    pub prune: Vec<i64>,
    pub fingerprint: Fingerprint,
    pub now: i64,
    /// When the counter item expires (`expiresAt`, the counters table's TTL), epoch seconds.
    pub expires_at: i64,
}

/// Most `ADD` and `REMOVE` actions in one counter request.
pub const MAX_ACTIONS_PER_REQUEST: usize = 64;

/// Buckets just below `now - G` that every update removes, known or not, so that a writer that
/// has not seen the item yet still keeps it small.
pub const BLIND_PRUNE_BUCKETS: i64 = 4;

impl CounterPlan {
    /// The requests that carry out this plan, in order; each sets the item to expire at
    /// `expires_at` (epoch seconds).
    pub fn requests(&self, expires_at: i64) -> Vec<CounterRequest> {
        let deltas: Vec<(i64, i64)> = self.deltas.iter().map(|(&b, &d)| (b, d)).collect();
        let prune: Vec<i64> = self.prune.iter().copied().collect();
        let mut requests = Vec::new();
        let (mut d, mut p) = (deltas.as_slice(), prune.as_slice());
        loop {
            let take_d = d.len().min(MAX_ACTIONS_PER_REQUEST);
            let take_p = p.len().min(MAX_ACTIONS_PER_REQUEST - take_d);
            requests.push(CounterRequest {
                stream_id: self.stream_id.clone(),
                deltas: d[..take_d].to_vec(),
                prune: p[..take_p].to_vec(),
                fingerprint: self.fingerprint.part(requests.len()),
                now: self.now,
                expires_at,
            });
            (d, p) = (&d[take_d..], &p[take_p..]);
            if d.is_empty() && p.is_empty() {
                return requests;
            }
        }
    }
}

/// How much per-minute history a stream keeps (an hour), in its own item.
pub const HISTORY_SECONDS: i64 = 3600;

/// The start (epoch seconds) of the minute holding `now`.
pub fn minute_of(now: i64) -> i64 {
    now - now.rem_euclid(60)
}

/// Plans one stream's counter update from its records in one batch.
///
/// Returns `None` when nothing changes the count: every record either has no live delta or
/// moves a session within one bucket, or the deltas cancel out.
pub fn plan_counter_update(
    stream_id: &str,
    moves: &[SessionMove],
    known_buckets: &BTreeSet<i64>,
    timing: &Timing,
    now: i64,
) -> Option<CounterPlan> {
    let oldest_live = timing.oldest_live_bucket(now);
    let mut deltas: BTreeMap<i64, i64> = BTreeMap::new();
    let mut late_deltas = 0;
    for m in moves {
        late_deltas += usize::from(m.left.is_some_and(|b| b < oldest_live))
            + usize::from(m.joined.is_some_and(|b| b < oldest_live));
        for (bucket, delta) in m.live_deltas(oldest_live) {
            *deltas.entry(bucket).or_default() += delta;
        }
    }
    deltas.retain(|_, d| *d != 0);
    if deltas.is_empty() {
        return None;
    }
    let newest_stale = timing.bucket(oldest_live) - timing.bucket_seconds;
    let blind = (0..BLIND_PRUNE_BUCKETS).map(|i| newest_stale - i * timing.bucket_seconds);
    let prune = known_buckets
        .range(..oldest_live)
        .copied()
        .chain(blind)
        .collect();
    Some(CounterPlan {
        stream_id: stream_id.to_owned(),
        deltas,
        prune,
        fingerprint: Fingerprint::of_records(moves.iter().map(|m| m.record_id.as_str())),
        now,
        records: moves.len(),
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

    fn mv(id: u64, left: Option<i64>, joined: Option<i64>) -> SessionMove {
        SessionMove {
            stream_id: "s".into(),
            record_id: format!("event-{id}"),
            sequence: SequenceNumber::parse(&format!("{id:021}")).expect("digits"),
            left,
            joined,
        }
    }

    fn plan(moves: &[SessionMove]) -> Option<CounterPlan> {
        plan_counter_update("s", moves, &BTreeSet::new(), &T, NOW)
    }

    #[test]
    fn insert_modify_and_remove_move_one_session() {
        // (record, expected deltas)
        let cases: Vec<(SessionMove, Vec<(i64, i64)>)> = vec![
            (mv(1, None, Some(NOW + 15)), vec![(NOW + 15, 1)]),
            (
                mv(1, Some(NOW + 15), Some(NOW + 20)),
                vec![(NOW + 15, -1), (NOW + 20, 1)],
            ),
            (mv(1, Some(NOW + 15), None), vec![(NOW + 15, -1)]),
            // a TTL REMOVE: its bucket is long past, so its delta is dropped
            (mv(1, Some(NOW - 600), None), vec![]),
            // a heartbeat that stays in its bucket changes nothing
            (mv(1, Some(NOW + 15), Some(NOW + 15)), vec![]),
            // exactly at now - G is still live
            (mv(1, Some(NOW - 60), None), vec![(NOW - 60, -1)]),
            (mv(1, Some(NOW - 61), None), vec![]),
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
            mv(1, None, Some(NOW + 15)),
            mv(2, None, Some(NOW + 15)),
            mv(3, Some(NOW + 15), Some(NOW + 20)),
            mv(4, Some(NOW - 300), None),
        ])
        .expect("plan");
        assert_eq!(p.deltas, BTreeMap::from([(NOW + 15, 1), (NOW + 20, 1)]));
        assert_eq!(p.records, 4);
        assert_eq!(p.late_deltas, 1);
    }

    #[test]
    fn records_that_cancel_out_need_no_update() {
        assert_eq!(
            plan(&[mv(1, None, Some(NOW + 15)), mv(2, Some(NOW + 15), None)]),
            None
        );
    }

    #[test]
    fn a_fingerprint_names_a_set_of_records_whatever_their_order() {
        let a = Fingerprint::of_records(["e1", "e2", "e3"]);
        assert_eq!(a, Fingerprint::of_records(["e3", "e1", "e2"]));
        assert_ne!(a, Fingerprint::of_records(["e1", "e2"]));
        assert_ne!(a, Fingerprint::of_records(["e1", "e2", "e4"]));
        // ids are length-prefixed: no two sets share a byte stream
        assert_ne!(
            Fingerprint::of_records(["ab", "c"]),
            Fingerprint::of_records(["a", "bc"])
        );
        assert_ne!(a.part(1), a);
        assert_ne!(a.part(1), a.part(2));
        assert_eq!(a.part(0), a);
        assert_eq!(Fingerprint::parse_hex(&a.to_hex()), Some(a));
        assert_eq!(a.to_hex().len(), 32);
        assert_eq!(Fingerprint::parse_hex("xyz"), None);
        assert!(a.slot() < FINGERPRINT_SLOTS);
    }

    #[test]
    fn known_and_recently_stale_buckets_are_pruned_never_live_ones() {
        let known = BTreeSet::from([NOW - 200, NOW - 61, NOW - 60, NOW + 5]);
        let p = plan_counter_update("s", &[mv(1, None, Some(NOW + 15))], &known, &T, NOW)
            .expect("plan");
        // known ones below now - G, and the four buckets just below it
        assert_eq!(
            p.prune,
            BTreeSet::from([NOW - 200, NOW - 80, NOW - 75, NOW - 70, NOW - 65, NOW - 61])
        );
        assert!(p.prune.iter().all(|&b| b < T.oldest_live_bucket(NOW)));
    }

    #[test]
    fn large_plans_split_into_bounded_requests_that_together_do_the_plan() {
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..500 {
            let moves: Vec<SessionMove> = (0..rng.u64(1..400))
                .map(|i| {
                    let bucket = |rng: &mut fastrand::Rng| {
                        rng.bool().then(|| NOW - 100 + 5 * rng.i64(0..300))
                    };
                    mv(i, bucket(&mut rng), bucket(&mut rng))
                })
                .collect();
            let known: BTreeSet<i64> = (0..rng.i64(0..200)).map(|i| NOW - 5000 + 5 * i).collect();
            let Some(p) = plan_counter_update("s", &moves, &known, &T, NOW) else {
                continue;
            };
            let requests = p.requests(NOW + 86_400);
            let mut deltas = BTreeMap::new();
            let mut prune = BTreeSet::new();
            let mut fingerprints = BTreeSet::new();
            for r in &requests {
                assert!(r.deltas.len() + r.prune.len() <= MAX_ACTIONS_PER_REQUEST);
                deltas.extend(r.deltas.iter().copied());
                prune.extend(r.prune.iter().copied());
                assert!(
                    fingerprints.insert(r.fingerprint),
                    "parts have their own fingerprints"
                );
            }
            assert_eq!(deltas, p.deltas);
            assert_eq!(prune, p.prune);
            assert_eq!(requests[0].fingerprint, p.fingerprint);
        }
    }

    /// The defect a sequence-number watermark had: two lanes of one shard, each keeping the
    /// order of its own items, the later lane committing first. Fingerprint dedupe applies both.
    #[test]
    fn a_later_lane_committing_first_never_hides_the_earlier_lanes_records() {
        let mut slots: BTreeMap<u32, Fingerprint> = BTreeMap::new();
        let mut buckets: BTreeMap<i64, i64> = BTreeMap::new();
        let mut apply = |moves: &[SessionMove]| {
            let Some(p) = plan(moves) else {
                return viewers(&buckets, NOW);
            };
            for r in p.requests(NOW + 86_400) {
                if slots.get(&r.fingerprint.slot()) == Some(&r.fingerprint) {
                    continue; // the same set applied before
                }
                slots.insert(r.fingerprint.slot(), r.fingerprint);
                for (b, d) in r.deltas {
                    *buckets.entry(b).or_default() += d;
                }
            }
            viewers(&buckets, NOW)
        };
        let sessions: Vec<SessionMove> = (0..40).map(|i| mv(i, None, Some(NOW + 15))).collect();
        let (early, late): (Vec<_>, Vec<_>) = sessions
            .iter()
            .cloned()
            .partition(|m| m.sequence < SequenceNumber::parse("20").expect("digits"));
        assert_eq!(apply(&late), 20);
        assert_eq!(apply(&early), 40);
        // an exact redelivery of either lane's batch is recognised
        assert_eq!(apply(&early), 40);
        assert_eq!(apply(&late), 40);
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
        assert_eq!(SequenceNumber::parse("0012"), SequenceNumber::parse("12"));
        for bad in ["", "12a", "-1", &"1".repeat(49)] {
            assert_eq!(SequenceNumber::parse(bad), None, "{bad:?}");
        }
    }
}
