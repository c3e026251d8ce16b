//! CRC-32/ISO-HDLC (the zlib `crc32`), the one CRC of the format: the ring header's
//! `static_crc` ([`crate::ring::HEADER_CRC`] names the algorithm) and the UART framing's
//! CRCs. One implementation per kind of target, chosen for size on bare metal.

/// CRC-32/ISO-HDLC: poly 0x04C11DB7 reflected, init and xorout 0xFFFFFFFF.
#[cfg(not(target_os = "none"))]
static CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// A running CRC-32/ISO-HDLC. On the host (and hosted targets) the `crc` crate's
/// 256-entry table; on bare-metal targets (`target_os = "none"`: firmware, a kernel)
/// bit by bit in one small out-of-line loop, so that a dump carries neither the 1 KiB
/// table nor the crate's unrolled table-free loop (issue 15: the CRC cost 1,028 B of
/// table in a FreeRTOS image, and the ring header's CRC another copy; the crate's `NoTable` loop is 1.5 KiB on thumbv7m). About
/// 8 times slower per byte, which a UART sending 10 bits per byte hides. Both give the
/// crate's values (`crc_impls_agree`).
pub(crate) struct Crc32(
    #[cfg(not(target_os = "none"))] crc::Digest<'static, u32>,
    #[cfg(target_os = "none")] u32,
);

impl Crc32 {
    pub(crate) fn new() -> Self {
        #[cfg(not(target_os = "none"))]
        return Crc32(CRC32.digest());
        #[cfg(target_os = "none")]
        Crc32(!0)
    }

    #[inline(never)]
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        #[cfg(not(target_os = "none"))]
        self.0.update(bytes);
        #[cfg(target_os = "none")]
        {
            self.0 = crc32_bitwise(self.0, bytes);
        }
    }

    pub(crate) fn finalize(self) -> u32 {
        #[cfg(not(target_os = "none"))]
        return self.0.finalize();
        #[cfg(target_os = "none")]
        !self.0
    }
}

/// The reflected CRC-32 register (polynomial 0xEDB88320) after `bytes`, one bit at a
/// time.
#[cfg_attr(not(any(test, target_os = "none")), allow(dead_code))]
pub(crate) fn crc32_bitwise(mut crc: u32, bytes: &[u8]) -> u32 {
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xedb8_8320 & (crc & 1).wrapping_neg());
        }
    }
    crc
}

/// The CRC of `bytes`.
pub(crate) fn crc_of(bytes: &[u8]) -> u32 {
    let mut digest = Crc32::new();
    digest.update(bytes);
    digest.finalize()
}
