//! What an exec ran: its executable and name from the execve filename, the
//! kernel's walk of `mm->exe_file`, the cwd, and `/proc` only as a checked
//! fallback.

use std::sync::Arc;

use crate::context::procfs::{start_ticks, ProcStart};
use crate::ecs::byte_text::EscapedFields;
use crate::kernel::decode::ExecEvent;

use super::ProcessTable;

/// What the kernel appends to `/proc/<pid>/exe` when the file was unlinked.
const DELETED_SUFFIX: &str = " (deleted)";

impl ProcessTable {
    /// The target of `/proc/<pid>/<link>` if `pid` is still the instance
    /// that started at `ticks` (checked after reading, so a pid reused
    /// mid-read is not mistaken for ours).
    /// Returns the text and whether it had to be escaped.
    pub(super) fn read_link_of_instance(
        &self,
        pid: u32,
        ticks: u64,
        link: &str,
    ) -> Option<(String, bool)> {
        let target = std::fs::read_link(self.proc_root.join(pid.to_string()).join(link)).ok()?;
        if start_ticks(&self.proc_root, pid) != ProcStart::Ticks(ticks) {
            return None;
        }
        let bytes = target.into_os_string().into_encoded_bytes();
        let mut esc = EscapedFields::default();
        let text = esc.text(EscapedFields::EXECUTABLE, &bytes).into_owned();
        Some((text, !esc.is_empty()))
    }

    pub(super) fn resolve_executable(
        &self,
        ev: &ExecEvent,
        pid: u32,
        ticks: u64,
        cwd: Option<&str>,
        esc: &mut EscapedFields,
    ) -> Option<Arc<str>> {
        const EXE: EscapedFields = EscapedFields::EXECUTABLE;
        let filename = ev.filename.as_slice();
        let usable = !filename.is_empty() && !ev.filename_truncated;
        if usable && filename.starts_with(b"/") && !is_fd_path(filename) {
            return Some(esc.text(EXE, filename).into());
        }
        if usable && !filename.starts_with(b"/") {
            if let Some(cwd) = cwd.filter(|c| c.starts_with('/')) {
                // Escaped when either part was.
                let joined = join_relative(cwd, &esc.text(EXE, filename));
                esc.mark(EXE, esc.contains(EscapedFields::WORKING_DIRECTORY));
                return Some(joined.into());
            }
        }
        if let Some(exe) = &ev.exe {
            return Some(esc.text(EXE, exe).into());
        }
        let (exe, escaped) = self.read_link_of_instance(pid, ticks, "exe")?;
        esc.mark(EXE, escaped);
        let exe = exe.strip_suffix(DELETED_SUFFIX).unwrap_or(&exe);
        Some(exe.into())
    }
}

pub(super) fn basename(path: &[u8]) -> &[u8] {
    match memchr::memrchr(b'/', path) {
        Some(slash) => path.get(slash + 1..).unwrap_or_default(),
        None => path,
    }
}

/// `/dev/fd/N` (what `fexecve`/`execveat(AT_EMPTY_PATH)` report as
/// filename) or anything under `/proc` (`/proc/self/exe` re-execs,
/// `/proc/self/fd/N`): the name says nothing about the file; only the
/// kernel's `mm->exe_file` does. The kernel side uses the same test to
/// decide when to walk that path.
pub(super) fn is_fd_path(filename: &[u8]) -> bool {
    filename.starts_with(b"/dev/fd/") || filename.starts_with(b"/proc/")
}

/// `cwd` + relative `path`, dropping `.` components. `..` is kept: the
/// kernel resolves it through symlinks, which a lexical clean would get
/// wrong.
fn join_relative(cwd: &str, path: &str) -> String {
    let mut out = cwd.trim_end_matches('/').to_owned();
    for part in path.split('/') {
        if part.is_empty() || part == "." {
            continue;
        }
        out.push('/');
        out.push_str(part);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}
