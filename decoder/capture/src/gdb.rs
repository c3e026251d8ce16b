//! A client for the GDB remote serial protocol: enough to read memory from QEMU's
//! `-gdb tcp::PORT`, OpenOCD, pyOCD or a J-Link GDB server.
//!
//! Packets are `$DATA#CS` (CS: two hex digits, the sum of DATA's bytes mod 256), each
//! acknowledged by `+` (resend on `-`). The client asks `qSupported` for the stub's
//! `PacketSize` and reads memory with `m ADDR,LEN` in chunks that fit in it. An
//! all-stop stub (QEMU) halts the target when the client connects: [`Gdb::resume`]
//! sends `c`, [`Gdb::halt`] the interrupt byte `0x03` and waits for the stop reply.
//! The socket has `TCP_NODELAY`: without it every small request waits for the
//! delayed-ACK timer (40 ms on Linux) and a 512 KiB read takes minutes.

use std::io::{self, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::memory::TargetMemory;

/// The largest `m` request, whatever the stub's `PacketSize` (bytes of memory).
const MAX_CHUNK: usize = 16 * 1024;
/// The largest reply accepted (a stub sending more is broken).
const MAX_PACKET: usize = 2 * MAX_CHUNK + 64;

/// A connection to a GDB stub.
#[derive(Debug)]
pub struct Gdb<S: Read + Write = TcpStream> {
    reader: BufReader<S>,
    /// Bytes of memory per `m` request.
    chunk: usize,
    /// Whether the target is running (after `c`, before the stop reply).
    running: bool,
}

fn bad(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

fn checksum(data: &[u8]) -> u8 {
    data.iter().fold(0u8, |a, &b| a.wrapping_add(b))
}

impl Gdb<TcpStream> {
    /// Connects to `addr` (`HOST:PORT`) with `TCP_NODELAY` and a read timeout of
    /// `timeout`, and asks for the stub's features.
    pub fn connect(addr: &str, timeout: Duration) -> io::Result<Self> {
        let mut last = None;
        for a in addr.to_socket_addrs()? {
            match TcpStream::connect_timeout(&a, timeout) {
                Ok(s) => {
                    s.set_nodelay(true)?;
                    s.set_read_timeout(Some(timeout))?;
                    return Gdb::new(s);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| bad(format!("{addr}: no address"))))
    }
}

impl<S: Read + Write> Gdb<S> {
    /// Starts a session on a connected stream: `qSupported`, then `?` (which an
    /// all-stop stub answers with the halted target's stop reason).
    pub fn new(stream: S) -> io::Result<Self> {
        let mut gdb = Gdb {
            reader: BufReader::new(stream),
            chunk: 1024,
            running: false,
        };
        let features = gdb.request(b"qSupported:swbreak+;hwbreak+")?;
        let size = features
            .split(|&b| b == b';')
            .find_map(|f| f.strip_prefix(b"PacketSize="))
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| usize::from_str_radix(v, 16).ok());
        if let Some(size) = size {
            // A reply is `$` + 2 hex digits per byte + `#CS`.
            gdb.chunk = ((size.saturating_sub(4)) / 2).clamp(16, MAX_CHUNK);
        }
        gdb.request(b"?")?;
        Ok(gdb)
    }

    /// Bytes read per `m` request.
    pub fn chunk(&self) -> usize {
        self.chunk
    }

    fn stream(&mut self) -> &mut S {
        self.reader.get_mut()
    }

    /// Sends one packet and waits for its acknowledgement.
    fn send(&mut self, data: &[u8]) -> io::Result<()> {
        let mut packet = Vec::with_capacity(data.len() + 4);
        packet.push(b'$');
        packet.extend_from_slice(data);
        packet.extend_from_slice(format!("#{:02x}", checksum(data)).as_bytes());
        for _ in 0..3 {
            self.stream().write_all(&packet)?;
            self.stream().flush()?;
            match self.byte()? {
                b'+' => return Ok(()),
                b'-' => continue,
                b => {
                    return Err(bad(format!(
                        "stub answered {b:#04x}, not an acknowledgement"
                    )))
                }
            }
        }
        Err(bad("stub rejected a packet three times"))
    }

    fn byte(&mut self) -> io::Result<u8> {
        let mut b = [0];
        self.reader.read_exact(&mut b)?;
        Ok(b[0])
    }

    /// Receives one packet (acknowledged, run-length encoding expanded).
    fn receive(&mut self) -> io::Result<Vec<u8>> {
        loop {
            // Skip anything before the packet (stray acknowledgements).
            while self.byte()? != b'$' {}
            let mut raw = Vec::new();
            loop {
                let b = self.byte()?;
                if b == b'#' {
                    break;
                }
                if raw.len() >= MAX_PACKET {
                    return Err(bad(format!("stub packet longer than {MAX_PACKET} bytes")));
                }
                raw.push(b);
            }
            let cs = [self.byte()?, self.byte()?];
            let want = std::str::from_utf8(&cs)
                .ok()
                .and_then(|s| u8::from_str_radix(s, 16).ok());
            if want != Some(checksum(&raw)) {
                self.stream().write_all(b"-")?;
                continue;
            }
            self.stream().write_all(b"+")?;
            return expand(&raw);
        }
    }

    /// Sends a request and returns its reply; console output (`O...`) is skipped.
    fn request(&mut self, data: &[u8]) -> io::Result<Vec<u8>> {
        self.send(data)?;
        loop {
            let reply = self.receive()?;
            if reply.first() == Some(&b'O') && reply.len() > 1 && reply != b"OK" {
                continue;
            }
            return Ok(reply);
        }
    }

    /// Reads `buf.len()` bytes at `addr` with `m` requests.
    pub fn read_memory(&mut self, addr: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut done = 0;
        while done < buf.len() {
            let n = (buf.len() - done).min(self.chunk);
            let a = addr + done as u64;
            let reply = self.request(format!("m{a:x},{n:x}").as_bytes())?;
            if reply.first() == Some(&b'E') || reply.is_empty() {
                return Err(bad(format!(
                    "stub cannot read {n} bytes at {a:#x} ({})",
                    String::from_utf8_lossy(&reply)
                )));
            }
            if reply.len() % 2 != 0 || reply.len() / 2 > n {
                return Err(bad(format!("stub sent a malformed reply to m{a:x},{n:x}")));
            }
            // A stub may return fewer bytes than asked; ask again for the rest.
            let got = reply.len() / 2;
            for (i, pair) in reply.chunks_exact(2).enumerate() {
                let s = std::str::from_utf8(pair).map_err(|_| bad("non-hex memory reply"))?;
                buf[done + i] =
                    u8::from_str_radix(s, 16).map_err(|_| bad("non-hex memory reply"))?;
            }
            done += got;
        }
        Ok(())
    }

    /// Lets the target run (`c`); the stub answers only when it stops.
    pub fn resume(&mut self) -> io::Result<()> {
        if !self.running {
            self.send(b"c")?;
            self.running = true;
        }
        Ok(())
    }

    /// Stops a running target (interrupt byte `0x03`) and waits for the stop reply.
    pub fn halt(&mut self) -> io::Result<()> {
        if self.running {
            self.stream().write_all(&[0x03])?;
            self.stream().flush()?;
            loop {
                let reply = self.receive()?;
                if matches!(reply.first(), Some(b'S' | b'T')) {
                    break;
                }
                if matches!(reply.first(), Some(b'W' | b'X')) {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the target exited",
                    ));
                }
            }
            self.running = false;
        }
        Ok(())
    }

    /// Leaves the target running and closes the session (`D`, detach).
    pub fn detach(mut self) -> io::Result<()> {
        self.halt()?;
        self.request(b"D").map(drop)
    }
}

