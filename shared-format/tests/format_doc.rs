//! `FORMAT.md` at the repository root defines the wire format for people who write a
//! decoder in another language. This test reads its machine-checked parts (tables and
//! code blocks preceded by `<!-- format_doc: NAME attr=value ... -->`) and checks every
//! size, offset, constant, name and worked example against the code, so that the
//! document and the code cannot drift apart.
//!
//! Table cells are compared after removing backticks and unescaping `\|`; `—` marks an
//! empty cell. Numbers may be decimal, `0x` hex, or small expressions (`2^60 - 1`).

use std::collections::{BTreeMap, BTreeSet};
use std::mem::{offset_of, size_of};

use tracemark_format::record::{
    self, BlockRecords, Event, ExitDuration, Kind, Time, UserPayload, END_MARKER, MAX_DELTA,
    MAX_RECORD_LEN, MAX_USER_PAYLOAD,
};
use tracemark_format::ring::{
    self, offsets, BlockHeader, BlockState, Geometry, Mode, RingHeader, RingView, BLOCK_HEADER_LEN,
    BLOCK_MAGIC, ENTRY_STACK_DEPTH, FORMAT_VERSION, HEADER_CRC, MAX_BLOCK_SIZE, MIN_BLOCK_COUNT,
    MIN_BLOCK_SIZE, RING_HEADER_LEN, RING_MAGIC, STATIC_HEADER_LEN, SUPPORTED_VERSIONS,
};
use tracemark_format::sel4::{
    EntryPath, KernelEntry, OtherEntryWord, SyscallAbi, SyscallEntryWord,
};
use tracemark_format::uart::{self, LineKind};
use tracemark_format::varint::{self, VarintError, MAX_VARINT_LEN};

const DOC: &str = include_str!("../../FORMAT.md");

/// Every anchor the document has; each is checked by a test below.
const ANCHORS: &[&str] = &[
    "constants",
    "ring_header",
    "crc",
    "geometry",
    "positions",
    "block_header",
    "block_states",
    "used_len",
    "varints",
    "varint_reads",
    "kinds",
    "kexit",
    "records",
    "deferred_records",
    "entry_paths",
    "syscall_word",
    "other_word",
    "entry_words",
    "syscall_abi",
    "syscall_names",
    "cap_names",
    "modes",
    "limits",
    "example_ring",
    "example_ring_header",
    "example_block",
    "example_records",
    "uart_field_counts",
    "uart_example",
];

// ---------------------------------------------------------------------------
// Reading the document
// ---------------------------------------------------------------------------

const ANCHOR_START: &str = "<!-- format_doc:";

/// An anchor's attributes and the lines after it.
struct Anchor {
    attrs: BTreeMap<String, String>,
    rest: Vec<&'static str>,
}

fn anchors() -> Vec<(String, Anchor)> {
    let lines: Vec<&'static str> = DOC.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let line = line.trim();
        let Some(body) = line.strip_prefix(ANCHOR_START) else {
            continue;
        };
        let body = body
            .strip_suffix("-->")
            .unwrap_or_else(|| panic!("line {}: anchor not closed on its line", i + 1));
        let mut words = split_attrs(body).into_iter();
        let name = words.next().expect("anchor without a name");
        let attrs = words
            .map(|w| {
                let (k, v) = w
                    .split_once('=')
                    .unwrap_or_else(|| panic!("anchor {name}: attribute {w} has no '='"));
                (k.to_string(), v.trim_matches('"').to_string())
            })
            .collect();
        out.push((
            name,
            Anchor {
                attrs,
                rest: lines[i + 1..].to_vec(),
            },
        ));
    }
    out
}

/// Splits on spaces outside double quotes.
fn split_attrs(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                word.push(c);
            }
            ' ' if !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            _ => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

fn anchor(name: &str) -> Anchor {
    let mut found: Vec<Anchor> = anchors()
        .into_iter()
        .filter(|(n, _)| n == name)
        .map(|(_, a)| a)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "FORMAT.md must have exactly one anchor {name}"
    );
    found.remove(0)
}

/// A Markdown table: rows as maps from column name to cell.
struct Table {
    name: String,
    attrs: BTreeMap<String, String>,
    columns: Vec<String>,
    rows: Vec<BTreeMap<String, String>>,
}

impl Table {
    fn load(name: &str) -> Table {
        let a = anchor(name);
        let mut lines = a.rest.iter().map(|l| l.trim()).skip_while(|l| l.is_empty());
        let mut table_lines = Vec::new();
        for l in lines.by_ref() {
            if !l.starts_with('|') {
                break;
            }
            table_lines.push(l);
        }
        assert!(
            table_lines.len() >= 3,
            "anchor {name} must be followed by a table with a header, a separator and rows"
        );
        let columns = cells(table_lines[0]);
        assert!(
            cells(table_lines[1])
                .iter()
                .all(|c| c.chars().all(|c| c == '-' || c == ':')),
            "{name}: second line is not a separator"
        );
        let rows = table_lines[2..]
            .iter()
            .map(|l| {
                let c = cells(l);
                assert_eq!(
                    c.len(),
                    columns.len(),
                    "{name}: row {l} has a wrong cell count"
                );
                columns.iter().cloned().zip(c).collect()
            })
            .collect();
        Table {
            name: name.to_string(),
            attrs: a.attrs,
            columns,
            rows,
        }
    }

    fn expect_columns(&self, columns: &[&str]) {
        assert_eq!(self.columns, columns, "columns of table {}", self.name);
    }

    fn attr(&self, key: &str) -> String {
        self.attrs
            .get(key)
            .unwrap_or_else(|| panic!("anchor {} has no attribute {key}", self.name))
            .clone()
    }
}

fn table(name: &str) -> Table {
    Table::load(name)
}

/// The cells of a table line, without backticks, `\|` unescaped.
fn cells(line: &str) -> Vec<String> {
    let line = line.trim();
    let inner = line
        .strip_prefix('|')
        .and_then(|l| l.strip_suffix('|'))
        .unwrap_or_else(|| panic!("table line {line} must start and end with '|'"));
    let mut out = Vec::new();
    let mut cell = String::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cell.push('|');
                chars.next();
            }
            '|' => out.push(std::mem::take(&mut cell)),
            _ => cell.push(c),
        }
    }
    out.push(cell);
    out.into_iter()
        .map(|c| c.replace('`', "").trim().to_string())
        .collect()
}

/// The fenced code block after an anchor.
fn code_block(name: &str) -> (BTreeMap<String, String>, Vec<&'static str>) {
    let a = anchor(name);
    let mut lines = a.rest.iter().skip_while(|l| l.trim().is_empty());
    let fence = lines.next().expect("code block");
    assert!(
        fence.starts_with("```"),
        "anchor {name} must be followed by a code block"
    );
    let body = lines
        .take_while(|l| !l.starts_with("```"))
        .copied()
        .collect();
    (a.attrs, body)
}

const EMPTY: &str = "—";

