//! `cargo xtask bench --conn-storm N [--rules SET ...]`: what network
//! events cost. Every round runs, for each configuration in rotating
//! order (bare, then one sensor per `--rules` set, `seed` when none is
//! given), one storm of N TCP connections from this process to a server
//! thread of its own on 127.0.0.1 (each accepted, answered with one byte
//! and closed; `--workers` client threads). It reads the storm's wall
//! time, the sensor's CPU (utime+stime from /proc, storm start to idle),
//! the network records it lost, and the network prefilter's verdicts from
//! its summary. Figures are medians over the rounds; the wall overhead
//! compares each set with bare (#24's target: at most 5 % with the whole
//! catalogue, 0 lost).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::catalogue::RuleSetArg;
use super::*;

const CONN_BEGIN_MARKER: &str = "<!-- conn-storm:begin -->";
const CONN_END_MARKER: &str = "<!-- conn-storm:end -->";
const CONN_HEADING: &str = "## Connection storm (cargo xtask bench --conn-storm N)";

/// One round of one configuration.
#[derive(Default, Clone)]
struct ConnSample {
    wall_s: f64,
    cpu_s: f64,
    lost: u64,
    /// (passed + pass_all, filtered) over every action.
    sent: u64,
    filtered: u64,
}

/// A server on 127.0.0.1 that answers each connection with one byte and
/// closes it, until dropped.
struct Server {
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start() -> Result<Server> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                if let Ok(mut c) = conn {
                    let _ = c.write_all(b"x");
                }
            }
        });
        Ok(Server {
            addr,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr); // wakes the accept loop
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `n` connections from `workers` threads; the wall time.
fn storm(addr: std::net::SocketAddr, n: u64, workers: usize) -> Result<f64> {
    let start = Instant::now();
    let per = n / workers as u64;
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            let count = per + u64::from((w as u64) < n % workers as u64);
            std::thread::spawn(move || -> std::io::Result<()> {
                let mut byte = [0u8; 1];
                for _ in 0..count {
                    let mut c = TcpStream::connect(addr)?;
                    c.read_exact(&mut byte)?;
                }
                Ok(())
            })
        })
        .collect();
    for h in handles {
        h.join()
            .map_err(|_| anyhow!("a storm thread panicked"))?
            .context("a connection of the storm")?;
    }
    Ok(start.elapsed().as_secs_f64())
}

/// The sensor's `net_prefilter` verdicts from its summary line: (sent,
/// filtered).
fn verdicts(seen: &[String]) -> (u64, u64) {
    let Some(v) = seen
        .iter()
        .find_map(|l| l.strip_prefix("sensor: summary "))
        .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
    else {
        return (0, 0);
    };
    let mut out = (0, 0);
    for c in v["net_prefilter"].as_array().into_iter().flatten() {
        let n = c["count"].as_u64().unwrap_or(0);
        if c["verdict"] == "filtered" {
            out.1 += n;
        } else {
            out.0 += n;
        }
    }
    out
}

fn round(
    rules: Option<&RuleSetArg>,
    bin: &Path,
    n: u64,
    workers: usize,
    s: &mut ConnSample,
) -> Result<()> {
    let server = Server::start()?;
    let Some(rules) = rules else {
        s.wall_s = storm(server.addr, n, workers)?;
        return Ok(());
    };
    let mut sensor = SensorRun::start_with(bin, &rules.sensor_args())?;
    nap(Duration::from_millis(500))?;
    let pids = vec![sensor.child.pid()];
    let cpu0 = cpu_ticks(&pids);
    s.wall_s = storm(server.addr, n, workers)?;
    let cpu1 = wait_idle(&pids)?;
    let summary = sensor.stop()?;
    s.cpu_s = cpu1.saturating_sub(cpu0) as f64 / clk_tck();
    s.lost = summary.get("lost_net").copied().unwrap_or(0);
    (s.sent, s.filtered) = verdicts(&sensor.stderr.seen);
    Ok(())
}

