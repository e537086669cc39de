//! What an exec ran: its executable and name from the kernel's walk of the
//! file it executed (`binprm->file`), and `/proc/<pid>/exe` only as a
//! checked fallback.

use std::sync::Arc;

use crate::byte_text::EscapedFields;
use crate::context::procfs::{start_ticks, ProcStart};
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

    /// The executable and name of an exec: the kernel's walk of the file
    /// it executed, else `/proc/<pid>/exe` of this very instance (the same
    /// file), else no executable and the name the kernel read from the
    /// file's own dentry when its path was cut (an empty name is left out).
    pub(super) fn resolve_executable(
        &self,
        ev: &ExecEvent,
        pid: u32,
        ticks: u64,
        esc: &mut EscapedFields,
    ) -> (Option<Arc<str>>, Arc<str>) {
        if let Some(exe) = &ev.exe {
            let name = esc.text(EscapedFields::NAME, basename(exe)).into();
            return (Some(esc.text(EscapedFields::EXECUTABLE, exe).into()), name);
        }
        let Some((exe, escaped)) = self.read_link_of_instance(pid, ticks, "exe") else {
            // Gone already: the file's own name, when the kernel read it.
            let name = ev.exe_leaf.as_deref().map_or_else(
                || "".into(),
                |leaf| esc.text(EscapedFields::NAME, leaf).into(),
            );
            return (None, name);
        };
        // Already text: the name is escaped exactly when the executable was.
        esc.mark(EscapedFields::EXECUTABLE, escaped);
        esc.mark(EscapedFields::NAME, escaped);
        let exe = exe.strip_suffix(DELETED_SUFFIX).unwrap_or(&exe);
        let name = exe.rsplit('/').next().unwrap_or_default().into();
        (Some(exe.into()), name)
    }
}

fn basename(path: &[u8]) -> &[u8] {
    match memchr::memrchr(b'/', path) {
        Some(slash) => path.get(slash + 1..).unwrap_or_default(),
        None => path,
    }
}
