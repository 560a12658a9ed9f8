//! An SDK interceptor that records which DynamoDB operations a piece of code calls, as IAM
//! names (`dynamodb:UpdateItem`), so a test can hold them against `infra/contract.json`, the
//! list the infrastructure grants.

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Clones share one record.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    operations: Arc<Mutex<BTreeSet<String>>>,
    /// Every call so far, by operation (never forgotten).
    calls: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl Recorder {
    /// The operations recorded since the last call, forgetting them.
    pub fn take(&self) -> BTreeSet<String> {
        std::mem::take(&mut *self.operations.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// How many times `operation` (`dynamodb:GetItem`) was sent so far.
    pub fn calls(&self, operation: &str) -> u64 {
        let calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        calls.get(operation).copied().unwrap_or(0)
    }
}

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "livecount-test-recorder"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = context
            .request()
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or_default()
            .to_owned();
        let operation = format!("dynamodb:{target}");
        *self
            .calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(operation.clone())
            .or_default() += 1;
        self.operations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(operation);
        Ok(())
    }
}
