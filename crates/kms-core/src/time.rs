//! Instants in time and the injected clock.

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch, UTC.
///
/// Stored as an integer so that records compare and persist exactly; converted to the wire's
/// epoch-seconds number or to RFC 3339 only at the edges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

const MILLIS_PER_DAY: i64 = 86_400_000;

impl Timestamp {
    /// The instant `millis` milliseconds after the Unix epoch.
    pub const fn from_unix_millis(millis: i64) -> Self {
        Self(millis)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn unix_millis(self) -> i64 {
        self.0
    }

    /// Whole seconds since the Unix epoch (rounded down).
    pub const fn unix_seconds(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// Seconds since the Unix epoch as AWS JSON 1.1 puts timestamps on the wire.
    #[allow(clippy::cast_precision_loss)] // millisecond precision fits an f64 for millennia
    pub fn epoch_seconds_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    /// This instant plus `days` whole days (saturating).
    pub const fn plus_days(self, days: i64) -> Self {
        Self(self.0.saturating_add(days.saturating_mul(MILLIS_PER_DAY)))
    }

    /// This instant plus `millis` milliseconds (saturating).
    pub const fn plus_millis(self, millis: i64) -> Self {
        Self(self.0.saturating_add(millis))
    }

    /// RFC 3339 rendering in UTC, e.g. `2026-11-25T21:21:20.123Z`.
    pub fn rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1_000_000;
        match ::time::OffsetDateTime::from_unix_timestamp_nanos(nanos) {
            Ok(t) => t.format(&::time::format_description::well_known::Rfc3339).unwrap_or_else(|_| self.0.to_string()),
            Err(_) => self.0.to_string(),
        }
    }
}

/// The source of the current time. Everything time-dependent reads it, so tests can move time.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_arithmetic_and_wire_seconds() {
        let t = Timestamp::from_unix_millis(1_700_000_000_500);
        assert_eq!(t.plus_days(7).unix_millis(), 1_700_000_000_500 + 7 * 86_400_000);
        assert_eq!(t.unix_seconds(), 1_700_000_000);
        assert!((t.epoch_seconds_f64() - 1_700_000_000.5).abs() < 1e-6);
        assert_eq!(t.rfc3339(), "2023-11-14T22:13:20.5Z");
    }
}

/// A clock that stands still until moved: for tests and simulations. It is pure state, so it
/// belongs in the core; nothing in the server's command line can select it.
#[derive(Debug)]
pub struct ManualClock(std::sync::atomic::AtomicI64);

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: Timestamp) -> Self {
        Self(std::sync::atomic::AtomicI64::new(start.unix_millis()))
    }

    /// Moves the clock forward (or back, with a negative amount) by `millis`.
    pub fn advance_millis(&self, millis: i64) {
        self.0.fetch_add(millis, std::sync::atomic::Ordering::SeqCst);
    }

    /// Moves the clock forward by whole days.
    pub fn advance_days(&self, days: i64) {
        self.advance_millis(days.saturating_mul(MILLIS_PER_DAY));
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(std::sync::atomic::Ordering::SeqCst))
    }
}
