//! A stream's figures (docs/design.md, "Figures"): the count of every settled second, added up
//! once each into the lifetime item (peak, watch time, first and last second with a viewer)
//! and the hour items (each minute's highest count and viewer-seconds), for the stream's whole
//! life.
//!
//! Every second is published exactly once, in order: each item holds `through`, the last second
//! it has, and a publication writes it under the condition that `through` is still what the
//! publisher read, so a retry, a lost answer or another lane's publication never adds a second
//! twice. Publishing and reading use the same functions: [`settled`] gives the counts of the
//! seconds after `through` from the live counter (as an update left it and as it was just
//! before), [`LifetimeItem::with`] and [`HourItem::with`] add them. A reader
//! completes the items with the seconds the live counter already settles, so the figures it
//! shows are as fresh as the count of [`HISTORY_LAG_SECONDS`] ago, whenever the last
//! publication was.

use crate::histogram::{HISTORY_LAG_SECONDS, minute_of, oldest_published_second, viewers_at};
use crate::model::{CounterItem, HourItem, LifetimeItem, MinuteFigures, Tallies};
use std::collections::BTreeMap;

/// Seconds in an hour item.
pub const HOUR_SECONDS: i64 = 3600;

/// An aggregator publishes a stream's figures once at least this many seconds have settled
/// since its last publication (readers complete the rest from the live counter).
pub const PUBLISH_EVERY_SECONDS: i64 = 5;

/// Most seconds one publication's writes add: half an hour, so that an hour write changes at
/// most 31 minutes (93 attributes), inside DynamoDB's expression limits (a test builds the
/// largest); a publication over more takes one write of each item per half hour.
pub const MAX_PUBLICATION_SECONDS: i64 = 1800;

/// The start (epoch seconds) of the hour holding `t`.
pub fn hour_of(t: i64) -> i64 {
    t - t.rem_euclid(HOUR_SECONDS)
}

/// The counts of the seconds after a `through` up to a later one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settled {
    /// The first second after that `through` (held or missed).
    pub from: i64,
    /// `(second, viewers)`, ascending; a second left out had no viewer.
    pub seconds: Vec<(i64, u64)>,
    /// The last second settled.
    pub through: i64,
    /// Seconds that could not be counted (see [`LifetimeItem::missed_seconds`]).
    pub missed: u64,
    /// Minute (epoch seconds of its start) → sessions started in it, for the minutes whose
    /// last second is settled here; a minute left out had none (or its seconds were missed).
    pub new_sessions: BTreeMap<i64, u64>,
    /// Minute → viewers (`userId`) first seen in it, for the same minutes.
    pub new_viewers: BTreeMap<i64, u64>,
}

