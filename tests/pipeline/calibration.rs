//! Calibration of the in-memory DynamoDB the scale simulation runs on
//! (`livecount_sim::dynamodb::Table`): livecount's own session, counter and history writes, built
//! by its pure request builders, are sent one by one to DynamoDB Local and applied to the model.
//! Request for request the two agree on whether the condition held, on the write units an
//! applied write costs, on the item it leaves and on that item's size; afterwards they agree on
//! every item and on what an eventually and a strongly consistent read of it costs, for items
//! under 1 KB, over 1 KB and over 4 KB, and for an absent one.

// Test helpers outside #[test] functions: a failed step is a failed test.
#![allow(clippy::expect_used)]

use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnConsumedCapacity, ReturnValue, ReturnValuesOnConditionCheckFailure,
};
use livecount_core::capacity::item_size;
use livecount_core::figures::{MAX_PUBLICATION_SECONDS, Settled, hour_of};
use livecount_core::histogram::{CounterRequest, Fingerprint, Receipt, ReceiptKey, ReceiptWrite};
use livecount_core::model::{HourItem, ItemKey, LifetimeItem, SessionState};
use livecount_core::requests::{
    Item, UpdateRequest, counter_request, hour_request, lifetime_request, receipt_release_request,
    session_write_request, viewer_marker_request,
};
use livecount_core::store::CounterWrite;
use livecount_sim::dynamodb::{Table, Written};
use livecount_tests::Pipeline;
use std::collections::{BTreeSet, HashMap};

/// What a request of the sequence is meant to do, so the sequence provably covers both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Meant {
    Applied,
    Refused,
}

/// The same requests against DynamoDB Local (the pipeline's tables) and the model.
struct Calibration {
    p: Pipeline,
    /// The model's tables, by table name.
    models: HashMap<String, Table>,
    /// Every `(table, PK, SK)` written, for the reads.
    keys: BTreeSet<(String, String, String)>,
}

fn key_of(key: &Item) -> (String, String) {
    let text = |name: &str| match key.get(name) {
        Some(AttributeValue::S(s)) => s.clone(),
        other => panic!("key attribute {name} is {other:?}"),
    };
    (text("PK"), text("SK"))
}

/// The attributes in which two items differ, each as `name: local vs model`. Numbers compare as
/// text, not normalised: DynamoDB Local returns every number of the sequence exactly as the
/// request wrote it (`0.1`, `5400.125`, `60` for 60.0, `-0` for -0.0), as the model keeps it.
fn differences(local: Option<&Item>, model: Option<&Item>) -> Vec<String> {
    let empty = Item::new();
    let (l, m) = (local.unwrap_or(&empty), model.unwrap_or(&empty));
    let names: BTreeSet<&String> = l.keys().chain(m.keys()).collect();
    let mut out: Vec<String> = names
        .into_iter()
        .filter(|n| l.get(*n) != m.get(*n))
        .map(|n| format!("{n}: Local {:?} vs model {:?}", l.get(n), m.get(n)))
        .collect();
    if local.is_some() != model.is_some() {
        out.push(format!(
            "item present: Local {} vs model {}",
            local.is_some(),
            model.is_some()
        ));
    }
    out
}

impl Calibration {
    async fn new(test: &str) -> Self {
        let p = Pipeline::new(test).await;
        // Every expiry below is a day ahead of the wall clock: DynamoDB Local's TTL sweep never
        // deletes an item under the comparison.
        p.run_ahead_of_ttl();
        Self {
            p,
            models: HashMap::new(),
            keys: BTreeSet::new(),
        }
    }

