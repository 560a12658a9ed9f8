//! The one DynamoDB adapter: every request livecount makes goes through [`Store`]. Items are
//! mapped with `serde_dynamo`; every attribute name and value in an expression goes through a
//! placeholder.

use crate::config::Config;
use crate::histogram::{CounterRequest, Receipt, ReceiptKey};
use crate::ids::StreamId;
use crate::model::{CounterItem, HISTORY_SK, HistoryItem, ItemKey, LIVE_COUNTER_SK, SessionState};
use crate::requests::{
    HistoryUpdate, Item, UpdateRequest, counter_request, history_request, receipt_release_request,
    session_write_request, to_item,
};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{BuildError, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The most streams one page of the stream list holds.
pub const MAX_LIST_PAGE: usize = 100;

/// One page of the stream list ([`Store::list_counters_page`]).
#[derive(Debug, Clone, Default)]
pub struct CounterPage {
    pub counters: Vec<(CounterItem, Option<HistoryItem>)>,
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
    /// Applied; the counter as it is now (`ALL_NEW`).
    Applied(CounterItem),
    /// The receipt's name does not hold what the request expected (nothing, or the receipt a
    /// redelivery found): records that begin with the same record were applied before. The
    /// counter as it is (`ALL_OLD`), with the receipt that is there.
    ReceiptHeld(CounterItem),
}

/// DynamoDB access for livecount's two tables.
#[derive(Debug, Clone)]
pub struct Store {
    client: Client,
    sessions_table: String,
    counters_table: String,
    model: Option<Arc<dyn UpdateModel>>,
}

/// What an `UpdateItem` returned: `Ok(item after)` when it applied, `Err(item before)` when its
/// condition failed.
pub type UpdateOutcome = Result<Option<Item>, Option<Item>>;

/// A model of DynamoDB that takes the place of the network for every `UpdateItem` (the scale
/// simulation, `livecount-sim`): it is given exactly the request the SDK would send, and answers
/// as DynamoDB would, throttling included.
pub trait UpdateModel: Send + Sync + std::fmt::Debug {
    /// Applies `request` after the SDK's retries; `Err` is the error the last attempt returned.
    fn update_item(
        &self,
        request: UpdateRequest,
    ) -> Result<UpdateOutcome, Box<aws_sdk_dynamodb::Error>>;
}

impl Store {
    pub fn new(client: Client, config: &Config) -> Self {
        Self {
            client,
            sessions_table: config.sessions_table.clone(),
            counters_table: config.counters_table.clone(),
            model: None,
        }
    }

    /// A store whose `UpdateItem`s go to `model` instead of DynamoDB.
    pub fn with_model(mut self, model: Arc<dyn UpdateModel>) -> Self {
        self.model = Some(model);
        self
    }

    /// The tables themselves: create, delete, describe (tools and tests; the functions never do).
    pub fn admin(&self) -> crate::admin::TableAdmin<'_> {
        crate::admin::TableAdmin { store: self }
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
            .send(counter_request(table, request)?, ReturnValue::AllNew)
            .await?
        {
            Ok(new) => Ok(CounterWrite::Applied(self.item_from(new, "a counter")?)),
            Err(old) => Ok(CounterWrite::ReceiptHeld(self.item_from(old, "a counter")?)),
        }
    }

    /// Removes a receipt whose batch succeeded (see [`receipt_release_request`]). Returns
    /// whether it was still there to remove.
    pub async fn release_receipt(
        &self,
        stream_id: &str,
        key: ReceiptKey,
        receipt: &Receipt,
    ) -> Result<bool, StoreError> {
        let request = receipt_release_request(&self.counters_table, stream_id, key, receipt)?;
        Ok(self.send(request, ReturnValue::None).await?.is_ok())
    }

    /// Records that `viewers` watched at `now` in the stream's history item (see
    /// [`history_request`]). Returns the item as it is now, or as it was when a concurrent writer
    /// had already recorded as many viewers for the minute.
    pub async fn record_viewers(
        &self,
        update: &HistoryUpdate,
    ) -> Result<(bool, HistoryItem), StoreError> {
        let table = &self.counters_table;
        match self
            .send(history_request(table, update)?, ReturnValue::AllNew)
            .await?
        {
            Ok(new) => Ok((true, self.item_from(new, "a history item")?)),
            Err(old) => Ok((false, self.item_from(old, "a history item")?)),
        }
    }

    /// The one read of the read path: `GetItem(counters, {PK: streamId, SK: "live"})`.
    pub async fn get_counter(&self, stream_id: &str) -> Result<Option<CounterItem>, StoreError> {
        self.get(&ItemKey::live_counter(stream_id), "a counter")
            .await
    }

    /// A stream's peak and history: `GetItem(counters, {PK: streamId, SK: "history"})`.
    pub async fn get_history(&self, stream_id: &str) -> Result<Option<HistoryItem>, StoreError> {
        self.get(&ItemKey::history(stream_id), "a history item")
            .await
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

    /// Sends an [`UpdateRequest`]: `Ok(Ok(attributes))` when it applied (as `returns` asks),
    /// `Ok(Err(old item))` when its condition failed.
    pub async fn send(
        &self,
        request: UpdateRequest,
        returns: ReturnValue,
    ) -> Result<UpdateOutcome, StoreError> {
        if let Some(model) = &self.model {
            let table = request.table.clone();
            return model
                .update_item(request)
                .map_err(|source| StoreError::Dynamo {
                    operation: "UpdateItem",
                    table,
                    source,
                });
        }
        let result = self
            .client
            .update_item()
            .table_name(&request.table)
            .set_key(Some(request.key))
            .update_expression(request.update)
            .set_condition_expression(request.condition)
            .set_expression_attribute_names(Some(request.names))
            .set_expression_attribute_values(Some(request.values))
            .return_values(returns)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => Ok(Ok(output.attributes)),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Ok(Err(match e.into_err() {
                    UpdateItemError::ConditionalCheckFailedException(c) => c.item,
                    _ => None,
                }))
            }
            Err(source) => Err(self.dynamo("UpdateItem", &request.table, source)),
        }
    }

    /// Every stream's live counter with its history item, if any (a `Scan` of every page: for
    /// tools, not for dashboards).
    pub async fn list_counters(
        &self,
    ) -> Result<Vec<(CounterItem, Option<HistoryItem>)>, StoreError> {
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

    /// Up to `limit` streams' live counters (with their history items), in the table's scan
    /// order, after the stream `after` (the previous page's `next`): one `Scan` request of at
    /// most `2 x limit + 2` items at a time, so a page costs the same whatever the table holds.
    pub async fn list_counters_page(
        &self,
        limit: usize,
        after: Option<&StreamId>,
    ) -> Result<CounterPage, StoreError> {
        let table = &self.counters_table;
        let limit = limit.clamp(1, MAX_LIST_PAGE);
        let mut counters: Vec<CounterItem> = Vec::new();
        let mut histories: BTreeMap<String, HistoryItem> = BTreeMap::new();
        // Start after the stream's live item (its history item sorts before it).
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
                if key.sk == HISTORY_SK {
                    histories.insert(key.pk, self.item_from(Some(item), "a history item")?);
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
                let history = histories.remove(&counter.stream_id);
                (counter, history)
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
