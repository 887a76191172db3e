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
    /// Deltas up to this size (either sign) convert without saturating anywhere: one compare per
    /// event instead of the checks of a saturating cast and a saturating add.
    safe_delta: u64,
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
        let ns_per_tick = 1e9 / frequency;
        // |ns| stays below 2^62 and start_ns + ns within i64 (start_ns is a wall-clock time: far
        // from the ends of the range), with a margin for the float rounding.
        let max_ns = (1u64 << 62).min(i64::MAX.unsigned_abs().saturating_sub(start_ns.unsigned_abs())) as f64 / 2.0;
        let safe_delta = if ns_per_tick.is_finite() && ns_per_tick > 0.0 { (max_ns / ns_per_tick) as u64 } else { 0 };
        Self { start_ns, start_ticks, frequency, ns_per_tick, safe_delta }
    }

    /// Absolute ticks (event `time` members) to UTC nanoseconds.
    #[inline(always)]
    pub fn ticks_to_ns(&self, ticks: i64) -> i64 {
        self.delta_to_ns(ticks.wrapping_sub(self.start_ticks))
    }

    /// Ticks relative to process start (block `begin_ticks`/`end_ticks`) to UTC nanoseconds.
    #[inline(always)]
    pub fn delta_to_ns(&self, delta: i64) -> i64 {
        let ns = delta as f64 * self.ns_per_tick;
        if delta.unsigned_abs() <= self.safe_delta {
            // SAFETY: |ns| + 0.5 < 2^62 fits an i64, and so does the sum (see `safe_delta`).
            return self.start_ns + unsafe { (ns + 0.5f64.copysign(ns)).to_int_unchecked::<i64>() };
        }
        // Rounds half away from zero like `f64::round`, without its libm call (once per event).
        self.start_ns.saturating_add((ns + 0.5f64.copysign(ns)) as i64)
    }

    /// A tick count as seconds (integer metrics whose unit is `ticks`).
    pub fn ticks_to_seconds(&self, ticks: f64) -> f64 {
        ticks / self.frequency
    }
}

#[cfg(test)]
mod tests {
    use super::TickConverter;
    use chrono::DateTime;

    /// `delta * 1e9 / f` rounded half away from zero, in exact integers.
    fn exact(delta: i64, f: i64) -> i64 {
        let n = delta as i128 * 1_000_000_000;
        let q = (2 * n.abs() + f as i128) / (2 * f as i128);
        (if n < 0 { -q } else { q }).clamp(i64::MIN as i128, i64::MAX as i128) as i64
    }

    #[test]
    fn ticks_become_the_nearest_nanosecond() {
        let deltas = [0, 1, 5, 7, 12, 1 << 20, (1 << 29) - 1, -7, -1_234_567];
        for f in [1_000_000_000, 2_400_000_000, 3_000_000, 2_899_999_999, 10_000_000, 1_001] {
            let c = TickConverter::new(DateTime::UNIX_EPOCH, 0, f, None);
            for d in deltas {
                assert_eq!(c.delta_to_ns(d), exact(d, f), "{d} ticks at {f} Hz");
            }
            // An hour and 30 days of uptime (and a minute before the start): within 1 ns.
            for d in [f * 3600, f * 2_592_000, -f * 60] {
                assert!((c.delta_to_ns(d) - exact(d, f)).abs() <= 1, "{d} ticks at {f} Hz");
            }
        }
    }

    #[test]
    fn ticks_are_relative_to_the_process_start_and_saturate() {
        let start = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let c = TickConverter::new(start, 1_000, 2_000_000_000, None);
        assert_eq!(c.ticks_to_ns(1_000 + 4_000_000_001), 1_700_000_002_000_000_001);
        let slow = TickConverter::new(DateTime::UNIX_EPOCH, 0, 1, None);
        assert_eq!(slow.ticks_to_ns(i64::MAX), i64::MAX);
        assert_eq!(slow.ticks_to_ns(i64::MIN), i64::MIN);
        // The fast path's bound: deltas on either side of it, and starts at the ends of time.
        // Past it, the saturating cast and add: the same rounding, then the ends of the range.
        let checked = |c: &TickConverter, d: i64| {
            let ns = d as f64 * c.ns_per_tick;
            c.start_ns.saturating_add((ns + 0.5f64.copysign(ns)) as i64)
        };
        let near = TickConverter::new(start, 0, 3_000_000_000, None);
        let s = near.safe_delta as i64;
        for d in [s - 1, s, s + 1, -s, -s - 1, i64::MAX, i64::MIN + 1, i64::MIN] {
            assert_eq!(near.delta_to_ns(d), checked(&near, d), "{d} ticks at 3 GHz");
        }
        for start in [DateTime::<chrono::Utc>::MIN_UTC, DateTime::<chrono::Utc>::MAX_UTC] {
            let c = TickConverter::new(start, 0, 1_000_000_000, None);
            for d in [i64::MIN, -1, 0, 1, i64::MAX] {
                assert_eq!(c.delta_to_ns(d), checked(&c, d), "{d} ticks from {start}");
            }
        }
        // Estimated from a block: 1 tick per 4 ns.
        let end = DateTime::from_timestamp(1_700_000_001, 0).unwrap();
        let est = TickConverter::new(start, 0, 0, Some((end, 250_000_000)));
        assert_eq!(est.ticks_to_ns(1_000), 1_700_000_000_000_004_000);
    }
}
