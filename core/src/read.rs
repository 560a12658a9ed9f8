//! The read path (see `docs/design.md`): a stream's live count from one `GetItem` of its live
//! counter item; its lifetime figures from one more, of its lifetime item; its per-minute
//! history from one `Query` of its hour items. Each is completed with the seconds the live
//! counter already settles ([`crate::figures`]), so every figure is as fresh as the count of
//! [`crate::histogram::HISTORY_LAG_SECONDS`] ago.

use crate::breakdown::{Breakdowns, Dimension};
use crate::figures::{Counters, HOUR_SECONDS, Minute, Settled, hour_of, settled, settled_by};
use crate::histogram::viewers;
use crate::ids::StreamId;
use crate::model::{CounterItem, HourItem, LifetimeItem};
use crate::store::{Store, StoreError};
use serde::Serialize;

/// Most hours one history read covers (31 days: one `Query` of at most 744 hour items, about
/// 93 read units eventually consistent).
pub const MAX_HISTORY_HOURS: i64 = 31 * 24;

/// What a dashboard shows for one stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveCount {
    pub stream_id: String,
    /// Sessions watching at `as_of`.
    pub viewers: u64,
    /// The most viewers of any second so far: of a settled second, or `viewers` now if more.
    pub peak: u64,
    /// The first second (epoch) that had `peak` viewers (`as_of` when it is `viewers` now).
    pub peak_at: Option<i64>,
    /// The reader's clock the count is for (epoch seconds).
    pub as_of: i64,
    /// The aggregator's clock at the counter's last update (epoch seconds), if ever updated.
    pub updated_at: Option<i64>,
}

impl LiveCount {
    /// The count the items give at `now` (epoch seconds). A stream with no counter yet has no
    /// viewers. `stream_id` is the items' (their `PK`, as read).
    pub fn from_items(
        stream_id: &str,
        counter: Option<&CounterItem>,
        lifetime: Option<&LifetimeItem>,
        now: i64,
    ) -> Self {
        let viewers = counter.map_or(0, |c| viewers(&c.tallies.buckets, now));
        let settled = completed(lifetime, counter, now);
        // Viewers now above every settled second's are the peak so far, from now.
        let (peak, peak_at) = if viewers > settled.peak {
            (viewers, Some(now))
        } else {
            (settled.peak, settled.peak_at)
        };
        Self {
            stream_id: stream_id.to_owned(),
            viewers,
            peak,
            peak_at,
            as_of: now,
            updated_at: counter.and_then(|c| c.updated_at),
        }
    }
}

/// A stream's lifetime item completed with the seconds its live counter settles by `now`.
fn completed(
    lifetime: Option<&LifetimeItem>,
    counter: Option<&CounterItem>,
    now: i64,
) -> LifetimeItem {
    let lifetime = lifetime.cloned().unwrap_or_default();
    match settled_since(&lifetime, counter, now) {
        Some(more) => lifetime.with(&more),
        None => lifetime,
    }
}

/// The seconds `counter` settles by `now` after `lifetime`'s `through`, if it holds them all.
/// When it does not, they are not missed yet: the update that pruned them is publishing them
/// from the counter as it was before (docs/design.md §3), and until that lands the figures are
/// the items' alone, through their `through`.
fn settled_since(
    lifetime: &LifetimeItem,
    counter: Option<&CounterItem>,
    now: i64,
) -> Option<Settled> {
    let more = settled(
        lifetime.through,
        &Counters::of(None, counter?)?,
        settled_by(now),
    );
    (more.missed == 0).then_some(more)
}

/// A stream's figures over its whole life (docs/design.md, "Figures"), as of `through`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub stream_id: String,
    /// The last second counted (epoch): the reader's clock less the lag (or, for the moment a
    /// stream comes back from silence, the last second published).
    pub through: i64,
    /// Most viewers of one second, and the first second that had them.
    pub peak: u64,
    pub peak_at: Option<i64>,
    /// Watch time: the sum over seconds of their viewers (viewer-seconds, exact), and in minutes.
    pub viewer_seconds: u64,
    pub viewer_minutes: f64,
    /// Viewer-minutes over the minutes from the first second with a viewer to the last.
    pub average_viewers: f64,
    /// Sessions started in the minutes over by `through` (a session's row created).
    pub sessions_started: u64,
    /// Viewers (`userId`) first seen in those minutes: the distinct viewers of the sessions
    /// started that sent one.
    pub unique_viewers: u64,
    /// The first and the last second with a viewer.
    pub first_at: Option<i64>,
    pub last_at: Option<i64>,
    /// Seconds that could not be counted (0 unless the figures' publications failed for more
    /// than 10 s while the stream went on).
    pub missed_seconds: u64,
}