/// A number: decimal, `0x` hex, or an expression of `+ - * / ^` and parentheses over
/// numbers and the variables in `vars`.
fn eval(s: &str, vars: &[(&str, u128)]) -> u128 {
    let tokens = tokenize(s);
    let mut p = Parser {
        tokens: &tokens,
        at: 0,
        vars,
        text: s,
    };
    let v = p.sum();
    assert_eq!(p.at, tokens.len(), "trailing input in number {s:?}");
    v
}

fn num(s: &str) -> u128 {
    eval(s, &[])
}

fn num_u64(s: &str) -> u64 {
    u64::try_from(num(s)).unwrap_or_else(|_| panic!("{s} does not fit 64 bits"))
}

fn tokenize(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c.is_ascii_alphanumeric() || c == '_' {
            let mut t = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_ascii_alphanumeric() || c == '_' {
                    t.push(c);
                    chars.next();
                } else {
                    break;
                }
            }
            out.push(t);
        } else {
            out.push(c.to_string());
            chars.next();
        }
    }
    out
}

struct Parser<'a> {
    tokens: &'a [String],
    at: usize,
    vars: &'a [(&'a str, u128)],
    text: &'a str,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.at).map(String::as_str)
    }

    fn sum(&mut self) -> u128 {
        let mut v = self.product();
        while let Some(op @ ("+" | "-")) = self.peek() {
            let op = op.to_string();
            self.at += 1;
            let r = self.product();
            v = if op == "+" { v + r } else { v - r };
        }
        v
    }

    fn product(&mut self) -> u128 {
        let mut v = self.power();
        while let Some(op @ ("*" | "/")) = self.peek() {
            let op = op.to_string();
            self.at += 1;
            let r = self.power();
            v = if op == "*" { v * r } else { v / r };
        }
        v
    }

    fn power(&mut self) -> u128 {
        let base = self.atom();
        if self.peek() == Some("^") {
            self.at += 1;
            let exp = self.power();
            return base.pow(exp as u32);
        }
        base
    }

    fn atom(&mut self) -> u128 {
        let t = self
            .peek()
            .unwrap_or_else(|| panic!("number {:?} ends early", self.text))
            .to_string();
        self.at += 1;
        if t == "(" {
            let v = self.sum();
            assert_eq!(self.peek(), Some(")"), "unbalanced ( in {:?}", self.text);
            self.at += 1;
            return v;
        }
        let digits = t.replace('_', "");
        if let Some(hex) = digits.strip_prefix("0x") {
            return u128::from_str_radix(hex, 16)
                .unwrap_or_else(|_| panic!("bad hex {t} in {:?}", self.text));
        }
        if let Ok(v) = digits.parse() {
            return v;
        }
        self.vars
            .iter()
            .find(|(n, _)| *n == t)
            .map(|&(_, v)| v)
            .unwrap_or_else(|| panic!("not a number: {t} in {:?}", self.text))
    }
}

/// Space-separated hex bytes; a cell in parentheses (`(no bytes)`) is empty.
fn hex_bytes(s: &str) -> Vec<u8> {
    if s.starts_with('(') {
        return Vec::new();
    }
    s.split_whitespace()
        .map(|b| {
            assert_eq!(b.len(), 2, "byte {b} in {s:?} is not two hex digits");
            u8::from_str_radix(b, 16).unwrap_or_else(|_| panic!("bad byte {b} in {s:?}"))
        })
        .collect()
}

/// A quoted string cell's bytes, if the cell is quoted.
fn quoted(s: &str) -> Option<&[u8]> {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .map(str::as_bytes)
}

/// A `hexdump -C` listing: `*` repeats the line above until the next offset; the
/// last line is the total length.
fn parse_hexdump(lines: &[&str]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::new();
    let mut last_line: Vec<u8> = Vec::new();
    let mut repeat = false;
    for line in lines {
        let line = line.trim_end();
        if line == "*" {
            repeat = true;
            continue;
        }
        let (hex, ascii) = match line.split_once('|') {
            Some((hex, ascii)) => (hex, Some(ascii.strip_suffix('|').expect("ascii column"))),
            None => (line, None),
        };
        let mut words = hex.split_whitespace();
        let offset = usize::from_str_radix(words.next().expect("offset"), 16).expect("offset");
        if repeat {
            while out.len() < offset {
                out.extend_from_slice(&last_line);
            }
            repeat = false;
        }
        assert_eq!(out.len(), offset, "hexdump line {line} at the wrong offset");
        let bytes: Vec<u8> = words
            .map(|w| u8::from_str_radix(w, 16).expect("hex byte"))
            .collect();
        match ascii {
            Some(ascii) => {
                let shown: String = bytes
                    .iter()
                    .map(|&b| {
                        if (0x20..0x7f).contains(&b) {
                            b as char
                        } else {
                            '.'
                        }
                    })
                    .collect();
                assert_eq!(ascii, shown, "ascii column of hexdump line {line}");
                out.extend_from_slice(&bytes);
                last_line = bytes;
            }
            None => assert!(bytes.is_empty(), "length line {line} has bytes"),
        }
    }
    out
}

// ---------------------------------------------------------------------------
// What the code says
// ---------------------------------------------------------------------------

/// A struct field: name, offset, size.
#[derive(Debug, Clone, Copy)]
struct FieldLayout {
    name: &'static str,
    offset: usize,
    size: usize,
}

fn field_size<T, F>(_: impl Fn(&T) -> &F) -> usize {
    size_of::<F>()
}

/// The fields of a struct, in order. The destructuring pattern makes this fail to
/// compile when a field is added or renamed, so the lists cannot go stale.
macro_rules! layout {
    ($t:ident { $($f:ident),* $(,)? }) => {{
        #[allow(dead_code)]
        fn exhaustive(v: $t) {
            let $t { $($f: _),* } = v;
        }
        vec![$(FieldLayout {
            name: stringify!($f),
            offset: offset_of!($t, $f),
            size: field_size(|x: &$t| &x.$f),
        }),*]
    }};
}

fn ring_header_layout() -> Vec<FieldLayout> {
    layout!(RingHeader {
        magic,
        version,
        header_len,
        block_size,
        block_count,
        seq_modulus,
        clock_hz,
        producer_id,
        cpu_id,
        mode,
        syscall_abi,
        flags,
        static_crc,
        owner,
        write_pos,
        commit_pos,
        overwritten,
        dropped,
        first_drop_ts,
        reported_drops,
        nest,
        last_pos,
        last_ts,
        entry_depth,
        pending_pos,
        entry_stack,
        reserved1,
    })
}

fn block_header_layout() -> Vec<FieldLayout> {
    layout!(BlockHeader {
        magic,
        seq,
        base_ts,
        lost_before,
        records,
        reserved,
    })
}

/// The class FORMAT.md gives a ring header field, derived from the code's constants.
fn ring_field_class(f: &FieldLayout) -> &'static str {
    if f.name.starts_with("reserved") {
        "reserved"
    } else if f.offset + f.size <= STATIC_HEADER_LEN {
        "static"
    } else if f.offset == STATIC_HEADER_LEN {
        "crc"
    } else if f.offset < offsets::NEST {
        "live"
    } else {
        "scratch"
    }
}

