//! The live sensor: load and attach the kernel programs, seed the process
//! table from /proc, then read the ring buffer, enrich, evaluate the rules
//! and write alerts (and optionally events) until SIGINT/SIGTERM.
//!
//! One task does the whole per-event path in order (decode → table →
//! enrich → rules → outputs): records from one CPU stay in order, the table
//! sees fork before the child's exec, and nothing needs locking.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::signal::unix::{signal, Signal, SignalKind};

use aya::maps::{MapData, RingBuf};

use crate::context::cgroup_path::CgroupResolver;
use crate::context::cgroup_v1::CgroupMode;
use crate::context::process_table::{ProcessTable, TableConfig};
use crate::context::procfs;
use crate::ecs::enrich::{Enricher, HostIdentity};
use crate::kernel::decode::{decode, ArgsAssembler, KernelEvent};
use crate::kernel::host::HostFeatures;
use crate::kernel::kind_counts::{HandledCounts, LostCounts};
use crate::kernel::programs::{self, KernelDrop, KernelPrograms, LoadOptions};
use crate::output::alert::AlertWriter;
use crate::output::jsonl::{JsonLines, OutputOptions, Rotation};
use crate::rules::sequences::LiveSequences;
use crate::rules::{Rule, RuleSet};
use crate::service::config::Settings;
use crate::service::http;
use crate::service::metrics::Metrics;
use sensor_common::lost_index;

/// Everything the live sensor is configured with.
pub struct LiveOptions {
    /// The compiled rules to apply to every event.
    pub rules: RuleSet,
    /// What happens to a match before it is written (exception lists).
    pub policy: crate::rules::policy::AlertPolicy,
    /// The active set's description (version, load time, per-rule
    /// exceptions and suppression), for `/metrics`.
    pub active: crate::rules::active::ActiveSet,
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
    /// Records handled, one key per kind the registry counts (`exec`,
    /// `fork`, `exit`, `file`: opens for writing, creations, deletions,
    /// renames).
    #[serde(flatten)]
    pub handled: HandledCounts,
    pub decode_errors: u64,
    pub alerts: u64,
    pub output_errors: u64,
    /// Records lost in the kernel (ring buffer full), one `lost_<kind>`
    /// key per record kind; a lost argv continuation record cuts one argv.
    #[serde(flatten)]
    pub lost: LostCounts,
    /// Connections reported whose close could not be (the kernel's socket
    /// table was full).
    pub net_untracked: u64,
    /// The network prefilter's verdicts, per action (as
    /// `sensor_net_prefilter_total`).
    pub net_prefilter: Vec<crate::kernel::file_filter::PrefilterCount>,
    /// Execs whose argv could not be captured whole (a lost continuation
    /// record, or past the kernel's own bound).
    pub args_truncated: u64,
    /// `became_interactive` events: a process that started without a
    /// terminal gained one (see `ecs::Action::BecameInteractive`).
    pub became_interactive: u64,
    /// Argv continuation records that arrived without their exec (its
    /// record was lost) and were dropped.
    pub orphaned_args_chunks: u64,
    /// Records the kernel programs dropped before the ring buffer, by
    /// program and reason (empty when none).
    pub kernel_drops: Vec<KernelDrop>,
    /// File records by operation and prefilter verdict (see
    /// `sensor_file_prefilter_total`).
    pub file_prefilter: Vec<crate::kernel::file_filter::PrefilterCount>,
    /// Sequence rules: completed, dropped (by reason, `evicted` when the
    /// per-rule cap was reached), pending and peak partial sequences.
    pub sequences: crate::eql::SequenceStats,
}

/// Runs until a signal; returns the stats for the caller to report.
pub async fn run(opts: LiveOptions) -> Result<RunStats> {
    let mut sensor = LiveSensor::start(opts)?;
    sensor.run_until_signal().await?;
    Ok(sensor.shutdown())
}

/// The running sensor: its programs, the ring buffer it polls, and the
/// per-event pipeline.
struct LiveSensor {
    /// Keeps the programs attached; dropping it detaches them.
    programs: KernelPrograms,
    ring: AsyncFd<RingBuf<MapData>>,
    pipeline: Pipeline,
    metrics: Arc<Metrics>,
    sigterm: Signal,
    sigint: Signal,
    batch_ms: u64,
    last_lost: LostCounts,
    /// The file prefilter's verdict counters (`None`: not loaded, every
    /// file record passes).
    file_filter: Option<crate::kernel::file_filter::FileFilter>,
}

