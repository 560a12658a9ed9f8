//! `livecount-bench scale` (`make bench-scale`): the scenarios of `livecount-sim` at full size,
//! priced, and written into BENCHMARKS.md (between the scale markers) with docs/scale.svg.

use crate::designs::Error;
use crate::table::{Document, MarkdownTable};
use livecount_core::breakdown::Breakdowns;
use livecount_sim::audience::{AudienceSpec, DimensionMix, Shape};
use livecount_sim::engine::{
    Door, FunctionUse, HandlerCost, InjectedFaults, Outcome, Scenario, Settings, run,
};
use livecount_sim::sizing::{PeakAudience, size};
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use std::path::Path;

/// us-east-1 list prices, on-demand (in effect since 1 November 2024, used on 2026-12-02).
pub struct Prices;

impl Prices {
    pub const WRITE_REQUEST_UNIT: f64 = 0.625 / 1e6;
    pub const READ_REQUEST_UNIT: f64 = 0.125 / 1e6;
    pub const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
    pub const LAMBDA_ARM_GB_SECOND: f64 = 0.000_013_333_4;
    pub const SQS_REQUEST: f64 = 0.40 / 1e6;
    pub const HTTP_API_REQUEST: f64 = 1.00 / 1e6;
}

/// Scenario (v)'s breakdowns: 4, 3 and 3 values listed, so `(4 + 2) + (3 + 2) + (3 + 2)` = 16
/// value streams.
pub const THREE_DIMENSIONS: &str =
    "device=web,ios,android,tv;player=hlsjs-1.5,shaka-4.11,exo-2.19;cdn=cloudfront,fastly,akamai";

/// Every value stream a stream is broken down into (`D x (K + 2)` for `D` dimensions of `K`).
fn value_streams(breakdowns: &Breakdowns) -> u64 {
    breakdowns
        .dimensions()
        .map(|d| breakdowns.values(d).len() as u64)
        .sum()
}

/// What (v)'s players send: each dimension has values not listed (counted as `other`) and
/// players that send none (`none`); the CDN, last, is the one players switch.
fn three_dimensions() -> Vec<DimensionMix> {
    vec![
        DimensionMix {
            field: "device",
            options: vec![
                (Some("web"), 0.45),
                (Some("ios"), 0.2),
                (Some("android"), 0.2),
                (Some("tv"), 0.1),
                (Some("console"), 0.03),
                (None, 0.02),
            ],
        },
        DimensionMix {
            field: "player",
            options: vec![
                (Some("hlsjs-1.5"), 0.5),
                (Some("shaka-4.11"), 0.25),
                (Some("exo-2.19"), 0.2),
                (Some("videojs-8"), 0.04),
                (None, 0.01),
            ],
        },
        DimensionMix {
            field: "cdn",
            options: vec![
                (Some("cloudfront"), 0.5),
                (Some("fastly"), 0.3),
                (Some("akamai"), 0.2),
            ],
        },
    ]
}

