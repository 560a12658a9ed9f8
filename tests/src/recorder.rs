//! An SDK interceptor that records which DynamoDB operations a piece of code calls, as IAM
//! names (`dynamodb:UpdateItem`), so a test can hold them against `infra/contract.json`, the
//! list the infrastructure grants.

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Clones share one record.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    operations: Arc<Mutex<BTreeSet<String>>>,
}

impl Recorder {
    /// The operations recorded since the last call, forgetting them.
    pub fn take(&self) -> BTreeSet<String> {
        std::mem::take(&mut *self.operations.lock().unwrap_or_else(|e| e.into_inner()))
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
        self.operations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(format!("dynamodb:{target}"));
        Ok(())
    }
}
