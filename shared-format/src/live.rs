//! Reading a ring while its CPU writes it (FORMAT.md section 7.2, "Reading live
//! memory"): which copied blocks a reader may keep.
//!
//! A reader copies blocks while the writer goes on. The writer reclaims the slot of
//! sequence number `s` when it reserves space in block `s + block_count`, so a block
//! copied before `write_pos` (read *after* the copy) reached that block cannot have
//! been overwritten during the copy. A block is kept only if it is also *closed*: the
//! `commit_pos` read before the copy is in a later block, so every byte of it was
//! committed and no writer touches it until the slot is reclaimed.

use crate::ring::{Geometry, BLOCK_HEADER_LEN};

/// Whether block `seq`, copied after reading `commit_pos` and before reading
/// `write_pos_after`, is whole and cannot have been reclaimed during the copy.
///
/// `seq` must be closed at `commit_pos` (a block before the commit block, within the
/// window); `write_pos_after` is the ring's `write_pos` read after the copy.
pub const fn block_survives(g: &Geometry, seq: u32, commit_pos: u32, write_pos_after: u32) -> bool {
    if commit_pos == 0 {
        return false;
    }
    let c_seq = g.split(commit_pos).seq;
    let back = g.distance(seq, c_seq);
    // Closed and in the window at the time of the copy.
    if back == 0 || back >= g.block_count {
        return false;
    }
    // write_pos only moves forward from commit_pos; a write_pos "behind" commit_pos is
    // a ring re-initialised under the reader: nothing copied can be trusted.
    let w_seq = g.split(write_pos_after).seq;
    let ahead = g.distance(c_seq, w_seq);
    if ahead >= g.block_count {
        return false;
    }
    // The writer reserving in block w_seq reclaimed slots up to w_seq - block_count.
    g.distance(seq, w_seq) < g.block_count
}

/// The first block a live reader must not copy yet because a deferred kernel entry
/// in it may still be patched (FORMAT.md sections 7.2 and 9.5): the block of
/// `pending_pos` when that names a record's end (not 0, not a held or dropped entry,
/// whose values are below the block header) in a closed block of the window other
/// than the oldest. The reader copies the blocks before it and leaves it and the
/// later ones to a later poll, by which the writer has filled in the word (and reset
/// `pending_pos`) or moved on. `None`: nothing to wait for.
///
/// `pending_pos` must be read *after* `commit_pos`: a writer stores `pending_pos`
/// before any later record can close the entry's block, so a block closed at the
/// `commit_pos` read holds a placeholder still to be patched only if `pending_pos`,
/// read afterwards, still names it. The window's oldest block is copied with its
/// placeholder (the writer is about to reclaim it; waiting would lose it), as is an
/// entry of a writer that never fills it in.
pub const fn pending_block(g: &Geometry, commit_pos: u32, pending_pos: u32) -> Option<u32> {
    if commit_pos == 0 || pending_pos == 0 {
        return None;
    }
    let p = g.split(pending_pos);
    // Held (1..=8) and dropped (9) entries: offsets inside the block header.
    if p.offset <= BLOCK_HEADER_LEN as u32 || p.seq >= g.seq_modulus {
        return None;
    }
    let back = g.distance(p.seq, g.split(commit_pos).seq);
    if back == 0 || back >= g.block_count - 1 {
        return None;
    }
    Some(p.seq)
}