    /// Sends `request` to DynamoDB Local and applies it to the model; asserts that both did what
    /// `meant` says, charged the same units and left the same item of the same size.
    async fn send(&mut self, label: &str, request: UpdateRequest, meant: Meant) -> Written {
        let (pk, sk) = key_of(&request.key);
        self.keys
            .insert((request.table.clone(), pk.clone(), sk.clone()));
        let model = self.models.entry(request.table.clone()).or_default();
        let before: Option<Item> = model.get(&pk, &sk, true).0.cloned();
        let written = model
            .update(&request)
            .unwrap_or_else(|e| panic!("{label}: the model refuses the request: {e}"));
        let result = self
            .p
            .store
            .client()
            .update_item()
            .table_name(&request.table)
            .set_key(Some(request.key.clone()))
            .update_expression(&request.update)
            .set_condition_expression(request.condition.clone())
            .set_expression_attribute_names(Some(request.names.clone()))
            .set_expression_attribute_values(Some(request.values.clone()))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match result {
            Ok(output) => {
                assert_eq!(meant, Meant::Applied, "{label}: DynamoDB Local applied it");
                assert!(
                    written.applied,
                    "{label}: DynamoDB Local applied it, the model refused it"
                );
                let units = output
                    .consumed_capacity
                    .and_then(|c| c.capacity_units)
                    .expect("consumed capacity");
                let item = output.attributes.expect("ALL_NEW returns the item");
                assert_eq!(
                    units, written.units,
                    "{label}: write units, DynamoDB Local vs model (model sizes {} -> {})",
                    written.size_before, written.size_after
                );
                let differ = differences(Some(&item), written.new.as_ref());
                assert!(differ.is_empty(), "{label}: items differ: {differ:#?}");
                assert_eq!(
                    item_size(&item),
                    written.size_after,
                    "{label}: item size, DynamoDB Local's item vs model"
                );
            }
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                assert_eq!(meant, Meant::Refused, "{label}: DynamoDB Local refused it");
                assert!(
                    !written.applied,
                    "{label}: DynamoDB Local refused it, the model applied it"
                );
                // DynamoDB Local's ConditionalCheckFailedException carries the item (asked for
                // with ALL_OLD) but no ConsumedCapacity, so what a refused write costs cannot be
                // measured here: the model charges it by the documented rule (one unit per
                // started KB of the larger of the item before and after the write it refused).
                let UpdateItemError::ConditionalCheckFailedException(failed) = e.into_err() else {
                    panic!("{label}: checked to be a ConditionalCheckFailedException");
                };
                let differ = differences(failed.item.as_ref(), before.as_ref());
                assert!(
                    differ.is_empty(),
                    "{label}: the item that refused the write differs: {differ:#?}"
                );
                assert_eq!(
                    written.size_after,
                    before.as_ref().map_or(0, item_size),
                    "{label}: a refused write leaves the item's size"
                );
            }
            Err(other) => panic!(
                "{label}: DynamoDB Local rejects the request: {}",
                DisplayErrorContext(other)
            ),
        }
        written
    }

    /// Reads every item written, and one absent item, from DynamoDB Local eventually and
    /// strongly consistently; asserts the model has the same items and charges the same units.
    async fn compare_reads(&self) {
        let absent = (
            self.p.config.counters_table.clone(),
            "no-such-stream".to_owned(),
            "live".to_owned(),
        );
        for (table, pk, sk) in self.keys.iter().chain([&absent]) {
            let model = self.models.get(table).expect("a model of the table");
            for strongly_consistent in [false, true] {
                let output = self
                    .p
                    .store
                    .client()
                    .get_item()
                    .table_name(table)
                    .key("PK", AttributeValue::S(pk.clone()))
                    .key("SK", AttributeValue::S(sk.clone()))
                    .consistent_read(strongly_consistent)
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
                    .await
                    .expect("read");
                let units = output
                    .consumed_capacity
                    .and_then(|c| c.capacity_units)
                    .expect("consumed capacity");
                let (item, model_units) = model.get(pk, sk, strongly_consistent);
                let label = format!(
                    "GetItem {pk:?}/{sk:?} of {table}, consistent read {strongly_consistent}"
                );
                let differ = differences(output.item.as_ref(), item);
                assert!(differ.is_empty(), "{label}: items differ: {differ:#?}");
                assert_eq!(
                    units,
                    model_units,
                    "{label}: read units, DynamoDB Local vs model (size {})",
                    item.map_or(0, item_size)
                );
            }
        }
    }
}

