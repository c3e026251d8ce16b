//! The lines of a QEMU `-d exec,cpu,in_asm[,nochain]` log, classified one at a time.
//!
//! What QEMU prints (7.2, the version these tests run):
//!
//! ```text
//! ----------------
//! IN: getpid                                        in_asm: a translation starts
//! 0x00021890:  b480       push     {r7}             in_asm: one guest instruction
//! 0x00021896:  df00       svc      #0
//!
//! Trace 0: 0x7f2240.. [00800480/00021890/00000000/00000200] getpid     exec
//! R00=00000000 R01=0006c000 R02=00000000 R03=00000000                  cpu
//! ...
//! R12=00000000 R13=40800738 R14=000141b9 R15=00021890
//! PSR=600f0030 -ZC- T usr32
//! Linking TBs 0x7f.. index 1 -> 0x7f..                                 exec, chaining
//! ```
//!
//! `Trace` (and `Chain`, printed by newer QEMUs for a chained lookup) is one execution of
//! a translation block, the second field in brackets its guest address. Only the
//! shapes are recognised here; what they mean together is [`super::binder`]'s business.

/// One classified line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line<'a> {
    /// `IN: symbol`: a translation starts; its instructions follow.
    Translation,
    /// `0x00021890:  b480  push {r7}`: an instruction of the current translation, its
    /// mnemonic and operands (the encoding bytes removed).
    Insn {
        /// Guest address.
        pc: u32,
        /// `push     {r7}`.
        text: &'a [u8],
    },
    /// `Trace N: ... [../PC/..] symbol`: an execution of the block at `pc` on CPU `cpu`.
    Exec {
        /// The CPU index.
        cpu: u32,
        /// The block's guest address.
        pc: u32,
        /// The symbol QEMU found for it (may be empty).
        sym: &'a [u8],
    },
    /// A line of an ARM register dump: `Rnn=value` for up to four registers, starting
    /// at register `first`.
    Regs {
        /// Number of the first register on the line.
        first: u8,
        /// How many registers the line holds (1..=4).
        count: u8,
        /// Their values.
        values: [u32; 4],
    },
    /// `PSR=...`: the end of an ARM register dump.
    Psr,
    /// A register dump of another architecture (`PC=`, `X00=`, `RAX=`...).
    ForeignRegs,
    /// `Linking TBs ...`: QEMU chained two blocks (the log was made without `nochain`).
    Link,
    /// Anything else (separators, blank lines, other `-d` items).
    Other,
}

/// Classifies one line (without its newline).
pub fn classify(line: &[u8]) -> Line<'_> {
    let Some(&c) = line.first() else {
        return Line::Other;
    };
    match c {
        b'0' if line.starts_with(b"0x") => insn(line).unwrap_or(Line::Other),
        b'R' => {
            if line.len() > 4 && line[3] == b'=' && line[1].is_ascii_digit() {
                regs(line).unwrap_or(Line::Other)
            } else if line.starts_with(b"RAX=") || line.starts_with(b"RIP=") {
                Line::ForeignRegs
            } else {
                Line::Other
            }
        }
        b'T' if line.starts_with(b"Trace ") => exec(&line[6..]).unwrap_or(Line::Other),
        b'C' if line.starts_with(b"Chain ") => exec(&line[6..]).unwrap_or(Line::Other),
        b'I' if line.starts_with(b"IN:") => Line::Translation,
        b'P' if line.starts_with(b"PSR=") => Line::Psr,
        b'P' if line.starts_with(b"PC=") => Line::ForeignRegs,
        b'X' if line.starts_with(b"X00=") => Line::ForeignRegs,
        b'L' if line.starts_with(b"Linking TBs") => Line::Link,
        _ => Line::Other,
    }
}

/// A hexadecimal number of 1 to 16 digits (with or without `0x`), as u64.
pub fn hex(s: &[u8]) -> Option<u64> {
    let s = s.strip_prefix(b"0x").unwrap_or(s);
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    let mut v = 0u64;
    for &b in s {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return None,
        };
        v = (v << 4) | u64::from(d);
    }
    Some(v)
}

fn hex32(s: &[u8]) -> Option<u32> {
    hex(s).and_then(|v| u32::try_from(v).ok())
}

