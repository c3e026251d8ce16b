//! Hive-partitioned Parquet tables of one or many dumps, for data engines (DuckDB,
//! Spark, DataFusion) that read a directory of Parquet files as one table.
//!
//! # Layout
//!
//! ```text
//! DIR/records/dump=<id>/cpu=<n>/part-<k>.parquet   one row per record
//! DIR/images/dump=<id>/cpu=<n>/part-0.parquet      one row per IMAGE record
//! DIR/lost/dump=<id>/cpu=<n>/part-0.parquet        one row per LOST record
//! DIR/threads/dump=<id>/cpu=<n>/part-0.parquet     one row per thread named on the CPU
//! DIR/rings/dump=<id>/part-0.parquet               one row per ring (header counters)
//! ```
//!
//! `<id>` is [`super::dump_id`] (producer id and content hash): the same dump always lands
//! in the same partition, and exporting it again replaces its files. The partition
//! columns `dump` and `cpu` come from the paths (`hive_partitioning`); the files do not
//! repeat them. A CPU's records are in time order, so its row groups are sorted by
//! `ts` and their statistics let engines skip row groups outside a time window. Files
//! are zstd-compressed (level 1); a part holds at most [`PART_ROWS`] rows in row groups
//! of [`ROW_GROUP_ROWS`].
//!
//! The `records` columns are encoded by `export/parquet_chunk.rs` (one page per column
//! per row group, dictionary codes for the name columns, delta encoding for times,
//! numbers, function ids, durations, threads and clock steps), the side tables by `parquet`'s column writers.
//!
//! # The `records` table
//!
//! | column | type | for |
//! |---|---|---|
//! | `ts` | int64 | every record: time in ticks |
//! | `time_ns` | int64, null if the clock frequency is unknown or the time past 2^63 ns | time in ns |
//! | `n` | int64, null for LOST | the record number on its CPU |
//! | `kind` | string | `KENTRY`, `KEXIT`, `IRQ`, `FENTRY`, `FEXIT`, `USER`, `IMAGE`, `LOST`, `SWITCH`, `CLOCKBACK` |
//! | `path` | string | KENTRY; KEXIT whose entry is known |
//! | `syscall`, `syscall_name` | uint8, string | syscall KENTRY; KEXIT closing one |
//! | `cap`, `cap_name`, `label`, `fastpath` | uint8, string, uint32, bool | syscall KENTRY |
//! | `core`, `word` | uint8, uint32 | other KENTRY (`word`: IRQ number, fault type) |
//! | `duration_ticks`, `duration_ns` | int64, int64 | KEXIT with a measured duration |
//! | `exit_note` | string | KEXIT without one: `no entry`, `nesting overflow` |
//! | `irq` | uint32 | IRQ |
//! | `func`, `symbol` | uint64, string | FENTRY, FEXIT (`symbol` when a [`FunctionNames`] is given) |
//! | `user_id`, `payload` | uint32, binary | USER |
//! | `thread` | uint64 | SWITCH: the thread that runs next (seL4: its TCB address) |
//! | `back` | int64 | CLOCKBACK: ticks the clock stepped back (`ts` is the new reading) |
//!
//! Names (`syscall_name`, `cap_name`) follow the ring header's syscall ABI and are null
//! where it has none. A Linux ring (`tracemark import qemu`) names its syscalls in
//! `syscall_name` (`brk`), as `tracemark decode` does (`linux=brk`); their numbers are in
//! `word`.
//!
//! # The `threads` table
//!
//! | column | type | for |
//! |---|---|---|
//! | `thread` | uint64 | the id SWITCH records carry (`records.thread`): join on it |
//! | `name` | string | the latest THREAD record's name on the CPU (invalid UTF-8 replaced) |
//! | `prio` | uint32 | the latest THREAD record's priority |
//! | `first_ts`, `first_time_ns` | int64, int64 (null as `time_ns`) | the first THREAD record of the thread on the CPU |
//! | `thread_records` | int64 | THREAD records of the thread on the CPU (creation and re-emissions) |
//!
//! One row per (CPU, thread) from the THREAD records (format version 3) of that CPU's
//! rings (a CPU with two rings, as in concatenated dumps, still has one row per thread,
//! in its first ring's file), sorted by `thread`; the CPU is the `cpu` partition column. A thread renamed
//! later has its latest name (the THREAD rows of `records` keep every one, with `ts`).
//! At most [`super::MAX_THREAD_NAMES`] threads per ring are kept (the first ones
//! seen); the THREAD rows of `records` are all there regardless.
//!
//! # Signed and unsigned columns
//!
//! Times, record numbers, durations, clock steps and counts are signed 64-bit
//! (`int64`, no unsigned annotation), so that SQL arithmetic on them (`ts - lag(ts)`)
//! does not overflow in DuckDB and Spark reads them as `bigint`, not `decimal(20,0)`
//! (a value of 2^63 or more, which no real clock reaches, would read negative).
//! Identifiers and addresses (`func`, `thread`, `base`, `image_id`, `producer_id`)
//! stay unsigned. Files written before this change (without the `tracemark.schema`
//! key, see [`SCHEMA_VERSION`]) had every integer unsigned: a query that casts them
//! (`CAST(ts AS BIGINT)`) reads both.
//!
//! # A CPU with two rings
//!
//! Concatenated dumps can hold two rings of one CPU: both are under `cpu=<n>`, the
//! second one's files named `ring<i>-part-<k>.parquet` (`i`: its ring index), so that
//! every file is at the same depth and `hive_partitioning` reads them all.
//!
//! # Empty tables
//!
//! A dump with no IMAGE (or no LOST) record still gets one `images` (`lost`) file,
//! with no rows, under its first ring's CPU, so that a query of the table finds it
//! rather than failing with "No files found".

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::data_type::{ByteArray, ByteArrayType, DataType, Int32Type, Int64Type};
use parquet::errors::ParquetError;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::statistics::Statistics;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use parquet::schema::types::{ColumnPath, Type};
use tracemark_format::record::ExitDuration;
use tracemark_format::{EntryPath, Event, KernelEntry, Kind, SyscallAbi};

use super::parquet_chunk::{Bitmap, ColumnChunkEncoder, Values};
use super::{DumpMeta, RingInfo, Sink};
use tracemark_decoder::merge::Item;

/// Rows per row group.
pub const ROW_GROUP_ROWS: usize = 256 << 10;
/// Rows per part file.
pub const PART_ROWS: u64 = 16 << 20;

/// Function names for the `symbol` column (the `--elf` resolver implements it).
pub trait FunctionNames: Send + Sync {
    /// The name of function id or address `func`, if known.
    fn name(&self, func: u64) -> Option<String>;
}

const RECORDS_SCHEMA: &str = "
message records {
  required int64 ts;
  optional int64 time_ns;
  optional int64 n;
  required binary kind (STRING);
  optional binary path (STRING);
  optional int32 syscall (INTEGER(8,false));
  optional binary syscall_name (STRING);
  optional int32 cap (INTEGER(8,false));
  optional binary cap_name (STRING);
  optional int32 label (INTEGER(32,false));
  optional boolean fastpath;
  optional int32 core (INTEGER(8,false));
  optional int32 word (INTEGER(32,false));
  optional int64 duration_ticks;
  optional int64 duration_ns;
  optional binary exit_note (STRING);
  optional int32 irq (INTEGER(32,false));
  optional int64 func (INTEGER(64,false));
  optional binary symbol (STRING);
  optional int32 user_id (INTEGER(32,false));
  optional binary payload;
  optional int64 thread (INTEGER(64,false));
  optional int64 back;
}";

