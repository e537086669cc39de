//! Loading and attaching the kernel programs, with a clear, one-line reason
//! for each way it can fail on a real host: not enough privilege, no BTF,
//! no ring buffer support, tracefs missing, or the verifier saying no.

use aya::{
    maps::{MapData, MapError, PerCpuArray, ProgramArray, RingBuf},
    programs::{ProgramError, RawTracePoint, TracePoint},
    Ebpf, EbpfError, EbpfLoader,
};
use sensor_common::{drop_reason, program_index, KernelOffsets, KINDS, LAYOUT_HASH};

use crate::kernel::btf::KernelBtf;
use crate::kernel::host::HostFeatures;
use crate::kernel::kind_counts::LostCounts;
use crate::kernel::offsets;
use crate::kernel::tracefs::{self, TracepointFormat};

/// The compiled eBPF object, embedded at build time when it was built first
/// (`cargo xtask build`; see build.rs).
#[cfg(embedded_ebpf)]
pub fn embedded_object() -> Option<&'static [u8]> {
    Some(aya::include_bytes_aligned!(env!("SENSOR_EBPF_OBJECT")))
}

#[cfg(not(embedded_ebpf))]
pub fn embedded_object() -> Option<&'static [u8]> {
    None
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "this sensor binary was built without its eBPF programs; build it with `cargo xtask build` \
         (or pass --ebpf-object PATH)"
    )]
    NoObject,
    #[error(
        "not enough privilege to load eBPF programs: run as root, or grant CAP_BPF, CAP_PERFMON, \
         CAP_SYS_RESOURCE and CAP_DAC_READ_SEARCH (effective capabilities now: {cap_eff:#x})"
    )]
    NotPermitted { cap_eff: u64 },
    #[error(transparent)]
    Offsets(#[from] offsets::OffsetsError),
    #[error(transparent)]
    Tracefs(#[from] tracefs::TracefsError),
    #[error(
        "this kernel has no BPF ring buffer (BPF_MAP_TYPE_RINGBUF needs Linux 5.8 or later): {0}"
    )]
    NoRingBuf(String),
    #[error("the kernel refused to create map {name}: {reason}")]
    Map { name: String, reason: String },
    #[error("loading the eBPF object failed: {0}")]
    Object(String),
    #[error(
        "the eBPF object's record layout ({object:#018x}) is not this agent's ({agent:#018x}): \
         it was built from another version of sensor-common; rebuild both with `cargo xtask build`"
    )]
    Layout { object: u64, agent: u64 },
    #[error("the kernel verifier rejected program {program}: {error}\n--- end of verifier log ---\n{log_tail}")]
    Verifier {
        program: &'static str,
        error: String,
        log_tail: String,
    },
    #[error("program {program} failed: {reason}")]
    Program {
        program: &'static str,
        reason: String,
    },
    #[error("attaching {program} to {target} failed: {reason}")]
    Attach {
        program: &'static str,
        target: &'static str,
        reason: String,
    },
}

/// Options for [`load`].
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Ring buffer size in bytes (a power of two, multiple of the page size).
    pub ring_buffer_bytes: u32,
    /// Wake the reader only once this many bytes are waiting (the reader
    /// must then also poll on a timer); 0 wakes it whenever it caught up.
    pub wakeup_bytes: u64,
    /// Kernel BTF to take struct offsets from instead of
    /// `/sys/kernel/btf/vmlinux` (kernels built without it can use an
    /// external BTF file for their exact build, e.g. from BTFHub).
    pub btf_path: Option<std::path::PathBuf>,
    /// Read the task's cgroup in this cgroup v1 subsystem's hierarchy
    /// instead of cgroup2's (v1-only hosts, see `cgroup_v1`).
    pub cgroup_v1_ssid: Option<u32>,
    /// On a hybrid host, the v1 controller also read (`cgroup_v1_id`).
    pub cgroup_v1_secondary_ssid: Option<u32>,
    /// Which network actions to attach for (none: not attached).
    pub network: crate::network::hooks::NetWant,
    /// Which of them are sent only for processes whose name passes them
    /// (bit `1 << op`, `NetPrefilter::by_name`).
    pub network_by_name: u32,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            ring_buffer_bytes: 8 * 1024 * 1024,
            wakeup_bytes: 0,
            btf_path: None,
            cgroup_v1_ssid: None,
            cgroup_v1_secondary_ssid: None,
            network: crate::network::hooks::NetWant::default(),
            network_by_name: 0,
        }
    }
}

