//! `tracemark capture`: record a console stream on bounded disk.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
use tracemark_capture::live::{self, GdbSource, Rings, Stub};
use tracemark_capture::probe::ProbeConfig;
use tracemark_capture::source::{Request, Source, Stop};
use tracemark_capture::{Capture, Config, Notice, Outcome};

/// Record an endless stream (a simulator's or a board's console) in DIR/NAME.0 ..
/// NAME.(N-1), rotated in place so that disk use never exceeds slots x slot size.
/// DIR/NAME.current points at the slot being written; SIGUSR1 writes DIR/NAME.snapshot
/// (every slot, oldest first) without stopping; framed tracemark dumps (`@TM:` lines)
/// are verified and saved to DIR/dumps/ as they complete; a heartbeat on stderr says
/// whether input still arrives. SIGINT/SIGTERM stop the capture cleanly.
///
/// Exit status: the producer's with --exec (128+N if signal N killed it), else 0.
#[derive(Debug, clap::Args)]
pub struct Cmd {
    /// `-` (the default): standard input.
    #[arg(value_name = "SOURCE", conflicts_with_all = ["exec", "serial", "tcp", "gdb", "qmp", "probe"])]
    stdin: Option<String>,
    /// Run this shell command and capture its stdout and stderr, interleaved by arrival.
    #[arg(long, value_name = "CMD", conflicts_with_all = ["serial", "tcp", "gdb"])]
    exec: Option<String>,
    /// Read a serial port (default 115200 Bd); reopened when it disappears and comes back.
    #[arg(long, value_name = "PATH[:BAUD]", conflicts_with_all = ["tcp", "gdb"])]
    serial: Option<String>,
    /// Read a TCP port (QEMU `-serial tcp:...`, a J-Link RTT telnet port); reconnects.
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "gdb")]
    tcp: Option<String>,
    /// Read the rings from a running target's memory through a GDB remote-protocol
    /// stub (QEMU `-gdb tcp::PORT`, OpenOCD, pyOCD, J-Link GDB server) every
    /// --interval; each poll's new blocks are stored as framed dumps. Needs --addr or
    /// --elf with --symbol.
    #[arg(long, value_name = "HOST:PORT", group = "live")]
    gdb: Option<String>,
    /// Like --gdb, through QEMU's QMP socket (`-qmp unix:SOCKET,server,wait=off`):
    /// `pmemsave` reads guest memory while the guest runs, racing its writer (the test
    /// back end for targets read while running).
    #[arg(long, value_name = "SOCKET", group = "live", conflicts_with_all = ["gdb", "tcp", "serial", "exec"])]
    qmp: Option<PathBuf>,
    /// --probe and its options (boxed: the subcommand enum stays small).
    #[command(flatten)]
    probe: Box<ProbeArgs>,
    /// The ring's address (hex with 0x, or decimal); with --len, the start of a range
    /// scanned for ring headers.
    #[arg(long, value_name = "ADDR", requires = "live", value_parser = parse_addr)]
    addr: Option<u64>,
    /// With --addr: scan this many bytes for ring headers (K, M suffixes).
    #[arg(long, value_name = "LEN", requires = "addr", value_parser = tracemark_capture::parse_size)]
    len: Option<u64>,
    /// The firmware, whose symbol table gives --symbol's address.
    #[arg(long, value_name = "FW.elf", requires_all = ["live", "symbol"], conflicts_with = "addr")]
    elf: Option<PathBuf>,
    /// The symbol of the ring's memory in --elf.
    #[arg(long, value_name = "NAME", requires = "elf")]
    symbol: Option<String>,
    /// Time between two polls of the target with --gdb.
    #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = parse_interval)]
    interval: Duration,
    /// Directory of the slot files (created if needed).
    #[arg(long)]
    dir: PathBuf,
    /// File name prefix of the slots, the symlink, the snapshot and the saved dumps.
    #[arg(long, value_name = "NAME", default_value = "capture")]
    prefix: String,
    /// Size of one slot, with a K, M or G suffix.
    #[arg(long, value_name = "SIZE", default_value = "500M", value_parser = tracemark_capture::parse_size)]
    slot_size: u64,
    /// Number of slots.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    slots: u32,
    /// Time between heartbeats on stderr (`5s`, `500ms`, `1m`; `0` for none).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_interval)]
    heartbeat: Duration,
    /// Also copy the stream to standard output (to watch the console while capturing).
    #[arg(long)]
    tee: bool,
}

/// `--probe CHIP` and the probe's options.
#[derive(Debug, clap::Args)]
struct ProbeArgs {
    /// Like --gdb, through an SWD/JTAG debug probe (probe-rs): CHIP as `probe-rs chip
    /// list` names it (`nRF52840_xxAA`, `STM32F411RETx`). The probe reads RAM while the
    /// target runs (no halt). Needs a tracemark built with `--features probe`.
    #[arg(long, value_name = "CHIP", group = "live", conflicts_with_all = ["gdb", "qmp", "tcp", "serial", "exec"])]
    probe: Option<String>,
    /// With --probe: which probe, `VID:PID[:SERIAL]` (hex, as `probe-rs list` shows
    /// them); needed when more than one is connected.
    #[arg(long, value_name = "VID:PID[:SERIAL]", requires = "probe")]
    probe_selector: Option<String>,
    /// With --probe: the wire speed in kHz (default: the probe's).
    #[arg(long, value_name = "KHZ", requires = "probe", value_parser = clap::value_parser!(u32).range(1..))]
    speed: Option<u32>,
    /// With --probe: the wire protocol, `swd` or `jtag` (default: the probe's).
    #[arg(long, value_name = "PROTOCOL", requires = "probe")]
    protocol: Option<tracemark_capture::probe::Protocol>,
    /// With --probe: attach with the reset line asserted (a chip whose firmware
    /// disables or remaps its debug pins); the target restarts.
    #[arg(long, requires = "probe")]
    connect_under_reset: bool,
    /// With --probe: the core whose view of memory is read.
    #[arg(long, value_name = "N", default_value_t = 0, requires = "probe")]
    core: usize,
}