const IMAGES_SCHEMA: &str = "
message images {
  required int64 ts;
  optional int64 time_ns;
  required int64 base (INTEGER(64,false));
  required int64 size;
  required int64 image_id (INTEGER(64,false));
}";

const LOST_SCHEMA: &str = "
message lost {
  required int64 ts;
  optional int64 time_ns;
  required int64 count;
  required int64 since;
}";

const THREADS_SCHEMA: &str = "
message threads {
  required int64 thread (INTEGER(64,false));
  required binary name (STRING);
  required int32 prio (INTEGER(32,false));
  required int64 first_ts;
  optional int64 first_time_ns;
  required int64 thread_records;
}";

const RINGS_SCHEMA: &str = "
message rings {
  required int32 ring;
  required int32 cpu;
  required int64 clock_hz;
  required int64 producer_id (INTEGER(64,false));
  required binary syscall_abi (STRING);
  required int64 overwritten;
  required int64 dropped;
  required int64 records;
}";

fn perr(path: &Path, e: ParquetError) -> io::Error {
    io::Error::other(format!("{}: {e}", path.display()))
}

fn ioerr(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

fn schema(text: &str) -> Arc<Type> {
    // The schemas are constants of this module, checked by the tests.
    Arc::new(parse_message_type(text).unwrap_or_else(|e| panic!("bad built-in schema: {e}")))
}

/// The schema version, in every file's key-value metadata as `tracemark.schema`: 3
/// since the `threads` table (the other tables unchanged from 2); 2 since times,
/// numbers, durations and counts are signed (1, without the key, before).
pub const SCHEMA_VERSION: &str = "3";

fn properties() -> Arc<WriterProperties> {
    let mut b = WriterProperties::builder()
        .set_key_value_metadata(Some(vec![parquet::file::metadata::KeyValue::new(
            "tracemark.schema".to_string(),
            SCHEMA_VERSION.to_string(),
        )]))
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_statistics_enabled(EnabledStatistics::None)
        .set_write_batch_size(WRITE_BATCH)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS));
    // The side tables' times count up: delta-encoded they shrink to a byte or two per
    // row before zstd sees them, and their statistics let readers skip by time. (The
    // records table's columns are encoded by `parquet_chunk`, whatever these say.)
    for c in ["ts", "time_ns"] {
        b = b
            .set_column_dictionary_enabled(ColumnPath::from(c), false)
            .set_column_encoding(ColumnPath::from(c), Encoding::DELTA_BINARY_PACKED)
            .set_column_statistics_enabled(ColumnPath::from(c), EnabledStatistics::Chunk);
    }
    Arc::new(b.build())
}

/// Values handed to the column encoder at a time.
const WRITE_BATCH: usize = 16 << 10;

/// A nullable column of a row group: the rows present and their values. The bitmap is
/// kept zeroed (null) for a whole row group, so that a row only touches the columns its
/// kind has.
struct Col<T> {
    present: Bitmap,
    values: Vec<T>,
}

impl<T> Default for Col<T> {
    fn default() -> Self {
        Col {
            present: Bitmap::new(ROW_GROUP_ROWS),
            values: Vec::new(),
        }
    }
}

impl<T> Col<T> {
    /// Row `row` holds `v`, if `v` is some (rows are set in increasing order).
    #[inline(always)]
    fn opt(&mut self, row: usize, v: Option<T>) {
        if let Some(v) = v {
            if self.present.set(row) {
                self.values.push(v);
            }
        }
    }
    /// Back to all null, for `rows` rows used.
    fn clear(&mut self, rows: usize) {
        self.values.clear();
        self.present.clear(rows);
    }
}

/// Writes one column of the current row group.
fn put<T: DataType>(
    rg: &mut parquet::file::writer::SerializedRowGroupWriter<'_, File>,
    values: &[T::T],
    defs: Option<&[i16]>,
) -> Result<(), ParquetError> {
    let Some(mut c) = rg.next_column()? else {
        return Err(ParquetError::General("schema has fewer columns".into()));
    };
    c.typed::<T>().write_batch(values, defs, None)?;
    c.close()
}

fn s(text: &'static str) -> ByteArray {
    ByteArray::from(Bytes::from_static(text.as_bytes()))
}

/// A fixed dictionary of names and the code of each name's number.
struct Dict {
    names: Vec<&'static str>,
    /// `code[number]`: the name's index in `names`, `None` where there is no name.
    code: Vec<Option<u8>>,
}

impl Dict {
    fn new(names: impl IntoIterator<Item = Option<&'static str>>) -> Self {
        let mut d = Dict {
            names: Vec::new(),
            code: Vec::new(),
        };
        for n in names {
            d.code.push(n.map(|n| {
                d.names.push(n);
                (d.names.len() - 1) as u8
            }));
        }
        d
    }
}

/// The string columns' dictionaries of a ring (syscall and cap names follow its ABI).
struct Names {
    kinds: Dict,
    paths: Dict,
    syscalls: Dict,
    caps: Dict,
    notes: Dict,
    /// A `LinuxArm` ring (`tracemark import qemu`): `syscall_name` holds the Linux
    /// names of its entries ([`crate::linux_syscall`]; hundreds, more than a byte of
    /// dictionary codes), as plain strings, and `syscall` stays null (the number is in
    /// `word`).
    linux: bool,
}

/// Codes of `exit_note`.
const NO_ENTRY: u8 = 0;
const NESTING_OVERFLOW: u8 = 1;

impl Names {
    fn new(abi: SyscallAbi) -> Self {
        Names {
            // By wire code (0..=15), not position: SWITCH (8) and CLOCKBACK (11) must
            // not alias KENTRY and FENTRY.
            kinds: Dict::new((0..16).map(|code| {
                Kind::EVENTS
                    .into_iter()
                    .find(|k| *k as usize == code)
                    .map(Kind::name)
            })),
            paths: Dict::new(EntryPath::ALL.map(|p| Some(p.name()))),
            syscalls: Dict::new((0..16).map(|i| abi.syscall_name(i))),
            caps: Dict::new((0..32).map(|i| abi.cap_name(i))),
            notes: Dict::new([Some("no entry"), Some("nesting overflow")]),
            linux: abi == SyscallAbi::LinuxArm,
        }
    }
}

/// A nullable column of a row group in its final bytes: the rows present and their
/// values, PLAIN-encoded (or one byte each: dictionary codes, booleans).
struct Sparse {
    present: Bitmap,
    values: Vec<u8>,
}

impl Default for Sparse {
    fn default() -> Self {
        Sparse {
            present: Bitmap::new(ROW_GROUP_ROWS),
            values: Vec::new(),
        }
    }
}

impl Sparse {
    #[inline(always)]
    fn bytes(&mut self, row: usize, v: &[u8]) {
        if self.present.set(row) {
            self.values.extend_from_slice(v);
        }
    }
    #[inline(always)]
    fn i32(&mut self, row: usize, v: i32) {
        self.bytes(row, &v.to_le_bytes());
    }
    #[inline(always)]
    fn byte(&mut self, row: usize, v: u8) {
        if self.present.set(row) {
            self.values.push(v);
        }
    }
    /// A `BYTE_ARRAY` value: `u32` length, then the bytes.
    #[inline(always)]
    fn binary(&mut self, row: usize, v: &[u8]) {
        if self.present.set(row) {
            self.values
                .extend_from_slice(&(v.len() as u32).to_le_bytes());
            self.values.extend_from_slice(v);
        }
    }
    fn clear(&mut self, rows: usize) {
        self.present.clear(rows);
        self.values.clear();
    }
}

