//! The expiry histogram (see `docs/design.md`): how stream records move sessions between expiry
//! buckets (and mark the seconds sessions began and stopped counting), how one batch becomes one
//! counter update per stream, how a reader turns the buckets into a viewer count, and how the
//! count of a recent second is read back for the history ([`viewers_at`]). Plain functions over
//! plain types; the store sends what they plan.
//!
//! Dedupe is by *receipt*, never by sequence-number order: Lambda keeps the order of one
//! *item's* records only, so no order across items of a stream may be assumed. Every retry the
//! aggregator lets Lambda make starts at the batch's first record (it reports that record when
//! anything failed, and the deployments do not bisect), so a redelivery of a stream's records
//! begins with the same record as the delivery before it and holds the same records in the same
//! order, or more of them. The counter update writes a [`Receipt`] named after the stream's
//! first record in the batch ([`ReceiptKey`]): how many of the stream's records it applied and
//! their [`Fingerprint`]. A redelivery finds the receipt under its own name, skips exactly the
//! records it covers and applies the rest. A receipt is only replaced by a delivery that
//! starts with the same record, never by another update, and removed once its batch succeeded.

use crate::ids::StreamId;
use crate::timing::Timing;
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

/// One stream record, reduced to what the histogram needs: the second its new state began,
/// which bucket the session left and which it joined, and what identifies the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionMove {
    pub stream_id: StreamId,
    /// The record's `eventID` (unique in the stream), or its sequence number if it has none.
    pub record_id: String,
    pub sequence: SequenceNumber,
    /// The second (epoch) from which the new state holds: the new image's receive second (for a
    /// deletion, when it happened).
    pub at: i64,
    /// `bucket(OldImage.expDate)` if the old image was watching and still counting at `at`
    /// (`expDate >= at`); an old state that had expired before is not left, it ended.
    pub left: Option<i64>,
    /// `bucket(NewImage.expDate)` if the new image exists and is watching.
    pub joined: Option<i64>,
    /// The record creates the session's row (no old image): a session started, counted in the
    /// minute of `at` (docs/design.md, "Figures").
    pub new_session: bool,
    /// The session's viewer (`userId`) is first seen with it: set by the aggregator from the
    /// viewer's marker (only on a record that creates a row), counted in the minute of `at`.
    pub new_viewer: bool,
}

impl SessionMove {
    /// The record's change at `s{at}`: `+1` when the session begins counting at `at` (a first
    /// start, or a start after it had expired), `-1` when it stops counting there (a `pause`
    /// or `stop` while counting), `0` when a counting session goes on counting.
    pub fn start_delta(&self) -> i64 {
        i64::from(self.joined.is_some()) - i64::from(self.left.is_some())
    }

    /// The record's deltas that still matter at `now` (buckets at or after `now - G`).
    fn live_deltas(&self, oldest_live: i64) -> impl Iterator<Item = (i64, i64)> {
        let left = self.left.filter(|&b| b >= oldest_live).map(|b| (b, -1));
        let joined = self.joined.filter(|&b| b >= oldest_live).map(|b| (b, 1));
        let cancel = left.is_some() && left.map(|(b, _)| b) == joined.map(|(b, _)| b);
        left.into_iter().chain(joined).filter(move |_| !cancel)
    }
}

/// 64 bits of SHA-256 over the sorted record ids of a set of records: equal fingerprints of
/// two sets that begin with the same record mean the same set (a collision is a 2^-64 event,
/// not a design case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fingerprint(pub u64);

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
        Self(first_u64(&hasher.finalize()))
    }

    /// The stored form: 16 lowercase hex digits.
    pub fn to_hex(self) -> String {
        format!("{:016x}", self.0)
    }

    pub fn parse_hex(text: &str) -> Option<Self> {
        (text.len() == 16)
            .then(|| u64::from_str_radix(text, 16).ok())
            .flatten()
            .map(Self)
    }
}

fn first_u64(digest: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(bytes)
}

/// The name of a receipt: 48 bits of SHA-256 of the `eventID` of the first of a stream's
/// records in a batch. Every delivery that starts with that record has the same name; two
/// deliveries in flight at once start with different records (a record is in one lane), so
/// their names differ but for a 2^-48 chance per pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReceiptKey(u64);

impl ReceiptKey {
    /// The key of the deliveries that begin with record `first`.
    pub fn of_first_record(first: &str) -> Self {
        let digest = Sha256::digest(first.as_bytes());
        Self(first_u64(&digest) & 0xffff_ffff_ffff)
    }

    /// The attribute that holds it on the live counter: `r` and 12 hex digits.
    pub fn attribute(self) -> String {
        format!("r{:012x}", self.0)
    }

    /// The key of a receipt attribute name, if `name` is one.
    pub fn from_attribute(name: &str) -> Option<Self> {
        let hex = name.strip_prefix('r')?;
        (hex.len() == 12 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| u64::from_str_radix(hex, 16).ok().map(Self))
            .flatten()
    }
}

