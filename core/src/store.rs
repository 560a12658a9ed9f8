//! The one DynamoDB adapter: every request livecount makes goes through [`Store`]. Items are
//! mapped with `serde_dynamo`; every attribute name and value in an expression goes through a
//! placeholder.

use crate::config::Config;
use crate::histogram::CounterPlan;
use crate::model::{
    CounterItem, ItemKey, SessionState, bucket_attribute, minute_attribute, watermark_attribute,
};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{BuildError, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ReturnValue,
    ReturnValuesOnConditionCheckFailure, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification, TimeToLiveStatus,
};
use serde::Serialize;
use std::collections::HashMap;

/// The TTL attribute of the sessions table.
pub const TTL_ATTRIBUTE: &str = "expDate";

/// Why a DynamoDB call failed. Every variant is worth retrying except [`StoreError::Mapping`],
/// which means an item does not have the shape livecount writes.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("DynamoDB {operation} on table {table} failed")]
    Dynamo {
        operation: &'static str,
        table: String,
        #[source]
        source: Box<aws_sdk_dynamodb::Error>,
    },
    #[error("an item of table {table} does not map to {what}")]
    Mapping {
        what: &'static str,
        table: String,
        #[source]
        source: serde_dynamo::Error,
    },
    #[error("could not build a DynamoDB request")]
    Request(#[from] BuildError),
    #[error("table {table} has no stream enabled")]
    NoStream { table: String },
}

/// What happened to a session write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionWrite {
    /// The row now holds this event.
    Applied,
    /// The row already holds a newer (or the same) event: this one was reordered or duplicated.
    Stale,
}

/// What happened to a counter update.
#[derive(Debug, Clone, PartialEq)]
pub enum CounterWrite {
    /// Applied; the counter as it is now (`ALL_NEW`).
    Applied(CounterItem),
    /// A watermark showed that some of the plan's records were applied before; the counter as it
    /// was (`ALL_OLD`), so the caller can re-plan without them.
    AlreadyApplied(CounterItem),
}

/// DynamoDB access for livecount's two tables.
#[derive(Debug, Clone)]
pub struct Store {
    client: Client,
    sessions_table: String,
    counters_table: String,
}

