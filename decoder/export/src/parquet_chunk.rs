//! Column chunks of the Parquet `records` table encoded here, page bytes and all, and
//! handed to `parquet`'s [`SerializedRowGroupWriter::append_column`].
//!
//! Why: through `parquet`'s `ColumnWriterImpl` every row costs every nullable column a
//! definition level pushed one at a time through its RLE encoder, plus the value
//! encoder's per-value work (hashing for dictionaries) — about 4 ns per column per row,
//! so 85 ns per record for the 18 sparse columns of the table. Here a column is a bitmap
//! of the rows present (one OR per row that has the column) and its values already in
//! their PLAIN bytes or dictionary codes; at the end of a row group each becomes one
//! zstd-compressed data page (and a dictionary page for string columns with a fixed set
//! of names). The bytes follow the Parquet format (`parquet.thrift`, Encodings.md):
//!
//! - data page v1: `u32` length of the definition levels, then the levels as one
//!   bit-packed run of width 1 of the RLE/bit-packing hybrid — the bitmap itself, its
//!   bytes in little-endian order (LSB first is the hybrid's bit order);
//! - values PLAIN (little-endian `INT32`/`INT64`, `u32` length + bytes for
//!   `BYTE_ARRAY`, bit-packed `BOOLEAN`), or `RLE_DICTIONARY`: a bit-width byte, then
//!   the codes as one bit-packed run;
//! - page headers (Thrift) by `parquet`'s [`SerializedPageWriter`], column metadata by
//!   its [`ColumnChunkMetaData`] builder.
//!
//! Columns written here carry no statistics (the `ts` column, written by `parquet`, has
//! them) and one data page per row group, listed in the file's offset index.
//!
//! [`SerializedRowGroupWriter::append_column`]: parquet::file::writer::SerializedRowGroupWriter::append_column

use bytes::Bytes;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::column::page::{CompressedPage, Page, PageWriter};
use parquet::column::writer::ColumnCloseResult;
use parquet::errors::ParquetError;
use parquet::file::metadata::{ColumnChunkMetaData, OffsetIndexBuilder};
use parquet::file::statistics::Statistics;
use parquet::file::writer::{SerializedPageWriter, TrackedWrite};
use parquet::schema::types::ColumnDescPtr;

/// The zstd level of every page (the `parquet` crate's default, 1).
pub const ZSTD_LEVEL: i32 = 1;

/// The rows of a row group that have a value in a column: one bit per row.
pub struct Bitmap {
    words: Vec<u64>,
}

impl Bitmap {
    /// All rows null, for row groups of up to `rows` rows.
    pub fn new(rows: usize) -> Self {
        Bitmap {
            words: vec![0; rows.div_ceil(64)],
        }
    }

    /// Marks `row` present; false (and nothing marked) past the capacity.
    #[inline(always)]
    pub fn set(&mut self, row: usize) -> bool {
        match self.words.get_mut(row >> 6) {
            Some(w) => {
                *w |= 1 << (row & 63);
                true
            }
            None => false,
        }
    }

    /// Back to all null, for `rows` rows used.
    pub fn clear(&mut self, rows: usize) {
        let n = rows.div_ceil(64).min(self.words.len());
        self.words[..n].fill(0);
    }