/// A stream's live counter as an update left it, and as it was just before (what the update
/// pruned may be what the seconds not yet published need): each gives the count of the seconds
/// its pruning at its `updatedAt` left computable, from [`oldest_published_second`] of it on.
#[derive(Debug, Clone, Copy)]
pub struct Counters<'a> {
    latest: (&'a Tallies, i64),
    before: Option<(&'a Tallies, i64)>,
}

impl<'a> Counters<'a> {
    /// `latest` and the counter `before` it; `None` when `latest` was never updated (every
    /// counter livecount writes has `updatedAt`).
    pub fn of(before: Option<&'a CounterItem>, latest: &'a CounterItem) -> Option<Self> {
        let at = |c: &'a CounterItem| c.updated_at.map(|at| (&c.tallies, at));
        Some(Self {
            latest: at(latest)?,
            before: before.and_then(at),
        })
    }

    /// The oldest second one of them can count.
    fn oldest_held(&self) -> i64 {
        let oldest = |(_, at): (&Tallies, i64)| oldest_published_second(at);
        self.before
            .map_or(oldest(self.latest), |b| oldest(b).min(oldest(self.latest)))
    }
}

/// The counts of the seconds in `after + 1 ..= up_to` (from the oldest second `counters` hold
/// when `after` is `None`: a stream's first publication), from `counters`; seconds before the
/// oldest they hold are missed.
///
/// Each second is counted from the latest counter that holds it: `latest` from
/// [`oldest_published_second`] of its update on, `before` for the seconds before. Seconds after
/// a counter's last bucket had no viewer in it and are left out, so a stream silent for a day
/// costs no more than one that was not.
pub fn settled(after: Option<i64>, counters: &Counters, up_to: i64) -> Settled {
    let held = counters.oldest_held();
    let first = after.map_or(held, |a| a + 1);
    let mut settled = Settled {
        from: first,
        through: up_to.max(first - 1),
        missed: (held.min(up_to.saturating_add(1)) - first).max(0) as u64,
        ..Settled::default()
    };
    let last = |t: &Tallies| t.buckets.keys().next_back().copied().unwrap_or(i64::MIN);
    let (latest, latest_at) = counters.latest;
    let latest_from = oldest_published_second(latest_at);
    let mut count = |tallies: &Tallies, from: i64, to: i64| {
        for t in from..=to {
            settled
                .seconds
                .push((t, viewers_at(&tallies.buckets, &tallies.starts, t)));
        }
    };
    if let Some((before, before_at)) = counters.before {
        let from = first.max(oldest_published_second(before_at));
        count(before, from, up_to.min(latest_from - 1).min(last(before)));
    }
    count(latest, first.max(latest_from), up_to.min(last(latest)));
    // A minute's sessions started and viewers first seen, once its last second settles.
    settled.new_sessions = settled_minutes(counters, first, up_to, |t| &t.new_sessions);
    settled.new_viewers = settled_minutes(counters, first, up_to, |t| &t.new_viewers);
    settled
}

/// The minutes whose last second is in `first ..= up_to`, with the count a per-minute tally
/// (`tally` of a counter) holds for each: from the latest counter that still holds the minute
/// (a counter drops it once its last second is no longer read). A minute left out had none.
fn settled_minutes(
    counters: &Counters,
    first: i64,
    up_to: i64,
    tally: fn(&Tallies) -> &BTreeMap<i64, i64>,
) -> BTreeMap<i64, u64> {
    let (latest, latest_at) = counters.latest;
    let latest_from = oldest_published_second(latest_at);
    let before = counters.before;
    let ends = |t: &Tallies| -> Vec<i64> {
        let (from, to) = (first - 59, up_to - 59);
        match from <= to {
            true => tally(t).range(from..=to).map(|(&m, _)| m).collect(),
            false => Vec::new(), // (`BTreeMap::range` panics on a range ending before it starts)
        }
    };
    let mut ended = ends(latest);
    ended.extend(before.iter().flat_map(|(b, _)| ends(b)));
    ended.sort_unstable();
    ended.dedup();
    let mut minutes = BTreeMap::new();
    for minute in ended {
        let holder = if minute + 59 > latest_from {
            Some(latest)
        } else {
            before
                .filter(|&(_, at)| minute + 59 > oldest_published_second(at))
                .map(|(b, _)| b)
        };
        let count = holder.and_then(|t| tally(t).get(&minute)).copied();
        if let Some(count) = count.filter(|&n| n > 0) {
            minutes.insert(minute, count.unsigned_abs());
        }
    }
    minutes
}

impl LifetimeItem {
    /// This item with the seconds of `settled` after its `through` added.
    pub fn with(&self, settled: &Settled) -> Self {
        let mut next = self.clone();
        let after = self.through.unwrap_or(i64::MIN);
        for &(t, v) in settled.seconds.iter().filter(|(t, _)| *t > after) {
            next.viewer_seconds += v;
            if v > 0 {
                next.first_at.get_or_insert(t);
                next.last_at = Some(t);
            }
            if v > next.peak {
                (next.peak, next.peak_at) = (v, Some(t));
            }
        }
        if settled.through > after {
            next.through = Some(settled.through);
            next.missed_seconds += settled.missed;
        }
        let after_through = |minutes: &BTreeMap<i64, u64>| -> u64 {
            let ended = minutes.iter().filter(|(m, _)| **m + 59 > after);
            ended.map(|(_, n)| n).sum()
        };
        next.sessions_started += after_through(&settled.new_sessions);
        next.unique_viewers += after_through(&settled.new_viewers);
        next
    }

    /// Average concurrent viewers from the first second with a viewer to the last: watch time
    /// over that span (0 before any viewer).
    pub fn average_viewers(&self) -> f64 {
        match (self.first_at, self.last_at) {
            (Some(first), Some(last)) => self.viewer_seconds as f64 / (last - first + 1) as f64,
            _ => 0.0,
        }
    }
}

impl HourItem {
    /// An hour with nothing published yet.
    pub fn empty(stream_id: &str, hour: i64) -> Self {
        Self {
            stream_id: stream_id.to_owned(),
            hour,
            ..Self::default()
        }
    }

    /// The last second of the hour.
    pub fn end(&self) -> i64 {
        self.hour + HOUR_SECONDS - 1
    }

    /// This hour with the seconds of `settled` that fall in it after its `through` added.
    pub fn with(&self, settled: &Settled) -> Self {
        let mut next = self.clone();
        let after = self.through.unwrap_or(self.hour - 1);
        for &(t, v) in settled
            .seconds
            .iter()
            .filter(|(t, _)| *t > after && *t <= self.end())
        {
            let minute = next.minutes.entry(minute_index(t)).or_default();
            minute.highest = minute.highest.max(v);
            minute.viewer_seconds += v;
        }
        for (&m, &n) in settled
            .new_sessions
            .iter()
            .filter(|(m, _)| **m + 59 > after && **m + 59 <= self.end())
        {
            next.minutes
                .entry(minute_index(m))
                .or_default()
                .sessions_started += n;
        }
        let through = settled.through.min(self.end());
        if through > after {
            next.through = Some(through);
        }
        next
    }

    /// The minutes that differ from `before`'s (what a write sets).
    pub fn changed_since(&self, before: &HourItem) -> BTreeMap<u32, MinuteFigures> {
        self.minutes
            .iter()
            .filter(|(m, f)| before.minutes.get(m) != Some(f))
            .map(|(&m, &f)| (m, f))
            .collect()
    }

    /// Its minutes with a published second, as epoch minutes, with how many of their seconds
    /// have passed by its `through` (60 once a minute is over). A minute it does not hold had no
    /// viewer, or came before the stream's first.
    pub fn published_minutes(&self) -> impl Iterator<Item = Minute> + '_ {
        let through = self.through.unwrap_or(self.hour - 1);
        self.minutes.iter().map(move |(&m, &figures)| {
            let start = self.hour + 60 * i64::from(m);
            Minute {
                minute: start,
                seconds: (through - start + 1).clamp(0, 60) as u64,
                figures,
            }
        })
    }
}