impl LiveSensor {
    /// Binds the metrics endpoint, loads and attaches the programs, seeds
    /// the process table, opens the outputs, installs the signal handlers,
    /// and says `sensor: ready`. Every failure here is fatal and explained.
    fn start(opts: LiveOptions) -> Result<LiveSensor> {
        // What this host offers, probed once; then name a missing
        // capability before anything fails on it.
        let host = HostFeatures::probe();
        crate::service::privileges::check(&crate::service::privileges::Environment::of(&host))?;
        let rules = opts.rules;
        let settings = opts.settings;
        let policy = opts.policy;
        let metrics = Metrics::new(
            rules
                .rules()
                .iter()
                .map(|r| (r.meta.rule_id.clone(), r.meta.name.clone()))
                .chain(
                    rules
                        .sequences()
                        .iter()
                        .map(|r| (r.meta.rule_id.clone(), r.meta.name.clone())),
                ),
        );
        metrics.rule_set.set_active(&opts.active);
        // Bind before loading anything: a taken port is a configuration error
        // the user should see at once.
        let listener = match settings.metrics_addr {
            Some(addr) => Some(
                http::bind(addr).with_context(|| format!("binding the metrics endpoint {addr}"))?,
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
        let net_prefilter = crate::network::prefilter::NetPrefilter::from_rules(&rules);
        let mut programs = programs::load(
            object,
            &LoadOptions {
                ring_buffer_bytes: settings.ring_buffer_mib * 1024 * 1024,
                // A wake-up per 64 KiB (or per ring/8 on small rings); the
                // batch timer picks up whatever is under the threshold.
                wakeup_bytes: if settings.batch_ms == 0 {
                    0
                } else {
                    (u64::from(settings.ring_buffer_mib) * 1024 * 1024 / 8).min(64 * 1024)
                },
                btf_path: opts.btf.clone(),
                cgroup_v1_ssid: cgroup_mode.v1_ssid(),
                cgroup_v1_secondary_ssid: cgroup_mode.secondary_v1_ssid(),
                network: net_prefilter.want(),
                network_by_name: if settings.file_prefilter {
                    net_prefilter.by_name()
                } else {
                    0
                },
            },
            &host,
        )?;
        eprintln!("sensor: {}", programs.file_mechanism.describe());
        eprintln!("sensor: {}", programs.net_mechanism.describe());
        eprintln!(
            "sensor: {}",
            crate::rules::sources::summary(
                &rules,
                &crate::rules::sources::Availability::of(
                    &programs.file_mechanism,
                    &programs.net_mechanism
                ),
            )
        );
        let prefilter = if settings.file_prefilter {
            crate::rules::prefilter::FilePrefilter::from_rules(&rules)
        } else {
            crate::rules::prefilter::FilePrefilter::off()
        };
        eprintln!("sensor: {}", prefilter.summary());
        let mut tables = prefilter.tables();
        if programs.net_counters.is_some() {
            if settings.file_prefilter {
                eprintln!("sensor: {}", net_prefilter.summary());
                for (atom, bits) in net_prefilter.proc_bits() {
                    tables.add_proc(atom, bits);
                }
            } else {
                eprintln!("sensor: network prefilter: off, every event of a wanted action is sent");
            }
        }
        let file_filter = match programs.install_file_prefilter(&tables) {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!(
                    "sensor: warning: file prefilter not loaded, every file event passes: {e}"
                );
                None
            }
        };
        eprintln!(
            "sensor: kernel {}: attached {}{}",
            host.kernel_release,
            programs.attached.join(", "),
            if programs.mounted_tracefs {
                " (mounted tracefs at /sys/kernel/tracing)"
            } else {
                ""
            }
        );
        if log::log_enabled!(log::Level::Debug) {
            spawn_kernel_log(&mut programs);
        }
        // SAFETY: the ring buffer owns its map fd for as long as the
        // `AsyncFd` owns the ring buffer, and `as_raw_fd` always returns
        // that one fd; nothing swaps the ring for another.
        let ring =
            unsafe { AsyncFd::register_with_interest(programs.take_events()?, Interest::READABLE) }
                .map_err(|e| anyhow::anyhow!("polling the ring buffer: {e}"))?;

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
        if let Some(root) = &settings.runtime_root {
            // Container and pod metadata, read on a thread of its own.
            let paths = crate::context::runtime_meta::RuntimePaths::new(root);
            let resolver = crate::context::runtime_meta::MetaResolver::spawn(
                paths,
                crate::context::runtime_meta::DEFAULT_CAPACITY,
            )
            .context("starting the runtime metadata worker")?;
            enricher.set_runtime_meta(resolver);
        }
        if let Some(r) = cgroup_mode.secondary_resolver() {
            enricher.set_v1_fallback(r);
        }

        let output = OutputOptions {
            rotation: (settings.rotate_mib > 0).then_some(Rotation {
                max_bytes: settings.rotate_mib * 1024 * 1024,
                keep: settings.rotate_keep,
            }),
            mode: settings.output_mode,
        };
        let alerts_target = settings.alerts_target();
        // Outputs are written on threads of their own (output::background):
        // a slow disk or reader never stalls the per-event loop.
        let alerts = AlertWriter::with_lines(
            alerts_target
                .open_with(output)
                .and_then(|out| JsonLines::background("alerts", out))
                .with_context(|| format!("opening alerts output {}", alerts_target.describe()))?,
        )
        .with_policy(policy);
        let events_target = settings.events_target();
        let events = match &events_target {
            Some(t) => Some(
                t.open_with(output)
                    .and_then(|out| JsonLines::background("events", out))
                    .with_context(|| format!("opening events output {}", t.describe()))?,
            ),
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
            http::spawn(listener, metrics.clone()).context("starting the metrics endpoint")?;
        }
        // Handlers before `ready`: a SIGTERM right after it must mean a
        // clean shutdown, not the default action.
        let sigterm = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
        let sigint = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
        metrics.set_table(&table.stats());
        metrics.heartbeat();
        metrics.set_ready();
        eprintln!("sensor: ready");
        Ok(LiveSensor {
            programs,
            ring,
            pipeline: Pipeline {
                sequences: LiveSequences::new(&rules),
                rules,
                table,
                enricher,
                alerts,
                events,
                lifecycle: settings.lifecycle_events,
                stats: RunStats::default(),
                metrics: metrics.clone(),
                args: ArgsAssembler::default(),
            },
            metrics,
            sigterm,
            sigint,
            batch_ms: settings.batch_ms,
            last_lost: LostCounts::default(),
            file_filter,
        })
    }

    /// Reads, enriches, evaluates and writes until SIGTERM or SIGINT.
    async fn run_until_signal(&mut self) -> Result<()> {
        let mut counters = tokio::time::interval(Duration::from_secs(1));
        let mut batch = tokio::time::interval(Duration::from_millis(self.batch_ms.max(1)));
        batch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let batching = self.batch_ms > 0;
        loop {
            tokio::select! {
                guard = self.ring.readable_mut() => {
                    let mut guard = guard.context("ring buffer poll")?;
                    self.pipeline.drain(guard.get_inner_mut());
                    guard.clear_ready();
                }
                _ = batch.tick(), if batching => {
                    self.pipeline.drain(self.ring.get_mut());
                }
                _ = counters.tick() => self.report_counters(),
                _ = self.sigterm.recv() => return Ok(()),
                _ = self.sigint.recv() => return Ok(()),
            }
        }
    }

    /// Lost and dropped kernel records and the gauges, once a second.
    fn report_counters(&mut self) {
        report_lost(&self.programs, &mut self.last_lost, &self.metrics);
        if let Some(f) = &self.file_filter {
            match f.counts() {
                Ok(c) => {
                    self.metrics.set_file_prefilter(&c);
                    self.pipeline.stats.file_prefilter = c;
                }
                Err(e) => eprintln!("sensor: warning: cannot read file prefilter counters: {e}"),
            }
        }
        if let Some(n) = &self.programs.net_counters {
            match n.counts() {
                Ok(c) => {
                    self.metrics.set_net_prefilter(&c);
                    self.pipeline.stats.net_prefilter = c;
                }
                Err(e) => eprintln!("sensor: warning: cannot read network prefilter counters: {e}"),
            }
        }
        report_drops(&self.programs, &mut self.pipeline.stats.kernel_drops);
        // Suppression windows that ended are written with their counts.
        let _ = self
            .pipeline
            .alerts
            .close_suppression_windows(crate::rules::suppression::wall_clock_ms());
        self.pipeline.sequence_time(false);
        self.pipeline.publish_gauges();
    }

    /// Drains what is left (at most 2 s), flushes the outputs, detaches
    /// the programs and returns the run's counters.
    fn shutdown(mut self) -> RunStats {
        // A second signal during shutdown exits at once: back to the default
        // action (terminate), which needs no cooperation from this thread.
        // SAFETY: resetting a signal disposition to SIG_DFL is always valid;
        // rustix has no signal-disposition call.
        unsafe {
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
            libc::signal(libc::SIGINT, libc::SIG_DFL);
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.pipeline.drain(self.ring.get_mut()) > 0 && Instant::now() < deadline {}
        self.pipeline.sequence_time(true);
        self.report_counters();
        let p = &mut self.pipeline;
        p.stats.lost = self.last_lost;
        if let Some(n) = &self.programs.net_counters {
            p.stats.net_untracked = n.untracked().unwrap_or(0);
        }
        p.stats.orphaned_args_chunks = p.args.orphaned;
        // Every line written (the writer threads finished) before the
        // error counts are read.
        p.alerts.close();
        if let Some(e) = p.events.as_mut() {
            e.close();
        }
        p.stats.output_errors = p.alerts.errors() + p.events.as_ref().map_or(0, |e| e.errors());
        let stats = std::mem::take(&mut p.stats);
        drop(self.ring);
        drop(self.programs); // detaches
        stats
    }
}

/// Forwards the kernel programs' diagnostics (aya-log) to the `log` crate,
/// on a task of its own; only with debug logging on (`RUST_LOG=debug`), so a
/// normal run pays nothing for it.
fn spawn_kernel_log(programs: &mut KernelPrograms) {
    let Some(logger) = programs.kernel_logger() else {
        return;
    };
    // SAFETY: the logger owns its ring-buffer fd for as long as the
    // `AsyncFd` owns the logger, and always reports that one fd.
    let Ok(mut logger) = (unsafe { AsyncFd::register_with_interest(logger, Interest::READABLE) })
    else {
        log::debug!("cannot poll the kernel log channel");
        return;
    };
    tokio::spawn(async move {
        while let Ok(mut guard) = logger.readable_mut().await {
            guard.get_inner_mut().flush();
            guard.clear_ready();
        }
    });
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
            metrics.set_lost(&now);
            eprintln!(
                "sensor: warning: ring buffer full, records lost since start: {} (raise --ring-buffer-mib)",
                now.describe()
            );
            *last = now;
        }
        Ok(_) => {}
        Err(e) => eprintln!("sensor: warning: cannot read lost-record counters: {e}"),
    }
}