/// Records lost between two ring images of the same CPU and producer stored one after
/// the other (a live capture's polls, or a firmware dumping its ring again): if the
/// later image's records start at or after the earlier one's end (`prev_end`: the
/// number after its last record), the later image's losses are the gap in the record
/// numbers and the drops since the earlier image, not its whole `overwritten` and
/// `dropped`. Returns `(overwritten, dropped)` lost since the earlier image, or `None`
/// if the images do not follow each other (another session: count them in full).
pub const fn chained_losses(
    prev_end: u64,
    prev_dropped: u64,
    overwritten: u64,
    dropped: u64,
) -> Option<(u64, u64)> {
    if overwritten < prev_end || dropped < prev_dropped {
        return None;
    }
    Some((overwritten - prev_end, dropped - prev_dropped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_survives_until_the_writer_reserves_in_its_slot_again() {
        let g = Geometry::new(256, 4).unwrap();
        let pos = |seq: u32, off: u32| g.join(seq, off);
        // commit in block 10: closed blocks of the window are 7, 8, 9.
        let c = pos(10, 40);
        for seq in [7, 8, 9] {
            assert!(block_survives(&g, seq, c, pos(10, 50)), "{seq}");
        }
        // The current block and blocks outside the window are never kept.
        assert!(!block_survives(&g, 10, c, pos(10, 50)));
        assert!(!block_survives(&g, 6, c, pos(10, 50)));
        // The writer reserved in block 11 during the copy: slot of 7 reclaimed.
        assert!(!block_survives(&g, 7, c, pos(11, 40)));
        assert!(block_survives(&g, 8, c, pos(11, 40)));
        // Two blocks further: 8 gone too, 9 still there.
        assert!(!block_survives(&g, 8, c, pos(12, 40)));
        assert!(block_survives(&g, 9, c, pos(12, 40)));
        // A whole ring further (or a re-initialised ring): nothing.
        assert!(!block_survives(&g, 9, c, pos(14, 40)));
        assert!(!block_survives(&g, 9, c, pos(3, 40)));
        assert!(!block_survives(&g, 9, 0, pos(10, 40)));
    }

    #[test]
    fn a_block_holding_an_entry_still_to_be_patched_waits() {
        let g = Geometry::new(256, 4).unwrap();
        let c = g.join(10, 40);
        // The entry ends in closed block 9 or 8: copy up to it, not further.
        assert_eq!(pending_block(&g, c, g.join(9, 200)), Some(9));
        assert_eq!(pending_block(&g, c, g.join(8, 33)), Some(8));
        // In the current block (never copied anyway), or the window's oldest (about
        // to be reclaimed: copied with its placeholder), or out of the window.
        assert_eq!(pending_block(&g, c, g.join(10, 35)), None);
        assert_eq!(pending_block(&g, c, g.join(7, 100)), None);
        assert_eq!(pending_block(&g, c, g.join(6, 100)), None);
        assert_eq!(pending_block(&g, c, g.join(11, 100)), None);
        // Nothing pending, held (1..=8: not written yet), dropped (9), empty ring.
        for p in [0, 1, 8, 9] {
            assert_eq!(pending_block(&g, c, p), None, "{p}");
        }
        assert_eq!(pending_block(&g, 0, g.join(9, 200)), None);
        // Across the sequence wrap.
        let g = Geometry::new(65536, 3).unwrap();
        let m = g.seq_modulus;
        assert_eq!(
            pending_block(&g, g.join(0, 40), g.join(m - 1, 40)),
            Some(m - 1)
        );
    }

    #[test]
    fn chained_images_lose_only_the_gap() {
        // Image 2 starts where image 1 ended: nothing lost between them.
        assert_eq!(chained_losses(500, 3, 500, 3), Some((0, 0)));
        // 40 records overwritten between the two reads, 2 more drops.
        assert_eq!(chained_losses(500, 3, 540, 5), Some((40, 2)));
        // A new session (numbers start again): not a continuation.
        assert_eq!(chained_losses(500, 3, 100, 3), None);
        assert_eq!(chained_losses(500, 3, 600, 0), None);
    }

    #[test]
    fn survival_follows_the_sequence_wrap() {
        let g = Geometry::new(65536, 3).unwrap();
        let m = g.seq_modulus;
        let c = g.join(0, 40);
        assert!(block_survives(&g, m - 1, c, g.join(0, 41)));
        assert!(block_survives(&g, m - 1, c, g.join(1, 33)));
        assert!(!block_survives(&g, m - 1, c, g.join(2, 33)));
        assert!(!block_survives(&g, m - 2, c, g.join(1, 33)));
    }
}