/// The loaded, attached programs and the maps userspace reads.
pub struct KernelPrograms {
    /// Keeps programs and links alive; dropping it detaches everything.
    _ebpf: Ebpf,
    /// The ring buffer, until [`KernelPrograms::take_events`] hands it to
    /// its reader.
    events: Option<RingBuf<MapData>>,
    lost: PerCpuArray<MapData, u64>,
    drops: PerCpuArray<MapData, u64>,
    /// What was attached, for the start-up summary.
    pub attached: Vec<&'static str>,
    /// Whether this process mounted tracefs.
    pub mounted_tracefs: bool,
    /// How file events are seen here (or why they are not).
    pub file_mechanism: crate::kernel::file_hooks::FileMechanism,
    /// How network events are seen here (or why they are not).
    pub net_mechanism: crate::network::hooks::NetMechanism,
    /// The network programs' counters, when network events are on.
    pub net_counters: Option<crate::network::hooks::NetCounters>,
}

/// Records one kernel program dropped for one reason, since load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct KernelDrop {
    pub program: &'static str,
    pub reason: &'static str,
    pub count: u64,
}

/// The record layout an eBPF object was built with: its `SENSOR_LAYOUT`
/// symbol, read from the ELF before anything is loaded.
pub fn object_layout(object: &[u8]) -> Result<u64, LoadError> {
    use object::{Object, ObjectSection, ObjectSymbol};
    let file = object::File::parse(object)
        .map_err(|e| LoadError::Object(format!("not an ELF object: {e}")))?;
    let symbol = file
        .symbols()
        .find(|s| s.name() == Ok("SENSOR_LAYOUT"))
        .ok_or_else(|| {
            LoadError::Object(
                "no SENSOR_LAYOUT symbol: the object predates the layout check or is not the \
                 sensor's; rebuild it with `cargo xtask build`"
                    .to_owned(),
            )
        })?;
    let section = symbol
        .section_index()
        .and_then(|i| file.section_by_index(i).ok())
        .ok_or_else(|| LoadError::Object("SENSOR_LAYOUT has no section".to_owned()))?;
    let data = section
        .data()
        .map_err(|e| LoadError::Object(format!("reading SENSOR_LAYOUT's section: {e}")))?;
    let start = usize::try_from(symbol.address().saturating_sub(section.address()))
        .map_err(|_| LoadError::Object("SENSOR_LAYOUT out of range".to_owned()))?;
    let bytes: [u8; 8] = data
        .get(start..start + 8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| LoadError::Object("SENSOR_LAYOUT is not 8 bytes".to_owned()))?;
    Ok(u64::from_le_bytes(bytes))
}

impl KernelPrograms {
    /// Sums the per-CPU lost counters.
    pub fn lost(&self) -> Result<LostCounts, MapError> {
        let mut counts = [0; KINDS.len()];
        for (i, count) in (0..).zip(counts.iter_mut()) {
            *count = self.lost.get(&i, 0)?.iter().sum();
        }
        Ok(LostCounts::from_counts(counts))
    }

    /// Sums the per-CPU drop counters (records a program gave up on before
    /// the ring buffer), by program and reason; zero counts left out.
    pub fn drops(&self) -> Result<Vec<KernelDrop>, MapError> {
        let mut out = Vec::new();
        for program in 0..program_index::COUNT {
            for reason in 0..drop_reason::COUNT {
                let i = program * drop_reason::COUNT + reason;
                let count: u64 = self.drops.get(&i, 0)?.iter().sum();
                if count > 0 {
                    out.push(KernelDrop {
                        program: program_index::NAMES[program as usize],
                        reason: drop_reason::NAMES[reason as usize],
                        count,
                    });
                }
            }
        }
        Ok(out)
    }