/// A minute of the history: its published seconds and what they add up to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Minute {
    /// Start of the minute (epoch seconds).
    pub minute: i64,
    /// How many of its seconds are published (60 once it is over).
    pub seconds: u64,
    pub figures: MinuteFigures,
}

impl Minute {
    /// Average concurrent viewers over its published seconds.
    pub fn average_viewers(&self) -> f64 {
        if self.seconds == 0 {
            0.0
        } else {
            self.figures.viewer_seconds as f64 / self.seconds as f64
        }
    }
}

/// The minute of its hour (0-59) that holds `t`.
pub fn minute_index(t: i64) -> u32 {
    ((minute_of(t) - hour_of(t)) / 60) as u32
}

/// The hours `settled` publishes: those of its seconds, the hour it begins in (which it
/// completes, so that an hour's last minutes count all their seconds even when they had no
/// viewer) and the hour it ends in. An hour it passes with no viewer gets no item.
pub fn hours_of(settled: &Settled) -> Vec<i64> {
    let mut hours: Vec<i64> = settled.seconds.iter().map(|(t, _)| hour_of(*t)).collect();
    if settled.through >= settled.from {
        hours.push(hour_of(settled.from));
    }
    hours.push(hour_of(settled.through));
    hours.sort_unstable();
    hours.dedup();
    hours
}

