//! JSON-lines outputs (stdout or a file). A write error — a full disk, a
//! closed pipe — is counted and reported, never a crash: the sensor keeps
//! watching even when nobody reads one of its outputs for a while.

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
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

    /// Opens the target (files are appended to, created if missing).
    pub fn open(&self) -> std::io::Result<Box<dyn Write + Send>> {
        Ok(match self {
            OutputTarget::Stdout => Box::new(std::io::stdout()),
            OutputTarget::File(p) => Box::new(OpenOptions::new().create(true).append(true).open(p)?),
        })
    }
}

/// A buffered JSON-lines writer that counts what it wrote and what failed.
pub struct JsonLines {
    out: BufWriter<Box<dyn Write + Send>>,
    pub written: u64,
    pub errors: u64,
    line: Vec<u8>,
}

impl JsonLines {
    pub fn new(out: Box<dyn Write + Send>) -> JsonLines {
        JsonLines {
            out: BufWriter::with_capacity(64 * 1024, out),
            written: 0,
            errors: 0,
            line: Vec::with_capacity(4096),
        }
    }

    /// Writes one value as one line. Returns false (and counts) on error.
    pub fn write<T: Serialize + ?Sized>(&mut self, value: &T) -> bool {
        self.line.clear();
        if serde_json::to_writer(&mut self.line, value).is_err() {
            self.errors += 1;
            return false;
        }
        self.line.push(b'\n');
        match self.out.write_all(&self.line) {
            Ok(()) => {
                self.written += 1;
                true
            }
            Err(_) => {
                self.errors += 1;
                false
            }
        }
    }

    /// Flushes buffered lines; a failure is counted.
    pub fn flush(&mut self) -> bool {
        if self.out.flush().is_err() {
            self.errors += 1;
            false
        } else {
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Failing;
    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
        }
    }

    #[test]
    fn writes_lines_to_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.jsonl");
        let target = OutputTarget::parse(path.to_str().expect("utf8 path"));
        let mut w = JsonLines::new(target.open().expect("open"));
        assert!(w.write(&serde_json::json!({"a": 1})));
        assert!(w.write(&serde_json::json!({"b": "x"})));
        assert!(w.flush());
        drop(w);
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text, "{\"a\":1}\n{\"b\":\"x\"}\n");
    }

    #[test]
    fn a_broken_pipe_is_counted_not_fatal() {
        let mut w = JsonLines::new(Box::new(Failing));
        // Small writes are buffered; the flush reveals the error.
        assert!(w.write(&serde_json::json!({"a": 1})));
        assert!(!w.flush());
        assert_eq!(w.errors, 1);
        assert_eq!(OutputTarget::parse("-"), OutputTarget::Stdout);
    }
}
