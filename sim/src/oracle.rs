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

/// What the counters must show, from the changes they took in.
#[derive(Debug)]
pub struct Settled {
    window_s: i64,
    bucket_s: i64,
    /// (stream, session) → (sequence of the last change taken, last second it counts in).
    sessions: HashMap<(u32, u32), (u64, Option<i64>)>,
    streams: PerStream,
    /// Changes seen again (a retried batch): not counted twice.
    pub repeated: u64,
}

impl Settled {
    pub fn new(window_s: i64, bucket_s: i64) -> Self {
        Self {
            window_s,
            bucket_s,
            sessions: HashMap::default(),
            streams: PerStream::default(),
            repeated: 0,
        }
    }

    /// One change: the session's newest event as written (its type and receive time), with
    /// the change's sequence in its item's order. Returns whether it was new (a change taken
    /// again, from a retried batch, is not counted twice).
    pub fn take(
        &mut self,
        stream: u32,
        session: u32,
        sequence: u64,
        watching: bool,
        recv_ms: i64,
    ) -> bool {
        let until = watching.then(|| counts_until(self.window_s, self.bucket_s, recv_ms));
        let entry = self.sessions.entry((stream, session)).or_insert((0, None));
        if sequence <= entry.0 {
            self.repeated += 1;
            return false;
        }
        let from = entry.1;
        *entry = (sequence, until);
        self.streams.moved(stream, from, until);
        true
    }

    pub fn viewers(&self, stream: u32, second: i64) -> i64 {
        self.streams.viewers(stream, second)
    }

    /// Drops seconds no one will ask about again.
    pub fn forget_before(&mut self, second: i64) {
        self.streams.forget_before(second);
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
        settled.take(1, 7, 1, true, 1_000_000_000);
        settled.take(1, 7, 1, true, 1_000_000_000);
        assert_eq!(settled.viewers(1, 1_000_015), 1);
        assert_eq!(settled.viewers(1, 1_000_016), 0);
        settled.take(1, 7, 2, false, 1_000_003_000);
        assert_eq!(settled.viewers(1, 1_000_004), 0);
        assert_eq!(settled.repeated, 1);
    }
}
