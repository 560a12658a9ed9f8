//! # livecount-fuzz
//!
//! The fuzz targets' bodies, as functions of bytes: `cargo fuzz` drives them through the thin
//! targets in `fuzz_targets/` (`make fuzz`, feature `libfuzzer`), and `make test` runs every input
//! of the committed corpus through them (`tests/corpus.rs`), so the targets compile and hold on
//! every run of the suite, not only when someone fuzzes.
//!
//! - [`parse_body`]: any SQS body through parsing, validation, JSON-lines splitting and
//!   coalescing; whatever is accepted obeys the id and `ts` rules.
//! - [`stream_record`]: any Lambda stream batch through record reading and counter planning; the
//!   plan obeys the histogram's invariants and every request it makes is within DynamoDB's
//!   limits.

use aws_lambda_events::event::dynamodb::Event;
use livecount_aggregate::session_move;
use livecount_core::Timing;
use livecount_core::event::MAX_EVENTS_PER_BODY;
use livecount_core::histogram::{KnownCounter, SessionMove, plan_counter_update, runs};
use livecount_core::ids::{MAX_ID_CHARS, StreamId};
use std::collections::{BTreeMap, BTreeSet};

/// The clock the stream target plans at.
const NOW: i64 = 1_700_000_000;

/// Any SQS body: parsing and validation never panic, and whatever is accepted obeys the rules.
pub fn parse_body(data: &[u8]) {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    let _ = livecount_api::split_messages(body);
    let Ok(parsed) = livecount_core::event::parse_body(body) else {
        return;
    };
    assert!(!parsed.events.is_empty() && parsed.events.len() <= MAX_EVENTS_PER_BODY);
    let valid: Vec<_> = parsed.events.into_iter().flatten().collect();
    for event in &valid {
        for id in [event.stream_id.as_str(), event.session_id.as_str()] {
            assert!(!id.is_empty() && id.chars().count() <= MAX_ID_CHARS);
            assert!(
                id.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'))
            );
        }
        assert!(event.ts >= 0);
    }
    let winners =
        livecount_core::coalesce::newest_per_session(valid.iter().cloned().map(|e| (e, ())));
    assert!(winners.len() <= valid.len());
}

/// Any stream batch (as Lambda's JSON): reading records never panics, and the planned counter
/// update obeys the histogram's invariants.
pub fn stream_record(data: &[u8]) {
    let Ok(event) = serde_json::from_slice::<Event>(data) else {
        return;
    };
    let timing = Timing::default();
    let mut by_stream: BTreeMap<StreamId, Vec<_>> = BTreeMap::new();
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
}

/// The plan of one run of records: every delta counted once at most (a record moves a session
/// out of one bucket and into another), none zero, none below the grace period, none both
/// added and pruned; every request it makes within DynamoDB's limits.
fn check_plan(stream: &StreamId, run: &[SessionMove], known: &KnownCounter, timing: &Timing) {
    let Some(plan) = plan_counter_update(stream, run, 0, None, known, timing, NOW) else {
        return;
    };
    let total: i64 = plan.deltas.values().map(|d| d.abs()).sum();
    assert!(total <= 2 * run.len() as i64);
    assert!(plan.deltas.values().all(|d| *d != 0));
    assert!(plan.deltas.keys().all(|b| *b >= NOW - timing.grace_seconds));
    assert!(plan.prune.iter().all(|b| !plan.deltas.contains_key(b)));
    for request in plan.requests(NOW + 86_400) {
        let built = livecount_core::requests::counter_request("counters", &request);
        assert!(
            built.as_ref().is_ok_and(|b| b.within_limits()),
            "a counter request within DynamoDB's limits: {built:?}"
        );
    }
}