    /// The programs' own diagnostics (aya-log: which program dropped a
    /// record, and why), for a reader that forwards them to the `log`
    /// crate. `None` when the object has no log channel.
    pub fn kernel_logger(&mut self) -> Option<aya_log::EbpfLogger<&'static dyn log::Log>> {
        match aya_log::EbpfLogger::init(&mut self._ebpf) {
            Ok(logger) => Some(logger),
            Err(e) => {
                log::debug!("no kernel log channel: {e}");
                None
            }
        }
    }

    /// Loads the rules' file prefilter into the kernel maps
    /// (`kernel::file_filter`); its verdict counters for the caller.
    pub fn install_file_prefilter(
        &mut self,
        tables: &crate::kernel::file_filter::Tables,
    ) -> Result<crate::kernel::file_filter::FileFilter, crate::kernel::file_filter::FileFilterError>
    {
        crate::kernel::file_filter::install(&mut self._ebpf, tables)
    }

    /// The ring buffer the programs write to, for its one reader.
    pub fn take_events(&mut self) -> Result<RingBuf<MapData>, LoadError> {
        self.events.take().ok_or_else(|| LoadError::Map {
            name: "EVENTS".to_owned(),
            reason: "the ring buffer was already taken".to_owned(),
        })
    }
}

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Enough privilege to load and attach: CAP_SYS_ADMIN, or CAP_BPF with
/// CAP_PERFMON.
fn may_load(host: &HostFeatures) -> bool {
    host.has_cap(CAP_SYS_ADMIN) || (host.has_cap(CAP_BPF) && host.has_cap(CAP_PERFMON))
}

impl LoadError {
    /// A refusal for lack of privilege, with this host's capabilities (the
    /// places that classify a kernel error do not know them).
    fn with_capabilities(self, host: &HostFeatures) -> LoadError {
        match self {
            LoadError::NotPermitted { .. } => LoadError::NotPermitted {
                cap_eff: host.cap_eff,
            },
            other => other,
        }
    }
}

/// Resolves offsets, loads the object and attaches the programs, on the
/// host `host` describes (probed once at start).
pub fn load(
    object: &[u8],
    options: &LoadOptions,
    host: &HostFeatures,
) -> Result<KernelPrograms, LoadError> {
    load_on(object, options, host).map_err(|e| e.with_capabilities(host))
}

fn load_on(
    object: &[u8],
    options: &LoadOptions,
    host: &HostFeatures,
) -> Result<KernelPrograms, LoadError> {
    let layout = object_layout(object)?;
    if layout != LAYOUT_HASH {
        return Err(LoadError::Layout {
            object: layout,
            agent: LAYOUT_HASH,
        });
    }
    if !may_load(host) {
        return Err(LoadError::NotPermitted {
            cap_eff: host.cap_eff,
        });
    }
    let btf = match &options.btf_path {
        Some(path) => KernelBtf::from_file(path),
        None => KernelBtf::from_sys_fs(),
    }
    .map_err(offsets::OffsetsError::from)?;
    let mut offsets = offsets::from_btf(&btf).map_err(offsets::OffsetsError::from)?;
    if let Some(ssid) = options.cgroup_v1_ssid {
        offsets::with_cgroup_v1(&btf, &mut offsets, ssid, false)
            .map_err(offsets::OffsetsError::from)?;
    } else if let Some(ssid) = options.cgroup_v1_secondary_ssid {
        offsets::with_cgroup_v1(&btf, &mut offsets, ssid, true)
            .map_err(offsets::OffsetsError::from)?;
    }
    let (tracefs_root, mounted_tracefs) = tracefs::ensure_mounted()?;
    let exec_fmt = TracepointFormat::read(&tracefs_root, "sched", "sched_process_exec")?;
    let exit_fmt = TracepointFormat::read(&tracefs_root, "sched", "sched_process_exit")?;
    let mkdir_fmt = TracepointFormat::read(&tracefs_root, "cgroup", "cgroup_mkdir")?;
    let offsets: KernelOffsets =
        offsets::with_tracepoints(offsets, &exec_fmt, &exit_fmt, &mkdir_fmt)?;
    let (offsets, net_offsets_error) = if options.network.none() {
        (offsets, None)
    } else {
        match offsets::with_network(offsets, &btf) {
            Ok(o) => (o, None),
            Err(e) => (offsets, Some(format!("socket offsets: {e}"))),
        }
    };

    // Loading needs no RLIMIT_MEMLOCK raise on kernels with memcg accounting
    // (5.11+); on older ones raise it, and only mention a failure.
    raise_memlock_limit();

    let cpus = aya::util::nr_cpus().map(|n| n as u32).unwrap_or(256).max(1);
    let mut ebpf = EbpfLoader::new()
        .override_global("OFFSETS", &offsets, true)
        .override_global("WAKEUP_BYTES", &options.wakeup_bytes, true)
        .map_max_entries("EVENTS", options.ring_buffer_bytes)
        .map_max_entries("SCRATCH", cpus)
        .map_max_entries("ARGS_SCRATCH", cpus)
        .load(object)
        .map_err(classify_load_error)?;

    install_exec_tail(&mut ebpf)?;
    let mut attached = Vec::new();
    attach_tracepoint(&mut ebpf, "sensor_exec", "sched", "sched_process_exec")?;
    attached.push("tracepoint/sched/sched_process_exec");
    attach_tracepoint(&mut ebpf, "sensor_exit", "sched", "sched_process_exit")?;
    attached.push("tracepoint/sched/sched_process_exit");
    attach_raw_tracepoint(&mut ebpf, "sensor_fork", "sched_process_fork")?;
    attached.push("raw_tracepoint/sched_process_fork");
    attach_tracepoint(&mut ebpf, "sensor_cgroup_mkdir", "cgroup", "cgroup_mkdir")?;
    attached.push("tracepoint/cgroup/cgroup_mkdir");
    let file_mechanism = crate::kernel::file_hooks::attach(
        &mut ebpf,
        options.btf_path.as_deref(),
        &tracefs_root,
        host,
    );
    let (net_mechanism, net_counters) = crate::network::hooks::attach(
        &mut ebpf,
        options.network,
        options.network_by_name,
        &tracefs_root,
        net_offsets_error,
    );

    let map_err = |name: &str, e: String| LoadError::Map {
        name: name.to_owned(),
        reason: e,
    };
    let events = ebpf
        .take_map("EVENTS")
        .ok_or_else(|| map_err("EVENTS", "missing from the object".into()))
        .and_then(|m| RingBuf::try_from(m).map_err(|e| map_err("EVENTS", e.to_string())))?;
    let lost = ebpf
        .take_map("LOST")
        .ok_or_else(|| map_err("LOST", "missing from the object".into()))
        .and_then(|m| PerCpuArray::try_from(m).map_err(|e| map_err("LOST", e.to_string())))?;
    let drops = ebpf
        .take_map("DROPS")
        .ok_or_else(|| map_err("DROPS", "missing from the object".into()))
        .and_then(|m| PerCpuArray::try_from(m).map_err(|e| map_err("DROPS", e.to_string())))?;
    Ok(KernelPrograms {
        _ebpf: ebpf,
        events: Some(events),
        lost,
        drops,
        attached,
        mounted_tracefs,
        file_mechanism,
        net_mechanism,
        net_counters,
    })
}