/// The columns of a row group of the records table, being filled. `ts`, `time_ns` and
/// `n` go through `parquet`'s column writers (delta encoding, statistics); the others
/// are encoded by [`ColumnChunkEncoder`].
#[derive(Default)]
struct Records {
    ts: Vec<i64>,
    time_ns: Col<i64>,
    n: Col<i64>,
    kind: Vec<u8>,
    path: Sparse,
    syscall: Sparse,
    syscall_name: Sparse,
    cap: Sparse,
    cap_name: Sparse,
    label: Sparse,
    fastpath: Sparse,
    core: Sparse,
    word: Sparse,
    duration_ticks: Col<i64>,
    duration_ns: Col<i64>,
    exit_note: Sparse,
    irq: Sparse,
    func: Col<i64>,
    symbol: Sparse,
    user_id: Sparse,
    payload: Sparse,
    thread: Col<i64>,
    back: Col<i64>,
}

impl Records {
    fn len(&self) -> usize {
        self.ts.len()
    }

    fn sparse(&mut self) -> [&mut Sparse; 14] {
        [
            &mut self.path,
            &mut self.syscall,
            &mut self.syscall_name,
            &mut self.cap,
            &mut self.cap_name,
            &mut self.label,
            &mut self.fastpath,
            &mut self.core,
            &mut self.word,
            &mut self.exit_note,
            &mut self.irq,
            &mut self.symbol,
            &mut self.user_id,
            &mut self.payload,
        ]
    }

    fn clear(&mut self) {
        let n = self.ts.len();
        self.ts.clear();
        self.kind.clear();
        self.time_ns.clear(n);
        self.n.clear(n);
        self.duration_ticks.clear(n);
        self.duration_ns.clear(n);
        self.func.clear(n);
        self.thread.clear(n);
        self.back.clear(n);
        for c in self.sparse() {
            c.clear(n);
        }
    }

    fn write(
        &self,
        w: &mut SerializedFileWriter<File>,
        chunks: &mut ColumnChunkEncoder,
        names: &Names,
    ) -> Result<(), ParquetError> {
        let n = self.ts.len();
        let descr = w.schema_descr().columns().to_vec();
        let mut rg = w.next_row_group()?;
        // Chunk statistics of the time and number columns, for readers to skip row
        // groups by time (all three signed).
        let stats = |v: &[i64], unsigned: bool| {
            let flip = if unsigned { i64::MIN } else { 0 };
            let (lo, hi) = v.iter().fold((i64::MAX, i64::MIN), |(lo, hi), &x| {
                (lo.min(x ^ flip), hi.max(x ^ flip))
            });
            let nulls = Some((n - v.len()) as u64);
            match v.is_empty() {
                true => Statistics::int64(None, None, None, nulls, false),
                false => Statistics::int64(Some(lo ^ flip), Some(hi ^ flip), None, nulls, false),
            }
        };
        let mut stats = [
            Some(stats(&self.ts, false)),
            Some(stats(&self.time_ns.values, false)),
            Some(stats(&self.n.values, false)),
        ]
        .into_iter();
        fn dict<'a>(d: &'a Dict, codes: &'a [u8]) -> Values<'a> {
            Values::Dict {
                dict: &d.names,
                codes,
            }
        }
        fn plain(c: &Sparse) -> (Option<&Bitmap>, Values<'_>) {
            (Some(&c.present), Values::Plain(&c.values))
        }
        fn coded<'a>(c: &'a Sparse, d: &'a Dict) -> (Option<&'a Bitmap>, Values<'a>) {
            (Some(&c.present), dict(d, &c.values))
        }
        let columns = [
            (None, Values::Delta(&self.ts)),
            (
                Some(&self.time_ns.present),
                Values::Delta(&self.time_ns.values),
            ),
            (Some(&self.n.present), Values::Delta(&self.n.values)),
            (None, dict(&names.kinds, &self.kind)),
            coded(&self.path, &names.paths),
            plain(&self.syscall),
            if names.linux {
                plain(&self.syscall_name)
            } else {
                coded(&self.syscall_name, &names.syscalls)
            },
            plain(&self.cap),
            coded(&self.cap_name, &names.caps),
            plain(&self.label),
            (
                Some(&self.fastpath.present),
                Values::Bools(&self.fastpath.values),
            ),
            plain(&self.core),
            plain(&self.word),
            (
                Some(&self.duration_ticks.present),
                Values::Delta(&self.duration_ticks.values),
            ),
            (
                Some(&self.duration_ns.present),
                Values::Delta(&self.duration_ns.values),
            ),
            coded(&self.exit_note, &names.notes),
            plain(&self.irq),
            (Some(&self.func.present), Values::Delta(&self.func.values)),
            plain(&self.symbol),
            plain(&self.user_id),
            plain(&self.payload),
            (
                Some(&self.thread.present),
                Values::Delta(&self.thread.values),
            ),
            (Some(&self.back.present), Values::Delta(&self.back.values)),
        ];
        for (i, (present, values)) in columns.into_iter().enumerate() {
            let d = descr
                .get(i)
                .cloned()
                .ok_or_else(|| ParquetError::General("schema has fewer columns".into()))?;
            let (bytes, close) = chunks.chunk(d, n, present, values, stats.next().flatten())?;
            rg.append_column(&bytes, close)?;
        }
        rg.close()?;
        Ok(())
    }
}

/// `ticks` in ns at `hz` (`None` if `hz` is 0; saturating).
#[inline(always)]
/// `ticks` in ns; `None` (null) when the clock is unknown or the time does not fit in
/// an `int64` (never clamped: a clamped time would be a wrong one).
fn ns(ticks: u64, hz: u64) -> Option<i64> {
    match hz {
        0 => None,
        _ => i64::try_from(u128::from(ticks) * 1_000_000_000 / u128::from(hz)).ok(),
    }
}

/// Rows of a side table buffered before they are written as a row group.
const SIDE_ROWS: usize = 64 << 10;

/// A file of a side table (IMAGE or LOST records): created at its first row, written
/// a row group at a time, so that memory stays bounded even for a dump made of them.
struct Side {
    path: PathBuf,
    schema: &'static str,
    /// Value columns after `ts` and `time_ns`.
    values: usize,
    hz: u64,
    rows: Vec<[u64; 4]>,
    writer: Option<SerializedFileWriter<File>>,
}

impl Side {
    fn new(path: PathBuf, schema: &'static str, values: usize, hz: u64) -> Self {
        Side {
            path,
            schema,
            values,
            hz,
            rows: Vec::new(),
            writer: None,
        }
    }

