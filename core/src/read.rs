//! The read path (DESIGN §5 "Read"): a stream's live count from one `GetItem`.

use crate::histogram::{HISTORY_SECONDS, viewers};
use crate::model::CounterItem;
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
    /// The count a counter item gives at `now` (epoch seconds). A stream with no counter yet
    /// has no viewers.
    pub fn from_counter(stream_id: &str, counter: Option<&CounterItem>, now: i64) -> Self {
        let viewers = counter.map_or(0, |c| viewers(&c.tallies.buckets, now));
        Self {
            stream_id: stream_id.to_owned(),
            viewers,
            peak: counter.and_then(|c| c.peak).unwrap_or(0).max(viewers),
            peak_at: counter.and_then(|c| c.peak_at),
            as_of: now,
            updated_at: counter.and_then(|c| c.updated_at),
            history: counter.map_or_else(Vec::new, |c| {
                c.tallies
                    .history
                    .range(now - HISTORY_SECONDS..=now)
                    .map(|(&minute, &viewers)| MinuteViewers { minute, viewers })
                    .collect()
            }),
        }
    }
}

/// Reads a stream's live count at `now` (epoch seconds) with one `GetItem`.
pub async fn live_count(store: &Store, stream_id: &str, now: i64) -> Result<LiveCount, StoreError> {
    let counter = store.get_counter(stream_id).await?;
    Ok(LiveCount::from_counter(stream_id, counter.as_ref(), now))
}
