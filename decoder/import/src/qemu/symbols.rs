//! Function start addresses from an ELF symbol table (the `object` crate reads it).
//!
//! ARM function symbols of Thumb code have bit 0 set; it is masked, so that a symbol
//! matches the block address QEMU logs. Aliases at one address (`write`, `__write`,
//! `__libc_write`) are reduced to one name: a global before a weak before a local,
//! then a name without a leading underscore, then the shortest, then the first in
//! alphabetical order, so that the choice does not depend on the symbol table's order.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context};
use object::{Object, ObjectSymbol, SymbolKind};

/// Function names by start address.
#[derive(Debug, Default, Clone)]
pub struct Symbols {
    by_addr: HashMap<u32, String>,
}

impl Symbols {
    /// Reads the function symbols of the ELF file at `path`.
    pub fn read(path: &Path) -> anyhow::Result<Symbols> {
        let data = std::fs::read(path).with_context(|| path.display().to_string())?;
        Self::parse(&data).with_context(|| path.display().to_string())
    }

    /// Reads the function symbols of an ELF image.
    pub fn parse(data: &[u8]) -> anyhow::Result<Symbols> {
        let file = object::File::parse(data)
            .map_err(|e| anyhow::anyhow!("at byte 0: not a readable ELF file ({e})"))?;
        if file.architecture() != object::Architecture::Arm {
            bail!(
                "at byte 0: ELF for {:?}, not 32-bit ARM",
                file.architecture()
            );
        }
        let mut best: HashMap<u32, (u8, String)> = HashMap::new();
        for sym in file.symbols() {
            if sym.kind() != SymbolKind::Text || sym.is_undefined() {
                continue;
            }
            let Ok(name) = sym.name() else { continue };
            if name.is_empty() || name.starts_with('$') {
                continue;
            }
            let Ok(addr) = u32::try_from(sym.address() & !1) else {
                continue;
            };
            let rank = if sym.is_weak() {
                1
            } else if sym.is_global() {
                0
            } else {
                2
            };
            let better = |(r, n): &(u8, String)| {
                (rank, name.starts_with('_'), name.len(), name)
                    < (*r, n.starts_with('_'), n.len(), n.as_str())
            };
            match best.get(&addr) {
                Some(cur) if !better(cur) => {}
                _ => {
                    best.insert(addr, (rank, name.to_string()));
                }
            }
        }
        Ok(Symbols {
            by_addr: best.into_iter().map(|(a, (_, n))| (a, n)).collect(),
        })
    }

    /// The function starting at `addr` (bit 0 ignored).
    pub fn function_at(&self, addr: u32) -> Option<&str> {
        self.by_addr.get(&(addr & !1)).map(String::as_str)
    }

    /// Number of functions.
    pub fn len(&self) -> usize {
        self.by_addr.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_addr.is_empty()
    }
}