/// One scenario's name, description and settings.
pub fn scenarios(scale: f64) -> Vec<(String, Scenario)> {
    let n = |v: f64| (v * scale).round() as u64;
    let steady = |viewers: u64, streams: u32| AudienceSpec {
        shape: Shape::Steady {
            viewers,
            churn_per_minute: 0.10,
        },
        streams,
        silent_share: 1.0 / 3.0,
        duplicate_share: 0.01,
        dimensions: Vec::new(),
        switch_share: 0.0,
    };
    let million = size(PeakAudience {
        viewers_per_stream: n(1e6),
        streams: 1,
        value_streams: 0,
    });
    let small = size(PeakAudience {
        viewers_per_stream: 100,
        streams: n(1e4),
        value_streams: 0,
    });
    let half = size(PeakAudience {
        viewers_per_stream: n(5e5),
        streams: 1,
        value_streams: 0,
    });
    let a = Scenario {
        name: format!("(a) {} viewers on one stream, 10 %/min churn", n(1e6)),
        audience: steady(n(1e6), 1),
        seconds: std::env::var("SCALE_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(95),
        settings: million.settings(true),
        dashboards: 1_000,
        settles_at_s: None,
        measure_from_s: 10,
        scaled_out: true,
        faults: InjectedFaults::default(),
        attack_per_second: 0,
        seed: 1,
    };
    // (a) broken down: the same audience, seed and duration. A constant the tests parse: never
    // the default.
    let three = Breakdowns::parse(THREE_DIMENSIONS).unwrap_or_default();
    let v = Scenario {
        name: format!(
            "(v) {} viewers on one stream, 10 %/min churn, broken down by device, player and CDN (0.2 % of heartbeats switching CDN)",
            n(1e6)
        ),
        audience: AudienceSpec {
            dimensions: three_dimensions(),
            switch_share: 0.002,
            ..a.audience.clone()
        },
        settings: Settings {
            breakdowns: three.clone(),
            ..size(PeakAudience {
                viewers_per_stream: n(1e6),
                streams: 1,
                value_streams: value_streams(&three),
            })
            .settings(true)
        },
        ..a.clone()
    };
    let mut out = vec![
        ("a".to_owned(), a),
        ("v".to_owned(), v),
        (
            "b".to_owned(),
            Scenario {
                name: format!("(b) {} streams of 100 viewers, 10 %/min churn", n(1e4)),
                audience: steady(n(1e6), n(1e4) as u32),
                seconds: 65,
                settings: small.settings(true),
                dashboards: 1_000,
                settles_at_s: None,
                measure_from_s: 10,
                scaled_out: true,
                faults: InjectedFaults::default(),
                attack_per_second: 0,
                seed: 2,
            },
        ),
    ];
    for warm in [true, false] {
        let tag = if warm { "warm" } else { "on-demand" };
        out.push((
            format!("c-{tag}"),
            Scenario {
                name: format!("(c) flash crowd to {} in 60 s, {tag}", n(5e5)),
                audience: AudienceSpec {
                    shape: Shape::FlashCrowd {
                        viewers: n(5e5),
                        over_s: 60,
                    },
                    ..steady(0, 1)
                },
                seconds: 90,
                settings: half.settings(warm),
                dashboards: 1_000,
                settles_at_s: Some(60),
                measure_from_s: 0,
                scaled_out: false,
                faults: InjectedFaults::default(),
                attack_per_second: 0,
                seed: 3,
            },
        ));
        out.push((
            format!("d-{tag}"),
            Scenario {
                name: format!("(d) {} stop within 30 s, {tag}", n(5e5)),
                audience: AudienceSpec {
                    shape: Shape::MassExit {
                        viewers: n(5e5),
                        at_s: 30,
                        over_s: 30,
                    },
                    ..steady(0, 1)
                },
                seconds: 85,
                settings: half.settings(warm),
                dashboards: 1_000,
                settles_at_s: Some(60),
                measure_from_s: 10,
                scaled_out: true,
                faults: InjectedFaults::default(),
                attack_per_second: 0,
                seed: 4,
            },
        ));
    }
    out.push((
        "f".to_owned(),
        Scenario {
            name: format!(
                "(f) {} viewers on one stream, with 2 % of aggregate invocations dying, 1 % of answers lost, 5 % of counter attempts throttled",
                n(1e6)
            ),
            audience: steady(n(1e6), 1),
            seconds: 65,
            settings: million.settings(true),
            dashboards: 1_000,
            settles_at_s: None,
            measure_from_s: 10,
            scaled_out: true,
            faults: InjectedFaults {
                function_errors: 0.02,
                lost_answers: 0.01,
                throttles: 0.05,
            },
            attack_per_second: 0,
            seed: 6,
        },
    ));
    // The relays' path at the same size: the events queue and ingest's batches.
    out.push((
        "q".to_owned(),
        Scenario {
            name: format!(
                "(q) {} viewers on one stream through the events queue (relays), 10 %/min churn",
                n(1e6)
            ),
            audience: steady(n(1e6), 1),
            seconds: 35,
            settings: Settings {
                door: Door::Queue,
                ..million.settings(true)
            },
            dashboards: 1_000,
            settles_at_s: None,
            measure_from_s: 10,
            scaled_out: true,
            faults: InjectedFaults::default(),
            attack_per_second: 0,
            seed: 7,
        },
    ));
    let hundred_thousand = size(PeakAudience {
        viewers_per_stream: n(1e5),
        streams: 1,
        value_streams: 0,
    });
    out.push((
        "g".to_owned(),
        Scenario {
            name: format!(
                "(g) {} viewers on one stream while one client sends {} forged requests a second",
                n(1e5),
                n(1e4)
            ),
            audience: steady(n(1e5), 1),
            seconds: 65,
            settings: hundred_thousand.settings(true),
            dashboards: 1_000,
            settles_at_s: None,
            measure_from_s: 10,
            scaled_out: true,
            faults: InjectedFaults::default(),
            attack_per_second: n(1e4),
            seed: 8,
        },
    ));
    out
}

/// Runs the scenarios one after another (each on two threads); each prints its summary as it
/// ends.
pub fn run_all(
    scale: f64,
    only: Option<&str>,
    cost: HandlerCost,
) -> Vec<(String, Scenario, Outcome)> {
    scenarios(scale)
        .into_iter()
        .filter(|(key, _)| only.is_none_or(|o| key.starts_with(o)))
        .map(|(key, scenario)| {
            eprintln!("bench-scale: {key}: {} ...", scenario.name);
            let outcome = run(&scenario, cost);
            eprintln!("bench-scale: {key}: done\n{}", summary(&outcome));
            for sample in outcome.series.iter().step_by(5) {
                tracing::debug!(
                    scenario = key,
                    ?sample,
                    "every fifth second of the first stream"
                );
            }
            (key, scenario, outcome)
        })
        .collect()
}

/// One line per run for the console (the report has the rest).
pub fn summary(o: &Outcome) -> String {
    format!(
        "  {:.0} s wall; exact {} of {} stream-seconds, largest error {}; values exact {} of {}, largest error {}, unbalanced {}; audience error max {}; \
         heal {:?}; hottest keys: sessions {:.0}, counter {:.0} WCU/s; throttled {}; lag p50 {} ms, p99 {} ms; \
         invocations: ingest {}, aggregate {} ({} died), edge {} (peak {}, throttled {}); count reads {} (peak {}/s, {}/stream-s), age p99 {} ms; refused {}; records redelivered {}, lost {}; messages dead-lettered {}",
        o.wall_seconds,
        o.exact_samples,
        o.samples,
        o.max_error,
        o.exact_value_samples,
        o.value_samples,
        o.max_value_error,
        o.unbalanced_samples,
        o.max_audience_error,
        o.heal_seconds,
        o.hottest_session_key_wcu,
        o.hottest_counter_key_wcu,
        o.throttled_requests,
        o.lag.quantile(0.5),
        o.lag.quantile(0.99),
        o.ingest.invocations,
        o.aggregate.invocations,
        o.function_errors,
        o.edge.function.invocations,
        o.edge.function.peak_concurrency,
        o.edge.throttled,
        o.edge.count_reads,
        o.edge.peak_count_reads_per_second,
        o.edge.peak_count_reads_per_stream_second,
        o.edge.count_age.quantile(0.99),
        o.edge.refused,
        o.records_redelivered,
        o.records_lost,
        o.messages_dead_lettered,
    )
}

/// What a run costs at [`Prices`], in dollars.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cost {
    pub dynamodb: f64,
    pub lambda: f64,
    pub sqs: f64,
    pub http_api: f64,
}

