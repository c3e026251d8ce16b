//! Position and lap arithmetic of the writer, as pure functions of the ring's geometry.
//!
//! A position word is `seq << shift | offset` ([`Geometry::split`]). A sequence number
//! `seq` lives in slot `seq % block_count`; the writer must not divide (a division is a
//! library call on thumbv6m and tens of cycles elsewhere), so the slot comes from a
//! multiplication by a reciprocal fixed at initialisation ([`SlotDivisor`]). The fast
//! path maps positions to memory through a *lap* word ([`lap_of`]).
//!
//! Everything here is exhaustively tested over small geometries (below), as bbqueue and
//! heapless test their index arithmetic.

use tracemark_format::ring::Geometry;

/// `seq % block_count` without a division, for every `seq` below `2^24` (every
/// sequence number: blocks are at least 256 bytes, so `seq < 2^(32 - 8)`).
///
/// Granlund and Montgomery's round-up method ("Division by invariant integers using
/// multiplication", 1994, theorem 4.2): with `N = 24`, `l = ceil(log2 d)`, `k = N + l`
/// and `m = floor(2^k / d) + 1`, `2^k < m * d <= 2^k + 2^l`, so
/// `floor(n * m / 2^k) = floor(n / d)` for all `n < 2^N`. `d <= 2^23` (a geometry has at
/// most `2^(32 - shift) / 2` blocks), so `m <= 2^(N + 1) + 1` fits a `u32` and `n * m`
/// fits a `u64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SlotDivisor {
    d: u32,
    m: u32,
    k: u32,
}

/// Sequence numbers are below `2^SEQ_BITS`.
const SEQ_BITS: u32 = 24;

impl SlotDivisor {
    /// The divisor for `d` blocks; `None` unless `1 <= d <= 2^23`. Divides (once, at
    /// initialisation, never on a recording path).
    pub(crate) const fn new(d: u32) -> Option<SlotDivisor> {
        if d == 0 || d > 1 << (SEQ_BITS - 1) {
            return None;
        }
        let l = 32 - (d - 1).leading_zeros(); // ceil(log2 d); 0 for d == 1
        let k = SEQ_BITS + l;
        Some(SlotDivisor {
            d,
            m: pow2_div(k, d) + 1,
            k,
        })
    }

    /// `seq % d` for `seq < 2^24` (no division, no panic path).
    #[inline(always)]
    pub(crate) const fn slot(&self, seq: u32) -> u32 {
        let q = ((seq as u64 * self.m as u64) >> self.k) as u32;
        seq.wrapping_sub(q.wrapping_mul(self.d))
    }
}

/// `floor(2^k / d)` by long division, one quotient bit per step, in 32-bit registers:
/// `2^k` needs 48 bits, and a `u64` division would link a 64-bit division routine
/// (866 B on thumbv7m) into every firmware's initialisation (issue 15). Needs `d >= 1`
/// and a quotient below `2^32` (here at most `2^25`: `d > 2^(k - 25)`); the remainder
/// stays below `d <= 2^23`, so `r << 1 | 1` fits.
const fn pow2_div(k: u32, d: u32) -> u32 {
    let (mut q, mut r) = (0u32, 0u32);
    let mut bit = k + 1;
    while bit > 0 {
        bit -= 1;
        r = r << 1 | (bit == k) as u32;
        q <<= 1;
        if r >= d {
            r -= d;
            q |= 1;
        }
    }
    q
}

/// The lap word for sequence number `seq` in slot `slot` (see `Ring::lap`):
/// `slot * block_size - seq * block_size`, wrapping. For every position `pos` of the same
/// lap (`pos >> shift` in `seq - slot .. seq - slot + block_count`), `pos + lap` (wrapping)
/// is `slot(pos) * block_size + offset(pos)`, below `area`; for a position of any other
/// lap it is `area` or more (laps tile the position space: `seq_modulus` is a multiple of
/// `block_count`, and `seq_modulus * block_size <= 2^32`).
#[inline(always)]
pub(crate) const fn lap_of(g: &Geometry, seq: u32, slot: u32) -> u32 {
    (slot << g.shift).wrapping_sub(g.join(seq, 0))
}

/// The sequence number that used the slot of `seq` one lap before it (`block_count`
/// is below `seq_modulus`, so no `%`).
#[inline(always)]
pub(crate) const fn previous_lap(g: &Geometry, seq: u32) -> u32 {
    if seq >= g.block_count {
        seq - g.block_count
    } else {
        g.seq_modulus - (g.block_count - seq)
    }
}

