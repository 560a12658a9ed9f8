//! A DynamoDB table in memory: the items livecount's requests make, their sizes, and what each
//! request costs, by the rules DynamoDB documents (`livecount_core::capacity`):
//!
//! - a write costs one write unit per started KB of the larger of the item before and after,
//!   whether it applies or its condition fails (a failed condition is charged as the write
//!   would have been);
//! - a read costs one read unit per started 4 KB, half when eventually consistent.
//!
//! The calibration test (`tests/pipeline/calibration.rs`) sends the same requests to DynamoDB
//! Local with `ReturnConsumedCapacity` and checks sizes, units and items against this model.
//! Throughput limits (per key, per table) are the simulation's business, not this table's.

use crate::expression::{Compiled, ExpressionError, Item, Scope};
use crate::hash::stable_hash;
use aws_sdk_dynamodb::types::AttributeValue;
use livecount_core::capacity::{item_size, read_units, write_units};
use livecount_core::requests::UpdateRequest;
use rustc_hash::FxHashMap;
use std::collections::HashMap;
use std::sync::Arc;

/// Why the model refuses a request (DynamoDB would answer `ValidationException`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error(transparent)]
    Expression(#[from] ExpressionError),
    #[error("the key has no string PK and SK")]
    Key,
    #[error("the item would be {0} bytes, over DynamoDB's 400 KB")]
    TooLarge(usize),
    #[error("the request is outside DynamoDB's expression limits (300 operators, 4 KB)")]
    Limits,
}

/// The largest item DynamoDB stores.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// What one `UpdateItem` did.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    /// Whether the condition held and the item changed.
    pub applied: bool,
    /// Write units charged.
    pub units: f64,
    pub size_before: usize,
    pub size_after: usize,
    /// The item before and after (a stream record's `OldImage` and `NewImage`), when applied.
    pub old: Option<Item>,
    pub new: Option<Item>,
}

/// A table: items by `(PK, SK)`.
#[derive(Debug, Default)]
pub struct Table {
    /// Items by partition key, then sort key.
    items: FxHashMap<String, FxHashMap<String, Item>>,
    count: usize,
    /// Parsed expressions by a hash of their text (livecount's requests share a few shapes).
    compiled: HashMap<u64, (String, Option<String>, Arc<Compiled>)>,
    /// The last request's expressions (consecutive requests mostly share them).
    last: Option<(String, Option<String>, Arc<Compiled>)>,
}

impl Table {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Applies an `UpdateItem` as DynamoDB would: the condition on the current item, then the
    /// update; charged by the larger of the item's sizes before and after.
    pub fn update(&mut self, request: &UpdateRequest) -> Result<Written, ValidationError> {
        self.update_admitted(request, |_| true)
            .map(|written| written.unwrap_or_else(unreachable_admission))
    }

    /// [`Table::update`], if `admit` grants the write units it costs (`None`: throttled, nothing
    /// changed, nothing charged).
    pub fn update_admitted(
        &mut self,
        request: &UpdateRequest,
        admit: impl FnOnce(f64) -> bool,
    ) -> Result<Option<Written>, ValidationError> {
        let (pk, sk) = key_of(&request.key)?;
        let compiled = self.compile(request)?;
        let scope = Scope {
            names: &request.names,
            values: &request.values,
        };
        let current = self.items.get(pk).and_then(|items| items.get(sk));
        let holds = compiled.condition_holds(current, &scope)?;
        let mut next = current.cloned().unwrap_or_else(|| request.key.clone());
        compiled.apply(&mut next, &scope)?;
        let size_before = current.map_or(0, item_size);
        let size_after = item_size(&next);
        if size_after > MAX_ITEM_BYTES {
            return Err(ValidationError::TooLarge(size_after));
        }
        let units = write_units(size_before, size_after);
        if !admit(units) {
            return Ok(None);
        }
        if !holds {
            return Ok(Some(Written {
                applied: false,
                units,
                size_before,
                size_after: size_before,
                old: current.cloned(),
                new: None,
            }));
        }
        let stored = next.clone();
        let partition = match self.items.get_mut(pk) {
            Some(partition) => partition,
            None => self.items.entry(pk.to_owned()).or_default(),
        };
        let old = match partition.get_mut(sk) {
            Some(slot) => Some(std::mem::replace(slot, stored)),
            None => {
                partition.insert(sk.to_owned(), stored);
                self.count += 1;
                None
            }
        };
        Ok(Some(Written {
            applied: true,
            units,
            size_before,
            size_after,
            old,
            new: Some(next),
        }))
    }