impl Cost {
    pub fn total(&self) -> f64 {
        self.dynamodb + self.lambda + self.sqs + self.http_api
    }
}

/// livecount's cost for a run: every request unit, invocation and GB-second the model counted
/// (the edge's count reads at half a read unit each: eventually consistent, under 4 KB); through
/// the queue, SQS `SendMessage` per message plus one `ReceiveMessage` and one
/// `DeleteMessageBatch` per 10. The attack's requests are left out (see [`attack_cost`]).
pub fn cost(o: &Outcome, door: Door) -> Cost {
    let messages = o.messages as f64;
    let functions = [&o.ingest, &o.aggregate, &o.edge.function];
    Cost {
        dynamodb: o.write_units * Prices::WRITE_REQUEST_UNIT
            + (o.read_units + 0.5 * o.edge.count_reads as f64) * Prices::READ_REQUEST_UNIT,
        lambda: functions.iter().map(|f| lambda_cost(f)).sum(),
        sqs: match door {
            Door::Queue => messages * 1.2 * Prices::SQS_REQUEST,
            Door::Edge => 0.0,
        },
        http_api: 0.0,
    }
}

fn lambda_cost(f: &FunctionUse) -> f64 {
    f.invocations as f64 * Prices::LAMBDA_REQUEST + f.gb_seconds * Prices::LAMBDA_ARM_GB_SECOND
}

/// What the forged requests cost the operator, in dollars (edge invocations and their GB-seconds;
/// they make no write and no read).
pub fn attack_cost(o: &Outcome) -> f64 {
    lambda_cost(&o.edge.attack)
}

/// Dollars per million viewer-hours.
pub fn per_million_viewer_hours(dollars: f64, o: &Outcome) -> f64 {
    let viewer_hours = o.viewer_seconds / 3600.0;
    dollars / viewer_hours.max(1e-9) * 1e6
}

/// One seed design on the audience of (a).
pub struct SeedDesign {
    pub name: &'static str,
    /// Units per second the hottest key is asked for, and its limit.
    pub hottest_key_demand: f64,
    pub hottest_key_limit: f64,
    pub cost: Cost,
}

/// The seed's designs, given the messages, sessions and duration of (a) (their request patterns
/// as `bench/src/designs.rs` implements them and the accuracy benchmark runs them):
///
/// - 30 s bucket rows: every watching event is a conditional write on the session's row under
///   one partition key per stream (`{stream}#session`), and the first of each session in each 30 s
///   bucket one more `ADD` on the bucket row; dashboards `GetItem` the bucket row.
/// - TTL rows read by `Query`: every event writes the session's row (as livecount does), and
///   each of 1,000 dashboards queries every row of the stream every 5 s (eventually consistent,
///   250-byte rows, spread over the same session keys as livecount's).
pub fn seed_designs(a: &Outcome, dashboards: f64, session_shards: f64) -> Vec<SeedDesign> {
    let seconds = a.seconds as f64;
    let messages = a.messages as f64;
    let sessions = a.peak_audience as f64;
    let claims = sessions * seconds / 30.0;
    let bucket_writes = messages + claims;
    let queries = dashboards / 5.0 * seconds;
    let row_bytes = 250.0;
    let query_units = (sessions * row_bytes / 4096.0).ceil() / 2.0;
    let per_second = messages / seconds;
    // The same players, queue and ingest function as livecount's.
    let shared = |writes: f64| {
        Cost {
            dynamodb: 0.0,
            lambda: a.ingest.invocations as f64 * Prices::LAMBDA_REQUEST
                + a.ingest.gb_seconds * Prices::LAMBDA_ARM_GB_SECOND,
            sqs: messages * 1.2 * Prices::SQS_REQUEST,
            http_api: messages * Prices::HTTP_API_REQUEST,
        }
        .with_dynamo(writes)
    };
    vec![
        SeedDesign {
            name: "30 s bucket rows",
            hottest_key_demand: per_second,
            hottest_key_limit: 1000.0,
            cost: shared(bucket_writes).plus_reads(queries * 0.5),
        },
        SeedDesign {
            name: "TTL rows read by Query",
            hottest_key_demand: dashboards / 5.0 * query_units / session_shards,
            hottest_key_limit: 3000.0,
            cost: shared(messages).plus_reads(queries * query_units),
        },
    ]
}

