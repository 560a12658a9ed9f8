//! Accuracy: the same events, delivered the same way, into livecount and the designs it
//! replaces; every design's count against the oracle, every second.

use crate::designs::{Error, NaiveCounter, ThirtySecondBuckets, query_viewers};
use aws_lambda_events::event::sqs::SqsMessage;
use livecount_tests::oracle::Oracle;
use livecount_tests::{Crowd, Pipeline, PlayerState};

pub const DESIGNS: [&str; 4] = [
    "(a) livecount",
    "(b) 30 s buckets + conditional write",
    "(c) Query + filter expDate >= now",
    "(d) +1 INSERT / -1 TTL REMOVE",
];

pub enum Workload {
    FivePlayers(Crowd),
    Crowd {
        crowd: Crowd,
        duplicate_rate: f64,
        reorder_rate: f64,
    },
}

impl Workload {
    pub fn name(&self) -> &'static str {
        match self {
            Self::FivePlayers(_) => "five players (two stop at 60 s, one leaves silently at 75 s)",
            Self::Crowd { .. } => {
                "1,000 players over 20 streams: churn, 10 % duplicates, 5 % reordered"
            }
        }
    }

    fn bodies(&mut self, tick: i64, now_ms: i64) -> Vec<String> {
        match self {
            Self::FivePlayers(five) => {
                match tick {
                    60 => five.players[..2]
                        .iter_mut()
                        .for_each(|p| p.state = PlayerState::Stopping),
                    75 => five.players[2].state = PlayerState::Silent,
                    _ => {}
                }
                five.bodies(tick, now_ms)
            }
            Self::Crowd { crowd, .. } => crowd.bodies(tick, now_ms),
        }
    }

    fn rates(&self) -> (f64, f64) {
        match self {
            Self::FivePlayers(_) => (0.0, 0.0),
            Self::Crowd {
                duplicate_rate,
                reorder_rate,
                ..
            } => (*duplicate_rate, *reorder_rate),
        }
    }
}

/// Errors of one design over all samples.
#[derive(Debug, Default, Clone)]
pub struct Accuracy {
    pub samples: u64,
    pub exact: u64,
    pub max_error: u64,
    pub total_error: u64,
}

impl Accuracy {
    fn add(&mut self, got: u64, truth: u64) {
        let error = got.abs_diff(truth);
        self.samples += 1;
        self.exact += u64::from(error == 0);
        self.max_error = self.max_error.max(error);
        self.total_error += error;
    }

    pub fn mean_error(&self) -> f64 {
        self.total_error as f64 / self.samples.max(1) as f64
    }

    pub fn exact_share(&self) -> f64 {
        100.0 * self.exact as f64 / self.samples.max(1) as f64
    }
}

/// One chart sample: (second, truth, the four designs' counts).
pub type ChartSample = (i64, u64, [u64; 4]);

/// Everything one workload measured.
pub struct Run {
    pub workload: &'static str,
    pub designs: [Accuracy; 4],
    /// For the chart: (second, truth, a, b, c, d) of the first stream.
    pub series: Vec<ChartSample>,
    pub accepted_events: u64,
    pub session_writes: u64,
    pub counter_updates: u64,
    pub aggregate_batches: u64,
    /// Streams present per aggregate batch, summed (what one update per stream per batch needs).
    pub stream_batches: u64,
    pub bucket_design_writes: u64,
}

