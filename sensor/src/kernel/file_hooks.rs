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
    programs::{FEntry, Lsm, ProgramError, TracePoint},
    Btf, Ebpf,
};

use crate::kernel::host::{self, HostError, HostFeatures};

/// Why one way of attaching the file programs failed.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("kernel BTF: {0}")]
    Btf(#[source] aya::BtfError),
    #[error("{0} missing from the object")]
    Missing(String),
    #[error("{program}: {source}")]
    Program {
        program: String,
        #[source]
        source: ProgramError,
    },
    /// Loading failed; `detail` ends with the verifier log's last lines.
    #[error("{program}: {detail}")]
    Load { program: String, detail: String },
    #[error("no tracepoint syscalls/{0}")]
    NoTracepoint(&'static str),
    #[error("{program} on syscalls/{tracepoint}: {source}")]
    Tracepoint {
        program: &'static str,
        tracepoint: &'static str,
        #[source]
        source: ProgramError,
    },
    #[error(transparent)]
    Host(#[from] HostError),
    /// Neither hook mechanism: why not BPF LSM, and fentry's error.
    #[error("{why_not_lsm}; fentry failed too: {fentry}")]
    NoHooks {
        why_not_lsm: String,
        fentry: Box<AttachError>,
    },
}

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

fn kernel_btf(btf_path: Option<&Path>) -> Result<Btf, AttachError> {
    match btf_path {
        Some(p) => Btf::parse_file(p, aya::Endianness::default()),
        None => Btf::from_sys_fs(),
    }
    .map_err(AttachError::Btf)
}

/// Attaches the file programs with the best mechanism this kernel has.
/// Never fails: what could not be attached is the returned reason.
pub fn attach(
    ebpf: &mut Ebpf,
    btf_path: Option<&Path>,
    tracefs: &Path,
    host: &HostFeatures,
) -> FileMechanism {
    let hooks = attach_hooks(ebpf, btf_path, host);
    let why_not_hooks = match hooks {
        Ok(m) => return m,
        Err(e) => e.to_string(),
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

fn attach_syscalls(ebpf: &mut Ebpf, tracefs: &Path) -> Result<(), AttachError> {
    let events = tracefs.join("events/syscalls");
    let mut done: Vec<&str> = Vec::new();
    for (program, optional, required) in SYSCALLS {
        let result = (|| -> Result<(), AttachError> {
            let prog: &mut TracePoint = typed(ebpf, program)?;
            prog.load().map_err(|e| load_error(program, &e))?;
            let mut attached = 0;
            for tp in optional.iter().chain(std::iter::once(&required)) {
                if tp.is_empty() {
                    continue;
                }
                if !events.join(tp).exists() {
                    if *tp == required {
                        return Err(AttachError::NoTracepoint(tp));
                    }
                    continue;
                }
                prog.attach("syscalls", tp)
                    .map_err(|source| AttachError::Tracepoint {
                        program,
                        tracepoint: tp,
                        source,
                    })?;
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

fn attach_hooks(
    ebpf: &mut Ebpf,
    btf_path: Option<&Path>,
    host: &HostFeatures,
) -> Result<FileMechanism, AttachError> {
    let btf = kernel_btf(btf_path)?;
    // The probe read the list without mounting anything; securityfs is
    // mounted here when it was not (BPF LSM programs need it).
    let lsms = match &host.lsms {
        Ok(lsms) => Ok(lsms.clone()),
        Err(_) => host::mount_and_read_lsms(),
    };
    let why_not_lsm = match lsms {
        Ok(lsms) if host::is_bpf_lsm_active(&lsms) => match attach_lsm(ebpf, &btf) {
            Ok(()) => return Ok(FileMechanism::Lsm),
            Err(e) => format!("attaching the LSM programs failed: {e}"),
        },
        Ok(lsms) => format!("`bpf` is not in the active LSM list ({})", lsms.join(",")),
        Err(e) => e.to_string(),
    };
    match attach_fentry(ebpf, &btf) {
        Ok(()) => Ok(FileMechanism::Fentry { why_not_lsm }),
        Err(e) => Err(AttachError::NoHooks {
            why_not_lsm,
            fentry: Box::new(e),
        }),
    }
}

fn attach_lsm(ebpf: &mut Ebpf, btf: &Btf) -> Result<(), AttachError> {
    attach_set(ebpf, "lsm", |ebpf, program, hook, _| {
        let prog: &mut Lsm = typed(ebpf, program)?;
        prog.load(hook, btf).map_err(|e| load_error(program, &e))?;
        prog.attach()
            .map_err(|source| program_error(program, source))?;
        Ok(())
    })
}

fn attach_fentry(ebpf: &mut Ebpf, btf: &Btf) -> Result<(), AttachError> {
    attach_set(ebpf, "fentry", |ebpf, program, _, function| {
        let prog: &mut FEntry = typed(ebpf, program)?;
        prog.load(function, btf)
            .map_err(|e| load_error(program, &e))?;
        prog.attach()
            .map_err(|source| program_error(program, source))?;
        Ok(())
    })
}

fn program_error(program: &str, source: ProgramError) -> AttachError {
    AttachError::Program {
        program: program.to_owned(),
        source,
    }
}

/// The program `name` as its type.
fn typed<'a, P>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut P, AttachError>
where
    &'a mut P: TryFrom<&'a mut aya::programs::Program, Error = ProgramError>,
{
    ebpf.program_mut(name)
        .ok_or_else(|| AttachError::Missing(name.to_owned()))?
        .try_into()
        .map_err(|source| program_error(name, source))
}

/// Loads and attaches `sensor_<kind>_<name>` for every hook with `one`
/// (program, LSM hook, security function); all or nothing.
fn attach_set(
    ebpf: &mut Ebpf,
    kind: &str,
    one: impl Fn(&mut Ebpf, &str, &str, &str) -> Result<(), AttachError>,
) -> Result<(), AttachError> {
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
pub(crate) fn load_error(program: &str, e: &ProgramError) -> AttachError {
    let detail = match e {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => {
            let log = verifier_log.to_string();
            let tail: Vec<&str> = log.lines().rev().take(8).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            format!("{io_error}: {}", tail.join(" | "))
        }
        other => other.to_string(),
    };
    AttachError::Load {
        program: program.to_owned(),
        detail,
    }
}
