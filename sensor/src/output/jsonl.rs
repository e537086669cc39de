//! JSON-lines outputs (stdout or a file). A write error — a full disk, a
//! closed pipe — is counted and reported, never a crash: the sensor keeps
//! watching even when nobody reads one of its outputs for a while.
//!
//! Two guarantees hold for every output, rotation included:
//!
//! - **Safe to open as root.** A file output is opened with `O_NOFOLLOW`
//!   (a planted symlink, dangling or not, is refused: nothing is written
//!   through it and no target is created), must be owned by the sensor's
//!   user or root (a file a local user planted is refused), and a regular
//!   file must have exactly one link (no hard link to some other file).
//!   Files are created with the configured mode, 0600 by default (0640 with
//!   `output_mode`), and an existing file's mode is set to it: command lines
//!   can hold secrets. Devices (`/dev/null`) and FIFOs are accepted.
//! - **Whole lines only.** Lines are buffered and handed to the file a batch
//!   of whole lines at a time. A batch that cannot be written entirely (a
//!   full disk, `ENOSPC` or a short write) is cut back to its last whole
//!   line with `ftruncate` and the rest of it dropped (the write error is
//!   counted): a reader never sees a partial line, neither at the fill
//!   point nor after space is freed.

use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, Seek, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Serialize;

/// Mode of a created output file, unless configured otherwise.
pub const DEFAULT_MODE: u32 = 0o600;

/// Bytes of whole lines gathered before they are written (also written on
/// every flush).
const BATCH_BYTES: usize = 64 * 1024;

/// Where a stream of JSON lines goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputTarget {
    Stdout,
    File(PathBuf),
}

/// How a file output is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputOptions {
    /// Size-based rotation, if any.
    pub rotation: Option<Rotation>,
    /// Permission bits of the file (0600 or 0640).
    pub mode: u32,
}

impl Default for OutputOptions {
    fn default() -> Self {
        OutputOptions {
            rotation: None,
            mode: DEFAULT_MODE,
        }
    }
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

    /// Opens the target, buffered (files are appended to, created 0600 if
    /// missing: a restarted sensor continues the same file).
    pub fn open(&self) -> io::Result<Box<dyn Write + Send>> {
        self.open_with(OutputOptions::default())
    }

    /// Like [`open`](Self::open); a file rotates by size when `rotation` is set.
    pub fn open_rotating(&self, rotation: Option<Rotation>) -> io::Result<Box<dyn Write + Send>> {
        self.open_with(OutputOptions {
            rotation,
            ..OutputOptions::default()
        })
    }

    /// Opens the target with explicit options (see the module docs for what
    /// a file must be to be written to).
    pub fn open_with(&self, opts: OutputOptions) -> io::Result<Box<dyn Write + Send>> {
        let sink = match self {
            OutputTarget::Stdout => Sink::Stdout(io::stdout()),
            OutputTarget::File(p) => Sink::File(OutputFile::open(p.clone(), opts)?),
        };
        Ok(Box::new(LineBuffer {
            sink,
            buf: Vec::with_capacity(BATCH_BYTES),
        }))
    }
}

/// Opens `path` for appending the way a privileged writer must: no symlink
/// followed, owned by this user or root, a regular file with one link (or a
/// device or FIFO), its mode set to `mode`.
pub fn open_output_file(path: &Path, mode: u32) -> io::Result<File> {
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "{} is a symbolic link: refusing to write through it",
                        path.display()
                    ),
                )
            } else {
                e
            }
        })?;
    let refuse = |why: String| {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{}: {why}: refusing to write to it", path.display()),
        ))
    };
    let meta = file.metadata()?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me && meta.uid() != 0 {
        return refuse(format!(
            "owned by uid {}, neither this user (uid {me}) nor root",
            meta.uid()
        ));
    }
    let kind = meta.file_type();
    if kind.is_file() {
        if meta.nlink() != 1 {
            return refuse(format!("a file with {} hard links", meta.nlink()));
        }
        if meta.mode() & 0o7777 != mode && meta.uid() == me {
            file.set_permissions(Permissions::from_mode(mode))?;
        }
    } else if !(kind.is_char_device() || kind.is_fifo()) {
        return refuse("not a regular file, character device or FIFO".to_owned());
    }
    Ok(file)
}

