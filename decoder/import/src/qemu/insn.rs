//! What a translation block does to R7 before its `svc`: enough of ARM and Thumb
//! (as QEMU's disassembler prints them) to recover a syscall number from the block's
//! own instructions and its entry state when no register dump follows the `svc` (the
//! last syscall of a process, `exit_group`, or any syscall pending at the end of a log).
//!
//! The analysis is conservative: R7 is known only when every instruction of the block
//! that may write it is one of `mov`/`movs`/`mov.w`/`movs.w`/`movw` with an immediate
//! or a register not written earlier in the block, `mvn` with an immediate, or `movt`
//! over a known value. Anything else that may write R7 (a load, arithmetic, a
//! conditional move, a `pop` that lists it) makes it unknown.

/// R7 at the block's `svc`, in terms of the block's entry state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum R7 {
    /// Not written: R7 at entry.
    Unchanged,
    /// Set to this value.
    Imm(u32),
    /// Copied from this register, which the block did not write before.
    Reg(u8),
    /// Written in a way the analysis does not follow.
    Unknown,
}

impl R7 {
    /// The value, given the entry registers if known.
    pub fn resolve(self, entry: Option<&[u32; 16]>) -> Option<u32> {
        match self {
            R7::Imm(v) => Some(v),
            R7::Unchanged => entry.map(|r| r[7]),
            R7::Reg(n) => entry.map(|r| r[usize::from(n)]),
            R7::Unknown => None,
        }
    }
}

/// A translation block, as far as the importer needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// Guest instructions in the block.
    pub insns: u32,
    /// The address of the `svc` that ends it, if it does.
    pub svc: Option<u32>,
    /// R7 at that `svc`.
    pub r7: R7,
    /// The address of the call (`bl`, `blx`, with or without a condition) that ends it,
    /// if it does: the callee returns 2 or 4 bytes after it (Thumb `blx rN` is 2 bytes
    /// long, every other call 4).
    pub call: Option<u32>,
}

/// Builds a [`Block`] from its instructions, fed in order.
#[derive(Debug, Clone)]
pub struct BlockBuilder {
    insns: u32,
    svc: Option<u32>,
    r7: R7,
    /// Registers the block may have written so far.
    written: u16,
    /// The last instruction is a call, at this address.
    call: Option<u32>,
}

impl Default for BlockBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl BlockBuilder {
    /// An empty block.
    pub fn new() -> Self {
        BlockBuilder {
            insns: 0,
            svc: None,
            r7: R7::Unchanged,
            written: 0,
            call: None,
        }
    }

    /// Adds the instruction at `pc`, `text` as QEMU prints it (`mov.w    r7, #0x7d`).
    pub fn push(&mut self, pc: u32, text: &[u8]) {
        self.insns = self.insns.saturating_add(1);
        self.call = is_call(split(text).0).then_some(pc);
        if self.svc.is_some() {
            // QEMU ends a block at its `svc`; anything after belongs to no syscall.
            return;
        }
        let (mnemonic, operands) = split(text);
        match mnemonic {
            b"svc" | b"swi" => {
                // ARM EABI passes the number in R7 and `svc #0`; an OABI `svc #0x900000+n`
                // is not followed (the importer reads R7).
                self.svc = Some(pc);
                return;
            }
            b"mov" | b"movs" | b"mov.w" | b"movs.w" | b"movw" | b"mvn" | b"mvns" | b"movt"
                if first_reg(operands) == Some(7) && self::operands(operands).count() == 2 =>
            {
                let src = second_operand(operands);
                self.r7 = match (mnemonic, imm(src), reg(src)) {
                    (b"movt", Some(hi), _) => match self.r7 {
                        R7::Imm(v) if hi <= 0xffff => R7::Imm((v & 0xffff) | (hi << 16)),
                        _ => R7::Unknown,
                    },
                    (b"movt", None, _) => R7::Unknown,
                    (b"mvn" | b"mvns", Some(v), _) => R7::Imm(!v),
                    (b"mvn" | b"mvns", None, _) => R7::Unknown,
                    (_, Some(v), _) => R7::Imm(v),
                    (_, None, Some(7)) => self.r7,
                    (_, None, Some(n)) if self.written & (1 << n) == 0 => match n {
                        15 => R7::Unknown,
                        _ => R7::Reg(n),
                    },
                    _ => R7::Unknown,
                };
                self.written |= 1 << 7;
                return;
            }
            _ => {}
        }
        let w = writes(mnemonic, operands);
        if w & (1 << 7) != 0 {
            self.r7 = R7::Unknown;
        }
        self.written |= w;
    }

