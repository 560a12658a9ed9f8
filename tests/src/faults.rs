//! Fault injection for DynamoDB calls: an SDK interceptor that makes a share of chosen requests
//! fail as DynamoDB does under load, without a proxy.
//!
//! - [`Fault::Throttle`] and [`Fault::ServerError`]: the request is spoiled before it is sent
//!   (DynamoDB Local refuses it, so nothing is written) and the answer is replaced with a
//!   `ThrottlingException` (400) or an `InternalServerError` (500), which the SDK treats as
//!   retryable, exactly as it would from AWS.
//! - [`Fault::LostResponse`]: the request is applied, and its answer replaced with a 500: the
//!   write happened but the caller sees a failure (the ambiguous case).
//! - [`Fault::Invalid`]: nothing is written and the answer is a `ValidationException` (400), as
//!   for a request over DynamoDB's expression limits.

use aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextMut,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use std::sync::{Arc, Mutex, MutexGuard};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Throttle,
    ServerError,
    LostResponse,
    /// DynamoDB rejects the request as invalid (`ValidationException`, 400): not retryable.
    Invalid,
}

/// Which requests may fail.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    pub fault: Fault,
    /// Share of matching requests that fail, 0 to 1.
    pub rate: f64,
    /// The operation (`UpdateItem`, …) and table a request must have to be chosen.
    pub operation: &'static str,
    pub table: String,
    /// Text the request body must contain too (say `"ReturnValues":"ALL_NEW"`), if any.
    pub body_contains: Option<&'static str>,
}

/// One injected fault: the table and the `Key` of the request, and the handler call it was
/// made in (see [`within_call`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injected {
    pub fault: Fault,
    pub table: String,
    pub pk: String,
    pub sk: String,
    pub call: Option<u64>,
}

tokio::task_local! {
    static CALL: u64;
}

/// Runs `future` (one handler call) as call `id`: faults injected while it runs are tagged
/// with `id`, even when other calls run concurrently in the same task.
pub async fn within_call<F: Future>(id: u64, future: F) -> F::Output {
    CALL.scope(id, future).await
}

#[derive(Debug, Default)]
struct State {
    plans: Vec<FaultPlan>,
    injected: Vec<Injected>,
    rng: Option<fastrand::Rng>,
}

/// The interceptor; clones share their plans and log.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Clone, Copy)]
struct Chosen(Fault);

impl Storable for Chosen {
    type Storer = StoreReplace<Self>;
}

impl Faults {
    pub fn new(seed: u64) -> Self {
        let faults = Self::default();
        faults.lock().rng = Some(fastrand::Rng::with_seed(seed));
        faults
    }

    /// Replaces the plans (an empty list stops all faults).
    pub fn set(&self, plans: Vec<FaultPlan>) {
        self.lock().plans = plans;
    }

    /// Takes the log of injected faults.
    pub fn take_injected(&self) -> Vec<Injected> {
        std::mem::take(&mut self.lock().injected)
    }

    /// Takes the faults injected in call `id`, leaving the others.
    pub fn take_injected_in(&self, id: u64) -> Vec<Injected> {
        let mut state = self.lock();
        let (mine, others) = std::mem::take(&mut state.injected)
            .into_iter()
            .partition(|i| i.call == Some(id));
        state.injected = others;
        mine
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[derive(serde::Deserialize)]
struct RequestBody {
    #[serde(rename = "TableName")]
    table: Option<String>,
    #[serde(rename = "Key")]
    key: Option<serde_json::Value>,
}

impl Intercept for Faults {
    fn name(&self) -> &'static str {
        "livecount-test-faults"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request_mut();
        let operation = request
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or_default()
            .to_owned();
        let text = request
            .body()
            .bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        let Ok(body) = serde_json::from_str::<RequestBody>(&text) else {
            return Ok(());
        };
        let table = body.table.unwrap_or_default();
        let mut state = self.lock();
        let chosen = state
            .plans
            .iter()
            .find(|p| {
                p.operation == operation
                    && p.table == table
                    && p.body_contains
                        .is_none_or(|needle| text.replace(' ', "").contains(needle))
            })
            .cloned();
        let Some(plan) = chosen else {
            return Ok(());
        };
        let roll = state.rng.get_or_insert_with(fastrand::Rng::new).f64();
        if roll >= plan.rate {
            return Ok(());
        }
        let key = body.key.unwrap_or_default();
        let text_of = |name: &str| key[name]["S"].as_str().unwrap_or_default().to_owned();
        state.injected.push(Injected {
            fault: plan.fault,
            table,
            pk: text_of("PK"),
            sk: text_of("SK"),
            call: CALL.try_with(|id| *id).ok(),
        });
        drop(state);
        if plan.fault != Fault::LostResponse {
            // Spoil the request so DynamoDB Local refuses it and writes nothing.
            *request.body_mut() = SdkBody::from("{}");
            request.headers_mut().insert("content-length", "2");
        }
        cfg.interceptor_state().store_put(Chosen(plan.fault));
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(Chosen(fault)) = cfg.load::<Chosen>().copied() else {
            return Ok(());
        };
        cfg.interceptor_state().unset::<Chosen>();
        let (status, error_type, message) = match fault {
            Fault::Throttle => (
                400,
                "ThrottlingException",
                "Rate of requests exceeds the allowed throughput.",
            ),
            Fault::ServerError | Fault::LostResponse => {
                (500, "InternalServerError", "Internal server error")
            }
            Fault::Invalid => (
                400,
                "ValidationException",
                "Invalid UpdateExpression: Expression size has exceeded the maximum allowed size",
            ),
        };
        let body = format!(
            "{{\"__type\":\"com.amazonaws.dynamodb.v20120810#{error_type}\",\"message\":\"{message}\"}}"
        );
        let response = context.response_mut();
        *response.status_mut() = status.try_into()?;
        response
            .headers_mut()
            .insert("content-type", "application/x-amz-json-1.0");
        response
            .headers_mut()
            .insert("content-length", body.len().to_string());
        response
            .headers_mut()
            .insert("x-amzn-errortype", error_type);
        *response.body_mut() = SdkBody::from(body);
        Ok(())
    }
}
