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
        self.open_rotating(None)
    }

    /// Like [`open`](Self::open); a file rotates by size when `rotation` is set.
    pub fn open_rotating(&self, rotation: Option<Rotation>) -> io::Result<Box<dyn Write + Send>> {
        Ok(match (self, rotation) {
            (OutputTarget::Stdout, _) => {
                Box::new(BufWriter::with_capacity(64 * 1024, io::stdout()))
            }
            (OutputTarget::File(p), None) => Box::new(BufWriter::with_capacity(
                64 * 1024,
                OpenOptions::new().create(true).append(true).open(p)?,
            )),
            (OutputTarget::File(p), Some(r)) => Box::new(BufWriter::with_capacity(
                64 * 1024,
                RotatingFile::open(p.clone(), r)?,
            )),
        })
    }
}

/// Size-based rotation of a file output: `out.jsonl` becomes `out.jsonl.1`,
/// `.1` becomes `.2`, ... and the oldest beyond `keep` is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    pub max_bytes: u64,
    pub keep: u32,
}

/// A file that rotates once it has reached its size limit, only between
/// lines (a chunk handed down by the buffer starts a new line when the
/// previous one ended with a newline), so no JSON line is ever split.
pub struct RotatingFile {
    path: PathBuf,
    rotation: Rotation,
    file: std::fs::File,
    size: u64,
    at_line_start: bool,
}

impl RotatingFile {
    pub fn open(path: PathBuf, rotation: Rotation) -> io::Result<RotatingFile> {
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let size = file.metadata()?.len();
        Ok(RotatingFile {
            path,
            rotation,
            file,
            size,
            at_line_start: true,
        })
    }

    fn numbered(&self, n: u32) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(format!(".{n}"));
        PathBuf::from(p)
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        let _ = std::fs::remove_file(self.numbered(self.rotation.keep));
        for n in (1..self.rotation.keep).rev() {
            let from = self.numbered(n);
            if from.exists() {
                std::fs::rename(&from, self.numbered(n + 1))?;
            }
        }
        std::fs::rename(&self.path, self.numbered(1))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.at_line_start && self.size >= self.rotation.max_bytes && !buf.is_empty() {
            self.rotate()?;
        }
        let n = self.file.write(buf)?;
        self.size += n as u64;
        if n > 0 {
            self.at_line_start = buf[n - 1] == b'\n';
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
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

    #[test]
    fn rotation_by_size_keeps_whole_lines_and_n_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("alerts.jsonl");
        let rotation = Rotation {
            max_bytes: 100,
            keep: 2,
        };
        let target = OutputTarget::File(path.clone());
        let mut w = JsonLines::new(target.open_rotating(Some(rotation)).expect("open"));
        for i in 0..30 {
            w.write(&serde_json::json!({"n": i, "pad": "xxxxxxxxxxxxxxxxxxxx"}))
                .expect("write");
            w.flush().expect("flush");
        }
        drop(w);
        let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
        let (cur, one, two) = (
            read(&path),
            read(&dir.path().join("alerts.jsonl.1")),
            read(&dir.path().join("alerts.jsonl.2")),
        );
        assert!(
            !dir.path().join("alerts.jsonl.3").exists(),
            "keeps 2 rotated files"
        );
        for text in [&cur, &one, &two] {
            assert!(!text.is_empty());
            for line in text.lines() {
                serde_json::from_str::<serde_json::Value>(line).expect("every line whole");
            }
        }
        // The newest lines are in the current file, in order.
        let last: serde_json::Value =
            serde_json::from_str(cur.lines().last().expect("line")).expect("json");
        assert_eq!(last["n"], 29);
        assert!(one.len() >= 100 && two.len() >= 100);
    }
}
