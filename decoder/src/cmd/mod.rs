//! One module per subcommand, and what they share.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use tracemark_decoder::dump::Warning;
use tracemark_decoder::input::{self, Input, InputKind};

pub mod decode;
pub mod index;
pub mod query;
pub mod stats;

/// Worker threads: the machine's parallelism, at most 8.
pub fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

/// Opens an input and turns it into dump bytes.
pub fn open(path: &Path) -> anyhow::Result<Input> {
    let input = Input::open(path).with_context(|| path.display().to_string())?;
    match input::detect(input.bytes()) {
        InputKind::Dump => Ok(input),
        // NOTE: `extract::extract` reassembles the dumps of a UART log; its bytes go to
        // the same dump reader as `Input::Owned`.
        InputKind::UartLog => bail!(
            "{}: at byte 0: this is a UART log (it has @TM: lines); extracting dumps from logs is not wired in yet",
            path.display()
        ),
    }
}

/// A progress bar over `total` units on a terminal, or `None` when stderr is not one or
/// the job is small.
pub fn progress(total: u64, min: u64, unit_bytes: bool) -> Option<ProgressBar> {
    if total < min || !std::io::stderr().is_terminal() {
        return None;
    }
    let template = if unit_bytes {
        "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
    } else {
        "{bar:40} {pos}/{len} records eta {eta}"
    };
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    Some(bar)
}

/// Prints warnings (the first 20, then a count) and returns an error for the first
/// damage, so that the command exits non-zero after printing what it could.
pub fn report(path: &Path, warnings: &[Warning]) -> anyhow::Result<()> {
    const SHOWN: usize = 20;
    for w in warnings.iter().take(SHOWN) {
        eprintln!("tracemark: {}: warning: {w}", path.display());
    }
    if warnings.len() > SHOWN {
        eprintln!(
            "tracemark: {}: warning: {} more warnings",
            path.display(),
            warnings.len() - SHOWN
        );
    }
    let damage = warnings.iter().filter(|w| w.damage).count();
    if let Some(first) = warnings.iter().find(|w| w.damage) {
        bail!(
            "{}: {first} ({damage} damaged place{}; output before and after the damage was printed)",
            path.display(),
            if damage == 1 { "" } else { "s" }
        );
    }
    Ok(())
}