impl Store {
    pub fn new(client: Client, config: &Config) -> Self {
        Self {
            client,
            sessions_table: config.sessions_table.clone(),
            counters_table: config.counters_table.clone(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn sessions_table(&self) -> &str {
        &self.sessions_table
    }

    pub fn counters_table(&self) -> &str {
        &self.counters_table
    }

    /// Writes a session's newest event under `attribute_not_exists(PK) OR lastTs < :ts OR
    /// (lastTs = :ts AND lastRank < :rank)`; a failed condition means the event is stale.
    pub async fn write_session(
        &self,
        key: &ItemKey,
        state: &SessionState,
    ) -> Result<SessionWrite, StoreError> {
        let table = &self.sessions_table;
        let mut expr = Expression::default();
        let assignments = expr.assign_all(state, table, "session state")?;
        let started = expr.name("startedAt");
        let recv = expr.value(&state.recv_at, table)?;
        let (pk, last_ts, last_rank) =
            (expr.name("PK"), expr.name("lastTs"), expr.name("lastRank"));
        let (ts, rank) = (
            expr.value(&state.last_ts, table)?,
            expr.value(&state.last_rank, table)?,
        );
        let result = self
            .client
            .update_item()
            .table_name(table)
            .set_key(Some(to_item(key, table, "a session key")?))
            .update_expression(format!(
                "SET {assignments}, {started} = if_not_exists({started}, {recv})"
            ))
            .condition_expression(format!(
                "attribute_not_exists({pk}) OR {last_ts} < {ts} OR ({last_ts} = {ts} AND {last_rank} < {rank})"
            ))
            .set_expression_attribute_names(Some(expr.names))
            .set_expression_attribute_values(Some(expr.values))
            .send()
            .await;
        match result {
            Ok(_) => Ok(SessionWrite::Applied),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Ok(SessionWrite::Stale)
            }
            Err(source) => Err(self.dynamo("UpdateItem", table, source)),
        }
    }

    /// Applies one stream's [`CounterPlan`] with a single `UpdateItem`: `ADD` the deltas, `REMOVE`
    /// the pruned buckets, `SET` the watermarks and `updatedAt`, conditioned on each watermark
    /// being below the plan's first record of that shard.
    pub async fn update_counter(&self, plan: &CounterPlan) -> Result<CounterWrite, StoreError> {
        let table = &self.counters_table;
        let mut expr = Expression::default();
        let mut set = vec![format!(
            "{} = {}",
            expr.name("updatedAt"),
            expr.value(&plan.now, table)?
        )];
        let mut conditions = Vec::new();
        for (shard, advance) in &plan.watermarks {
            let mark = expr.name(&watermark_attribute(*shard));
            let first = expr.value(&advance.first.padded(), table)?;
            conditions.push(format!(
                "(attribute_not_exists({mark}) OR {mark} < {first})"
            ));
            set.push(format!(
                "{mark} = {}",
                expr.value(&advance.last.padded(), table)?
            ));
        }
        let mut clauses = vec![format!("SET {}", set.join(", "))];
        let adds = plan
            .deltas
            .iter()
            .map(|(bucket, delta)| {
                Ok(format!(
                    "{} {}",
                    expr.name(&bucket_attribute(*bucket)),
                    expr.value(delta, table)?
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        if !adds.is_empty() {
            clauses.push(format!("ADD {}", adds.join(", ")));
        }
        let removes: Vec<String> = plan
            .prune
            .iter()
            .map(|b| expr.name(&bucket_attribute(*b)))
            .collect();
        if !removes.is_empty() {
            clauses.push(format!("REMOVE {}", removes.join(", ")));
        }
        let mut request = self
            .client
            .update_item()
            .table_name(table)
            .set_key(Some(to_item(
                &ItemKey::live_counter(&plan.stream_id),
                table,
                "a counter key",
            )?))
            .update_expression(clauses.join(" "))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if !conditions.is_empty() {
            request = request.condition_expression(conditions.join(" AND "));
        }
        let result = request
            .set_expression_attribute_names(Some(expr.names))
            .set_expression_attribute_values(Some(expr.values))
            .send()
            .await;
        match result {
            Ok(output) => Ok(CounterWrite::Applied(self.counter_from(output.attributes)?)),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                let old = match e.into_err() {
                    aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(c) => c.item,
                    _ => None,
                };
                Ok(CounterWrite::AlreadyApplied(self.counter_from(old)?))
            }
            Err(source) => Err(self.dynamo("UpdateItem", table, source)),
        }
    }

    /// Records that `viewers` watched at `now` (epoch seconds): raises the minute's history entry
    /// `h{minute}` to it, and `peak`/`peakAt` too when `new_peak`. One conditional `UpdateItem`;
    /// returns whether it changed anything (a concurrent writer may have recorded more).
    pub async fn record_viewers(
        &self,
        stream_id: &str,
        viewers: u64,
        now: i64,
        new_peak: bool,
    ) -> Result<bool, StoreError> {
        let table = &self.counters_table;
        let mut expr = Expression::default();
        let minute = expr.name(&minute_attribute(crate::histogram::minute_of(now)));
        let v = expr.value(&viewers, table)?;
        let mut set = vec![format!("{minute} = {v}")];
        if new_peak {
            let (peak, peak_at) = (expr.name("peak"), expr.name("peakAt"));
            set.push(format!(
                "{peak} = {v}, {peak_at} = {}",
                expr.value(&now, table)?
            ));
        }
        let result = self
            .client
            .update_item()
            .table_name(table)
            .set_key(Some(to_item(
                &ItemKey::live_counter(stream_id),
                table,
                "a counter key",
            )?))
            .update_expression(format!("SET {}", set.join(", ")))
            .condition_expression(format!("attribute_not_exists({minute}) OR {minute} < {v}"))
            .set_expression_attribute_names(Some(expr.names))
            .set_expression_attribute_values(Some(expr.values))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Ok(false)
            }
            Err(source) => Err(self.dynamo("UpdateItem", table, source)),
        }
    }

    /// The one read of the read path: `GetItem(counters, {PK: streamId, SK: "live"})`.
    pub async fn get_counter(&self, stream_id: &str) -> Result<Option<CounterItem>, StoreError> {
        let table = &self.counters_table;
        let output = self
            .client
            .get_item()
            .table_name(table)
            .set_key(Some(to_item(
                &ItemKey::live_counter(stream_id),
                table,
                "a counter key",
            )?))
            .send()
            .await
            .map_err(|source| self.dynamo("GetItem", table, source))?;
        output
            .item
            .map(|item| self.counter_from(Some(item)))
            .transpose()
    }

    /// Every live counter (a `Scan`: for listings and tools, not for dashboards).
    pub async fn list_counters(&self) -> Result<Vec<CounterItem>, StoreError> {
        let table = &self.counters_table;
        let mut counters = Vec::new();
        let mut start = None;
        loop {
            let mut expr = Expression::default();
            let sk = expr.name("SK");
            let live = expr.value(&crate::model::LIVE_COUNTER_SK, table)?;
            let page = self
                .client
                .scan()
                .table_name(table)
                .filter_expression(format!("{sk} = {live}"))
                .set_expression_attribute_names(Some(expr.names))
                .set_expression_attribute_values(Some(expr.values))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|source| self.dynamo("Scan", table, source))?;
            for item in page.items.unwrap_or_default() {
                counters.push(self.counter_from(Some(item))?);
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(counters);
            }
        }
    }

    /// Creates a table with string `PK`/`SK` keys and on-demand billing, with a
    /// `NEW_AND_OLD_IMAGES` stream when `with_stream`. An existing table is left as it is.
    pub async fn create_key_table(&self, table: &str, with_stream: bool) -> Result<(), StoreError> {
        let mut request = self
            .client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest);
        for (name, key_type) in [("PK", KeyType::Hash), ("SK", KeyType::Range)] {
            request = request
                .attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name(name)
                        .attribute_type(ScalarAttributeType::S)
                        .build()?,
                )
                .key_schema(
                    KeySchemaElement::builder()
                        .attribute_name(name)
                        .key_type(key_type)
                        .build()?,
                );
        }
        if with_stream {
            request = request.stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewAndOldImages)
                    .build()?,
            );
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().is_resource_in_use_exception() => Ok(()),
            Err(source) => Err(self.dynamo("CreateTable", table, source)),
        }
    }

    /// Creates both tables as the infrastructure defines them: string `PK`/`SK` keys, on-demand
    /// billing; sessions with a `NEW_AND_OLD_IMAGES` stream and TTL on `expDate`.
    pub async fn create_tables(&self) -> Result<(), StoreError> {
        self.create_key_table(&self.sessions_table, true).await?;
        self.create_key_table(&self.counters_table, false).await?;
        let ttl = self
            .client
            .describe_time_to_live()
            .table_name(&self.sessions_table)
            .send()
            .await
            .map_err(|source| self.dynamo("DescribeTimeToLive", &self.sessions_table, source))?;
        let enabled = ttl.time_to_live_description.is_some_and(|d| {
            matches!(
                d.time_to_live_status,
                Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
            )
        });
        if !enabled {
            self.client
                .update_time_to_live()
                .table_name(&self.sessions_table)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .enabled(true)
                        .attribute_name(TTL_ATTRIBUTE)
                        .build()?,
                )
                .send()
                .await
                .map_err(|source| self.dynamo("UpdateTimeToLive", &self.sessions_table, source))?;
        }
        Ok(())
    }

    /// Deletes both tables (tests and tools).
    pub async fn delete_tables(&self) -> Result<(), StoreError> {
        for table in [&self.sessions_table, &self.counters_table] {
            self.client
                .delete_table()
                .table_name(table)
                .send()
                .await
                .map_err(|source| self.dynamo("DeleteTable", table, source))?;
        }
        Ok(())
    }

    /// The ARN of the sessions table's stream, which the aggregator consumes.
    pub async fn sessions_stream_arn(&self) -> Result<String, StoreError> {
        let table = &self.sessions_table;
        let output = self
            .client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|source| self.dynamo("DescribeTable", table, source))?;
        output
            .table
            .and_then(|t| t.latest_stream_arn)
            .ok_or_else(|| StoreError::NoStream {
                table: table.clone(),
            })
    }

    fn counter_from(
        &self,
        item: Option<HashMap<String, AttributeValue>>,
    ) -> Result<CounterItem, StoreError> {
        let Some(item) = item else {
            return Ok(CounterItem::default());
        };
        serde_dynamo::from_item(item).map_err(|source| StoreError::Mapping {
            what: "a counter",
            table: self.counters_table.clone(),
            source,
        })
    }

    fn dynamo<E, R>(
        &self,
        operation: &'static str,
        table: &str,
        source: SdkError<E, R>,
    ) -> StoreError
    where
        aws_sdk_dynamodb::Error: From<SdkError<E, R>>,
    {
        StoreError::Dynamo {
            operation,
            table: table.to_owned(),
            source: Box::new(source.into()),
        }
    }
}