    #[inline]
    fn push(&mut self, row: [u64; 4]) -> io::Result<()> {
        self.rows.push(row);
        if self.rows.len() >= SIDE_ROWS {
            self.flush().map_err(|e| perr(&self.path, e))?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ParquetError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        if self.writer.is_none() {
            if let Some(d) = self.path.parent() {
                std::fs::create_dir_all(d)?;
            }
            let file = File::create(&self.path)?;
            self.writer = Some(SerializedFileWriter::new(
                file,
                schema(self.schema),
                properties(),
            )?);
        }
        let Some(w) = self.writer.as_mut() else {
            return Ok(());
        };
        let column = |i: usize| -> Vec<i64> { self.rows.iter().map(|r| r[i] as i64).collect() };
        let times: Vec<i64> = self.rows.iter().filter_map(|r| ns(r[0], self.hz)).collect();
        let defs: Vec<i16> = vec![i16::from(self.hz != 0); self.rows.len()];
        let mut rg = w.next_row_group()?;
        put::<Int64Type>(&mut rg, &column(0), None)?;
        put::<Int64Type>(&mut rg, &times, Some(&defs))?;
        for i in 1..=self.values {
            put::<Int64Type>(&mut rg, &column(i), None)?;
        }
        rg.close()?;
        self.rows.clear();
        Ok(())
    }

    /// Writes the last rows and closes the file; returns its size (0: no rows). Called
    /// once.
    fn finish(&mut self) -> io::Result<u64> {
        let path = self.path.clone();
        let mut done = || -> Result<(), ParquetError> {
            self.flush()?;
            if let Some(w) = self.writer.take() {
                w.close()?;
            }
            Ok(())
        };
        done().map_err(|e| perr(&path, e))?;
        self.rows = Vec::new();
        Ok(std::fs::metadata(&path).map_or(0, |m| m.len()))
    }
}

/// A thread of the `threads` table, as its CPU's rings name it.
struct ThreadRow {
    name: Box<str>,
    prio: u32,
    first_ts: u64,
    /// The clock frequency of the ring `first_ts` is from (for `first_time_ns`).
    first_hz: u64,
    records: u64,
}

/// Adds a later ring's threads of one CPU to the earlier rings' (`into`): the latest
/// name and priority, the first time, the records counted over both.
fn merge_threads(
    into: &mut std::collections::BTreeMap<u64, ThreadRow>,
    later: std::collections::BTreeMap<u64, ThreadRow>,
) {
    for (thread, row) in later {
        match into.entry(thread) {
            std::collections::btree_map::Entry::Occupied(mut e) => {
                let t = e.get_mut();
                t.name = row.name;
                t.prio = row.prio;
                t.records += row.records;
            }
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(row);
            }
        }
    }
}

/// Writes the `threads` file of one CPU at `path` (nothing when `threads` is empty);
/// returns its size.
fn write_threads(
    path: &Path,
    threads: &std::collections::BTreeMap<u64, ThreadRow>,
) -> io::Result<u64> {
    if threads.is_empty() {
        return Ok(0);
    }
    let write = || -> Result<(), ParquetError> {
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d)?;
        }
        let file = File::create(path)?;
        let mut w = SerializedFileWriter::new(file, schema(THREADS_SCHEMA), properties())?;
        let mut rg = w.next_row_group()?;
        let ids: Vec<i64> = threads.keys().map(|&t| t as i64).collect();
        put::<Int64Type>(&mut rg, &ids, None)?;
        let names: Vec<ByteArray> = threads
            .values()
            .map(|t| ByteArray::from(t.name.as_bytes().to_vec()))
            .collect();
        put::<ByteArrayType>(&mut rg, &names, None)?;
        let prios: Vec<i32> = threads.values().map(|t| t.prio as i32).collect();
        put::<Int32Type>(&mut rg, &prios, None)?;
        let firsts: Vec<i64> = threads.values().map(|t| t.first_ts as i64).collect();
        put::<Int64Type>(&mut rg, &firsts, None)?;
        let times: Vec<i64> = threads
            .values()
            .filter_map(|t| ns(t.first_ts, t.first_hz))
            .collect();
        let defs: Vec<i16> = threads
            .values()
            .map(|t| i16::from(ns(t.first_ts, t.first_hz).is_some()))
            .collect();
        put::<Int64Type>(&mut rg, &times, Some(&defs))?;
        let counts: Vec<i64> = threads.values().map(|t| t.records as i64).collect();
        put::<Int64Type>(&mut rg, &counts, None)?;
        rg.close()?;
        w.close()?;
        Ok(())
    };
    write().map_err(|e| perr(path, e))?;
    Ok(std::fs::metadata(path).map_or(0, |m| m.len()))
}

/// What was written for one ring.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionSummary {
    /// Rows of the records table.
    pub rows: u64,
    /// Part files of the records table.
    pub parts: u64,
    /// Bytes of all files written.
    pub bytes: u64,
}

/// The records of one ring of one dump: `records/dump=<id>/cpu=<n>/part-<k>.parquet`
/// and its side-table files.
pub struct ParquetPartition {
    dir: PathBuf,
    meta: RingInfo,
    names: Names,
    symbols: Option<Arc<dyn FunctionNames>>,
    symbol_cache: HashMap<u64, Option<Box<str>>>,
    /// Made at the first rows and dropped when the ring is done (about 0.6 MB: a
    /// partition waiting for its turn, or done, holds none of it).
    chunks: Option<ColumnChunkEncoder>,
    cols: Option<Box<Records>>,
    /// File names of the records table: `part-<k>.parquet`, or
    /// `ring<i>-part-<k>.parquet` for the second ring of a CPU.
    prefix: String,
    writer: Option<(PathBuf, SerializedFileWriter<File>)>,
    closed: bool,
    rows_in_part: u64,
    summary: PartitionSummary,
    images: Side,
    lost: Side,
    /// The `threads` table's rows of this ring, by thread (at most
    /// [`super::MAX_THREAD_NAMES`]), and where they go.
    threads: std::collections::BTreeMap<u64, ThreadRow>,
    threads_path: PathBuf,
    props: Arc<WriterProperties>,
    schema: Arc<Type>,
}

impl ParquetPartition {
    fn open_part(&mut self) -> io::Result<()> {
        let path = self.dir.join(format!(
            "{}part-{}.parquet",
            self.prefix, self.summary.parts
        ));
        let file = File::create(&path).map_err(|e| ioerr(&path, e))?;
        let w = SerializedFileWriter::new(file, self.schema.clone(), self.props.clone())
            .map_err(|e| perr(&path, e))?;
        self.writer = Some((path, w));
        self.summary.parts += 1;
        self.rows_in_part = 0;
        Ok(())
    }

    fn close_part(&mut self) -> io::Result<()> {
        if let Some((path, w)) = self.writer.take() {
            w.close().map_err(|e| perr(&path, e))?;
            self.summary.bytes += std::fs::metadata(&path).map_or(0, |m| m.len());
        }
        Ok(())
    }

    fn flush_rows(&mut self) -> io::Result<()> {
        let rows = self.cols.as_ref().map_or(0, |c| c.len());
        if rows == 0 {
            return Ok(());
        }
        if self.writer.is_none() {
            self.open_part()?;
        }
        if let (Some((path, w)), Some(cols)) = (&mut self.writer, &mut self.cols) {
            let chunks = match &mut self.chunks {
                Some(c) => c,
                None => self
                    .chunks
                    .insert(ColumnChunkEncoder::new().map_err(|e| perr(path, e))?),
            };
            cols.write(w, chunks, &self.names)
                .map_err(|e| perr(path, e))?;
            cols.clear();
        }
        self.rows_in_part += rows as u64;
        if self.rows_in_part >= PART_ROWS {
            self.close_part()?;
        }
        Ok(())
    }

    /// Writes the last row group and the side tables (once), and frees the buffers.
    fn close(&mut self) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        self.flush_rows()?;
        self.close_part()?;
        self.summary.bytes += self.images.finish()?;
        self.summary.bytes += self.lost.finish()?;
        // The threads are written by `ParquetDump::finish`, one file per CPU over all
        // its rings (a CPU with two rings names a thread in one row, not two).
        self.cols = None;
        self.chunks = None;
        Ok(())
    }

    /// Writes the last row group and the side tables; returns what was written.
    pub fn finish(mut self) -> io::Result<PartitionSummary> {
        self.close()?;
        Ok(self.summary)
    }
}

impl Sink for ParquetPartition {
    type Error = io::Error;

    #[inline]
    fn record(&mut self, item: &Item) -> io::Result<()> {
        ParquetPartition::record(self, item)
    }

    /// Closes the ring's files (last row group, side tables) and frees its buffers.
    fn finish(&mut self) -> io::Result<()> {
        self.close()
    }
}

