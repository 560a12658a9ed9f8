//! Read cost: one `GetItem` of the counter against `Query` + filter over a stream's session rows,
//! for growing audiences with as many expired rows that TTL has not deleted yet.

use crate::designs::{Error, query_viewers};
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, ReturnConsumedCapacity, WriteRequest};
use livecount_core::ids::{SessionId, StreamId};
use livecount_core::model::{ItemKey, SessionRow, SessionState};
use livecount_core::{Config, Store};
use std::collections::HashMap;
use std::time::Instant;

pub struct ReadCost {
    pub sessions: u64,
    pub get_p50_ms: f64,
    pub get_p99_ms: f64,
    pub get_rcu: f64,
    pub get_bytes: u64,
    pub query_p50_ms: f64,
    pub query_p99_ms: f64,
    pub query_items: u64,
    pub query_pages: u64,
    pub query_rcu: f64,
    pub query_bytes: u64,
}

/// DynamoDB's item size: attribute names plus values (numbers about half a byte per digit).
pub fn item_bytes(item: &HashMap<String, AttributeValue>) -> u64 {
    item.iter()
        .map(|(name, value)| {
            name.len() as u64
                + match value {
                    AttributeValue::S(s) => s.len() as u64,
                    AttributeValue::N(n) => n.trim_start_matches('-').len().div_ceil(2) as u64 + 1,
                    AttributeValue::Bool(_) => 1,
                    _ => 8,
                }
        })
        .sum()
}

/// Eventually consistent read units for `bytes` read by one request.
pub fn read_units(bytes: u64) -> f64 {
    bytes.div_ceil(4096).max(1) as f64 * 0.5
}

pub fn percentile(samples: &mut [f64], p: f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples.get(index).copied().unwrap_or(0.0)
}

