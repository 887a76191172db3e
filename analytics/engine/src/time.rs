//! Ticks to wall time (reference §5): `start_time + (ticks − start_ticks) / frequency`.

use chrono::{DateTime, Utc};

/// An inclusive query time range, in UTC nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub begin_ns: i64,
    pub end_ns: i64,
}

impl TimeRange {
    pub fn new(begin: DateTime<Utc>, end: DateTime<Utc>) -> Self {
        Self { begin_ns: to_ns(begin), end_ns: to_ns(end) }
    }

    pub fn contains(&self, ns: i64) -> bool {
        ns >= self.begin_ns && ns <= self.end_ns
    }

    pub fn overlaps(&self, begin_ns: i64, end_ns: i64) -> bool {
        begin_ns <= self.end_ns && end_ns >= self.begin_ns
    }

    pub fn begin(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_nanos(self.begin_ns)
    }

    pub fn end(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_nanos(self.end_ns)
    }
}

pub fn to_ns(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(if t.timestamp() < 0 { i64::MIN } else { i64::MAX })
}

/// Converts a process's absolute event ticks to UTC nanoseconds.
#[derive(Debug, Clone, Copy)]
pub struct TickConverter {
    start_ns: i64,
    start_ticks: i64,
    frequency: f64,
    /// `1e9 / frequency`: a multiply per event instead of a division.
    ns_per_tick: f64,
}

impl TickConverter {
    /// `tsc_frequency ≤ 0` means the producer did not know it: estimate it from the latest block,
    /// whose `end_ticks` (relative to process start) were sampled together with `end_time`.
    pub fn new(start_time: DateTime<Utc>, start_ticks: i64, tsc_frequency: i64, latest_block: Option<(DateTime<Utc>, i64)>) -> Self {
        let start_ns = to_ns(start_time);
        let frequency = if tsc_frequency > 0 {
            tsc_frequency as f64
        } else {
            match latest_block {
                Some((end_time, end_ticks)) if to_ns(end_time) > start_ns && end_ticks > 0 => {
                    end_ticks as f64 * 1e9 / (to_ns(end_time) - start_ns) as f64
                }
                _ => 1e9,
            }
        };
        Self { start_ns, start_ticks, frequency, ns_per_tick: 1e9 / frequency }
    }

    /// Absolute ticks (event `time` members) to UTC nanoseconds.
    pub fn ticks_to_ns(&self, ticks: i64) -> i64 {
        self.delta_to_ns(ticks.wrapping_sub(self.start_ticks))
    }

    /// Ticks relative to process start (block `begin_ticks`/`end_ticks`) to UTC nanoseconds.
    pub fn delta_to_ns(&self, delta: i64) -> i64 {
        let ns = delta as f64 * self.ns_per_tick;
        // Rounds half away from zero like `f64::round`, without its libm call (once per event).
        self.start_ns.saturating_add((ns + 0.5f64.copysign(ns)) as i64)
    }

    /// A tick count as seconds (integer metrics whose unit is `ticks`).
    pub fn ticks_to_seconds(&self, ticks: f64) -> f64 {
        ticks / self.frequency
    }
}