impl ParquetPartition {
    /// Takes the next record of the ring (in ring order).
    #[inline]
    pub fn record(&mut self, item: &Item) -> io::Result<()> {
        let hz = self.meta.clock_hz;
        let names = &self.names;
        let c = self.cols.get_or_insert_with(Box::default);
        let row = c.ts.len();
        c.ts.push(item.ts as i64);
        c.time_ns.opt(row, ns(item.ts, hz));
        c.n.opt(row, item.number.map(|n| n as i64));
        // Every event kind is in `Kind::EVENTS`, so has a code; 0 is never reached.
        let kind = names.kinds.code.get(item.event.kind() as usize);
        c.kind.push(kind.copied().flatten().unwrap_or(0));
        let entry = |c: &mut Records, e: KernelEntry| {
            c.path.byte(row, e.path().into_bits() & 7);
            if let Some(s) = e.as_syscall() {
                let n = s.syscall();
                c.syscall.i32(row, i32::from(n));
                if let Some(&Some(code)) = names.syscalls.code.get(usize::from(n)) {
                    c.syscall_name.byte(row, code);
                }
                Some(s)
            } else {
                if names.linux {
                    // The column is plain strings for a LinuxArm ring (see `Names`).
                    if let Some((_, name)) = super::linux_syscall(e, SyscallAbi::LinuxArm) {
                        c.syscall_name.binary(row, name.as_bytes());
                    }
                }
                None
            }
        };
        match &item.event {
            Event::KernelEntry(e) => {
                if let Some(s) = entry(c, *e) {
                    let t = s.cap_type();
                    c.cap.i32(row, i32::from(t));
                    if let Some(&Some(code)) = names.caps.code.get(usize::from(t)) {
                        c.cap_name.byte(row, code);
                    }
                    c.label.i32(row, s.label() as i32);
                    c.fastpath.byte(row, u8::from(s.fastpath()));
                } else if let Some(o) = e.as_other() {
                    c.core.i32(row, i32::from(o.core()));
                    c.word.i32(row, o.word() as i32);
                }
            }
            Event::KernelExit(d) => {
                if let Some(e) = item.entry {
                    entry(c, e);
                }
                match d {
                    ExitDuration::Ticks(t) => {
                        c.duration_ticks.opt(row, Some(*t as i64));
                        c.duration_ns.opt(row, ns(*t, hz));
                    }
                    ExitDuration::NoEntry => c.exit_note.byte(row, NO_ENTRY),
                    ExitDuration::NestingOverflow => c.exit_note.byte(row, NESTING_OVERFLOW),
                }
            }
            Event::Interrupt { irq } => c.irq.i32(row, *irq as i32),
            Event::FunctionEntry { func } | Event::FunctionExit { func } => {
                c.func.opt(row, Some(*func as i64));
                if let Some(symbols) = &self.symbols {
                    let name = self
                        .symbol_cache
                        .entry(*func)
                        .or_insert_with(|| symbols.name(*func).map(String::into_boxed_str));
                    if let Some(name) = name {
                        c.symbol.binary(row, name.as_bytes());
                    }
                }
            }
            Event::User { id, payload } => {
                c.user_id.i32(row, *id as i32);
                c.payload.binary(row, payload.as_bytes());
            }
            Event::Image { base, size, id } => self.images.push([item.ts, *base, *size, *id])?,
            Event::Lost { count, since } => self.lost.push([item.ts, *count, *since, 0])?,
            Event::ThreadSwitch { thread } => c.thread.opt(row, Some(*thread as i64)),
            Event::ClockBack { back } => c.back.opt(row, Some(*back as i64)),
            Event::ThreadName { thread, prio, name } => {
                c.thread.opt(row, Some(*thread as i64));
                let full = self.threads.len() >= super::MAX_THREAD_NAMES;
                let name = || String::from_utf8_lossy(name.as_bytes()).into();
                match self.threads.entry(*thread) {
                    std::collections::btree_map::Entry::Occupied(mut e) => {
                        let t = e.get_mut();
                        t.name = name();
                        t.prio = *prio;
                        t.records += 1;
                    }
                    std::collections::btree_map::Entry::Vacant(e) if !full => {
                        e.insert(ThreadRow {
                            name: name(),
                            prio: *prio,
                            first_ts: item.ts,
                            first_hz: self.meta.clock_hz,
                            records: 1,
                        });
                    }
                    std::collections::btree_map::Entry::Vacant(_) => {}
                }
            }
        }
        self.summary.rows += 1;
        if self
            .cols
            .as_ref()
            .is_some_and(|c| c.len() >= ROW_GROUP_ROWS)
        {
            self.flush_rows()?;
        }
        Ok(())
    }
}

/// The Parquet tables of one dump under `DIR`: one [`ParquetPartition`] per ring.
pub struct ParquetDump {
    parts: Vec<ParquetPartition>,
    /// The output directory, and the temporary one the dump's tables are written in.
    out: PathBuf,
    tmp: tempfile::TempDir,
    /// `tmp`'s path and the dump id, for the empty side tables.
    dir: PathBuf,
    id: String,
    rings_path: PathBuf,
    rings: Vec<RingInfo>,
}

/// `DIR/<table>/dump=<id>`.
pub fn dump_dir(dir: &Path, table: &str, id: &str) -> PathBuf {
    dir.join(table).join(format!("dump={id}"))
}