/// Expands run-length encoding: `X*N` repeats `X` `N - 29` more times.
fn expand(raw: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'*' {
            let (Some(&prev), Some(&n)) = (out.last(), raw.get(i + 1)) else {
                return Err(bad("malformed run-length encoding"));
            };
            let count = usize::from(n)
                .checked_sub(29)
                .ok_or_else(|| bad("bad run length"))?;
            if out.len() + count > MAX_PACKET {
                return Err(bad("run-length encoding too long"));
            }
            out.extend(std::iter::repeat_n(prev, count));
            i += 2;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    Ok(out)
}

impl<S: Read + Write> TargetMemory for Gdb<S> {
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> io::Result<()> {
        self.read_memory(addr, buf)
    }
    fn halt(&mut self) -> io::Result<()> {
        Gdb::halt(self)
    }
    fn resume(&mut self) -> io::Result<()> {
        Gdb::resume(self)
    }
    fn halts(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    /// A fake all-stop stub: memory readable only while the target is halted, RLE in
    /// memory replies, one corrupted checksum, and a log of the requests.
    fn fake_stub(memory: Vec<u8>, base: u64) -> (String, thread::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let handle = thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut w = s;
            let mut log = Vec::new();
            let mut running = false;
            let mut corrupted_once = false;
            let send = |w: &mut TcpStream, data: &[u8], corrupt: bool| {
                let cs = checksum(data).wrapping_add(u8::from(corrupt));
                let mut p = vec![b'$'];
                p.extend_from_slice(data);
                p.extend_from_slice(format!("#{cs:02x}").as_bytes());
                w.write_all(&p).unwrap();
            };
            let mut b = [0u8];
            loop {
                if r.read_exact(&mut b).is_err() {
                    return log;
                }
                match b[0] {
                    0x03 => {
                        log.push("^C".to_string());
                        assert!(running, "interrupt while halted");
                        running = false;
                        send(&mut w, b"T02thread:01;", false);
                    }
                    b'+' | b'-' => {}
                    b'$' => {
                        let mut data = Vec::new();
                        loop {
                            r.read_exact(&mut b).unwrap();
                            if b[0] == b'#' {
                                break;
                            }
                            data.push(b[0]);
                        }
                        let mut cs = [0u8; 2];
                        r.read_exact(&mut cs).unwrap();
                        assert_eq!(
                            u8::from_str_radix(std::str::from_utf8(&cs).unwrap(), 16).unwrap(),
                            checksum(&data)
                        );
                        w.write_all(b"+").unwrap();
                        let text = String::from_utf8(data).unwrap();
                        log.push(text.clone());
                        if text.starts_with("qSupported") {
                            send(&mut w, b"PacketSize=100;qXfer:features:read+", false);
                        } else if text == "?" {
                            send(&mut w, b"S05", false);
                        } else if text == "c" {
                            running = true;
                        } else if text == "D" {
                            send(&mut w, b"OK", false);
                        } else if let Some(args) = text.strip_prefix('m') {
                            if running {
                                send(&mut w, b"E01", false);
                                continue;
                            }
                            let (a, n) = args.split_once(',').unwrap();
                            let a = u64::from_str_radix(a, 16).unwrap() - base;
                            let n = usize::from_str_radix(n, 16).unwrap();
                            let bytes = &memory[a as usize..a as usize + n];
                            let mut hex: Vec<u8> = bytes
                                .iter()
                                .flat_map(|b| format!("{b:02x}").into_bytes())
                                .collect();
                            // Run-length encode a run of 8 equal hex digits.
                            if let Some(i) =
                                hex.windows(8).position(|w| w.iter().all(|&c| c == w[0]))
                            {
                                let c = hex[i];
                                hex.splice(i..i + 8, [c, b'*', 29 + 7]);
                            }
                            let corrupt = !corrupted_once;
                            corrupted_once = true;
                            if corrupt {
                                send(&mut w, &hex, true);
                                // The client asks again with '-'.
                                r.read_exact(&mut b).unwrap();
                                assert_eq!(b[0], b'-');
                            }
                            send(&mut w, &hex, false);
                        } else {
                            send(&mut w, b"", false);
                        }
                    }
                    other => panic!("unexpected byte {other:#x}"),
                }
            }
        });
        (addr, handle)
    }

    #[test]
    fn reads_memory_in_packet_sized_chunks_while_halted() {
        let memory: Vec<u8> = (0..1000u32).map(|i| (i * 7 / 13) as u8).collect();
        let base = 0x2000_0000;
        let (addr, stub) = fake_stub(memory.clone(), base);
        let mut gdb = Gdb::connect(&addr, Duration::from_secs(5)).unwrap();
        // PacketSize 0x100: (256 - 4) / 2 bytes per request.
        assert_eq!(gdb.chunk(), 126);
        gdb.resume().unwrap();
        TargetMemory::halt(&mut gdb).unwrap();
        let mut buf = vec![0; 900];
        gdb.read(base + 50, &mut buf).unwrap();
        assert_eq!(buf, memory[50..950]);
        gdb.resume().unwrap();
        gdb.detach().unwrap();
        let log = stub.join().unwrap();
        let reads: Vec<&String> = log.iter().filter(|l| l.starts_with('m')).collect();
        assert_eq!(reads.len(), 900usize.div_ceil(126));
        assert_eq!(reads[0], &format!("m{:x},7e", base + 50));
        // Every read happened between an interrupt and the next continue.
        let order: Vec<&str> = log
            .iter()
            .map(|l| if l.starts_with('m') { "m" } else { l.as_str() })
            .collect();
        let first_m = order.iter().position(|&l| l == "m").unwrap();
        assert_eq!(order[first_m - 1], "^C");
        assert_eq!(&order[order.len() - 3..], ["c", "^C", "D"]);
    }

    #[test]
    fn a_reading_error_names_the_address() {
        let (addr, stub) = fake_stub(vec![0; 64], 0x1000);
        let mut gdb = Gdb::connect(&addr, Duration::from_secs(5)).unwrap();
        gdb.resume().unwrap();
        // Running: the stub refuses, the client reports it.
        let e = gdb.read_memory(0x1000, &mut [0; 8]).unwrap_err();
        assert!(e.to_string().contains("at 0x1000"), "{e}");
        drop(gdb);
        stub.join().unwrap();
    }

    #[test]
    fn a_poll_halts_reads_and_resumes_and_measures_the_pause() {
        let config = tracemark::Config {
            block_size: 256,
            ..tracemark::Config::new()
        };
        let image = tracemark_tests::ring_image(&config, 4, 10, |t, _| {
            for i in 0u32..60 {
                t.user(1, &i.to_le_bytes());
            }
        });
        let base = 0x2000_0000;
        let (addr, stub) = fake_stub(image, base);
        let mut gdb = Gdb::connect(&addr, Duration::from_secs(5)).unwrap();
        gdb.resume().unwrap();
        let mut ring = crate::live::LiveRing::attach(&mut gdb, base).unwrap();
        let poll = ring.poll(&mut gdb).unwrap();
        assert!(!poll.images.is_empty());
        assert!(poll.pause > Duration::ZERO);
        assert_eq!(ring.stats().paused, poll.pause);
        gdb.detach().unwrap();
        let log = stub.join().unwrap();
        // Every read inside a halt: each `m` run is preceded by ^C and followed by c.
        let mut halted = false;
        for l in &log {
            match l.as_str() {
                "^C" => halted = true,
                "c" => halted = false,
                m if m.starts_with('m') => assert!(halted, "{log:?}"),
                _ => {}
            }
        }
        assert_eq!(log.iter().filter(|l| *l == "^C").count(), 3, "{log:?}");
    }

    #[test]
    fn run_length_encoding_expands() {
        assert_eq!(expand(b"0* ").unwrap(), b"0000");
        assert_eq!(expand(b"ab*!c").unwrap(), b"abbbbbc");
        assert!(expand(b"*a").is_err());
    }
}