/// The last second a reader at `now` may count: the lag behind its clock.
pub fn settled_by(now: i64) -> i64 {
    now - HISTORY_LAG_SECONDS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histogram::HISTORY_SPAN_SECONDS;

    const NOW: i64 = 1_700_000_000;

    /// A counter updated at `at` holding `n` sessions expiring at `e` that began counting at
    /// `since`, for each `(n, since, e)`.
    fn counter(at: i64, sessions: &[(i64, i64, i64)]) -> CounterItem {
        let mut c = CounterItem {
            updated_at: Some(at),
            ..CounterItem::default()
        };
        for &(n, since, e) in sessions {
            *c.tallies.buckets.entry(e).or_default() += n;
            *c.tallies.starts.entry(since).or_default() += n;
        }
        c
    }

    #[test]
    fn a_first_publication_counts_the_seconds_the_counter_holds() {
        // 3 sessions counting from NOW-15 to NOW+5.
        let c = counter(NOW, &[(3, NOW - 15, NOW + 5)]);
        let s = settled(
            None,
            &Counters::of(None, &c).expect("updated"),
            settled_by(NOW),
        );
        assert_eq!(s.through, NOW - 10);
        assert_eq!(s.missed, 0);
        let first = oldest_published_second(NOW);
        assert_eq!(s.seconds.first(), Some(&(first, 0)));
        assert_eq!(s.seconds.last(), Some(&(NOW - 10, 3)));
        assert_eq!(s.seconds.len() as i64, HISTORY_SPAN_SECONDS + 1);
        let life = LifetimeItem::default().with(&s);
        assert_eq!(life.viewer_seconds, 3 * 6, "NOW-15 ..= NOW-10");
        assert_eq!((life.peak, life.peak_at), (3, Some(NOW - 15)));
        assert_eq!(
            (life.first_at, life.last_at),
            (Some(NOW - 15), Some(NOW - 10))
        );
        assert_eq!(life.average_viewers(), 3.0);
    }

    #[test]
    fn each_second_is_added_once_whatever_publishes_it_again() {
        let c = counter(NOW, &[(2, NOW - 30, NOW + 20)]);
        let s1 = settled(
            None,
            &Counters::of(None, &c).expect("updated"),
            settled_by(NOW),
        );
        let life = LifetimeItem::default().with(&s1);
        assert_eq!(life.with(&s1), life, "the same seconds add nothing");
        let c = counter(NOW + 3, &[(2, NOW - 30, NOW + 20)]);
        let s2 = settled(
            life.through,
            &Counters::of(None, &c).expect("updated"),
            settled_by(NOW + 3),
        );
        assert_eq!(s2.seconds.len(), 3);
        let life2 = life.with(&s2);
        assert_eq!(life2.viewer_seconds, life.viewer_seconds + 6);
        assert_eq!(life2.through, Some(NOW - 7));
    }

    /// A stream falls silent: its last update at NOW stopped one of its 4 viewers; a day
    /// later a record comes, and its update prunes all of that. The counter as it was before that
    /// update gives the seconds still to publish: the 3 counting until they expired.
    #[test]
    fn a_silent_stream_is_counted_from_the_counter_before_the_update_that_prunes_it() {
        let last = counter(NOW, &[(4, NOW - 20, NOW + 15), (-1, NOW - 2, NOW + 15)]);
        let published = LifetimeItem {
            through: Some(NOW - 12),
            ..LifetimeItem::default()
        };
        let later = NOW + 86_400;
        let pruned = counter(later, &[(1, later - 1, later + 15)]);
        let s = settled(
            published.through,
            &Counters::of(Some(&last), &pruned).expect("updated"),
            settled_by(later),
        );
        assert_eq!(s.missed, 0);
        assert!(
            s.seconds.len() < 60,
            "the silent day is not walked second by second"
        );
        let life = published.with(&s);
        assert_eq!(life.last_at, Some(NOW + 15), "counted until they expired");
        // NOW-11 ..= NOW-3: 4; NOW-2 ..= NOW+15: 3
        assert_eq!(life.viewer_seconds, 4 * 9 + 3 * 18);
        assert_eq!(life.through, Some(later - 10));
        let without = settled(
            published.through,
            &Counters::of(None, &pruned).expect("updated"),
            settled_by(later),
        );
        assert_eq!(
            without.missed as i64,
            oldest_published_second(later) - (NOW - 11)
        );
    }

    #[test]
    fn a_minutes_sessions_started_and_viewers_first_seen_are_added_once_when_its_last_second_settles()
     {
        let m = NOW - NOW % 60; // a minute of 3 sessions started, by 2 viewers first seen
        let mut c = counter(m + 70, &[(3, m + 1, m + 100)]);
        c.tallies.new_sessions.insert(m, 3);
        c.tallies.new_viewers.insert(m, 2);
        let counters = Counters::of(None, &c).expect("updated");
        // Through its second-to-last second: not yet; through its last: once.
        let early = settled(Some(m + 40), &counters, m + 58);
        assert!(early.new_sessions.is_empty() && early.new_viewers.is_empty());
        let s = settled(Some(m + 40), &counters, settled_by(m + 70));
        assert_eq!(s.new_sessions, BTreeMap::from([(m, 3)]));
        assert_eq!(s.new_viewers, BTreeMap::from([(m, 2)]));
        let life = LifetimeItem::default().with(&early).with(&s);
        assert_eq!((life.sessions_started, life.unique_viewers), (3, 2));
        let again = life.with(&s);
        assert_eq!(
            (again.sessions_started, again.unique_viewers),
            (3, 2),
            "published once"
        );
        let hour = HourItem::empty("s", hour_of(m)).with(&early).with(&s);
        assert_eq!(hour.minutes[&minute_index(m)].sessions_started, 3);
        assert_eq!(hour.with(&s), hour, "published once");
        // An update that prunes the minute: the counter before it still has it.
        let mut pruned = counter(m + 79, &[(3, m + 1, m + 100)]);
        pruned.tallies.new_sessions.clear();
        pruned.tallies.new_viewers.clear();
        let both = Counters::of(Some(&c), &pruned).expect("updated");
        let s = settled(Some(m + 40), &both, settled_by(m + 79));
        assert_eq!(s.new_sessions, BTreeMap::from([(m, 3)]));
        assert_eq!(s.new_viewers, BTreeMap::from([(m, 2)]));
        let alone = Counters::of(None, &pruned).expect("updated");
        assert!(
            settled(Some(m + 40), &alone, m + 69)
                .new_sessions
                .is_empty()
        );
        // A publication that ends before it starts (nothing new) is empty, not a panic.
        assert!(
            settled(Some(m + 80), &counters, m + 60)
                .new_sessions
                .is_empty()
        );
    }

    #[test]
    fn a_counter_never_updated_counts_nothing() {
        assert!(Counters::of(None, &CounterItem::default()).is_none());
    }

    #[test]
    fn hours_take_their_own_seconds_and_know_how_much_of_each_minute_is_published() {
        let hour = hour_of(NOW);
        let settled = Settled {
            from: hour - 1,
            seconds: vec![(hour - 1, 5), (hour, 2), (hour + 1, 4), (hour + 61, 1)],
            through: hour + 61,
            missed: 0,
            ..Settled::default()
        };
        let previous = HourItem::empty("s", hour - HOUR_SECONDS).with(&settled);
        assert_eq!(previous.through, Some(hour - 1));
        assert_eq!(previous.minutes[&59].highest, 5);
        let this = HourItem::empty("s", hour).with(&settled);
        assert_eq!(this.through, Some(hour + 61));
        assert_eq!(
            this.minutes[&0],
            MinuteFigures {
                highest: 4,
                viewer_seconds: 6,
                sessions_started: 0,
            }
        );
        let minutes: Vec<(i64, u64)> = this
            .published_minutes()
            .map(|m| (m.minute, m.seconds))
            .collect();
        assert_eq!(minutes, [(hour, 60), (hour + 60, 2)]);
        assert_eq!(this.with(&settled), this, "published once");
        assert_eq!(hours_of(&settled), [hour - HOUR_SECONDS, hour]);
        // A publication after a silent day completes the hour it begins in and writes the
        // hour it ends in, nothing in between.
        let silent = Settled {
            from: hour + 62,
            seconds: vec![(hour + 86_400, 1)],
            through: hour + 86_410,
            missed: 0,
            ..Settled::default()
        };
        assert_eq!(hours_of(&silent), [hour, hour + 86_400]);
        assert_eq!(this.with(&silent).through, Some(hour + HOUR_SECONDS - 1));
        assert_eq!(
            this.changed_since(&HourItem::empty("s", hour)).len(),
            2,
            "both minutes are new"
        );
    }
}
