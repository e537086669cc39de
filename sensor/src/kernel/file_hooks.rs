//! Which mechanism gives this kernel's file events, and attaching it.
//!
//! 1. BPF LSM hooks (`file_open`, `path_unlink`, `path_rename`) when `bpf`
//!    is in the active LSM list (`/sys/kernel/security/lsm`; securityfs is
//!    mounted if it is not);
//! 2. else fentry on the same `security_*` functions;
//! 3. else the syscall tracepoints (`syscalls/sys_exit_openat` and
//!    friends: opens exactly as the hooks see them, unlink and rename from
//!    the names the process passed, joined to the walked directory);
//! 4. else no file events, said plainly at start-up with the reason.
//!
//! Either set is all or nothing: a set that attaches only in part is
//! detached again, so a rule never sees opens without deletions.

use std::path::Path;

use aya::{
    programs::{FEntry, Lsm, TracePoint},
    Btf, Ebpf,
};

/// How file events reach the sensor on this kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileMechanism {
    /// BPF LSM programs on the `file_open`, `path_unlink` and
    /// `path_rename` hooks.
    Lsm,
    /// fentry programs on `security_file_open`, `security_path_unlink` and
    /// `security_path_rename`.
    Fentry { why_not_lsm: String },
    /// Syscall tracepoints (neither BPF LSM nor fentry programs load).
    Tracepoints { why_not_hooks: String },
    /// No file events; the reason for each mechanism.
    Unavailable { reason: String },
}

impl FileMechanism {
    pub fn available(&self) -> bool {
        !matches!(self, FileMechanism::Unavailable { .. })
    }

    /// One line for the start-up summary.
    pub fn describe(&self) -> String {
        match self {
            FileMechanism::Lsm => {
                "file events via BPF LSM (file_open, path_unlink, path_rename)".to_owned()
            }
            FileMechanism::Fentry { why_not_lsm } => format!(
                "file events via fentry on security_file_open, security_path_unlink, \
                 security_path_rename (no BPF LSM: {why_not_lsm})"
            ),
            FileMechanism::Tracepoints { why_not_hooks } => format!(
                "file events via syscall tracepoints (open/openat/openat2/creat exits, \
                 unlink/unlinkat, rename/renameat/renameat2) ({why_not_hooks})"
            ),
            FileMechanism::Unavailable { reason } => {
                format!("file events unavailable: {reason}")
            }
        }
    }
}

/// (program, LSM hook, security function), in attach order: the rename
/// halves meet in a scratch slot, in either order.
const HOOKS: [(&str, &str, &str); 4] = [
    ("file_open", "file_open", "security_file_open"),
    ("path_unlink", "path_unlink", "security_path_unlink"),
    ("path_rename_old", "path_rename", "security_path_rename"),
    ("path_rename", "path_rename", "security_path_rename"),
];

const SECURITYFS: &str = "/sys/kernel/security";

/// The active LSMs, mounting securityfs when it is not.
pub fn active_lsms() -> Result<Vec<String>, String> {
    let list = Path::new(SECURITYFS).join("lsm");
    if !list.exists() {
        rustix::mount::mount(
            "none",
            SECURITYFS,
            "securityfs",
            rustix::mount::MountFlags::empty(),
            None,
        )
        .map_err(|e| format!("securityfs is not mounted and mounting it failed: {e}"))?;
    }
    let text =
        std::fs::read_to_string(&list).map_err(|e| format!("reading {}: {e}", list.display()))?;
    Ok(text
        .trim()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect())
}

fn kernel_btf(btf_path: Option<&Path>) -> Result<Btf, String> {
    match btf_path {
        Some(p) => Btf::parse_file(p, aya::Endianness::default()),
        None => Btf::from_sys_fs(),
    }
    .map_err(|e| format!("kernel BTF: {e}"))
}

/// Attaches the file programs with the best mechanism this kernel has.
/// Never fails: what could not be attached is the returned reason.
pub fn attach(ebpf: &mut Ebpf, btf_path: Option<&Path>, tracefs: &Path) -> FileMechanism {
    let hooks = attach_hooks(ebpf, btf_path);
    let why_not_hooks = match hooks {
        Ok(m) => return m,
        Err(e) => e,
    };
    match attach_syscalls(ebpf, tracefs) {
        Ok(()) => FileMechanism::Tracepoints { why_not_hooks },
        Err(e) => FileMechanism::Unavailable {
            reason: format!("{why_not_hooks}; syscall tracepoints failed too: {e}"),
        },
    }
}

/// (program, syscall tracepoints it attaches to); a tracepoint this
/// kernel lacks (`open`, `creat`, `rename`, `unlink` on newer
/// architectures) is skipped, the `*at` ones are required.
const SYSCALLS: [(&str, &[&str], &str); 6] = [
    (
        "sensor_sys_exit_open",
        &["sys_exit_open", "sys_exit_creat", "sys_exit_openat2"],
        "sys_exit_openat",
    ),
    ("sensor_sys_enter_unlink", &["sys_enter_unlink"], ""),
    ("sensor_sys_enter_unlinkat", &[], "sys_enter_unlinkat"),
    ("sensor_sys_enter_rename", &["sys_enter_rename"], ""),
    (
        "sensor_sys_enter_renameat",
        &["sys_enter_renameat2"],
        "sys_enter_renameat",
    ),
    (
        "sensor_sys_exit_names",
        &[
            "sys_exit_unlink",
            "sys_exit_rename",
            "sys_exit_renameat2",
            "sys_exit_renameat",
        ],
        "sys_exit_unlinkat",
    ),
];

