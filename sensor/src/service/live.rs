//! The live sensor: load and attach the kernel programs, seed the process
//! table from /proc, then read the ring buffer, enrich, evaluate the rules
//! and write alerts (and optionally events) until SIGINT/SIGTERM.
//!
//! One task does the whole per-event path in order (decode → table →
//! enrich → rules → outputs): records from one CPU stay in order, the table
//! sees fork before the child's exec, and nothing needs locking.

use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::signal::unix::{signal, SignalKind};

use crate::context::cgroup_path::CgroupResolver;
use crate::context::cgroup_v1::CgroupMode;
use crate::context::process_table::{ProcessTable, TableConfig};
use crate::context::procfs;
use crate::ecs::enrich::{Enricher, HostIdentity};
use crate::kernel::decode::{decode, ArgsAssembler, KernelEvent};
use crate::kernel::programs::{self, KernelDrop, KernelPrograms, LoadOptions, LostCounts};
use crate::output::alert::AlertWriter;
use crate::output::jsonl::{JsonLines, OutputOptions, Rotation};
use crate::rules::{Rule, RuleSet};
use crate::service::config::Settings;
use crate::service::metrics::{self, Metrics};

/// Everything the live sensor is configured with.
pub struct LiveOptions {
    /// The compiled rules to apply to every event.
    pub rules: RuleSet,
    /// Validated settings (see [`crate::service::config`]).
    pub settings: Settings,
    /// Load this object instead of the embedded one.
    pub ebpf_object: Option<PathBuf>,
    /// Kernel BTF file instead of `/sys/kernel/btf/vmlinux`.
    pub btf: Option<PathBuf>,
}

/// Counters printed in the summary line at exit.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct RunStats {
    pub exec: u64,
    pub fork: u64,
    pub exit: u64,
    pub decode_errors: u64,
    pub alerts: u64,
    pub output_errors: u64,
    pub lost_exec: u64,
    pub lost_fork: u64,
    pub lost_exit: u64,
    /// Argv continuation records lost in the kernel (each cuts one argv).
    pub lost_args_chunks: u64,
    /// Execs whose argv could not be captured whole (a lost continuation
    /// record, or past the kernel's own bound).
    pub args_truncated: u64,
    /// `became_interactive` events: a process that started without a
    /// terminal gained one (see `ecs::Action::BecameInteractive`).
    pub became_interactive: u64,
    /// Records the kernel programs dropped before the ring buffer, by
    /// program and reason (empty when none).
    pub kernel_drops: Vec<KernelDrop>,
}

/// The ring buffer's fd, borrowed for tokio's readiness polling; the
/// `KernelPrograms` that owns it outlives the poller.
struct RingFd(RawFd);