/// A session's state after an event of `kind` (its rank as `PlayerEvent::order` gives it).
fn state(stream: &str, now_ms: i64, ts: i64, seq: Option<u64>, kind: &str) -> SessionState {
    let rank = match kind {
        "start" => 0,
        "heartbeat" => 1,
        "pause" => 2,
        _ => 3,
    };
    SessionState {
        stream_id: stream.to_owned(),
        exp_date: now_ms / 1000 + 90,
        last_ts: ts,
        last_seq: seq,
        last_rank: rank,
        last_type: kind.to_owned(),
        recv_at: now_ms,
        watching: kind != "stop" && kind != "pause",
        position: None,
        user_id: None,
        dimensions: Default::default(),
    }
}

/// Session writes: INSERT, MODIFY, stale and same-order writes refused, with and without `seq`,
/// optional attributes appearing and staying, a row near 1 KB.
async fn sessions(c: &mut Calibration) {
    let table = c.p.config.sessions_table.clone();
    let now = c.p.clock.now_ms();
    let a = ItemKey::session(
        &livecount_tests::stream("calib"),
        3,
        &livecount_tests::session("session-a"),
    );
    let write = |key: &ItemKey, state: &SessionState| {
        session_write_request(&table, key, state).expect("builds")
    };

    let insert = state("calib", now, now - 40, None, "start");
    c.send("session insert", write(&a, &insert), Meant::Applied)
        .await;
    let mut newer = state("calib", now + 5_000, now + 4_960, None, "heartbeat");
    newer.position = Some(12.5);
    newer.user_id = Some("user-1".into());
    newer.dimensions.device = Some("tv".into());
    c.send("session modify", write(&a, &newer), Meant::Applied)
        .await;
    let stale = state("calib", now + 6_000, now + 1_000, None, "heartbeat");
    c.send("stale session write", write(&a, &stale), Meant::Refused)
        .await;
    let same = state("calib", now + 7_000, now + 4_960, None, "heartbeat");
    c.send(
        "same ts, same rank session write",
        write(&a, &same),
        Meant::Refused,
    )
    .await;
    let mut paused = state("calib", now + 8_000, now + 4_960, None, "pause");
    paused.position = Some(0.1);
    c.send(
        "same ts, higher rank session write",
        write(&a, &paused),
        Meant::Applied,
    )
    .await;
    let mut first_seq = state("calib", now + 10_000, now + 1, Some(7), "heartbeat");
    first_seq.position = Some(5_400.125);
    c.send(
        "first session write with seq (older ts)",
        write(&a, &first_seq),
        Meant::Applied,
    )
    .await;
    let without_seq = state("calib", now + 15_000, now + 14_900, None, "heartbeat");
    c.send(
        "session write without seq after one with seq",
        write(&a, &without_seq),
        Meant::Refused,
    )
    .await;
    let stop = state("calib", now + 16_000, now + 15_900, Some(7), "stop");
    c.send(
        "same seq, higher rank session write",
        write(&a, &stop),
        Meant::Applied,
    )
    .await;
    let old_seq = state("calib", now + 17_000, now + 16_900, Some(6), "heartbeat");
    c.send(
        "lower seq session write",
        write(&a, &old_seq),
        Meant::Refused,
    )
    .await;
    let mut next_seq = state("calib", now + 18_000, now + 17_900, Some(8), "heartbeat");
    next_seq.position = Some(60.0);
    c.send(
        "higher seq session write",
        write(&a, &next_seq),
        Meant::Applied,
    )
    .await;

    let long = format!("{:0>36}", "b");
    let b = ItemKey::session(
        &livecount_tests::stream(&"s".repeat(128)),
        1023,
        &livecount_tests::session(&long),
    );
    let mut big = state(&"s".repeat(128), now, now, Some(1), "start");
    big.user_id = Some("u".repeat(256));
    big.dimensions = livecount_core::breakdown::Dimensions {
        device: Some("d".repeat(32)),
        player: Some("p".repeat(32)),
        cdn: Some("c".repeat(32)),
        label: Some("l".repeat(32)),
        country: Some("g".repeat(32)),
    };
    big.position = Some(-0.0);
    let inserted = c
        .send(
            "session insert, longest ids",
            write(&b, &big),
            Meant::Applied,
        )
        .await;
    assert!(inserted.size_after > 512, "{} bytes", inserted.size_after);
}

