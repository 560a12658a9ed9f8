//! The designs livecount replaces, implemented faithfully and minimally, for comparison only.

use aws_lambda_events::event::dynamodb::Event;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity, Select};
use livecount_core::PlayerEvent;
use std::collections::{BTreeMap, HashMap};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

fn s(text: impl Into<String>) -> AttributeValue {
    AttributeValue::S(text.into())
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// (b) "30-second buckets with a conditional write on the session's last play time": a watching
/// event counts its session once into the 30 s bucket it was received in, if the session's
/// stored last play bucket is older; a dashboard reads the current bucket.
pub struct ThirtySecondBuckets {
    pub client: Client,
    pub table: String,
}

impl ThirtySecondBuckets {
    pub async fn apply(&self, event: &PlayerEvent, recv_ms: i64) -> Result<u32, Error> {
        if !event.kind.is_watching() {
            return Ok(0); // the design had no way to count a leave
        }
        let bucket = (recv_ms / 1000) / 30 * 30;
        let claimed = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("PK", s(format!("{}#session", event.stream_id)))
            .key("SK", s(event.session_id.as_str()))
            .update_expression("SET #p = :b")
            .condition_expression("attribute_not_exists(#p) OR #p < :b")
            .expression_attribute_names("#p", "lastPlay")
            .expression_attribute_values(":b", n(bucket))
            .send()
            .await;
        match claimed {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                return Ok(1);
            }
            Err(e) => return Err(e.into()),
        }
        self.client
            .update_item()
            .table_name(&self.table)
            .key("PK", s(event.stream_id.as_str()))
            .key("SK", s(format!("b{bucket}")))
            .update_expression("ADD #c :one")
            .expression_attribute_names("#c", "count")
            .expression_attribute_values(":one", n(1))
            .send()
            .await?;
        Ok(2)
    }

    pub async fn viewers(&self, stream: &str, now: i64) -> Result<u64, Error> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("PK", s(stream))
            .key("SK", s(format!("b{}", now / 30 * 30)))
            .send()
            .await?
            .item;
        Ok(item
            .and_then(|i| {
                i.get("count")
                    .and_then(|c| c.as_n().ok())
                    .and_then(|c| c.parse().ok())
            })
            .unwrap_or(0))
    }
}

/// (d) "+1 on INSERT, −1 on TTL REMOVE": a counter per stream moved by stream records.
pub struct NaiveCounter {
    pub client: Client,
    pub table: String,
}

impl NaiveCounter {
    pub async fn apply(&self, batch: &Event) -> Result<(), Error> {
        let mut deltas: BTreeMap<String, i64> = BTreeMap::new();
        for record in &batch.records {
            let stream = match record.change.keys.get("PK") {
                Some(serde_dynamo::AttributeValue::S(pk)) => {
                    livecount_core::ids::SessionPartition::parse(pk)
                        .map_or(pk.clone(), |p| p.stream_id.into())
                }
                _ => continue,
            };
            let delta = match record.event_name.as_str() {
                "INSERT" => 1,
                "REMOVE" => -1,
                _ => 0,
            };
            *deltas.entry(stream).or_default() += delta;
        }
        for (stream, delta) in deltas.into_iter().filter(|(_, d)| *d != 0) {
            self.client
                .update_item()
                .table_name(&self.table)
                .key("PK", s(stream))
                .key("SK", s("naive"))
                .update_expression("ADD #c :d")
                .expression_attribute_names("#c", "count")
                .expression_attribute_values(":d", n(delta))
                .send()
                .await?;
        }
        Ok(())
    }

    pub async fn viewers(&self, stream: &str) -> Result<u64, Error> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("PK", s(stream))
            .key("SK", s("naive"))
            .send()
            .await?
            .item;
        Ok(item
            .and_then(|i| {
                i.get("count")
                    .and_then(|c| c.as_n().ok())
                    .and_then(|c| c.parse::<i64>().ok())
            })
            .unwrap_or(0)
            .max(0)
            .unsigned_abs())
    }
}

/// What one `Query` + filter read cost.
#[derive(Debug, Default, Clone, Copy)]
pub struct QueryCost {
    pub viewers: u64,
    pub items_read: u64,
    pub pages: u64,
    pub capacity: f64,
}

/// (c) "`Query` with `FilterExpression expDate >= now`" over every sessions shard of a stream.
pub async fn query_viewers(
    client: &Client,
    sessions: &str,
    stream: &livecount_core::ids::StreamId,
    shards: u32,
    now: i64,
) -> Result<QueryCost, Error> {
    let mut cost = QueryCost::default();
    for shard in 0..shards {
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = client
                .query()
                .table_name(sessions)
                .key_condition_expression("#pk = :pk")
                .filter_expression("#e >= :now AND #w = :yes")
                .expression_attribute_names("#pk", "PK")
                .expression_attribute_names("#e", "expDate")
                .expression_attribute_names("#w", "watching")
                .expression_attribute_values(
                    ":pk",
                    s(livecount_core::ids::SessionPartition::new(stream, shard).to_string()),
                )
                .expression_attribute_values(":now", n(now))
                .expression_attribute_values(":yes", AttributeValue::Bool(true))
                .select(Select::Count)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .set_exclusive_start_key(start)
                .send()
                .await?;
            cost.viewers += page.count.max(0).unsigned_abs() as u64;
            cost.items_read += page.scanned_count.max(0).unsigned_abs() as u64;
            cost.pages += 1;
            cost.capacity += page
                .consumed_capacity
                .and_then(|c| c.capacity_units)
                .unwrap_or(0.0);
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
    }
    Ok(cost)
}
