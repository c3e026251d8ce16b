//! `--probe CHIP`: target memory read through an SWD/JTAG debug probe with probe-rs,
//! while the target runs (built with the `probe` feature).
//!
//! A probe reads RAM through the chip's memory access port without stopping the core,
//! so this back end does not halt: the reader races the writer, and the reclaim rule
//! of [`crate::live`] (FORMAT.md section 7.2) decides which copied blocks are kept.
//! Everything but the reads is probe-rs's: the chip list, the probe list and its
//! `VID:PID[:SERIAL]` selector, the wire protocol, the speed and attaching (under
//! reset or not), as `probe-rs run` and `cargo embed` do them.
//!
//! Without the `probe` feature the configuration still parses (so `--probe` is
//! documented in every build) and [`check`] says how to build the feature.

use std::fmt;

/// The wire protocol between probe and chip (`--protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Serial Wire Debug (ARM).
    Swd,
    /// JTAG.
    Jtag,
}

impl std::str::FromStr for Protocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "swd" => Ok(Protocol::Swd),
            "jtag" => Ok(Protocol::Jtag),
            _ => Err(format!("{s}: not a wire protocol (swd or jtag)")),
        }
    }
}

/// How to reach a target through a debug probe (`--probe` and its options).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeConfig {
    /// The chip, as probe-rs names it (`probe-rs chip list`), e.g. `nRF52840_xxAA`.
    pub chip: String,
    /// Which probe, `VID:PID[:SERIAL]` (hex ids, as `probe-rs list` shows them);
    /// `None`: the only probe connected.
    pub selector: Option<String>,
    /// Wire speed in kHz (`None`: the probe's default).
    pub speed_khz: Option<u32>,
    /// Wire protocol (`None`: the probe's default, SWD on ARM probes).
    pub protocol: Option<Protocol>,
    /// Attach with the reset line asserted (for a chip whose debug pins the firmware
    /// remaps or puts to sleep). The chip restarts: the capture sees its start-up.
    pub under_reset: bool,
    /// The core whose view of memory is read (0 on single-core chips).
    pub core: usize,
}

impl fmt::Display for ProbeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "probe {}", self.chip)?;
        if let Some(s) = &self.selector {
            write!(f, " ({s})")?;
        }
        Ok(())
    }
}

#[cfg(not(feature = "probe"))]
const NOT_BUILT: &str = "this tracemark was built without probe support \
     (build it with `cargo install --path decoder/cli --features probe`, Rust 1.89 or later)";

/// Checks what can be checked without hardware: the chip is one probe-rs knows and
/// the selector parses. The error is one line for the user.
#[cfg(not(feature = "probe"))]
pub fn check(_config: &ProbeConfig) -> Result<(), String> {
    Err(NOT_BUILT.to_owned())
}

/// Opens the probe and attaches to the chip (not built: always an error).
#[cfg(not(feature = "probe"))]
pub fn open(_config: &ProbeConfig) -> Result<Box<dyn crate::memory::TargetMemory>, String> {
    Err(NOT_BUILT.to_owned())
}

#[cfg(feature = "probe")]
pub use imp::{check, open, Probe};

#[cfg(feature = "probe")]
mod imp {
    use std::io;

    use probe_rs::config::{Registry, RegistryError};
    use probe_rs::probe::list::Lister;
    use probe_rs::probe::{DebugProbeSelector, WireProtocol};
    use probe_rs::{MemoryInterface, Permissions, Session};

    use super::{ProbeConfig, Protocol};
    use crate::memory::TargetMemory;

    /// A chip attached through a debug probe; reads do not halt it.
    pub struct Probe {
        session: Session,
        core: usize,
    }