impl ParquetDump {
    /// Prepares the partitions of the dump of `meta` under `dir`. They are written into
    /// a temporary directory in `dir` (`tempfile::TempDir`, `.tracemark-parquet-*`, which
    /// the tables' globs do not reach) and moved into place by [`ParquetDump::finish`],
    /// replacing the files an earlier export of the same dump left there: a failed or
    /// killed export leaves the earlier one whole and no partial partition behind.
    /// `symbols` fills the `symbol` column.
    pub fn new(
        out: &Path,
        meta: &DumpMeta,
        symbols: Option<Arc<dyn FunctionNames>>,
    ) -> io::Result<Self> {
        std::fs::create_dir_all(out).map_err(|e| ioerr(out, e))?;
        let tmp = tempfile::Builder::new()
            .prefix(".tracemark-parquet-")
            .tempdir_in(out)
            .map_err(|e| ioerr(out, e))?;
        let tmp_path = tmp.path().to_path_buf();
        let dir = tmp_path.as_path();
        let props = properties();
        let schema = schema(RECORDS_SCHEMA);
        let mut parts = Vec::with_capacity(meta.rings.len());
        for (i, r) in meta.rings.iter().enumerate() {
            // Two rings of one CPU (concatenated dumps) share the CPU's partition
            // directory (every file at the same depth, for hive partitioning); the
            // second one's files are named after its ring.
            let cpu_dir = format!("cpu={}", r.cpu);
            let prefix = if meta.rings[..i].iter().any(|o| o.cpu == r.cpu) {
                format!("ring{i}-")
            } else {
                String::new()
            };
            let d = dump_dir(dir, "records", &meta.id).join(&cpu_dir);
            std::fs::create_dir_all(&d).map_err(|e| ioerr(&d, e))?;
            let side = |table: &str, schema: &'static str, values: usize| {
                let path = dump_dir(dir, table, &meta.id)
                    .join(&cpu_dir)
                    .join(format!("{prefix}part-0.parquet"));
                Side::new(path, schema, values, r.clock_hz)
            };
            parts.push(ParquetPartition {
                dir: d,
                meta: *r,
                names: Names::new(r.abi),
                symbols: symbols.clone(),
                symbol_cache: HashMap::new(),
                chunks: None,
                cols: None,
                writer: None,
                closed: false,
                rows_in_part: 0,
                summary: PartitionSummary::default(),
                images: side("images", IMAGES_SCHEMA, 3),
                lost: side("lost", LOST_SCHEMA, 2),
                threads: std::collections::BTreeMap::new(),
                threads_path: dump_dir(dir, "threads", &meta.id)
                    .join(&cpu_dir)
                    .join(format!("{prefix}part-0.parquet")),
                prefix,
                props: props.clone(),
                schema: schema.clone(),
            });
        }
        Ok(ParquetDump {
            parts,
            out: out.to_path_buf(),
            tmp,
            dir: dir.to_path_buf(),
            id: meta.id.clone(),
            rings_path: dump_dir(dir, "rings", &meta.id).join("part-0.parquet"),
            rings: meta.rings.clone(),
        })
    }

    /// The per-ring partitions, to feed in parallel (`[i]` takes ring `i`).
    pub fn partitions_mut(&mut self) -> &mut [ParquetPartition] {
        &mut self.parts
    }

    /// Takes the next record of ring `item.ring`.
    pub fn record(&mut self, item: &Item) -> io::Result<()> {
        let n = self.parts.len();
        match self.parts.get_mut(item.ring as usize) {
            Some(p) => p.record(item),
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("record of ring {} in a dump of {n} rings", item.ring),
            )),
        }
    }

    /// Finishes every partition and writes the `rings` table.
    pub fn finish(self) -> io::Result<PartitionSummary> {
        let mut sum = PartitionSummary::default();
        let mut records = Vec::with_capacity(self.parts.len());
        // Per CPU: the path of its first ring's threads file and the threads of all its
        // rings, in ring order.
        let mut threads: std::collections::BTreeMap<u32, (PathBuf, _)> = Default::default();
        for mut p in self.parts {
            p.close()?;
            let named = std::mem::take(&mut p.threads);
            match threads.entry(p.meta.cpu) {
                std::collections::btree_map::Entry::Occupied(mut e) => {
                    merge_threads(&mut e.get_mut().1, named)
                }
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert((p.threads_path.clone(), named));
                }
            }
            let s = p.finish()?;
            records.push(s.rows);
            sum.rows += s.rows;
            sum.parts += s.parts;
            sum.bytes += s.bytes;
        }
        for (path, named) in threads.values() {
            sum.bytes += write_threads(path, named)?;
        }
        // Side tables with no rows exist all the same (see the module documentation).
        let first_cpu = self.rings.first().map_or(0, |r| r.cpu);
        for (table, text) in [
            ("images", IMAGES_SCHEMA),
            ("lost", LOST_SCHEMA),
            ("threads", THREADS_SCHEMA),
        ] {
            let d = dump_dir(&self.dir, table, &self.id);
            if !d.exists() {
                let path = d.join(format!("cpu={first_cpu}")).join("part-0.parquet");
                sum.bytes += empty_table(&path, text)?;
            }
        }
        let path = &self.rings_path;
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).map_err(|e| ioerr(d, e))?;
        }
        let r = &self.rings;
        let i32s = |f: &dyn Fn(usize, &RingInfo) -> i32| -> Vec<i32> {
            r.iter().enumerate().map(|(i, m)| f(i, m)).collect()
        };
        let i64s = |f: &dyn Fn(usize, &RingInfo) -> u64| -> Vec<i64> {
            r.iter().enumerate().map(|(i, m)| f(i, m) as i64).collect()
        };
        let abis: Vec<ByteArray> = r
            .iter()
            .map(|m| {
                s(match m.abi {
                    SyscallAbi::Raw => "raw",
                    SyscallAbi::Sel4 => "sel4",
                    SyscallAbi::Sel4Mcs => "sel4-mcs",
                    SyscallAbi::LinuxArm => "linux-arm",
                })
            })
            .collect();
        let write = || -> Result<(), ParquetError> {
            let file = File::create(path)?;
            let mut w = SerializedFileWriter::new(file, schema(RINGS_SCHEMA), properties())?;
            let mut rg = w.next_row_group()?;
            put::<Int32Type>(&mut rg, &i32s(&|i, _| i as i32), None)?;
            put::<Int32Type>(&mut rg, &i32s(&|_, m| m.cpu as i32), None)?;
            put::<Int64Type>(&mut rg, &i64s(&|_, m| m.clock_hz), None)?;
            put::<Int64Type>(&mut rg, &i64s(&|_, m| m.producer_id), None)?;
            put::<ByteArrayType>(&mut rg, &abis, None)?;
            put::<Int64Type>(&mut rg, &i64s(&|_, m| m.overwritten), None)?;
            put::<Int64Type>(&mut rg, &i64s(&|_, m| m.dropped), None)?;
            put::<Int64Type>(&mut rg, &i64s(&|i, _| records[i]), None)?;
            rg.close()?;
            w.close()?;
            Ok(())
        };
        write().map_err(|e| perr(path, e))?;
        sum.bytes += std::fs::metadata(path).map_or(0, |m| m.len());
        // In place: each table's `dump=<id>` directory replaces the earlier export's.
        for table in ["records", "images", "lost", "threads", "rings"] {
            let from = dump_dir(&self.dir, table, &self.id);
            let to = dump_dir(&self.out, table, &self.id);
            match std::fs::remove_dir_all(&to) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(ioerr(&to, e)),
            }
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent).map_err(|e| ioerr(parent, e))?;
            }
            std::fs::rename(&from, &to).map_err(|e| ioerr(&to, e))?;
        }
        // What is left of the temporary directory (its emptied table directories) goes
        // with it.
        drop(self.tmp);
        Ok(sum)
    }
}