impl Summary {
    /// The figures the lifetime item and the live counter give at `now` (epoch seconds): the
    /// item's, with the seconds the counter settles after its `through`.
    pub fn from_items(
        stream_id: &str,
        counter: Option<&CounterItem>,
        lifetime: Option<&LifetimeItem>,
        now: i64,
    ) -> Self {
        let life = completed(lifetime, counter, now);
        Self {
            stream_id: stream_id.to_owned(),
            through: life.through.unwrap_or(settled_by(now)),
            peak: life.peak,
            peak_at: life.peak_at,
            viewer_seconds: life.viewer_seconds,
            viewer_minutes: life.viewer_seconds as f64 / 60.0,
            average_viewers: life.average_viewers(),
            sessions_started: life.sessions_started,
            unique_viewers: life.unique_viewers,
            first_at: life.first_at,
            last_at: life.last_at,
            missed_seconds: life.missed_seconds,
        }
    }
}

/// One minute of a stream's history.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MinuteRow {
    /// Start of the minute (epoch seconds).
    pub minute: i64,
    /// Most viewers of one of its seconds.
    pub highest: u64,
    /// Average viewers over its counted seconds.
    pub average: f64,
    /// Watch time in it: the sum over its seconds of their viewers (exact), and in minutes.
    pub viewer_seconds: u64,
    pub viewer_minutes: f64,
    /// How many of its seconds are counted (60 once it is over).
    pub seconds: u64,
    /// Sessions started in it (counted once it is over).
    pub sessions_started: u64,
}

impl From<Minute> for MinuteRow {
    fn from(m: Minute) -> Self {
        Self {
            minute: m.minute,
            highest: m.figures.highest,
            average: m.average_viewers(),
            viewer_seconds: m.figures.viewer_seconds,
            viewer_minutes: m.figures.viewer_seconds as f64 / 60.0,
            seconds: m.seconds,
            sessions_started: m.figures.sessions_started,
        }
    }
}

/// The minutes of `hours` (a stream's hour items) that start in `from .. to`, completed with the
/// seconds the live counter settles by `now` after the lifetime item's `through`. A minute of
/// an hour without an item had no viewer and is left out.
pub fn history_rows(
    mut hours: Vec<HourItem>,
    counter: Option<&CounterItem>,
    lifetime: Option<&LifetimeItem>,
    from: i64,
    to: i64,
    now: i64,
) -> Vec<MinuteRow> {
    let lifetime = lifetime.cloned().unwrap_or_default();
    if let (Some(counter), Some(more)) = (counter, settled_since(&lifetime, counter, now)) {
        let after = lifetime.through.unwrap_or(i64::MIN);
        let stream_id = counter.stream_id.as_str();
        for hour in crate::figures::hours_of(&more) {
            if hour < hour_of(from) || hour > hour_of(to) {
                continue;
            }
            match hours.iter_mut().find(|h| h.hour == hour) {
                // An hour behind the lifetime item (a publication that stopped between its
                // writes) is left as it is.
                Some(item) if item.through.unwrap_or(hour - 1) >= after.min(item.end()) => {
                    *item = item.with(&more);
                }
                Some(_) => {}
                None => hours.push(HourItem::empty(stream_id, hour).with(&more)),
            }
        }
        hours.sort_by_key(|h| h.hour);
    }
    hours
        .iter()
        .flat_map(HourItem::published_minutes)
        .filter(|m| (from..to).contains(&m.minute))
        .map(MinuteRow::from)
        .collect()
}

/// How many viewers a stream has at `now` (epoch seconds): one eventually consistent `GetItem`
/// of its live counter, whatever the audience.
pub async fn viewers_now(store: &Store, stream_id: &StreamId, now: i64) -> Result<u64, StoreError> {
    let counter = store.get_counter(stream_id).await?;
    Ok(counter.map_or(0, |c| viewers(&c.tallies.buckets, now)))
}

/// A stream's live count at `now` (epoch seconds), with its peak: the live counter and the
/// lifetime item, read with one `GetItem` each, at once.
pub async fn live_count(
    store: &Store,
    stream_id: &StreamId,
    now: i64,
) -> Result<LiveCount, StoreError> {
    let (counter, lifetime) =
        futures::try_join!(store.get_counter(stream_id), store.get_lifetime(stream_id))?;
    Ok(LiveCount::from_items(
        stream_id.as_str(),
        counter.as_ref(),
        lifetime.as_ref(),
        now,
    ))
}

/// A stream's lifetime figures at `now`: two `GetItem`s (the live counter and the lifetime
/// item), at once.
pub async fn summary(store: &Store, stream_id: &StreamId, now: i64) -> Result<Summary, StoreError> {
    let (counter, lifetime) =
        futures::try_join!(store.get_counter(stream_id), store.get_lifetime(stream_id))?;
    Ok(Summary::from_items(
        stream_id.as_str(),
        counter.as_ref(),
        lifetime.as_ref(),
        now,
    ))
}

/// One value of a breakdown: its viewers now and its figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValueFigures {
    pub value: String,
    /// Sessions of this value watching at `as_of`.
    pub viewers: u64,
    /// Its figures over its settled seconds (see [`Summary`]).
    pub peak: u64,
    pub viewer_seconds: u64,
    pub sessions_started: u64,
}

/// One dimension of a breakdown: every value a session can have in it, listed values first,
/// then `other` and `none`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DimensionFigures {
    pub dimension: &'static str,
    pub values: Vec<ValueFigures>,
}