fn to_item<T: Serialize>(
    value: &T,
    table: &str,
    what: &'static str,
) -> Result<HashMap<String, AttributeValue>, StoreError> {
    serde_dynamo::to_item(value).map_err(|source| StoreError::Mapping {
        what,
        table: table.to_owned(),
        source,
    })
}

/// Placeholders for an expression: `#n0`, `#n1`… for names and `:v0`, `:v1`… for values, so
/// no attribute name or value is ever spliced into expression text.
#[derive(Default)]
struct Expression {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expression {
    fn name(&mut self, attribute: &str) -> String {
        if let Some((placeholder, _)) = self.names.iter().find(|(_, a)| *a == attribute) {
            return placeholder.clone();
        }
        let placeholder = format!("#n{}", self.names.len());
        self.names.insert(placeholder.clone(), attribute.to_owned());
        placeholder
    }

    fn value<T: Serialize + ?Sized>(
        &mut self,
        value: &T,
        table: &str,
    ) -> Result<String, StoreError> {
        let placeholder = format!(":v{}", self.values.len());
        let value =
            serde_dynamo::to_attribute_value(value).map_err(|source| StoreError::Mapping {
                what: "an expression value",
                table: table.to_owned(),
                source,
            })?;
        self.values.insert(placeholder.clone(), value);
        Ok(placeholder)
    }

    /// `#a = :a, #b = :b, …` for every attribute `value` serializes to.
    fn assign_all<T: Serialize>(
        &mut self,
        value: &T,
        table: &str,
        what: &'static str,
    ) -> Result<String, StoreError> {
        let item = to_item(value, table, what)?;
        let mut attributes: Vec<(String, AttributeValue)> = item.into_iter().collect();
        attributes.sort_by(|a, b| a.0.cmp(&b.0));
        let mut assignments = Vec::with_capacity(attributes.len());
        for (attribute, value) in attributes {
            let name = self.name(&attribute);
            let placeholder = format!(":v{}", self.values.len());
            self.values.insert(placeholder.clone(), value);
            assignments.push(format!("{name} = {placeholder}"));
        }
        Ok(assignments.join(", "))
    }
}