/// Writes a file of table `schema` with no rows at `path`; returns its size.
fn empty_table(path: &Path, schema_text: &'static str) -> io::Result<u64> {
    let write = || -> Result<(), ParquetError> {
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d)?;
        }
        let file = File::create(path)?;
        SerializedFileWriter::new(file, schema(schema_text), properties())?.close()?;
        Ok(())
    };
    write().map_err(|e| perr(path, e))?;
    Ok(std::fs::metadata(path).map_or(0, |m| m.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_schemas_parse() {
        for t in [
            RECORDS_SCHEMA,
            IMAGES_SCHEMA,
            LOST_SCHEMA,
            THREADS_SCHEMA,
            RINGS_SCHEMA,
        ] {
            assert!(parse_message_type(t).is_ok(), "{t}");
        }
        assert_eq!(schema(RECORDS_SCHEMA).get_fields().len(), 23);
    }

    /// The rows of a Parquet file as `name=value` strings.
    fn rows(path: &Path) -> Vec<Vec<String>> {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let r = SerializedFileReader::new(File::open(path).unwrap()).unwrap();
        r.get_row_iter(None)
            .unwrap()
            .map(|row| {
                row.unwrap()
                    .get_column_iter()
                    .map(|(n, f)| format!("{n}={f}"))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn records_and_side_tables_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let ring = RingInfo {
            overwritten: 5,
            dropped: 6,
            producer_id: 9,
            ..RingInfo::for_test(2, 500_000_000, SyscallAbi::Sel4)
        };
        let meta = DumpMeta::for_test(vec![ring], "p-h", 1);
        let mut d = ParquetDump::new(dir.path(), &meta, None).unwrap();
        let call = KernelEntry::syscall(1, 10, true, 42);
        let events = [
            (100, Event::KernelEntry(call), None),
            (
                110,
                Event::Image {
                    base: 0x8000,
                    size: 0x100,
                    id: 7,
                },
                None,
            ),
            (
                120,
                Event::Lost {
                    count: 4,
                    since: 90,
                },
                None,
            ),
            (
                130,
                Event::User {
                    id: 3,
                    payload: tracemark_format::UserPayload::new(b"ab").unwrap(),
                },
                None,
            ),
            (140, Event::KernelExit(ExitDuration::Ticks(40)), Some(call)),
            (150, Event::KernelExit(ExitDuration::NoEntry), None),
        ];
        for (i, (ts, event, entry)) in events.into_iter().enumerate() {
            let item = Item {
                ts,
                number: Some(i as u64),
                ring: 0,
                event,
                entry,
            };
            d.record(&item).unwrap();
        }
        let sum = d.finish().unwrap();
        assert_eq!((sum.rows, sum.parts), (6, 1));
        let base = |t: &str| dir.path().join(t).join("dump=p-h");
        let recs = rows(&base("records").join("cpu=2").join("part-0.parquet"));
        assert_eq!(recs.len(), 6);
        let has =
            |r: usize, f: &str| assert!(recs[r].iter().any(|c| c == f), "{f} not in {:?}", recs[r]);
        has(0, "kind=\"KENTRY\"");
        has(0, "syscall_name=\"Call\"");
        has(0, "cap_name=\"CNode\"");
        has(0, "label=42");
        has(0, "fastpath=true");
        has(0, "time_ns=200");
        has(0, "duration_ticks=null");
        has(3, "user_id=3");
        has(4, "duration_ticks=40");
        has(4, "duration_ns=80");
        has(4, "path=\"Syscall\"");
        has(5, "exit_note=\"no entry\"");
        has(5, "path=null");
        let lost = rows(&base("lost").join("cpu=2").join("part-0.parquet"));
        assert_eq!(lost, [["ts=120", "time_ns=240", "count=4", "since=90"]]);
        let images = rows(&base("images").join("cpu=2").join("part-0.parquet"));
        assert_eq!(images.len(), 1);
        assert!(images[0].contains(&"base=32768".to_string()), "{images:?}");
        let rings = rows(&base("rings").join("part-0.parquet"));
        assert!(rings[0].contains(&"overwritten=5".to_string()), "{rings:?}");
        assert!(rings[0].contains(&"records=6".to_string()), "{rings:?}");
    }

    /// Many rows with deltas of every size (delta encoding over several blocks, wide
    /// and zero-width miniblocks, negative and huge steps of `func`) read back equal.
    #[test]
    fn delta_columns_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let ring = RingInfo {
            producer_id: 1,
            ..RingInfo::for_test(0, 3, SyscallAbi::Raw)
        };
        let meta = DumpMeta::for_test(vec![ring], "d", 0);
        let mut d = ParquetDump::new(dir.path(), &meta, None).unwrap();
        let mut want = Vec::new();
        let mut ts = 5u64;
        for i in 0..1000u64 {
            ts += match i % 7 {
                0 => 0,
                1 => 1 << 40,
                2 => i * i,
                _ => 3,
            };
            let func = match i % 5 {
                0 => u64::MAX - i,
                1 => 0,
                _ => i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (i % 64),
            };
            want.push((ts, func));
            let item = Item {
                ts,
                number: (i % 100 != 7).then_some(i),
                ring: 0,
                event: Event::FunctionEntry { func },
                entry: None,
            };
            d.record(&item).unwrap();
        }
        d.finish().unwrap();
        let got = rows(&dir.path().join("records/dump=d/cpu=0/part-0.parquet"));
        assert_eq!(got.len(), want.len());
        for (i, (row, (ts, func))) in got.iter().zip(&want).enumerate() {
            let has = |f: String| assert!(row.contains(&f), "{f} not in {row:?}");
            has(format!("ts={ts}"));
            has(format!("func={func}"));
            match ns(*ts, 3) {
                Some(t) => has(format!("time_ns={t}")),
                None => has("time_ns=null".into()),
            }
            if i % 100 == 7 {
                has("n=null".into());
            } else {
                has(format!("n={i}"));
            }
        }
    }

    /// An unknown clock (hz 0): `time_ns` and `duration_ns` are null in every row
    /// (columns without values), the rest is there.
    #[test]
    fn unknown_clock_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let ring = RingInfo {
            producer_id: 1,
            ..RingInfo::for_test(1, 0, SyscallAbi::Raw)
        };
        let meta = DumpMeta::for_test(vec![ring], "z", 0);
        let mut d = ParquetDump::new(dir.path(), &meta, None).unwrap();
        for i in 0..300u64 {
            let event = match i % 3 {
                0 => Event::Interrupt { irq: i as u32 },
                1 => Event::KernelExit(ExitDuration::Ticks(i)),
                _ => Event::FunctionExit { func: i },
            };
            let item = Item {
                ts: 10 * i,
                number: Some(i),
                ring: 0,
                event,
                entry: None,
            };
            d.record(&item).unwrap();
        }
        d.finish().unwrap();
        let got = rows(&dir.path().join("records/dump=z/cpu=1/part-0.parquet"));
        assert_eq!(got.len(), 300);
        for (i, row) in got.iter().enumerate() {
            let has = |f: String| assert!(row.contains(&f), "{f} not in {row:?}");
            has(format!("ts={}", 10 * i));
            has("time_ns=null".into());
            has("duration_ns=null".into());
            match i % 3 {
                0 => has(format!("irq={i}")),
                1 => has(format!("duration_ticks={i}")),
                _ => has(format!("func={i}")),
            }
        }
    }

    /// Issue 20.10: two rings of CPU 0 both under `cpu=0` (the second's files named
    /// after its ring), computed columns signed (no unsigned annotation, a reader sees
    /// `bigint`), the schema version in the metadata, and `images`/`lost` present with
    /// no rows.
    #[test]
    fn a_repeated_cpu_shares_its_partition_and_times_are_signed() {
        use parquet::basic::LogicalType;
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let dir = tempfile::tempdir().unwrap();
        let r0 = RingInfo::for_test(0, 1_000_000, SyscallAbi::Raw);
        let r1 = RingInfo { index: 1, ..r0 };
        let meta = DumpMeta::for_test(vec![r0, r1], "two", 2);
        let mut d = ParquetDump::new(dir.path(), &meta, None).unwrap();
        for ring in 0..2u32 {
            for i in 0..3u64 {
                d.record(&Item {
                    ts: 100 * i + u64::from(ring),
                    number: Some(i),
                    ring,
                    event: Event::Interrupt { irq: 1 },
                    entry: None,
                })
                .unwrap();
            }
        }
        d.finish().unwrap();
        let cpu0 = dir.path().join("records/dump=two/cpu=0");
        let mut names: Vec<String> = std::fs::read_dir(&cpu0)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["part-0.parquet", "ring1-part-0.parquet"]);
        let second = rows(&cpu0.join("ring1-part-0.parquet"));
        assert_eq!(second.len(), 3);
        assert!(second[2].contains(&"ts=201".to_string()), "{second:?}");
        let file =
            SerializedFileReader::new(File::open(cpu0.join("part-0.parquet")).unwrap()).unwrap();
        let schema = file.metadata().file_metadata().schema_descr();
        for col in ["ts", "n", "duration_ticks", "back"] {
            let c = schema.columns().iter().find(|c| c.name() == col).unwrap();
            let unsigned = matches!(
                c.logical_type_ref(),
                Some(LogicalType::Integer(i)) if !i.is_signed
            );
            assert!(!unsigned, "{col} is unsigned");
        }
        let kv = file
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .unwrap();
        assert!(kv
            .iter()
            .any(|k| k.key == "tracemark.schema" && k.value.as_deref() == Some(SCHEMA_VERSION)));
        for table in ["images", "lost", "threads"] {
            let p = dir.path().join(table).join("dump=two/cpu=0/part-0.parquet");
            assert!(rows(&p).is_empty(), "{table}");
        }
    }

    /// Issue 19.8: a dump's tables are written in a temporary directory and moved into
    /// place at the end, replacing the earlier export's; an export dropped unfinished
    /// (a failure) leaves the earlier export whole and nothing else.
    #[test]
    fn an_export_replaces_the_earlier_one_only_when_finished() {
        let dir = tempfile::tempdir().unwrap();
        let ring = RingInfo::for_test(0, 1000, SyscallAbi::Raw);
        let meta = DumpMeta::for_test(vec![ring], "t", 3);
        let export = |n: u64, finish: bool| {
            let mut d = ParquetDump::new(dir.path(), &meta, None).unwrap();
            for i in 0..n {
                d.record(&Item {
                    ts: i,
                    number: Some(i),
                    ring: 0,
                    event: Event::Interrupt { irq: 2 },
                    entry: None,
                })
                .unwrap();
            }
            if finish {
                d.finish().unwrap();
            }
        };
        let part = dir.path().join("records/dump=t/cpu=0/part-0.parquet");
        let stale = dir.path().join("records/dump=t/cpu=0/part-9.parquet");
        export(5, true);
        std::fs::write(&stale, b"from an older export").unwrap();
        export(7, false);
        assert_eq!(
            rows(&part).len(),
            5,
            "an unfinished export replaced the earlier one"
        );
        export(7, true);
        assert_eq!(rows(&part).len(), 7);
        assert!(!stale.exists());
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn ns_conversion() {
        assert_eq!(ns(5, 0), None);
        assert_eq!(ns(7, 1_000_000_000), Some(7));
        assert_eq!(ns(3, 4), Some(750_000_000));
        // Past i64::MAX ns: null, not clamped (issue 20.11).
        assert_eq!(ns(u64::MAX, 1), None);
        assert_eq!(ns(1 << 63, 1_000_000_000), None);
        assert_eq!(ns((1 << 63) - 1, 1_000_000_000), Some(i64::MAX));
    }
    /// SWITCH (kind 8) and CLOCKBACK (kind 11) keep their names next to the kinds
    /// whose codes they would alias under `& 7` (KENTRY 0, FENTRY 3), and their
    /// `thread` and `back` columns read back (a kernel-half TCB address above
    /// `i64::MAX` included), null in the other rows.
    #[test]
    fn switch_and_clockback_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let ring = RingInfo {
            producer_id: 1,
            ..RingInfo::for_test(0, 1_000_000_000, SyscallAbi::Sel4)
        };
        let meta = DumpMeta::for_test(vec![ring], "s", 0);
        let mut d = ParquetDump::new(dir.path(), &meta, None).unwrap();
        let tcb = |i: u64| 0xffff_ff80_0010_0000u64 + (i % 7) * 0x400;
        for i in 0..400u64 {
            let event = match i % 4 {
                0 => Event::ThreadSwitch { thread: tcb(i) },
                1 => Event::KernelEntry(KernelEntry::syscall(1, 10, true, 42)),
                2 => Event::ClockBack { back: i * 1000 },
                _ => Event::FunctionEntry { func: i },
            };
            let item = Item {
                ts: 100 + i,
                number: Some(i),
                ring: 0,
                event,
                entry: None,
            };
            d.record(&item).unwrap();
        }
        d.finish().unwrap();
        let got = rows(&dir.path().join("records/dump=s/cpu=0/part-0.parquet"));
        assert_eq!(got.len(), 400);
        for (i, row) in got.iter().enumerate() {
            let i = i as u64;
            let has = |f: String| assert!(row.contains(&f), "{f} not in {row:?}");
            let (kind, thread, back) = match i % 4 {
                0 => ("SWITCH", tcb(i).to_string(), "null".to_string()),
                1 => ("KENTRY", "null".into(), "null".into()),
                2 => ("CLOCKBACK", "null".into(), (i * 1000).to_string()),
                _ => ("FENTRY", "null".into(), "null".into()),
            };
            has(format!("kind=\"{kind}\""));
            has(format!("thread={thread}"));
            has(format!("back={back}"));
        }
    }

    /// A THREAD record of ring `ring` at `ts` naming `thread`.
    fn named(ring: u32, ts: u64, thread: u64, prio: u32, name: &'static [u8]) -> Item {
        Item {
            ts,
            number: Some(ts),
            ring,
            event: Event::ThreadName {
                thread,
                prio,
                name: tracemark_format::record::UserPayload::new(name).unwrap(),
            },
            entry: None,
        }
    }

    /// Exports `items` of `rings` as dump `name` into a new folder.
    fn export_items(name: &str, rings: Vec<RingInfo>, items: &[Item]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let meta = DumpMeta::for_test(rings, name, 4);
        let mut d = ParquetDump::new(dir.path(), &meta, None).unwrap();
        for item in items {
            d.record(item).unwrap();
        }
        d.finish().unwrap();
        dir
    }

    /// Issue 17: one `threads` row per thread a ring names, with its latest name and
    /// priority, the time of its first THREAD record and their count; on the ring's CPU.
    #[test]
    fn threads_table_reads_back() {
        let r0 = RingInfo::for_test(0, 1_000_000_000, SyscallAbi::Raw);
        let r1 = RingInfo {
            index: 1,
            cpu: 1,
            ..r0
        };
        let dir = export_items(
            "th",
            vec![r0, r1],
            &[
                named(0, 10, 0x300, 1, b"consumer"),
                named(0, 11, 0x200, 3, b"producer"),
                named(0, 50, 0x300, 2, b"sink"),
                named(1, 12, 0x200, 3, b"producer"),
            ],
        );
        let cpu0 = rows(&dir.path().join("threads/dump=th/cpu=0/part-0.parquet"));
        assert_eq!(
            cpu0,
            [
                [
                    "thread=512",
                    "name=\"producer\"",
                    "prio=3",
                    "first_ts=11",
                    "first_time_ns=11",
                    "thread_records=1"
                ],
                [
                    "thread=768",
                    "name=\"sink\"",
                    "prio=2",
                    "first_ts=10",
                    "first_time_ns=10",
                    "thread_records=2"
                ],
            ]
        );
        let cpu1 = rows(&dir.path().join("threads/dump=th/cpu=1/part-0.parquet"));
        assert_eq!(cpu1.len(), 1);
        assert_eq!(cpu1[0][1], "name=\"producer\"");
    }

    /// Two rings of one CPU (a console holding seL4's snapshots and its halt dump): one
    /// `threads` row per thread over both, in the CPU's one file, so that the README's
    /// join names each SWITCH row once.
    #[test]
    fn threads_of_two_rings_of_one_cpu_are_one_row_each() {
        let r0 = RingInfo::for_test(0, 1_000_000_000, SyscallAbi::Raw);
        let r1 = RingInfo { index: 1, ..r0 };
        let dir = export_items(
            "two",
            vec![r0, r1],
            &[
                named(0, 10, 0x300, 1, b"server"),
                named(0, 11, 0x200, 3, b"root"),
                named(1, 90, 0x300, 2, b"server2"),
                named(1, 91, 0x400, 4, b"faulter"),
            ],
        );
        let cpu0 = dir.path().join("threads/dump=two/cpu=0");
        let files: Vec<_> = std::fs::read_dir(&cpu0)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(files, ["part-0.parquet"]);
        let got = rows(&cpu0.join("part-0.parquet"));
        let col = |r: &[String], i: usize| r[i].clone();
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(col(&got[0], 1), "name=\"root\"");
        assert_eq!(col(&got[1], 1), "name=\"server2\"");
        assert_eq!(col(&got[1], 2), "prio=2");
        assert_eq!(col(&got[1], 3), "first_ts=10");
        assert_eq!(col(&got[1], 5), "thread_records=2");
        assert_eq!(col(&got[2], 1), "name=\"faulter\"");
        assert_eq!(col(&got[2], 3), "first_ts=91");
    }
}
