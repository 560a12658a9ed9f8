//! The one DynamoDB adapter: every request livecount makes goes through [`Store`]. Items are
//! mapped with `serde_dynamo`; every attribute name and value in an expression goes through a
//! placeholder. Every `UpdateItem` goes through the [`UpdateItems`] port: DynamoDB itself (the
//! SDK's [`Client`]) in production, a model of it in the scale simulation (`livecount-sim`).

use crate::config::Config;
use crate::histogram::{CounterRequest, Receipt, ReceiptKey};
use crate::ids::StreamId;
use crate::model::{
    CounterItem, HOUR_SK_PREFIX, HourItem, ItemKey, LIFETIME_SK, LIVE_COUNTER_SK, LifetimeItem,
    SessionState,
};
use crate::requests::{
    Item, UpdateRequest, VIEWER_FIRST_RECORD, counter_request, hour_request, lifetime_request,
    receipt_release_request, session_write_request, to_item, viewer_marker_request,
};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{BuildError, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// The most streams one page of the stream list holds.
pub const MAX_LIST_PAGE: usize = 100;

/// One page of the stream list ([`Store::list_counters_page`]).
#[derive(Debug, Clone, Default)]
pub struct CounterPage {
    pub counters: Vec<(CounterItem, Option<LifetimeItem>)>,
    /// Where the next page starts (`after`), if there may be more.
    pub next: Option<StreamId>,
}

/// The TTL attribute of the sessions table.
pub const TTL_ATTRIBUTE: &str = "expDate";

/// Why a DynamoDB call failed. [`StoreError::is_retryable`] tells a transient failure
/// (throttling, 5xx, the network: worth retrying) from one that will fail the same way again
/// (a request DynamoDB rejects as invalid, an item that does not map).
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
    #[error(transparent)]
    Build(#[from] crate::requests::RequestError),
    #[error("table {table} has no stream enabled")]
    NoStream { table: String },
    #[error(
        "a counter's receipt kept changing on table {table} (deliveries of the same records at once)"
    )]
    Contended { table: String },
}

impl StoreError {
    /// Whether the same call may succeed later. Invalid requests (`ValidationException`,
    /// `SerializationException`), unmappable items, unbuildable requests and a missing stream
    /// will not: retrying them only delays the rest of the batch.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Dynamo { source, .. } => !matches!(
                source.code(),
                Some("ValidationException" | "SerializationException")
            ),
            Self::Contended { .. } => true,
            Self::Mapping { .. } | Self::Request(_) | Self::Build(_) | Self::NoStream { .. } => {
                false
            }
        }
    }
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
    /// Applied: the counter just before the update (`ALL_OLD`) and as the update left it
    /// ([`CounterItem::after`]).
    Applied {
        before: CounterItem,
        after: CounterItem,
    },
    /// The receipt's name does not hold what the request expected (nothing, or the receipt a
    /// redelivery found): records that begin with the same record were applied before. The
    /// counter as it is (`ALL_OLD`), with the receipt that is there.
    ReceiptHeld(CounterItem),
}

/// DynamoDB access for livecount's three tables, as the functions use it: session writes, counter
/// and figures updates, viewer markers, the reads of the read path. Table administration is [`crate::admin::TableAdmin`]'s.
#[derive(Debug, Clone)]
pub struct Store {
    client: Client,
    updates: Arc<dyn UpdateItems>,
    sessions_table: String,
    counters_table: String,
    viewers_table: String,
}

/// What an `UpdateItem` returned: `Ok(item after)` when it applied, `Err(item before)` when its
/// condition failed.
pub type UpdateOutcome = Result<Option<Item>, Option<Item>>;

/// What an [`UpdateItems`] answers, in time: the outcome, or the error of the last attempt.
pub type UpdateFuture<'a> = BoxFuture<'a, Result<UpdateOutcome, Box<aws_sdk_dynamodb::Error>>>;

/// The port every `UpdateItem` of a [`Store`] goes through: where a request is applied, and how
/// DynamoDB answers it.
///
/// Production uses the SDK's [`Client`] (its implementation below sends the request to DynamoDB,
/// with the SDK's retries); the scale simulation (`livecount-sim`'s `Aws`) applies it to a model
/// of the tables that evaluates its expressions and throttles as DynamoDB does. Either one is
/// given exactly the request the store built, so the handlers cannot tell them apart.
pub trait UpdateItems: Send + Sync + fmt::Debug {
    /// Applies `request` (after any retries): `Ok(Ok(attributes))` when it applied, the
    /// attributes `returns` asks for; `Ok(Err(old item))` when its condition failed (the item as
    /// it was, `ALL_OLD`); `Err` with the error of the last attempt otherwise.
    fn update(&self, request: UpdateRequest, returns: ReturnValue) -> UpdateFuture<'_>;
}

