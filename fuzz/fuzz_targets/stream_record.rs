//! Any stream batch (as Lambda's JSON): reading records never panics, and the planned counter
//! update obeys the histogram's invariants.
#![no_main]

use aws_lambda_events::event::dynamodb::Event;
use libfuzzer_sys::fuzz_target;
use livecount_aggregate::session_move;
use livecount_core::Timing;
use livecount_core::histogram::{KnownCounter, plan_counter_update, runs};
use std::collections::{BTreeMap, BTreeSet};

const NOW: i64 = 1_700_000_000;

fuzz_target!(|data: &[u8]| {
    let Ok(event) = serde_json::from_slice::<Event>(data) else {
        return;
    };
    let timing = Timing::default();
    let mut by_stream: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for record in &event.records {
        if let Ok(m) = session_move(record, &timing) {
            for bucket in [m.left, m.joined].into_iter().flatten() {
                assert_eq!(bucket % timing.bucket_seconds, 0);
            }
            by_stream.entry(m.stream_id.clone()).or_default().push(m);
        }
    }
    let known = KnownCounter {
        buckets: BTreeSet::from([NOW - 3600, NOW]),
        ..KnownCounter::default()
    };
    for (stream, moves) in by_stream {
        for run in runs(&moves) {
            check_plan(&stream, run, &known, &timing);
        }
    }
});

/// The plan of one run of records: every delta counted once at most (a record moves a session
/// out of one bucket and into another), none zero, none below the grace period, none both
/// added and pruned; every request it makes within DynamoDB's limits.
fn check_plan(
    stream: &str,
    run: &[livecount_core::histogram::SessionMove],
    known: &KnownCounter,
    timing: &Timing,
) {
    let Some(plan) = plan_counter_update(stream, run, 0, None, known, timing, NOW) else {
        return;
    };
    {
        let moves = run;
        let total: i64 = plan.deltas.values().map(|d| d.abs()).sum();
        assert!(total <= 2 * moves.len() as i64);
        assert!(plan.deltas.values().all(|d| *d != 0));
        assert!(plan.deltas.keys().all(|b| *b >= NOW - timing.grace_seconds));
        assert!(plan.prune.iter().all(|b| !plan.deltas.contains_key(b)));
        for request in plan.requests(NOW + 86_400) {
            let built = livecount_core::requests::counter_request("counters", &request)
                .expect("a counter request builds");
            assert!(built.within_limits());
        }
    }
}