/// Size-based rotation of a file output: `out.jsonl` becomes `out.jsonl.1`,
/// `.1` becomes `.2`, ... and the oldest beyond `keep` is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    pub max_bytes: u64,
    pub keep: u32,
}

/// Buffers whole lines and hands them down a batch at a time. Bytes after
/// the last newline (never there when written through [`JsonLines`]) stay
/// buffered until their line is complete.
struct LineBuffer {
    sink: Sink,
    buf: Vec<u8>,
}

impl LineBuffer {
    /// Writes every whole line buffered; on failure they are dropped (the
    /// sink keeps the output at a line boundary).
    fn write_out(&mut self) -> io::Result<()> {
        let Some(last) = memchr::memrchr(b'\n', &self.buf) else {
            return Ok(());
        };
        let result = self.sink.write_lines(&self.buf[..=last]);
        self.buf.drain(..=last);
        result
    }
}

impl Write for LineBuffer {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if !self.buf.is_empty() && self.buf.len() + data.len() > BATCH_BYTES {
            self.write_out()?;
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_out()?;
        self.sink.flush()
    }
}

impl Drop for LineBuffer {
    fn drop(&mut self) {
        let _ = self.write_out();
    }
}

enum Sink {
    Stdout(io::Stdout),
    File(OutputFile),
}

impl Sink {
    fn write_lines(&mut self, lines: &[u8]) -> io::Result<()> {
        match self {
            Sink::Stdout(s) => s.lock().write_all(lines),
            Sink::File(f) => f.write_lines(lines),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Stdout(s) => s.flush(),
            Sink::File(_) => Ok(()),
        }
    }
}

/// A file output: whole batches of lines or nothing, rotated by size
/// between batches, reopened with the same checks after rotation.
pub struct OutputFile {
    path: PathBuf,
    opts: OutputOptions,
    file: File,
    /// Bytes in the file (for rotation).
    size: u64,
    /// A regular file (can be cut back after a failed write).
    regular: bool,
    /// The length to cut the file back to, when an earlier cut failed.
    cut_to: Option<u64>,
    /// The current file was renamed away but no new one could be opened.
    rotated_out: bool,
}

impl OutputFile {
    pub fn open(path: PathBuf, opts: OutputOptions) -> io::Result<OutputFile> {
        let file = open_output_file(&path, opts.mode)?;
        let meta = file.metadata()?;
        Ok(OutputFile {
            path,
            opts,
            file,
            size: meta.len(),
            regular: meta.file_type().is_file(),
            cut_to: None,
            rotated_out: false,
        })
    }

