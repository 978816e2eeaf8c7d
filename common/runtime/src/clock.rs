//! The time, as a port: handlers ask a [`Clock`] instead of reading the system clock, so tests can
//! set it (an expired grant, a token from the future) instead of waiting.

use std::fmt::Debug;

use chrono::{DateTime, Utc};

/// Tells the time.
pub trait Clock: Send + Sync + Debug + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to.
#[cfg(any(test, feature = "test-util"))]
#[derive(Debug, Clone)]
pub struct ManualClock(std::sync::Arc<std::sync::Mutex<DateTime<Utc>>>);

#[cfg(any(test, feature = "test-util"))]
impl ManualClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(std::sync::Arc::new(std::sync::Mutex::new(at)))
    }

    /// Move the clock forward (or back, with a negative delta).
    pub fn advance(&self, by: chrono::Duration) {
        if let Ok(mut t) = self.0.lock() {
            *t += by;
        }
    }

    pub fn set(&self, at: DateTime<Utc>) {
        if let Ok(mut t) = self.0.lock() {
            *t = at;
        }
    }
}

#[cfg(any(test, feature = "test-util"))]
impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.0.lock().map(|t| *t).unwrap_or_else(|p| *p.into_inner())
    }
}

/// A clock that follows tokio's time from a fixed start, so a test that pauses tokio's time moves
/// this clock too (leases, schedules) without waiting.
#[cfg(any(test, feature = "test-util"))]
#[derive(Debug, Clone)]
pub struct TokioClock {
    start: DateTime<Utc>,
    started: tokio::time::Instant,
}

#[cfg(any(test, feature = "test-util"))]
impl TokioClock {
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        Self { start, started: tokio::time::Instant::now() }
    }
}

#[cfg(any(test, feature = "test-util"))]
impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = chrono::Duration::from_std(self.started.elapsed()).unwrap_or_default();
        self.start + elapsed
    }
}
