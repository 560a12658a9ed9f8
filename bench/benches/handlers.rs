//! In-process handler cost (no I/O): ingest parse + validate + coalesce per event, and
//! aggregate record reading + counter planning per record.

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use livecount_aggregate::session_move;
use livecount_core::Timing;
use livecount_core::coalesce::newest_per_session;
use livecount_core::event::parse_body;
use livecount_core::histogram::{KnownCounter, plan_counter_update, runs};
use std::hint::black_box;

fn ingest_bodies(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                r#"{{"streamId":"stream-{}","sessionId":"7f1c2a9e-1d2b-4c55-9f0e-{:012}","type":"heartbeat","ts":{},"position":{}.5}}"#,
                i % 20,
                i % 700,
                1_700_000_000_000_i64 + i as i64,
                i
            )
        })
        .collect()
}

fn stream_records(n: usize) -> Event {
    let fixture: Event =
        serde_json::from_str(include_str!("../../tests/fixtures/dynamodb-event.json"))
            .unwrap_or_default();
    let template: EventRecord = fixture.records.get(2).cloned().unwrap_or_default();
    let mut event = Event::default();
    event.records = (0..n)
        .map(|i| {
            let mut record = template.clone();
            record.change.sequence_number = Some(format!("{:021}", 1_000 + i));
            record
        })
        .collect();
    event
}

fn handlers(c: &mut Criterion) {
    let bodies = ingest_bodies(1000);
    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(bodies.len() as u64));
    group.bench_function("parse_validate_coalesce_per_event", |b| {
        b.iter(|| {
            let events = bodies
                .iter()
                .filter_map(|body| parse_body(black_box(body)).ok())
                .flat_map(|parsed| parsed.events.into_iter().flatten())
                .map(|e| (e, ()));
            black_box(newest_per_session(events).len())
        });
    });
    group.finish();

    let event = stream_records(1000);
    let timing = Timing::default();
    let mut group = c.benchmark_group("aggregate");
    group.throughput(Throughput::Elements(event.records.len() as u64));
    group.bench_function("read_and_plan_per_record", |b| {
        b.iter(|| {
            let moves: Vec<_> = event
                .records
                .iter()
                .filter_map(|r| session_move(black_box(r), &timing).ok())
                .collect();
            let known = KnownCounter::default();
            let deltas: usize = runs(&moves)
                .into_iter()
                .filter_map(|run| {
                    // The stream the records are of (the fixture's: launch-keynote).
                    let stream = &run.first()?.stream_id;
                    plan_counter_update(stream, run, 0, None, &known, &timing, 1_700_000_010)
                })
                .map(|p| p.deltas.len())
                .sum();
            black_box(deltas)
        });
    });
    group.finish();
}

criterion_group!(benches, handlers);
criterion_main!(benches);
