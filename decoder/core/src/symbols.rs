//! Function names, files and lines for the function ids of a dump, from ELF files
//! (`--elf FILE`, repeatable).
//!
//! Each ELF is matched to the dump's `IMAGE` records (load address, size, id):
//!
//! 1. by build id: the record's id is the first 8 bytes of the ELF's GNU build id, read
//!    little- or big-endian;
//! 2. else by address: the record's load address is the ELF's lowest loaded address
//!    (linked where it runs, as firmware and non-PIE executables are), or the record's
//!    size is the ELF's loaded extent (a position-independent image loaded at the
//!    record's address);
//! 3. else, when it is the only ELF given, as linked (function ids are the ELF's own
//!    addresses), with a note.
//!
//! An ELF that has a build id which no `IMAGE` record carries, matched only by address,
//! is refused: it is most likely another build of the same program, whose functions sit
//! at other addresses, and its names would be wrong without a sign. `ignore_build_id`
//! (the CLI's `--elf-ignore-build-id`) uses it by address anyway, for images whose
//! record carries an id that is not the build id. An ELF with neither a symbol table nor
//! DWARF (fully stripped) is reported in [`Symbols::warnings`]: it can name nothing.
//!
//! Addresses are then resolved with `addr2line` (crate `addr2line`'s loader, one
//! context per ELF: DWARF function names, files and lines, inlined frames) with the
//! symbol table as the fallback for stripped binaries; on 32-bit ARM the Thumb bit is
//! masked for DWARF, and set for the symbol table, whose Thumb function symbols carry it
//! in their values (ARM ELF ABI): a function's address `a` is looked up as `a | 1`, at or
//! after its symbol's value whether it is Thumb (`a + 1`) or ARM code (`a`).
//! [`Symbols::resolve`] takes the distinct addresses of a dump and resolves them sorted,
//! each once; the names are then looked up in a hash map.
//!
//! Chosen crates: `addr2line` (gimli's symboliser, used by the Rust standard library's
//! backtraces) and `object` (the same project's ELF reader) for the build id and
//! segments.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use object::{Object, ObjectSegment, ObjectSymbol};
use tracemark_format::scan::{scan_block, Visitor};

use crate::dump::Dump;

/// Why an ELF file given to [`Symbols::load`] cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{}: not a readable ELF file", path.display())]
pub struct ElfError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    #[source]
    pub cause: ElfCause,
}

/// What went wrong reading an ELF file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ElfCause {
    /// Reading the file failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The file is not an object file `object` can read.
    #[error(transparent)]
    Object(#[from] object::Error),
    /// Its DWARF sections cannot be read.
    #[error(transparent)]
    Dwarf(#[from] addr2line::gimli::Error),
    /// Another error of `addr2line`'s loader, whose error type (`Box<dyn Error>`, not
    /// `Send`) cannot be kept as it is: its message.
    #[error("{0}")]
    Loader(String),
}

impl ElfCause {
    /// The typed error inside an `addr2line` loader error, when it is one of ours.
    fn from_loader(e: Box<dyn std::error::Error>) -> ElfCause {
        let e = match e.downcast::<addr2line::gimli::Error>() {
            Ok(g) => return ElfCause::Dwarf(*g),
            Err(e) => e,
        };
        let e = match e.downcast::<std::io::Error>() {
            Ok(io) => return ElfCause::Io(*io),
            Err(e) => e,
        };
        match e.downcast::<object::Error>() {
            Ok(o) => ElfCause::Object(*o),
            Err(e) => ElfCause::Loader(e.to_string()),
        }
    }
}

/// Why [`Symbols::load`] refuses its ELF files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SymbolsError {
    /// A file is not a readable ELF file.
    #[error(transparent)]
    Unreadable(#[from] ElfError),
    /// The ELF's build id is not the dump's, and only its addresses match an image.
    #[error(
        "{}: its build id {elf_id} is not the id of the IMAGE record it matches by \
         address (base {base:#x}, id {image_id:#x}): another build of the program, whose \
         names would be wrong; give the ELF of the firmware that made the dump, or \
         --elf-ignore-build-id to use it by address anyway",
        path.display()
    )]
    BuildIdMismatch {
        /// The ELF file.
        path: PathBuf,
        /// Its build id, in hex.
        elf_id: String,
        /// The image record's load address.
        base: u64,
        /// The image record's id.
        image_id: u64,
    },
}