/// The per-event path: everything an event goes through, in order.
struct Pipeline {
    rules: RuleSet,
    table: ProcessTable,
    enricher: Enricher,
    alerts: AlertWriter,
    events: Option<JsonLines>,
    lifecycle: bool,
    stats: RunStats,
    metrics: Arc<Metrics>,
    /// Joins argv continuation records to their exec.
    args: ArgsAssembler,
    /// Sequence rules (every event goes through them), if any.
    sequences: Option<LiveSequences<crate::ecs::EcsEvent>>,
}

impl Pipeline {
    /// Figures kept outside the metrics (the table's, the resolver's, the
    /// writers' error counts), published once a second (not per event).
    fn publish_gauges(&mut self) {
        if let Some(seq) = &self.sequences {
            let (full, late) = seq.reorder_counts();
            self.stats.sequences = seq.stats();
            self.metrics
                .set_sequences(&self.stats.sequences, full, late);
        }
        let m = &self.metrics;
        m.set_table(&self.table.stats());
        if let Some(r) = self.enricher.resolver_stats() {
            m.set_resolver(&r);
        }
        if let Some((r, last_error)) = self.enricher.runtime_meta_stats() {
            m.set_runtime_meta(&r);
            if let Some(e) = last_error {
                eprintln!("sensor: warning: runtime metadata: {e}");
            }
        }
        m.set_output_errors(
            self.alerts.errors(),
            self.events.as_ref().map_or(0, |e| e.errors()),
        );
        m.set_args_orphaned(self.args.orphaned);
        m.rule_set.set_policy(self.alerts.policy());
        m.set_kernel_drops(&self.stats.kernel_drops);
        m.decode_errors
            .inner()
            .store(self.stats.decode_errors, Ordering::Relaxed);
    }