/// What a counter holds of one delivery of a stream's records: of the records that begin with
/// its key's record, in batch order, the first `records` were applied, and their fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// When it was written (aggregator clock, epoch seconds): receipts older than
    /// [`receipt_lifetime`] are swept.
    pub at: i64,
    pub records: usize,
    pub fingerprint: Fingerprint,
}

/// How long a receipt is kept at most: `W + B + G` and a minute for clocks. A redelivery later
/// than `W + B + G` after its records were received has no delta left to apply (every bucket it
/// touches is older than `now - G`), so it needs no receipt. A receipt is normally removed as
/// soon as its batch succeeded; this sweep only removes those of invocations that died first.
pub fn receipt_lifetime(timing: &Timing) -> i64 {
    timing.window_seconds + timing.bucket_seconds + timing.grace_seconds + 60
}

impl Receipt {
    /// The receipt of `moves` (one stream's records of a delivery, in batch order), at `at`.
    pub fn of(moves: &[SessionMove], at: i64) -> Self {
        Self {
            at,
            records: moves.len(),
            fingerprint: Fingerprint::of_records(moves.iter().map(|m| m.record_id.as_str())),
        }
    }

    /// The stored form: `"{at}.{records}.{fingerprint}"`.
    pub fn to_text(&self) -> String {
        format!("{}.{}.{}", self.at, self.records, self.fingerprint.to_hex())
    }

    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split('.');
        let at = parts.next()?.parse().ok()?;
        let records = parts.next()?.parse().ok()?;
        let fingerprint = Fingerprint::parse_hex(parts.next()?)?;
        parts.next().is_none().then_some(Self {
            at,
            records,
            fingerprint,
        })
    }

    /// What a delivery of `moves` (beginning with this receipt's record) still has to apply.
    pub fn redelivery(&self, moves: &[SessionMove]) -> Redelivery {
        if moves.len() < self.records {
            // Lambda keeps a lane's records in order: a shorter delivery from the same first
            // record holds records this receipt covers.
            return Redelivery::Shorter;
        }
        let applied =
            Fingerprint::of_records(moves[..self.records].iter().map(|m| m.record_id.as_str()));
        if applied != self.fingerprint {
            Redelivery::Unrelated
        } else if moves.len() == self.records {
            Redelivery::Applied
        } else {
            Redelivery::Rest(self.records)
        }
    }
}

/// How a delivery relates to the receipt its first record names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redelivery {
    /// The very records the receipt covers: nothing to apply.
    Applied,
    /// The receipt's records and more: apply those from this index on.
    Rest(usize),
    /// Fewer records than the receipt covers (Lambda does not shorten a retry; counted).
    Shorter,
    /// Not the records the receipt covers (a name collision): applied whole, never skipped.
    Unrelated,
}

/// What an aggregator knows of a stream's live counter: the buckets and receipts it held when
/// last seen (so old ones can be removed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownCounter {
    pub buckets: BTreeSet<i64>,
    pub starts: BTreeSet<i64>,
    pub new_sessions: BTreeSet<i64>,
    pub new_viewers: BTreeSet<i64>,
    pub receipts: BTreeMap<ReceiptKey, Receipt>,
}

/// The receipt a counter update writes, and what its name must hold for the update to apply:
/// nothing (a first delivery), or the receipt a redelivery found there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiptWrite {
    pub key: ReceiptKey,
    pub receipt: Receipt,
    pub replaces: Option<Receipt>,
}

/// Everything one stream's counter must do for one run of its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterPlan {
    pub stream_id: StreamId,
    /// `ADD b{bucket} :delta`, non-zero deltas only, all at buckets `>= now - G`.
    pub deltas: BTreeMap<i64, i64>,
    /// `ADD s{second} :delta`, non-zero only, all at seconds history still reads
    /// (after [`oldest_published_second`]).
    pub starts: BTreeMap<i64, i64>,
    /// `ADD n{minute} :count`: sessions started in a minute whose seconds history still reads.
    pub new_sessions: BTreeMap<i64, i64>,
    /// `ADD u{minute} :count`: viewers first seen in such a minute.
    pub new_viewers: BTreeMap<i64, i64>,
    /// `REMOVE b{bucket}`: buckets older than `now - G`: those the counter is known to hold and
    /// the few just below `now - G`, which any writer may have created.
    pub prune: BTreeSet<i64>,
    /// `REMOVE s{second}`: start seconds history no longer reads that the counter is known to
    /// hold.
    pub prune_starts: BTreeSet<i64>,
    /// `REMOVE n{minute}`: minutes every second of which history no longer reads that the
    /// counter is known to hold.
    pub prune_new_sessions: BTreeSet<i64>,
    /// `REMOVE u{minute}`, as `n{minute}`.
    pub prune_new_viewers: BTreeSet<i64>,
    /// `REMOVE r{key}`: receipts known to be older than [`receipt_lifetime`] (at most
    /// [`MAX_STALE_RECEIPTS`] a plan).
    pub stale_receipts: BTreeSet<ReceiptKey>,
    /// The receipt written with the deltas, in the same request.
    pub receipt: ReceiptWrite,
    /// The aggregator's clock (`updatedAt`), epoch seconds.
    pub now: i64,
    /// How many records the plan applies.
    pub records: usize,
    /// How many of their deltas were dropped as older than `now - G`.
    pub late_deltas: usize,
    /// How many of their start deltas (and sessions started) were dropped as older than the
    /// seconds history still reads: the history of the seconds between them and now was
    /// published without them.
    pub late_starts: usize,
}