    /// The finished block.
    pub fn finish(&self) -> Block {
        Block {
            insns: self.insns,
            svc: self.svc,
            r7: self.r7,
            call: self.call,
        }
    }
}

/// `bl`, `blx`, either with a condition code (`blne`), or a `.w`/`.n` width suffix;
/// not the conditional branches `bls`, `blt`, `ble` that look alike.
fn is_call(mnemonic: &[u8]) -> bool {
    const CONDS: [&[u8]; 17] = [
        b"eq", b"ne", b"cs", b"hs", b"cc", b"lo", b"mi", b"pl", b"vs", b"vc", b"hi", b"ls", b"ge",
        b"lt", b"gt", b"le", b"al",
    ];
    let m = mnemonic;
    let m = m
        .strip_suffix(b".w")
        .or_else(|| m.strip_suffix(b".n"))
        .unwrap_or(m);
    let Some(rest) = m.strip_prefix(b"bl") else {
        return false;
    };
    let rest = rest.strip_prefix(b"x").unwrap_or(rest);
    rest.is_empty() || CONDS.contains(&rest)
}

fn split(text: &[u8]) -> (&[u8], &[u8]) {
    match text.iter().position(|&b| b == b' ' || b == b'\t') {
        Some(i) => {
            let rest = &text[i..];
            let j = rest
                .iter()
                .position(|&b| b != b' ' && b != b'\t')
                .unwrap_or(rest.len());
            (&text[..i], &rest[j..])
        }
        None => (text, &[]),
    }
}

/// Register number of an ARM register name.
pub fn reg(s: &[u8]) -> Option<u8> {
    let s = s.strip_suffix(b"!").unwrap_or(s);
    match s {
        b"sb" => Some(9),
        b"sl" => Some(10),
        b"fp" => Some(11),
        b"ip" => Some(12),
        b"sp" => Some(13),
        b"lr" => Some(14),
        b"pc" => Some(15),
        [b'r', d] if d.is_ascii_digit() => Some(d - b'0'),
        [b'r', b'1', d @ b'0'..=b'5'] => Some(10 + d - b'0'),
        _ => None,
    }
}

/// An immediate operand: `#0x7d`, `#125`, `#-1`.
fn imm(s: &[u8]) -> Option<u32> {
    let s = std::str::from_utf8(s.strip_prefix(b"#")?).ok()?.trim();
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let v = match s.strip_prefix("0x") {
        Some(h) => u32::from_str_radix(h, 16).ok()?,
        None => s.parse::<u32>().ok()?,
    };
    Some(if neg { v.wrapping_neg() } else { v })
}

/// Operands split at top-level commas (not inside `{}` or `[]`).
fn operands(s: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut depth = 0i32;
    s.split(move |&b| {
        match b {
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth -= 1,
            _ => {}
        }
        b == b',' && depth == 0
    })
    .map(|t| {
        let t = t.strip_prefix(b" ").unwrap_or(t);
        let end = t.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
        &t[..end]
    })
}

fn first_reg(ops: &[u8]) -> Option<u8> {
    operands(ops).next().and_then(reg)
}

fn second_operand(ops: &[u8]) -> &[u8] {
    operands(ops).nth(1).unwrap_or(&[])
}

/// Registers of a `{r4, r5, r7}` list (ranges `r4-r7` included).
fn list(s: &[u8]) -> u16 {
    let Some(open) = s.iter().position(|&b| b == b'{') else {
        return 0;
    };
    let close = s.iter().rposition(|&b| b == b'}').unwrap_or(s.len());
    if close <= open {
        return 0;
    }
    let mut m = 0u16;
    for item in s[open + 1..close].split(|&b| b == b',') {
        let item: Vec<u8> = item.iter().copied().filter(|&b| b != b' ').collect();
        let mut ends = item.split(|&b| b == b'-');
        let a = ends.next().and_then(reg);
        let b = ends.next().and_then(reg);
        match (a, b) {
            (Some(a), Some(b)) if a <= b => (a..=b).for_each(|r| m |= 1 << r),
            (Some(a), None) => m |= 1 << a,
            // A list not understood: assume everything.
            _ => return 0xffff,
        }
    }
    m
}