    /// Applies every rule to one event, writes its alerts, and the event
    /// itself when events are written.
    fn evaluate_and_write(&mut self, doc: crate::ecs::EcsEvent) {
        self.evaluate(doc, true);
    }

    /// Applies every rule to one event and writes its alerts; the event
    /// itself only when `write_event` and events are written.
    fn evaluate(&mut self, doc: crate::ecs::EcsEvent, write_event: bool) {
        let started = Instant::now();
        // Only the rules the index names for the event are evaluated;
        // collecting allocates only when a rule matched (rare).
        let mut matched: Vec<&Rule> = Vec::new();
        self.rules.for_each_match(&doc, |r| matched.push(r));
        self.metrics.observe_eval(started.elapsed());
        for rule in matched {
            // A failed write is counted by the writer (output_errors).
            let _ = self.alerts.write_alert_native(&doc, &rule.meta);
            self.stats.alerts += 1;
            self.metrics.add_alert(&rule.meta.rule_id);
        }
        if write_event {
            if let Some(out) = self.events.as_mut() {
                let _ = out.write(&doc);
            }
        }
        // Every event also goes to the sequence rules (moved, not copied).
        self.sequence_event(doc);
    }

    /// Lets sequence rules see time pass (once a second), or releases
    /// everything the reorder window holds (at shutdown).
    fn sequence_time(&mut self, all: bool) {
        let Some(seq) = self.sequences.as_mut() else {
            return;
        };
        let (alerts, stats, metrics) = (&mut self.alerts, &mut self.stats, &self.metrics);
        let mut emit = |rule: &crate::rules::SequenceRule, events: &[&serde_json::Value]| {
            write_sequence(alerts, stats, metrics, rule, events);
        };
        if all {
            seq.release(&self.rules, true, &mut emit);
        } else {
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            seq.tick(&self.rules, now_ms, &mut emit);
        }
        let _ = alerts.flush();
    }