/// An `IMAGE` record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ImageRecord {
    /// Load address.
    pub base: u64,
    /// Size in bytes.
    pub size: u64,
    /// Build id (or a hash of it), or an id naming the image.
    pub id: u64,
}

/// What is known of an address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    /// The function (demangled), if known.
    pub function: Option<String>,
    /// The source file, if known.
    pub file: Option<String>,
    /// The line, if known.
    pub line: Option<u32>,
}

/// How an ELF was matched to the dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// By build id.
    BuildId,
    /// By load address or size.
    Address,
    /// Not matched; used as linked.
    AsLinked,
}

struct Elf {
    path: PathBuf,
    loader: addr2line::Loader,
    arm: bool,
}

/// Addresses `start..end` at run time are `address - bias` in ELF `elf`.
#[derive(Debug, Clone, Copy)]
struct Mapping {
    start: u64,
    end: u64,
    elf: usize,
    bias: u64,
}

/// The ELF files of a dump and the names resolved from them.
pub struct Symbols {
    elfs: Vec<Elf>,
    mappings: Vec<Mapping>,
    resolved: HashMap<u64, Resolved>,
    /// How each ELF was matched (in the order given), for the user.
    pub notes: Vec<String>,
    /// What the user must hear about the ELFs (one that can name nothing).
    pub warnings: Vec<String>,
}

/// Distinct function ids kept by [`scan`]; beyond that, addresses are resolved when
/// first named.
pub const MAX_DISTINCT: usize = 1 << 20;

/// What [`scan`] finds.
#[derive(Debug, Default)]
pub struct Scan {
    /// Distinct `IMAGE` records.
    pub images: Vec<ImageRecord>,
    /// Distinct function ids (at most [`MAX_DISTINCT`]).
    pub functions: HashSet<u64>,
}

struct Collect<'a>(&'a mut Scan, &'a mut HashSet<ImageRecord>);

impl Visitor for Collect<'_> {
    fn function_entry(&mut self, _ts: u64, func: u64) {
        if self.0.functions.len() < MAX_DISTINCT {
            self.0.functions.insert(func);
        }
    }
    fn image(&mut self, _ts: u64, base: u64, size: u64, id: u64) {
        let r = ImageRecord { base, size, id };
        if self.1.insert(r) {
            self.0.images.push(r);
        }
    }
}

/// The images and distinct function ids of `dump` (one fast pass, no event built;
/// undecodable block tails are skipped here and reported by the main pass).
pub fn scan(dump: &Dump<'_>) -> Scan {
    let mut s = Scan::default();
    let mut seen = HashSet::new();
    for ring in &dump.rings {
        for b in &ring.blocks {
            scan_block(b.records, b.base_ts, &mut Collect(&mut s, &mut seen));
        }
    }
    s
}

/// What [`describe`] finds in an ELF.
struct ElfFacts {
    /// The GNU build id.
    build_id: Option<Vec<u8>>,
    /// Lowest loaded address.
    lo: u64,
    /// End of the loaded extent.
    hi: u64,
    /// Whether it is 32-bit ARM.
    arm: bool,
    /// Whether it has anything to name functions with (a function symbol or DWARF).
    names: bool,
}

/// The facts of the ELF at `path` that matching and naming need.
fn describe(path: &Path) -> Result<ElfFacts, ElfCause> {
    let data = std::fs::read(path)?;
    let file = object::File::parse(&*data)?;
    let build_id = file.build_id()?.map(<[u8]>::to_vec);
    let mut lo = u64::MAX;
    let mut hi = 0u64;
    for seg in file.segments() {
        if seg.size() == 0 {
            continue;
        }
        lo = lo.min(seg.address());
        hi = hi.max(seg.address().saturating_add(seg.size()));
    }
    if lo == u64::MAX {
        lo = 0;
    }
    let arm = file.architecture() == object::Architecture::Arm;
    let names = file
        .symbols()
        .chain(file.dynamic_symbols())
        .any(|s| s.kind() == object::SymbolKind::Text)
        || file.section_by_name(".debug_info").is_some();
    Ok(ElfFacts {
        build_id,
        lo,
        hi,
        arm,
        names,
    })
}

