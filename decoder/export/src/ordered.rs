//! One output file written by sinks that run one per ring in parallel: the rings'
//! output in ring order, whatever order the rings are handled in, so that the same dump
//! gives the same bytes with any number of threads.
//!
//! [`write()`] runs a writing thread that owns the output. Each ring's sink writes
//! through a [`RingWriter`]; every write is sent to the writing thread as one chunk (the
//! sinks write whole packets or records per write). The chunks of the lowest ring not
//! yet finished go straight to the output; those of later rings, which can only be
//! written after it, go to one anonymous spill file (memory stays bounded whatever the
//! number of rings and their order), and are copied out in order once the rings before
//! them are finished. A ring is finished when its [`RingWriter`] is dropped.
//!
//! Rings handled in ring order ([`super::feed`] starts jobs in the order given) spill
//! little: only what the rings after the oldest one still running write meanwhile.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

/// Chunks in flight between the sinks and the writing thread.
const IN_FLIGHT: usize = 16;

enum Msg {
    Chunk(u32, Vec<u8>),
    Done(u32),
}

/// What [`write()`] fails with.
#[derive(Debug, thiserror::Error)]
pub enum OrderedError<E: std::error::Error + 'static> {
    /// Writing the output (or the spill file) failed; the sinks then stop with
    /// [`WriterStopped`], which this error explains.
    #[error(transparent)]
    Output(io::Error),
    /// A sink failed.
    #[error(transparent)]
    Sink(E),
}

/// What a [`RingWriter`] fails with once the writing thread has stopped (its own error,
/// [`OrderedError::Output`], is the one reported).
#[derive(Debug, thiserror::Error)]
#[error("the output writer stopped")]
pub struct WriterStopped;

/// The output of one ring (see the module documentation): an [`io::Write`] whose
/// every write is one chunk of the file; the ring is finished when it is dropped.
pub struct RingWriter {
    ring: u32,
    tx: SyncSender<Msg>,
}

impl Write for RingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.tx
            .send(Msg::Chunk(self.ring, buf.to_vec()))
            .map_err(|_| io::Error::other(WriterStopped))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for RingWriter {
    fn drop(&mut self) {
        // The writing thread may be gone (it failed): nothing to tell it then.
        let _ = self.tx.send(Msg::Done(self.ring));
    }
}

/// Hands out the [`RingWriter`]s of one [`write()`].
pub struct Rings {
    tx: SyncSender<Msg>,
    count: u32,
}

impl Rings {
    /// The writer of ring `ring` (below the count given to [`write()`]). Make it when the
    /// ring starts and drop it when the ring is done: one writer per ring.
    pub fn writer(&self, ring: u32) -> RingWriter {
        assert!(ring < self.count, "ring {ring} of {}", self.count);
        RingWriter {
            ring,
            tx: self.tx.clone(),
        }
    }
}

/// Writes `header`, then the output of `rings` rings in ring order, to `out`:
/// `produce` runs the sinks, each writing through its [`Rings::writer`]. Returns what
/// `produce` returned and the output. A write error of the output comes first (it is
/// why the sinks failed, if they did).
pub fn write<W, T, E>(
    mut out: W,
    header: &[u8],
    rings: u32,
    produce: impl FnOnce(&Rings) -> Result<T, E>,
) -> Result<(T, W), OrderedError<E>>
where
    W: Write + Send,
    E: std::error::Error + 'static,
{
    out.write_all(header).map_err(OrderedError::Output)?;
    let (tx, rx) = sync_channel(IN_FLIGHT);
    std::thread::scope(|s| {
        let writer = s.spawn(move || {
            let r = Order::new(rings).run(rx, &mut out);
            r.map(|()| out)
        });
        let given = Rings { tx, count: rings };
        let produced = produce(&given);
        // The last sender: dropped so that the writing thread sees the end.
        drop(given);
        let out = writer
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
            .map_err(OrderedError::Output)?;
        let produced = produced.map_err(OrderedError::Sink)?;
        Ok((produced, out))
    })
}

