//! Two independent counts to hold the counters against, each computed from the documented rule
//! (a `start` or `heartbeat` received at `r` ms counts through `ceil((r + 1000 W) / 1000 B) * B`;
//! a `stop` ends the session) with this module's own arithmetic, never livecount's:
//!
//! - [`Settled`]: from every session change the counters have taken in (each stream record once,
//!   in the order of its item, whatever lane or batch brought it): what the counter must show
//!   when it counted every change it got exactly once. Equality with it is exactness.
//! - [`SentAudience`]: from every message the players sent, at the moment they sent it: what a
//!   perfect, instant counter would show. The difference is the pipeline's delay (and, under
//!   throttling, what was lost).

use rustc_hash::FxHashMap as HashMap;
use std::collections::BTreeMap;

/// Sessions counting at each second, per stream.
#[derive(Debug, Default)]
struct Histogram {
    /// Last second a session counts in → sessions.
    until: BTreeMap<i64, i64>,
}

impl Histogram {
    fn moved(&mut self, from: Option<i64>, to: Option<i64>) {
        if let Some(s) = from {
            *self.until.entry(s).or_default() -= 1;
        }
        if let Some(s) = to {
            *self.until.entry(s).or_default() += 1;
        }
    }

    fn at(&self, second: i64) -> i64 {
        self.until.range(second..).map(|(_, n)| n).sum()
    }

    fn forget_before(&mut self, second: i64) {
        self.until = self.until.split_off(&second);
    }
}

/// Each stream's histogram.
#[derive(Debug, Default)]
struct PerStream {
    streams: HashMap<u32, Histogram>,
}

impl PerStream {
    fn moved(&mut self, stream: u32, from: Option<i64>, to: Option<i64>) {
        self.streams.entry(stream).or_default().moved(from, to);
    }

    fn viewers(&self, stream: u32, second: i64) -> i64 {
        self.streams.get(&stream).map_or(0, |h| h.at(second))
    }

    fn forget_before(&mut self, second: i64) {
        for histogram in self.streams.values_mut() {
            histogram.forget_before(second);
        }
    }
}

/// The last second a watching event received at `recv_ms` counts in.
fn counts_until(window_s: i64, bucket_s: i64, recv_ms: i64) -> i64 {
    let end = recv_ms + window_s * 1000;
    let bucket_ms = bucket_s * 1000;
    let buckets = end.div_euclid(bucket_ms) + i64::from(end.rem_euclid(bucket_ms) != 0);
    buckets * bucket_s
}

/// A dimension the counters break streams down by, as the oracle reads it: the values listed;
/// a session counts under the one its newest event sent, `other` when it sent one not listed,
/// `none` when it sent none.
#[derive(Debug, Clone)]
pub struct ListedValues {
    pub listed: Vec<String>,
}

impl ListedValues {
    /// Every value a session can count under: the listed ones, then `other` and `none`.
    pub fn all(&self) -> Vec<&str> {
        self.listed
            .iter()
            .map(String::as_str)
            .chain(["other", "none"])
            .collect()
    }

    /// The index in [`ListedValues::all`] of the value a session that sent `sent` counts under.
    fn index_of(&self, sent: Option<&str>) -> u8 {
        let n = self.listed.len();
        match sent {
            None => (n + 1) as u8,
            Some(sent) => self.listed.iter().position(|v| v == sent).unwrap_or(n) as u8,
        }
    }
}

/// Most dimensions the oracle follows.
const MAX_DIMENSIONS: usize = 5;

/// A session's newest change taken: its sequence, the last second it counts in, and its value
/// of each dimension.
#[derive(Debug, Clone, Copy, Default)]
struct Newest {
    sequence: u64,
    until: Option<i64>,
    values: [u8; MAX_DIMENSIONS],
}

/// What the counters must show, from the changes they took in: each stream's viewers and,
/// with dimensions, each of its values' (the sessions whose newest change sent that value).
#[derive(Debug)]
pub struct Settled {
    window_s: i64,
    bucket_s: i64,
    dimensions: Vec<ListedValues>,
    /// (stream, session) → its newest change taken.
    sessions: HashMap<(u32, u32), Newest>,
    streams: PerStream,
    /// (dimension, value index) → each stream's histogram of that value.
    values: HashMap<(u8, u8), PerStream>,
    /// Changes seen again (a retried batch): not counted twice.
    pub repeated: u64,
}

impl Settled {
    pub fn new(window_s: i64, bucket_s: i64) -> Self {
        Self::with_dimensions(window_s, bucket_s, Vec::new())
    }

    /// With the dimensions (at most five) a deployment breaks streams down by.
    pub fn with_dimensions(window_s: i64, bucket_s: i64, dimensions: Vec<ListedValues>) -> Self {
        Self {
            window_s,
            bucket_s,
            dimensions,
            sessions: HashMap::default(),
            streams: PerStream::default(),
            values: HashMap::default(),
            repeated: 0,
        }
    }

