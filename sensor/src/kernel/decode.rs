//! Ring-buffer bytes → typed kernel events. Every length is checked against
//! the bytes actually received: a short or unknown record is an error to
//! count, never a panic or an out-of-bounds read.

use std::collections::HashMap;

use sensor_common::{
    file_op, record_kind, ArgsChunkInfo, ArgsChunkRecord, CgroupRecord, ExecInfo, ExecRecord,
    ExitRecord, FileInfo, FileRecord, ForkRecord, RecordHeader, TaskInfo, ARGS_TOTAL_MAX,
    CGROUP_PATH_MAX, EXEC_ARGC_UNKNOWN, EXEC_ARGS_CHUNK_LOST, EXEC_ARGS_READ_FAILED,
    EXEC_ARGS_TRUNCATED, EXEC_CWD_INCOMPLETE, EXEC_EXE_INCOMPLETE, EXEC_EXE_LEAF_ONLY,
    EXEC_EXE_PRESENT, EXEC_FILENAME_TRUNCATED, EXEC_PARENT_UNKNOWN, FILE_NAMES,
    FILE_NAME_INCOMPLETE, FILE_OLD_PATH_INCOMPLETE, FILE_PATH_INCOMPLETE,
};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record of {got} bytes is shorter than its {need}-byte {what}")]
    Short {
        what: &'static str,
        got: usize,
        need: usize,
    },
    #[error("unknown record kind {0}")]
    UnknownKind(u32),
    #[error(transparent)]
    Net(#[from] crate::network::decode::NetDecodeError),
}

/// One execve, decoded.
#[derive(Debug, Clone, Default)]
pub struct ExecEvent {
    pub ktime_ns: u64,
    pub task: TaskInfo,
    /// `None` when the kernel could not read the parent.
    pub parent: Option<TaskInfo>,
    pub old_pid: u32,
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    pub egid: u32,
    pub cgroup_id: u64,
    /// On a hybrid host, the v1 controller's id (0 elsewhere).
    pub cgroup_v1_id: u64,
    pub pid_ns: u32,
    pub mnt_ns: u32,
    /// Filename as passed to execve (bytes; not necessarily absolute).
    pub filename: Vec<u8>,
    pub filename_truncated: bool,
    /// argv elements captured (the last one may be cut when truncated).
    pub args: Vec<Vec<u8>>,
    /// Real argc, whether or not every argument was captured.
    pub argc: u32,
    pub args_truncated: bool,
    pub args_read_failed: bool,
    /// The working directory as the process sees it (up to its root);
    /// `None` when the kernel could not read all of it.
    pub cwd: Option<Vec<u8>>,
    /// The file the kernel really mapped (`mm->exe_file`), as the process
    /// sees it; read only when the filename does not name it (relative,
    /// `/dev/fd/N`, `/proc/self/exe`), and `None` when not read whole.
    pub exe: Option<Vec<u8>>,
    /// The executed file's own name when its path could not be read whole
    /// (deeper than the walk, unreadable): exact, and what names the
    /// process when `/proc` cannot tell any more.
    pub exe_leaf: Option<Vec<u8>>,
    /// Continuation records of argv the kernel sent before this exec
    /// ([`ArgsAssembler`] joins them); 0 when argv fit in the record.
    pub args_chunks: u32,
    /// The argv blob as captured, kept only while continuation records
    /// are still to be joined (`args_chunks > 0`).
    pub args_raw: Vec<u8>,
}

/// Argv bytes beyond the exec record's inline part.
#[derive(Debug, Clone)]
pub struct ArgsChunkEvent {
    pub tgid: u32,
    pub index: u32,
    pub data: Vec<u8>,
}

/// A new process (fork/clone without CLONE_THREAD).
#[derive(Debug, Clone)]
pub struct ForkEvent {
    pub ktime_ns: u64,
    pub child: TaskInfo,
    pub parent_tgid: u32,
    pub parent_start_boottime_ns: u64,
    pub cgroup_id: u64,
    /// On a hybrid host, the v1 controller's id (0 elsewhere).
    pub cgroup_v1_id: u64,
}

/// The last thread of a process exited.
#[derive(Debug, Clone)]
pub struct ExitEvent {
    pub ktime_ns: u64,
    pub tgid: u32,
    pub exit_code: u32,
    pub start_boottime_ns: u64,
    pub comm: [u8; sensor_common::COMM_LEN],
}