/// One `UpdateItem` of a plan. The first carries every delta and the receipt, conditioned on
/// the receipt's name; when a plan's `REMOVE`s exceed [`MAX_ACTIONS_PER_REQUEST`] the rest
/// follow in requests that only remove (which is idempotent), so every request stays far
/// inside DynamoDB's expression limits (300 operators, 4 KB) whatever the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterRequest {
    pub stream_id: StreamId,
    pub deltas: Vec<(i64, i64)>,
    pub starts: Vec<(i64, i64)>,
    pub new_sessions: Vec<(i64, i64)>,
    pub new_viewers: Vec<(i64, i64)>,
    pub prune: Vec<i64>,
    pub prune_starts: Vec<i64>,
    pub prune_new_sessions: Vec<i64>,
    pub prune_new_viewers: Vec<i64>,
    pub remove_receipts: Vec<ReceiptKey>,
    /// Only on the first request of a plan.
    pub receipt: Option<ReceiptWrite>,
    pub now: i64,
    /// When the counter item expires (`expiresAt`, the counters table's TTL), epoch seconds.
    pub expires_at: i64,
}

/// Most `ADD` and `REMOVE` actions in one counter request.
pub const MAX_ACTIONS_PER_REQUEST: usize = 64;

/// Most distinct tallies (buckets, start seconds and minutes of sessions started) the records of one run may touch, so a
/// run's deltas always fit in the first request with its receipt.
pub const MAX_TALLIES_PER_RUN: usize = 48;

/// Receipts outstanding at once that keep the largest live item a valid configuration allows
/// within 1 KB (a unit test builds it). A receipt is outstanding from its update until its batch
/// succeeded: deliveries in flight, and those waiting for Lambda's retry.
pub const RECEIPTS_IN_ONE_KB: usize = 4;

/// Most old receipts one plan removes.
pub const MAX_STALE_RECEIPTS: usize = 8;

/// Buckets just below `now - G` that every update removes, known or not, so that a writer that
/// has not seen the item yet still keeps it small.
pub const BLIND_PRUNE_BUCKETS: i64 = 4;

impl CounterPlan {
    /// The requests that carry out this plan, in order; each sets the item to expire at
    /// `expires_at` (epoch seconds).
    pub fn requests(&self, expires_at: i64) -> Vec<CounterRequest> {
        let pairs = |m: &BTreeMap<i64, i64>| -> Vec<(i64, i64)> {
            m.iter().map(|(&k, &d)| (k, d)).collect()
        };
        let (deltas, starts, new_sessions, new_viewers) = (
            pairs(&self.deltas),
            pairs(&self.starts),
            pairs(&self.new_sessions),
            pairs(&self.new_viewers),
        );
        let receipts: Vec<ReceiptKey> = self.stale_receipts.iter().copied().collect();
        let removes: Vec<(Tally, i64)> = (self.prune.iter().map(|&b| (Tally::Bucket, b)))
            .chain(self.prune_starts.iter().map(|&s| (Tally::Start, s)))
            .chain(
                self.prune_new_sessions
                    .iter()
                    .map(|&m| (Tally::NewSessions, m)),
            )
            .chain(
                self.prune_new_viewers
                    .iter()
                    .map(|&m| (Tally::NewViewers, m)),
            )
            .collect();
        let adds = deltas.len() + starts.len() + new_sessions.len() + new_viewers.len();
        let room = MAX_ACTIONS_PER_REQUEST.saturating_sub(adds + receipts.len());
        let (first, rest) = removes.split_at(room.min(removes.len()));
        let request = |adds: [Vec<(i64, i64)>; 4], removes: &[(Tally, i64)], receipts, receipt| {
            let pick = |tally: Tally| -> Vec<i64> {
                removes
                    .iter()
                    .filter(|(t, _)| *t == tally)
                    .map(|(_, n)| *n)
                    .collect()
            };
            let [deltas, starts, new_sessions, new_viewers] = adds;
            CounterRequest {
                stream_id: self.stream_id.clone(),
                deltas,
                starts,
                new_sessions,
                new_viewers,
                prune: pick(Tally::Bucket),
                prune_starts: pick(Tally::Start),
                prune_new_sessions: pick(Tally::NewSessions),
                prune_new_viewers: pick(Tally::NewViewers),
                remove_receipts: receipts,
                receipt,
                now: self.now,
                expires_at,
            }
        };
        let mut requests = vec![request(
            [deltas, starts, new_sessions, new_viewers],
            first,
            receipts,
            Some(self.receipt),
        )];
        for chunk in rest.chunks(MAX_ACTIONS_PER_REQUEST) {
            requests.push(request(Default::default(), chunk, Vec::new(), None));
        }
        requests
    }
}