/// A stream's breakdowns (docs/design.md §3, "Breakdowns"): for each dimension, its values'
/// viewers now and figures, which add up to the stream's.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Breakdown {
    pub stream_id: String,
    /// The stream's viewers at `as_of`, and its figures' last second counted.
    pub viewers: u64,
    pub as_of: i64,
    pub through: i64,
    pub dimensions: Vec<DimensionFigures>,
}

/// A stream's breakdowns at `now`: two `GetItem`s (the live counter and the lifetime item) for
/// the stream and for each value stream, all at once; at most `2 x (1 + 5 x (8 + 2))` = 102.
pub async fn breakdown(
    store: &Store,
    breakdowns: &Breakdowns,
    stream_id: &StreamId,
    now: i64,
) -> Result<Breakdown, StoreError> {
    let items = |id: StreamId| async move {
        let (counter, lifetime) =
            futures::try_join!(store.get_counter(&id), store.get_lifetime(&id))?;
        let viewers = counter
            .as_ref()
            .map_or(0, |c| viewers(&c.tallies.buckets, now));
        let summary = Summary::from_items(id.as_str(), counter.as_ref(), lifetime.as_ref(), now);
        Ok::<_, StoreError>((viewers, summary))
    };
    let values: Vec<(Dimension, &str)> = breakdowns
        .dimensions()
        .flat_map(|d| breakdowns.values(d).into_iter().map(move |v| (d, v)))
        .collect();
    let (stream, counted) = futures::try_join!(
        items(stream_id.clone()),
        futures::future::try_join_all(
            values
                .iter()
                .map(|&(d, v)| items(stream_id.value_stream(d, v)))
        )
    )?;
    let mut dimensions: Vec<DimensionFigures> = Vec::new();
    for (&(dimension, value), (viewers, summary)) in values.iter().zip(counted) {
        if dimensions
            .last()
            .is_none_or(|d| d.dimension != dimension.name())
        {
            dimensions.push(DimensionFigures {
                dimension: dimension.name(),
                values: Vec::new(),
            });
        }
        if let Some(last) = dimensions.last_mut() {
            last.values.push(ValueFigures {
                value: value.to_owned(),
                viewers,
                peak: summary.peak,
                viewer_seconds: summary.viewer_seconds,
                sessions_started: summary.sessions_started,
            });
        }
    }
    let (viewers, summary) = stream;
    Ok(Breakdown {
        stream_id: stream_id.to_string(),
        viewers,
        as_of: now,
        through: summary.through,
        dimensions,
    })
}

/// Why a history range was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryRangeError {
    #[error("from ({from}) must be before to ({to})")]
    Empty { from: i64, to: i64 },
    #[error(
        "a history read covers at most {MAX_HISTORY_HOURS} hours; from {from} to {to} is {hours}"
    )]
    TooLong { from: i64, to: i64, hours: i64 },
}

/// The minutes from `from` to `to` (epoch seconds, `to` excluded), refused when empty or longer
/// than [`MAX_HISTORY_HOURS`].
pub fn check_history_range(from: i64, to: i64) -> Result<(), HistoryRangeError> {
    if from >= to {
        return Err(HistoryRangeError::Empty { from, to });
    }
    let hours = (hour_of(to - 1) - hour_of(from)) / HOUR_SECONDS + 1;
    if hours > MAX_HISTORY_HOURS {
        return Err(HistoryRangeError::TooLong { from, to, hours });
    }
    Ok(())
}

/// A stream's per-minute history from `from` to `to` (epoch seconds, checked with
/// [`check_history_range`]) at `now`: one `Query` of its hour items and the two `GetItem`s that
/// complete them, at once.
pub async fn history(
    store: &Store,
    stream_id: &StreamId,
    from: i64,
    to: i64,
    now: i64,
) -> Result<Vec<MinuteRow>, StoreError> {
    let (hours, counter, lifetime) = futures::try_join!(
        store.get_hours(stream_id, hour_of(from), hour_of(to - 1)),
        store.get_counter(stream_id),
        store.get_lifetime(stream_id)
    )?;
    Ok(history_rows(
        hours,
        counter.as_ref(),
        lifetime.as_ref(),
        from,
        to,
        now,
    ))
}

/// One page of the stream list at `now`: up to `limit` streams after `after`, and where the next
/// page starts ([`Store::list_counters_page`]).
pub async fn live_counts_page(
    store: &Store,
    now: i64,
    limit: usize,
    after: Option<&StreamId>,
) -> Result<(Vec<LiveCount>, Option<StreamId>), StoreError> {
    let page = store.list_counters_page(limit, after).await?;
    let counts = page
        .counters
        .iter()
        .map(|(c, l)| LiveCount::from_items(&c.stream_id, Some(c), l.as_ref(), now))
        .collect();
    Ok((counts, page.next))
}

/// Every stream's live count at `now` (a `Scan`: for listings and tools, not for dashboards).
pub async fn all_live_counts(store: &Store, now: i64) -> Result<Vec<LiveCount>, StoreError> {
    let counters = store.list_counters().await?;
    Ok(counters
        .iter()
        .map(|(c, l)| LiveCount::from_items(&c.stream_id, Some(c), l.as_ref(), now))
        .collect())
}
