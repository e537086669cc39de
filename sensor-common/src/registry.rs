//! The one list of record kinds and kernel programs. Everything that
//! enumerates them is generated from [`registry!`]'s declaration at the
//! bottom of this file: the [`record_kind`] tags, the [`lost_index`]
//! positions of the per-kind `LOST` counters and [`KINDS`] (the names the
//! agent's metrics, summary and warnings use), the [`program_index`]
//! positions of the per-program `DROPS` counters and their names, and the
//! kinds' part of [`crate::LAYOUT_HASH`] (each kind's tag and the layout of
//! every record it is sent as).
//!
//! Adding a kind is one line here plus its record struct (declared with
//! `record!`); adding a kernel program is one line here. See
//! docs/architecture.md, "Adding an event family".

use crate::layout::{of_fields, Layout};
use crate::net::NetRecord;
use crate::{
    ArgsChunkRecord, CgroupRecord, ExecRecord, ExitRecord, FileRecord, FileWire, ForkRecord,
};

/// One record kind, as the agent names and counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KindInfo {
    /// Its tag ([`record_kind`]): `RecordHeader::kind`.
    pub kind: u32,
    /// Its position in `LOST` ([`lost_index`]).
    pub lost_index: u32,
    /// Its name: the `kind` label of `sensor_events_lost_total`.
    pub name: &'static str,
    /// Its key for lost records in the shutdown summary.
    pub summary_key: &'static str,
    /// What the ring-buffer-full warning calls it.
    pub warning: &'static str,
    /// Counted as handled under its name (`sensor_events_total` and the
    /// summary): the kinds that are events of their own, not parts of
    /// another (argv continuations) or context (cgroup creations).
    pub handled: bool,
}

macro_rules! registry {
    (
        kinds {
            $(
                $(#[$kdoc:meta])*
                $kind:ident = $tag:literal: $name:literal, $summary:literal, $warning:literal,
                    $handled:literal, [$($rec:ty),+ $(,)?];
            )+
        }
        programs {
            $(
                $(#[$pdoc:meta])*
                $prog:ident: $pname:literal;
            )+
        }
    ) => {
        /// Kind tag of every record on the ring buffer (first field of
        /// [`crate::RecordHeader`]).
        pub mod record_kind {
            $(
                $(#[$kdoc])*
                pub const $kind: u32 = $tag;
            )+
        }

        /// Indexes of the per-CPU lost-record counters (`LOST` map): a
        /// record the ring buffer had no room for is counted here, never
        /// dropped silently. In declaration order.
        pub mod lost_index {
            #[allow(non_camel_case_types, clippy::upper_case_acronyms, dead_code)]
            #[repr(u32)]
            enum Position {
                $($kind,)+
                COUNT,
            }
            $(pub const $kind: u32 = Position::$kind as u32;)+
            pub const COUNT: u32 = Position::COUNT as u32;
        }

        /// Every record kind, in [`lost_index`] order.
        pub const KINDS: [KindInfo; lost_index::COUNT as usize] = [
            $(KindInfo {
                kind: record_kind::$kind,
                lost_index: lost_index::$kind,
                name: $name,
                summary_key: $summary,
                warning: $warning,
                handled: $handled,
            },)+
        ];

        /// The kernel programs, as indexes of the `DROPS` counters.
        pub mod program_index {
            #[allow(non_camel_case_types, clippy::upper_case_acronyms, dead_code)]
            #[repr(u32)]
            enum Position {
                $($prog,)+
                COUNT,
            }
            $(
                $(#[$pdoc])*
                pub const $prog: u32 = Position::$prog as u32;
            )+
            pub const COUNT: u32 = Position::COUNT as u32;
            /// Names for metrics and the summary, by index.
            pub const NAMES: [&str; COUNT as usize] = [$($pname),+];
        }

        /// The kinds' part of the layout hash: each kind's tag and
        /// position, and the layout of every record it is sent as.
        pub const KINDS_LAYOUT: u64 = of_fields(&[
            $(
                record_kind::$kind as u64,
                lost_index::$kind as u64,
                $(<$rec as Layout>::HASH,)+
            )+
            program_index::COUNT as u64,
        ]);
    };
}

registry! {
    kinds {
        // NAME = tag: name (metric label), summary key of its losses,
        //   warning text, handled (counted under its name), [records sent].
        EXEC = 1: "exec", "lost_exec", "exec", true, [ExecRecord];
        FORK = 2: "fork", "lost_fork", "fork", true, [ForkRecord];
        EXIT = 3: "exit", "lost_exit", "exit", true, [ExitRecord];
        CGROUP_MKDIR = 4: "cgroup_mkdir", "lost_cgroup_mkdir", "cgroup", false, [CgroupRecord];
        /// Argv beyond the exec record's inline part (each lost one also
        /// flags its exec's argv as incomplete).
        ARGS_CHUNK = 5: "args_chunk", "lost_args_chunks", "argv continuation", false,
            [ArgsChunkRecord];
        FILE = 6: "file", "lost_file", "file", true, [FileRecord, FileWire];
        /// TCP connections attempted, accepted and closed.
        NET = 7: "net", "lost_net", "network", true, [NetRecord];
    }
    programs {
        EXEC: "exec";
        EXEC_ARGS: "exec_args";
        FORK: "fork";
        EXIT: "exit";
        CGROUP_MKDIR: "cgroup_mkdir";
        EXEC_EXE: "exec_exe";
        FILE_OPEN: "file_open";
        FILE_UNLINK: "file_unlink";
        FILE_RENAME: "file_rename";
        FILE_RENAME_OLD: "file_rename_old";
        FILE_SYS_ENTER: "file_sys_enter";
        FILE_SYS_EXIT: "file_sys_exit";
        NET_STATE: "net_state";
        NET_ACCEPT: "net_accept";
    }
}

// Tags are distinct and non-zero (a zeroed record is no kind).
const _: () = {
    let mut i = 0;
    while i < KINDS.len() {
        assert!(KINDS[i].kind != 0);
        let mut j = i + 1;
        while j < KINDS.len() {
            assert!(KINDS[i].kind != KINDS[j].kind);
            j += 1;
        }
        i += 1;
    }
};

/// The kind a tag names, if any.
pub fn kind_of(tag: u32) -> Option<&'static KindInfo> {
    KINDS.iter().find(|k| k.kind == tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_follow_the_declaration() {
        for (i, k) in KINDS.iter().enumerate() {
            assert_eq!(k.lost_index as usize, i);
            assert_eq!(kind_of(k.kind), Some(k));
        }
        assert_eq!(lost_index::FILE, 5);
        assert_eq!(program_index::FILE_SYS_EXIT, 11);
        assert_eq!(
            program_index::NAMES[program_index::EXEC_EXE as usize],
            "exec_exe"
        );
        assert_eq!(kind_of(0), None);
    }
}