impl Cost {
    fn with_dynamo(mut self, write_units: f64) -> Self {
        self.dynamodb += write_units * Prices::WRITE_REQUEST_UNIT;
        self
    }

    fn plus_reads(mut self, read_units: f64) -> Self {
        self.dynamodb += read_units * Prices::READ_REQUEST_UNIT;
        self
    }
}

/// The BENCHMARKS.md section (between the scale markers).
pub fn markdown(outcomes: &[(String, Scenario, Outcome)], machine: &str) -> String {
    let mut doc = Document::default();
    doc.push(format!("{BEGIN}\n## 6. At scale: a million viewers, simulated"))
        .push("Generated by `make bench-scale` (`livecount-bench scale`, the `livecount-sim` crate); do not edit by hand. A discrete-event simulation on a 10 ms clock runs livecount's own edge checks, ingest and aggregate handlers (parsing, validating, coalescing, session writes, reading stream records, counter plans, every request built) against an in-process model of DynamoDB, its stream, Lambda's scaling and its SQS and stream triggers (docs/benchmarks.md, \"The model\"). The model's item sizes, request units and results are checked against DynamoDB Local by `tests/pipeline/calibration.rs` in `make test`.")
        .push(format!("**Machine.** {machine}"))
        .push(format!("![Counter against the audience in the flash crowd and the mass exit, with and without warm throughput]({CHART})"))
        .push("*Exact* is the share of stream-seconds where the counter equals the settled oracle (every change the counters took in, counted once); *audience error* is the counter against what the players sent at that second (the pipeline's delay, and what throttling lost). *Heal* is how long after the audience stopped changing (60 s in (c) and (d)) the counter took to equal it for good. (c) starts cold: the edge with no instance, growing at Lambda's scaling rate (1,000 instances every 10 s); (a), (v), (b), (d), (f) and (g) with the audience already there (and the edge scaled out), (q) with the SQS trigger scaled out, their audience error measured from the 10th second.")
        .push(results(outcomes))
        .push("**The public edge.** Every scenario but (q) has its players post to the edge (one request per event, written at once, answered with the stream's count, read by an instance at most once a second: what a player's badge shows). *Count age* is how old the count in an answer was, on top of the pipeline's lag above. (g) adds one client sending forged requests, refused by the token check before any write; what they cost is the edge's invocations for them.")
        .push(edge(outcomes))
        .push("**Settings and Lambda.**")
        .push(settings(outcomes))
        .push("**Cost per million viewer-hours.** us-east-1 on-demand list prices in effect since 1 November 2024 (used 2026-12-02): DynamoDB $0.625 per million write request units and $0.125 per million read request units (stream reads by Lambda are free); Lambda arm64 $0.20 per million requests and $0.0000133334 per GB-second (a Function URL adds nothing); SQS standard $0.40 per million requests; API Gateway HTTP API $1.00 per million requests (the seed designs' front door, and livecount's before the edge). Storage (a few hundred MB of session rows) and CloudWatch Logs (one metrics line per edge instance a minute) are left out.")
        .push(costs(outcomes));
    if let Some(table) = breakdowns(outcomes) {
        doc.push(format!("**Breakdowns.** (v) is (a)'s audience, the same joins, heartbeats and leaves, its players also sending a device, a player and a CDN (some a value not listed, counted as `other`, some none, `none`), 0.2 % of heartbeats moving a player to another CDN, under `LIVECOUNT_BREAKDOWNS={THREE_DIMENSIONS}`: 16 value streams, and the counters' warm throughput sized for them. Each second every value's counter is held against the settled oracle (the sessions whose newest change taken sent that value) and each dimension's values against the stream's counter. What the breakdowns add is (v) less (a), per viewer-hour."))
            .push(table);
    }
    doc.push("**Retries.** What Lambda delivered again and what the receipts made of it (docs/design.md §4): aggregate invocations that died after their updates, counter answers lost, counter attempts throttled by injection (on top of any the throughput limits made), the records Lambda delivered again, the records recognised as applied before (by a receipt, on a Lambda retry or on the SDK's own retry of a request whose answer was lost, so this can exceed the records delivered again), and the counter against the settled oracle.")
        .push(retries(outcomes))
        .push("**Sizing rule** (`sim/src/sizing.rs`, stated in the README), the settings each scenario ran with:")
        .push(sizing())
        .push(END);
    doc.render()
}

fn exact_share(o: &Outcome) -> f64 {
    100.0 * o.exact_samples as f64 / o.samples.max(1) as f64
}