/// A cgroup was created.
#[derive(Debug, Clone)]
pub struct CgroupMkdirEvent {
    pub id: u64,
    /// Hierarchy id: 0 is cgroup2.
    pub root: u32,
    /// Path from the hierarchy's root, e.g. `/kubepods/besteffort/pod.../<id>`.
    pub path: Vec<u8>,
    /// The path was longer than the capture.
    pub truncated: bool,
}

/// What a file event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileOp {
    /// An existing regular file opened with write intent.
    OpenWrite,
    /// A regular file created by an open.
    Create,
    Delete,
    Rename,
}

/// One file operation, decoded.
#[derive(Debug, Clone)]
pub struct FileEvent {
    pub ktime_ns: u64,
    pub tgid: u32,
    pub start_boottime_ns: u64,
    pub cgroup_id: u64,
    pub uid: u32,
    pub gid: u32,
    pub op: FileOp,
    /// The file's path as the acting process sees it; `None` when the
    /// kernel could not walk it whole.
    pub path: Option<Vec<u8>>,
    /// A rename's old path (`None` for other operations or when not whole).
    pub old_path: Option<Vec<u8>>,
    /// The path (or a rename's old path) could not be walked whole.
    pub path_incomplete: bool,
    pub comm: [u8; sensor_common::COMM_LEN],
}

// Execs are most records: boxing them would add an allocation to the
// common case to save a few hundred bytes of stack on the rare ones.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum KernelEvent {
    Exec(ExecEvent),
    Fork(ForkEvent),
    Exit(ExitEvent),
    CgroupMkdir(CgroupMkdirEvent),
    ArgsChunk(ArgsChunkEvent),
    File(FileEvent),
    Net(crate::network::NetEvent),
}

/// The fixed part of a record. `aya::Pod` (implemented only for the
/// `#[repr(C)]`, explicitly padded records of `sensor_common`) is the
/// promise that any bytes are a valid `T`.
fn read_struct<T: aya::Pod>(bytes: &[u8], what: &'static str) -> Result<T, DecodeError> {
    let need = std::mem::size_of::<T>();
    if bytes.len() < need {
        return Err(DecodeError::Short {
            what,
            got: bytes.len(),
            need,
        });
    }
    // SAFETY: length checked above; `T: Pod` is valid for any bit pattern,
    // and read_unaligned needs no alignment.
    Ok(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

/// The `len` bytes after a record's fixed part, checked against what was
/// received.
fn read_tail<'a>(
    bytes: &'a [u8],
    fixed: usize,
    len: u32,
    what: &'static str,
) -> Result<&'a [u8], DecodeError> {
    let need = fixed + len as usize;
    bytes.get(fixed..need).ok_or(DecodeError::Short {
        what,
        got: bytes.len(),
        need,
    })
}

/// Decodes one ring-buffer record.
pub fn decode(bytes: &[u8]) -> Result<KernelEvent, DecodeError> {
    let header: RecordHeader = read_struct(bytes, "header")?;
    match header.kind {
        record_kind::EXEC => decode_exec(bytes).map(KernelEvent::Exec),
        record_kind::FORK => {
            let r: ForkRecord = read_struct(bytes, "fork record")?;
            Ok(KernelEvent::Fork(ForkEvent {
                ktime_ns: r.header.ktime_ns,
                child: r.child,
                parent_tgid: r.parent_tgid,
                parent_start_boottime_ns: r.parent_start_boottime_ns,
                cgroup_id: r.cgroup_id,
                cgroup_v1_id: r.cgroup_v1_id,
            }))
        }
        record_kind::EXIT => {
            let r: ExitRecord = read_struct(bytes, "exit record")?;
            Ok(KernelEvent::Exit(ExitEvent {
                ktime_ns: r.header.ktime_ns,
                tgid: r.tgid,
                exit_code: r.exit_code,
                start_boottime_ns: r.start_boottime_ns,
                comm: r.comm,
            }))
        }
        record_kind::CGROUP_MKDIR => decode_cgroup(bytes).map(KernelEvent::CgroupMkdir),
        record_kind::FILE => decode_file(bytes).map(KernelEvent::File),
        record_kind::NET => {
            let r: sensor_common::net::NetRecord = read_struct(bytes, "network record")?;
            Ok(KernelEvent::Net(crate::network::NetEvent::from_record(&r)?))
        }
        record_kind::ARGS_CHUNK => {
            let info: ArgsChunkInfo = read_struct(bytes, "argv continuation record")?;
            let data = read_tail(
                bytes,
                ArgsChunkRecord::FIXED_LEN,
                info.len,
                "argv continuation bytes",
            )?;
            Ok(KernelEvent::ArgsChunk(ArgsChunkEvent {
                tgid: info.tgid,
                index: info.index,
                data: data.to_vec(),
            }))
        }
        other => Err(DecodeError::UnknownKind(other)),
    }
}

