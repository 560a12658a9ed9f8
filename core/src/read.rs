//! The read path (see `docs/design.md`): a stream's live count from one `GetItem` of its live
//! counter item; its peak and per-minute history from one `GetItem` of its history item.

use crate::histogram::{HISTORY_SECONDS, viewers};
use crate::ids::StreamId;
use crate::model::{CounterItem, HistoryItem};
use crate::store::{Store, StoreError};
use serde::Serialize;

/// What a dashboard shows for one stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveCount {
    pub stream_id: String,
    /// Sessions watching at `as_of`.
    pub viewers: u64,
    pub peak: u64,
    /// When the peak was reached (epoch seconds), if ever.
    pub peak_at: Option<i64>,
    /// The reader's clock the count is for (epoch seconds).
    pub as_of: i64,
    /// The aggregator's clock at the counter's last update (epoch seconds), if ever updated.
    pub updated_at: Option<i64>,
    /// Most viewers in each of the last minutes, oldest first.
    pub history: Vec<MinuteViewers>,
}

/// The most viewers the aggregator saw in one minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MinuteViewers {
    /// Start of the minute (epoch seconds).
    pub minute: i64,
    pub viewers: u64,
}

impl LiveCount {
    /// The count the counter items give at `now` (epoch seconds). A stream with no counter yet
    /// has no viewers; one with no history item yet has no history. `stream_id` is the items'
    /// (their `PK`, as read).
    pub fn from_items(
        stream_id: &str,
        counter: Option<&CounterItem>,
        history: Option<&HistoryItem>,
        now: i64,
    ) -> Self {
        let viewers = counter.map_or(0, |c| viewers(&c.tallies.buckets, now));
        Self {
            stream_id: stream_id.to_owned(),
            viewers,
            peak: history.and_then(|h| h.peak).unwrap_or(0).max(viewers),
            peak_at: history.and_then(|h| h.peak_at),
            as_of: now,
            updated_at: counter.and_then(|c| c.updated_at),
            history: history.map_or_else(Vec::new, |h| {
                h.tallies
                    .history
                    .range(now - HISTORY_SECONDS..=now)
                    .map(|(&minute, &viewers)| MinuteViewers { minute, viewers })
                    .collect()
            }),
        }
    }
}

/// How many viewers a stream has at `now` (epoch seconds): one eventually consistent `GetItem`
/// of its live counter, whatever the audience.
pub async fn viewers_now(store: &Store, stream_id: &StreamId, now: i64) -> Result<u64, StoreError> {
    let counter = store.get_counter(stream_id).await?;
    Ok(counter.map_or(0, |c| viewers(&c.tallies.buckets, now)))
}

/// A stream's live count at `now` (epoch seconds), with its peak and history: the live counter
/// and the history item, read with one `GetItem` each, at once.
pub async fn live_count(
    store: &Store,
    stream_id: &StreamId,
    now: i64,
) -> Result<LiveCount, StoreError> {
    let (counter, history) =
        futures::try_join!(store.get_counter(stream_id), store.get_history(stream_id))?;
    Ok(LiveCount::from_items(
        stream_id,
        counter.as_ref(),
        history.as_ref(),
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
        .map(|(c, h)| LiveCount::from_items(&c.stream_id, Some(c), h.as_ref(), now))
        .collect();
    Ok((counts, page.next))
}

/// Every stream's live count at `now` (a `Scan`: for listings and tools, not for dashboards).
pub async fn all_live_counts(store: &Store, now: i64) -> Result<Vec<LiveCount>, StoreError> {
    let counters = store.list_counters().await?;
    Ok(counters
        .iter()
        .map(|(c, h)| LiveCount::from_items(&c.stream_id, Some(c), h.as_ref(), now))
        .collect())
}
