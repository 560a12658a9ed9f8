//! Lambda's two event source mappings as pure state machines: what AWS does with records and
//! messages between a function's invocations, with no I/O and no clock of their own. The caller
//! passes the time (epoch milliseconds) to every step, so the same rules run under the real
//! clock (`livecount dev`, the tests, through [`crate::poller`] and [`crate::queue`]) and under
//! the simulated one (`livecount-sim`).
//!
//! - [`stream`]: the DynamoDB stream trigger's lanes: batch size and window, the retry shapes
//!   after a partial batch response and after a function error (with and without
//!   `BisectBatchOnFunctionError`), `MaximumRetryAttempts`, `MaximumRecordAgeInSeconds`;
//! - [`queue`]: an SQS queue under its Lambda trigger: batch size and window, visibility
//!   timeout, receive count, the redrive policy's `maxReceiveCount` to the dead-letter queue,
//!   partial batch responses, and an operator's redrive.
//!
//! Each mapping's defaults are the deployed ones, read from `infra/contract.json`.

pub mod queue;
pub mod stream;

/// A deployment default of `infra/contract.json` ("settings"), as a whole number.
fn deployed_setting(name: &str) -> Option<u64> {
    let contract: serde_json::Value =
        serde_json::from_str(livecount_core::contract::CONTRACT_JSON).ok()?;
    contract["settings"][name]["default"].as_u64()
}

/// A deployment default of `infra/contract.json` given in seconds, in milliseconds.
fn deployed_ms(name: &str) -> Option<i64> {
    deployed_setting(name).map(|seconds| seconds as i64 * 1000)
}