fn attach_syscalls(ebpf: &mut Ebpf, tracefs: &Path) -> Result<(), String> {
    let events = tracefs.join("events/syscalls");
    let mut done: Vec<&str> = Vec::new();
    for (program, optional, required) in SYSCALLS {
        let result = (|| -> Result<(), String> {
            let prog: &mut TracePoint = ebpf
                .program_mut(program)
                .ok_or_else(|| format!("{program} missing from the object"))?
                .try_into()
                .map_err(|e| format!("{program}: {e}"))?;
            prog.load()
                .map_err(|e| format!("{program}: {}", load_error(&e)))?;
            let mut attached = 0;
            for tp in optional.iter().chain(std::iter::once(&required)) {
                if tp.is_empty() {
                    continue;
                }
                if !events.join(tp).exists() {
                    if *tp == required {
                        return Err(format!("no tracepoint syscalls/{tp}"));
                    }
                    continue;
                }
                prog.attach("syscalls", tp)
                    .map_err(|e| format!("{program} on syscalls/{tp}: {e}"))?;
                attached += 1;
            }
            if attached == 0 {
                // e.g. `unlink` on an architecture with only `unlinkat`
                let _ = prog.unload();
            }
            Ok(())
        })();
        if let Err(e) = result {
            for name in &done {
                if let Some(Ok(p)) = ebpf.program_mut(name).map(<&mut TracePoint>::try_from) {
                    let _ = p.unload();
                }
            }
            return Err(e);
        }
        done.push(program);
    }
    Ok(())
}

fn attach_hooks(ebpf: &mut Ebpf, btf_path: Option<&Path>) -> Result<FileMechanism, String> {
    let btf = kernel_btf(btf_path)?;
    let why_not_lsm = match active_lsms() {
        Ok(lsms) if lsms.iter().any(|l| l == "bpf") => match attach_lsm(ebpf, &btf) {
            Ok(()) => return Ok(FileMechanism::Lsm),
            Err(e) => format!("attaching the LSM programs failed: {e}"),
        },
        Ok(lsms) => format!("`bpf` is not in the active LSM list ({})", lsms.join(",")),
        Err(e) => e,
    };
    match attach_fentry(ebpf, &btf) {
        Ok(()) => Ok(FileMechanism::Fentry { why_not_lsm }),
        Err(e) => Err(format!("{why_not_lsm}; fentry failed too: {e}")),
    }
}

fn attach_lsm(ebpf: &mut Ebpf, btf: &Btf) -> Result<(), String> {
    attach_set(ebpf, "lsm", |ebpf, program, hook, _| {
        let prog: &mut Lsm = typed(ebpf, program)?;
        prog.load(hook, btf)
            .map_err(|e| format!("{program}: {}", load_error(&e)))?;
        prog.attach().map_err(|e| format!("{program}: {e}"))?;
        Ok(())
    })
}

fn attach_fentry(ebpf: &mut Ebpf, btf: &Btf) -> Result<(), String> {
    attach_set(ebpf, "fentry", |ebpf, program, _, function| {
        let prog: &mut FEntry = typed(ebpf, program)?;
        prog.load(function, btf)
            .map_err(|e| format!("{program}: {}", load_error(&e)))?;
        prog.attach().map_err(|e| format!("{program}: {e}"))?;
        Ok(())
    })
}

/// The program `name` as its type.
fn typed<'a, P>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut P, String>
where
    &'a mut P: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    ebpf.program_mut(name)
        .ok_or_else(|| format!("{name} missing from the object"))?
        .try_into()
        .map_err(|e| format!("{name}: {e}"))
}

/// Loads and attaches `sensor_<kind>_<name>` for every hook with `one`
/// (program, LSM hook, security function); all or nothing.
fn attach_set(
    ebpf: &mut Ebpf,
    kind: &str,
    one: impl Fn(&mut Ebpf, &str, &str, &str) -> Result<(), String>,
) -> Result<(), String> {
    let mut done = Vec::new();
    for (name, hook, function) in HOOKS {
        let program = format!("sensor_{kind}_{name}");
        if let Err(e) = one(ebpf, &program, hook, function) {
            detach(ebpf, &done);
            return Err(e);
        }
        done.push(program);
    }
    Ok(())
}

/// Unloads (and so detaches) programs of a set that could not be attached
/// whole.
fn detach(ebpf: &mut Ebpf, programs: &[String]) {
    for name in programs {
        let Some(p) = ebpf.program_mut(name) else {
            continue;
        };
        if let Ok(lsm) = <&mut Lsm>::try_from(&mut *p) {
            let _ = lsm.unload();
        } else if let Ok(fentry) = <&mut FEntry>::try_from(p) {
            let _ = fentry.unload();
        }
    }
}

/// A load error with the verifier log's last lines.
pub(crate) fn load_error(e: &aya::programs::ProgramError) -> String {
    match e {
        aya::programs::ProgramError::LoadError {
            io_error,
            verifier_log,
        } => {
            let log = verifier_log.to_string();
            let tail: Vec<&str> = log.lines().rev().take(8).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            format!("{io_error}: {}", tail.join(" | "))
        }
        other => other.to_string(),
    }
}
