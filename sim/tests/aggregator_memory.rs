//! One aggregator instance, 50,000 streams (five times `MAX_REMEMBERED_STREAMS`): what it
//! remembers between invocations stays bounded, and every stream still counts exactly. Run
//! against the simulation's model of DynamoDB (50,000 counter updates, histories and receipt
//! removals in seconds; against DynamoDB Local they would take minutes).

// Test helpers outside #[test] functions: a failed step is a failed test.
#![allow(clippy::expect_used)]

use aws_sdk_dynamodb::types::AttributeValue;
use livecount_aggregate::{Aggregator, MAX_REMEMBERED_STREAMS};
use livecount_core::histogram::viewers;
use livecount_core::model::CounterItem;
use livecount_core::{Clock, Config};
use livecount_sim::aws::{Aws, Change};
use std::collections::HashMap;

const STREAMS: usize = 5 * MAX_REMEMBERED_STREAMS;
const BATCH: usize = 10_000;
const EPOCH_MS: i64 = 1_800_000_000_000;

/// A session's first row (an `INSERT`) on stream `s{stream}`, expiring at `exp_date`.
fn insert(stream: usize, exp_date: i64) -> Change {
    let s = |v: String| AttributeValue::S(v);
    let pk = format!("s{stream}#0");
    let key = HashMap::from([
        ("PK".to_owned(), s(pk.clone())),
        ("SK".to_owned(), s("v".into())),
    ]);
    let mut new = key.clone();
    new.insert("expDate".into(), AttributeValue::N(exp_date.to_string()));
    new.insert("watching".into(), AttributeValue::Bool(true));
    Change {
        key,
        old: None,
        new: Some(new),
        sequence: stream as u64 + 1,
        partition_key: pk,
        sort_key: "v".into(),
        committed_ms: EPOCH_MS,
    }
}

#[test]
fn five_times_the_remembered_streams_through_one_aggregator_keep_its_memory_bounded() {
    let config = Config::default();
    let aws = Aws::new(&config.sessions_table, None, Some(1e9), 7);
    let store = aws.store(&config);
    let clock = Clock::manual(EPOCH_MS);
    let aggregator = Aggregator::with_clock(store, config, clock.clone());
    let mut largest = 0;
    for batch in 0..STREAMS / BATCH {
        let now_ms = EPOCH_MS + batch as i64 * 1000;
        clock.set_ms(now_ms);
        aws.counters().now_ms = now_ms;
        let exp_date = now_ms / 1000 + 20 - (now_ms / 1000) % 5;
        let records: Vec<_> = (batch * BATCH..(batch + 1) * BATCH)
            .map(|stream| insert(stream, exp_date).into_record())
            .collect();
        let report = futures::executor::block_on(aggregator.process(&records));
        assert_eq!(report.applied, BATCH, "batch {batch}: {report:?}");
        assert!(report.response.batch_item_failures.is_empty());
        assert_eq!(
            report.receipts_released, BATCH,
            "each batch removes its receipts"
        );
        largest = largest.max(aggregator.remembered_streams());
        assert!(
            aggregator.remembered_streams() <= MAX_REMEMBERED_STREAMS,
            "batch {batch}: {} streams remembered",
            aggregator.remembered_streams()
        );
    }
    assert!(
        largest > MAX_REMEMBERED_STREAMS / 2,
        "the bound was reached: {largest}"
    );
    // Forgotten or remembered, every stream's counter holds its one viewer and no receipt.
    let now = clock.now_seconds();
    for stream in [0, STREAMS / 2, STREAMS - 1] {
        let world = aws.counters();
        let (item, _) = world.table.get(&format!("s{stream}"), "live", false);
        let counter: CounterItem =
            serde_dynamo::from_item(item.expect("a counter").clone()).expect("maps");
        assert_eq!(viewers(&counter.tallies.buckets, now), 1, "stream {stream}");
        assert!(counter.tallies.receipts.is_empty(), "stream {stream}");
    }
}
