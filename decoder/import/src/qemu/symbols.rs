//! Function start addresses from an ELF symbol table (the `object` crate reads it).
//!
//! ARM function symbols of Thumb code have bit 0 set; it is masked, so that a symbol
//! matches the block address QEMU logs. Aliases at one address (`write`, `__write`,
//! `__libc_write`) are reduced to one name: a global before a weak before a local,
//! then a name without a leading underscore, then the shortest, then the first in
//! alphabetical order, so that the choice does not depend on the symbol table's order.

use std::collections::HashMap;
use std::path::Path;

use object::{Object, ObjectSymbol, SymbolKind};

/// Why an ELF file gave no symbols. Each variant's message says what it adds; the
/// cause is its [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
pub enum SymbolsError {
    /// The file could not be read.
    #[error("{}", path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// Not an ELF file `object` can read.
    #[error("at byte 0: not a readable ELF file")]
    NotElf(#[source] object::Error),
    /// An ELF file for another architecture.
    #[error("at byte 0: ELF for {0:?}, not 32-bit ARM")]
    NotArm(object::Architecture),
    /// One of the above, in the file at `path`.
    #[error("{}", path.display())]
    In {
        /// The file.
        path: std::path::PathBuf,
        /// What was wrong with it.
        source: Box<SymbolsError>,
    },
}

/// Function names by start address.
#[derive(Debug, Default, Clone)]
pub struct Symbols {
    by_addr: HashMap<u32, String>,
}

impl Symbols {
    /// Reads the function symbols of the ELF file at `path`.
    pub fn read(path: &Path) -> Result<Symbols, SymbolsError> {
        let data = std::fs::read(path).map_err(|source| SymbolsError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&data).map_err(|e| SymbolsError::In {
            path: path.to_path_buf(),
            source: Box::new(e),
        })
    }

    /// Reads the function symbols of an ELF image.
    pub fn parse(data: &[u8]) -> Result<Symbols, SymbolsError> {
        let file = object::File::parse(data).map_err(SymbolsError::NotElf)?;
        if file.architecture() != object::Architecture::Arm {
            return Err(SymbolsError::NotArm(file.architecture()));
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

    /// Function names by start address, as given (bit 0 of an address is ignored).
    pub fn from_functions(functions: impl IntoIterator<Item = (u32, String)>) -> Self {
        Symbols {
            by_addr: functions.into_iter().map(|(a, n)| (a & !1, n)).collect(),
        }
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
