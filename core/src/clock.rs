//! The clock handlers and readers use: the system clock in production, a hand-set one in tests
//! and simulations.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Wall-clock time in epoch milliseconds.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self { manual: None }
    }

    /// A clock that stays at `now_ms` until [`Clock::set_ms`] or [`Clock::advance_ms`] moves it;
    /// clones share the time.
    pub fn manual(now_ms: i64) -> Self {
        Self {
            manual: Some(Arc::new(AtomicI64::new(now_ms))),
        }
    }

    pub fn now_ms(&self) -> i64 {
        match &self.manual {
            Some(ms) => ms.load(Ordering::SeqCst),
            None => chrono::Utc::now().timestamp_millis(),
        }
    }

    /// Whole epoch seconds (`now` of the histogram).
    pub fn now_seconds(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }

    /// Sets a manual clock; the system clock ignores it.
    pub fn set_ms(&self, now_ms: i64) {
        if let Some(ms) = &self.manual {
            ms.store(now_ms, Ordering::SeqCst);
        }
    }

    /// Moves a manual clock forward; the system clock ignores it.
    pub fn advance_ms(&self, by_ms: i64) {
        if let Some(ms) = &self.manual {
            ms.fetch_add(by_ms, Ordering::SeqCst);
        }
    }
}

/// The `Instant` of a Lambda invocation's deadline (`context.deadline`: epoch ms by the system
/// clock; 0 means none), for the handlers to stop starting work before it.
pub fn deadline_instant(deadline_ms: u64) -> Option<std::time::Instant> {
    if deadline_ms == 0 {
        return None;
    }
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let left = std::time::Duration::from_millis(deadline_ms.saturating_sub(now_ms));
    Some(std::time::Instant::now() + left)
}
