//! The expiry histogram's timing (`docs/design.md`, "The model"): `W`, `B` and `G`, their bound,
//! and when a session stops counting, computed from the receive time on the server's clock,
//! never from the player's.

use crate::event::EventKind;
use std::time::Duration;

/// Most buckets `(W + B + G) / B` a configuration may span (16 with the defaults), so that the
/// live counter item stays within 1 KB.
pub const MAX_LIVE_BUCKETS: i64 = 20;

/// The three durations of the expiry histogram, in whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// `W`: a session counts until `W` after its last watching event was received.
    pub window_seconds: i64,
    /// `B`: expiry times are rounded up to a multiple of `B`.
    pub bucket_seconds: i64,
    /// `G`: deltas at buckets older than `now - G` are dropped, and such buckets pruned.
    pub grace_seconds: i64,
}

impl Timing {
    /// The defaults: `W` = 15 s, `B` = 5 s, `G` = 60 s (`infra/contract.json`).
    pub const DEFAULT: Self = Self {
        window_seconds: 15,
        bucket_seconds: 5,
        grace_seconds: 60,
    };
}

impl Default for Timing {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl Timing {
    /// How many buckets can hold live sessions or late deltas at once: `(W + B + G) / B`.
    pub fn live_buckets(&self) -> i64 {
        (self.window_seconds + self.bucket_seconds + self.grace_seconds) / self.bucket_seconds
    }

    /// The window as a [`Duration`].
    pub fn window(&self) -> Duration {
        Duration::from_secs(self.window_seconds.unsigned_abs())
    }
}

impl Timing {
    /// `expDate` for an event received at `recv_ms` (epoch ms):
    /// watching events count until `ceil((recv_ms + 1000 W) / (1000 B)) * B`;
    /// `pause` and `stop` expire at once, `floor(recv_ms / 1000)`.
    pub fn expiry(&self, kind: EventKind, recv_ms: i64) -> i64 {
        if kind.is_watching() {
            ceil_div(
                recv_ms + 1000 * self.window_seconds,
                1000 * self.bucket_seconds,
            ) * self.bucket_seconds
        } else {
            recv_ms.div_euclid(1000)
        }
    }

    /// The bucket an `expDate` belongs to: rounded up to a multiple of `B`, so that a row written
    /// under another `B` still counts at least until its own `expDate`.
    pub fn bucket(&self, exp_date: i64) -> i64 {
        ceil_div(exp_date, self.bucket_seconds) * self.bucket_seconds
    }

    /// The oldest bucket that still matters at `now`: deltas below it are dropped and such
    /// buckets pruned (`now - G`).
    pub fn oldest_live_bucket(&self, now: i64) -> i64 {
        now - self.grace_seconds
    }
}

/// `ceil(a / b)` for `b > 0`, exact for negative `a` too.
fn ceil_div(a: i64, b: i64) -> i64 {
    -(-a).div_euclid(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timing = Timing::DEFAULT;

    #[test]
    fn watching_expiry_rounds_up_to_the_bucket() {
        // (recv_ms, expDate)
        for (recv_ms, expected) in [
            (1_000_000_000, 1_000_015), // exactly on a bucket boundary stays
            (1_000_000_001, 1_000_020), // one ms past rounds up a whole bucket
            (1_000_004_999, 1_000_020),
            (1_000_005_000, 1_000_020),
            (1_000_005_001, 1_000_025),
            (0, 15),
        ] {
            assert_eq!(
                T.expiry(EventKind::Heartbeat, recv_ms),
                expected,
                "recv {recv_ms}"
            );
            assert_eq!(
                T.expiry(EventKind::Start, recv_ms),
                expected,
                "recv {recv_ms}"
            );
        }
    }

    #[test]
    fn pause_and_stop_expire_at_the_receive_second() {
        for kind in [EventKind::Pause, EventKind::Stop] {
            assert_eq!(T.expiry(kind, 1_000_000_999), 1_000_000);
            assert_eq!(T.expiry(kind, 1_000_001_000), 1_000_001);
        }
    }

    #[test]
    fn a_session_counts_for_at_least_w_and_at_most_w_plus_b() {
        for recv_ms in (1_000_000_000..1_000_010_000).step_by(7) {
            let exp = T.expiry(EventKind::Heartbeat, recv_ms);
            assert!(exp * 1000 >= recv_ms + 15_000, "recv {recv_ms}");
            assert!(exp * 1000 < recv_ms + 20_000, "recv {recv_ms}");
            assert_eq!(exp % 5, 0);
        }
    }

    #[test]
    fn bucket_of_an_expiry_is_idempotent_and_rounds_up() {
        for (exp, bucket) in [
            (100, 100),
            (101, 105),
            (104, 105),
            (105, 105),
            (-1, 0),
            (-5, -5),
        ] {
            assert_eq!(T.bucket(exp), bucket, "exp {exp}");
            assert_eq!(T.bucket(T.bucket(exp)), bucket);
        }
    }
}