    impl std::fmt::Debug for Probe {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Probe")
                .field("chip", &self.session.target().name)
                .field("core", &self.core)
                .finish()
        }
    }

    /// The selector, parsed by probe-rs (`VID:PID[:SERIAL]`, hex ids).
    fn selector(text: &str) -> Result<DebugProbeSelector, String> {
        text.parse().map_err(|e| {
            format!("--probe-selector {text}: {e} (e.g. 1366:1015 or 0d28:0204:SERIAL)")
        })
    }

    fn unknown_chip(registry: &Registry, chip: &str, e: &RegistryError) -> String {
        // The chips whose names start like this one, from the longest prefix that
        // matches any (what the user probably meant).
        let near = (3..=chip.len())
            .rev()
            .filter(|&n| chip.is_char_boundary(n))
            .map(|n| registry.search_chips(&chip[..n]))
            .find(|v| !v.is_empty())
            .unwrap_or_default();
        let e = e.to_string();
        let mut line = format!(
            "--probe {chip}: {}; `probe-rs chip list` lists the chips",
            e.trim_end_matches('.')
        );
        if !near.is_empty() {
            let shown: Vec<&str> = near.iter().take(6).map(String::as_str).collect();
            let more = if near.len() > shown.len() {
                ", ..."
            } else {
                ""
            };
            line.push_str(&format!(" (close: {}{more})", shown.join(", ")));
        }
        line
    }

    /// Checks the chip name against probe-rs's built-in list and parses the selector.
    pub fn check(config: &ProbeConfig) -> Result<(), String> {
        let registry = Registry::from_builtin_families();
        registry
            .get_target_by_name(&config.chip)
            .map_err(|e| unknown_chip(&registry, &config.chip, &e))?;
        if let Some(s) = &config.selector {
            selector(s)?;
        }
        Ok(())
    }

    /// Opens the probe (the selected one, or the only one connected), sets its speed
    /// and protocol, and attaches to the chip, under reset if asked.
    pub fn open(config: &ProbeConfig) -> Result<Box<dyn TargetMemory>, String> {
        check(config)?;
        let lister = Lister::new();
        let mut probe = match &config.selector {
            Some(s) => lister
                .open(selector(s)?)
                .map_err(|e| format!("probe {s}: {e}"))?,
            None => {
                let found = lister.list_all();
                match found.as_slice() {
                    [] => {
                        return Err("no debug probe found (is it plugged in, and may this user \
                             open it? see probe-rs's udev rules)"
                            .to_owned())
                    }
                    [one] => one.open().map_err(|e| format!("probe {one}: {e}"))?,
                    many => {
                        let list: Vec<String> = many
                            .iter()
                            .map(|p| DebugProbeSelector::from(p).to_string())
                            .collect();
                        return Err(format!(
                            "{} debug probes found ({}): choose one with --probe-selector",
                            many.len(),
                            list.join(", ")
                        ));
                    }
                }
            }
        };
        if let Some(p) = config.protocol {
            let wire = match p {
                Protocol::Swd => WireProtocol::Swd,
                Protocol::Jtag => WireProtocol::Jtag,
            };
            probe
                .select_protocol(wire)
                .map_err(|e| format!("--protocol {wire}: {e}"))?;
        }
        if let Some(khz) = config.speed_khz {
            probe
                .set_speed(khz)
                .map_err(|e| format!("--speed {khz}: {e}"))?;
        }
        let chip = config.chip.as_str();
        let session = if config.under_reset {
            probe.attach_under_reset(chip, Permissions::default())
        } else {
            probe.attach(chip, Permissions::default())
        }
        .map_err(|e| format!("attaching to {chip}: {e}"))?;
        let mut p = Probe {
            session,
            core: config.core,
        };
        // A core that does not exist fails now, not at the first poll.
        p.session
            .core(p.core)
            .map_err(|e| format!("--core {}: {e}", config.core))?;
        Ok(Box::new(p))
    }

    impl TargetMemory for Probe {
        fn read(&mut self, addr: u64, buf: &mut [u8]) -> io::Result<()> {
            // The memory access port reads while the core runs: no halt.
            let mut core = self.session.core(self.core).map_err(io::Error::other)?;
            core.read_8(addr, buf).map_err(io::Error::other)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn config(chip: &str) -> ProbeConfig {
            ProbeConfig {
                chip: chip.to_owned(),
                selector: None,
                speed_khz: None,
                protocol: None,
                under_reset: false,
                core: 0,
            }
        }

        #[test]
        fn a_known_chip_passes_the_check_an_unknown_one_names_the_chip_list() {
            assert_eq!(check(&config("nRF52840_xxAA")), Ok(()));
            // Case does not matter to probe-rs.
            assert_eq!(check(&config("stm32f411retx")), Ok(()));
            let e = check(&config("NOCHIP")).unwrap_err();
            assert!(e.starts_with("--probe NOCHIP: "), "{e}");
            assert!(e.contains("probe-rs chip list"), "{e}");
            assert!(!e.contains('\n'), "{e}");
            // A misspelt chip gets the chips that start like it.
            let e = check(&config("nRF52840_xxAB")).unwrap_err();
            assert!(e.contains("close: nRF52840_xxAA"), "{e}");
        }

        #[test]
        fn the_selector_is_vid_pid_and_an_optional_serial() {
            let with = |s: &str| ProbeConfig {
                selector: Some(s.to_owned()),
                ..config("nRF52840_xxAA")
            };
            assert_eq!(check(&with("1366:1015")), Ok(()));
            assert_eq!(check(&with("0d28:0204:000440112138")), Ok(()));
            for bad in ["1366", "zz:1015", "1366:10150"] {
                let e = check(&with(bad)).unwrap_err();
                assert!(e.starts_with(&format!("--probe-selector {bad}: ")), "{e}");
                assert!(!e.contains('\n'), "{e}");
            }
        }
    }
}