/// The slot of the sequence number before the one in `slot` ([`Geometry::next_seq`]
/// steps to the next slot: `seq_modulus` is a multiple of `block_count`).
#[inline(always)]
pub(crate) const fn slot_before(g: &Geometry, slot: u32) -> u32 {
    if slot == 0 {
        g.block_count - 1
    } else {
        slot - 1
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use tracemark_format::ring::{MAX_BLOCK_SIZE, MIN_BLOCK_SIZE};

    /// The long division gives the multiplier the 64-bit division gave.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn multiplier_is_the_64_bit_quotient_plus_one() {
        let top = 1u32 << (SEQ_BITS - 1);
        let ds = (1..=70_000u32)
            .chain((0..2000).map(|i| top - i * 4093))
            .chain([top]);
        for d in ds {
            let s = SlotDivisor::new(d).unwrap();
            assert_eq!(u64::from(s.m), (1u64 << s.k) / u64::from(d) + 1, "d = {d}");
        }
        assert_eq!(SlotDivisor::new(top + 1), None);
    }

    /// Every divisor against every sequence number of the largest space (`2^24`,
    /// 256-byte blocks) would be 2^47 checks. The error of the method grows with `n`, so:
    /// divisors up to 64 against the bottom and top 2^16 of the space, then every divisor
    /// to 4096 and the edge cases of every power of two to 2^23 around every multiple
    /// near both ends.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn slot_is_the_remainder() {
        let top = 1u32 << SEQ_BITS;
        for d in 1..=64u32 {
            let s = SlotDivisor::new(d).unwrap();
            for n in (0..1 << 16).chain(top - (1 << 16)..top) {
                assert_eq!(s.slot(n), n % d, "{n} % {d}");
            }
        }
        let mut ds: std::vec::Vec<u32> = (65..=4096).collect();
        for b in 12..=23 {
            ds.extend([
                (1 << b) - 1,
                1 << b,
                (1 << b) + 1,
                3 << (b - 2),
                5 << (b - 3),
            ]);
        }
        for d in ds.into_iter().filter(|&d| d <= 1 << 23) {
            let s = SlotDivisor::new(d).unwrap();
            let top = top - 1;
            // Around every multiple of `d` near both ends, and the top of the space.
            for q in (0..64).chain((top / d).saturating_sub(64)..=top / d) {
                for n in (q * d).saturating_sub(2)..=(q * d).saturating_add(2).min(top) {
                    assert_eq!(s.slot(n), n % d, "{n} % {d}");
                }
            }
            assert_eq!(s.slot(top), top % d);
        }
        assert_eq!(SlotDivisor::new(0), None);
        assert_eq!(SlotDivisor::new((1 << 23) + 1), None);
    }

    /// The sequence numbers to check for geometry `g`: all of them when the space is
    /// small (blocks of 32 KiB or more: at most 2^17), otherwise the first and last
    /// thousand and those around every lap boundary in between, sampled.
    fn seqs(g: &Geometry) -> std::vec::Vec<u32> {
        if g.seq_modulus <= 1 << 17 {
            return (0..g.seq_modulus).collect();
        }
        let mut v: std::vec::Vec<u32> = (0..1000)
            .chain(g.seq_modulus - 1000..g.seq_modulus)
            .collect();
        let laps = g.seq_modulus / g.block_count;
        for lap in (0..laps).step_by((laps / 512).max(1) as usize) {
            let first = lap * g.block_count;
            v.extend([
                first.saturating_sub(1),
                first,
                first + 1,
                first + g.block_count - 1,
            ]);
        }
        v
    }

    /// Every geometry with blocks of 256 bytes to 64 KiB and 2 to 16 blocks: slots,
    /// previous-lap sequence numbers and the slot before the next agree with `%`; the lap word maps
    /// every position of its lap to its memory offset, and every other position (of the
    /// whole space, for the small spaces) outside the blocks.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn lap_and_slot_arithmetic_over_small_geometries() {
        let mut size = MIN_BLOCK_SIZE;
        while size <= MAX_BLOCK_SIZE {
            for count in 2..=16u32 {
                let g = Geometry::new(size, count).unwrap();
                let s = SlotDivisor::new(count).unwrap();
                let area = count * size;
                let seqs = seqs(&g);
                for &seq in &seqs {
                    let slot = s.slot(seq);
                    assert_eq!(slot, g.slot(seq));
                    let prev = previous_lap(&g, seq);
                    assert_eq!(g.slot(prev), slot);
                    assert_eq!(g.distance(prev, seq), count);
                    assert_eq!(slot_before(&g, s.slot(g.next_seq(seq))), slot);
                }
                // The first, second, a middle and the last lap of the space.
                let laps = g.seq_modulus / count;
                for lap_index in [0, 1, laps / 2, laps - 1] {
                    let first = lap_index * count;
                    let lap = lap_of(&g, first + 1, 1);
                    assert_eq!(lap, lap_of(&g, first, 0), "one lap, one word");
                    for &seq in &seqs {
                        for offset in [0, 1, size - 1] {
                            let rel = g.join(seq, offset).wrapping_add(lap);
                            if (first..first + count).contains(&seq) {
                                assert_eq!(rel, (seq - first) * size + offset);
                            } else {
                                assert!(rel >= area, "seq {seq} lap {lap_index}");
                            }
                        }
                    }
                }
            }
            size <<= 1;
        }
    }
}
