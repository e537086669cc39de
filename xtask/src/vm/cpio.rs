//! A minimal writer for the `newc` cpio format the kernel unpacks as an
//! initramfs (kernel `Documentation/driver-api/early-userspace/buffer-format.rst`):
//! per entry a 110-byte ASCII header, the NUL-terminated name padded to 4
//! bytes, the data padded to 4 bytes; a `TRAILER!!!` entry ends the archive.
//! Uncompressed on purpose: decompressing under TCG costs more than reading.

use std::collections::BTreeSet;
use std::io::Write;

const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;

/// An archive being built in memory; parent directories are added on demand.
#[derive(Default)]
pub struct Archive {
    buf: Vec<u8>,
    dirs: BTreeSet<String>,
    ino: u32,
}

impl Archive {
    fn header(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.header_dev(name, mode, data, (0, 0));
    }

    fn header_dev(&mut self, name: &str, mode: u32, data: &[u8], rdev: (u32, u32)) {
        self.ino += 1;
        let namesize = name.len() + 1;
        let fields = [
            self.ino,
            mode,
            0, // uid
            0, // gid
            1, // nlink
            0, // mtime
            u32::try_from(data.len()).unwrap_or(u32::MAX),
            0, // devmajor
            0, // devminor
            rdev.0,
            rdev.1,
            u32::try_from(namesize).unwrap_or(u32::MAX),
            0, // check
        ];
        self.buf.extend_from_slice(b"070701");
        for f in fields {
            // Writing to a Vec cannot fail.
            let _ = write!(self.buf, "{f:08X}");
        }
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(0);
        self.pad();
        self.buf.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    /// Adds `path` (relative, no leading `/`) and its parents as directories.
    pub fn dir(&mut self, path: &str) {
        let path = path.trim_matches('/');
        if path.is_empty() || self.dirs.contains(path) {
            return;
        }
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent);
        }
        self.dirs.insert(path.to_owned());
        self.header(path, S_IFDIR | 0o755, &[]);
    }

    fn parent_of(&mut self, path: &str) {
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent);
        }
    }

    /// Adds a regular file with the given permission bits.
    pub fn file(&mut self, path: &str, perm: u32, data: &[u8]) {
        let path = path.trim_start_matches('/');
        self.parent_of(path);
        self.header(path, S_IFREG | (perm & 0o7777), data);
    }

    /// Adds a symbolic link `path` -> `target`.
    pub fn symlink(&mut self, path: &str, target: &str) {
        let path = path.trim_start_matches('/');
        self.parent_of(path);
        self.header(path, S_IFLNK | 0o777, target.as_bytes());
    }

    /// Adds a character device node (e.g. `dev/console`, 5:1), which the
    /// kernel needs in the initramfs to give `/init` a console.
    pub fn chardev(&mut self, path: &str, major: u32, minor: u32) {
        let path = path.trim_start_matches('/');
        self.parent_of(path);
        self.header_dev(path, S_IFCHR | 0o600, &[], (major, minor));
    }

    /// Ends the archive and returns its bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.header("TRAILER!!!", 0, &[]);
        // The kernel wants the whole image a multiple of 512 bytes.
        while !self.buf.len().is_multiple_of(512) {
            self.buf.push(0);
        }
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_aligned_and_parents_come_first() {
        let mut a = Archive::default();
        a.file("/bin/x", 0o755, b"abc");
        a.symlink("bin/sh", "busybox");
        let bytes = a.finish();
        assert_eq!(bytes.len() % 512, 0);
        let text = String::from_utf8_lossy(&bytes);
        let bin = text.find("bin\0").expect("bin dir");
        let x = text.find("bin/x\0").expect("bin/x");
        assert!(bin < x);
        assert!(text.contains("TRAILER!!!"));
        // Header of the first entry: magic, ino 1, directory mode.
        assert!(text.starts_with("07070100000001000041ED"));
    }

    #[test]
    fn round_trips_through_cpio_when_available() {
        let Ok(out) = std::process::Command::new("cpio").arg("--version").output() else {
            eprintln!("skipped: no cpio tool");
            return;
        };
        if !out.status.success() {
            return;
        }
        let mut a = Archive::default();
        a.file("etc/passwd", 0o644, b"root:x:0:0::/:/bin/sh\n");
        a.symlink("bin/sh", "busybox");
        let dir = std::env::temp_dir().join(format!("xtask-cpio-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let archive = dir.join("a.cpio");
        std::fs::write(&archive, a.finish()).expect("write");
        let list = std::process::Command::new("cpio")
            .args(["-it", "-F"])
            .arg(&archive)
            .output()
            .expect("cpio -it");
        let names = String::from_utf8_lossy(&list.stdout).to_string();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            list.status.success(),
            "{}",
            String::from_utf8_lossy(&list.stderr)
        );
        for n in ["etc", "etc/passwd", "bin", "bin/sh"] {
            assert!(names.lines().any(|l| l == n), "{n} missing in {names}");
        }
    }
}