/// The fixed part of [`CgroupRecord`].
#[repr(C)]
#[derive(Clone, Copy)]
struct CgroupFixed {
    header: RecordHeader,
    id: u64,
    root: u32,
    path_len: u32,
}

const _: () = assert!(std::mem::size_of::<CgroupFixed>() == CgroupRecord::FIXED_LEN);

// SAFETY: #[repr(C)] integers only, no padding (checked above against the
// record's layout): valid for any bit pattern.
unsafe impl aya::Pod for CgroupFixed {}

fn decode_cgroup(bytes: &[u8]) -> Result<CgroupMkdirEvent, DecodeError> {
    let rec: CgroupFixed = read_struct(bytes, "cgroup record")?;
    let len = rec.path_len as usize;
    let path = read_tail(bytes, CgroupRecord::FIXED_LEN, rec.path_len, "cgroup path")?;
    Ok(CgroupMkdirEvent {
        id: rec.id,
        root: rec.root,
        path: path.to_vec(),
        truncated: len + 1 >= CGROUP_PATH_MAX,
    })
}

fn decode_file(bytes: &[u8]) -> Result<FileEvent, DecodeError> {
    let rec: FileInfo = read_struct(bytes, "file record")?;
    let op = match rec.op {
        file_op::OPEN_WRITE => FileOp::OpenWrite,
        file_op::CREATE => FileOp::Create,
        file_op::DELETE => FileOp::Delete,
        file_op::RENAME => FileOp::Rename,
        other => return Err(DecodeError::UnknownKind(other)),
    };
    let tail = &bytes[FileRecord::FIXED_LEN..];
    let short = |need: usize| DecodeError::Short {
        what: "file path",
        got: bytes.len(),
        need: FileRecord::FIXED_LEN + need,
    };
    let path_len = rec.path_len as usize;
    let path_blob = tail.get(..path_len).ok_or_else(|| short(path_len))?;
    let dir_whole = rec.flags & FILE_PATH_INCOMPLETE == 0;
    let (path, old_path, incomplete) = if rec.flags & FILE_NAMES != 0 {
        // A syscall's names, relative to the walked directory.
        let name_at = |at: usize, len: u32| -> Result<Option<Vec<u8>>, DecodeError> {
            let end = at + len as usize;
            let raw = tail.get(at..end).ok_or_else(|| short(end))?;
            let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
            Ok((len > 0 && rec.flags & FILE_NAME_INCOMPLETE == 0).then(|| raw.to_vec()))
        };
        let dir = dir_whole.then(|| cwd_from_components(path_blob));
        // Packed (`FILE_WIRE_PACKED`): the name after the directory, the
        // old name after the name.
        let name = name_at(path_len, rec.name_len)?;
        let path = name.and_then(|n| join_name(dir.as_deref(), &n));
        let old_path = if op == FileOp::Rename {
            let old_dir = if rec.flags & FILE_OLD_PATH_INCOMPLETE == 0 {
                dir.as_deref()
            } else {
                None
            };
            name_at(path_len + rec.name_len as usize, rec.old_name_len)?
                .and_then(|n| join_name(old_dir, &n))
        } else {
            None
        };
        let incomplete = path.is_none() || (op == FileOp::Rename && old_path.is_none());
        (path, old_path, incomplete)
    } else {
        let old_path = if op == FileOp::Rename {
            // Packed: the old path right after the new one.
            let end = path_len + rec.old_path_len as usize;
            let blob = tail.get(path_len..end).ok_or_else(|| short(end))?;
            (rec.flags & FILE_OLD_PATH_INCOMPLETE == 0).then(|| cwd_from_components(blob))
        } else {
            None
        };
        (
            dir_whole.then(|| cwd_from_components(path_blob)),
            old_path,
            rec.flags & (FILE_PATH_INCOMPLETE | FILE_OLD_PATH_INCOMPLETE) != 0,
        )
    };
    Ok(FileEvent {
        ktime_ns: rec.header.ktime_ns,
        tgid: rec.tgid,
        start_boottime_ns: rec.start_boottime_ns,
        cgroup_id: rec.cgroup_id,
        uid: rec.uid,
        gid: rec.gid,
        op,
        path,
        old_path,
        path_incomplete: incomplete,
        comm: rec.comm,
    })
}