pub async fn run(client: &aws_sdk_dynamodb::Client, sessions: u64) -> Result<ReadCost, Error> {
    let suffix = format!("{}-{}", std::process::id(), fastrand::u32(..));
    let config = Config {
        sessions_table: format!("bench-read-sessions-{sessions}-{suffix}"),
        counters_table: format!("bench-read-counters-{sessions}-{suffix}"),
        ..Config::default()
    };
    // No TTL and no stream on these tables: the expired rows stand for the ones TTL has not
    // deleted yet, and DynamoDB Local's TTL sweeper (which scans the table every 10 s) would
    // otherwise slow every request on a table of 100,000 rows.
    let store = Store::new(client.clone(), &config);
    livecount_core::admin::TableAdmin::of(&store)
        .create_key_table(&config.sessions_table, false)
        .await?;
    livecount_core::admin::TableAdmin::of(&store)
        .create_key_table(&config.counters_table, false)
        .await?;
    let now = chrono::Utc::now().timestamp();
    let stream = StreamId::parse("big-event")?;

    // N watching sessions and N expired rows TTL has not deleted yet.
    let mut row_bytes = 0;
    let rows: Vec<HashMap<String, AttributeValue>> = (0..2 * sessions)
        .map(|i| -> Result<_, Error> {
            let session = SessionId::parse(&format!("7f1c2a9e-1d2b-4c55-9f0e-{i:012}"))?;
            let expired = i >= sessions;
            let shard = livecount_core::ids::session_shard(&session, config.session_shards);
            let row = SessionRow {
                key: ItemKey::session(&stream, shard, &session),
                state: SessionState {
                    stream_id: stream.to_string(),
                    exp_date: if expired { now - 600 } else { now + 3600 },
                    last_ts: now * 1000,
                    last_seq: None,
                    last_rank: 1,
                    last_type: "heartbeat".to_owned(),
                    recv_at: now * 1000,
                    watching: true,
                    position: Some(1234.5),
                    user_id: None,
                    dimensions: livecount_core::breakdown::Dimensions {
                        device: Some("web".to_owned()),
                        ..Default::default()
                    },
                },
                started_at: now * 1000 - 60_000,
            };
            Ok(serde_dynamo::to_item(&row).unwrap_or_default())
        })
        .collect::<Result<_, _>>()?;
    if let Some(first) = rows.first() {
        row_bytes = item_bytes(first);
    }
    for chunk in rows.chunks(25) {
        let requests: Vec<WriteRequest> = chunk
            .iter()
            .filter_map(|item| {
                PutRequest::builder()
                    .set_item(Some(item.clone()))
                    .build()
                    .ok()
            })
            .map(|put| WriteRequest::builder().put_request(put).build())
            .collect();
        let mut pending = Some(HashMap::from([(config.sessions_table.clone(), requests)]));
        while let Some(items) = pending.filter(|p| p.values().any(|v| !v.is_empty())) {
            let output = client
                .batch_write_item()
                .set_request_items(Some(items))
                .send()
                .await?;
            pending = output.unprocessed_items;
        }
    }

    // A full live counter: the buckets of a window and as many receipts outstanding as the
    // 1 KB bound allows (the figures live in their own items).
    let mut counter = serde_json::json!({"PK": stream, "SK": "live", "updatedAt": now});
    for (i, bucket) in (0..4).map(|i| (i, now - now % 5 + 5 * (i + 1))) {
        counter[format!("b{bucket}")] =
            serde_json::json!(sessions / 4 + u64::from(i == 0) * (sessions % 4));
    }
    for i in 0..livecount_core::histogram::RECEIPTS_IN_ONE_KB {
        let receipt = livecount_core::histogram::Receipt {
            at: now,
            records: 100,
            fingerprint: livecount_core::histogram::Fingerprint(u64::MAX - i as u64),
        };
        let key = livecount_core::histogram::ReceiptKey::of_first_record(&format!("record-{i}"));
        counter[key.attribute()] = serde_json::json!(receipt.to_text());
    }
    let counter: HashMap<String, AttributeValue> = serde_dynamo::to_item(counter)?;
    let counter_bytes = item_bytes(&counter);
    client
        .put_item()
        .table_name(&config.counters_table)
        .set_item(Some(counter))
        .send()
        .await?;

    let mut get_ms = Vec::new();
    let mut get_rcu = 0.0;
    for _ in 0..200 {
        let start = Instant::now();
        let output = client
            .get_item()
            .table_name(&config.counters_table)
            .key("PK", AttributeValue::S(stream.to_string()))
            .key("SK", AttributeValue::S("live".to_owned()))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await?;
        get_ms.push(start.elapsed().as_secs_f64() * 1000.0);
        get_rcu = output
            .consumed_capacity
            .and_then(|c| c.capacity_units)
            .unwrap_or(read_units(counter_bytes));
    }
    let written = Instant::now();
    let repeats = if sessions >= 10_000 { 5 } else { 20 };
    let mut query_ms = Vec::new();
    let mut cost = Default::default();
    for _ in 0..repeats {
        let start = Instant::now();
        cost = query_viewers(
            client,
            &config.sessions_table,
            &stream,
            config.session_shards,
            now,
        )
        .await?;
        query_ms.push(start.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(
            cost.viewers, sessions,
            "the Query read counts the watching sessions"
        );
    }
    eprintln!(
        "bench:   {sessions} sessions: {repeats} Query reads in {:.1} s",
        written.elapsed().as_secs_f64()
    );
    let query_bytes = cost.items_read * row_bytes;
    let query_rcu = if cost.capacity > 0.0 {
        cost.capacity
    } else {
        read_units(query_bytes)
    };
    let _ = livecount_core::admin::TableAdmin::of(&store)
        .delete_tables()
        .await;
    Ok(ReadCost {
        sessions,
        get_p50_ms: percentile(&mut get_ms, 0.5),
        get_p99_ms: percentile(&mut get_ms, 0.99),
        get_rcu,
        get_bytes: counter_bytes,
        query_p50_ms: percentile(&mut query_ms, 0.5),
        query_p99_ms: percentile(&mut query_ms, 0.99),
        query_items: cost.items_read,
        query_pages: cost.pages,
        query_rcu,
        query_bytes,
    })
}