/// The kinds of tally a live counter holds (apart from receipts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Tally {
    /// `b{bucket}`
    Bucket,
    /// `s{second}`
    Start,
    /// `n{minute}`
    NewSessions,
    /// `u{minute}`
    NewViewers,
}

/// A second's count is published in the history once it is this old (s): by then the records
/// received in it have been applied, unless one was late by more than this (counted as a late
/// start, `LateStarts`).
pub const HISTORY_LAG_SECONDS: i64 = 10;

/// How many seconds back from [`HISTORY_LAG_SECONDS`] each counter update publishes again, so
/// that updates up to this far apart leave no second unpublished.
pub const HISTORY_SPAN_SECONDS: i64 = 10;

/// The seconds a counter update at `now` publishes: `now - LAG - SPAN ..= now - LAG`.
pub fn published_seconds(now: i64) -> std::ops::RangeInclusive<i64> {
    oldest_published_second(now)..=now - HISTORY_LAG_SECONDS
}

/// The oldest second a counter update at `now` publishes; start deltas at or before it are
/// never read again.
pub fn oldest_published_second(now: i64) -> i64 {
    now.saturating_sub(HISTORY_LAG_SECONDS + HISTORY_SPAN_SECONDS)
}

/// The start (epoch seconds) of the minute holding `now`.
pub fn minute_of(now: i64) -> i64 {
    now - now.rem_euclid(60)
}

/// One stream's records of a delivery (in batch order) cut into runs of consecutive records
/// that touch at most [`MAX_TALLIES_PER_RUN`] distinct tallies (buckets, start seconds and
/// minutes of sessions started);
/// each run is applied by its own update with its own receipt. The cut depends only on the
/// records, never on the clock, so a redelivery that begins with the same records cuts them
/// the same way (its last run may be longer).
pub fn runs(moves: &[SessionMove]) -> Vec<&[SessionMove]> {
    /// The tallies a record touches.
    fn touched(m: &SessionMove) -> impl Iterator<Item = (Tally, i64)> {
        let start = (m.start_delta() != 0).then_some((Tally::Start, m.at));
        let new_session = m
            .new_session
            .then_some((Tally::NewSessions, minute_of(m.at)));
        let new_viewer = m.new_viewer.then_some((Tally::NewViewers, minute_of(m.at)));
        let buckets = m
            .left
            .into_iter()
            .chain(m.joined)
            .map(|b| (Tally::Bucket, b));
        buckets.chain(start).chain(new_session).chain(new_viewer)
    }
    let mut runs = Vec::new();
    let (mut start, mut tallies) = (0, BTreeSet::new());
    for (i, m) in moves.iter().enumerate() {
        let new = touched(m).filter(|t| !tallies.contains(t)).count();
        if tallies.len() + new > MAX_TALLIES_PER_RUN {
            runs.push(&moves[start..i]);
            (start, tallies) = (i, BTreeSet::new());
        }
        tallies.extend(touched(m));
    }
    if start < moves.len() {
        runs.push(&moves[start..]);
    }
    runs
}

/// Plans the counter update of one run of a stream's records (see [`runs`]): the deltas of
/// `run[from..]` (the records a receipt does not already cover), with the receipt of the whole
/// run, written where `replaces` is (or nothing is).
///
/// Returns `None` when nothing changes the count or the sessions started: every record either
/// has no live delta or moves a session within one bucket, or the deltas cancel out, and none
/// creates a session's row. Nothing then needs a receipt either: applying those records again
/// changes nothing.
pub fn plan_counter_update(
    stream_id: &StreamId,
    run: &[SessionMove],
    from: usize,
    replaces: Option<Receipt>,
    known: &KnownCounter,
    timing: &Timing,
    now: i64,
) -> Option<CounterPlan> {
    let first = run.first()?;
    let oldest_live = timing.oldest_live_bucket(now);
    let oldest_read = oldest_published_second(now);
    let mut deltas: BTreeMap<i64, i64> = BTreeMap::new();
    let mut starts: BTreeMap<i64, i64> = BTreeMap::new();
    let mut new_sessions: BTreeMap<i64, i64> = BTreeMap::new();
    let mut new_viewers: BTreeMap<i64, i64> = BTreeMap::new();
    let (mut late_deltas, mut late_starts) = (0, 0);
    let applied = run.get(from..).unwrap_or_default();
    for m in applied {
        late_deltas += usize::from(m.left.is_some_and(|b| b < oldest_live))
            + usize::from(m.joined.is_some_and(|b| b < oldest_live));
        for (bucket, delta) in m.live_deltas(oldest_live) {
            *deltas.entry(bucket).or_default() += delta;
        }
        let start = m.start_delta();
        if m.at <= oldest_read {
            late_starts += usize::from(start != 0 || m.new_session);
            continue;
        }
        if start != 0 {
            *starts.entry(m.at).or_default() += start;
        }
        if m.new_session {
            *new_sessions.entry(minute_of(m.at)).or_default() += 1;
        }
        if m.new_viewer {
            *new_viewers.entry(minute_of(m.at)).or_default() += 1;
        }
    }
    deltas.retain(|_, d| *d != 0);
    starts.retain(|_, d| *d != 0);
    if deltas.is_empty() && starts.is_empty() && new_sessions.is_empty() && new_viewers.is_empty() {
        return None;
    }
    let newest_stale = timing.bucket(oldest_live) - timing.bucket_seconds;
    let blind = (0..BLIND_PRUNE_BUCKETS).map(|i| newest_stale - i * timing.bucket_seconds);
    let prune = known
        .buckets
        .range(..oldest_live)
        .copied()
        .chain(blind)
        .collect();
    let prune_starts = known.starts.range(..=oldest_read).copied().collect();
    // A minute is pruned once its last second is no longer read.
    let unread_minutes = |minutes: &BTreeSet<i64>| -> BTreeSet<i64> {
        minutes.range(..=oldest_read - 59).copied().collect()
    };
    let prune_new_sessions = unread_minutes(&known.new_sessions);
    let prune_new_viewers = unread_minutes(&known.new_viewers);
    let key = ReceiptKey::of_first_record(&first.record_id);
    let stale_receipts = known
        .receipts
        .iter()
        .filter(|(k, r)| **k != key && r.at < now - receipt_lifetime(timing))
        .map(|(k, _)| *k)
        .take(MAX_STALE_RECEIPTS)
        .collect();
    Some(CounterPlan {
        stream_id: stream_id.clone(),
        deltas,
        starts,
        new_sessions,
        new_viewers,
        prune,
        prune_starts,
        prune_new_sessions,
        prune_new_viewers,
        stale_receipts,
        receipt: ReceiptWrite {
            key,
            receipt: Receipt::of(run, now),
            replaces,
        },
        now,
        records: applied.len(),
        late_deltas,
        late_starts,
    })
}

