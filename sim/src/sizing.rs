//! The sizing rule: the settings for a peak audience, derived from DynamoDB's per-key limit and
//! checked by the scenarios (`make bench-scale`). The README states the same rule, and the CDK
//! and Terraform defaults are this rule's answer for [`DEFAULT_AUDIENCE`].
//!
//! Each watching viewer writes its session row once per 5 s heartbeat: 0.2 write units per
//! second, a little more with joins, leaves and duplicates; 0.3 is planned for, the headroom
//! absorbing the bursts when ingest catches up after a pause.
//!
//! - **Session shards** `S`: at most 3,200 viewers of one stream per sessions key (800 write units
//!   per second, 80 % of the key's 1,000): `S = next power of two >= viewers per stream / 3,200`.
//! - **Warm throughput** of the sessions table: `0.3 x all viewers` write units per second,
//!   at least the 4,000 a new table has; it sets the partitions, and so the stream shards.
//! - **Aggregate batching window** `w`: each lane that holds a stream's records updates its
//!   counter and removes that update's receipt, per batch, and publishes the stream's figures
//!   at most once per 5 to 8 s (an hour item and the lifetime item, a failed condition when it
//!   had not seen the last publication), so a stream's counter key takes up to about
//!   `3 x lanes / w` writes per second
//!   ([`WRITES_PER_LANE_BATCH`]), `lanes = min(S, shards) x PF`: `w = ceil(lanes / 100)`
//!   seconds, at least 1. Lanes that start together fire in the same second, so the key's peak
//!   grows with the lanes holding the stream whatever `w` is (BENCHMARKS.md §6 measures it at a
//!   million viewers).
//! - **Counters warm throughput**: `3 x lanes` writes per second for each stream's counter key
//!   and each of its value streams' (breakdowns: `D x (K + 2)` for `D` dimensions of `K` values,
//!   none by default), times the streams, times 1.25 for headroom, at least the 4,000 a new
//!   table has, rounded up to a thousand: the lanes that start together fire in the same second,
//!   so a key's peak is `3 x lanes` whatever `w` (a stream's first seconds at a million viewers
//!   broken down into 16 value streams were throttled at the steady `3 x lanes / w`).
//! - **Batches**: above 10,000 events per second, ingest takes 1,000 messages a batch with 64
//!   concurrent writes and up to 100 concurrent batches, and the aggregate 10,000 records a
//!   batch; below, 100 messages, 16 writes, 50 batches and 100 records.

use crate::engine::{Door, Settings};
use livecount_core::Timing;
use livecount_local::trigger::queue::QueueMapping;
use livecount_local::trigger::stream::StreamMapping;

/// The audience the CDK and Terraform defaults are sized for: 13,000 viewers on one stream
/// (what a new on-demand table serves without warm throughput).
pub const DEFAULT_AUDIENCE: PeakAudience = PeakAudience {
    viewers_per_stream: 13_000,
    streams: 1,
    value_streams: 0,
};

/// Write units per second planned per watching viewer.
pub const UNITS_PER_VIEWER: f64 = 0.3;

/// A peak audience to size for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeakAudience {
    /// The largest stream's peak viewers.
    pub viewers_per_stream: u64,
    /// Streams live at once at that size (the total is their product).
    pub streams: u64,
    /// Value streams each stream is broken down into: every value of every dimension,
    /// `D x (K + 2)` (0 without breakdowns, the default).
    pub value_streams: u64,
}

impl PeakAudience {
    pub fn total(&self) -> u64 {
        self.viewers_per_stream * self.streams
    }
}

/// The settings the rule gives, with the reasons as numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct Sizing {
    pub session_shards: u32,
    pub sessions_warm_writes: u64,
    pub stream_shards: u64,
    pub parallelization_factor: u64,
    pub aggregate_window_s: i64,
    pub aggregate_batch_size: usize,
    pub counters_warm_writes: u64,
    pub ingest_batch_size: usize,
    pub ingest_window_s: i64,
    pub ingest_max_concurrency: usize,
    pub max_concurrent_writes: usize,
}

/// Writes one lane's batch makes on a stream's counter key: the counter update, the removal of
/// its receipt once the batch succeeded, and a share of the figures' publication (at most two
/// or three writes per 5 s; one per batch is planned for).
pub const WRITES_PER_LANE_BATCH: f64 = 3.0;

/// The rule.
pub fn size(audience: PeakAudience) -> Sizing {
    let per_stream = audience.viewers_per_stream.max(1);
    let session_shards = per_stream.div_ceil(3_200).next_power_of_two() as u32;
    let total = audience.total().max(1) as f64;
    let sessions_warm_writes = round_up((total * UNITS_PER_VIEWER).max(4_000.0) as u64, 1_000);
    let stream_shards = sessions_warm_writes / 1_000;
    let parallelization_factor = 1;
    let lanes = u64::from(session_shards).min(stream_shards) * parallelization_factor;
    let aggregate_window_s = lanes.div_ceil(100).max(1) as i64;
    // Each key's peak: every lane holding the stream fires in the same second.
    let per_counter = WRITES_PER_LANE_BATCH * lanes as f64;
    let counters_warm_writes = round_up(
        (per_counter * (audience.streams * (1 + audience.value_streams)) as f64 * 1.25).max(4_000.0)
            as u64,
        1_000,
    );
    let events_per_second = total * UNITS_PER_VIEWER;
    let large = events_per_second > 10_000.0;
    Sizing {
        session_shards,
        sessions_warm_writes,
        stream_shards,
        parallelization_factor,
        aggregate_window_s,
        aggregate_batch_size: if large { 10_000 } else { 100 },
        counters_warm_writes,
        ingest_batch_size: if large { 1_000 } else { 100 },
        ingest_window_s: 1,
        ingest_max_concurrency: if large { 100 } else { 50 },
        max_concurrent_writes: if large { 64 } else { 16 },
    }
}