/// The receipt of a one-record delivery that began with record `id`.
fn receipt(id: u64, now: i64) -> (ReceiptKey, Receipt) {
    let key = ReceiptKey::of_first_record(&format!("record-{id}"));
    let receipt = Receipt {
        at: now,
        records: 1,
        fingerprint: Fingerprint(id),
    };
    (key, receipt)
}

/// A counter request with the receipt of record `id` (none for 0), replacing `replaces`.
fn counter(
    stream: &str,
    deltas: Vec<(i64, i64)>,
    prune: Vec<i64>,
    id: u64,
    now: i64,
) -> CounterRequest {
    let (key, receipt) = receipt(id, now);
    // the small requests carry start seconds (20 s before their buckets) and sessions started
    // and viewers first seen (in the minute before theirs) too, and remove them (those of ten
    // minutes before)
    let minute = |t: i64| t - t.rem_euclid(60) - 60;
    let (starts, new_sessions) = if deltas.len() <= 2 {
        let starts = deltas.iter().map(|&(b, delta)| (b - 20, delta)).collect();
        (
            starts,
            deltas
                .first()
                .map(|&(b, _)| (minute(b), 2))
                .into_iter()
                .collect(),
        )
    } else {
        (Vec::new(), Vec::new())
    };
    let (prune_starts, prune_new_sessions) = if prune.len() == 1 {
        let starts = prune.iter().map(|b| b - 20).collect();
        (starts, prune.iter().map(|&b| minute(b) - 600).collect())
    } else {
        (Vec::new(), Vec::new())
    };
    CounterRequest {
        stream_id: livecount_tests::stream(stream),
        starts,
        new_viewers: new_sessions.clone(),
        new_sessions,
        deltas,
        prune,
        prune_starts,
        prune_new_viewers: prune_new_sessions.clone(),
        prune_new_sessions,
        remove_receipts: Vec::new(),
        receipt: (id > 0).then_some(ReceiptWrite {
            key,
            receipt,
            replaces: None,
        }),
        now,
        expires_at: now + 3 * 86_400,
    }
}