/// `viewers(now) = sum of b{e} for e >= now`, never below zero: the live count.
pub fn viewers(buckets: &BTreeMap<i64, i64>, now: i64) -> u64 {
    let sum: i64 = buckets.range(now..).map(|(_, n)| n).sum();
    sum.max(0).unsigned_abs()
}

/// The count at a past second `t` once every record received up to `t` is applied:
/// `sum of b{e} for e >= t  -  sum of s{r} for r > t`, never below zero. Exact for every `t`
/// whose buckets and later start seconds the item still holds (`t >= now - G`, and `t` at or
/// after [`oldest_published_second`]); records received after `t` change neither term's
/// difference, whatever order they were applied in (docs/design.md §3).
pub fn viewers_at(buckets: &BTreeMap<i64, i64>, starts: &BTreeMap<i64, i64>, t: i64) -> u64 {
    let ending: i64 = buckets.range(t..).map(|(_, n)| n).sum();
    let later: i64 = starts.range(t + 1..).map(|(_, n)| n).sum();
    (ending - later).max(0).unsigned_abs()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timing = Timing::DEFAULT;
    const NOW: i64 = 1_000_000;

    fn stream() -> StreamId {
        StreamId::parse("s").expect("valid")
    }

    fn mv(id: u64, left: Option<i64>, joined: Option<i64>) -> SessionMove {
        SessionMove {
            stream_id: stream(),
            record_id: format!("event-{id}"),
            sequence: SequenceNumber::parse(&format!("{id:021}")).expect("digits"),
            at: NOW,
            left,
            joined,
            new_session: false,
            new_viewer: false,
        }
    }

    fn plan(moves: &[SessionMove]) -> Option<CounterPlan> {
        plan_counter_update(&stream(), moves, 0, None, &KnownCounter::default(), &T, NOW)
    }

    #[test]
    fn sessions_started_are_tallied_per_minute_and_late_ones_counted_as_late() {
        let new = |id, at| SessionMove {
            at,
            new_session: true,
            ..mv(id, None, Some(NOW + 15))
        };
        let (m, oldest) = (minute_of(NOW), oldest_published_second(NOW));
        let p = plan(&[
            new(1, NOW),
            new(2, NOW),
            new(3, oldest + 1),
            new(4, oldest),
            new(5, m - 1),
            mv(6, None, Some(NOW + 15)),
        ])
        .expect("a plan");
        assert_eq!(p.new_sessions, BTreeMap::from([(m, 3)]));
        assert_eq!(
            p.late_starts, 2,
            "received at or before the oldest second read"
        );
        // A new session whose deltas cancel another's still makes an update.
        let stop = SessionMove {
            joined: None,
            ..mv(6, Some(NOW + 15), None)
        };
        let p = plan(&[new(7, NOW), stop]).expect("a plan");
        assert!(p.deltas.is_empty() && p.starts.is_empty());
        assert_eq!(p.new_sessions, BTreeMap::from([(m, 1)]));
        // A minute is pruned once its last second is no longer read.
        let known = KnownCounter {
            new_sessions: BTreeSet::from([minute_of(oldest) - 60, minute_of(oldest)]),
            ..KnownCounter::default()
        };
        let p = plan_counter_update(&stream(), &[new(8, NOW)], 0, None, &known, &T, NOW);
        let expected = if oldest.rem_euclid(60) == 59 {
            BTreeSet::from([minute_of(oldest) - 60, minute_of(oldest)])
        } else {
            BTreeSet::from([minute_of(oldest) - 60])
        };
        assert_eq!(p.expect("a plan").prune_new_sessions, expected);
    }

    #[test]
    fn viewers_first_seen_are_tallied_per_minute_beside_sessions_started() {
        let (m, oldest) = (minute_of(NOW), oldest_published_second(NOW));
        let new = |id, at, new_viewer| SessionMove {
            at,
            new_session: true,
            new_viewer,
            ..mv(id, None, Some(NOW + 15))
        };
        let p = plan(&[
            new(1, NOW, true),
            new(2, NOW, false),
            new(3, oldest + 1, true),
            new(4, oldest, true),
        ])
        .expect("a plan");
        assert_eq!(minute_of(oldest + 1), m);
        assert_eq!(p.new_sessions, BTreeMap::from([(m, 3)]));
        assert_eq!(p.new_viewers, BTreeMap::from([(m, 2)]));
        assert_eq!(p.late_starts, 1, "a late start is late for both");
        let known = KnownCounter {
            new_viewers: BTreeSet::from([minute_of(oldest) - 60]),
            ..KnownCounter::default()
        };
        let p = plan_counter_update(&stream(), &[new(5, NOW, true)], 0, None, &known, &T, NOW);
        assert_eq!(
            p.expect("a plan").prune_new_viewers,
            BTreeSet::from([minute_of(oldest) - 60])
        );
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
        assert_eq!(Fingerprint::parse_hex(&a.to_hex()), Some(a));
        assert_eq!(a.to_hex().len(), 16);
        assert_eq!(Fingerprint::parse_hex("xyz"), None);
    }

    #[test]
    fn receipts_round_trip_and_name_the_first_record() {
        let moves: Vec<SessionMove> = (0..3).map(|i| mv(i, None, Some(NOW + 15))).collect();
        let receipt = Receipt::of(&moves, NOW);
        assert_eq!(receipt.records, 3);
        assert_eq!(Receipt::parse(&receipt.to_text()), Some(receipt));
        for bad in [
            "",
            "1.2",
            "1.2.xyz",
            "a.2.0000000000000000",
            "1.2.0000000000000000.4",
        ] {
            assert_eq!(Receipt::parse(bad), None, "{bad:?}");
        }
        let key = ReceiptKey::of_first_record("event-0");
        assert_eq!(ReceiptKey::from_attribute(&key.attribute()), Some(key));
        assert_eq!(key.attribute().len(), 13);
        assert_ne!(key, ReceiptKey::of_first_record("event-1"));
        for bad in ["r12", "rxyzxyzxyzxyz", "b1700000000", "r0000000000000"] {
            assert_eq!(ReceiptKey::from_attribute(bad), None, "{bad:?}");
        }
    }

    /// Every redelivery Lambda makes from the same first record: the same records, more of them
    /// (a batch re-read from the checkpoint after more arrived), fewer; and a receipt of other
    /// records under the name (a collision), which never makes a record skipped.
    #[test]
    fn a_redelivery_applies_exactly_the_records_its_receipt_does_not_cover() {
        let moves: Vec<SessionMove> = (0..6).map(|i| mv(i, None, Some(NOW + 15))).collect();
        let receipt = Receipt::of(&moves[..4], NOW);
        assert_eq!(receipt.redelivery(&moves[..4]), Redelivery::Applied);
        assert_eq!(receipt.redelivery(&moves), Redelivery::Rest(4));
        assert_eq!(receipt.redelivery(&moves[..2]), Redelivery::Shorter);
        let other: Vec<SessionMove> = (10..16).map(|i| mv(i, None, Some(NOW + 15))).collect();
        assert_eq!(receipt.redelivery(&other), Redelivery::Unrelated);
        let rest = plan_counter_update(
            &stream(),
            &moves,
            4,
            Some(receipt),
            &KnownCounter::default(),
            &T,
            NOW + 1,
        )
        .expect("plan");
        assert_eq!(rest.deltas, BTreeMap::from([(NOW + 15, 2)]));
        assert_eq!(rest.records, 2);
        assert_eq!(rest.receipt.receipt.records, 6);
        assert_eq!(rest.receipt.replaces, Some(receipt));
        assert_eq!(
            rest.receipt.key,
            ReceiptKey::of_first_record(&moves[0].record_id)
        );
    }

    #[test]
    fn runs_touch_a_bounded_number_of_buckets_and_cut_a_longer_delivery_the_same_way() {
        let mut rng = fastrand::Rng::with_seed(11);
        let moves: Vec<SessionMove> = (0..3_000)
            .map(|i| {
                let mut bucket = || rng.bool().then(|| NOW - 100 + 5 * rng.i64(0..300));
                mv(i, bucket(), bucket())
            })
            .collect();
        let all = runs(&moves);
        assert!(all.len() > 10);
        assert_eq!(all.iter().map(|r| r.len()).sum::<usize>(), moves.len());
        for run in &all {
            let touched: BTreeSet<i64> = run
                .iter()
                .flat_map(|m| m.left.into_iter().chain(m.joined))
                .collect();
            assert!(touched.len() <= MAX_TALLIES_PER_RUN);
        }
        for cut in [1, 700, 1_999] {
            let shorter = runs(&moves[..cut]);
            let (last, full) = shorter.split_last().expect("runs");
            assert_eq!(full, &all[..full.len()], "cut at {cut}");
            assert!(all[full.len()].starts_with(last));
        }
    }

    #[test]
    fn known_and_recently_stale_buckets_are_pruned_never_live_ones() {
        let old = Receipt {
            at: NOW - receipt_lifetime(&T) - 1,
            records: 1,
            fingerprint: Fingerprint(1),
        };
        let recent = Receipt { at: NOW - 5, ..old };
        let (k1, k2) = (
            ReceiptKey::of_first_record("old"),
            ReceiptKey::of_first_record("recent"),
        );
        let known = KnownCounter {
            buckets: BTreeSet::from([NOW - 200, NOW - 61, NOW - 60, NOW + 5]),
            starts: BTreeSet::from([NOW - 21, NOW - 20, NOW - 19]),
            new_sessions: BTreeSet::from([minute_of(NOW - 79), minute_of(NOW - 78)]),
            new_viewers: BTreeSet::new(),
            receipts: BTreeMap::from([(k1, old), (k2, recent)]),
        };
        let p = plan_counter_update(
            &stream(),
            &[mv(1, None, Some(NOW + 15))],
            0,
            None,
            &known,
            &T,
            NOW,
        )
        .expect("plan");
        assert_eq!(
            p.stale_receipts,
            BTreeSet::from([k1]),
            "only old receipts go"
        );
        // known ones below now - G, and the four buckets just below it
        assert_eq!(
            p.prune,
            BTreeSet::from([NOW - 200, NOW - 80, NOW - 75, NOW - 70, NOW - 65, NOW - 61])
        );
        assert!(p.prune.iter().all(|&b| b < T.oldest_live_bucket(NOW)));
        // known start seconds history no longer reads
        assert_eq!(p.prune_starts, BTreeSet::from([NOW - 21, NOW - 20]));
        assert_eq!(oldest_published_second(NOW), NOW - 20);
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
                    let new_session = rng.bool();
                    SessionMove {
                        at: NOW - rng.i64(0..30),
                        new_session,
                        new_viewer: new_session && rng.bool(),
                        ..mv(i, bucket(&mut rng), bucket(&mut rng))
                    }
                })
                .collect();
            let known = KnownCounter {
                buckets: (0..rng.i64(0..200)).map(|i| NOW - 5000 + 5 * i).collect(),
                starts: (0..rng.i64(0..200)).map(|i| NOW - 300 + i).collect(),
                new_sessions: (0..rng.i64(0..10))
                    .map(|i| minute_of(NOW) - 60 * i)
                    .collect(),
                new_viewers: (0..rng.i64(0..10))
                    .map(|i| minute_of(NOW) - 60 * i)
                    .collect(),
                receipts: BTreeMap::new(),
            };
            for run in runs(&moves) {
                let Some(p) = plan_counter_update(&stream(), run, 0, None, &known, &T, NOW) else {
                    continue;
                };
                let requests = p.requests(NOW + 86_400);
                let (mut deltas, mut starts) = (BTreeMap::new(), BTreeMap::new());
                let (mut prune, mut prune_starts) = (BTreeSet::new(), BTreeSet::new());
                let (mut new_sessions, mut prune_new_sessions) = (BTreeMap::new(), BTreeSet::new());
                let (mut new_viewers, mut prune_new_viewers) = (BTreeMap::new(), BTreeSet::new());
                for (i, r) in requests.iter().enumerate() {
                    let actions = r.deltas.len()
                        + r.starts.len()
                        + r.new_sessions.len()
                        + r.new_viewers.len();
                    let removes = r.prune.len()
                        + r.prune_starts.len()
                        + r.prune_new_sessions.len()
                        + r.prune_new_viewers.len();
                    assert!(actions + removes <= MAX_ACTIONS_PER_REQUEST);
                    assert_eq!(
                        r.receipt.is_some(),
                        i == 0,
                        "the first request has the receipt"
                    );
                    assert!(i == 0 || actions == 0, "later requests only remove");
                    deltas.extend(r.deltas.iter().copied());
                    starts.extend(r.starts.iter().copied());
                    new_sessions.extend(r.new_sessions.iter().copied());
                    prune.extend(r.prune.iter().copied());
                    prune_starts.extend(r.prune_starts.iter().copied());
                    prune_new_sessions.extend(r.prune_new_sessions.iter().copied());
                    new_viewers.extend(r.new_viewers.iter().copied());
                    prune_new_viewers.extend(r.prune_new_viewers.iter().copied());
                }
                assert_eq!((deltas, starts), (p.deltas, p.starts));
                assert_eq!((prune, prune_starts), (p.prune, p.prune_starts));
                assert_eq!(
                    (new_sessions, prune_new_sessions),
                    (p.new_sessions, p.prune_new_sessions)
                );
                assert_eq!(
                    (new_viewers, prune_new_viewers),
                    (p.new_viewers, p.prune_new_viewers)
                );
            }
        }
    }

    /// `viewers_at(t)` against the definition, for sessions starting, heartbeating, pausing,
    /// stopping and coming back after they expired: once every record received up to `t` is
    /// applied, it is the number of sessions whose newest event received by `t` counts at `t`,
    /// whichever records received later are applied too (each session's in order, sessions
    /// interleaved at random).
    #[test]
    fn viewers_at_a_second_is_the_audience_of_that_second_whatever_came_after() {
        let mut rng = fastrand::Rng::with_seed(11);
        let expiry = |r: i64, watching: bool| {
            if watching {
                (r + T.window_seconds + T.bucket_seconds - 1).div_euclid(T.bucket_seconds)
                    * T.bucket_seconds
            } else {
                r
            }
        };
        for round in 0..200 {
            // each session's events: (receive second, watching)
            let sessions: Vec<Vec<(i64, bool)>> = (0..rng.usize(1..12))
                .map(|_| {
                    let mut r = NOW + rng.i64(0..20);
                    (0..rng.usize(1..10))
                        .map(|_| {
                            r += rng.i64(0..25);
                            (r, rng.u8(0..4) != 0)
                        })
                        .collect()
                })
                .collect();
            let truth = |t: i64| -> u64 {
                let counting = sessions.iter().filter(|events| {
                    let newest = events.iter().rev().find(|(r, _)| *r <= t);
                    newest.is_some_and(|&(r, w)| w && expiry(r, w) >= t)
                });
                counting.count() as u64
            };
            // each session's records, as the aggregator reads them
            let records: Vec<Vec<SessionMove>> = sessions
                .iter()
                .map(|events| {
                    let mut old: Option<(i64, bool)> = None;
                    let mut moves = Vec::new();
                    for &(r, w) in events {
                        let left = old
                            .filter(|&(or, ow)| ow && expiry(or, ow) >= r)
                            .map(|(or, ow)| expiry(or, ow));
                        let joined = w.then(|| expiry(r, w));
                        moves.push(SessionMove {
                            at: r,
                            ..mv(0, left, joined)
                        });
                        old = Some((r, w));
                    }
                    moves
                })
                .collect();
            let t = NOW + rng.i64(0..150);
            // everything received by t, then a random prefix of each session's later records
            let mut applied: Vec<SessionMove> = Vec::new();
            for moves in &records {
                let by_t = moves.iter().take_while(|m| m.at <= t).count();
                let extra = rng.usize(0..=moves.len() - by_t);
                applied.extend(moves[..by_t + extra].iter().cloned());
            }
            rng.shuffle(&mut applied);
            let (mut buckets, mut starts) = (BTreeMap::new(), BTreeMap::new());
            for m in &applied {
                for (b, d) in m.live_deltas(i64::MIN) {
                    *buckets.entry(b).or_insert(0) += d;
                }
                *starts.entry(m.at).or_insert(0) += m.start_delta();
            }
            assert_eq!(
                viewers_at(&buckets, &starts, t),
                truth(t),
                "round {round}, t = NOW + {}",
                t - NOW
            );
        }
    }

    /// The defect a sequence-number watermark had: two lanes of one shard, each keeping the
    /// order of its own items, the later lane committing first. Receipts apply both, and
    /// recognise an exact redelivery of either lane's batch, whatever was applied in between.
    #[test]
    fn a_later_lane_committing_first_never_hides_the_earlier_lanes_records() {
        let mut receipts: BTreeMap<ReceiptKey, Receipt> = BTreeMap::new();
        let mut buckets: BTreeMap<i64, i64> = BTreeMap::new();
        let mut apply = |moves: &[SessionMove]| {
            for run in runs(moves) {
                let key = ReceiptKey::of_first_record(&run[0].record_id);
                let (from, replaces) = match receipts.get(&key).map(|r| (r.redelivery(run), *r)) {
                    Some((Redelivery::Applied | Redelivery::Shorter, _)) => continue,
                    Some((Redelivery::Rest(from), r)) => (from, Some(r)),
                    Some((Redelivery::Unrelated, r)) => (0, Some(r)),
                    None => (0, None),
                };
                let known = KnownCounter::default();
                let Some(p) = plan_counter_update(&stream(), run, from, replaces, &known, &T, NOW)
                else {
                    continue;
                };
                receipts.insert(key, p.receipt.receipt);
                for (b, d) in &p.deltas {
                    *buckets.entry(*b).or_default() += d;
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
        // an exact redelivery of either lane's batch is recognised, and so is a longer one
        assert_eq!(apply(&early), 40);
        assert_eq!(apply(&late), 40);
        let mut longer = early.clone();
        longer.push(mv(99, None, Some(NOW + 15)));
        assert_eq!(apply(&longer), 41);
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