pub(super) fn conn_storm(args: &BenchArgs, n: u64, workers: usize, bin: &Path) -> Result<()> {
    // Bare, then one sensor per `--rules` set (the catalogue bench's form).
    let mut sets: Vec<(String, Option<RuleSetArg>)> = vec![("bare".to_owned(), None)];
    let given: Vec<String> = if args.rules.is_empty() {
        vec!["seed".to_owned()]
    } else {
        args.rules.clone()
    };
    for v in &given {
        let set = RuleSetArg::parse(v);
        sets.push((set.label.clone(), Some(set)));
    }
    let rounds = args.rounds.max(1);
    say(&format!(
        "connection storm: {n} connections to 127.0.0.1 from {workers} threads, {rounds} rounds, \
         configurations: {}",
        sets.iter()
            .map(|s| s.0.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    // Warm-up.
    let server = Server::start()?;
    storm(server.addr, (n / 10).max(100), workers)?;
    drop(server);
    let mut samples: Vec<Vec<ConnSample>> = vec![Vec::new(); sets.len()];
    for r in 0..rounds {
        let mut order: Vec<usize> = (0..sets.len()).collect();
        order.rotate_left(r % sets.len());
        for i in order {
            let (label, rules) = &sets[i];
            let mut s = ConnSample::default();
            round(rules.as_ref(), bin, n, workers, &mut s)
                .with_context(|| format!("connection storm with {label}"))?;
            say(&format!(
                "round {}/{rounds} {label}: {:.2} s wall, {:.2} s agent CPU, {} lost, {} sent, {} filtered",
                r + 1,
                s.wall_s,
                s.cpu_s,
                s.lost,
                s.sent,
                s.filtered
            ));
            samples[i].push(s);
            check_stop()?;
        }
    }
    let md = markdown(args, n, workers, &sets, &samples);
    println!("{md}");
    if args.write {
        write_mode_section(&md, [CONN_BEGIN_MARKER, CONN_END_MARKER], CONN_HEADING)?;
    }
    Ok(())
}

fn markdown(
    args: &BenchArgs,
    n: u64,
    workers: usize,
    sets: &[(String, Option<RuleSetArg>)],
    samples: &[Vec<ConnSample>],
) -> String {
    let med = |i: usize, f: &dyn Fn(&ConnSample) -> f64| {
        median(&samples[i].iter().map(f).collect::<Vec<_>>())
    };
    let fmt = |x: Option<f64>, d: usize| x.map_or("–".into(), |x| format!("{x:.d$}"));
    let bare = med(0, &|s| s.wall_s);
    let mut md = String::new();
    let _ = writeln!(
        md,
        "{}\n\n`cargo xtask bench --conn-storm {n} --rounds {} {}` — {} rounds, interleaved (the order rotates each round): {n} TCP connections to a server thread on 127.0.0.1 from {workers} client threads, each accepted, answered with one byte and closed; the sensor runs with `--alerts /dev/null`. Agent CPU is utime+stime of the sensor from the storm's start until it is idle; \"sent\" and \"filtered\" are the network prefilter's verdicts (every action) from the sensor's summary. Medians over the rounds.\n",
        run_header(),
        args.rounds,
        args.rules
            .iter()
            .map(|r| format!("--rules '{r}'"))
            .collect::<Vec<_>>()
            .join(" "),
        args.rounds.max(1),
    );
    md.push_str("| configuration | wall (s) | wall vs bare | agent CPU (s) | agent CPU per connection (µs) | network records lost | events sent | filtered in the kernel |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for (i, (label, rules)) in sets.iter().enumerate() {
        let wall = med(i, &|s| s.wall_s);
        let cpu = med(i, &|s| s.cpu_s);
        let vs = match (wall, bare) {
            (Some(w), Some(b)) if b > 0.0 => format!("{:+.1} %", 100.0 * (w / b - 1.0)),
            _ => "–".into(),
        };
        let lost = samples[i].iter().map(|s| s.lost).max().unwrap_or(0);
        let sent = med(i, &|s| s.sent as f64);
        let filtered = med(i, &|s| s.filtered as f64);
        let na = rules.is_none();
        let _ = writeln!(
            md,
            "| {label} | {} | {vs} | {} | {} | {} | {} | {} |",
            fmt(wall, 2),
            if na { "–".into() } else { fmt(cpu, 2) },
            if na {
                "–".into()
            } else {
                fmt(cpu.map(|c| 1e6 * c / n as f64), 1)
            },
            if na {
                "–".into()
            } else {
                format!("{lost} (max)")
            },
            if na { "–".into() } else { fmt(sent, 0) },
            if na { "–".into() } else { fmt(filtered, 0) },
        );
    }
    md
}