/// Counter writes: buckets added and pruned, a bucket at zero, a repeated receipt refused, a
/// receipt replaced by the redelivery that found it, released, released again (refused), an
/// old one removed; on the longest stream id, an item grown past
/// 1 KB and 4 KB in requests of 60 buckets (and read there), then pruned back: a write that
/// shrinks the item is charged by its size before.
async fn counters(c: &mut Calibration) {
    let table = c.p.config.counters_table.clone();
    let now = c.p.clock.now_seconds();
    let b0 = now - now.rem_euclid(5);
    let build = |request: &CounterRequest| counter_request(&table, request).expect("builds");

    let first = counter("calib", vec![(b0, 1), (b0 + 5, 1)], vec![], 1, now);
    c.send("counter insert", build(&first), Meant::Applied)
        .await;
    let second = counter(
        "calib",
        vec![(b0 + 5, 1), (b0 + 10, 2)],
        vec![b0 - 600],
        2,
        now + 1,
    );
    c.send(
        "counter adds to a bucket, prunes an absent one",
        build(&second),
        Meant::Applied,
    )
    .await;
    c.send("counter request repeated", build(&second), Meant::Refused)
        .await;
    let third = counter("calib", vec![(b0, -1)], vec![b0 + 5], 10, now + 2);
    c.send(
        "counter takes a bucket to zero and prunes one",
        build(&third),
        Meant::Applied,
    )
    .await;
    let prune_only = counter("calib", vec![], vec![b0 + 10], 0, now + 3);
    c.send(
        "counter prunes only, unconditioned",
        build(&prune_only),
        Meant::Applied,
    )
    .await;
    let mut negative = counter("calib", vec![(b0 + 15, -3)], vec![], 2, now + 4);
    if let Some(write) = negative.receipt.as_mut() {
        write.replaces = Some(receipt(2, now + 1).1);
    }
    negative.remove_receipts = vec![receipt(10, now).0];
    c.send(
        "counter adds a negative delta to a new bucket, replaces the receipt it found, removes another",
        build(&negative),
        Meant::Applied,
    )
    .await;
    let (key, held) = receipt(2, now + 4);
    let calib = livecount_tests::stream("calib");
    let release = receipt_release_request(&table, &calib, key, &held).expect("builds");
    c.send("receipt released", release.clone(), Meant::Applied)
        .await;
    c.send("receipt released again", release, Meant::Refused)
        .await;

    let long = "s".repeat(128);
    let mut largest = 0;
    let mut last = None;
    let mut units = Vec::new();
    for round in 0..6_i64 {
        let deltas = (0..60)
            .map(|i| (b0 + 5 * (60 * round + i), (round * 60 + i) * 37 % 1_000 + 1))
            .collect();
        let request = counter(&long, deltas, vec![], 100 + round as u64, now + round);
        let written = c
            .send(
                &format!("counter grows by 60 buckets, round {round}"),
                build(&request),
                Meant::Applied,
            )
            .await;
        largest = written.size_after;
        units.push(written.units);
        last = Some(request);
    }
    assert!(
        units.contains(&2.0),
        "a request costs 2 units once the item passes 1 KB: {units:?}"
    );
    assert!(largest > 4096, "the item passes 4 KB: {largest} bytes");
    // Reads of every item so far, the counter over 4 KB among them.
    c.compare_reads().await;
    let last = last.expect("six rounds");
    c.send(
        "counter request repeated on a large item",
        build(&last),
        Meant::Refused,
    )
    .await;
    let mut shrinking = Vec::new();
    for round in 0..4_i64 {
        let prune = (0..60).map(|i| b0 + 5 * (60 * round + i)).collect();
        let request = counter(&long, vec![], prune, 200 + round as u64, now + 10 + round);
        let written = c
            .send(
                &format!("counter prunes 60 buckets, round {round}"),
                build(&request),
                Meant::Applied,
            )
            .await;
        shrinking.push((written.size_before, written.size_after, written.units));
    }
    assert!(
        shrinking
            .iter()
            .any(|&(_, after, units)| units > after.div_ceil(1024) as f64),
        "a write that shrinks the item past a KB is charged by its size before: {shrinking:?}"
    );
}

/// Figures writes: a stream's first hour and lifetime items, a publication over them, one made
/// over what is no longer there (refused), and half an hour (the most one write adds) of seven-digit minutes.
async fn figures(c: &mut Calibration) {
    let table = c.p.config.counters_table.clone();
    let now = c.p.clock.now_seconds();
    let hour = hour_of(now);
    let expires = now + 3 * 86_400;
    let long = "s".repeat(128);
    let settled = |from: i64, to: i64, viewers: u64| Settled {
        from,
        seconds: (from..=to).map(|t| (t, viewers)).collect(),
        through: to,
        missed: 0,
        // every minute ending in it started sessions
        new_sessions: (from..=to)
            .filter(|t| t.rem_euclid(60) == 59)
            .map(|t| (t - 59, viewers))
            .collect(),
        new_viewers: (from..=to)
            .filter(|t| t.rem_euclid(60) == 59)
            .map(|t| (t - 59, viewers))
            .collect(),
    };
    for stream in ["calib", long.as_str()] {
        let stream_id = livecount_tests::stream(stream);
        let (life0, hour0) = (LifetimeItem::default(), HourItem::empty(stream, hour));
        let first = settled(hour, hour + 30, 5);
        let (life1, hour1) = (life0.with(&first), hour0.with(&first));
        let next = settled(hour + 31, hour + 40, 7);
        let (life2, hour2) = (life1.with(&next), hour1.with(&next));
        let whole = settled(hour + 41, hour + 40 + MAX_PUBLICATION_SECONDS, 1_000_000);
        let hour3 = hour2.with(&whole);
        let steps = [
            (
                "first hour",
                hour_request(&table, &stream_id, &hour0, &hour1, expires),
                Meant::Applied,
            ),
            (
                "first lifetime",
                lifetime_request(&table, &stream_id, &life0, &life1, expires),
                Meant::Applied,
            ),
            (
                "next hour",
                hour_request(&table, &stream_id, &hour1, &hour2, expires),
                Meant::Applied,
            ),
            (
                "next lifetime",
                lifetime_request(&table, &stream_id, &life1, &life2, expires),
                Meant::Applied,
            ),
            (
                "hour over a stale through",
                hour_request(&table, &stream_id, &hour1, &hour2, expires),
                Meant::Refused,
            ),
            (
                "lifetime over none",
                lifetime_request(&table, &stream_id, &life0, &life2, expires),
                Meant::Refused,
            ),
            (
                "half an hour, the most one write adds",
                hour_request(&table, &stream_id, &hour2, &hour3, expires),
                Meant::Applied,
            ),
        ];
        for (label, request, meant) in steps {
            c.send(
                &format!("figures of {}: {label}", &stream[..5]),
                request.expect("builds"),
                meant,
            )
            .await;
        }
    }
}