pub async fn run(mut workload: Workload, seconds: i64, seed: u64) -> Result<Run, Error> {
    let mut p = Pipeline::new("bench-accuracy").await;
    p.run_ahead_of_ttl();
    let client = p.store.client().clone();
    let buckets = ThirtySecondBuckets {
        client: client.clone(),
        table: format!("{}-b", p.config.counters_table),
    };
    let naive = NaiveCounter {
        client: client.clone(),
        table: format!("{}-d", p.config.counters_table),
    };
    livecount_core::admin::TableAdmin::of(&p.store)
        .create_key_table(&buckets.table, false)
        .await?;
    livecount_core::admin::TableAdmin::of(&p.store)
        .create_key_table(&naive.table, false)
        .await?;
    let mut rng = fastrand::Rng::with_seed(seed);
    let (duplicate_rate, reorder_rate) = workload.rates();
    let mut oracle = Oracle::new(p.config.timing);
    let mut held: Vec<(i64, SqsMessage)> = Vec::new();
    let mut run = Run {
        workload: workload.name(),
        designs: Default::default(),
        series: Vec::new(),
        accepted_events: 0,
        session_writes: 0,
        counter_updates: 0,
        aggregate_batches: 0,
        stream_batches: 0,
        bucket_design_writes: 0,
    };
    let t0 = p.clock.now_ms();
    for tick in 0..seconds {
        let now_ms = t0 + tick * 1000;
        p.clock.set_ms(now_ms);
        let mut deliveries = Vec::new();
        for body in workload.bodies(tick, now_ms) {
            let message = p.message(body, now_ms);
            if rng.f64() < duplicate_rate {
                deliveries.push(message.clone());
            }
            if rng.f64() < reorder_rate {
                held.push((tick + 6, message));
            } else {
                deliveries.push(message);
            }
        }
        held.retain(|(due, message)| {
            let release = *due <= tick;
            if release {
                deliveries.push(message.clone());
            }
            !release
        });
        for batch in deliveries.chunks(10) {
            let report = p.ingest(batch).await;
            run.accepted_events += report.events as u64;
            run.session_writes += (report.applied + report.stale) as u64;
            for message in batch {
                let sent = message
                    .attributes
                    .get("SentTimestamp")
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(now_ms);
                let body = message.body.as_deref().unwrap_or_default();
                oracle.deliver_body(body, sent);
                for event in livecount_core::event::parse_body(body)
                    .map(|b| b.events)
                    .unwrap_or_default()
                    .into_iter()
                    .flatten()
                {
                    run.bucket_design_writes += u64::from(buckets.apply(&event, sent).await?);
                }
            }
        }
        for batch in p.poller.next_batches().await? {
            // Streams deliver at least once: a share of batches arrives twice, to both.
            let times = if rng.f64() < duplicate_rate { 2 } else { 1 };
            let streams: std::collections::BTreeSet<_> = batch
                .records
                .iter()
                .filter_map(|r| match r.change.keys.get("PK") {
                    Some(serde_dynamo::AttributeValue::S(pk)) => {
                        livecount_core::ids::SessionPartition::parse(pk).map(|p| p.stream_id)
                    }
                    _ => None,
                })
                .collect();
            for _ in 0..times {
                let report = p.aggregate_batch(&batch).await;
                run.counter_updates += report.counter_updates as u64;
                run.aggregate_batches += 1;
                run.stream_batches += streams.len() as u64;
                naive.apply(&batch).await?;
            }
        }
        let now = p.clock.now_seconds();
        let streams: Vec<String> = oracle.streams().cloned().collect();
        for (i, stream) in streams.iter().enumerate() {
            let truth = oracle.viewers(stream, now);
            let got = [
                p.viewers(stream).await,
                buckets.viewers(stream, now).await?,
                query_viewers(
                    &client,
                    &p.config.sessions_table,
                    &livecount_core::ids::StreamId::parse(stream)?,
                    p.config.session_shards,
                    now,
                )
                .await?
                .viewers,
                naive.viewers(stream).await?,
            ];
            for (design, value) in run.designs.iter_mut().zip(got) {
                design.add(value, truth);
            }
            if i == 0 {
                run.series.push((tick, truth, got));
            }
        }
    }
    p.cleanup().await;
    let _ = client
        .delete_table()
        .table_name(&buckets.table)
        .send()
        .await;
    let _ = client.delete_table().table_name(&naive.table).send().await;
    Ok(run)
}