/// An event as FORMAT.md writes it in the `event` columns.
fn render(e: &Event) -> String {
    let name = e.kind().name();
    match e {
        Event::KernelEntry(k) => format!("{name} {}", render_entry(*k)),
        Event::KernelExit(ExitDuration::NoEntry) => format!("{name} no-entry"),
        Event::KernelExit(ExitDuration::NestingOverflow) => format!("{name} nesting-overflow"),
        Event::KernelExit(ExitDuration::Ticks(t)) => format!("{name} {t} ticks"),
        Event::Interrupt { irq } => format!("{name} {irq}"),
        Event::FunctionEntry { func } | Event::FunctionExit { func } => {
            format!("{name} {func:#x}")
        }
        Event::User { id, payload } => {
            let data: Vec<String> = payload
                .as_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            format!(
                "{name} id={id} len={} data={}",
                payload.as_bytes().len(),
                data.join(" ")
            )
        }
        Event::Image { base, size, id } => {
            format!("{name} base={base:#x} size={size:#x} id={id:#x}")
        }
        Event::Lost { count, since } => format!("{name} count={count} since={since}"),
        Event::ThreadSwitch { thread } => format!("{name} thread={thread:#x}"),
        Event::ThreadName {
            thread,
            prio,
            name: n,
        } => format!(
            "{name} thread={thread:#x} prio={prio} name={}",
            String::from_utf8_lossy(n.as_bytes())
        ),
        Event::ClockBack { back } => format!("{name} back={back}"),
    }
}

fn render_entry(k: KernelEntry) -> String {
    match (k.as_syscall(), k.as_other()) {
        (Some(s), None) => format!(
            "{} syscall={} cap_type={} fastpath={} label={}",
            k.path().name(),
            s.syscall(),
            s.cap_type(),
            u8::from(s.fastpath()),
            s.label()
        ),
        (None, Some(o)) => format!("{} core={} word={}", k.path().name(), o.core(), o.word()),
        _ => panic!("entry word {:#x} is both or neither layout", k.0),
    }
}

fn varint_bytes(v: u64) -> Vec<u8> {
    let mut buf = [0u8; MAX_VARINT_LEN];
    let n = varint::write(&mut buf, 0, v);
    buf[..n].to_vec()
}

// ---------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------

#[test]
fn every_anchor_is_checked() {
    let found: BTreeSet<String> = anchors().into_iter().map(|(n, _)| n).collect();
    let known: BTreeSet<String> = ANCHORS.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        found, known,
        "anchors in FORMAT.md vs anchors this test checks"
    );
}