impl AsRawFd for RingFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// Runs until a signal; returns the stats for the caller to report.
pub async fn run(opts: LiveOptions) -> Result<RunStats> {
    let rules = opts.rules;
    let settings = opts.settings;
    let metrics = Metrics::new(
        rules
            .rules()
            .iter()
            .map(|r| (r.meta.rule_id.clone(), r.meta.name.clone())),
    );
    // Bind before loading anything: a taken port is a configuration error
    // the user should see at once.
    let listener = match settings.metrics_addr {
        Some(addr) => Some(
            metrics::bind(addr).with_context(|| format!("binding the metrics endpoint {addr}"))?,
        ),
        None => None,
    };
    let object_owned;
    let object: &[u8] = match &opts.ebpf_object {
        Some(path) => {
            object_owned = std::fs::read(path)
                .with_context(|| format!("reading eBPF object {}", path.display()))?;
            &object_owned
        }
        None => programs::embedded_object().ok_or(programs::LoadError::NoObject)?,
    };
    // Decided before loading: on v1-only hosts the programs read the cgroup
    // of a v1 controller instead of cgroup2's.
    let cgroup_mode = crate::context::cgroup_v1::detect();
    let mut programs = programs::load(
        object,
        &LoadOptions {
            ring_buffer_bytes: settings.ring_buffer_mib * 1024 * 1024,
            // A wake-up per 64 KiB (or per ring/8 on small rings); the
            // batch timer below picks up whatever is under the threshold.
            wakeup_bytes: if settings.batch_ms == 0 {
                0
            } else {
                (u64::from(settings.ring_buffer_mib) * 1024 * 1024 / 8).min(64 * 1024)
            },
            btf_path: opts.btf.clone(),
            cgroup_v1_ssid: cgroup_mode.v1_ssid(),
        },
    )?;
    eprintln!(
        "sensor: kernel {}: attached {}{}",
        kernel_release(),
        programs.attached.join(", "),
        if programs.mounted_tracefs {
            " (mounted tracefs at /sys/kernel/tracing)"
        } else {
            ""
        }
    );

    let host = HostIdentity::discover();
    // Programs are attached before the scan: a process started in between
    // is seen by both, never by neither.
    let mut table = ProcessTable::new(TableConfig {
        host_id: host.id.clone().unwrap_or_else(|| host.name.clone()),
        capacity: settings.table_capacity,
        proc_root: PathBuf::from("/proc"),
        clk_tck: crate::context::process_table::system_clk_tck(),
    });
    let scan = procfs::scan(std::path::Path::new("/proc"));
    let seeded = table.seed(scan.snapshots);
    let containers = match &cgroup_mode {
        CgroupMode::None => {
            let e = CgroupResolver::discover().err();
            eprintln!(
                "sensor: warning: no container enrichment: {}",
                e.map_or_else(|| "no cgroup mount found".to_owned(), |e| e.to_string())
            );
            None
        }
        mode => {
            eprintln!("sensor: {}", mode.describe());
            mode.resolver()
        }
    };
    let mut enricher = Enricher::new(host, containers);

    let output = OutputOptions {
        rotation: (settings.rotate_mib > 0).then_some(Rotation {
            max_bytes: settings.rotate_mib * 1024 * 1024,
            keep: settings.rotate_keep,
        }),
        mode: settings.output_mode,
    };
    let alerts_target = settings.alerts_target();
    let mut alerts_out = AlertWriter::new(
        alerts_target
            .open_with(output)
            .with_context(|| format!("opening alerts output {}", alerts_target.describe()))?,
    );
    let events_target = settings.events_target();
    let mut events_out = match &events_target {
        Some(t) => {
            Some(JsonLines::new(t.open_with(output).with_context(|| {
                format!("opening events output {}", t.describe())
            })?))
        }
        None => None,
    };
    eprintln!(
        "sensor: process table seeded with {seeded} processes from /proc ({} unreadable); alerts → {}{}",
        scan.errors,
        alerts_target.describe(),
        events_target
            .as_ref()
            .map(|t| format!(", events → {}", t.describe()))
            .unwrap_or_default()
    );
    if let Some(listener) = listener {
        eprintln!(
            "sensor: metrics and health on http://{}/metrics, /healthz, /readyz",
            listener
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_default()
        );
        metrics::spawn(listener, metrics.clone()).context("starting the metrics endpoint")?;
    }
    metrics
        .process_table_entries
        .store(table.len() as u64, Ordering::Relaxed);
    metrics.heartbeat();
    metrics.set_ready();
    eprintln!("sensor: ready");

    // SAFETY: the fd belongs to `programs`, which is dropped only after
    // `ring` (explicitly, below), so it stays open while registered.
    let ring = unsafe {
        AsyncFd::register_with_interest(RingFd(programs.events_fd()), Interest::READABLE)
    }
    .map_err(|e| anyhow::anyhow!("polling the ring buffer: {e}"))?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let mut lost_check = tokio::time::interval(Duration::from_secs(1));
    let mut batch = tokio::time::interval(Duration::from_millis(settings.batch_ms.max(1)));
    batch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let batching = settings.batch_ms > 0;
    let mut stats = RunStats::default();
    let mut last_lost = LostCounts::default();

    let mut pipeline = Pipeline {
        rules: &rules,
        table: &mut table,
        enricher: &mut enricher,
        alerts: &mut alerts_out,
        events: events_out.as_mut(),
        lifecycle: settings.lifecycle_events,
        stats: &mut stats,
        metrics: &metrics,
        args: ArgsAssembler::default(),
    };
    loop {
        tokio::select! {
            guard = ring.readable() => {
                let mut guard = guard.context("ring buffer poll")?;
                pipeline.drain(&mut programs);
                guard.clear_ready();
            }
            _ = batch.tick(), if batching => {
                pipeline.drain(&mut programs);
            }
            _ = lost_check.tick() => {
                report_lost(&programs, &mut last_lost, &metrics);
                report_drops(&programs, &mut pipeline.stats.kernel_drops);
                pipeline.publish_gauges();
            }
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
        }
    }
    // A second signal during shutdown exits at once: back to the default
    // action (terminate), which needs no cooperation from this thread.
    // SAFETY: resetting a signal disposition to SIG_DFL is always valid.
    unsafe {
        libc::signal(libc::SIGTERM, libc::SIG_DFL);
        libc::signal(libc::SIGINT, libc::SIG_DFL);
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while pipeline.drain(&mut programs) > 0 && Instant::now() < deadline {}
    report_lost(&programs, &mut last_lost, &metrics);
    report_drops(&programs, &mut stats.kernel_drops);
    stats.lost_exec = last_lost.exec;
    stats.lost_fork = last_lost.fork;
    stats.lost_exit = last_lost.exit;
    stats.lost_args_chunks = last_lost.args_chunk;
    let _ = alerts_out.flush();
    if let Some(e) = events_out.as_mut() {
        let _ = e.flush();
    }
    stats.output_errors = alerts_out.errors() + events_out.as_ref().map_or(0, |e| e.errors());
    drop(ring);
    drop(programs); // detaches
    Ok(stats)
}

/// Warns when the kernel programs dropped records since the last check;
/// returns the counts.
fn report_drops(programs: &KernelPrograms, last: &mut Vec<KernelDrop>) {
    match programs.drops() {
        Ok(now) if now != *last => {
            let list: Vec<String> = now
                .iter()
                .map(|d| format!("{} {} {}", d.program, d.reason, d.count))
                .collect();
            eprintln!(
                "sensor: warning: kernel programs dropped records since start: {}",
                list.join(", ")
            );
            *last = now;
        }
        Ok(_) => {}
        Err(e) => eprintln!("sensor: warning: cannot read kernel drop counters: {e}"),
    }
}

fn report_lost(programs: &KernelPrograms, last: &mut LostCounts, metrics: &Metrics) {
    metrics.heartbeat();
    match programs.lost() {
        Ok(now) if now != *last => {
            metrics.lost_exec.store(now.exec, Ordering::Relaxed);
            metrics.lost_fork.store(now.fork, Ordering::Relaxed);
            metrics.lost_exit.store(now.exit, Ordering::Relaxed);
            eprintln!(
                "sensor: warning: ring buffer full, records lost since start: exec {}, fork {}, exit {}, cgroup {}, argv continuation {} (raise --ring-buffer-mib)",
                now.exec, now.fork, now.exit, now.cgroup_mkdir, now.args_chunk
            );
            *last = now;
        }
        Ok(_) => {}
        Err(e) => eprintln!("sensor: warning: cannot read lost-record counters: {e}"),
    }
}

/// The per-event path, borrowed pieces of the running sensor.
struct Pipeline<'a> {
    rules: &'a RuleSet,
    table: &'a mut ProcessTable,
    enricher: &'a mut Enricher,
    alerts: &'a mut AlertWriter,
    events: Option<&'a mut JsonLines>,
    lifecycle: bool,
    stats: &'a mut RunStats,
    metrics: &'a Metrics,
    /// Joins argv continuation records to their exec.
    args: ArgsAssembler,
}