fn parse_addr(text: &str) -> Result<u64, String> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    }
    .map_err(|e| format!("{text}: {e}"))
}

fn parse_interval(text: &str) -> Result<Duration, String> {
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(text).map_err(|e| format!("{text}: {e}"))
}

impl Cmd {
    /// The live back end, if one was asked for; a probe's chip and selector are
    /// checked now (a typo fails before anything starts).
    fn live_stub(&mut self) -> anyhow::Result<Option<Stub>> {
        let p = &mut self.probe;
        if let Some(chip) = p.probe.take() {
            let config = ProbeConfig {
                chip,
                selector: p.probe_selector.take(),
                speed_khz: p.speed,
                protocol: p.protocol,
                under_reset: p.connect_under_reset,
                core: p.core,
            };
            tracemark_capture::probe::check(&config).map_err(anyhow::Error::msg)?;
            return Ok(Some(Stub::Probe(config)));
        }
        Ok(self
            .gdb
            .take()
            .map(Stub::Gdb)
            .or(self.qmp.take().map(Stub::Qmp)))
    }

    fn config(mut self) -> anyhow::Result<Config> {
        let source = if let Some(cmd) = self.exec.take() {
            Source::Exec(cmd)
        } else if let Some(serial) = self.serial.take() {
            Source::serial(&serial)?
        } else if let Some(tcp) = self.tcp.take() {
            Source::tcp(&tcp)?
        } else if let Some(stub) = self.live_stub()? {
            let stub_name = match stub {
                Stub::Gdb(_) => "gdb",
                Stub::Qmp(_) => "qmp",
                Stub::Probe(_) => "probe",
            };
            let rings = match (self.addr, self.len, &self.elf, &self.symbol) {
                (Some(start), Some(len), ..) => Rings::Scan { start, len },
                (Some(addr), None, ..) => Rings::At(addr),
                (None, _, Some(elf), Some(symbol)) => {
                    Rings::At(live::symbol_address(elf, symbol).map_err(anyhow::Error::msg)?)
                }
                _ => bail!(
                    "--{stub_name} needs --addr ADDR [--len LEN] or --elf FW.elf --symbol NAME"
                ),
            };
            Source::Gdb(GdbSource {
                stub,
                rings,
                interval: self.interval,
            })
        } else {
            match self.stdin.as_deref() {
                None | Some("-") => Source::Stdin,
                Some(other) => bail!(
                    "{other}: unknown source (use `-` for standard input, --exec, --serial or --tcp)"
                ),
            }
        };
        if self.prefix.is_empty() || self.prefix.contains('/') {
            bail!("--prefix {:?}: must be a non-empty file name", self.prefix);
        }
        Ok(Config {
            source,
            dir: self.dir,
            prefix: self.prefix,
            slot_size: self.slot_size,
            slots: self.slots as usize,
            heartbeat: (!self.heartbeat.is_zero()).then_some(self.heartbeat),
        })
    }

    /// The binary's part: signals become requests, notices lines on stderr, `--tee`
    /// a copy on stdout.
    fn capture(self) -> anyhow::Result<Outcome> {
        let tee = self.tee;
        let config = self.config()?;
        let capture = Capture::new(config);
        let control = capture.control();
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGUSR1])?;
        let handle = signals.handle();
        std::thread::spawn(move || {
            for sig in signals.forever() {
                let request = match sig {
                    SIGUSR1 => Request::Snapshot,
                    SIGINT => Request::Stop(Stop::Interrupt),
                    _ => Request::Stop(Stop::Terminate),
                };
                if !control.request(request) {
                    return;
                }
            }
        });
        let mut stdout = std::io::stdout();
        let tee: Option<&mut dyn Write> = if tee { Some(&mut stdout) } else { None };
        let result = capture.run(tee, &mut |notice: Notice| {
            // Not eprintln!: a closed stderr must not stop the capture.
            let _ = writeln!(std::io::stderr().lock(), "tracemark capture: {notice}");
        });
        handle.close();
        Ok(result?)
    }

    /// Runs the command; its exit code is the producer's with `--exec`.
    pub fn main(self) -> ExitCode {
        match self.capture() {
            Ok(outcome) => ExitCode::from(outcome.exit_code()),
            Err(e) => {
                // Not eprintln!: a closed stderr must not turn the error into a panic.
                let _ = writeln!(std::io::stderr().lock(), "tracemark: capture: {e:#}");
                ExitCode::FAILURE
            }
        }
    }
}