#[test]
fn constants() {
    enum V {
        Num(u128),
        Bytes(&'static [u8]),
        List(Vec<u128>),
    }
    let expected: BTreeMap<&str, V> = [
        ("RING_MAGIC", V::Bytes(&RING_MAGIC)),
        ("FORMAT_VERSION", V::Num(FORMAT_VERSION.into())),
        (
            "SUPPORTED_VERSIONS",
            V::List(SUPPORTED_VERSIONS.iter().map(|&v| v.into()).collect()),
        ),
        ("RING_HEADER_LEN", V::Num(RING_HEADER_LEN as u128)),
        ("STATIC_HEADER_LEN", V::Num(STATIC_HEADER_LEN as u128)),
        ("BLOCK_HEADER_LEN", V::Num(BLOCK_HEADER_LEN as u128)),
        ("BLOCK_MAGIC", V::Num(BLOCK_MAGIC.into())),
        ("MIN_BLOCK_SIZE", V::Num(MIN_BLOCK_SIZE.into())),
        ("MAX_BLOCK_SIZE", V::Num(MAX_BLOCK_SIZE.into())),
        ("MIN_BLOCK_COUNT", V::Num(MIN_BLOCK_COUNT.into())),
        ("ENTRY_STACK_DEPTH", V::Num(ENTRY_STACK_DEPTH as u128)),
        ("MAX_RECORD_LEN", V::Num(MAX_RECORD_LEN as u128)),
        ("MAX_USER_PAYLOAD", V::Num(MAX_USER_PAYLOAD as u128)),
        ("MAX_DELTA", V::Num(MAX_DELTA.into())),
        ("MAX_VARINT_LEN", V::Num(MAX_VARINT_LEN as u128)),
        ("END_MARKER", V::Num(END_MARKER.into())),
        ("TIMESTAMP_MARKER", V::Num(Kind::Timestamp as u128)),
        ("MARKER", V::Bytes(uart::MARKER)),
        ("FRAME_VERSION", V::Num(uart::FRAME_VERSION.into())),
        ("DEFAULT_CHUNK_LEN", V::Num(uart::DEFAULT_CHUNK_LEN as u128)),
        ("MAX_CHUNK_LEN", V::Num(uart::MAX_CHUNK_LEN as u128)),
        ("MAX_LINE_LEN", V::Num(uart::MAX_LINE_LEN as u128)),
    ]
    .into_iter()
    .collect();
    let t = table("constants");
    t.expect_columns(&["name", "value", "meaning"]);
    let names: BTreeSet<&str> = t.rows.iter().map(|r| r["name"].as_str()).collect();
    assert_eq!(
        names,
        expected.keys().copied().collect(),
        "constants listed in FORMAT.md"
    );
    for row in &t.rows {
        let (name, cell) = (&row["name"], &row["value"]);
        match &expected[name.as_str()] {
            V::Num(v) => assert_eq!(num(cell), *v, "{name}"),
            V::Bytes(b) => assert_eq!(quoted(cell), Some(*b), "{name}"),
            V::List(l) => {
                let inner = cell
                    .strip_prefix('[')
                    .and_then(|c| c.strip_suffix(']'))
                    .unwrap_or_else(|| panic!("{name}: {cell} is not a [list]"));
                let doc: Vec<u128> = inner.split(',').map(num).collect();
                assert_eq!(&doc, l, "{name}");
            }
        }
    }
    // The magic's bytes as FORMAT.md spells them in prose.
    assert_eq!(BLOCK_MAGIC.to_le_bytes(), *b"TMBK");
    assert_eq!(Kind::End as u8, END_MARKER);
}

fn type_size(ty: &str) -> (usize, usize) {
    let (base, count) = match ty.split_once('[') {
        Some((base, n)) => (base, num(n.strip_suffix(']').expect("]")) as usize),
        None => (ty, 1),
    };
    let size = match base {
        "u8" => 1,
        "u16" => 2,
        "u32" => 4,
        "u64" => 8,
        _ => panic!("unknown type {ty}"),
    };
    (size, size * count)
}

fn check_layout_table(t: &Table, layout: &[FieldLayout], total: usize) {
    let doc: Vec<&str> = t.rows.iter().map(|r| r["field"].as_str()).collect();
    let code: Vec<&str> = layout.iter().map(|f| f.name).collect();
    assert_eq!(doc, code, "{}: field names and order", t.name);
    let mut end = 0;
    for (row, f) in t.rows.iter().zip(layout) {
        let (offset, size) = (num(&row["offset"]) as usize, num(&row["size"]) as usize);
        assert_eq!(offset, f.offset, "{}: offset of {}", t.name, f.name);
        assert_eq!(size, f.size, "{}: size of {}", t.name, f.name);
        let (elem, type_total) = type_size(&row["type"]);
        assert_eq!(type_total, size, "{}: type and size of {}", t.name, f.name);
        assert_eq!(
            offset % elem,
            0,
            "{}: {} is not naturally aligned",
            t.name,
            f.name
        );
        assert_eq!(offset, end, "{}: gap or overlap before {}", t.name, f.name);
        end = offset + size;
    }
    assert_eq!(end, total, "{}: fields do not fill the header", t.name);
}

#[test]
fn ring_header_table() {
    let t = table("ring_header");
    t.expect_columns(&["offset", "size", "type", "field", "class", "meaning"]);
    let layout = ring_header_layout();
    assert_eq!(size_of::<RingHeader>(), RING_HEADER_LEN);
    check_layout_table(&t, &layout, RING_HEADER_LEN);
    for (row, f) in t.rows.iter().zip(&layout) {
        assert_eq!(row["class"], ring_field_class(f), "class of {}", f.name);
    }
    assert_eq!(
        offsets::OWNER,
        STATIC_HEADER_LEN + 4,
        "live fields follow the CRC"
    );
}

#[test]
fn block_header_table() {
    let t = table("block_header");
    t.expect_columns(&["offset", "size", "type", "field", "meaning"]);
    assert_eq!(size_of::<BlockHeader>(), BLOCK_HEADER_LEN);
    check_layout_table(&t, &block_header_layout(), BLOCK_HEADER_LEN);
}

#[test]
fn crc_parameters() {
    let t = table("crc");
    t.expect_columns(&["parameter", "value"]);
    let a = HEADER_CRC.algorithm;
    let doc: BTreeMap<&str, &str> = t
        .rows
        .iter()
        .map(|r| (r["parameter"].as_str(), r["value"].as_str()))
        .collect();
    assert_eq!(num(doc["width"]), u128::from(a.width));
    assert_eq!(num(doc["poly"]), u128::from(a.poly));
    assert_eq!(num(doc["init"]), u128::from(a.init));
    assert_eq!(doc["refin"], a.refin.to_string());
    assert_eq!(doc["refout"], a.refout.to_string());
    assert_eq!(num(doc["xorout"]), u128::from(a.xorout));
    assert_eq!(num(doc["check"]), u128::from(a.check));
    assert_eq!(doc.len(), 7);
    let check = num(doc["check"]) as u32;
    assert_eq!(HEADER_CRC.checksum(b"123456789"), check);
    assert_eq!(
        uart::payload_crc(b"123456789"),
        check,
        "UART uses the same CRC"
    );
    assert_eq!(HEADER_CRC.checksum(b""), 0);
}

#[test]
fn geometry_examples() {
    let t = table("geometry");
    t.expect_columns(&[
        "block_size",
        "block_count",
        "shift",
        "seq_modulus",
        "max block_count",
    ]);
    for row in &t.rows {
        let (bs, count) = (
            num(&row["block_size"]) as u32,
            num(&row["block_count"]) as u32,
        );
        let g = Geometry::new(bs, count).unwrap();
        assert_eq!(u128::from(g.shift), num(&row["shift"]), "{row:?}");
        assert_eq!(
            u128::from(g.seq_modulus),
            num(&row["seq_modulus"]),
            "{row:?}"
        );
        let max = num(&row["max block_count"]) as u32;
        assert!(Geometry::new(bs, max).is_ok(), "{row:?}");
        assert!(Geometry::new(bs, max + 1).is_err(), "{row:?}");
    }
}

#[test]
fn position_examples_and_windows() {
    let t = table("positions");
    t.expect_columns(&[
        "position",
        "seq",
        "offset",
        "slot",
        "block_offset",
        "window (oldest to newest)",
    ]);
    let g = Geometry::new(
        num(&t.attr("block_size")) as u32,
        num(&t.attr("block_count")) as u32,
    )
    .unwrap();
    for row in &t.rows {
        let pos = num(&row["position"]) as u32;
        let p = g.split(pos);
        assert_eq!(u128::from(p.seq), num(&row["seq"]), "{row:?}");
        assert_eq!(u128::from(p.offset), num(&row["offset"]), "{row:?}");
        assert_eq!(g.join(p.seq, p.offset), pos);
        let slot = g.slot(p.seq);
        assert_eq!(u128::from(slot), num(&row["slot"]), "{row:?}");
        assert_eq!(
            g.block_offset(slot) as u128,
            num(&row["block_offset"]),
            "{row:?}"
        );
        // The window, as RingView finds it in a ring whose commit position is `pos`.
        let mut header = ring::new_header(&g, Mode::Overwrite, 0, 0, 0, SyscallAbi::Raw);
        header.commit_pos.set(pos);
        let mut mem = vec![0u8; g.ring_len()];
        mem[..RING_HEADER_LEN].copy_from_slice(zerocopy::IntoBytes::as_bytes(&header));
        let view = RingView::parse(&mem).unwrap();
        let window: Vec<u128> = view.blocks().map(|b| u128::from(b.seq)).collect();
        let doc: Vec<u128> = row["window (oldest to newest)"]
            .split(',')
            .map(num)
            .collect();
        assert_eq!(window, doc, "{row:?}");
    }
}

/// Section 7.3: where a dump of the used part ends, and that a reader takes an image cut
/// there as the whole ring, and one byte shorter as truncated.
#[test]
fn used_prefix_lengths_and_reading() {
    let t = table("used_len");
    t.expect_columns(&["write_pos", "used_len"]);
    let g = Geometry::new(
        num(&t.attr("block_size")) as u32,
        num(&t.attr("block_count")) as u32,
    )
    .unwrap();
    for row in &t.rows {
        let pos = num(&row["write_pos"]) as u32;
        let used = g.end_of(pos);
        assert_eq!(used as u128, num(&row["used_len"]), "{row:?}");
        // A first-lap ring written up to `pos`: every block before it opened.
        let mut header = ring::new_header(&g, Mode::Drop, 0, 0, 0, SyscallAbi::Raw);
        header.commit_pos.set(pos);
        header.write_pos.set(pos);
        let mut mem = vec![0u8; g.ring_len()];
        mem[..RING_HEADER_LEN].copy_from_slice(zerocopy::IntoBytes::as_bytes(&header));
        let mut at = RING_HEADER_LEN;
        let mut seq = 0u32;
        while at < used {
            mem[at..at + 4].copy_from_slice(&BLOCK_MAGIC.to_le_bytes());
            mem[at + 4..at + 8].copy_from_slice(&seq.to_le_bytes());
            at += g.block_size() as usize;
            seq += 1;
        }
        let states = |bytes: &[u8]| {
            let view = RingView::parse(bytes).unwrap();
            view.blocks()
                .map(|b| (state_name(b.state), b.records.len()))
                .collect::<Vec<_>>()
        };
        let whole = states(&mem);
        assert!(whole.iter().all(|(s, _)| *s != "missing"), "{row:?}");
        assert_eq!(states(&mem[..used]), whole, "{row:?}");
        assert_eq!(
            RingView::parse(&mem[..used]).unwrap().is_used_prefix(),
            used < g.ring_len()
        );
        if used > RING_HEADER_LEN {
            let short = states(&mem[..used - 1]);
            assert!(
                short.iter().any(|(s, _)| *s == "missing"),
                "{row:?}: {short:?}"
            );
        }
    }
}

fn state_name(s: BlockState) -> &'static str {
    match s {
        BlockState::Valid => "valid",
        BlockState::Empty => "empty",
        BlockState::Torn => "torn",
        BlockState::Missing => "missing",
    }
}