fn insn(line: &[u8]) -> Option<Line<'_>> {
    let colon = line.iter().position(|&b| b == b':')?;
    let pc = hex32(&line[..colon])?;
    let rest = trim_start(&line[colon + 1..]);
    // Capstone-era QEMU prints the encoding before the text, separated by two spaces:
    // `f04f 0b00  mov.w    fp, #0`, `e3a07014  mov      r7, #0x14`.
    let text = match find2(rest) {
        Some(i) if is_encoding(&rest[..i]) => trim_start(&rest[i..]),
        _ => rest,
    };
    Some(Line::Insn {
        pc,
        text: trim_end(text),
    })
}

/// Groups of 4 or 8 hex digits separated by single spaces.
fn is_encoding(s: &[u8]) -> bool {
    !s.is_empty()
        && s.split(|&b| b == b' ')
            .all(|g| (g.len() == 4 || g.len() == 8) && g.iter().all(u8::is_ascii_hexdigit))
}

fn find2(s: &[u8]) -> Option<usize> {
    s.windows(2).position(|w| w == b"  ")
}

fn exec(rest: &[u8]) -> Option<Line<'_>> {
    let colon = rest.iter().position(|&b| b == b':')?;
    let cpu = std::str::from_utf8(&rest[..colon]).ok()?.parse().ok()?;
    let open = rest.iter().position(|&b| b == b'[')?;
    let close = open + rest[open..].iter().position(|&b| b == b']')?;
    let mut fields = rest[open + 1..close].split(|&b| b == b'/');
    fields.next()?;
    let pc = hex32(fields.next()?)?;
    let sym = trim_end(trim_start(&rest[close + 1..]));
    Some(Line::Exec { cpu, pc, sym })
}

fn regs(line: &[u8]) -> Option<Line<'_>> {
    let mut values = [0u32; 4];
    let mut first = None;
    let mut count = 0u8;
    for tok in line.split(|&b| b == b' ').filter(|t| !t.is_empty()) {
        // `R07=00068000`
        if tok.len() < 5 || tok[0] != b'R' || tok[3] != b'=' || usize::from(count) == values.len() {
            return None;
        }
        let n = (tok[1].wrapping_sub(b'0'))
            .checked_mul(10)?
            .checked_add(tok[2].wrapping_sub(b'0'))?;
        if !tok[1].is_ascii_digit() || !tok[2].is_ascii_digit() || n > 15 {
            return None;
        }
        match first {
            None => first = Some(n),
            Some(f) if f + count == n => {}
            Some(_) => return None,
        }
        values[usize::from(count)] = hex32(&tok[4..])?;
        count += 1;
    }
    Some(Line::Regs {
        first: first?,
        count,
        values,
    })
}

fn trim_start(s: &[u8]) -> &[u8] {
    let i = s
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(s.len());
    &s[i..]
}

fn trim_end(s: &[u8]) -> &[u8] {
    let i = s
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t' && b != b'\r')
        .map_or(0, |i| i + 1);
    &s[..i]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(
            classify(b"0x00010340:  f04f 0b00  mov.w    fp, #0"),
            Line::Insn {
                pc: 0x10340,
                text: b"mov.w    fp, #0"
            }
        );
        assert_eq!(
            classify(b"0x00010458:  e3a07014  mov      r7, #0x14"),
            Line::Insn {
                pc: 0x10458,
                text: b"mov      r7, #0x14"
            }
        );
        // No encoding column (older QEMU): `add` is not mistaken for bytes.
        assert_eq!(
            classify(b"0x00010458:  add      r3, pc"),
            Line::Insn {
                pc: 0x10458,
                text: b"add      r3, pc"
            }
        );
        assert_eq!(
            classify(b"Trace 0: 0x7f22400000c0 [00800480/00010340/00000000/00000200] _start"),
            Line::Exec {
                cpu: 0,
                pc: 0x10340,
                sym: b"_start"
            }
        );
        assert_eq!(
            classify(b"R12=00000000 R13=408008b0 R14=00000000 R15=00010340"),
            Line::Regs {
                first: 12,
                count: 4,
                values: [0, 0x408008b0, 0, 0x10340]
            }
        );
        assert_eq!(classify(b"PSR=00000030 ---- T usr32"), Line::Psr);
        assert_eq!(classify(b"IN: main"), Line::Translation);
        assert_eq!(classify(b"Linking TBs 0x1 index 1 -> 0x2"), Line::Link);
        assert_eq!(classify(b"PC=0000000000400000 X00=0"), Line::ForeignRegs);
        assert_eq!(classify(b"R07=zz"), Line::Other);
        assert_eq!(classify(b"R99=00000000"), Line::Other);
        assert_eq!(classify(b""), Line::Other);
        assert_eq!(classify(b"Trace x: [..]"), Line::Other);
    }
}