/// The build id's first 8 bytes, read both ways.
fn id_matches(build_id: &[u8], id: u64) -> bool {
    let Some(b) = build_id.get(..8) else {
        return false;
    };
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    u64::from_le_bytes(a) == id || u64::from_be_bytes(a) == id
}

impl Symbols {
    /// Loads `paths` and matches them to `images`; `ignore_build_id`: use an ELF whose
    /// build id no image carries by address (else [`SymbolsError::BuildIdMismatch`]).
    pub fn load(
        paths: &[PathBuf],
        images: &[ImageRecord],
        ignore_build_id: bool,
    ) -> Result<Symbols, SymbolsError> {
        let mut elfs = Vec::new();
        let mut mappings = Vec::new();
        let mut notes = Vec::new();
        let mut warnings = Vec::new();
        for path in paths {
            let fail = |cause| ElfError {
                path: path.clone(),
                cause,
            };
            let ElfFacts {
                build_id,
                lo,
                hi,
                arm,
                names,
            } = describe(path).map_err(fail)?;
            if !names {
                warnings.push(format!(
                    "{}: no symbol table and no DWARF (a stripped ELF?): it names no \
                     function; give the unstripped ELF of the same build",
                    path.display()
                ));
            }
            let loader =
                addr2line::Loader::new(path).map_err(|e| fail(ElfCause::from_loader(e)))?;
            let idx = elfs.len();
            let by_id = build_id
                .as_deref()
                .and_then(|b| images.iter().find(|r| id_matches(b, r.id)));
            let by_addr = || {
                images
                    .iter()
                    .find(|r| r.base == lo && r.size > 0)
                    .or_else(|| images.iter().find(|r| r.size == hi - lo && r.size > 0))
            };
            let (how, map) = match by_id {
                Some(r) => (Match::BuildId, Some(r)),
                None => match by_addr() {
                    Some(r) => (Match::Address, Some(r)),
                    None => (Match::AsLinked, None),
                },
            };
            if let (Match::Address, Some(r), Some(b)) = (how, map, build_id.as_deref()) {
                if !ignore_build_id {
                    return Err(SymbolsError::BuildIdMismatch {
                        path: path.clone(),
                        elf_id: b.iter().map(|x| format!("{x:02x}")).collect(),
                        base: r.base,
                        image_id: r.id,
                    });
                }
                warnings.push(format!(
                    "{}: its build id is not the id of the IMAGE record at {:#x} (id {:#x}); \
                     used by address as --elf-ignore-build-id asks",
                    path.display(),
                    r.base,
                    r.id
                ));
            }
            match map {
                Some(r) => {
                    let bias = r.base.wrapping_sub(lo);
                    let len = r.size.max(hi - lo);
                    mappings.push(Mapping {
                        start: r.base,
                        end: r.base.saturating_add(len),
                        elf: idx,
                        bias,
                    });
                    notes.push(format!(
                        "{}: matched image at {:#x} (size {:#x}, id {:#x}) by {}",
                        path.display(),
                        r.base,
                        r.size,
                        r.id,
                        if how == Match::BuildId {
                            "build id"
                        } else {
                            "address"
                        }
                    ));
                }
                None if paths.len() == 1 => {
                    mappings.push(Mapping {
                        start: lo,
                        end: hi,
                        elf: idx,
                        bias: 0,
                    });
                    notes.push(format!(
                        "{}: no IMAGE record matches it (build id or address); function \
                         ids are taken as its own addresses",
                        path.display()
                    ));
                }
                None => {
                    notes.push(format!(
                        "{}: no IMAGE record matches it (build id or address); not used",
                        path.display()
                    ));
                }
            }
            elfs.push(Elf {
                path: path.clone(),
                loader,
                arm,
            });
        }
        Ok(Symbols {
            elfs,
            mappings,
            resolved: HashMap::new(),
            notes,
            warnings,
        })
    }

