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

/// When a Lambda invocation should stop starting work: `margin` before its deadline
/// (`context.deadline`, epoch ms by the system clock; 0 means none), or a quarter of the time it
/// has left if that is less (a short timeout, like the 3 s default, still gets most of its time).
/// No deadline (0), or one already past when the invocation starts (which Lambda never gives; a
/// local runtime emulator may), means no stop.
pub fn stop_starting_work(
    deadline_ms: u64,
    margin: std::time::Duration,
) -> Option<std::time::Instant> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    if deadline_ms <= now_ms {
        return None;
    }
    let left = std::time::Duration::from_millis(deadline_ms - now_ms);
    Some(std::time::Instant::now() + left - margin.min(left / 4))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

    /// A 10 s invocation stops starting work 2 s before its end; a 2 s one half a second before
    /// (a quarter of its time); no deadline, or one already past, no stop.
    #[test]
    fn work_stops_a_margin_or_a_quarter_of_the_time_before_the_deadline() {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let margin = Duration::from_secs(2);
        let start = Instant::now();
        let stop = |left_ms: u64| {
            stop_starting_work(now_ms + left_ms, margin)
                .map(|at| at.saturating_duration_since(start).as_millis() as i64)
        };
        let near = |got: Option<i64>, want: i64| got.is_some_and(|ms| (ms - want).abs() < 200);
        assert!(near(stop(10_000), 8_000), "{:?}", stop(10_000));
        assert!(near(stop(2_000), 1_500), "{:?}", stop(2_000));
        assert_eq!(stop_starting_work(0, margin), None);
        assert_eq!(stop_starting_work(now_ms - 1_000, margin), None);
    }
}
