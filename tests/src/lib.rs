//! Helpers shared by the tests of every host crate (`tracemark-decoder`,
//! `tracemark-cli` and the cross-crate tests in `tests/tests/`): ring images written by
//! the real encoder under a test clock. Each crate's test binary uses them as a
//! dev-dependency, so that the clock and the ring writer exist once.

use std::cell::Cell;

use tracemark::{Config, Mode, Tracer};
use tracemark_format::ring::RING_HEADER_LEN;
use zerocopy::IntoBytes;

/// A clock the test sets by hand.
#[derive(Debug, Default)]
pub struct TestClock(Cell<u64>);

impl TestClock {
    /// A clock showing `ticks`.
    pub fn new(ticks: u64) -> Self {
        TestClock(Cell::new(ticks))
    }

    /// The time now.
    pub fn get(&self) -> u64 {
        self.0.get()
    }

    /// Sets the time (backwards too: a clock that steps back).
    pub fn set(&self, ticks: u64) {
        self.0.set(ticks);
    }

    /// Moves the time `ticks` forward.
    pub fn advance(&self, ticks: u64) {
        self.0.set(self.0.get() + ticks);
    }
}

impl tracemark::Clock for &TestClock {
    fn now(&self) -> u64 {
        self.0.get()
    }
}

/// A tracer writing under a [`TestClock`].
pub type TestTracer<'m, 'c> = Tracer<'m, &'c TestClock>;

/// The bytes of a ring of `blocks` blocks of `config.block_size` bytes (after the ring
/// header), written by the real encoder: `script` drives the tracer and the clock,
/// which starts at `start`.
pub fn ring_image(
    config: &Config,
    blocks: usize,
    start: u64,
    script: impl FnOnce(&TestTracer<'_, '_>, &TestClock),
) -> Vec<u8> {
    let len = RING_HEADER_LEN + blocks * config.block_size as usize;
    // u64 words: the ring memory must be 8-byte aligned.
    let mut words = vec![0u64; len.div_ceil(8)];
    let bytes = words.as_mut_bytes();
    let clock = TestClock::new(start);
    {
        let t = Tracer::new(&mut bytes[..len], config, &clock).expect("a valid ring config");
        script(&t, &clock);
    }
    bytes[..len].to_vec()
}

/// The ring most CLI tests use: CPU `cpu`, `mode`, `blocks` blocks of `block_size`
/// bytes, a 1 GHz clock at 1000 ticks when `script` starts (see [`ring_image`]).
pub fn cpu_ring(
    cpu: u32,
    mode: Mode,
    block_size: u32,
    blocks: usize,
    script: impl FnOnce(&TestTracer<'_, '_>, &TestClock),
) -> Vec<u8> {
    let config = Config {
        mode,
        block_size,
        clock_hz: 1_000_000_000,
        cpu_id: cpu,
        ..Config::new()
    };
    ring_image(&config, blocks, 1000, script)
}

/// A console log with `payload` framed as dump `dump_id` (`@TM:` lines, see
/// `tracemark_format::uart`), each line behind some console text.
pub fn uart_log(dump_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut sink = |line: &[u8]| -> Result<(), ()> {
        out.extend_from_slice(b"[console] ");
        out.extend_from_slice(line);
        Ok(())
    };
    tracemark_format::uart::write_framed(dump_id, payload, 0, &mut sink)
        .expect("the sink never fails");
    out
}

/// Sets the format version in the ring header at the start of `ring` and re-seals the
/// static header's CRC, as a writer of that version would have.
pub fn set_version(ring: &mut [u8], version: u16) {
    use tracemark_format::ring::{offsets, HEADER_CRC, STATIC_HEADER_LEN};
    ring[offsets::VERSION..offsets::VERSION + 2].copy_from_slice(&version.to_le_bytes());
    let crc = HEADER_CRC.checksum(&ring[..STATIC_HEADER_LEN]);
    ring[offsets::STATIC_CRC..offsets::STATIC_CRC + 4].copy_from_slice(&crc.to_le_bytes());
}