    /// `GetItem`: the item and the read units it costs.
    pub fn get(&self, pk: &str, sk: &str, strongly_consistent: bool) -> (Option<&Item>, f64) {
        let item = self.items.get(pk).and_then(|items| items.get(sk));
        let size = item.map_or(0, item_size);
        (item, read_units(size, strongly_consistent))
    }

    /// Removes an item (a TTL deletion), returning it.
    pub fn delete(&mut self, pk: &str, sk: &str) -> Option<Item> {
        let removed = self.items.get_mut(pk)?.remove(sk);
        self.count -= usize::from(removed.is_some());
        removed
    }

    fn compile(&mut self, request: &UpdateRequest) -> Result<Arc<Compiled>, ValidationError> {
        if let Some((update, condition, compiled)) = &self.last
            && *update == request.update
            && *condition == request.condition
        {
            return Ok(Arc::clone(compiled));
        }
        let compiled = self.compile_any(request)?;
        self.last = Some((
            request.update.clone(),
            request.condition.clone(),
            Arc::clone(&compiled),
        ));
        Ok(compiled)
    }

    /// Parses a request's expressions (checking them against DynamoDB's limits once per shape).
    fn compile_any(&mut self, request: &UpdateRequest) -> Result<Arc<Compiled>, ValidationError> {
        if !request.within_limits() {
            return Err(ValidationError::Limits);
        }
        // The cache compares the texts, so any hash would be correct; the stable one keeps a
        // run's work the same everywhere.
        let hash = match &request.condition {
            None => stable_hash(&[&request.update]),
            Some(condition) => stable_hash(&[&request.update, condition]),
        };
        if let Some((update, condition, compiled)) = self.compiled.get(&hash)
            && *update == request.update
            && *condition == request.condition
        {
            return Ok(Arc::clone(compiled));
        }
        let compiled = Arc::new(Compiled::new(
            &request.update,
            request.condition.as_deref(),
        )?);
        if self.compiled.len() > 10_000 {
            self.compiled.clear();
        }
        self.compiled.insert(
            hash,
            (
                request.update.clone(),
                request.condition.clone(),
                Arc::clone(&compiled),
            ),
        );
        Ok(compiled)
    }
}

/// [`Table::update`] admits every write.
fn unreachable_admission() -> Written {
    Written {
        applied: false,
        units: 0.0,
        size_before: 0,
        size_after: 0,
        old: None,
        new: None,
    }
}

fn key_of(key: &Item) -> Result<(&str, &str), ValidationError> {
    match (key.get("PK"), key.get("SK")) {
        (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) => Ok((pk, sk)),
        _ => Err(ValidationError::Key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use livecount_core::histogram::{
        CounterRequest, Fingerprint, Receipt, ReceiptKey, ReceiptWrite,
    };
    use livecount_core::requests::counter_request;

    /// A counter request whose receipt is named after record `first`.
    fn request(first: u64, deltas: Vec<(i64, i64)>) -> UpdateRequest {
        counter_request(
            "counters",
            &CounterRequest {
                stream_id: livecount_core::ids::StreamId::parse("s").expect("valid"),
                deltas,
                starts: Vec::new(),
                new_sessions: Vec::new(),
                new_viewers: Vec::new(),
                prune: vec![900],
                prune_starts: Vec::new(),
                prune_new_sessions: Vec::new(),
                prune_new_viewers: Vec::new(),
                remove_receipts: Vec::new(),
                receipt: Some(ReceiptWrite {
                    key: ReceiptKey::of_first_record(&first.to_string()),
                    receipt: Receipt {
                        at: 1_000,
                        records: 1,
                        fingerprint: Fingerprint(first),
                    },
                    replaces: None,
                }),
                now: 1_000,
                expires_at: 2_000,
            },
        )
        .expect("builds")
    }

    #[test]
    fn a_counter_request_adds_and_a_repeated_receipt_is_refused_but_charged() {
        let mut table = Table::new();
        let first = table
            .update(&request(7, vec![(1_015, 3), (1_020, 1)]))
            .expect("applies");
        assert!(first.applied);
        assert_eq!(first.units, 1.0);
        assert!(first.old.is_none());
        let again = table
            .update(&request(7, vec![(1_015, 3), (1_020, 1)]))
            .expect("evaluates");
        assert!(!again.applied);
        assert_eq!(again.units, 1.0, "a failed condition is charged");
        let other = table
            .update(&request(8, vec![(1_015, -1)]))
            .expect("applies");
        assert!(other.applied);
        let (item, units) = table.get("s", "live", false);
        let item = item.expect("stored");
        assert_eq!(item.get("b1015"), Some(&AttributeValue::N("2".into())));
        assert_eq!(item.get("b1020"), Some(&AttributeValue::N("1".into())));
        assert_eq!(units, 0.5);
    }
}