#[test]
fn block_states_behave_as_documented() {
    let t = table("block_states");
    t.expect_columns(&["state", "condition", "records"]);
    let doc: BTreeSet<&str> = t.rows.iter().map(|r| r["state"].as_str()).collect();
    let all = [
        BlockState::Valid,
        BlockState::Empty,
        BlockState::Torn,
        BlockState::Missing,
    ];
    assert_eq!(doc, all.iter().map(|&s| state_name(s)).collect());

    // Four blocks of 256 bytes, commit in block 2 on the first lap: window
    // (seq_modulus - 1), 0, 1, 2 in slots 3, 0, 1, 2.
    let g = Geometry::new(256, 4).unwrap();
    let mut header = ring::new_header(&g, Mode::Drop, 0, 0, 0, SyscallAbi::Raw);
    header.commit_pos.set(g.join(2, 40));
    let mut mem = vec![0u8; g.ring_len()];
    mem[..RING_HEADER_LEN].copy_from_slice(zerocopy::IntoBytes::as_bytes(&header));
    let put = |mem: &mut Vec<u8>, slot: u32, magic: u32, seq: u32| {
        let at = g.block_offset(slot);
        mem[at..at + 4].copy_from_slice(&magic.to_le_bytes());
        mem[at + 4..at + 8].copy_from_slice(&seq.to_le_bytes());
    };
    put(&mut mem, 3, 0, 0); // empty: before seq 0 on the first lap
    put(&mut mem, 0, BLOCK_MAGIC, 0); // valid
    put(&mut mem, 1, BLOCK_MAGIC, 5); // torn: wrong sequence number
    put(&mut mem, 2, BLOCK_MAGIC, 2); // valid, current: records end at offset 40
    let view = RingView::parse(&mem).unwrap();
    let states: Vec<_> = view
        .blocks()
        .map(|b| (state_name(b.state), b.records.len()))
        .collect();
    assert_eq!(
        states,
        [
            ("empty", 0),
            ("valid", 256 - 32),
            ("torn", 0),
            ("valid", 40 - 32)
        ]
    );
    // A zero magic between written blocks: the slot has held a block, so torn.
    put(&mut mem, 1, 0, 0);
    let view = RingView::parse(&mem).unwrap();
    assert_eq!(view.block(1).state, BlockState::Torn);
    // Once the ring has overwritten records, no slot of the window is unused.
    let mut wrapped = mem.clone();
    wrapped[ring::offsets::OVERWRITTEN] = 1;
    let view = RingView::parse(&wrapped).unwrap();
    assert_eq!(view.block(g.seq_back(2, 3)).state, BlockState::Torn);
    put(&mut mem, 1, 0x1234_5678, 1); // torn: bad magic
    let view = RingView::parse(&mem).unwrap();
    assert_eq!(view.block(1).state, BlockState::Torn);
    // A dump cut inside block 2 (slot 2): missing.
    let view = RingView::parse(&mem[..g.block_offset(3) - 1]).unwrap();
    assert_eq!(view.block(2).state, BlockState::Missing);
    // commit_pos 0: no blocks at all.
    header.commit_pos.set(0);
    mem[..RING_HEADER_LEN].copy_from_slice(zerocopy::IntoBytes::as_bytes(&header));
    assert_eq!(RingView::parse(&mem).unwrap().blocks().count(), 0);
}

#[test]
fn varint_examples() {
    let t = table("varints");
    t.expect_columns(&["value", "bytes"]);
    for row in &t.rows {
        let value = num_u64(&row["value"]);
        let bytes = hex_bytes(&row["bytes"]);
        assert_eq!(varint_bytes(value), bytes, "{row:?}");
        assert_eq!(varint::encoded_len(value), bytes.len());
        assert_eq!(varint::read(&bytes, 0), Ok((value, bytes.len())));
    }
    let t = table("varint_reads");
    t.expect_columns(&["bytes", "result"]);
    for row in &t.rows {
        let bytes = hex_bytes(&row["bytes"]);
        let got = varint::read(&bytes, 0).map(|(v, _)| v);
        let want = match row["result"].as_str() {
            "truncated" => Err(VarintError::Truncated),
            "overflow" => Err(VarintError::Overflow),
            n => Ok(num_u64(n)),
        };
        assert_eq!(got, want, "{row:?}");
    }
}

#[test]
fn kind_table() {
    let t = table("kinds");
    t.expect_columns(&["code", "name", "class", "counted", "payload"]);
    let mut codes = BTreeSet::new();
    for row in &t.rows {
        let code = num(&row["code"]) as u8;
        codes.insert(code);
        let kind = Kind::from_code(code).unwrap_or_else(|| panic!("code {code} has no kind"));
        assert_eq!(kind as u8, code);
        assert_eq!(row["name"], kind.name(), "name of code {code}");
        let event = Kind::EVENTS.contains(&kind);
        assert_eq!(
            row["class"],
            if event { "event" } else { "marker" },
            "code {code}"
        );
        // Every event but LOST counts toward a block's `records` (BlockHeader::records).
        let counted = event && kind != Kind::Lost;
        assert_eq!(
            row["counted"],
            if counted { "yes" } else { "no" },
            "code {code}"
        );
    }
    let defined: BTreeSet<u8> = (0..=255)
        .filter(|&c| Kind::from_code(c).is_some())
        .collect();
    assert_eq!(
        codes, defined,
        "FORMAT.md lists every kind code and no other"
    );
}

#[test]
fn kexit_wire_values() {
    let t = table("kexit");
    t.expect_columns(&["d", "event"]);
    for row in &t.rows {
        let mut bytes = vec![Kind::KernelExit as u8];
        bytes.extend(varint_bytes(num_u64(&row["d"])));
        let records: Vec<_> = BlockRecords::new(&bytes, 0).collect();
        let [Ok(r)] = records.as_slice() else {
            panic!("{row:?} decodes to {records:?}");
        };
        assert_eq!(render(&r.event), row["event"], "{row:?}");
    }
    // The encoder's side of the saturation.
    let mut buf = [0u8; MAX_RECORD_LEN];
    let e = Event::KernelExit(ExitDuration::Ticks(u64::MAX));
    let n = record::encode(&mut buf, Time::Delta(0), 0, &e);
    let r = BlockRecords::new(&buf[..n], 0).next().unwrap().unwrap();
    assert_eq!(
        r.event,
        Event::KernelExit(ExitDuration::Ticks(u64::MAX - 2))
    );
}

