//! Clock ticks to nanoseconds.

/// `ticks` of a `hz` clock in nanoseconds (`ticks` when `hz` is 0), saturating.
#[inline]
pub fn ticks_to_ns(ticks: u64, hz: u64) -> u64 {
    match hz {
        0 | 1_000_000_000 => ticks,
        _ if 1_000_000_000 % hz == 0 => ticks.saturating_mul(1_000_000_000 / hz),
        _ => {
            let ns = u128::from(ticks) * 1_000_000_000 / u128::from(hz);
            u64::try_from(ns).unwrap_or(u64::MAX)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_to_ns_handles_every_clock() {
        assert_eq!(ticks_to_ns(123, 0), 123);
        assert_eq!(ticks_to_ns(123, 1_000_000_000), 123);
        assert_eq!(ticks_to_ns(123, 1_000_000), 123_000);
        assert_eq!(ticks_to_ns(3, 3_000_000_000), 1);
        assert_eq!(ticks_to_ns(u64::MAX, 1), u64::MAX);
        // 48 MHz: 48 ticks are 1 us.
        assert_eq!(ticks_to_ns(48, 48_000_000), 1000);
    }
}