/// A name a process passed to a syscall, made absolute against `dir` (the
/// walked directory it is relative to) and cleaned lexically (`.`, `..`,
/// repeated slashes): `None` for a relative name without its directory.
pub fn join_name(dir: Option<&[u8]>, name: &[u8]) -> Option<Vec<u8>> {
    let mut parts: Vec<&[u8]> = Vec::new();
    let rel = !name.starts_with(b"/");
    let base: &[u8] = if rel { dir? } else { b"" };
    for part in base.split(|b| *b == b'/').chain(name.split(|b| *b == b'/')) {
        match part {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let mut out = Vec::with_capacity(base.len() + name.len() + 1);
    for p in &parts {
        out.push(b'/');
        out.extend_from_slice(p);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    Some(out)
}

fn decode_exec(bytes: &[u8]) -> Result<ExecEvent, DecodeError> {
    let rec: ExecInfo = read_struct(bytes, "exec record")?;
    let tail = &bytes[ExecRecord::FIXED_LEN..];
    let filename_len = rec.filename_len as usize;
    let args_len = rec.args_len as usize;
    let cwd_len = rec.cwd_len as usize;
    let exe_len = rec.exe_len as usize;
    let need = filename_len + args_len + cwd_len + exe_len;
    if tail.len() < need {
        return Err(DecodeError::Short {
            what: "exec filename, argv, cwd and executable",
            got: bytes.len(),
            need: ExecRecord::FIXED_LEN + need,
        });
    }
    let (filename, rest) = tail.split_at(filename_len);
    let (blob, rest) = rest.split_at(args_len);
    let (cwd_blob, rest) = rest.split_at(cwd_len);
    let exe_blob = &rest[..exe_len];
    let filename = filename.to_vec();
    let args = split_args(blob);
    let flags = rec.flags;
    let exe_whole = flags & EXEC_EXE_PRESENT != 0 && flags & EXEC_EXE_INCOMPLETE == 0;
    let argc = if flags & EXEC_ARGC_UNKNOWN != 0 {
        args.len() as u32
    } else {
        rec.argc
    };
    Ok(ExecEvent {
        ktime_ns: rec.header.ktime_ns,
        task: rec.task,
        parent: (flags & EXEC_PARENT_UNKNOWN == 0).then_some(rec.parent),
        old_pid: rec.old_pid,
        uid: rec.uid,
        gid: rec.gid,
        euid: rec.euid,
        egid: rec.egid,
        cgroup_id: rec.cgroup_id,
        cgroup_v1_id: rec.cgroup_v1_id,
        pid_ns: rec.pid_ns,
        mnt_ns: rec.mnt_ns,
        filename,
        filename_truncated: flags & EXEC_FILENAME_TRUNCATED != 0,
        args,
        argc,
        args_truncated: flags & (EXEC_ARGS_TRUNCATED | EXEC_ARGS_CHUNK_LOST) != 0,
        args_read_failed: flags & EXEC_ARGS_READ_FAILED != 0,
        cwd: (flags & EXEC_CWD_INCOMPLETE == 0).then(|| cwd_from_components(cwd_blob)),
        exe: exe_whole.then(|| cwd_from_components(exe_blob)),
        exe_leaf: (flags & EXEC_EXE_INCOMPLETE != 0 && flags & EXEC_EXE_LEAF_ONLY != 0)
            .then(|| {
                exe_blob
                    .split(|b| *b == 0)
                    .next()
                    .unwrap_or_default()
                    .to_vec()
            })
            .filter(|leaf| !leaf.is_empty()),
        args_chunks: rec.args_chunks,
        args_raw: if rec.args_chunks > 0 {
            blob.to_vec()
        } else {
            Vec::new()
        },
    })
}

/// Most continuation bytes held while waiting for their exec record: the
/// kernel's bound for one exec, twice (records of two execs may interleave
/// across CPUs).
const PENDING_ARGS_MAX: usize = 2 * ARGS_TOTAL_MAX;

/// Joins argv continuation records ([`ArgsChunkEvent`]) to the exec record
/// that follows them. The kernel sends a process's chunks in order just
/// before its exec record, so they are kept per tgid until it arrives.
/// Chunks whose exec never comes (its record was lost) are dropped when the
/// same process sends new ones or when too many bytes wait, and counted.
#[derive(Debug, Default)]
pub struct ArgsAssembler {
    pending: HashMap<u32, Vec<ArgsChunkEvent>>,
    bytes: usize,
    /// Chunks dropped without their exec.
    pub orphaned: u64,
}

impl ArgsAssembler {
    /// Keeps a chunk until its exec arrives.
    pub fn push(&mut self, chunk: ArgsChunkEvent) {
        if chunk.index == 0 {
            self.drop_pending(chunk.tgid);
        }
        if self.bytes + chunk.data.len() > PENDING_ARGS_MAX {
            let tgids: Vec<u32> = self.pending.keys().copied().collect();
            for tgid in tgids {
                self.drop_pending(tgid);
            }
        }
        self.bytes += chunk.data.len();
        self.pending.entry(chunk.tgid).or_default().push(chunk);
    }

    fn drop_pending(&mut self, tgid: u32) {
        if let Some(old) = self.pending.remove(&tgid) {
            self.bytes -= old.iter().map(|c| c.data.len()).sum::<usize>();
            self.orphaned += old.len() as u64;
        }
    }

    /// Appends the exec's continuation chunks to its argv. Missing or
    /// out-of-order chunks leave what came in order and mark argv cut.
    pub fn complete(&mut self, ev: &mut ExecEvent) {
        // The common case (argv fit in the record, nothing waiting) costs no
        // hash lookup.
        if ev.args_chunks == 0 && self.pending.is_empty() {
            return;
        }
        let chunks = self.pending.remove(&ev.task.tgid).unwrap_or_default();
        self.bytes -= chunks.iter().map(|c| c.data.len()).sum::<usize>();
        if ev.args_chunks == 0 {
            self.orphaned += chunks.len() as u64;
            return;
        }
        let mut blob = std::mem::take(&mut ev.args_raw);
        let mut joined = 0u32;
        for chunk in &chunks {
            if chunk.index != joined {
                break;
            }
            blob.extend_from_slice(&chunk.data);
            joined += 1;
        }
        self.orphaned += (chunks.len() as u64).saturating_sub(u64::from(joined));
        if joined != ev.args_chunks {
            ev.args_truncated = true;
        }
        ev.args = split_args(&blob);
    }
}

/// The kernel sends the cwd's components innermost first, each
/// NUL-terminated (`b\0a\0` for `/a/b`); no components is `/`.
pub fn cwd_from_components(blob: &[u8]) -> Vec<u8> {
    let body = blob.strip_suffix(&[0]).unwrap_or(blob);
    if body.is_empty() {
        return b"/".to_vec();
    }
    let mut path = Vec::with_capacity(blob.len() + 1);
    for component in body.rsplit(|b| *b == 0) {
        path.push(b'/');
        path.extend_from_slice(component);
    }
    path
}

/// Splits the NUL-separated argv blob. Empty arguments are kept (`""` is a
/// real argument); only the terminator of the last one is dropped. A cut
/// last argument (no terminator) is kept as captured.
pub fn split_args(blob: &[u8]) -> Vec<Vec<u8>> {
    if blob.is_empty() {
        return Vec::new();
    }
    let body = blob.strip_suffix(&[0]).unwrap_or(blob);
    body.split(|b| *b == 0).map(<[u8]>::to_vec).collect()
}

/// `comm` bytes up to the first NUL.
pub fn comm_bytes(comm: &[u8]) -> &[u8] {
    let end = memchr::memchr(0, comm).unwrap_or(comm.len());
    &comm[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syscall_names_join_their_directory() {
        let j = |d: Option<&str>, n: &str| {
            join_name(d.map(str::as_bytes), n.as_bytes()).map(|v| String::from_utf8(v).unwrap())
        };
        assert_eq!(
            j(Some("/root"), ".bash_history").as_deref(),
            Some("/root/.bash_history")
        );
        assert_eq!(
            j(None, "/etc//cron.d/./x").as_deref(),
            Some("/etc/cron.d/x")
        );
        assert_eq!(j(Some("/a/b"), "../c").as_deref(), Some("/a/c"));
        assert_eq!(j(None, "rel"), None);
        assert_eq!(j(Some("/"), "x").as_deref(), Some("/x"));
    }

    fn exec_bytes(filename: &[u8], args: &[u8], flags: u32, argc: u32) -> Vec<u8> {
        let mut rec = ExecInfo::default();
        rec.header.kind = record_kind::EXEC;
        rec.header.ktime_ns = 42;
        rec.task.tgid = 100;
        rec.parent.tgid = 1;
        rec.filename_len = filename.len() as u32;
        rec.args_len = args.len() as u32;
        rec.argc = argc;
        rec.flags = flags;
        let mut bytes = vec![0u8; ExecRecord::FIXED_LEN];
        // SAFETY: copying a plain-data record out as bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(
                (&rec as *const ExecInfo).cast::<u8>(),
                bytes.as_mut_ptr(),
                ExecRecord::FIXED_LEN,
            );
        }
        bytes.extend_from_slice(filename);
        bytes.extend_from_slice(args);
        bytes
    }

    #[test]
    fn decodes_exec_with_args_and_empty_elements() {
        let b = exec_bytes(b"/bin/sh", b"sh\0-c\0\0echo hi\0", 0, 4);
        let KernelEvent::Exec(e) = decode(&b).expect("decode") else {
            panic!("not an exec")
        };
        assert_eq!(e.filename, b"/bin/sh");
        assert_eq!(
            e.args,
            vec![b"sh".to_vec(), b"-c".to_vec(), vec![], b"echo hi".to_vec()]
        );
        assert_eq!(e.argc, 4);
        assert_eq!(e.task.tgid, 100);
        assert_eq!(e.parent.map(|p| p.tgid), Some(1));
        assert!(!e.args_truncated);
    }

    #[test]
    fn truncated_argv_keeps_the_cut_element_and_real_argc() {
        let b = exec_bytes(b"/x", b"x\0aaaa\0bb", EXEC_ARGS_TRUNCATED, 5000);
        let KernelEvent::Exec(e) = decode(&b).expect("decode") else {
            panic!("not an exec")
        };
        assert_eq!(e.args.len(), 3);
        assert_eq!(e.args[2], b"bb");
        assert_eq!(e.argc, 5000);
        assert!(e.args_truncated);
    }

    #[test]
    fn unknown_argc_counts_elements_and_unknown_parent_is_none() {
        let b = exec_bytes(b"/x", b"x\0y\0", EXEC_ARGC_UNKNOWN | EXEC_PARENT_UNKNOWN, 0);
        let KernelEvent::Exec(e) = decode(&b).expect("decode") else {
            panic!("not an exec")
        };
        assert_eq!(e.argc, 2);
        assert!(e.parent.is_none());
    }

    #[test]
    fn short_and_unknown_records_are_errors() {
        let b = exec_bytes(b"/bin/sh", b"sh\0", 0, 1);
        assert!(matches!(
            decode(&b[..b.len() - 1]),
            Err(DecodeError::Short { .. })
        ));
        assert!(matches!(decode(&b[..10]), Err(DecodeError::Short { .. })));
        let mut unknown = b.clone();
        unknown[0] = 99;
        assert_eq!(decode(&unknown).err(), Some(DecodeError::UnknownKind(99)));
    }

    #[test]
    fn decodes_cgroup_mkdir() {
        let fixed = CgroupFixed {
            header: RecordHeader {
                kind: record_kind::CGROUP_MKDIR,
                cpu: 0,
                ktime_ns: 1,
            },
            id: 4242,
            root: 0,
            path_len: 9,
        };
        let mut b = vec![0u8; CgroupRecord::FIXED_LEN];
        // SAFETY: copying a plain-data struct out as bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(
                (&fixed as *const CgroupFixed).cast::<u8>(),
                b.as_mut_ptr(),
                CgroupRecord::FIXED_LEN,
            );
        }
        b.extend_from_slice(b"/docker/x");
        let KernelEvent::CgroupMkdir(c) = decode(&b).expect("decode") else {
            panic!("not a cgroup record")
        };
        assert_eq!(
            (c.id, c.root, c.path.as_slice(), c.truncated),
            (4242, 0, &b"/docker/x"[..], false)
        );
        assert!(matches!(
            decode(&b[..b.len() - 1]),
            Err(DecodeError::Short { .. })
        ));
    }

    #[test]
    fn cwd_components_are_reversed_into_a_path() {
        assert_eq!(cwd_from_components(b""), b"/");
        assert_eq!(cwd_from_components(b"tmp\0"), b"/tmp");
        assert_eq!(cwd_from_components(b"c\0b\0a\0"), b"/a/b/c");
        assert_eq!(cwd_from_components(b"d\xff\0x\0"), b"/x/d\xff");
    }

    fn chunk(tgid: u32, index: u32, data: &[u8]) -> ArgsChunkEvent {
        ArgsChunkEvent {
            tgid,
            index,
            data: data.to_vec(),
        }
    }

    fn exec_with_chunks(inline: &[u8], chunks: u32) -> ExecEvent {
        let b = exec_bytes(b"/bin/sh", inline, 0, 3);
        let KernelEvent::Exec(mut e) = decode(&b).expect("decode") else {
            panic!("not an exec")
        };
        e.args_chunks = chunks;
        e.args_raw = inline.to_vec();
        e
    }

    #[test]
    fn continuation_records_complete_argv_across_the_cut() {
        let mut a = ArgsAssembler::default();
        // The inline part ends exactly at an argument boundary; the next
        // argument must not be glued to it.
        a.push(chunk(100, 0, b"padpad"));
        a.push(chunk(100, 1, b"pad; cat /etc/passwd\0"));
        a.push(chunk(200, 0, b"other process"));
        let mut e = exec_with_chunks(b"sh\0-c\0", 2);
        a.complete(&mut e);
        assert_eq!(
            e.args,
            vec![
                b"sh".to_vec(),
                b"-c".to_vec(),
                b"padpadpad; cat /etc/passwd".to_vec()
            ]
        );
        assert!(!e.args_truncated);
        assert_eq!(a.orphaned, 0);
        // A lost chunk: what came in order is kept, argv is marked cut.
        a.push(chunk(100, 0, b"x\0"));
        let mut e = exec_with_chunks(b"sh\0-c\0", 2);
        a.complete(&mut e);
        assert_eq!(e.args.last().map(Vec::as_slice), Some(&b"x"[..]));
        assert!(e.args_truncated);
        // Chunks whose exec never came are dropped and counted when the
        // same process starts over.
        a.push(chunk(300, 0, b"a"));
        a.push(chunk(300, 0, b"b"));
        assert_eq!(a.orphaned, 1);
        let mut e = exec_with_chunks(b"sh\0", 0);
        e.task.tgid = 200;
        a.complete(&mut e);
        assert_eq!(a.orphaned, 2, "chunks for an exec that says it sent none");
    }

    #[test]
    fn executable_path_is_decoded_only_when_whole() {
        let mut b = exec_bytes(b"/dev/fd/3", b"x\0", EXEC_EXE_PRESENT, 1);
        let exe = b"memfd:payload\0";
        // exe_len sits in ExecInfo; patch it and append the blob.
        let off = core::mem::offset_of!(ExecInfo, exe_len);
        b[off..off + 4].copy_from_slice(&(exe.len() as u32).to_ne_bytes());
        b.extend_from_slice(exe);
        let KernelEvent::Exec(e) = decode(&b).expect("decode") else {
            panic!("not an exec")
        };
        assert_eq!(e.exe.as_deref(), Some(&b"/memfd:payload"[..]));
        let flags = core::mem::offset_of!(ExecInfo, flags);
        let incomplete = EXEC_EXE_PRESENT | EXEC_EXE_INCOMPLETE;
        b[flags..flags + 4].copy_from_slice(&incomplete.to_ne_bytes());
        let KernelEvent::Exec(e) = decode(&b).expect("decode") else {
            panic!("not an exec")
        };
        assert_eq!(e.exe, None);
        assert_eq!(e.exe_leaf, None, "a cut walk's bytes are never a name");
        // The kernel read the file's own name when its path was cut.
        let leaf_only = incomplete | EXEC_EXE_LEAF_ONLY;
        b[flags..flags + 4].copy_from_slice(&leaf_only.to_ne_bytes());
        let KernelEvent::Exec(e) = decode(&b).expect("decode") else {
            panic!("not an exec")
        };
        assert_eq!(e.exe, None);
        assert_eq!(e.exe_leaf.as_deref(), Some(&b"memfd:payload"[..]));
    }

    #[test]
    fn split_args_edges() {
        assert!(split_args(b"").is_empty());
        assert_eq!(split_args(b"\0"), vec![Vec::<u8>::new()]);
        assert_eq!(split_args(b"a\0\0"), vec![b"a".to_vec(), vec![]]);
    }
}
