//! What the benchmark reads about its own processes: CPU ticks, memory
//! (through the procfs crate), and the machine's load.

use super::*;

pub(super) fn clk_tck() -> f64 {
    procfs::ticks_per_second() as f64
}

/// utime+stime (clock ticks) of a process, all its threads included
/// (`/proc/<pid>/stat`, parsed by the procfs crate: our own children, whose
/// stat lines the kernel writes).
pub(super) fn proc_ticks(pid: i32) -> Option<u64> {
    let stat = procfs::process::Process::new(pid).ok()?.stat().ok()?;
    Some(stat.utime + stat.stime)
}

pub(super) fn cpu_ticks(pids: &[i32]) -> u64 {
    pids.iter().filter_map(|&p| proc_ticks(p)).sum()
}

pub(super) fn status_kib(pid: i32, key: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kib(&status, key)
}

pub(super) fn parse_status_kib(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let v = l.strip_prefix(key)?.strip_prefix(':')?;
        v.split_whitespace().next()?.parse().ok()
    })
}

pub(super) fn vm_hwm_kib(pid: i32) -> Option<u64> {
    status_kib(pid, "VmHWM")
}

/// The current RSS split as the kernel counts it (anonymous, file-backed,
/// shared memory such as mmapped BPF maps), in MiB.
pub(super) fn rss_breakdown(pid: i32) -> Option<String> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mib = |k| {
        parse_status_kib(&status, k).map_or("?".to_owned(), |v| format!("{:.1}", v as f64 / 1024.0))
    };
    Some(format!(
        "RssAnon {}, RssFile {}, RssShmem {} MiB",
        mib("RssAnon"),
        mib("RssFile"),
        mib("RssShmem")
    ))
}

/// `2026-11-26 09:01 UTC`.
pub(super) fn utc_now() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

pub(super) fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

// ------------------------------------------------------------ child guard