    /// The definition levels of the first `rows` rows, as a data page v1 starts.
    fn put_levels(&self, rows: usize, out: &mut Vec<u8>) {
        let groups = rows.div_ceil(8);
        let start = out.len();
        out.extend_from_slice(&[0; 4]);
        varint(out, ((groups as u64) << 1) | 1);
        let mut left = groups;
        for w in &self.words {
            if left == 0 {
                break;
            }
            let k = left.min(8);
            out.extend_from_slice(&w.to_le_bytes()[..k]);
            left -= k;
        }
        out.resize(out.len() + left, 0);
        let len = (out.len() - start - 4) as u32;
        out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    }
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// `v` zigzag-encoded as a ULEB128 varint.
fn zigzag(out: &mut Vec<u8>, v: i64) {
    varint(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// Values per block and per miniblock of [`put_delta`].
const DELTA_BLOCK: usize = 128;
const DELTA_MINI: usize = 32;

/// `values` in `DELTA_BINARY_PACKED`, as `parquet`'s encoder writes them (blocks of
/// 128 values in 4 miniblocks, the last miniblock padded with zeros) but packed 32
/// values at a time with a 128-bit accumulator rather than bit by bit.
fn put_delta(out: &mut Vec<u8>, values: &[i64]) {
    varint(out, DELTA_BLOCK as u64);
    varint(out, (DELTA_BLOCK / DELTA_MINI) as u64);
    varint(out, values.len() as u64);
    zigzag(out, values.first().copied().unwrap_or(0));
    let mut deltas = [0i64; DELTA_BLOCK];
    let mut prev = values.first().copied().unwrap_or(0);
    for block in values.get(1..).unwrap_or(&[]).chunks(DELTA_BLOCK) {
        let mut min = i64::MAX;
        for (d, &v) in deltas.iter_mut().zip(block) {
            *d = v.wrapping_sub(prev);
            prev = v;
            min = min.min(*d);
        }
        zigzag(out, min);
        let widths_at = out.len();
        out.extend_from_slice(&[0; DELTA_BLOCK / DELTA_MINI]);
        for (i, mini) in deltas[..block.len()].chunks(DELTA_MINI).enumerate() {
            // The last miniblock is padded with zeros.
            let mut packed = [0u64; DELTA_MINI];
            let mut or = 0;
            for (p, &d) in packed.iter_mut().zip(mini) {
                *p = d.wrapping_sub(min) as u64;
                or |= *p;
            }
            // The width of the largest value is that of their OR.
            let width = u64::BITS - or.leading_zeros();
            out[widths_at + i] = width as u8;
            if width == 0 {
                continue;
            }
            let (mut acc, mut bits) = (0u128, 0u32);
            for &v in &packed {
                acc |= u128::from(v) << bits;
                bits += width;
                if bits >= 64 {
                    out.extend_from_slice(&(acc as u64).to_le_bytes());
                    acc >>= 64;
                    bits -= 64;
                }
            }
            // 32 values of `width` bits: 4 × width bytes, so 0 or 32 bits are left.
            out.extend_from_slice(&(acc as u64).to_le_bytes()[..(bits / 8) as usize]);
        }
    }
}

/// The values of a column chunk (only the rows present).
pub enum Values<'a> {
    /// 64-bit integers: `DELTA_BINARY_PACKED`.
    Delta(&'a [i64]),
    /// Already in PLAIN encoding.
    Plain(&'a [u8]),
    /// Booleans, one byte (0 or 1) each: bit-packed PLAIN.
    Bools(&'a [u8]),
    /// Codes into a fixed dictionary of strings: `RLE_DICTIONARY`.
    Dict {
        /// The strings (at most 256).
        dict: &'a [&'static str],
        /// One code per value, each below `dict.len()`.
        codes: &'a [u8],
    },
}

/// Encodes column chunks; keeps its buffers and zstd context from one to the next.
pub struct ColumnChunkEncoder {
    zstd: zstd::bulk::Compressor<'static>,
    page: Vec<u8>,
}

impl ColumnChunkEncoder {
    /// A writer compressing at [`ZSTD_LEVEL`].
    pub fn new() -> Result<Self, ParquetError> {
        let zstd = zstd::bulk::Compressor::new(ZSTD_LEVEL)
            .map_err(|e| ParquetError::External(Box::new(e)))?;
        Ok(ColumnChunkEncoder {
            zstd,
            page: Vec::new(),
        })
    }

    fn compress(&mut self) -> Result<Bytes, ParquetError> {
        self.zstd
            .compress(&self.page)
            .map(Bytes::from)
            .map_err(|e| ParquetError::External(Box::new(e)))
    }

    /// The chunk of column `descr` for `rows` rows: `present` marks the rows with a
    /// value (`None`: a required column, every row has one), `values` are theirs;
    /// `statistics` go into the chunk's metadata.
    /// Returns the chunk's bytes and what `append_column` needs to know of them.
    pub fn chunk(
        &mut self,
        descr: ColumnDescPtr,
        rows: usize,
        present: Option<&Bitmap>,
        values: Values<'_>,
        statistics: Option<Statistics>,
    ) -> Result<(Bytes, ColumnCloseResult), ParquetError> {
        let mut sink = TrackedWrite::new(Vec::new());
        let mut pages = SerializedPageWriter::new(&mut sink);
        let (mut compressed, mut uncompressed) = (0usize, 0usize);
        let mut dictionary_page_offset = None;
        // A column without values (all null) is written PLAIN: no values, no dictionary.
        let values = match values {
            Values::Delta(&[]) | Values::Dict { codes: &[], .. } => Values::Plain(&[]),
            v => v,
        };
        let mut encodings = vec![Encoding::PLAIN, Encoding::RLE];
        if let Values::Delta(_) = values {
            encodings.push(Encoding::DELTA_BINARY_PACKED);
        }
        if let Values::Dict { dict, .. } = values {
            self.page.clear();
            put_strings(&mut self.page, dict);
            let buf = self.compress()?;
            let spec = pages.write_page(CompressedPage::new(
                Page::DictionaryPage {
                    buf,
                    num_values: dict.len() as u32,
                    encoding: Encoding::PLAIN,
                    is_sorted: false,
                },
                self.page.len(),
            ))?;
            dictionary_page_offset = Some(spec.offset as i64);
            compressed += spec.compressed_size;
            uncompressed += spec.uncompressed_size;
            encodings.push(Encoding::RLE_DICTIONARY);
        }
        self.page.clear();
        if let Some(p) = present {
            p.put_levels(rows, &mut self.page);
        }
        let encoding = put_values(&mut self.page, values);
        let buf = self.compress()?;
        let spec = pages.write_page(CompressedPage::new(
            Page::DataPage {
                buf,
                num_values: rows as u32,
                encoding,
                def_level_encoding: Encoding::RLE,
                rep_level_encoding: Encoding::RLE,
                statistics: None,
            },
            self.page.len(),
        ))?;
        let data_page_offset = spec.offset as i64;
        // The offset index `parquet` writes for its own columns: one page here.
        let mut index = OffsetIndexBuilder::new();
        index.append_offset_and_size(data_page_offset, spec.compressed_size as i32);
        index.append_row_count(rows as i64);
        compressed += spec.compressed_size;
        uncompressed += spec.uncompressed_size;
        let bytes = Bytes::from(sink.into_inner()?);
        let mut metadata = ColumnChunkMetaData::builder(descr);
        if let Some(s) = statistics {
            metadata = metadata.set_statistics(s);
        }
        let metadata = metadata
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL)?))
            .set_encodings(encodings)
            .set_num_values(rows as i64)
            .set_total_compressed_size(compressed as i64)
            .set_total_uncompressed_size(uncompressed as i64)
            .set_data_page_offset(data_page_offset)
            .set_dictionary_page_offset(dictionary_page_offset)
            .build()?;
        let close = ColumnCloseResult {
            bytes_written: compressed as u64,
            rows_written: rows as u64,
            metadata,
            bloom_filter: None,
            column_index: None,
            offset_index: Some(index.build()),
        };
        Ok((bytes, close))
    }
}

/// Writes the PLAIN encoding of `strings` (a dictionary page's values) to `page`.
fn put_strings(page: &mut Vec<u8>, strings: &[&str]) {
    for s in strings {
        page.extend_from_slice(&(s.len() as u32).to_le_bytes());
        page.extend_from_slice(s.as_bytes());
    }
}

/// Writes the encoded `values` of a data page (after its definition levels) to `page`;
/// returns their encoding.
fn put_values(page: &mut Vec<u8>, values: Values<'_>) -> Encoding {
    match values {
        Values::Delta(v) => {
            put_delta(page, v);
            Encoding::DELTA_BINARY_PACKED
        }
        Values::Plain(b) => {
            page.extend_from_slice(b);
            Encoding::PLAIN
        }
        Values::Bools(b) => {
            for g in b.chunks(8) {
                let byte = g
                    .iter()
                    .enumerate()
                    .fold(0u8, |a, (i, &v)| a | (v & 1) << i);
                page.push(byte);
            }
            Encoding::PLAIN
        }
        Values::Dict { dict, codes } => {
            let width = (usize::BITS - dict.len().saturating_sub(1).leading_zeros()).max(1);
            page.push(width as u8);
            varint(page, ((codes.len().div_ceil(8) as u64) << 1) | 1);
            for g in codes.chunks(8) {
                let v = g
                    .iter()
                    .enumerate()
                    .fold(0u64, |a, (i, &c)| a | u64::from(c) << (i as u32 * width));
                page.extend_from_slice(&v.to_le_bytes()[..width as usize]);
            }
            Encoding::RLE_DICTIONARY
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value encodings a data page holds, without a file or a compressor: booleans
    /// bit-packed LSB first; dictionary codes RLE/bit-packed (width, run header, eight
    /// codes in `width` bytes); PLAIN bytes as they are.
    #[test]
    fn values_encode_as_parquet_specifies() {
        let mut page = Vec::new();
        let bools = [1, 0, 1, 1, 0, 0, 0, 0, 1];
        assert_eq!(
            put_values(&mut page, Values::Bools(&bools)),
            Encoding::PLAIN
        );
        assert_eq!(page, [0b0000_1101, 0b1]);
        page.clear();
        let dict = ["a", "b", "c"];
        let codes = [0, 1, 2, 1, 0, 2, 2, 1, 1];
        let e = put_values(
            &mut page,
            Values::Dict {
                dict: &dict,
                codes: &codes,
            },
        );
        assert_eq!(e, Encoding::RLE_DICTIONARY);
        // Width 2; two groups of eight ((2 << 1) | 1 = 5); codes 2 bits each, LSB first.
        let first = codes[..8]
            .iter()
            .enumerate()
            .fold(0u16, |a, (i, &c)| a | u16::from(c) << (2 * i));
        assert_eq!(page[..2], [2, 5]);
        assert_eq!(page[2..4], first.to_le_bytes());
        assert_eq!(page[4..], [1, 0]);
        page.clear();
        put_strings(&mut page, &dict[..2]);
        assert_eq!(page, [1, 0, 0, 0, b'a', 1, 0, 0, 0, b'b']);
    }

    #[test]
    fn levels_are_the_bitmap_bytes() {
        let mut b = Bitmap::new(100);
        for r in [0, 3, 9, 64, 99] {
            assert!(b.set(r));
        }
        assert!(!b.set(128));
        let mut out = Vec::new();
        b.put_levels(100, &mut out);
        // 13 groups of 8: header (13 << 1) | 1 = 27, then 13 bytes.
        assert_eq!(&out[..5], &[14, 0, 0, 0, 27]);
        assert_eq!(out.len(), 4 + 1 + 13);
        assert_eq!(out[5], 0b1001);
        assert_eq!(out[6], 0b10);
        assert_eq!(out[5 + 8], 1);
        assert_eq!(out[5 + 12], 1 << 3);
        b.clear(100);
        out.clear();
        b.put_levels(100, &mut out);
        assert!(out[5..].iter().all(|&x| x == 0));
    }

    #[test]
    fn varints() {
        let mut out = Vec::new();
        varint(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
    }
}