    /// One change: the session's newest event as written (its type, receive time and what it
    /// sent for each dimension, in [`Settled::with_dimensions`]' order), with the change's
    /// sequence in its item's order. Returns whether it was new (a change taken again, from a
    /// retried batch, is not counted twice).
    pub fn take(
        &mut self,
        stream: u32,
        session: u32,
        sequence: u64,
        watching: bool,
        recv_ms: i64,
        sent: &[Option<&str>],
    ) -> bool {
        let until = watching.then(|| counts_until(self.window_s, self.bucket_s, recv_ms));
        let mut values = [0; MAX_DIMENSIONS];
        for (d, dimension) in self.dimensions.iter().enumerate().take(MAX_DIMENSIONS) {
            values[d] = dimension.index_of(sent.get(d).copied().flatten());
        }
        let key = (stream, session);
        let old = self.sessions.get(&key).copied();
        if sequence <= old.map_or(0, |o| o.sequence) {
            self.repeated += 1;
            return false;
        }
        self.sessions.insert(
            key,
            Newest {
                sequence,
                until,
                values,
            },
        );
        let from = old.and_then(|o| o.until);
        self.streams.moved(stream, from, until);
        for (d, &now) in values.iter().enumerate().take(self.dimensions.len()) {
            match old.map(|o| o.values[d]) {
                // A session that changed value leaves the old one and joins the new one.
                Some(was) if was != now => {
                    self.value(d, was).moved(stream, from, None);
                    self.value(d, now).moved(stream, None, until);
                }
                _ => self.value(d, now).moved(stream, from, until),
            }
        }
        true
    }

    fn value(&mut self, dimension: usize, value: u8) -> &mut PerStream {
        self.values.entry((dimension as u8, value)).or_default()
    }

    pub fn viewers(&self, stream: u32, second: i64) -> i64 {
        self.streams.viewers(stream, second)
    }

    /// The viewers of value `value` (an index in [`ListedValues::all`]) of dimension
    /// `dimension` of `stream`.
    pub fn value_viewers(&self, dimension: usize, value: usize, stream: u32, second: i64) -> i64 {
        self.values
            .get(&(dimension as u8, value as u8))
            .map_or(0, |v| v.viewers(stream, second))
    }

    /// Drops seconds no one will ask about again.
    pub fn forget_before(&mut self, second: i64) {
        self.streams.forget_before(second);
        for value in self.values.values_mut() {
            value.forget_before(second);
        }
    }
}

/// What a perfect, instant counter would show, from what the players sent.
#[derive(Debug)]
pub struct SentAudience {
    window_s: i64,
    bucket_s: i64,
    sessions: HashMap<u32, Option<i64>>,
    streams: PerStream,
}

impl SentAudience {
    pub fn new(window_s: i64, bucket_s: i64) -> Self {
        Self {
            window_s,
            bucket_s,
            sessions: HashMap::default(),
            streams: PerStream::default(),
        }
    }

    /// A message sent at `sent_ms`, received at once.
    pub fn sent(&mut self, stream: u32, session: u32, watching: bool, sent_ms: i64) {
        let until = watching.then(|| counts_until(self.window_s, self.bucket_s, sent_ms));
        let from = self.sessions.insert(session, until).flatten();
        self.streams.moved(stream, from, until);
    }

    pub fn viewers(&self, stream: u32, second: i64) -> i64 {
        self.streams.viewers(stream, second)
    }

    pub fn forget_before(&mut self, second: i64) {
        self.streams.forget_before(second);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watching_event_counts_for_w_rounded_up_to_b() {
        assert_eq!(counts_until(15, 5, 1_000_000_000), 1_000_015);
        assert_eq!(counts_until(15, 5, 1_000_000_001), 1_000_020);
        assert_eq!(counts_until(15, 5, 1_000_005_000), 1_000_020);
    }

    #[test]
    fn settled_takes_each_change_once_and_in_item_order() {
        let mut settled = Settled::new(15, 5);
        settled.take(1, 7, 1, true, 1_000_000_000, &[]);
        settled.take(1, 7, 1, true, 1_000_000_000, &[]);
        assert_eq!(settled.viewers(1, 1_000_015), 1);
        assert_eq!(settled.viewers(1, 1_000_016), 0);
        settled.take(1, 7, 2, false, 1_000_003_000, &[]);
        assert_eq!(settled.viewers(1, 1_000_004), 0);
        assert_eq!(settled.repeated, 1);
    }

    #[test]
    fn a_session_counts_under_its_newest_value_and_moves_when_it_changes() {
        let cdn = ListedValues {
            listed: vec!["a".to_owned(), "b".to_owned()],
        };
        let mut settled = Settled::with_dimensions(15, 5, vec![cdn]);
        let (a, b, other, none) = (0, 1, 2, 3);
        settled.take(1, 7, 1, true, 1_000_000_000, &[Some("a")]);
        settled.take(1, 8, 1, true, 1_000_000_000, &[Some("z")]);
        settled.take(1, 9, 1, true, 1_000_000_000, &[None]);
        let at = |s: &Settled, value| s.value_viewers(0, value, 1, 1_000_001);
        assert_eq!([a, b, other, none].map(|v| at(&settled, v)), [1, 0, 1, 1]);
        settled.take(1, 7, 2, true, 1_000_001_000, &[Some("b")]);
        assert_eq!([a, b, other, none].map(|v| at(&settled, v)), [0, 1, 1, 1]);
        settled.take(1, 7, 3, false, 1_000_002_000, &[Some("b")]);
        assert_eq!([a, b, other, none].map(|v| at(&settled, v)), [0, 0, 1, 1]);
        assert_eq!(settled.viewers(1, 1_000_001), 2);
    }
}