/// Accuracy, heal, hottest keys, throttling and lag, one row per scenario.
fn results(outcomes: &[(String, Scenario, Outcome)]) -> MarkdownTable {
    let mut table = MarkdownTable::new(
        &["scenario"],
        &[
            "simulated",
            "wall",
            "exact",
            "max error",
            "audience error max / p99",
            "heal",
            "hottest sessions key",
            "hottest counter key",
            "throttled requests",
            "counter item",
            "lag p50 / p99",
        ],
    );
    for (_, scenario, o) in outcomes {
        table.row(&[
            &scenario.name,
            &format!("{} s", o.seconds),
            &format!("{:.0} s", o.wall_seconds),
            &format!(
                "{:.2} % ({} of {})",
                exact_share(o),
                o.exact_samples,
                o.samples
            ),
            &o.max_error,
            &format!("{} / {}", o.max_audience_error, o.p99_audience_error),
            &match o.heal_seconds {
                None => "—".to_owned(),
                Some(None) => "not by the end".to_owned(),
                Some(Some(h)) => format!("{h} s"),
            },
            &format!("{:.0} WCU/s", o.hottest_session_key_wcu),
            &format!("{:.0} WCU/s", o.hottest_counter_key_wcu),
            &o.throttled_requests,
            &format!("{} B", o.largest_counter_item),
            &format!(
                "{:.1} / {:.1} s",
                o.lag.quantile(0.5) as f64 / 1000.0,
                o.lag.quantile(0.99) as f64 / 1000.0
            ),
        ]);
    }
    table
}

/// The edge's Lambda use, count reads, count age and the attack, for the scenarios through it.
fn edge(outcomes: &[(String, Scenario, Outcome)]) -> MarkdownTable {
    let mut table = MarkdownTable::new(
        &["scenario"],
        &[
            "edge invocations, peak concurrency, GB-s, throttled",
            "count reads: total, peak per second, peak per stream-second (read units of 3,000)",
            "count age p50 / p99",
            "forged requests refused",
            "their cost",
        ],
    );
    for (_, scenario, o) in outcomes {
        if scenario.settings.door != Door::Edge {
            continue;
        }
        let e = &o.edge;
        let attack = attack_cost(o);
        table.row(&[
            &scenario.name,
            &format!(
                "{}, {}, {:.0}, {}",
                e.function.invocations,
                e.function.peak_concurrency,
                e.function.gb_seconds,
                e.throttled
            ),
            &format!(
                "{}, {}, {} ({:.0})",
                e.count_reads,
                e.peak_count_reads_per_second,
                e.peak_count_reads_per_stream_second,
                0.5 * e.peak_count_reads_per_stream_second as f64
            ),
            &format!(
                "{} / {} ms",
                e.count_age.quantile(0.5),
                e.count_age.quantile(0.99)
            ),
            &e.refused,
            &if e.refused == 0 {
                "—".to_owned()
            } else {
                format!(
                    "${attack:.4} (${:.2} an hour; ${:.3} per million)",
                    attack / o.seconds as f64 * 3600.0,
                    attack / e.refused as f64 * 1e6
                )
            },
        ]);
    }
    table
}

/// What each scenario ran with, and its Lambda use, request units and losses.
fn settings(outcomes: &[(String, Scenario, Outcome)]) -> MarkdownTable {
    let mut table = MarkdownTable::new(
        &["scenario"],
        &[
            "S",
            "warm writes (sessions / counters)",
            "stream shards x PF",
            "aggregate window / batch",
            "ingest batch / writes",
            "ingest invocations, peak concurrency, GB-s",
            "aggregate invocations, peak concurrency, GB-s",
            "write units",
            "read units",
            "messages dead-lettered / expired, records lost",
        ],
    );
    let warm = |w: Option<f64>| w.map_or("on-demand".to_owned(), |w| format!("{w:.0}"));
    let lambda = |f: &FunctionUse| {
        format!(
            "{}, {}, {:.0}",
            f.invocations, f.peak_concurrency, f.gb_seconds
        )
    };
    for (_, scenario, o) in outcomes {
        let s = &scenario.settings;
        table.row(&[
            &scenario.name,
            &s.session_shards,
            &format!(
                "{} / {}",
                warm(s.sessions_warm_writes),
                warm(s.counters_warm_writes)
            ),
            &format!("{} x {}", o.partitions, s.parallelization_factor),
            &format!(
                "{} s / {}",
                s.stream.batching_window_ms / 1000,
                s.stream.batch_size
            ),
            &format!("{} / {}", s.queue.batch_size, s.max_concurrent_writes),
            &lambda(&o.ingest),
            &lambda(&o.aggregate),
            &format!("{:.0}", o.write_units),
            &format!("{:.0}", o.read_units),
            &format!(
                "{} / {}, {}",
                o.messages_dead_lettered, o.messages_expired, o.records_lost
            ),
        ]);
    }
    table
}