    /// Feeds one event to the sequence rules.
    fn sequence_event(&mut self, doc: crate::ecs::EcsEvent) {
        let Some(seq) = self.sequences.as_mut() else {
            return;
        };
        let (alerts, stats, metrics) = (&mut self.alerts, &mut self.stats, &self.metrics);
        seq.on_event(&self.rules, doc, &mut |rule, events| {
            write_sequence(alerts, stats, metrics, rule, events)
        });
    }

    /// Handles every record waiting in the ring buffer; returns how many.
    fn drain(&mut self, ring: &mut RingBuf<MapData>) -> usize {
        let mut n = 0;
        while let Some(item) = ring.next() {
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

    /// One record handled of the kind at `lost_index`.
    fn count(&mut self, lost_index: u32) {
        self.stats.handled.add(lost_index);
        self.metrics.add_event(lost_index);
    }

    fn handle(&mut self, ev: KernelEvent) {
        match ev {
            KernelEvent::ArgsChunk(chunk) => self.args.push(chunk),
            KernelEvent::Exec(mut exec) => {
                self.count(lost_index::EXEC);
                self.args.complete(&mut exec);
                if exec.args_truncated {
                    self.stats.args_truncated += 1;
                    self.metrics.add_args_truncated();
                }
                let ctx = self.table.on_exec(&exec);
                if let Some(parent) = self.table.parent_became_interactive(&exec, &ctx) {
                    if let Some(kernel) = exec.parent.as_ref() {
                        self.stats.became_interactive += 1;
                        self.metrics.add_became_interactive();
                        let doc = self.enricher.became_interactive_event(
                            &parent,
                            kernel,
                            exec.ktime_ns,
                            exec.cgroup_id,
                            &self.table,
                        );
                        self.evaluate_and_write(doc);
                    }
                }
                let doc = self.enricher.exec_event(&exec, &ctx);
                self.evaluate_and_write(doc);
            }
            KernelEvent::Fork(fork) => {
                self.count(lost_index::FORK);
                self.table.on_fork(&fork);
                if self.lifecycle {
                    if let Some(out) = self.events.as_mut() {
                        if let Some(doc) = self.enricher.fork_event(&fork, &self.table) {
                            let _ = out.write(&doc);
                        }
                    }
                }
            }
            KernelEvent::CgroupMkdir(c) => {
                // Only the walked hierarchies' ids are what records carry.
                if !c.truncated {
                    self.enricher
                        .learn_cgroup(c.root, c.id, &crate::byte_text::to_text(&c.path));
                }
            }
            KernelEvent::Exit(exit) => {
                self.count(lost_index::EXIT);
                // Rules see every end; the event is written with
                // --lifecycle-events.
                if let Some(ended) = self.table.on_exit(&exit) {
                    let doc = self.enricher.end_event_in(&exit, &ended, &self.table);
                    self.evaluate(doc, self.lifecycle);
                }
            }
            KernelEvent::File(file) => {
                self.count(lost_index::FILE);
                let doc = self.enricher.file_event(&file, &self.table);
                self.evaluate_and_write(doc);
            }
            KernelEvent::Net(net) => {
                self.count(lost_index::NET);
                let doc = self.enricher.network_event(&net, &self.table);
                self.evaluate_and_write(doc);
            }
        }
    }
}

/// Writes the alerts of one completed sequence (shell and building blocks).
fn write_sequence(
    alerts: &mut AlertWriter,
    stats: &mut RunStats,
    metrics: &Metrics,
    rule: &crate::rules::SequenceRule,
    events: &[&serde_json::Value],
) {
    // A failed write is counted by the writer (output_errors).
    let _ = alerts.write_sequence(events, &rule.meta);
    stats.alerts += 1;
    metrics.add_alert(&rule.meta.rule_id);
}
