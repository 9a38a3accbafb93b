//! The dashboard's history: the request metrics sampled into a small ring buffer on this node,
//! turned into per-interval rates for the console's charts.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde_json::{Value, json};

use crate::metrics::{BOUNDS, Totals};

/// Samples kept: an hour at [`INTERVAL_MILLIS`].
pub const CAPACITY: usize = 720;
/// How often the metrics are sampled.
pub const INTERVAL_MILLIS: u64 = 5_000;

/// The ring buffer of (Unix ms, totals) samples.
#[derive(Default)]
pub struct Samples {
    ring: Mutex<VecDeque<(i64, Totals)>>,
}

impl Samples {
    /// Adds a sample, dropping the oldest past [`CAPACITY`].
    pub fn push(&self, at: i64, totals: Totals) {
        let mut ring = self.ring.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if ring.len() >= CAPACITY {
            ring.pop_front();
        }
        ring.push_back((at, totals));
    }

    /// One point per interval between consecutive samples: its end time (Unix ms), requests per
    /// second, the share of them that failed, and the mean and 95th-percentile latency (the
    /// upper bound of the histogram bucket it falls in) in milliseconds.
    pub fn series(&self) -> Value {
        let ring = self.ring.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let points: Vec<Value> = ring.iter().zip(ring.iter().skip(1)).map(|(a, b)| point(a, b)).collect();
        json!({ "intervalMillis": INTERVAL_MILLIS, "points": points })
    }
}

#[allow(clippy::cast_precision_loss)] // counts far below 2^52
fn point((t0, a): &(i64, Totals), (t1, b): &(i64, Totals)) -> Value {
    let seconds = (t1.saturating_sub(*t0).max(1)) as f64 / 1000.0;
    let requests = b.requests.saturating_sub(a.requests);
    let errors = b.errors.saturating_sub(a.errors);
    let (error_rate, mean_ms, p95_ms) = if requests == 0 {
        (0.0, 0.0, 0.0)
    } else {
        let mean = (b.latency_seconds - a.latency_seconds).max(0.0) / requests as f64 * 1000.0;
        let wanted = requests as f64 * 0.95;
        let p95 = BOUNDS
            .iter()
            .zip(a.buckets.iter().zip(b.buckets.iter()))
            .find(|(_, (x, y))| y.saturating_sub(**x) as f64 >= wanted)
            .map_or_else(|| BOUNDS.last().copied().unwrap_or(0.0), |(bound, _)| *bound);
        (errors as f64 / requests as f64, mean, p95 * 1000.0)
    };
    json!({
        "t": t1,
        "requestsPerSecond": requests as f64 / seconds,
        "errorRate": error_rate,
        "meanLatencyMs": mean_ms,
        "p95LatencyMs": p95_ms,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn rates_come_from_the_difference_between_samples() {
        let samples = Samples::default();
        let mut a = Totals::default();
        samples.push(0, a);
        // 20 requests in 2 s, 5 failed, all answered within 1 ms but one taking 0.2 s.
        a.requests = 20;
        a.errors = 5;
        a.latency_seconds = 19.0 * 0.0008 + 0.2;
        for (bucket, bound) in a.buckets.iter_mut().zip(BOUNDS) {
            *bucket = if bound >= 0.25 {
                20
            } else if bound >= 0.001 {
                19
            } else {
                0
            };
        }
        samples.push(2000, a);
        let series = samples.series();
        let point = &series["points"][0];
        assert_eq!(series["points"].as_array().unwrap().len(), 1);
        assert_eq!(point["t"], 2000);
        assert_eq!(point["requestsPerSecond"], 10.0);
        assert_eq!(point["errorRate"], 0.25);
        assert_eq!(point["p95LatencyMs"], 1.0);
        assert!((point["meanLatencyMs"].as_f64().unwrap() - 10.76).abs() < 1e-9);
    }

    #[test]
    fn the_ring_keeps_the_newest_samples() {
        let samples = Samples::default();
        for i in 0..(CAPACITY + 10) {
            samples.push(i64::try_from(i).unwrap(), Totals::default());
        }
        let series = samples.series();
        let points = series["points"].as_array().unwrap();
        assert_eq!(points.len(), CAPACITY - 1);
        assert_eq!(points[0]["t"], 11);
        assert_eq!(points[0]["requestsPerSecond"], 0.0);
    }
}
