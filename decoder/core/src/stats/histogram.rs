//! The duration histogram of `tracemark stats`: exact below 65536 ticks, buckets 1/1024
//! of a power of two wide above (see the module documentation of [`crate::stats`]).
//!
//! Hand-written on purpose: `hdrhistogram` (7.5.4, the newest for our rust-version 1.85)
//! was measured in its place (BENCHMARKS.md, "stats histogram: hdrhistogram measured").
//! With 3 significant figures (its usual setting, our resolution above 65536) it is not
//! exact on kernel-sim's durations (p90 2300 for 2301); 4 figures (exact below 32768) gave
//! identical output but 4 % more user CPU on the 90M-record dump (outside the noise);
//! 5 figures, needed to keep our exactness below 65536, cost 5 % CPU and about 75 MB more
//! peak memory. Its `saturating_record` also clamps instead of growing an auto-resizing
//! histogram. `tests/tests/cli_truth.rs` checks the percentiles against exact ones.

const EXACT: usize = 1 << 16;
const SUB_BITS: u32 = 10;
const BUCKETS: usize = EXACT + (64 - 16) * (1 << SUB_BITS);

/// Kernel-exit durations of one syscall (see the module documentation).
#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    n: u64,
    sum: u128,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            n: 0,
            sum: 0,
            max: 0,
        }
    }
}

impl Histogram {
    #[inline]
    fn bucket(v: u64) -> usize {
        if v < EXACT as u64 {
            v as usize
        } else {
            let e = 63 - v.leading_zeros();
            let m = (v >> (e - SUB_BITS)) as usize & ((1 << SUB_BITS) - 1);
            EXACT + (e as usize - 16) * (1 << SUB_BITS) + m
        }
    }

    fn lower_bound(b: usize) -> u64 {
        if b < EXACT {
            b as u64
        } else {
            let e = ((b - EXACT) >> SUB_BITS) as u32 + 16;
            let m = ((b - EXACT) & ((1 << SUB_BITS) - 1)) as u64;
            (1u64 << e) | (m << (e - SUB_BITS))
        }
    }

    /// Adds a duration.
    #[inline]
    pub fn add(&mut self, v: u64) {
        self.counts[Self::bucket(v)] += 1;
        self.n += 1;
        self.sum += u128::from(v);
        self.max = self.max.max(v);
    }

    /// Adds all of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.n += other.n;
        self.sum += other.sum;
        self.max = self.max.max(other.max);
    }

    /// Number of durations.
    pub fn len(&self) -> u64 {
        self.n
    }

    /// Whether it holds no duration.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The sum of the values added (exact).
    pub fn sum(&self) -> u128 {
        self.sum
    }

    /// The largest value added (exact; 0 if none).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The nearest-rank `p`-th percentile (0 if empty).
    pub fn percentile(&self, p: f64) -> u64 {
        if self.n == 0 {
            return 0;
        }
        let rank = ((p / 100.0 * self.n as f64).ceil() as u64).clamp(1, self.n);
        if rank == self.n {
            return self.max;
        }
        let mut seen = 0u64;
        for (b, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::lower_bound(b).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_exact_below_65536_and_close_above() {
        let mut h = Histogram::default();
        for v in 1..=100 {
            h.add(v);
        }
        assert_eq!(h.percentile(50.0), 50);
        assert_eq!(h.percentile(90.0), 90);
        assert_eq!(h.percentile(99.0), 99);
        assert_eq!(h.percentile(100.0), 100);
        let mut h = Histogram::default();
        h.add(1_000_000_007);
        let p = h.percentile(50.0);
        assert!((1_000_000_007 - 1_000_000_007 / 1024..=1_000_000_007).contains(&p));
        h.add(u64::MAX);
        assert_eq!(h.percentile(100.0), u64::MAX);
        for b in [0usize, 5, EXACT, EXACT + 77, BUCKETS - 1] {
            assert_eq!(Histogram::bucket(Histogram::lower_bound(b)), b);
        }
    }
}