/// Checks a table of records against `stream`, the record bytes of one block:
/// offsets, bytes, header parts, and what [`BlockRecords`] yields.
fn check_records(t: &Table, stream: &[u8], base_offset: usize) {
    t.expect_columns(&["offset", "bytes", "kind", "delta", "payload", "ts", "event"]);
    let base_ts = num_u64(&t.attr("base_ts"));
    let mut it = BlockRecords::new(stream, base_ts);
    let mut next_offset = 0;
    // A TIMESTAMP marker row: the decoder consumes it with the record that follows.
    let mut after_marker = false;
    let mut ended = false;
    for row in &t.rows {
        let off = num(&row["offset"]) as usize - base_offset;
        assert_eq!(
            off, next_offset,
            "{}: rows must be contiguous: {row:?}",
            t.name
        );
        let bytes = hex_bytes(&row["bytes"]);
        next_offset = off + bytes.len();
        assert_eq!(
            stream.get(off..next_offset),
            Some(&bytes[..]),
            "{}: {row:?}",
            t.name
        );
        if row["kind"] == EMPTY {
            assert!(ended, "{}: only bytes after END may be unlabelled", t.name);
            continue;
        }
        assert!(!ended, "{}: records after END", t.name);
        if !after_marker {
            assert_eq!(it.offset(), off, "{}: decoder position at {row:?}", t.name);
        }
        let (header, after) = varint::read(stream, off).unwrap();
        let kind = Kind::from_code((header & 0xf) as u8).expect("kind");
        assert_eq!(row["kind"], kind.name(), "{}: {row:?}", t.name);
        assert_eq!(
            u128::from(header >> 4),
            num(&row["delta"]),
            "{}: {row:?}",
            t.name
        );
        match kind {
            Kind::Timestamp => {
                let (abs, end) = varint::read(stream, after).unwrap();
                assert_eq!(end, next_offset, "{}: marker length {row:?}", t.name);
                assert_eq!(u128::from(abs), num(&row["ts"]), "{}: {row:?}", t.name);
                assert_eq!(row["event"], EMPTY);
                after_marker = true;
            }
            Kind::End => {
                assert!(!after_marker, "{}: END right after a TIMESTAMP", t.name);
                assert_eq!(bytes.len(), 1, "{}: END is one byte", t.name);
                assert_eq!(it.next(), None, "{}: END must stop the block", t.name);
                ended = true;
            }
            _ => {
                let r = it
                    .next()
                    .unwrap_or_else(|| panic!("{}: {row:?} not decoded", t.name))
                    .unwrap_or_else(|e| panic!("{}: {row:?}: {e}", t.name));
                assert_eq!(
                    it.offset(),
                    next_offset,
                    "{}: record length of {row:?}",
                    t.name
                );
                assert_eq!(u128::from(r.ts), num(&row["ts"]), "{}: {row:?}", t.name);
                assert_eq!(render(&r.event), row["event"], "{}: {row:?}", t.name);
                after_marker = false;
            }
        }
    }
    assert!(
        !after_marker,
        "{}: table ends with a TIMESTAMP marker",
        t.name
    );
    assert_eq!(
        next_offset,
        stream.len(),
        "{}: table covers the block's bytes",
        t.name
    );
    assert_eq!(it.next(), None);
}

#[test]
fn record_examples_decode_as_documented() {
    let t = table("records");
    let stream: Vec<u8> = t.rows.iter().flat_map(|r| hex_bytes(&r["bytes"])).collect();
    check_records(&t, &stream, 0);
}

#[test]
fn deferred_entry_example_decodes_and_patches_as_documented() {
    let t = table("deferred_records");
    let stream: Vec<u8> = t.rows.iter().flat_map(|r| hex_bytes(&r["bytes"])).collect();
    check_records(&t, &stream, 0);
    // The placeholder is a 5-byte varint, and the patched word is written over it with
    // the same length: the stream with the placeholder differs only in those bytes.
    let pending = KernelEntry::PENDING;
    assert_eq!(varint_bytes(u64::from(pending.0)), pending.padded_varint());
    assert_eq!(pending.padded_varint(), [0xf8, 0xff, 0xff, 0xff, 0x0f]);
    let word = KernelEntry::syscall(7, 0, false, 0);
    assert_eq!(stream[1..6], word.padded_varint());
    let mut before = stream.clone();
    before[1..6].copy_from_slice(&pending.padded_varint());
    let first = BlockRecords::new(&before, 2000).next().unwrap().unwrap();
    assert_eq!(first.event, Event::KernelEntry(pending));
    assert_eq!(render(&first.event), "KENTRY Unknown core=7 word=67108863");
}

fn entry_field_mask(get: impl Fn(u32) -> u64) -> u32 {
    (0..32)
        .filter(|&b| get(1 << b) != 0)
        .fold(0, |m, b| m | 1 << b)
}

fn check_word_layout(name: &str, fields: &[(&str, &dyn Fn(u32) -> u64)]) {
    let t = table(name);
    t.expect_columns(&["lsb", "width", "field", "meaning"]);
    let doc: Vec<&str> = t.rows.iter().map(|r| r["field"].as_str()).collect();
    let code: Vec<&str> = fields.iter().map(|(n, _)| *n).collect();
    assert_eq!(doc, code, "{name}: fields");
    let mut all = 0u32;
    for (row, (field, get)) in t.rows.iter().zip(fields) {
        let (lsb, width) = (num(&row["lsb"]) as u32, num(&row["width"]) as u32);
        let mask = (((1u64 << width) - 1) << lsb) as u32;
        assert_eq!(mask, entry_field_mask(get), "{name}: bits of {field}");
        all |= mask;
    }
    assert_eq!(all, u32::MAX, "{name}: the fields cover the word");
}

#[test]
fn kernel_entry_word_layouts() {
    check_word_layout(
        "syscall_word",
        &[
            ("path", &|w| SyscallEntryWord::from_bits(w).path().into()),
            ("syscall", &|w| {
                SyscallEntryWord::from_bits(w).syscall().into()
            }),
            ("cap_type", &|w| {
                SyscallEntryWord::from_bits(w).cap_type().into()
            }),
            ("fastpath", &|w| {
                SyscallEntryWord::from_bits(w).fastpath().into()
            }),
            ("label", &|w| SyscallEntryWord::from_bits(w).label().into()),
        ],
    );
    check_word_layout(
        "other_word",
        &[
            ("path", &|w| OtherEntryWord::from_bits(w).path().into()),
            ("core", &|w| OtherEntryWord::from_bits(w).core().into()),
            ("word", &|w| OtherEntryWord::from_bits(w).word().into()),
        ],
    );
    let t = table("entry_words");
    t.expect_columns(&["word", "decoded"]);
    for row in &t.rows {
        let word = num(&row["word"]) as u32;
        assert_eq!(render_entry(KernelEntry(word)), row["decoded"], "{row:?}");
    }
}

