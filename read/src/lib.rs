//! # livecount-read
//!
//! The read Lambda: the same HTTP API and dashboard as `livecount dev`
//! ([`livecount_api::router`]), served behind a Lambda Function URL. It only reads: one
//! `GetItem` per stream count (and a `Scan` of the counters for the stream list); events reach
//! livecount through SQS, so `POST /api/events` answers 404 here.

use livecount_api::ApiState;
use livecount_core::breakdown::Breakdowns;
use livecount_core::{Clock, Store};

/// The API's state for the read Lambda: the store, the system clock, no event sink, the
/// deployment's breakdowns.
pub fn state(store: Store, breakdowns: Breakdowns) -> ApiState {
    ApiState {
        store,
        clock: Clock::system(),
        events: None,
        breakdowns,
    }
}
