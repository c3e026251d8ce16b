//! A racy back end for tests: QEMU's QMP `pmemsave` copies guest memory into a file
//! while the guest runs, so reads race the writer as a probe reading a running target
//! does (`tracemark capture --qmp SOCKET`, QEMU `-qmp unix:SOCKET,server,wait=off`).
//!
//! QMP is one JSON object per line on a unix socket: the server greets, the client
//! sends `qmp_capabilities`, then commands; asynchronous events (`{"event": ...}`) may
//! come between a command and its `{"return": ...}` or `{"error": ...}`.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use crate::memory::TargetMemory;

/// A QMP connection and the file `pmemsave` writes.
#[derive(Debug)]
pub struct Qmp {
    reader: BufReader<UnixStream>,
    dir: tempfile::TempDir,
}

fn bad(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

impl Qmp {
    /// Connects to the QMP socket at `path` and enters command mode.
    pub fn connect(path: &Path) -> io::Result<Self> {
        let stream = UnixStream::connect(path)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut qmp = Qmp {
            reader: BufReader::new(stream),
            dir: tempfile::tempdir()?,
        };
        let greeting = qmp.line()?;
        if greeting.get("QMP").is_none() {
            return Err(bad(format!("not a QMP greeting: {greeting}")));
        }
        qmp.command(&serde_json::json!({"execute": "qmp_capabilities"}))?;
        // A guest started stopped (`-S`, so that nothing is written before the capture
        // is there) runs from now on, as the GDB back end lets an all-stop stub's
        // target run on connecting. `cont` on a running guest does nothing.
        qmp.command(&serde_json::json!({"execute": "cont"}))?;
        Ok(qmp)
    }

    fn line(&mut self) -> io::Result<serde_json::Value> {
        let mut line = String::new();
        // A QMP line is short; a server sending megabytes without a line end is broken.
        let n = io::Read::take(&mut self.reader, 1 << 20).read_line(&mut line)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "QMP closed"));
        }
        serde_json::from_str(&line).map_err(|e| bad(format!("QMP: {e}")))
    }

    fn command(&mut self, cmd: &serde_json::Value) -> io::Result<serde_json::Value> {
        let mut text = cmd.to_string();
        text.push('\n');
        self.reader.get_mut().write_all(text.as_bytes())?;
        loop {
            let reply = self.line()?;
            if let Some(r) = reply.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = reply.get("error") {
                return Err(bad(format!("QMP {}: {e}", cmd["execute"])));
            }
            if reply.get("event").and_then(|e| e.as_str()) == Some("SHUTDOWN") {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the guest shut down",
                ));
            }
        }
    }
}

impl TargetMemory for Qmp {
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> io::Result<()> {
        let file = self.dir.path().join("mem");
        let name = file
            .to_str()
            .ok_or_else(|| bad("temporary path not UTF-8".into()))?;
        self.command(&serde_json::json!({
            "execute": "pmemsave",
            "arguments": {"val": addr, "size": buf.len(), "filename": name},
        }))?;
        let bytes = std::fs::read(&file)?;
        if bytes.len() != buf.len() {
            return Err(bad(format!(
                "pmemsave wrote {} bytes, not {}",
                bytes.len(),
                buf.len()
            )));
        }
        buf.copy_from_slice(&bytes);
        Ok(())
    }
}
