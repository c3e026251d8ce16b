//! `NAME.snapshot`: every slot still on disk, oldest to newest, as one file.
//!
//! The copy uses `std::io::copy` between files, which Linux turns into
//! `copy_file_range` (no round trip through user space; on filesystems that support
//! it, extents are shared). It runs between two writes of the capture loop, so the
//! slots do not change under it; meanwhile the producer only waits on its pipe.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// Writes the concatenation of `slots` (oldest first) to `dest`, through a temporary
/// file renamed over it, and returns its length.
pub fn write(slots: &[PathBuf], dest: &Path) -> io::Result<u64> {
    let mut tmp = dest.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let named =
        |path: &Path, e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    let mut out = File::create(&tmp).map_err(|e| named(&tmp, e))?;
    let mut total = 0;
    for slot in slots {
        let mut input = match File::open(slot) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(named(slot, e)),
        };
        total += io::copy(&mut input, &mut out).map_err(|e| named(slot, e))?;
    }
    drop(out);
    std::fs::rename(&tmp, dest).map_err(|e| named(dest, e))?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concatenates_in_the_given_order_and_skips_missing_slots() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        std::fs::write(p("a"), b"old\n").unwrap();
        std::fs::write(p("b"), b"new\n").unwrap();
        let n = write(&[p("a"), p("gone"), p("b")], &p("snap")).unwrap();
        assert_eq!(n, 8);
        assert_eq!(std::fs::read(p("snap")).unwrap(), b"old\nnew\n");
        assert!(!p("snap.tmp").exists());
    }
}
