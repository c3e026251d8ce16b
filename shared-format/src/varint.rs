//! Unsigned LEB128 variable-length integers, the building block of every record.
//!
//! A value is written seven bits at a time, least significant group first; every byte
//! but the last has its top bit set. A `u64` takes 1 to [`MAX_VARINT_LEN`] bytes.

/// The longest encoding of a `u64`: ten bytes.
pub const MAX_VARINT_LEN: usize = 10;

/// Why a varint could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarintError {
    /// The input ended before the last byte of the varint.
    Truncated,
    /// More than ten bytes, or a tenth byte with bits beyond bit 63.
    Overflow,
}

/// The number of bytes [`write()`] uses for `value`.
#[inline]
pub const fn encoded_len(value: u64) -> usize {
    // `ceil(bits / 7)` for `bits` in 1..=64 (0 takes one byte) as `(9 * bits + 64) / 64`,
    // which is exact in that range: no branches, no division, a few instructions even
    // on 32-bit cores.
    let bits = 64 - (value | 1).leading_zeros() as usize;
    (bits * 9 + 64) / 64
}

/// The number of bytes a `u32` `value` takes, computed in 32-bit arithmetic:
/// `ceil(bits / 7)` as `(9 * bits + 64) / 64` with `bits = 32 - clz(value)`, folded into
/// `(352 - 9 * clz(value)) / 64` (one byte for 0). Branch-free; writers' fast paths use it.
#[inline(always)]
pub const fn encoded_len_u32(value: u32) -> u32 {
    (352 - 9 * value.leading_zeros()) >> 6
}

/// Writes a `u32` `value` with `store(position, byte)` at positions `at`, `at + 1`, ...;
/// returns the position after the last byte ([`encoded_len_u32`] bytes). For writers
/// that store into memory they address themselves (the encoder's ring): the loop keeps
/// the position in a register, as a hand-written one would.
#[inline(always)]
pub fn write_u32_at(mut at: usize, mut value: u32, mut store: impl FnMut(usize, u8)) -> usize {
    while value >= 0x80 {
        store(at, value as u8 | 0x80);
        at += 1;
        value >>= 7;
    }
    store(at, value as u8);
    at + 1
}

/// Writes `value` at `out[at..]` and returns the position after it.
///
/// The caller guarantees `out` has room for [`MAX_VARINT_LEN`] bytes after `at`
/// (record buffers are [`crate::record::MAX_RECORD_LEN`] long and records are
/// bounded well below that); a shorter buffer panics, which is a caller bug.
#[inline(always)]
pub fn write(out: &mut [u8], mut at: usize, mut value: u64) -> usize {
    while value >= 0x80 {
        out[at] = (value as u8) | 0x80;
        value >>= 7;
        at += 1;
    }
    out[at] = value as u8;
    at + 1
}

/// Writes `value` through `put`, one byte at a time.
#[inline(always)]
pub fn write_with(put: &mut impl FnMut(u8), mut value: u64) {
    // 32-bit arithmetic when it suffices: most values do, and on 32-bit cores every
    // 64-bit shift and compare costs several instructions.
    if let Ok(mut small) = u32::try_from(value) {
        while small >= 0x80 {
            put((small as u8) | 0x80);
            small >>= 7;
        }
        put(small as u8);
        return;
    }
    while value >= 0x80 {
        put((value as u8) | 0x80);
        value >>= 7;
    }
    put(value as u8);
}

/// Reads a varint from `input[at..]`; returns the value and the position after it.
#[inline(always)]
pub fn read(input: &[u8], at: usize) -> Result<(u64, usize), VarintError> {
    // Fast paths: most fields of most records are one or two bytes.
    match input.get(at) {
        Some(&b) if b < 0x80 => return Ok((u64::from(b), at + 1)),
        Some(&b0) => {
            if let Some(&b1) = input.get(at + 1) {
                if b1 < 0x80 {
                    return Ok((u64::from(b0 & 0x7f) | (u64::from(b1) << 7), at + 2));
                }
            }
        }
        None => return Err(VarintError::Truncated),
    }
    read_slow(input, at)
}

#[cold]
#[inline(never)]
fn read_slow(input: &[u8], at: usize) -> Result<(u64, usize), VarintError> {
    let mut value = 0u64;
    let mut shift = 0u32;
    let mut i = at;
    loop {
        let Some(&byte) = input.get(i) else {
            return Err(VarintError::Truncated);
        };
        i += 1;
        if shift == 63 && byte > 1 {
            return Err(VarintError::Overflow);
        }
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok((value, i));
        }
        shift += 7;
        if shift > 63 {
            return Err(VarintError::Overflow);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn u32_helpers_agree_with_the_u64_ones() {
        for bits in 0..=32u32 {
            for v in [
                0u32,
                1,
                (1u64 << bits).saturating_sub(1) as u32,
                (1u64 << bits).min(u64::from(u32::MAX)) as u32,
            ] {
                assert_eq!(encoded_len_u32(v) as usize, encoded_len(u64::from(v)));
                let mut a = [0u8; MAX_VARINT_LEN];
                let n = write_u32_at(0, v, |i, b| a[i] = b);
                let mut b = [0u8; MAX_VARINT_LEN];
                let m = write(&mut b, 0, u64::from(v));
                assert_eq!((n, &a[..n]), (m, &b[..m]));
            }
        }
    }

    #[test]
    fn boundaries_have_expected_lengths() {
        for (value, len) in [
            (0u64, 1usize),
            (127, 1),
            (128, 2),
            (16_383, 2),
            (16_384, 3),
            (u64::from(u32::MAX), 5),
            (u64::MAX, 10),
        ] {
            assert_eq!(encoded_len(value), len, "{value}");
            let mut buf = [0u8; MAX_VARINT_LEN];
            assert_eq!(write(&mut buf, 0, value), len);
            assert_eq!(read(&buf, 0), Ok((value, len)));
        }
    }

    #[test]
    fn rejects_truncated_and_overlong() {
        assert_eq!(read(&[0x80, 0x80], 0), Err(VarintError::Truncated));
        assert_eq!(read(&[], 0), Err(VarintError::Truncated));
        let too_long = [0xffu8; 11];
        assert_eq!(read(&too_long, 0), Err(VarintError::Overflow));
        let mut tenth_too_big = [0xffu8; 10];
        tenth_too_big[9] = 0x02;
        assert_eq!(read(&tenth_too_big, 0), Err(VarintError::Overflow));
    }

    proptest! {
        #[test]
        fn round_trips(value: u64) {
            let mut buf = [0u8; MAX_VARINT_LEN];
            let end = write(&mut buf, 0, value);
            prop_assert_eq!(end, encoded_len(value));
            prop_assert_eq!(read(&buf, 0), Ok((value, end)));
        }

        #[test]
        fn encoded_len_matches_every_bit_length(bits in 0u32..=64, noise: u64) {
            let value = if bits == 0 { 0 } else { (1u64 << (bits - 1)) | noise.checked_shr(65 - bits).unwrap_or(0) };
            let mut buf = [0u8; MAX_VARINT_LEN];
            prop_assert_eq!(encoded_len(value), write(&mut buf, 0, value));
        }

        #[test]
        fn never_panics_on_garbage(bytes: Vec<u8>) {
            let _ = read(&bytes, 0);
        }
    }
}