impl Pipeline<'_> {
    /// Gauges and error counts, published once a second (not per event).
    fn publish_gauges(&self) {
        let m = self.metrics;
        m.process_table_entries
            .store(self.table.len() as u64, Ordering::Relaxed);
        m.alert_output_errors
            .store(self.alerts.errors(), Ordering::Relaxed);
        m.event_output_errors.store(
            self.events.as_ref().map_or(0, |e| e.errors()),
            Ordering::Relaxed,
        );
        m.decode_errors
            .store(self.stats.decode_errors, Ordering::Relaxed);
    }

    /// Applies every rule to one event, writes its alerts, and the event
    /// itself when events are written.
    fn evaluate_and_write(&mut self, doc: &crate::ecs::EcsEvent) {
        let started = Instant::now();
        // Collecting allocates only when a rule matched (rare).
        let matched: Vec<&Rule> = self.rules.matching(doc).collect();
        self.metrics.observe_eval(started.elapsed());
        for rule in matched {
            // A failed write is counted by the writer (output_errors).
            let _ = self.alerts.write_alert_native(doc, &rule.meta);
            self.stats.alerts += 1;
            self.metrics.add_alert(&rule.meta.rule_id);
        }
        if let Some(out) = self.events.as_mut() {
            let _ = out.write(doc);
        }
    }

    /// Handles every record waiting in the ring buffer; returns how many.
    fn drain(&mut self, programs: &mut KernelPrograms) -> usize {
        let mut n = 0;
        while let Some(item) = programs.events.next() {
            n += 1;
            match decode(&item) {
                Ok(ev) => self.handle(ev),
                Err(e) => {
                    self.stats.decode_errors += 1;
                    log::warn!("undecodable kernel record: {e}");
                }
            }
        }
        if n > 0 {
            // Flush per batch: alerts reach their reader within the batch's
            // latency. Failures are counted by the writers.
            let _ = self.alerts.flush();
            if let Some(e) = self.events.as_mut() {
                let _ = e.flush();
            }
        }
        n
    }

    fn handle(&mut self, ev: KernelEvent) {
        match ev {
            KernelEvent::ArgsChunk(chunk) => self.args.push(chunk),
            KernelEvent::Exec(mut exec) => {
                self.stats.exec += 1;
                self.metrics.exec_events.fetch_add(1, Ordering::Relaxed);
                self.args.complete(&mut exec);
                if exec.args_truncated {
                    self.stats.args_truncated += 1;
                }
                let ctx = self.table.on_exec(&exec);
                if let Some(parent) = self.table.parent_became_interactive(&exec, &ctx) {
                    if let Some(kernel) = exec.parent.as_ref() {
                        self.stats.became_interactive += 1;
                        let doc = self.enricher.became_interactive_event(
                            &parent,
                            kernel,
                            exec.ktime_ns,
                            exec.cgroup_id,
                        );
                        self.evaluate_and_write(&doc);
                    }
                }
                let doc = self.enricher.exec_event(&exec, &ctx);
                self.evaluate_and_write(&doc);
            }
            KernelEvent::Fork(fork) => {
                self.stats.fork += 1;
                self.metrics.fork_events.fetch_add(1, Ordering::Relaxed);
                self.table.on_fork(&fork);
                if self.lifecycle {
                    if let Some(out) = self.events.as_mut() {
                        if let Some(doc) = self.enricher.fork_event(&fork, self.table) {
                            let _ = out.write(&doc);
                        }
                    }
                }
            }
            KernelEvent::CgroupMkdir(c) => {
                // Only the walked hierarchy's ids are what exec records carry.
                if Some(c.root) == self.enricher.cgroup_hierarchy() && !c.truncated {
                    self.enricher
                        .learn_cgroup(c.id, &crate::ecs::byte_text::to_text(&c.path));
                }
            }
            KernelEvent::Exit(exit) => {
                self.stats.exit += 1;
                self.metrics.exit_events.fetch_add(1, Ordering::Relaxed);
                let ended = self.table.on_exit(&exit);
                if self.lifecycle {
                    if let (Some(out), Some(ended)) = (self.events.as_mut(), ended) {
                        let doc = self.enricher.end_event(&exit, &ended);
                        let _ = out.write(&doc);
                    }
                }
            }
        }
    }
}