/// The writing thread's state.
struct Order {
    /// The ring whose chunks go straight to the output.
    next: u32,
    count: u32,
    done: Vec<bool>,
    /// Spilled chunks of each ring: (offset, length) in `spill`.
    spilled: Vec<Vec<(u64, usize)>>,
    spill: Option<std::fs::File>,
    spill_len: u64,
}

impl Order {
    fn new(count: u32) -> Self {
        Order {
            next: 0,
            count,
            done: vec![false; count as usize],
            spilled: vec![Vec::new(); count as usize],
            spill: None,
            spill_len: 0,
        }
    }

    fn run(mut self, rx: Receiver<Msg>, out: &mut impl Write) -> io::Result<()> {
        for msg in rx {
            match msg {
                Msg::Chunk(ring, chunk) => self.chunk(ring, &chunk, out)?,
                Msg::Done(ring) => self.finished(ring, out)?,
            }
        }
        out.flush()
    }

    fn chunk(&mut self, ring: u32, chunk: &[u8], out: &mut impl Write) -> io::Result<()> {
        if ring == self.next {
            return out.write_all(chunk);
        }
        let spill = match &mut self.spill {
            Some(f) => f,
            None => self.spill.insert(tempfile::tempfile()?),
        };
        spill.write_all(chunk)?;
        self.spilled[ring as usize].push((self.spill_len, chunk.len()));
        self.spill_len += chunk.len() as u64;
        Ok(())
    }

    fn finished(&mut self, ring: u32, out: &mut impl Write) -> io::Result<()> {
        self.done[ring as usize] = true;
        while self.next < self.count && self.done[self.next as usize] {
            self.next += 1;
            if self.next < self.count {
                self.copy_spilled(self.next, out)?;
            }
        }
        Ok(())
    }

    /// Copies ring `ring`'s spilled chunks to the output, and forgets them.
    fn copy_spilled(&mut self, ring: u32, out: &mut impl Write) -> io::Result<()> {
        let chunks = std::mem::take(&mut self.spilled[ring as usize]);
        let Some(spill) = &mut self.spill else {
            return Ok(());
        };
        let mut buf = Vec::new();
        for (at, len) in chunks {
            spill.seek(SeekFrom::Start(at))?;
            buf.resize(len, 0);
            spill.read_exact(&mut buf)?;
            out.write_all(&buf)?;
        }
        spill.seek(SeekFrom::End(0))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rings writing in an interleaving that is not ring order give the rings' bytes in
    /// ring order; chunks of a ring stay in their order.
    #[test]
    fn rings_come_out_in_ring_order_whatever_order_they_write_in() {
        let ((), out) = write(Vec::new(), b"H", 3, |rings| -> Result<(), io::Error> {
            let mut w2 = rings.writer(2);
            let mut w0 = rings.writer(0);
            w2.write_all(b"c1")?;
            let mut w1 = rings.writer(1);
            w1.write_all(b"b1")?;
            w0.write_all(b"a1")?;
            w2.write_all(b"c2")?;
            drop(w2);
            w1.write_all(b"b2")?;
            w0.write_all(b"a2")?;
            drop(w0);
            w1.write_all(b"b3")?;
            drop(w1);
            Ok(())
        })
        .unwrap();
        assert_eq!(out, b"Ha1a2b1b2b3c1c2");
    }

    struct Full;

    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from_raw_os_error(28))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// The output's own error is reported, not the sinks' "writer stopped", and it is
    /// not a broken pipe.
    #[test]
    fn an_output_error_is_reported_as_itself() {
        let r = write(Full, b"", 1, |rings| -> Result<(), io::Error> {
            let mut w = rings.writer(0);
            loop {
                w.write_all(b"x")?;
            }
        });
        match r {
            Err(OrderedError::Output(e)) => assert_eq!(e.raw_os_error(), Some(28)),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("wrote to a full device"),
        }
    }
}