    /// Resolves `addrs` (sorted and deduplicated here, each resolved once).
    pub fn resolve(&mut self, addrs: impl IntoIterator<Item = u64>) {
        let mut v: Vec<u64> = addrs.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        for a in v {
            if !self.resolved.contains_key(&a) {
                let r = self.lookup(a);
                self.resolved.insert(a, r);
            }
        }
    }

    /// What is known of `addr`, resolved now if [`Symbols::resolve`] did not see it.
    pub fn get(&mut self, addr: u64) -> &Resolved {
        if !self.resolved.contains_key(&addr) {
            let r = self.lookup(addr);
            self.resolved.insert(addr, r);
        }
        &self.resolved[&addr]
    }

    /// The function name of `addr`, if [`Symbols::resolve`] found one.
    pub fn name(&self, addr: u64) -> Option<&str> {
        self.resolved.get(&addr)?.function.as_deref()
    }

    /// Every function name resolved so far, by address.
    pub fn names(&self) -> HashMap<u64, String> {
        self.resolved
            .iter()
            .filter_map(|(&a, r)| Some((a, r.function.clone()?)))
            .collect()
    }

    /// Every source location resolved so far (`file:line`, or `file`), by address.
    pub fn locations(&self) -> HashMap<u64, String> {
        self.resolved
            .iter()
            .filter_map(|(&a, r)| {
                let file = r.file.as_ref()?;
                Some((
                    a,
                    match r.line {
                        Some(l) => format!("{file}:{l}"),
                        None => file.clone(),
                    },
                ))
            })
            .collect()
    }

    /// Which ELF file holds `addr`, if any.
    pub fn elf_of(&self, addr: u64) -> Option<&Path> {
        let m = self
            .mappings
            .iter()
            .find(|m| (m.start..m.end).contains(&addr))?;
        Some(&self.elfs[m.elf].path)
    }