/// Base register written back by `[rN, ...]!` or post-indexed `[rN], ...`.
fn writeback(ops: &[u8]) -> u16 {
    let Some(open) = ops.iter().position(|&b| b == b'[') else {
        // `ldm r0!, {..}` / `stm r0!, {..}`
        let first = operands(ops).next().unwrap_or(&[]);
        return match (first.ends_with(b"!"), reg(first)) {
            (true, Some(r)) => 1 << r,
            _ => 0,
        };
    };
    let close = open + ops[open..].iter().position(|&b| b == b']').unwrap_or(0);
    let inner = &ops[open + 1..close.max(open + 1)];
    let base = operands(inner).next().and_then(reg);
    let after = &ops[close.min(ops.len())..];
    let wb = after.starts_with(b"]!") || after.starts_with(b"], ");
    match (wb, base) {
        (true, Some(r)) => 1 << r,
        _ => 0,
    }
}

/// Registers an instruction may write (conservatively: more rather than fewer).
fn writes(mnemonic: &[u8], ops: &[u8]) -> u16 {
    let base = strip_width(mnemonic);
    // Instructions that write no core register.
    const NONE: &[&[u8]] = &[
        b"cmp", b"cmn", b"tst", b"teq", b"b", b"bl", b"bx", b"blx", b"cbz", b"cbnz", b"nop", b"it",
        b"ite", b"itt", b"itee", b"itte", b"ittt", b"itet", b"iteee", b"ittee", b"ittte", b"itttt",
        b"itete", b"itett", b"iteet", b"ittet", b"dmb", b"dsb", b"isb", b"pld", b"pli", b"bkpt",
        b"udf", b"yield", b"wfi", b"wfe", b"sev",
    ];
    if NONE.contains(&base) || is_branch(base) {
        return 0;
    }
    if base == b"push" || base.starts_with(b"vpush") {
        return 1 << 13;
    }
    if base == b"pop" || base.starts_with(b"ldm") {
        return list(ops) | writeback(ops) | if base == b"pop" { 1 << 13 } else { 0 };
    }
    if base.starts_with(b"stm") || base.starts_with(b"vstm") || base.starts_with(b"vldm") {
        return writeback(ops);
    }
    if (base.starts_with(b"str") && !base.starts_with(b"strex"))
        || base.starts_with(b"vst")
        || base.starts_with(b"vpop")
        || base.starts_with(b"vcmp")
        || base.starts_with(b"vmsr")
    {
        return writeback(ops)
            | if base.starts_with(b"vpop") {
                1 << 13
            } else {
                0
            };
    }
    let mut regs = operands(ops).filter_map(reg);
    let mut m = writeback(ops);
    if let Some(r) = regs.next() {
        m |= 1 << r;
    }
    // Two destinations: ldrd, ldrexd, long multiplies, `vmov r0, r1, d0`, mrrc.
    const TWO: &[&[u8]] = &[
        b"ldrd", b"ldrexd", b"umull", b"smull", b"umlal", b"smlal", b"umaal", b"vmov", b"mrrc",
        b"umulls", b"smulls", b"umlals", b"smlals",
    ];
    if TWO.iter().any(|t| base.starts_with(t)) {
        if let Some(r) = regs.next() {
            m |= 1 << r;
        }
    }
    // A mnemonic with a condition suffix may still write its destination: counted above.
    m
}

fn strip_width(m: &[u8]) -> &[u8] {
    m.strip_suffix(b".w")
        .or_else(|| m.strip_suffix(b".n"))
        .unwrap_or(m)
}

