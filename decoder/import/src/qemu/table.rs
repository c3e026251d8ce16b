//! The syscall table and the function order an import produces, and their files:
//! `number,name,count,first_pc` CSV, and one symbol per line for
//! `ld --symbol-ordering-file` / `lld --symbol-ordering-file`.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;

use super::binder::{How, Syscall};
use super::syscalls::{self, Class};

/// Distinct syscall numbers kept; more (a corrupt log) are counted together.
pub const MAX_NUMBERS: usize = 1 << 16;
/// Distinct functions kept in the order list.
pub const MAX_FUNCTIONS: usize = 1 << 20;

/// Count and first `svc` address of one syscall number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    /// Executions.
    pub count: u64,
    /// Address of the first `svc` that made it.
    pub first_pc: u32,
}

/// Syscalls by number, with how their numbers were found.
#[derive(Debug, Default, Clone)]
pub struct SyscallTable {
    /// Rows by number.
    pub rows: BTreeMap<u32, Row>,
    /// `svc`s whose number was not found: count and first address.
    pub unknown: Option<Row>,
    /// Syscalls past [`MAX_NUMBERS`] distinct numbers.
    pub overflow: u64,
    /// Numbers recovered from the block's instructions (no dump followed).
    pub recovered: u64,
    /// Numbers from the instructions where the next dump disagreed.
    pub corrected: u64,
}

impl SyscallTable {
    /// Counts one syscall.
    pub fn add(&mut self, s: &Syscall) {
        match s.how {
            How::Recovered => self.recovered += 1,
            How::Corrected(_) => self.corrected += 1,
            How::Forward | How::Unknown => {}
        }
        let Some(n) = s.number else {
            let r = self.unknown.get_or_insert(Row {
                count: 0,
                first_pc: s.svc,
            });
            r.count += 1;
            return;
        };
        if self.rows.len() >= MAX_NUMBERS && !self.rows.contains_key(&n) {
            self.overflow += 1;
            return;
        }
        self.rows
            .entry(n)
            .or_insert(Row {
                count: 0,
                first_pc: s.svc,
            })
            .count += 1;
    }

    /// Rows of one class, by number.
    pub fn class(&self, class: Class) -> impl Iterator<Item = (u32, &Row)> {
        self.rows
            .iter()
            .filter(move |(n, _)| syscalls::class(**n) == class)
            .map(|(n, r)| (*n, r))
    }

    /// Total syscalls counted.
    pub fn total(&self) -> u64 {
        self.rows.values().map(|r| r.count).sum::<u64>()
            + self.unknown.map_or(0, |r| r.count)
            + self.overflow
    }

    /// Writes the CSV: `number,name,count,first_pc`, the Linux table's syscalls by
    /// number, then the private ARM ones, then numbers the table does not name (name
    /// `unknown`). `svc`s whose number was not found are not rows (see the summary).
    pub fn write_csv(&self, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(out, "number,name,count,first_pc")?;
        for class in [Class::Linux, Class::ArmPrivate, Class::Unknown] {
            for (n, r) in self.class(class) {
                writeln!(
                    out,
                    "{n},{},{},{:#010x}",
                    syscalls::name(n).unwrap_or("unknown"),
                    r.count,
                    r.first_pc
                )?;
            }
        }
        Ok(())
    }

    /// Writes the human summary, the three classes apart.
    pub fn write_summary(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let sections = [
            (Class::Linux, "Linux syscalls (ARM EABI)"),
            (
                Class::ArmPrivate,
                "private ARM syscalls (from 0xf0000; qemu-arm -strace does not print them)",
            ),
            (
                Class::Unknown,
                "numbers outside the table (past it, in a gap, or unknown private)",
            ),
        ];
        for (class, title) in sections {
            let rows: Vec<_> = self.class(class).collect();
            if rows.is_empty() {
                continue;
            }
            writeln!(out, "{title}:")?;
            writeln!(
                out,
                "  {:>8}  {:<24} {:>10}  first_pc",
                "number", "name", "count"
            )?;
            for (n, r) in rows {
                let number = if n >= syscalls::ARM_PRIVATE_BASE {
                    format!("{n:#x}")
                } else {
                    n.to_string()
                };
                writeln!(
                    out,
                    "  {number:>8}  {:<24} {:>10}  {:#010x}",
                    syscalls::name(n).unwrap_or("?"),
                    r.count,
                    r.first_pc
                )?;
            }
        }
        if let Some(r) = self.unknown {
            writeln!(
                out,
                "svc with unknown number: {} (first at {:#010x})",
                r.count, r.first_pc
            )?;
        }
        Ok(())
    }
}

/// Functions in first-execution order.
#[derive(Debug, Default, Clone)]
pub struct FunctionOrder {
    seen: HashSet<String>,
    /// Names, first executed first.
    pub names: Vec<String>,
    /// Functions not kept past [`MAX_FUNCTIONS`].
    pub overflow: u64,
}

impl FunctionOrder {
    /// Notes that `name` ran; only its first run counts.
    pub fn saw(&mut self, name: &str) {
        if self.seen.contains(name) {
            return;
        }
        if self.names.len() >= MAX_FUNCTIONS {
            self.overflow += 1;
            return;
        }
        self.seen.insert(name.to_string());
        self.names.push(name.to_string());
    }

    /// Writes one symbol per line.
    pub fn write(&self, out: &mut dyn Write) -> std::io::Result<()> {
        for n in &self.names {
            writeln!(out, "{n}")?;
        }
        Ok(())
    }
}