/// Dollars per million viewer-hours: livecount in each scenario, then the seed's designs on (a)'s
/// audience.
/// (a) and (v) side by side, and what the breakdowns add per viewer-hour: none unless both ran.
fn breakdowns(outcomes: &[(String, Scenario, Outcome)]) -> Option<MarkdownTable> {
    let find = |key: &str| outcomes.iter().find(|(k, _, _)| k == key);
    let ((_, a_scenario, a), (_, v_scenario, v)) = (find("a")?, find("v")?);
    let mut table = MarkdownTable::new(
        &["scenario"],
        &[
            "value-seconds exact",
            "largest value error",
            "stream-seconds whose values did not add up",
            "counter updates",
            "write units per viewer-hour",
            "cost per million viewer-hours",
        ],
    );
    let hours = |o: &Outcome| o.viewer_seconds.max(1e-9) / 3600.0;
    let per_hour = |o: &Outcome| o.write_units / hours(o);
    let dollars = |scenario: &Scenario, o: &Outcome| {
        per_million_viewer_hours(cost(o, scenario.settings.door).total(), o)
    };
    for (scenario, o) in [(a_scenario, a), (v_scenario, v)] {
        table.row(&[
            &scenario.name,
            &if o.value_samples == 0 {
                "—".to_owned()
            } else {
                format!(
                    "{:.2} % ({} of {})",
                    100.0 * o.exact_value_samples as f64 / o.value_samples as f64,
                    o.exact_value_samples,
                    o.value_samples
                )
            },
            &o.max_value_error,
            &o.unbalanced_samples,
            &o.counter_updates,
            &format!("{:.2}", per_hour(o)),
            &format!("${:.2}", dollars(scenario, o)),
        ]);
    }
    table.row(&[
        &"the breakdowns, (v) less (a)",
        &"",
        &"",
        &"",
        &format!("{:+}", v.counter_updates as i64 - a.counter_updates as i64),
        &format!(
            "{:+.2} ({:+.1} %)",
            per_hour(v) - per_hour(a),
            100.0 * (per_hour(v) / per_hour(a).max(1e-9) - 1.0)
        ),
        &{
            let extra = dollars(v_scenario, v) - dollars(a_scenario, a);
            format!("{}${:.2}", if extra < 0.0 { "-" } else { "+" }, extra.abs())
        },
    ]);
    Some(table)
}

fn costs(outcomes: &[(String, Scenario, Outcome)]) -> MarkdownTable {
    let mut table = MarkdownTable::new(
        &["design", "scenario"],
        &[
            "DynamoDB",
            "Lambda",
            "SQS",
            "HTTP API",
            "total",
            "hottest key asked for",
        ],
    );
    let dollars = |c: &Cost, o: &Outcome| {
        let per = |d: f64| format!("${:.2}", per_million_viewer_hours(d, o));
        [
            per(c.dynamodb),
            per(c.lambda),
            per(c.sqs),
            per(c.http_api),
            format!("**{}**", per(c.total())),
        ]
    };
    for (_, scenario, o) in outcomes {
        let [dynamodb, lambda, sqs, http, total] = dollars(&cost(o, scenario.settings.door), o);
        table.row(&[
            &"livecount",
            &scenario.name,
            &dynamodb,
            &lambda,
            &sqs,
            &http,
            &total,
            &format!(
                "{:.0} WCU/s of 1,000",
                o.hottest_session_key_wcu.max(o.hottest_counter_key_wcu)
            ),
        ]);
    }
    if let Some((_, scenario, a)) = outcomes.iter().find(|(k, _, _)| k == "a") {
        for design in seed_designs(
            a,
            scenario.dashboards as f64,
            f64::from(scenario.settings.session_shards),
        ) {
            let [dynamodb, lambda, sqs, http, total] = dollars(&design.cost, a);
            table.row(&[
                &format!("(e) {}", design.name),
                &"audience of (a), if DynamoDB could serve it",
                &dynamodb,
                &lambda,
                &sqs,
                &http,
                &total,
                &format!(
                    "{:.0} units/s of {:.0}: {:.1} % throttled",
                    design.hottest_key_demand,
                    design.hottest_key_limit,
                    100.0 * (1.0 - design.hottest_key_limit / design.hottest_key_demand).max(0.0)
                ),
            ]);
        }
    }
    table
}

/// The faults injected, what Lambda delivered again, and the counter's accuracy.
fn retries(outcomes: &[(String, Scenario, Outcome)]) -> MarkdownTable {
    let mut table = MarkdownTable::new(
        &["scenario"],
        &[
            "invocations died",
            "answers lost",
            "attempts throttled",
            "records delivered again",
            "recognised as applied",
            "exact",
            "max error",
        ],
    );
    for (_, scenario, o) in outcomes {
        table.row(&[
            &scenario.name,
            &o.function_errors,
            &o.lost_answers,
            &o.injected_throttles,
            &o.records_redelivered,
            &o.duplicates_recognised,
            &format!("{:.2} %", exact_share(o)),
            &o.max_error,
        ]);
    }
    table
}