fn round_up(n: u64, to: u64) -> u64 {
    n.div_ceil(to) * to
}

impl Sizing {
    /// The simulation's settings for this sizing (with warm throughput, or without: a new
    /// on-demand table).
    pub fn settings(&self, warm: bool) -> Settings {
        Settings {
            door: Door::Edge,
            timing: Timing::default(),
            session_shards: self.session_shards,
            max_concurrent_writes: self.max_concurrent_writes,
            queue: QueueMapping {
                batch_size: self.ingest_batch_size,
                batching_window_ms: self.ingest_window_s * 1000,
                ..QueueMapping::deployed()
            },
            ingest_max_concurrency: self.ingest_max_concurrency,
            stream: StreamMapping {
                batch_size: self.aggregate_batch_size,
                batching_window_ms: self.aggregate_window_s * 1000,
                ..StreamMapping::deployed()
            },
            parallelization_factor: self.parallelization_factor as usize,
            memory_mb: 256,
            sessions_warm_writes: warm.then_some(self.sessions_warm_writes as f64),
            counters_warm_writes: warm.then_some(self.counters_warm_writes as f64),
            breakdowns: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_million_viewers_on_one_stream() {
        let s = size(PeakAudience {
            viewers_per_stream: 1_000_000,
            streams: 1,
            value_streams: 0,
        });
        assert_eq!(s.session_shards, 512);
        assert_eq!(s.sessions_warm_writes, 300_000);
        assert_eq!(s.stream_shards, 300);
        assert_eq!(s.aggregate_window_s, 3);
        assert_eq!(s.aggregate_batch_size, 10_000);
        assert_eq!(s.counters_warm_writes, 4_000);
        assert_eq!(s.ingest_batch_size, 1_000);
        assert_eq!(s.max_concurrent_writes, 64);
        assert_eq!(s.ingest_max_concurrency, 100);
    }

    #[test]
    fn ten_thousand_streams_of_a_hundred() {
        let s = size(PeakAudience {
            viewers_per_stream: 100,
            streams: 10_000,
            value_streams: 0,
        });
        assert_eq!(s.session_shards, 1);
        assert_eq!(s.aggregate_window_s, 1);
        assert_eq!(s.counters_warm_writes, 38_000);
    }

    /// Each value stream's key takes about the stream's rate: three dimensions of 4, 3 and 3
    /// values (16 value streams) make the counters' 3 x 300 lanes x 17 keys x 1.25 writes a
    /// second.
    #[test]
    fn breakdowns_size_the_counters_for_every_value_stream() {
        let plain = PeakAudience {
            viewers_per_stream: 1_000_000,
            streams: 1,
            value_streams: 0,
        };
        let broken_down = size(PeakAudience {
            value_streams: 16,
            ..plain
        });
        assert_eq!(broken_down.counters_warm_writes, 20_000);
        assert_eq!(
            Sizing {
                counters_warm_writes: 4_000,
                ..broken_down
            },
            size(plain),
            "nothing else changes"
        );
    }

    /// The deployment defaults (`infra/contract.json`, which CDK and Terraform are tested
    /// against) are the rule's answer for [`DEFAULT_AUDIENCE`].
    #[test]
    fn the_infrastructure_defaults_are_the_rule_for_the_default_audience() {
        let s = size(DEFAULT_AUDIENCE);
        let contract: serde_json::Value =
            serde_json::from_str(livecount_core::contract::CONTRACT_JSON).unwrap_or_default();
        let setting = |name: &str| contract["settings"][name]["default"].as_u64();
        let env = |name: &str| contract["environment"][name]["default"].as_u64();
        assert_eq!(
            env("LIVECOUNT_SESSION_SHARDS"),
            Some(u64::from(s.session_shards))
        );
        assert_eq!(
            env("LIVECOUNT_MAX_CONCURRENT_WRITES"),
            Some(s.max_concurrent_writes as u64)
        );
        assert_eq!(
            setting("ingest_batch_size"),
            Some(s.ingest_batch_size as u64)
        );
        assert_eq!(
            setting("ingest_max_batching_window_seconds"),
            Some(s.ingest_window_s as u64)
        );
        assert_eq!(
            setting("ingest_max_concurrency"),
            Some(s.ingest_max_concurrency as u64)
        );
        assert_eq!(
            setting("aggregate_batch_size"),
            Some(s.aggregate_batch_size as u64)
        );
        assert_eq!(
            setting("aggregate_max_batching_window_seconds"),
            Some(s.aggregate_window_s as u64)
        );
        assert_eq!(
            setting("aggregate_parallelization_factor"),
            Some(s.parallelization_factor)
        );
        assert_eq!(setting("expected_stream_shards"), Some(s.stream_shards));
        assert_eq!(
            s.sessions_warm_writes, 4_000,
            "a new table's throughput: no warm throughput needed"
        );
    }
}