fn is_branch(m: &[u8]) -> bool {
    const CONDS: &[&[u8]] = &[
        b"eq", b"ne", b"cs", b"hs", b"cc", b"lo", b"mi", b"pl", b"vs", b"vc", b"hi", b"ls", b"ge",
        b"lt", b"gt", b"le", b"al",
    ];
    for stem in [&b"b"[..], b"bl", b"bx", b"blx"] {
        if let Some(c) = m.strip_prefix(stem) {
            if CONDS.contains(&c) {
                return true;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(insns: &[&str]) -> Block {
        let mut b = BlockBuilder::new();
        for (i, t) in insns.iter().enumerate() {
            b.push(0x1000 + 4 * i as u32, t.as_bytes());
        }
        b.finish()
    }

    #[test]
    fn immediate_in_the_block() {
        let b = block(&["push     {r7}", "mov.w    r7, #0x14", "svc      #0"]);
        assert_eq!((b.insns, b.svc, b.r7), (3, Some(0x1008), R7::Imm(20)));
        let b = block(&["mov      r7, #248", "svc      #0"]);
        assert_eq!(b.r7, R7::Imm(248));
        let b = block(&["movw     r7, #5", "movt     r7, #0xf", "svc      #0"]);
        assert_eq!(b.r7, R7::Imm(0xf0005));
    }

    #[test]
    fn a_call_that_ends_the_block_is_noted_and_look_alike_branches_are_not() {
        for call in [
            "bl       #0x2000",
            "blx      r3",
            "blne     #0x2000",
            "bl.w     #0x2000",
        ] {
            let b = block(&["push     {r4, lr}", call]);
            assert_eq!(b.call, Some(0x1004), "{call}");
        }
        for not in [
            "bls      #0x2000",
            "blt      #0x2000",
            "ble      #0x2000",
            "bx       lr",
        ] {
            assert_eq!(block(&["push     {r4, lr}", not]).call, None, "{not}");
        }
        // Only the last instruction counts.
        assert_eq!(block(&["bl       #0x2000", "mov      r0, r1"]).call, None);
    }

    #[test]
    fn register_copy_and_entry_state() {
        // glibc's Thumb __libc_do_syscall: the number arrives in ip.
        let b = block(&["push     {r7, lr}", "mov      r7, ip", "svc      #0"]);
        assert_eq!(b.r7, R7::Reg(12));
        let mut entry = [0u32; 16];
        entry[12] = 0xf8;
        assert_eq!(b.r7.resolve(Some(&entry)), Some(248));
        assert_eq!(b.r7.resolve(None), None);
        // Untouched: the entry value.
        let b = block(&["mov      r0, #0", "svc      #0"]);
        assert_eq!(b.r7, R7::Unchanged);
        entry[7] = 1;
        assert_eq!(b.r7.resolve(Some(&entry)), Some(1));
    }

    #[test]
    fn what_is_not_followed_is_unknown() {
        for insns in [
            &["ldr      r7, [pc, #8]", "svc      #0"][..],
            &["adds     r7, r7, #1", "svc      #0"],
            &["moveq    r7, #1", "svc      #0"],
            &["pop      {r4, r5, r6, r7}", "svc      #0"],
            &["ldm      sp!, {r0-r7}", "svc      #0"],
            &["mov      r7, #1", "ldr      r7, [r0]", "svc      #0"],
            // The source register was written in the block before the copy.
            &["ldr      ip, [sp]", "mov      r7, ip", "svc      #0"],
            &["ldr      r3, [r2], #4", "mov      r7, r2", "svc      #0"],
            // A shifted register is not a copy.
            &["mov      r7, r3, lsl #2", "svc      #0"],
        ] {
            assert_eq!(block(insns).r7, R7::Unknown, "{insns:?}");
        }
        // Reads of R7 and stores leave it known.
        let b = block(&[
            "mov      r7, #4",
            "str      r7, [sp, #4]",
            "cmp      r7, #0",
            "add      r0, r7, #1",
            "push     {r7}",
            "svc      #0",
        ]);
        assert_eq!(b.r7, R7::Imm(4));
    }

    #[test]
    fn no_svc() {
        let b = block(&["mov      r7, #1", "bx       lr"]);
        assert_eq!(b.svc, None);
        assert_eq!(list(b"{r4-r7, lr}"), 0b0100_0000_1111_0000);
    }
}
