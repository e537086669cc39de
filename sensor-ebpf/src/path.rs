//! The path walker: a (`vfsmount`, `dentry`) pair to the path the task
//! sees, like the kernel's `d_path` (up to the task's root, across mounts),
//! innermost component first; and the first component of a path, for the
//! file prefilter's gate.

use crate::kernel_read::{offset, read_ptr, ReadError};
use crate::task::Task;
use aya_ebpf::helpers::generated::bpf_probe_read_kernel_str;
use sensor_common::{CWD_MAX, CWD_NAME_MAX};

/// Most path components (and mount crossings) walked for the cwd.
pub(crate) const CWD_DEPTH: usize = 48;

/// A record a path walk writes into: `path_data()` points at a buffer of
/// at least `MAX_AT + CWD_MAX + CWD_NAME_MAX` bytes for every `MAX_AT` the
/// record's walks use.
pub(crate) trait PathDest {
    fn path_data(&mut self) -> *mut u8;
}

/// Writes the path of (`vfsmnt`, `dentry`) at `at` in `rec.data`, as the
/// task sees it (up to its root), innermost component first; returns the
/// bytes written. `MAX_AT` bounds `at` for the verifier; `PSEUDO` names a
/// file with no place in any tree by its own name (only the executable
/// walk needs it, and the cwd walk stays as small as it was). An error means the
/// path is not whole (unreadable, deeper than [`CWD_DEPTH`] or longer than
/// [`CWD_MAX`]); the bytes written so far are then not to be used.
pub(crate) fn walk_path<const MAX_AT: usize, const PSEUDO: bool, R: PathDest>(
    task: *const u8,
    vfsmnt: *const u8,
    dentry: *const u8,
    rec: &mut R,
    at: usize,
) -> Result<usize, ReadError> {
    let fs = Task(task).fs()?;
    if fs.is_null() {
        return Err(ReadError);
    }
    let root_mnt = read_ptr(fs, offset(|o| &o.fs_root_mnt))?;
    let root_dentry = read_ptr(fs, offset(|o| &o.fs_root_dentry))?;
    let mut vfsmnt = vfsmnt;
    let mut dentry = dentry;
    let mount_mnt = offset(|o| &o.mount_mnt);
    let mut mnt = vfsmnt.wrapping_sub(mount_mnt);
    // A bound the verifier can see (the caller already clamps `at`).
    let at = if at > MAX_AT { MAX_AT } else { at };
    // `pos` is kept masked and overflow is accumulated without a branch:
    // the verifier then sees the same state at every turn of the loop and
    // can prune, instead of walking every possible length.
    let mut pos: usize = 0;
    let mut overflow: usize = 0;
    for _ in 0..CWD_DEPTH {
        if dentry == root_dentry && vfsmnt == root_mnt {
            return if overflow == 0 {
                Ok(pos)
            } else {
                Err(ReadError)
            };
        }
        let mnt_root = read_ptr(vfsmnt, offset(|o| &o.vfsmount_root))?;
        if dentry == mnt_root {
            let parent = read_ptr(mnt, offset(|o| &o.mount_parent))?;
            if parent == mnt {
                // The namespace's root mount.
                return if overflow == 0 {
                    Ok(pos)
                } else {
                    Err(ReadError)
                };
            }
            dentry = read_ptr(mnt, offset(|o| &o.mount_mountpoint))?;
            mnt = parent;
            vfsmnt = mnt.wrapping_add(mount_mnt);
            continue;
        }
        let parent = read_ptr(dentry, offset(|o| &o.dentry_parent))?;
        // A dentry that is its own parent without being the mount's root:
        // the walk is done, except for a file with no place in any tree (a
        // memfd, `alloc_file_pseudo`), whose own name is its whole path, as
        // `d_path` shows it (`/memfd:name`).
        let pseudo = PSEUDO && parent == dentry && pos == 0;
        if parent == dentry && !pseudo {
            return if overflow == 0 {
                Ok(pos)
            } else {
                Err(ReadError)
            };
        }
        let name = read_ptr(dentry, offset(|o| &o.dentry_name))?;
        let dst_off = at + (pos & (CWD_MAX - 1));
        // SAFETY: dst_off < MAX_AT + CWD_MAX and the read is at most
        // CWD_NAME_MAX bytes: inside the destination (`PathDest`'s bound).
        let n = unsafe {
            bpf_probe_read_kernel_str(
                rec.path_data().add(dst_off).cast(),
                CWD_NAME_MAX as u32,
                name.cast(),
            )
        };
        if n <= 0 {
            return Err(ReadError);
        }
        let next = pos + (n as usize & (CWD_NAME_MAX - 1 + CWD_NAME_MAX));
        overflow |= next >> 12; // CWD_MAX = 4096
        pos = next & (CWD_MAX - 1);
        if pseudo {
            return if overflow == 0 {
                Ok(pos)
            } else {
                Err(ReadError)
            };
        }
        dentry = parent;
    }
    Err(ReadError) // deeper than CWD_DEPTH
}

/// The dentry of the first (outermost) component of the path of
/// (`vfsmnt`, `dentry`) as `task` sees it: the component [`walk_path`]
/// would write last, found by the same steps without reading any name
/// (the file prefilter's gate, `file::filter::gate_drops_walk`). Null when
/// the path is the root itself. An error wherever `walk_path` could not
/// finish the same steps (unreadable, deeper than [`CWD_DEPTH`]).
/// `LEAF`: the start is a file whose own name the caller reads; a file
/// that is a mount's root (a bind-mounted file: `/etc/hosts` in a
/// container) is named by its mount point instead, so that start is an
/// error.
#[inline(never)]
pub(crate) fn first_component<const LEAF: bool>(
    task: *const u8,
    vfsmnt: *const u8,
    dentry: *const u8,
) -> Result<*const u8, ReadError> {
    let fs = Task(task).fs()?;
    if fs.is_null() {
        return Err(ReadError);
    }
    let root_mnt = read_ptr(fs, offset(|o| &o.fs_root_mnt))?;
    let root_dentry = read_ptr(fs, offset(|o| &o.fs_root_dentry))?;
    let mount_mnt = offset(|o| &o.mount_mnt);
    let mut vfsmnt = vfsmnt;
    let mut dentry = dentry;
    let mut mnt = vfsmnt.wrapping_sub(mount_mnt);
    let mut mnt_root = read_ptr(vfsmnt, offset(|o| &o.vfsmount_root))?;
    let mut last: *const u8 = core::ptr::null();
    if LEAF && dentry == mnt_root {
        return Err(ReadError);
    }
    for _ in 0..CWD_DEPTH {
        if dentry == root_dentry && vfsmnt == root_mnt {
            return Ok(last);
        }
        if dentry == mnt_root {
            let parent = read_ptr(mnt, offset(|o| &o.mount_parent))?;
            if parent == mnt {
                return Ok(last);
            }
            dentry = read_ptr(mnt, offset(|o| &o.mount_mountpoint))?;
            mnt = parent;
            vfsmnt = mnt.wrapping_add(mount_mnt);
            mnt_root = read_ptr(vfsmnt, offset(|o| &o.vfsmount_root))?;
            continue;
        }
        let parent = read_ptr(dentry, offset(|o| &o.dentry_parent))?;
        if parent == dentry {
            return Ok(last);
        }
        last = dentry;
        dentry = parent;
    }
    Err(ReadError) // deeper than CWD_DEPTH
}