    fn numbered(&self, n: u32) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(format!(".{n}"));
        PathBuf::from(p)
    }

    fn rotate(&mut self, keep: u32) -> io::Result<()> {
        if !self.rotated_out {
            // Neither unlink nor rename follows a symlink at these names.
            let _ = std::fs::remove_file(self.numbered(keep));
            for n in (1..keep).rev() {
                let from = self.numbered(n);
                if std::fs::symlink_metadata(&from).is_ok() {
                    std::fs::rename(&from, self.numbered(n + 1))?;
                }
            }
            std::fs::rename(&self.path, self.numbered(1))?;
            self.rotated_out = true;
        }
        // Until this succeeds, lines keep going to the renamed file.
        let fresh = OutputFile::open(self.path.clone(), self.opts)?;
        *self = fresh;
        Ok(())
    }

    /// Writes `lines` (whole lines) entirely, or cuts the file back to the
    /// last whole line written and reports the error.
    pub fn write_lines(&mut self, lines: &[u8]) -> io::Result<()> {
        if let Some(len) = self.cut_to {
            self.file.set_len(len)?;
            self.cut_to = None;
            self.size = len;
        }
        if let Some(r) = self.opts.rotation {
            if self.size >= r.max_bytes {
                self.rotate(r.keep)?;
            }
        }
        let mut done = 0;
        let mut failure = None;
        while done < lines.len() {
            match self.file.write(&lines[done..]) {
                Ok(0) => {
                    failure = Some(io::Error::from(io::ErrorKind::WriteZero));
                    break;
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        self.size += done as u64;
        let Some(failure) = failure else {
            return Ok(());
        };
        let whole = memchr::memrchr(b'\n', &lines[..done]).map_or(0, |i| i + 1);
        let partial = (done - whole) as u64;
        if partial > 0 && self.regular {
            // O_APPEND: the offset is the end of what was just written.
            let end = self.file.stream_position()?;
            let len = end.saturating_sub(partial);
            self.size = len;
            if self.file.set_len(len).is_err() {
                // Retried before anything else is written.
                self.cut_to = Some(len);
            }
        }
        Err(failure)
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
    /// Failures counted where the writes really happen, when that is a
    /// thread of its own ([`JsonLines::background`]).
    background_errors: Option<Arc<AtomicU64>>,
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
            background_errors: None,
        }
    }

    /// Lines written to `out` on a thread of their own
    /// ([`crate::output::background`]): each flush hands a batch over.
    pub fn background(name: &str, out: Box<dyn Write + Send>) -> io::Result<JsonLines> {
        let (writer, errors) = crate::output::background::BackgroundWriter::spawn(name, out)?;
        let mut lines = JsonLines::new(Box::new(writer));
        lines.background_errors = Some(errors);
        Ok(lines)
    }

    /// Flushes and waits until every line has been written (for a
    /// background writer: its thread has finished); later writes fail.
    pub fn close(&mut self) {
        let _ = self.flush();
        self.out = Box::new(ClosedOutput);
    }

    /// Writes one value as one line.
    pub fn write<T: Serialize + ?Sized>(&mut self, value: &T) -> io::Result<()> {
        self.line.clear();
        if let Err(e) = serde_json::to_writer(&mut self.line, value) {
            self.errors += 1;
            return Err(io::Error::other(e));
        }
        self.line.push(b'\n');
        self.write_line()
    }

    fn write_line(&mut self) -> io::Result<()> {
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

    /// Writes one JSON document, already serialised (no newline), as one
    /// line.
    pub fn write_raw(&mut self, json: &[u8]) -> io::Result<()> {
        self.line.clear();
        self.line.extend_from_slice(json);
        self.line.push(b'\n');
        self.write_line()
    }

    /// Counts a document that could not be serialised, returning `e`.
    pub fn write_raw_failed(&mut self, e: io::Error) -> io::Result<()> {
        self.errors += 1;
        Err(e)
    }

    /// Flushes the underlying writer (a failure is counted).
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush().inspect_err(|_| self.errors += 1)
    }

    /// Lines written successfully.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Failed writes and flushes (including those of a background writer
    /// thread).
    pub fn errors(&self) -> u64 {
        self.errors
            + self
                .background_errors
                .as_ref()
                .map_or(0, |e| e.load(Ordering::Relaxed))
    }
}

/// What a closed [`JsonLines`] writes to: nothing, with an error.
struct ClosedOutput;

impl Write for ClosedOutput {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::other("the output is closed"))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
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

    fn is_root() -> bool {
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() == 0 }
    }

    fn mode_of(p: &Path) -> u32 {
        std::fs::metadata(p).expect("stat").mode() & 0o7777
    }

    #[test]
    fn files_are_created_0600_and_existing_ones_narrowed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("alerts.jsonl");
        drop(OutputTarget::File(path.clone()).open().expect("open"));
        assert_eq!(mode_of(&path), 0o600);
        std::fs::set_permissions(&path, Permissions::from_mode(0o644)).expect("chmod");
        drop(OutputTarget::File(path.clone()).open().expect("open"));
        assert_eq!(
            mode_of(&path),
            0o600,
            "an old world-readable file is narrowed"
        );
        let opts = OutputOptions {
            mode: 0o640,
            ..OutputOptions::default()
        };
        drop(
            OutputTarget::File(path.clone())
                .open_with(opts)
                .expect("open"),
        );
        assert_eq!(mode_of(&path), 0o640);
    }

    #[test]
    fn symlinks_are_refused_dangling_or_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "root only\n").expect("write");
        let link = dir.path().join("alerts.jsonl");
        std::os::unix::fs::symlink(&victim, &link).expect("symlink");
        let err = OutputTarget::File(link.clone())
            .open()
            .err()
            .expect("refused");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(
            std::fs::read_to_string(&victim).expect("read"),
            "root only\n"
        );
        // A dangling link must not create its target.
        let missing = dir.path().join("created-through-link");
        let dangling = dir.path().join("events.jsonl");
        std::os::unix::fs::symlink(&missing, &dangling).expect("symlink");
        assert!(OutputTarget::File(dangling).open().is_err());
        assert!(!missing.exists());
    }

    #[test]
    fn hard_links_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "x\n").expect("write");
        let link = dir.path().join("alerts.jsonl");
        std::fs::hard_link(&victim, &link).expect("link");
        let err = OutputTarget::File(link).open().err().expect("refused");
        assert!(err.to_string().contains("hard links"), "{err}");
        assert_eq!(std::fs::read_to_string(&victim).expect("read"), "x\n");
    }

    #[test]
    fn a_file_owned_by_another_user_is_refused() {
        if !is_root() {
            eprintln!("skipping: needs root to chown");
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let planted = dir.path().join("alerts.jsonl");
        std::fs::write(&planted, "").expect("write");
        std::os::unix::fs::chown(&planted, Some(65534), Some(65534)).expect("chown");
        let err = OutputTarget::File(planted.clone())
            .open()
            .err()
            .expect("refused");
        assert!(err.to_string().contains("owned by uid 65534"), "{err}");
        assert_eq!(std::fs::metadata(&planted).expect("stat").len(), 0);
        // /dev/null (root's) stays usable.
        let mut w = OutputTarget::parse("/dev/null").open().expect("/dev/null");
        w.write_all(b"{}\n").expect("write");
        w.flush().expect("flush");
    }

    #[test]
    fn rotation_never_follows_a_link_planted_at_the_output_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("alerts.jsonl");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "").expect("write");
        let rotation = Rotation {
            max_bytes: 10,
            keep: 2,
        };
        let mut w = JsonLines::new(
            OutputTarget::File(path.clone())
                .open_rotating(Some(rotation))
                .expect("open"),
        );
        w.write(&serde_json::json!({"n": 1, "pad": "xxxxxxxxxxxx"}))
            .expect("write");
        w.flush().expect("flush");
        // The file is full: the next batch rotates. A symlink planted at
        // the output path (and at a rotated name) is moved, never followed,
        // and the new file is a fresh 0600 one.
        std::fs::rename(&path, dir.path().join("moved")).expect("rename");
        std::os::unix::fs::symlink(&victim, &path).expect("symlink");
        std::os::unix::fs::symlink(&victim, dir.path().join("alerts.jsonl.2")).expect("symlink");
        w.write(&serde_json::json!({"n": 2})).expect("buffered");
        w.flush().expect("flush");
        assert_eq!(std::fs::metadata(&victim).expect("stat").len(), 0);
        assert!(std::fs::symlink_metadata(dir.path().join("alerts.jsonl.1"))
            .expect("rotated")
            .file_type()
            .is_symlink());
        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "{\"n\":2}\n");
    }
}
