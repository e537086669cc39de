//! JSON-lines outputs (stdout or a file). A write error — a full disk, a
//! closed pipe — is counted and reported, never a crash: the sensor keeps
//! watching even when nobody reads one of its outputs for a while.

use std::fs::OpenOptions;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use serde::Serialize;

/// Where a stream of JSON lines goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputTarget {
    Stdout,
    File(PathBuf),
}

impl OutputTarget {
    /// `-` is stdout, anything else a file path.
    pub fn parse(s: &str) -> OutputTarget {
        if s == "-" {
            OutputTarget::Stdout
        } else {
            OutputTarget::File(PathBuf::from(s))
        }
    }

    pub fn describe(&self) -> String {
        match self {
            OutputTarget::Stdout => "stdout".to_owned(),
            OutputTarget::File(p) => p.display().to_string(),
        }
    }

    /// Opens the target, buffered (files are appended to, created if
    /// missing: a restarted sensor continues the same file).
    pub fn open(&self) -> io::Result<Box<dyn Write + Send>> {
        Ok(match self {
            OutputTarget::Stdout => Box::new(BufWriter::with_capacity(64 * 1024, io::stdout())),
            OutputTarget::File(p) => Box::new(BufWriter::with_capacity(
                64 * 1024,
                OpenOptions::new().create(true).append(true).open(p)?,
            )),
        })
    }
}

/// One JSON document per line, to any writer: the one writer behind the
/// alerts output (live and `replay` alike, so both give byte-identical
/// lines) and the events output.
///
/// Each line is serialised first and written with a single `write_all`, so
/// an error never leaves half a document followed by the next one on the
/// same line from this side. Failed writes and flushes are counted and
/// returned, never a panic: the sensor keeps running (and reports the count)
/// when, say, its alert pipe closes. Buffering is the caller's choice
/// ([`OutputTarget::open`] buffers).
pub struct JsonLines {
    out: Box<dyn Write + Send>,
    line: Vec<u8>,
    written: u64,
    errors: u64,
}

impl std::fmt::Debug for JsonLines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonLines")
            .field("written", &self.written)
            .field("errors", &self.errors)
            .finish_non_exhaustive()
    }
}

impl JsonLines {
    pub fn new(out: Box<dyn Write + Send>) -> JsonLines {
        JsonLines {
            out,
            line: Vec::with_capacity(4096),
            written: 0,
            errors: 0,
        }
    }

    /// Writes one value as one line.
    pub fn write<T: Serialize + ?Sized>(&mut self, value: &T) -> io::Result<()> {
        self.line.clear();
        if let Err(e) = serde_json::to_writer(&mut self.line, value) {
            self.errors += 1;
            return Err(io::Error::other(e));
        }
        self.line.push(b'\n');
        match self.out.write_all(&self.line) {
            Ok(()) => {
                self.written += 1;
                Ok(())
            }
            Err(e) => {
                self.errors += 1;
                Err(e)
            }
        }
    }

    /// Flushes the underlying writer (a failure is counted).
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush().inspect_err(|_| self.errors += 1)
    }

    /// Lines written successfully.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Failed writes and flushes.
    pub fn errors(&self) -> u64 {
        self.errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Failing;
    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> io::Result<()> {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
    }

    #[test]
    fn writes_lines_to_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.jsonl");
        let target = OutputTarget::parse(path.to_str().expect("utf8 path"));
        let mut w = JsonLines::new(target.open().expect("open"));
        w.write(&serde_json::json!({"a": 1})).expect("write");
        w.write(&serde_json::json!({"b": "x"})).expect("write");
        w.flush().expect("flush");
        drop(w);
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text, "{\"a\":1}\n{\"b\":\"x\"}\n");
        assert_eq!(OutputTarget::parse("-"), OutputTarget::Stdout);
    }

    #[test]
    fn write_errors_are_counted_not_fatal() {
        let mut w = JsonLines::new(Box::new(Failing));
        assert!(w.write(&serde_json::json!({"a": 1})).is_err());
        assert!(w.write(&serde_json::json!({"a": 2})).is_err());
        assert!(w.flush().is_err());
        assert_eq!((w.written(), w.errors()), (0, 3));
    }
}