/// Viewer markers: the first record's, its retry, another record of the same viewer (which keeps
/// the first's `firstRecord` and refreshes the rest), on the longest stream id: one write unit
/// each (the cost docs/design.md states).
async fn viewers(c: &mut Calibration) {
    let table = c.p.config.viewers_table.clone();
    let now = c.p.clock.now_seconds();
    let long = "s".repeat(128);
    for stream in ["calib", long.as_str()] {
        let key = ItemKey::viewer(&livecount_tests::stream(stream), 8, &"u".repeat(256));
        for (label, record, at) in [
            ("first", "record-1", now),
            ("retry", "record-1", now),
            ("another session", "record-2", now + 60),
        ] {
            let request =
                viewer_marker_request(&table, &key, record, at, at + 3 * 86_400).expect("builds");
            let written = c
                .send(&format!("viewer marker: {label}"), request, Meant::Applied)
                .await;
            assert_eq!(written.units, 1.0, "viewer marker: {label}: one write unit");
        }
    }
}

/// Every write livecount makes, against DynamoDB Local and the model side by side: same outcome,
/// same write units, same item, same size; then the same reads at the same cost.
#[tokio::test]
async fn the_model_matches_dynamodb_local_item_for_item_and_unit_for_unit() {
    let mut c = Calibration::new("calibration").await;
    sessions(&mut c).await;
    counters(&mut c).await;
    figures(&mut c).await;
    viewers(&mut c).await;
    c.compare_reads().await;
    c.p.cleanup().await;
}

/// The aggregator asks DynamoDB for the counter as it was before its update (`ALL_OLD`) and
/// works out the counter after it ([`livecount_core::model::CounterItem::after`]): after every
/// kind of counter write, that is the item DynamoDB Local holds.
#[tokio::test]
async fn the_counter_worked_out_after_an_update_is_the_one_dynamodb_holds() {
    let p = Pipeline::new("counter-after").await;
    let now = p.clock.now_seconds();
    let b0 = now - now.rem_euclid(5);
    let mut replaced = counter("after", vec![(b0 + 15, -3)], vec![b0 + 5], 2, now + 3);
    if let Some(write) = replaced.receipt.as_mut() {
        write.replaces = Some(receipt(2, now + 1).1);
    }
    replaced.remove_receipts = vec![receipt(1, now).0];
    let steps = [
        counter("after", vec![(b0, 1), (b0 + 5, 1)], vec![], 1, now),
        counter(
            "after",
            vec![(b0 + 5, 1), (b0 + 10, 2)],
            vec![b0 - 600],
            2,
            now + 1,
        ),
        counter("after", vec![(b0, -1)], vec![b0 + 5], 0, now + 2),
        replaced,
        counter("after", vec![], vec![b0, b0 + 10], 0, now + 4),
    ];
    let stream_id = livecount_tests::stream("after");
    for (i, request) in steps.iter().enumerate() {
        let CounterWrite::Applied { before, after } =
            p.store.update_counter(request).await.expect("update")
        else {
            panic!("step {i}: the update was refused");
        };
        let held = p.store.get_counter(&stream_id).await.expect("read");
        assert_eq!(Some(after), held, "step {i}");
        if i == 0 {
            assert_eq!(before, Default::default(), "a new item has no before");
        }
    }
    p.cleanup().await;
}