fn raise_memlock_limit() {
    let unlimited = rustix::process::Rlimit {
        current: None,
        maximum: None,
    };
    if let Err(e) = rustix::process::setrlimit(rustix::process::Resource::Memlock, unlimited) {
        log::debug!("could not raise RLIMIT_MEMLOCK ({e}); fine on kernels with memcg accounting");
    }
}

fn classify_load_error(e: EbpfError) -> LoadError {
    match &e {
        EbpfError::MapError(MapError::CreateError { name, io_error }) => {
            if name == "EVENTS" && io_error.raw_os_error() == Some(libc::EINVAL) {
                LoadError::NoRingBuf(io_error.to_string())
            } else if matches!(
                io_error.raw_os_error(),
                Some(libc::EPERM) | Some(libc::EACCES)
            ) {
                // The capabilities are filled in by `load`.
                LoadError::NotPermitted { cap_eff: 0 }
            } else {
                LoadError::Map {
                    name: name.clone(),
                    reason: io_error.to_string(),
                }
            }
        }
        _ => LoadError::Object(error_chain(&e)),
    }
}

/// An error and its causes on one line, each cause once (some library
/// errors repeat their source's text in their own message).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        src = inner.source();
    }
    s
}

/// The last lines of a verifier log: the reason is at the end.
fn log_tail(log: &str, lines: usize) -> String {
    let all: Vec<&str> = log.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn program_error(program: &'static str, e: ProgramError) -> LoadError {
    match e {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => {
            if matches!(io_error.raw_os_error(), Some(libc::EPERM))
                && verifier_log.to_string().trim().is_empty()
            {
                // The capabilities are filled in by `load`.
                return LoadError::NotPermitted { cap_eff: 0 };
            }
            LoadError::Verifier {
                program,
                error: io_error.to_string(),
                log_tail: log_tail(&verifier_log.to_string(), 20),
            }
        }
        other => LoadError::Program {
            program,
            reason: error_chain(&other),
        },
    }
}

/// Loads the programs `sensor_exec` tail-calls (see the kernel side:
/// `sensor_exec_args` in slot 0, `sensor_exec_exe` in slot 1) and puts them
/// in `EXEC_TAIL`, before the exec program is attached so no exec finds a
/// slot empty.
fn install_exec_tail(ebpf: &mut Ebpf) -> Result<(), LoadError> {
    let mut fds = Vec::new();
    for program in ["sensor_exec_args", "sensor_exec_exe"] {
        let prog: &mut TracePoint = load_program(ebpf, program)?;
        fds.push(
            prog.fd()
                .map_err(|e| program_error(program, e))?
                .try_clone()
                .map_err(|e| LoadError::Object(format!("duplicating the {program} fd: {e}")))?,
        );
    }
    let map_err = |e: String| LoadError::Map {
        name: "EXEC_TAIL".to_owned(),
        reason: e,
    };
    let mut slots = ProgramArray::try_from(
        ebpf.map_mut("EXEC_TAIL")
            .ok_or_else(|| map_err("missing from the object".into()))?,
    )
    .map_err(|e| map_err(e.to_string()))?;
    for (slot, fd) in (0u32..).zip(&fds) {
        slots.set(slot, fd, 0).map_err(|e| map_err(e.to_string()))?;
    }
    Ok(())
}

/// Program `program` of the object, as type `P`, loaded into the kernel
/// (where the verifier checks it).
fn load_program<'a, P>(ebpf: &'a mut Ebpf, program: &'static str) -> Result<&'a mut P, LoadError>
where
    &'a mut P: TryFrom<&'a mut aya::programs::Program, Error = ProgramError>,
    P: LoadableProgram,
{
    let prog: &mut P = ebpf
        .program_mut(program)
        .ok_or_else(|| LoadError::Object(format!("program {program} missing from the object")))?
        .try_into()
        .map_err(|e| program_error(program, e))?;
    prog.load_it().map_err(|e| program_error(program, e))?;
    Ok(prog)
}

/// The program types the sensor loads (aya gives each its own `load`).
trait LoadableProgram {
    fn load_it(&mut self) -> Result<(), ProgramError>;
}

impl LoadableProgram for TracePoint {
    fn load_it(&mut self) -> Result<(), ProgramError> {
        self.load()
    }
}

impl LoadableProgram for RawTracePoint {
    fn load_it(&mut self) -> Result<(), ProgramError> {
        self.load()
    }
}

fn attach_tracepoint(
    ebpf: &mut Ebpf,
    program: &'static str,
    category: &'static str,
    name: &'static str,
) -> Result<(), LoadError> {
    let prog: &mut TracePoint = load_program(ebpf, program)?;
    prog.attach(category, name).map_err(|e| LoadError::Attach {
        program,
        target: name,
        reason: error_chain(&e),
    })?;
    Ok(())
}

fn attach_raw_tracepoint(
    ebpf: &mut Ebpf,
    program: &'static str,
    name: &'static str,
) -> Result<(), LoadError> {
    let prog: &mut RawTracePoint = load_program(ebpf, program)?;
    prog.attach(name).map_err(|e| LoadError::Attach {
        program,
        target: name,
        reason: error_chain(&e),
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_tail_keeps_the_last_lines() {
        let log = (1..=30)
            .map(|i| format!("line {i}"))
            .collect::<Vec<_>>()
            .join("\n");
        let tail = log_tail(&log, 3);
        assert_eq!(tail, "line 28\nline 29\nline 30");
        assert_eq!(log_tail("", 5), "");
    }

    #[test]
    fn loading_needs_sys_admin_or_bpf_with_perfmon() {
        let host = |cap_eff| HostFeatures {
            cap_eff,
            kernel_release: "6.1.0".into(),
            memlock_unlimited: true,
            lsms: Ok(Vec::new()),
            btf_vmlinux: true,
            syscall_tracepoints: true,
            sock_tracepoint: true,
        };
        assert!(may_load(&host(1 << CAP_SYS_ADMIN)));
        assert!(may_load(&host(1 << CAP_BPF | 1 << CAP_PERFMON)));
        assert!(!may_load(&host(1 << CAP_BPF)));
        assert!(!may_load(&host(1 << CAP_PERFMON)));
        let refused = LoadError::NotPermitted { cap_eff: 0 }.with_capabilities(&host(1 << 5));
        assert!(matches!(refused, LoadError::NotPermitted { cap_eff: 32 }));
    }
}