#[test]
fn entry_paths() {
    let t = table("entry_paths");
    t.expect_columns(&["value", "name", "upstream", "meaning"]);
    let mut values = Vec::new();
    let mut upstream_listed = BTreeSet::new();
    for row in &t.rows {
        let v = num(&row["value"]) as u8;
        values.push(v);
        let path = EntryPath::from_bits(v);
        assert_eq!(path.into_bits(), v);
        assert_eq!(row["name"], path.name(), "path {v}");
        if row["upstream"] != EMPTY {
            let up = num(&row["upstream"]) as u32;
            upstream_listed.insert(up);
            assert_eq!(EntryPath::from_upstream_sel4(up), path, "upstream {up}");
        }
    }
    assert_eq!(
        values,
        (0..8).collect::<Vec<u8>>(),
        "all eight paths, in order"
    );
    for up in (0..64).filter(|u| !upstream_listed.contains(u)) {
        assert_eq!(
            EntryPath::from_upstream_sel4(up),
            EntryPath::Unknown,
            "upstream {up}"
        );
    }
}

#[test]
fn syscall_abi_values_and_names() {
    let t = table("syscall_abi");
    t.expect_columns(&["value", "name", "meaning"]);
    let mut values = BTreeSet::new();
    for row in &t.rows {
        let v = num(&row["value"]) as u8;
        values.insert(v);
        let abi = SyscallAbi::from_u8(v).unwrap_or_else(|| panic!("abi {v}"));
        assert_eq!(abi as u8, v);
        assert_eq!(row["name"], format!("{abi:?}"), "abi {v}");
    }
    let defined: BTreeSet<u8> = (0..=255)
        .filter(|&v| SyscallAbi::from_u8(v).is_some())
        .collect();
    assert_eq!(values, defined);

    let named = [SyscallAbi::Sel4, SyscallAbi::Sel4Mcs];
    for (anchor, key, lookup) in [
        (
            "syscall_names",
            "number",
            &(|abi: SyscallAbi, n: u8| abi.syscall_name(n)) as &dyn Fn(SyscallAbi, u8) -> _,
        ),
        ("cap_names", "tag", &|abi: SyscallAbi, n: u8| {
            abi.cap_name(n)
        }),
    ] {
        let t = table(anchor);
        t.expect_columns(&[key, "Sel4", "Sel4Mcs"]);
        let rows: BTreeMap<u8, &BTreeMap<String, String>> =
            t.rows.iter().map(|r| (num(&r[key]) as u8, r)).collect();
        for n in 0..=255u8 {
            assert_eq!(
                lookup(SyscallAbi::Raw, n),
                None,
                "{anchor}: Raw names nothing"
            );
            // LinuxArm numbers are in the entry word, not the 4-bit field.
            assert_eq!(lookup(SyscallAbi::LinuxArm, n), None, "{anchor}: LinuxArm");
            for abi in named {
                let doc = rows
                    .get(&n)
                    .map(|r| r[&format!("{abi:?}")].as_str())
                    .filter(|&c| c != EMPTY);
                assert_eq!(doc, lookup(abi, n), "{anchor}: {abi:?} {n}");
            }
        }
    }
}

#[test]
fn modes() {
    let t = table("modes");
    t.expect_columns(&["value", "name", "meaning"]);
    let mut values = BTreeSet::new();
    for row in &t.rows {
        let v = num(&row["value"]) as u8;
        values.insert(v);
        let mode = Mode::from_u8(v).unwrap_or_else(|| panic!("mode {v}"));
        assert_eq!(mode as u8, v);
        assert_eq!(row["name"], mode.name());
    }
    let defined: BTreeSet<u8> = (0..=255).filter(|&v| Mode::from_u8(v).is_some()).collect();
    assert_eq!(values, defined);
}

/// The shortest and longest records the encoder can produce.
fn record_length_range() -> (usize, usize) {
    let small = [
        Event::KernelEntry(KernelEntry(0)),
        Event::KernelExit(ExitDuration::NoEntry),
        Event::Interrupt { irq: 0 },
        Event::FunctionEntry { func: 0 },
        Event::FunctionExit { func: 0 },
        Event::User {
            id: 0,
            payload: UserPayload::new(&[]).unwrap(),
        },
        Event::Image {
            base: 0,
            size: 0,
            id: 0,
        },
        Event::Lost { count: 0, since: 0 },
        Event::ThreadSwitch { thread: 0 },
        Event::ThreadName {
            thread: 0,
            prio: 0,
            name: UserPayload::new(&[]).unwrap(),
        },
    ];
    let large = [
        Event::KernelEntry(KernelEntry(u32::MAX)),
        Event::KernelExit(ExitDuration::Ticks(u64::MAX)),
        Event::Interrupt { irq: u32::MAX },
        Event::FunctionEntry { func: u64::MAX },
        Event::FunctionExit { func: u64::MAX },
        Event::User {
            id: u32::MAX,
            payload: UserPayload::new(&[0xff; MAX_USER_PAYLOAD]).unwrap(),
        },
        Event::Image {
            base: u64::MAX,
            size: u64::MAX,
            id: u64::MAX,
        },
        Event::Lost {
            count: u64::MAX,
            since: 0,
        },
        Event::ThreadSwitch { thread: u64::MAX },
        Event::ThreadName {
            thread: u64::MAX,
            prio: u32::MAX,
            name: UserPayload::new(&[0xff; MAX_USER_PAYLOAD]).unwrap(),
        },
    ];
    let mut buf = [0u8; MAX_RECORD_LEN];
    let min = small
        .iter()
        .map(|e| record::encode(&mut buf, Time::Delta(0), 0, e))
        .min()
        .unwrap();
    let max = large
        .iter()
        .flat_map(|e| {
            [Time::Delta(MAX_DELTA), Time::Absolute(u64::MAX)]
                .map(|t| record::encode(&mut [0u8; MAX_RECORD_LEN], t, u64::MAX, e))
        })
        .max()
        .unwrap();
    (min, max)
}

