//! The sensor's own figures, exposed in Prometheus' text format through the
//! `prometheus-client` crate, and the liveness/readiness state the endpoint
//! ([`crate::service::http`]) answers probes from.
//!
//! Every counter the agent keeps is here: events by kind, records lost in
//! the ring buffer and dropped by the kernel programs (by program and
//! reason), argv cut or orphaned, alerts by rule, output errors, decode
//! errors, process-table and container-resolver figures, the endpoint's own
//! closed connections. Hot-path counters are handles cloned once from their
//! family, so counting an event is one relaxed atomic add; figures the
//! kernel or the table keep themselves are copied in once a second.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

use crate::context::cgroup_path::ResolverStats;
use crate::context::process_table::TableStats;
use crate::context::runtime_meta::MetaStats;
use crate::kernel::kind_counts::LostCounts;
use crate::kernel::programs::KernelDrop;

/// Rule evaluation time buckets (seconds), per event.
const EVAL_BUCKETS: [f64; 8] = [1e-7, 2.5e-7, 5e-7, 1e-6, 2.5e-6, 1e-5, 1e-4, 1e-3];

pub(crate) type Labels = Vec<(&'static str, String)>;

/// Label pairs, values escaped for the text format: prometheus-client 0.24
/// writes label values as they are, and a rule name (from a rule file) with
/// a quote or a newline would otherwise break the exposition or forge lines
/// in it.
pub(crate) fn labels(pairs: &[(&'static str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| {
            let escaped = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            (*k, escaped)
        })
        .collect()
}

/// A counter that mirrors a total kept elsewhere (the kernel's per-CPU
/// maps, the table's stats): set, not incremented.
fn set(counter: &Counter, value: u64) {
    counter.inner().store(value, Ordering::Relaxed);
}

/// The per-event rule-evaluation histogram, lock-free: prometheus-client's
/// own `Histogram` takes a write lock per observation, too much on the
/// per-event path; here an observation is three relaxed atomic adds.
#[derive(Debug, Default, Clone)]
struct EvalHistogram(Arc<EvalBuckets>);

#[derive(Debug, Default)]
struct EvalBuckets {
    /// Observations per bucket (not cumulative), the last one `+Inf`.
    counts: [AtomicU64; EVAL_BUCKETS.len() + 1],
    nanos: AtomicU64,
}

impl EvalHistogram {
    fn observe(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let i = EVAL_BUCKETS
            .iter()
            .position(|&bound| secs <= bound)
            .unwrap_or(EVAL_BUCKETS.len());
        self.0.counts[i].fetch_add(1, Ordering::Relaxed);
        self.0.nanos.fetch_add(
            u64::try_from(took.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }
}

impl TypedMetric for EvalHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for EvalHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let counts: Vec<u64> = self
            .0
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let buckets: Vec<(f64, u64)> = EVAL_BUCKETS
            .iter()
            .copied()
            .chain([f64::MAX])
            .zip(counts.iter().copied())
            .collect();
        let sum = self.0.nanos.load(Ordering::Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, counts.iter().sum(), &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// Why the endpoint closed a connection early.
#[derive(Debug, Clone, Copy)]
pub enum HttpClose {
    /// The oldest idle connection, to make room for a new one.
    Evicted,
    /// Too many being answered.
    Rejected,
    /// No request head, or no reader for the response, in time.
    Timeout,
}

/// Every figure the sensor exposes about itself.
pub struct Metrics {
    registry: Registry,
    /// Records handled, by kind (`lost_index`); `None` for the kinds the
    /// registry does not count as handled.
    events: Vec<Option<Counter>>,
    pub decode_errors: Counter,
    lost: Family<Labels, Counter>,
    kernel_drops: Family<Labels, Counter>,
    file_prefilter: Family<Labels, Counter>,
    net_prefilter: Family<Labels, Counter>,
    args_truncated: Counter,
    args_orphaned: Counter,
    became_interactive: Counter,
    alerts: Vec<(String, Counter)>,
    output_errors: Family<Labels, Counter>,
    pub process_table_entries: Gauge,
    table: Family<Labels, Counter>,
    resolver: Family<Labels, Counter>,
    resolver_entries: Gauge,
    runtime_meta: Family<Labels, Counter>,
    runtime_meta_entries: Gauge,
    eval_seconds: EvalHistogram,
    http_closed: Family<Labels, Counter>,
    sequence_dropped: Family<Labels, Counter>,
    sequence_reorder: Family<Labels, Counter>,
    sequences_completed: Counter,
    sequence_pending: Gauge,
    ready_gauge: Gauge,
    /// The active rule set: version, exceptions, suppression.
    pub rule_set: crate::service::rule_metrics::RuleSetMetrics,
    ready: AtomicBool,
    started: Instant,
    /// Milliseconds since `started` at the event loop's last turn.
    heartbeat_ms: AtomicU64,
}

impl Metrics {
    /// `rules`: (rule_id, name) of every loaded rule.
    pub fn new(rules: impl IntoIterator<Item = (String, String)>) -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("sensor");
        let events = Family::<Labels, Counter>::default();
        registry.register("events", "Kernel records handled, by kind", events.clone());
        let events = sensor_common::KINDS
            .iter()
            .map(|k| {
                k.handled
                    .then(|| events.get_or_create(&labels(&[("kind", k.name)])).clone())
            })
            .collect();
        let decode_errors = Counter::default();
        registry.register(
            "decode_errors",
            "Kernel records that could not be decoded",
            decode_errors.clone(),
        );
        let lost = Family::default();
        registry.register(
            "events_lost",
            "Kernel records lost because the ring buffer was full, by kind",
            lost.clone(),
        );
        let kernel_drops = Family::default();
        registry.register(
            "kernel_drops",
            "Records a kernel program gave up on before the ring buffer, by program and reason",
            kernel_drops.clone(),
        );
        let file_prefilter = Family::default();
        registry.register(
            "file_prefilter",
            "File records by operation and prefilter verdict: passed (matched a rule's atom), \
             filtered (matched none: not sent), pass_all (the rules force every record of the \
             operation), unchecked (path incomplete or names as passed: always sent)",
            file_prefilter.clone(),
        );
        let net_prefilter = Family::default();
        registry.register(
            "net_prefilter",
            "Network events by action and prefilter verdict: passed (the process's name passes              it), filtered (passes no rule wanting it: not sent), pass_all (not decided by name:              sent)",
            net_prefilter.clone(),
        );
        let args_truncated = Counter::default();
        registry.register(
            "args_truncated",
            "Execs whose argv could not be captured whole",
            args_truncated.clone(),
        );
        let args_orphaned = Counter::default();
        registry.register(
            "args_chunks_orphaned",
            "Argv continuation records dropped because their exec record never came",
            args_orphaned.clone(),
        );
        let became_interactive = Counter::default();
        registry.register(
            "became_interactive",
            "Processes that took a terminal after they started (became_interactive events)",
            became_interactive.clone(),
        );
        let sequence_dropped = Family::default();
        registry.register(
            "sequence_dropped",
            "Partial sequences of sequence rules dropped, by reason (maxspan, until, missing_event, expired, evicted: the per-rule cap was reached)",
            sequence_dropped.clone(),
        );
        let sequence_reorder = Family::default();
        registry.register(
            "sequence_reorder",
            "Events fed to sequence rules out of the reorder window's order: released early (full) or arriving after it (late)",
            sequence_reorder.clone(),
        );
        let sequences_completed = Counter::default();
        registry.register(
            "sequences_completed",
            "Sequences completed by sequence rules",
            sequences_completed.clone(),
        );
        let sequence_pending = Gauge::default();
        registry.register(
            "sequence_pending",
            "Partial sequences held by sequence rules",
            sequence_pending.clone(),
        );
        let alert_family = Family::<Labels, Counter>::default();
        registry.register("alerts", "Alerts raised, by rule", alert_family.clone());
        let alerts = rules
            .into_iter()
            .map(|(id, name)| {
                let c = alert_family
                    .get_or_create(&labels(&[("rule_id", &id), ("rule_name", &name)]))
                    .clone();
                (id, c)
            })
            .collect();
        let output_errors = Family::default();
        registry.register(
            "output_errors",
            "Failed writes or flushes, by output",
            output_errors.clone(),
        );
        let process_table_entries = Gauge::default();
        registry.register(
            "process_table_entries",
            "Processes in the process table",
            process_table_entries.clone(),
        );
        let table = Family::default();
        registry.register(
            "process_table",
            "Process table operations: seeded, evicted (LRU), gc_runs, gc_removed, \
             proc_fallback_hits/misses, replaced_stale, exec_parent_unknown, fork_unknown, \
             exit_unknown",
            table.clone(),
        );
        let resolver = Family::default();
        registry.register(
            "container_resolver",
            "Cgroup resolver work: walks of the hierarchy, lookups put off by the walk rate limit",
            resolver.clone(),
        );
        let resolver_entries = Gauge::default();
        registry.register(
            "container_resolver_entries",
            "Cgroups the resolver knows",
            resolver_entries.clone(),
        );
        let runtime_meta = Family::default();
        registry.register(
            "runtime_metadata",
            "Container metadata lookups in the runtimes' files: requested, found, not_found, \
             too_large, not_regular, read_error, parse_error (each refused or failed file), \
             queue_full (dropped, asked again later), evicted (cache at capacity), expired \
             (idle entries dropped)",
            runtime_meta.clone(),
        );
        let runtime_meta_entries = Gauge::default();
        registry.register(
            "runtime_metadata_entries",
            "Containers whose runtime metadata is cached",
            runtime_meta_entries.clone(),
        );
        let eval_seconds = EvalHistogram::default();
        registry.register(
            "rule_eval_seconds",
            "Time to evaluate every loaded rule on one event",
            eval_seconds.clone(),
        );
        let http_closed = Family::default();
        registry.register(
            "http_connections_closed",
            "Endpoint connections closed early: evicted (the oldest idle one, to make room), \
             rejected (too many being answered), timeout (no request head or no reader in time)",
            http_closed.clone(),
        );
        let ready_gauge = Gauge::default();
        registry.register(
            "ready",
            "1 once programs are attached and the process table is seeded",
            ready_gauge.clone(),
        );
        let rule_set = crate::service::rule_metrics::RuleSetMetrics::register(&mut registry);
        let metrics = Metrics {
            rule_set,
            registry,
            events,
            decode_errors,
            lost,
            kernel_drops,
            file_prefilter,
            net_prefilter,
            args_truncated,
            args_orphaned,
            became_interactive,
            alerts,
            output_errors,
            process_table_entries,
            table,
            resolver,
            resolver_entries,
            runtime_meta,
            runtime_meta_entries,
            eval_seconds,
            http_closed,
            sequence_dropped,
            sequence_reorder,
            sequences_completed,
            sequence_pending,
            ready_gauge,
            ready: AtomicBool::new(false),
            started: Instant::now(),
            heartbeat_ms: AtomicU64::new(0),
        };
        // Every series exists from the start, at zero: a scrape before the
        // first loss still shows `..._lost_total{kind="exec"} 0`.
        metrics.set_lost(&LostCounts::default());
        metrics.set_output_errors(0, 0);
        metrics.set_table(&TableStats::default());
        metrics.set_resolver(&ResolverStats::default());
        metrics.set_runtime_meta(&MetaStats::default());
        Arc::new(metrics)
    }

    /// Counts an alert of `rule_id` (alerts are rare: a scan is fine).
    pub fn add_alert(&self, rule_id: &str) {
        if let Some((_, n)) = self.alerts.iter().find(|(id, _)| id == rule_id) {
            n.inc();
        }
    }

    /// Counts one record handled of the kind at `lost_index`.
    pub fn add_event(&self, lost_index: u32) {
        if let Some(Some(c)) = self.events.get(lost_index as usize) {
            c.inc();
        }
    }

    /// Records one event's rule evaluation time.
    pub fn observe_eval(&self, took: Duration) {
        self.eval_seconds.observe(took);
    }

    pub fn add_args_truncated(&self) {
        self.args_truncated.inc();
    }

    pub fn add_became_interactive(&self) {
        self.became_interactive.inc();
    }

    pub fn add_http_closed(&self, why: HttpClose) {
        let reason = match why {
            HttpClose::Evicted => "evicted",
            HttpClose::Rejected => "rejected",
            HttpClose::Timeout => "timeout",
        };
        self.http_closed
            .get_or_create(&labels(&[("reason", reason)]))
            .inc();
    }

    /// Ring-buffer losses, as the kernel counts them.
    pub fn set_lost(&self, lost: &LostCounts) {
        for (kind, n) in lost.iter() {
            set(&self.lost.get_or_create(&labels(&[("kind", kind.name)])), n);
        }
    }

    /// The file prefilter's verdicts, as the kernel counts them.
    pub fn set_file_prefilter(&self, counts: &[crate::kernel::file_filter::PrefilterCount]) {
        for c in counts {
            let l = labels(&[("op", c.op), ("verdict", c.verdict)]);
            set(&self.file_prefilter.get_or_create(&l), c.count);
        }
    }

    /// The network prefilter's verdicts, as the kernel counts them.
    pub fn set_net_prefilter(&self, counts: &[crate::kernel::file_filter::PrefilterCount]) {
        for c in counts {
            let l = labels(&[("action", c.op), ("verdict", c.verdict)]);
            set(&self.net_prefilter.get_or_create(&l), c.count);
        }
    }

    /// Records the kernel programs dropped, as they count them.
    pub fn set_kernel_drops(&self, drops: &[KernelDrop]) {
        for d in drops {
            let l = labels(&[("program", d.program), ("reason", d.reason)]);
            set(&self.kernel_drops.get_or_create(&l), d.count);
        }
    }

    /// The sequence rules' counters (summed over rules) and the live
    /// reorder window's early (`full`) and `late` events.
    pub fn set_sequences(&self, st: &crate::eql::SequenceStats, full: u64, late: u64) {
        set(&self.sequences_completed, st.completed);
        self.sequence_pending
            .set(i64::try_from(st.pending).unwrap_or(i64::MAX));
        for (reason, n) in [
            ("maxspan", st.rejected_maxspan),
            ("until", st.dropped_until),
            ("missing_event", st.dropped_missing),
            ("expired", st.expired),
            ("evicted", st.evicted),
        ] {
            set(
                &self
                    .sequence_dropped
                    .get_or_create(&labels(&[("reason", reason)])),
                n,
            );
        }
        for (reason, n) in [("full", full), ("late", late)] {
            set(
                &self
                    .sequence_reorder
                    .get_or_create(&labels(&[("reason", reason)])),
                n,
            );
        }
    }

    pub fn set_args_orphaned(&self, n: u64) {
        set(&self.args_orphaned, n);
    }

    pub fn set_output_errors(&self, alerts: u64, events: u64) {
        for (output, n) in [("alerts", alerts), ("events", events)] {
            set(
                &self
                    .output_errors
                    .get_or_create(&labels(&[("output", output)])),
                n,
            );
        }
    }

    pub fn set_table(&self, t: &TableStats) {
        self.process_table_entries
            .set(i64::try_from(t.entries).unwrap_or(i64::MAX));
        for (op, n) in [
            ("seeded", t.seeded as u64),
            ("seed_skipped", t.seed_skipped as u64),
            ("evicted", t.evicted),
            ("gc_runs", t.gc_runs),
            ("gc_removed", t.gc_removed),
            ("proc_fallback_hits", t.proc_fallback_hits),
            ("proc_fallback_misses", t.proc_fallback_misses),
            ("replaced_stale", t.replaced_stale),
            ("exec_parent_unknown", t.exec_parent_unknown),
            ("fork_unknown", t.fork_unknown),
            ("exit_unknown", t.exit_unknown),
        ] {
            set(&self.table.get_or_create(&labels(&[("op", op)])), n);
        }
    }

    pub fn set_resolver(&self, r: &ResolverStats) {
        self.resolver_entries
            .set(i64::try_from(r.entries).unwrap_or(i64::MAX));
        for (what, n) in [("walks", r.walks), ("rate_limited", r.rate_limited)] {
            set(&self.resolver.get_or_create(&labels(&[("what", what)])), n);
        }
    }

    pub fn set_runtime_meta(&self, m: &MetaStats) {
        self.runtime_meta_entries
            .set(i64::try_from(m.entries).unwrap_or(i64::MAX));
        for (what, n) in [
            ("requested", m.requested),
            ("found", m.found),
            ("not_found", m.not_found),
            ("too_large", m.too_large),
            ("not_regular", m.not_regular),
            ("read_error", m.read_errors),
            ("parse_error", m.parse_errors),
            ("queue_full", m.queue_full),
            ("evicted", m.evicted),
            ("expired", m.expired),
        ] {
            set(
                &self.runtime_meta.get_or_create(&labels(&[("what", what)])),
                n,
            );
        }
    }

    /// Programs attached and the process table seeded.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
        self.ready_gauge.set(1);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// The event loop calls this every turn (at least once a second).
    pub fn heartbeat(&self) {
        self.heartbeat_ms
            .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Live when the event loop turned within the last `max_age`.
    pub fn is_live(&self, max_age: Duration) -> bool {
        let last = Duration::from_millis(self.heartbeat_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last) <= max_age
    }

    /// The Prometheus text exposition (OpenMetrics text, which Prometheus
    /// reads).
    pub fn render(&self) -> String {
        let mut s = String::with_capacity(4096);
        // Writing into a String cannot fail.
        let _ = encode(&mut s, &self.registry);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_escaped_labels() {
        let m = Metrics::new([("r-1".to_owned(), "Say \"hi\"\n# forged 1".to_owned())]);
        for _ in 0..3 {
            m.add_event(sensor_common::lost_index::EXEC);
        }
        m.add_alert("r-1");
        m.add_alert("r-unknown"); // not loaded: ignored
        m.observe_eval(Duration::from_nanos(300));
        let mut lost = [0; sensor_common::KINDS.len()];
        lost[sensor_common::lost_index::CGROUP_MKDIR as usize] = 2;
        lost[sensor_common::lost_index::ARGS_CHUNK as usize] = 5;
        m.set_lost(&LostCounts::from_counts(lost));
        m.set_kernel_drops(&[KernelDrop {
            program: "fork",
            reason: "read_failed",
            count: 4,
        }]);
        m.set_table(&TableStats {
            entries: 7,
            evicted: 9,
            ..TableStats::default()
        });
        m.add_http_closed(HttpClose::Evicted);
        let text = m.render();
        for line in [
            "sensor_events_total{kind=\"exec\"} 3\n",
            "sensor_alerts_total{rule_id=\"r-1\",rule_name=\"Say \\\"hi\\\"\\n# forged 1\"} 1\n",
            "sensor_rule_eval_seconds_bucket{le=\"2.5e-7\"} 0\n",
            "sensor_rule_eval_seconds_bucket{le=\"5e-7\"} 1\n",
            "sensor_rule_eval_seconds_bucket{le=\"+Inf\"} 1\n",
            "sensor_rule_eval_seconds_count 1\n",
            "sensor_events_lost_total{kind=\"cgroup_mkdir\"} 2\n",
            "sensor_events_lost_total{kind=\"args_chunk\"} 5\n",
            "sensor_kernel_drops_total{program=\"fork\",reason=\"read_failed\"} 4\n",
            "sensor_process_table_entries 7\n",
            "sensor_process_table_total{op=\"evicted\"} 9\n",
            "sensor_http_connections_closed_total{reason=\"evicted\"} 1\n",
            "sensor_ready 0\n",
        ] {
            assert!(text.contains(line), "{line:?} missing from:\n{text}");
        }
        m.set_ready();
        assert!(m.render().contains("sensor_ready 1\n"));
    }
}