    fn lookup(&self, addr: u64) -> Resolved {
        let Some(m) = self
            .mappings
            .iter()
            .find(|m| (m.start..m.end).contains(&addr))
        else {
            return Resolved::default();
        };
        let elf = &self.elfs[m.elf];
        let mut probe = addr.wrapping_sub(m.bias);
        if elf.arm {
            probe &= !1;
        }
        let mut r = Resolved::default();
        if let Ok(mut frames) = elf.loader.find_frames(probe) {
            // The innermost frame: at a function's first instruction, the function.
            if let Ok(Some(f)) = frames.next() {
                if let Some(func) = &f.function {
                    r.function = func.demangle().ok().map(|n| n.into_owned());
                }
                if let Some(loc) = &f.location {
                    r.file = loc.file.map(str::to_string);
                    r.line = loc.line;
                }
            }
        }
        if r.function.is_none() {
            // Thumb function symbols have bit 0 set (ARM ELF ABI): probe at `a | 1`.
            let sym_probe = if elf.arm { probe | 1 } else { probe };
            r.function = elf
                .loader
                .find_symbol(sym_probe)
                .map(|n| addr2line::demangle_auto(n.into(), None).into_owned());
        }
        if r.file.is_none() {
            if let Ok(Some(loc)) = elf.loader.find_location(probe) {
                r.file = loc.file.map(str::to_string);
                r.line = loc.line;
            }
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_ids_match_either_byte_order() {
        let b = [1, 2, 3, 4, 5, 6, 7, 8, 9];
        assert!(id_matches(&b, 0x0807_0605_0403_0201));
        assert!(id_matches(&b, 0x0102_0304_0506_0708));
        assert!(!id_matches(&b, 0x0102_0304_0506_0709));
        assert!(!id_matches(&b[..4], 0x0403_0201));
    }

    #[test]
    fn resolves_this_test_binary_loaded_anywhere() {
        // The test executable is a position-independent ELF with DWARF and a symbol
        // table. Its load address comes from /proc/self/maps; an IMAGE record of that
        // address and the ELF's extent matches it by size.
        let exe = std::env::current_exe().unwrap();
        let ElfFacts { lo, hi, .. } = describe(&exe).unwrap();
        assert!(hi > lo);
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let exe_name = exe.to_str().unwrap();
        let base = maps
            .lines()
            .filter(|l| l.ends_with(exe_name))
            .filter_map(|l| u64::from_str_radix(l.split('-').next()?, 16).ok())
            .min()
            .expect("the executable is mapped");
        let image = ImageRecord {
            base: base + lo,
            size: hi - lo,
            id: 0xdead,
        };
        let mut s = Symbols::load(std::slice::from_ref(&exe), &[image], true).unwrap();
        let build_id = describe(&exe).unwrap().build_id;
        if let Some(b) = &build_id {
            // Matched by address only, with a build id the record does not carry: another
            // build, refused unless asked (and then warned about).
            match Symbols::load(std::slice::from_ref(&exe), &[image], false) {
                Err(SymbolsError::BuildIdMismatch {
                    path,
                    elf_id,
                    base,
                    image_id,
                }) => {
                    assert_eq!(path, exe);
                    assert_eq!(elf_id.len(), 2 * b.len());
                    assert_eq!((base, image_id), (image.base, 0xdead));
                }
                other => panic!("{:?}", other.err()),
            }
            assert!(
                s.warnings[0].contains("--elf-ignore-build-id"),
                "{:?}",
                s.warnings
            );
        }
        assert!(s.notes[0].contains("by address"), "{:?}", s.notes);
        let f = id_matches as fn(&[u8], u64) -> bool as usize as u64;
        s.resolve([f, f]);
        let r = s.get(f).clone();
        let name = r.function.expect("a name");
        assert!(name.ends_with("id_matches"), "{name}");
        assert!(r.file.unwrap().ends_with("symbols.rs"));
        assert!(r.line.is_some());
        assert_eq!(s.elf_of(f), Some(exe.as_path()));
        // An address outside every mapping resolves to nothing.
        assert_eq!(s.get(base + hi + 0x1000_0000), &Resolved::default());

        // By build id, when the executable has one (the linker's --build-id, Debian's
        // default): the record's size and id say nothing else.
        if let Some(b) = build_id.filter(|b| b.len() >= 8) {
            let id = u64::from_le_bytes(b[..8].try_into().unwrap());
            let wrong_size = ImageRecord {
                base: base + lo,
                size: 12345,
                id,
            };
            let decoy = ImageRecord {
                base: 0x1000,
                size: 0x1000,
                id: 7,
            };
            let mut s =
                Symbols::load(std::slice::from_ref(&exe), &[decoy, wrong_size], false).unwrap();
            assert!(s.notes[0].contains("by build id"), "{:?}", s.notes);
            s.resolve([f]);
            assert!(s.name(f).unwrap().ends_with("id_matches"));
        }
    }

    /// A file that cannot be used gets a typed error naming it, whose source is the
    /// underlying error (not a string): a missing file's `io::Error`, a text file's
    /// `object` error.
    #[test]
    fn unreadable_elf_files_give_typed_errors_with_their_cause() {
        use std::error::Error as _;
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.elf");
        let unreadable = |path: &Path| match Symbols::load(&[path.to_path_buf()], &[], false) {
            Err(SymbolsError::Unreadable(e)) => e,
            Err(e) => panic!("{e:?}"),
            Ok(_) => panic!("{} loaded", path.display()),
        };
        let e = unreadable(&missing);
        assert_eq!(e.path, missing);
        assert_eq!(
            e.to_string(),
            format!("{}: not a readable ELF file", missing.display())
        );
        // The wrapper says and chains the same.
        let wrapped = SymbolsError::from(unreadable(&missing));
        assert_eq!(wrapped.to_string(), e.to_string());
        assert!(wrapped
            .source()
            .is_some_and(|s| s.downcast_ref::<ElfCause>().is_some()));
        let ElfCause::Io(io) = &e.cause else {
            panic!("{:?}", e.cause)
        };
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
        let source = e.source().expect("the cause is the source");
        assert!(source.downcast_ref::<ElfCause>().is_some());
        assert_eq!(source.to_string(), io.to_string());

        let text = dir.path().join("notes.txt");
        std::fs::write(&text, b"not an ELF file at all").unwrap();
        let e = unreadable(&text);
        assert!(matches!(e.cause, ElfCause::Object(_)), "{:?}", e.cause);
    }
}