#[test]
fn limits() {
    let t = table("limits");
    t.expect_columns(&["quantity", "min", "max", "note"]);
    let (shortest, longest) = record_length_range();
    // The longest duration a KEXIT carries: what u64::MAX ticks come back as.
    let kexit_max = {
        let mut buf = [0u8; MAX_RECORD_LEN];
        let e = Event::KernelExit(ExitDuration::Ticks(u64::MAX));
        let n = record::encode(&mut buf, Time::Delta(0), 0, &e);
        match BlockRecords::new(&buf[..n], 0)
            .next()
            .unwrap()
            .unwrap()
            .event
        {
            Event::KernelExit(ExitDuration::Ticks(t)) => t,
            other => panic!("{other:?}"),
        }
    };
    let min_ring = Geometry::new(MIN_BLOCK_SIZE, MIN_BLOCK_COUNT)
        .unwrap()
        .ring_len();
    // quantity -> (min, max); None: checked separately below.
    let expected: BTreeMap<&str, (Option<u128>, Option<u128>)> = [
        (
            "block_size",
            (Some(MIN_BLOCK_SIZE.into()), Some(MAX_BLOCK_SIZE.into())),
        ),
        ("block_count", (Some(MIN_BLOCK_COUNT.into()), None)),
        ("ring length", (Some(min_ring as u128), None)),
        (
            "record length",
            (Some(shortest as u128), Some(longest as u128)),
        ),
        ("record buffer", (None, Some(MAX_RECORD_LEN as u128))),
        ("USER payload", (Some(0), Some(MAX_USER_PAYLOAD as u128))),
        ("time delta in a header", (Some(0), Some(MAX_DELTA.into()))),
        ("KEXIT duration", (Some(0), Some(kexit_max.into()))),
        ("varint length", (Some(1), Some(MAX_VARINT_LEN as u128))),
        (
            "open kernel entries with durations",
            (Some(0), Some(ENTRY_STACK_DEPTH as u128)),
        ),
    ]
    .into_iter()
    .collect();
    let quantities: BTreeSet<&str> = t.rows.iter().map(|r| r["quantity"].as_str()).collect();
    assert_eq!(quantities, expected.keys().copied().collect());
    for row in &t.rows {
        let q = row["quantity"].as_str();
        let (min, max) = expected[q];
        for (col, want) in [("min", min), ("max", max)] {
            match want {
                Some(v) => assert_eq!(num(&row[col]), v, "{col} of {q}"),
                None if row[col] == EMPTY => {}
                None => {
                    // A formula in the ring's geometry: check it for every block size.
                    for shift in MIN_BLOCK_SIZE.trailing_zeros()..=MAX_BLOCK_SIZE.trailing_zeros() {
                        let bs = 1u32 << shift;
                        let vars = [("shift", u128::from(shift)), ("block_size", u128::from(bs))];
                        match q {
                            "block_count" => {
                                let max = eval(&row[col], &vars) as u32;
                                assert!(Geometry::new(bs, max).is_ok(), "{q} {bs}");
                                assert!(Geometry::new(bs, max + 1).is_err(), "{q} {bs}");
                            }
                            "ring length" => {
                                for count in [2u32, 3, 100] {
                                    let g = Geometry::new(bs, count).unwrap();
                                    let vars = [vars[0], vars[1], ("block_count", count.into())];
                                    assert_eq!(eval(&row[col], &vars), g.ring_len() as u128);
                                }
                            }
                            _ => panic!("no formula expected for {col} of {q}"),
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn example_ring_matches_the_code() {
    let (_, lines) = code_block("example_ring");
    let bytes = parse_hexdump(&lines);
    let view = RingView::parse(&bytes).expect("the example ring parses");
    assert_eq!(bytes.len(), view.ring_len());
    assert_eq!(
        HEADER_CRC.checksum(&bytes[..STATIC_HEADER_LEN]),
        view.header.static_crc.get()
    );

    // Header and block header fields, bytes and values.
    let check_fields = |t: &Table, layout: &[FieldLayout], base: usize| {
        t.expect_columns(&["offset", "field", "bytes", "value", "note"]);
        let doc: Vec<&str> = t.rows.iter().map(|r| r["field"].as_str()).collect();
        let code: Vec<&str> = layout.iter().map(|f| f.name).collect();
        assert_eq!(doc, code, "{}: every field, in order", t.name);
        for (row, f) in t.rows.iter().zip(layout) {
            let at = num(&row["offset"]) as usize;
            assert_eq!(at, base + f.offset, "{}: offset of {}", t.name, f.name);
            let listed = hex_bytes(&row["bytes"]);
            assert!(
                listed.len() <= f.size && !listed.is_empty(),
                "{}: {}",
                t.name,
                f.name
            );
            let field = &bytes[at..at + f.size];
            assert_eq!(
                &field[..listed.len()],
                &listed[..],
                "{}: bytes of {}",
                t.name,
                f.name
            );
            assert!(
                field[listed.len()..].iter().all(|&b| b == 0),
                "{}: {} bytes not listed must be 0",
                t.name,
                f.name
            );
            let value = &row["value"];
            match quoted(value) {
                Some(s) => assert_eq!(s, &listed[..], "{}: {}", t.name, f.name),
                None => {
                    let mut le = [0u8; 16];
                    le[..listed.len()].copy_from_slice(&listed);
                    assert_eq!(
                        num(value),
                        u128::from_le_bytes(le),
                        "{}: {}",
                        t.name,
                        f.name
                    );
                }
            }
        }
    };
    check_fields(&table("example_ring_header"), &ring_header_layout(), 0);

    let blocks: Vec<_> = view.blocks().collect();
    let valid: Vec<_> = blocks
        .iter()
        .filter(|b| b.state == BlockState::Valid)
        .collect();
    assert_eq!(valid.len(), 1, "the example has one valid block");
    let block = valid[0];
    assert!(block.is_current);
    assert!(blocks
        .iter()
        .all(|b| b.state == BlockState::Valid || b.state == BlockState::Empty));
    check_fields(
        &table("example_block"),
        &block_header_layout(),
        block.offset,
    );

    let t = table("example_records");
    assert_eq!(num_u64(&t.attr("base_ts")), block.header.base_ts.get());
    check_records(&t, block.records, block.offset + BLOCK_HEADER_LEN);
    let counted = t
        .rows
        .iter()
        .filter_map(|r| Kind::EVENTS.iter().find(|k| k.name() == r["kind"]))
        .filter(|&&k| k != Kind::Lost)
        .count();
    assert_eq!(
        counted as u32,
        block.header.records.get(),
        "the block's record count"
    );
}

#[test]
fn uart_framing() {
    let t = table("uart_field_counts");
    t.expect_columns(&["line", "fields"]);
    for row in &t.rows {
        let kind = match row["line"].as_str() {
            "begin" => LineKind::Begin,
            "data" => LineKind::Data,
            "end" => LineKind::End,
            other => panic!("line kind {other}"),
        };
        assert_eq!(num(&row["fields"]), kind.field_count() as u128);
    }
    assert_eq!(t.rows.len(), 3);

    let (attrs, lines) = code_block("uart_example");
    let payload = attrs["payload"].as_bytes().to_vec();
    let mut framed = Vec::new();
    uart::write_framed(
        num(&attrs["id"]) as u32,
        &payload,
        num(&attrs["chunk_len"]) as usize,
        &mut |line: &[u8]| {
            framed.push(String::from_utf8(line.to_vec()).unwrap());
            Ok::<(), ()>(())
        },
    )
    .unwrap();
    let doc: Vec<String> = lines.iter().map(|l| format!("{l}\n")).collect();
    assert_eq!(framed, doc, "the UART worked example");
    // The line CRC example of the prose.
    assert_eq!(
        uart::payload_crc(b"@TM:B,1,0000002a,12,5,ffab723a,"),
        0x7295_a8b3
    );
    assert_eq!(
        uart::chunk_crc(0x2a, 0, b"hello"),
        uart::payload_crc(&[0x2a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x68, 0x65, 0x6c, 0x6c, 0x6f])
    );
}