/// The sizing rule's settings for the default audience and the scenarios' audiences.
fn sizing() -> MarkdownTable {
    let mut table = MarkdownTable::new(
        &["peak audience"],
        &[
            "S",
            "sessions warm writes",
            "stream shards",
            "aggregate window",
            "counters warm writes",
            "ingest batch / writes / concurrency",
            "aggregate batch",
        ],
    );
    let audiences = [
        livecount_sim::sizing::DEFAULT_AUDIENCE,
        PeakAudience {
            viewers_per_stream: 100_000,
            streams: 1,
            value_streams: 0,
        },
        PeakAudience {
            viewers_per_stream: 500_000,
            streams: 1,
            value_streams: 0,
        },
        PeakAudience {
            viewers_per_stream: 1_000_000,
            streams: 1,
            value_streams: 0,
        },
        PeakAudience {
            viewers_per_stream: 1_000_000,
            streams: 1,
            value_streams: value_streams(&Breakdowns::parse(THREE_DIMENSIONS).unwrap_or_default()),
        },
        PeakAudience {
            viewers_per_stream: 100,
            streams: 10_000,
            value_streams: 0,
        },
    ];
    for audience in audiences {
        let s = size(audience);
        table.row(&[
            &if audience.value_streams == 0 {
                format!("{} x {}", audience.streams, audience.viewers_per_stream)
            } else {
                format!(
                    "{} x {}, {} value streams each",
                    audience.streams, audience.viewers_per_stream, audience.value_streams
                )
            },
            &s.session_shards,
            &s.sessions_warm_writes,
            &s.stream_shards,
            &format!("{} s", s.aggregate_window_s),
            &s.counters_warm_writes,
            &format!(
                "{} / {} / {}",
                s.ingest_batch_size, s.max_concurrent_writes, s.ingest_max_concurrency
            ),
            &s.aggregate_batch_size,
        ]);
    }
    table
}

pub const BEGIN: &str = "<!-- scale:begin -->";
pub const END: &str = "<!-- scale:end -->";

/// BENCHMARKS.md with its scale section replaced (or appended).
pub fn splice(existing: &str, section: &str) -> String {
    match (existing.find(BEGIN), existing.find(END)) {
        (Some(a), Some(b)) if a < b => {
            format!(
                "{}{}{}",
                &existing[..a],
                section.trim_end(),
                &existing[b + END.len()..]
            )
        }
        _ => format!("{}\n{}", existing.trim_end(), section),
    }
}

/// The chart's path in the repository, as BENCHMARKS.md links it.
pub const CHART: &str = "docs/scale.svg";

/// The chart: the counter against the audience in (c) and (d), with and without warm throughput,
/// one panel each.
pub fn write_chart(outcomes: &[(String, Scenario, Outcome)], path: &Path) -> Result<(), Error> {
    let root = SVGBackend::new(path, (1140, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((1, 2));
    let runs = [
        (
            "(c) flash crowd to 500,000 in 60 s",
            "c",
            SeriesLabelPosition::UpperLeft,
        ),
        (
            "(d) 500,000 stop within 30 s",
            "d",
            SeriesLabelPosition::UpperRight,
        ),
    ];
    for (panel, (title, key, legend)) in panels.iter().zip(runs) {
        let find = |tag: &str| {
            outcomes
                .iter()
                .find(|(k, _, _)| *k == format!("{key}-{tag}"))
                .map(|(_, _, o)| o)
        };
        let (warm, cold) = (find("warm"), find("on-demand"));
        let present = || warm.iter().chain(cold.iter());
        let max_t = present().map(|o| o.seconds).max().unwrap_or(1).max(1);
        let max_v = present()
            .flat_map(|o| o.series.iter().map(|s| s.audience.max(s.counter)))
            .max()
            .unwrap_or(1)
            .max(1);
        let mut chart = ChartBuilder::on(panel)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(0..max_t, 0..max_v + max_v / 20)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(TRANSPARENT)
            .y_label_formatter(&|v| thousands(*v))
            .x_desc("seconds")
            .y_desc("viewers")
            .draw()?;
        for (run, label, color) in [
            (warm, "counter, warm throughput", BLUE_LINE),
            (cold, "counter, new on-demand table", RED_LINE),
        ] {
            let Some(o) = run else { continue };
            let style = color.stroke_width(2);
            chart
                .draw_series(LineSeries::new(
                    o.series.iter().map(|s| (s.second, s.counter)),
                    style,
                ))?
                .label(label)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], style));
        }
        if let Some(o) = warm.or(cold) {
            let style = BLACK.stroke_width(1);
            chart
                .draw_series(DashedLineSeries::new(
                    o.series.iter().map(|s| (s.second, s.audience)),
                    4,
                    3,
                    style,
                ))?
                .label("audience")
                .legend(move |(x, y)| DashedPathElement::new([(x, y), (x + 24, y)], 4, 3, style));
        }
        chart
            .configure_series_labels()
            .position(legend)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.3))
            .label_font(("sans-serif", 14))
            .draw()?;
    }
    root.present()?;
    Ok(())
}

/// `500000` as `500,000`.
fn thousands(v: i64) -> String {
    let digits = v.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0 { format!("-{out}") } else { out }
}