/// DynamoDB itself: one `UpdateItem` call per request, retried as the client's configuration
/// says.
impl UpdateItems for Client {
    fn update(&self, request: UpdateRequest, returns: ReturnValue) -> UpdateFuture<'_> {
        Box::pin(async move {
            let result = self
                .update_item()
                .table_name(request.table)
                .set_key(Some(request.key))
                .update_expression(request.update)
                .set_condition_expression(request.condition)
                .set_expression_attribute_names(Some(request.names))
                .set_expression_attribute_values(Some(request.values))
                .return_values(returns)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            match result {
                Ok(output) => Ok(Ok(output.attributes)),
                Err(SdkError::ServiceError(e))
                    if e.err().is_conditional_check_failed_exception() =>
                {
                    Ok(Err(match e.into_err() {
                        UpdateItemError::ConditionalCheckFailedException(c) => c.item,
                        _ => None,
                    }))
                }
                Err(source) => Err(Box::new(source.into())),
            }
        })
    }
}

impl Store {
    /// A store whose requests all go to DynamoDB through `client`.
    pub fn new(client: Client, config: &Config) -> Self {
        let updates = Arc::new(client.clone());
        Self::with_updates(client, updates, config)
    }

    /// A store whose `UpdateItem`s go to `updates` (the simulation's model of DynamoDB), and
    /// whose reads go through `client`.
    pub fn with_updates(client: Client, updates: Arc<dyn UpdateItems>, config: &Config) -> Self {
        Self {
            client,
            updates,
            sessions_table: config.sessions_table.clone(),
            counters_table: config.counters_table.clone(),
            viewers_table: config.viewers_table.clone(),
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

    pub fn viewers_table(&self) -> &str {
        &self.viewers_table
    }

    /// The three tables: sessions, counters, viewers.
    pub fn tables(&self) -> [&str; 3] {
        [
            &self.sessions_table,
            &self.counters_table,
            &self.viewers_table,
        ]
    }

    /// Writes a session's newest event under `attribute_not_exists(PK) OR lastTs < :ts OR
    /// (lastTs = :ts AND lastRank < :rank)`; a failed condition means the event is stale.
    pub async fn write_session(
        &self,
        key: &ItemKey,
        state: &SessionState,
    ) -> Result<SessionWrite, StoreError> {
        let request = session_write_request(&self.sessions_table, key, state)?;
        match self.send(request, ReturnValue::None).await? {
            Ok(_) => Ok(SessionWrite::Applied),
            Err(_) => Ok(SessionWrite::Stale),
        }
    }

    /// Sends one [`CounterRequest`] (see [`counter_request`]): applied unless the receipt's
    /// name holds something other than the request expects.
    pub async fn update_counter(
        &self,
        request: &CounterRequest,
    ) -> Result<CounterWrite, StoreError> {
        let table = &self.counters_table;
        match self
            .send(counter_request(table, request)?, ReturnValue::AllOld)
            .await?
        {
            Ok(old) => {
                let before: CounterItem = self.item_from(old, "a counter")?;
                let after = before.after(request);
                Ok(CounterWrite::Applied { before, after })
            }
            Err(old) => Ok(CounterWrite::ReceiptHeld(self.item_from(old, "a counter")?)),
        }
    }

    /// Removes a receipt whose batch succeeded (see [`receipt_release_request`]). Returns
    /// whether it was still there to remove.
    pub async fn release_receipt(
        &self,
        stream_id: &StreamId,
        key: ReceiptKey,
        receipt: &Receipt,
    ) -> Result<bool, StoreError> {
        let request = receipt_release_request(&self.counters_table, stream_id, key, receipt)?;
        Ok(self.send(request, ReturnValue::None).await?.is_ok())
    }

    /// Marks the viewer `user_id` as seen by the stream record `record_id` of `stream_id` (see
    /// [`viewer_marker_request`]): whether this record is the one that first saw the viewer, so
    /// it counts among the stream's unique viewers. `shards` spreads a stream's markers over as
    /// many keys as its sessions.
    pub async fn mark_viewer(
        &self,
        stream_id: &StreamId,
        shards: u32,
        user_id: &str,
        record_id: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let table = &self.viewers_table;
        let key = ItemKey::viewer(stream_id, shards, user_id);
        let request = viewer_marker_request(table, &key, record_id, now, expires_at)?;
        let marker = match self.send(request, ReturnValue::AllNew).await? {
            Ok(item) | Err(item) => item.unwrap_or_default(),
        };
        Ok(matches!(
            marker.get(VIEWER_FIRST_RECORD),
            Some(AttributeValue::S(first)) if first == record_id
        ))
    }

    /// Publishes a stream's lifetime figures `next` over `known` (see [`lifetime_request`]):
    /// `Ok(next)` when it applied; `Err(the item as it is)` when another publication had
    /// changed its `through`.
    pub async fn publish_lifetime(
        &self,
        stream_id: &StreamId,
        known: &LifetimeItem,
        next: &LifetimeItem,
        expires_at: i64,
    ) -> Result<Result<(), LifetimeItem>, StoreError> {
        let request = lifetime_request(&self.counters_table, stream_id, known, next, expires_at)?;
        match self.send(request, ReturnValue::None).await? {
            Ok(_) => Ok(Ok(())),
            Err(old) => Ok(Err(self.item_from(old, "a lifetime item")?)),
        }
    }

    /// Publishes the minutes of one hour `next` over `known` (see [`hour_request`]), as
    /// [`Store::publish_lifetime`] does.
    pub async fn publish_hour(
        &self,
        stream_id: &StreamId,
        known: &HourItem,
        next: &HourItem,
        expires_at: i64,
    ) -> Result<Result<(), HourItem>, StoreError> {
        let request = hour_request(&self.counters_table, stream_id, known, next, expires_at)?;
        match self.send(request, ReturnValue::None).await? {
            Ok(_) => Ok(Ok(())),
            Err(None) => Ok(Err(HourItem::empty(stream_id.as_str(), next.hour))),
            Err(old) => Ok(Err(self.item_from(old, "an hour item")?)),
        }
    }

    /// The one read of the read path: `GetItem(counters, {PK: streamId, SK: "live"})`.
    pub async fn get_counter(
        &self,
        stream_id: &StreamId,
    ) -> Result<Option<CounterItem>, StoreError> {
        self.get(&ItemKey::live_counter(stream_id), "a counter")
            .await
    }

    /// A stream's lifetime figures: `GetItem(counters, {PK: streamId, SK: "lifetime"})`.
    pub async fn get_lifetime(
        &self,
        stream_id: &StreamId,
    ) -> Result<Option<LifetimeItem>, StoreError> {
        self.get(&ItemKey::lifetime(stream_id), "a lifetime item")
            .await
    }

    /// The hour items of a stream's hours `from ..= to` (epoch seconds of their starts), oldest
    /// first: one `Query` on the stream's key with `SK BETWEEN "m{from}" AND "m{to}"` (hours have
    /// ten-digit epochs until 2286, so the strings sort as the numbers), every page read.
    pub async fn get_hours(
        &self,
        stream_id: &StreamId,
        from: i64,
        to: i64,
    ) -> Result<Vec<HourItem>, StoreError> {
        let table = &self.counters_table;
        let mut hours = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(table)
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :to")
                .expression_attribute_names("#pk", "PK")
                .expression_attribute_names("#sk", "SK")
                .expression_attribute_values(":pk", AttributeValue::S(stream_id.to_string()))
                .expression_attribute_values(
                    ":from",
                    AttributeValue::S(format!("{HOUR_SK_PREFIX}{from}")),
                )
                .expression_attribute_values(
                    ":to",
                    AttributeValue::S(format!("{HOUR_SK_PREFIX}{to}")),
                )
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|source| self.dynamo("Query", table, source))?;
            for item in page.items.unwrap_or_default() {
                hours.push(self.item_from::<HourItem>(Some(item), "an hour item")?);
            }
            match page.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(hours),
            }
        }
    }

    async fn get<T: serde::de::DeserializeOwned + Default>(
        &self,
        key: &ItemKey,
        what: &'static str,
    ) -> Result<Option<T>, StoreError> {
        let table = &self.counters_table;
        let output = self
            .client
            .get_item()
            .table_name(table)
            .set_key(Some(to_item(key, table, "a counter key")?))
            .send()
            .await
            .map_err(|source| self.dynamo("GetItem", table, source))?;
        output
            .item
            .map(|item| self.item_from(Some(item), what))
            .transpose()
    }

    /// Sends an [`UpdateRequest`] through the store's [`UpdateItems`]: `Ok(Ok(attributes))` when
    /// it applied (as `returns` asks), `Ok(Err(old item))` when its condition failed.
    pub async fn send(
        &self,
        request: UpdateRequest,
        returns: ReturnValue,
    ) -> Result<UpdateOutcome, StoreError> {
        let table = request.table.clone();
        self.updates
            .update(request, returns)
            .await
            .map_err(|source| StoreError::Dynamo {
                operation: "UpdateItem",
                table,
                source,
            })
    }

    /// Every stream's live counter with its lifetime item, if any (a `Scan` of every page: for
    /// tools, not for dashboards).
    pub async fn list_counters(
        &self,
    ) -> Result<Vec<(CounterItem, Option<LifetimeItem>)>, StoreError> {
        let mut all = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .list_counters_page(MAX_LIST_PAGE, after.as_ref())
                .await?;
            all.extend(page.counters);
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(all),
            }
        }
    }

    /// Up to `limit` streams' live counters (with their lifetime items), in the table's scan
    /// order, after the stream `after` (the previous page's `next`): one `Scan` request of at
    /// most `2 x limit + 2` items at a time (a stream's hour items and its breakdowns' value
    /// streams are read too, and skipped: a page costs more where streams have long histories
    /// or are broken down).
    pub async fn list_counters_page(
        &self,
        limit: usize,
        after: Option<&StreamId>,
    ) -> Result<CounterPage, StoreError> {
        let table = &self.counters_table;
        let limit = limit.clamp(1, MAX_LIST_PAGE);
        let mut counters: Vec<CounterItem> = Vec::new();
        let mut lifetimes: BTreeMap<String, LifetimeItem> = BTreeMap::new();
        // Start after the stream's live item (its lifetime item sorts before it, its hour items
        // after: a page reads them too, and skips them).
        let mut start = match after {
            Some(stream) => Some(crate::requests::to_item(
                &ItemKey::live_counter(stream),
                table,
                "a counter key",
            )?),
            None => None,
        };
        let page_items = i32::try_from(2 * limit + 2).unwrap_or(i32::MAX);
        // Whether the table may hold more after what was read.
        let mut more = true;
        while counters.len() < limit && more {
            let page = self
                .client
                .scan()
                .table_name(table)
                .limit(page_items)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|source| self.dynamo("Scan", table, source))?;
            let items = page.items.unwrap_or_default();
            let read = items.len();
            for (i, item) in items.into_iter().enumerate() {
                let key: ItemKey = self.item_from(Some(item.clone()), "a counter key")?;
                if StreamId::is_value_stream(&key.pk) {
                    // A breakdown's value stream is read with its stream, not listed.
                    continue;
                }
                if key.sk == LIFETIME_SK {
                    lifetimes.insert(key.pk, self.item_from(Some(item), "a lifetime item")?);
                } else if key.sk == LIVE_COUNTER_SK {
                    counters.push(self.item_from(Some(item), "a counter")?);
                    if counters.len() == limit {
                        // Items after this one in the page are read again by the next page.
                        more = i + 1 < read || page.last_evaluated_key.is_some();
                        break;
                    }
                }
            }
            if counters.len() < limit {
                start = page.last_evaluated_key;
                more = start.is_some();
            }
        }
        let next = if more {
            counters
                .last()
                .and_then(|c| StreamId::parse(&c.stream_id).ok())
        } else {
            None
        };
        let counters = counters
            .into_iter()
            .map(|counter| {
                let lifetime = lifetimes.remove(&counter.stream_id);
                (counter, lifetime)
            })
            .collect();
        Ok(CounterPage { counters, next })
    }

    fn item_from<T: serde::de::DeserializeOwned + Default>(
        &self,
        item: Option<Item>,
        what: &'static str,
    ) -> Result<T, StoreError> {
        let Some(item) = item else {
            return Ok(T::default());
        };
        serde_dynamo::from_item(item).map_err(|source| StoreError::Mapping {
            what,
            table: self.counters_table.clone(),
            source,
        })
    }

    pub(crate) fn dynamo<E, R>(
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