const BLUE_LINE: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const RED_LINE: RGBColor = RGBColor(0xd6, 0x27, 0x28);

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use livecount_sim::engine::{EdgeUse, Sample};

    /// An outcome from fixed numbers: `n` picks them, `heal` and `refused` vary what is printed.
    fn outcome(n: u64, seconds: i64, heal: Option<Option<i64>>, refused: u64) -> Outcome {
        let f = n as f64;
        let function = |k: u64| FunctionUse {
            invocations: k * 1_000 + n,
            peak_concurrency: (k * 10 + n) as usize,
            gb_seconds: f * 10.5 + k as f64,
            cold_starts: k,
        };
        // A flash crowd to 500,000 over 60 s, the counter a second behind, or a stop.
        let series = (0..seconds)
            .map(|second| {
                let audience = if n % 2 == 1 {
                    500_000 * second.min(60) / 60
                } else {
                    500_000 * (60 - second.clamp(30, 60)) / 30
                };
                let counter = audience - audience / (n as i64 + 10);
                Sample {
                    second,
                    audience,
                    settled: counter,
                    counter,
                }
            })
            .collect();
        Outcome {
            seconds,
            peak_audience: 1_000_000 / n as i64,
            viewer_seconds: 1e6 * seconds as f64 / f,
            samples: 100 * n,
            exact_samples: 100 * n - n / 2,
            max_error: n as i64 / 3,
            max_audience_error: 1_000 * n as i64,
            p99_audience_error: 100 * n as i64,
            heal_seconds: heal,
            hottest_session_key_wcu: 812.4 + f,
            hottest_counter_key_wcu: 655.5 - f,
            throttled_requests: n * 7,
            largest_counter_item: 2_000 + n as usize,
            ingest: function(1),
            aggregate: function(2),
            edge: EdgeUse {
                function: function(3),
                attack: function(4),
                answered: n * 1_000,
                refused,
                throttled: n,
                count_reads: n * 50_000,
                peak_count_reads_per_second: n * 900,
                peak_count_reads_per_stream_second: n * 500,
                ..EdgeUse::default()
            },
            write_units: 1.5e7 * f,
            read_units: 2.25e5 * f,
            messages: 5_000_000 * n,
            messages_dead_lettered: n / 4,
            messages_expired: n / 5,
            records_lost: 0,
            duplicates_recognised: n * 3,
            function_errors: n * 2,
            lost_answers: n,
            injected_throttles: n * 4,
            records_redelivered: n * 11,
            partitions: n as usize + 3,
            series,
            wall_seconds: 60.0 * f + 0.4,
            ..Outcome::default()
        }
    }

    /// Every scenario, each with an outcome of its own.
    pub(crate) fn outcomes() -> Vec<(String, Scenario, Outcome)> {
        scenarios(1.0)
            .into_iter()
            .zip(1..)
            .map(|((key, scenario), n)| {
                let heal = match n % 3 {
                    0 => None,
                    1 => Some(None),
                    _ => Some(Some(n as i64)),
                };
                let refused = if key == "g" { 650_000 } else { 0 };
                let mut o = outcome(n, scenario.seconds, heal, refused);
                if key == "v" {
                    o.value_samples = 16 * o.samples;
                    o.exact_value_samples = 16 * o.samples - n;
                    o.max_value_error = 1;
                    o.unbalanced_samples = n / 2;
                    o.counter_updates = 17_000 * n;
                    o.write_units *= 1.1;
                }
                (key, scenario, o)
            })
            .collect()
    }

    /// The section for [`outcomes`], as the markdown writer before the table helper wrote it.
    #[test]
    fn the_section_renders_from_fixed_data() {
        assert_eq!(
            markdown(&outcomes(), "Test CPU, 2 cores; 2026-01-01"),
            include_str!("testdata/scale.md")
        );
    }

    #[test]
    fn scenario_v_breaks_its_stream_into_sixteen_value_streams() {
        let three = Breakdowns::parse(THREE_DIMENSIONS).expect("valid");
        assert_eq!(value_streams(&three), 16);
        let (_, v) = scenarios(1.0)
            .into_iter()
            .find(|(key, _)| key == "v")
            .expect("(v)");
        assert_eq!(v.settings.breakdowns, three);
        assert_eq!(v.settings.counters_warm_writes, Some(20_000.0));
        let fields: Vec<&str> = v.audience.dimensions.iter().map(|d| d.field).collect();
        assert_eq!(fields, ["device", "player", "cdn"]);
    }

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(500_000), "500,000");
        assert_eq!(thousands(-1_234_567), "-1,234,567");
    }

    #[test]
    fn the_chart_is_an_svg_with_both_counters_and_the_audience_in_each_panel() {
        let svg = crate::tests::drawn("livecount-scale", |path| write_chart(&outcomes(), path));
        crate::tests::assert_svg_with(
            &svg,
            &[
                "(c) flash crowd to 500,000 in 60 s",
                "(d) 500,000 stop within 30 s",
                "counter, warm throughput",
                "counter, new on-demand table",
                "audience",
            ],
        );
        let texts = crate::tests::svg_texts(&svg);
        let legends = texts.iter().filter(|t| *t == "audience").count();
        assert_eq!(legends, 2, "one legend per panel: {texts:?}");
    }
}
