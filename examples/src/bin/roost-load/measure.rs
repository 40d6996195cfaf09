//! Clocks, counters and pacing shared by the scenarios.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::bail;
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;
use tokio::time::Instant as TokioInstant;

use crate::wire::{Conn, Writer};
use crate::{Args, Outcome};

/// Microseconds since the process's first call: the clock of every marker,
/// shared by senders and receivers because both live in this process.
pub(crate) fn now_us() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// The measured window, in `now_us` time; set once connections are ready.
pub(crate) struct Window {
    pub(crate) start: AtomicU64,
    pub(crate) end: AtomicU64,
}

impl Window {
    pub(crate) fn contains(&self, t: u64) -> bool {
        t >= self.start.load(Ordering::Relaxed) && t < self.end.load(Ordering::Relaxed)
    }
}

/// What one reader saw in the measured window.
#[derive(Default)]
pub(crate) struct Stats {
    pub(crate) count: u64,
    pub(crate) errors: u64,
    pub(crate) lat_us: Vec<u32>,
    pub(crate) first_error: Option<String>,
}

impl Stats {
    pub(crate) fn merge(&mut self, other: Stats) {
        self.count += other.count;
        self.errors += other.errors;
        self.lat_us.extend(other.lat_us);
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// Records a latency sample for an event received now, if inside the window.
pub(crate) fn record(win: &Window, stats: &mut Stats, sent: u64) -> bool {
    let now = now_us();
    if win.contains(now) {
        stats.count += 1;
        stats
            .lat_us
            .push(now.saturating_sub(sent).min(u64::from(u32::MAX)) as u32);
        true
    } else {
        false
    }
}

/// CPU seconds (user + system) a process has used so far, from /proc.
pub(crate) fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat(5), counted from after the command name.
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0) // USER_HZ is 100 on Linux.
}

/// Resident memory of a process now, in KiB (`VmRSS` of /proc/PID/status).
pub(crate) fn rss_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU seconds of each of `pids` now.
pub(crate) fn cpu_snapshot(pids: &[(String, String)]) -> Vec<Option<f64>> {
    pids.iter().map(|(_, p)| cpu_seconds(p)).collect()
}

/// How a sender decides when to send: keep `window` outstanding, or a fixed rate.
#[derive(Clone, Copy)]
pub(crate) enum Pace {
    Window,
    Rate(f64),
}

/// Sends `make(buf)` stanzas until `end`, paced by `pace`; each stanza takes
/// `cost` permits of `sem`, which the reader side gives back as replies come in.
pub(crate) async fn send_loop(
    mut w: Writer,
    sem: Arc<Semaphore>,
    cost: u32,
    pace: Pace,
    end: TokioInstant,
    mut make: impl FnMut(&mut Vec<u8>),
) -> anyhow::Result<()> {
    let mut buf = Vec::with_capacity(65536);
    let t0 = TokioInstant::now();
    let mut sent: f64 = 0.0;
    loop {
        buf.clear();
        match pace {
            Pace::Window => {
                let Ok(Ok(p)) = tokio::time::timeout_at(end, sem.acquire_many(cost)).await else {
                    break;
                };
                p.forget();
                make(&mut buf);
                while buf.len() < 32768 {
                    let Ok(p) = sem.try_acquire_many(cost) else {
                        break;
                    };
                    p.forget();
                    make(&mut buf);
                }
            }
            Pace::Rate(r) => {
                if TokioInstant::now() >= end {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
                let due = t0.elapsed().as_secs_f64() * r;
                while sent < due.floor() && buf.len() < 1 << 20 {
                    make(&mut buf);
                    sent += 1.0;
                }
            }
        }
        if !buf.is_empty() {
            w.write_all(&buf).await?;
        }
    }
    // Keep the connection open (dropping it would log out the user while its
    // replies are still being counted).
    tokio::time::sleep_until(end + Duration::from_secs(3)).await;
    drop(w);
    Ok(())
}

pub(crate) fn payload_text(size: usize) -> String {
    "x".repeat(size.saturating_sub(24))
}

pub(crate) fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Logs in users PREFIX`first` .. PREFIX`first+n-1`, available if `available`.
pub(crate) async fn login_all(
    args: &Args,
    first: usize,
    n: usize,
    available: bool,
) -> anyhow::Result<Vec<Conn>> {
    if first + n > args.users {
        bail!(
            "need users {}..{} but only {} exist (--users)",
            first,
            first + n,
            args.users
        );
    }
    let connector = args.connect.connector(&args.domain)?;
    // A thousand logins at once would only queue in the server and hit the timeouts.
    let sem = Arc::new(Semaphore::new(64));
    let mut tasks = Vec::new();
    for i in first..first + n {
        let (args, connector, sem) = (args.clone(), connector.clone(), sem.clone());
        let user = format!("{}{}", args.users_prefix, i);
        tasks.push(tokio::spawn(async move {
            let _p = sem.acquire().await?;
            Conn::login(&args, &connector, &user, available).await
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await??);
    }
    Ok(out)
}

/// Unique per run, so runs never share nodes (nor hit "already subscribed").
pub(crate) fn run_id() -> String {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "b{}{}",
        t.as_secs() % 100_000_000,
        std::process::id() % 1000
    )
}

/// CPU seconds each process used between two snapshots.
pub(crate) fn cpu_delta(
    pids: &[(String, String)],
    a: &[Option<f64>],
    b: &[Option<f64>],
) -> Vec<(String, Option<f64>)> {
    pids.iter()
        .enumerate()
        .map(|(i, (n, _))| {
            let d = a.get(i).copied().flatten().zip(b.get(i).copied().flatten());
            (n.clone(), d.map(|(a, b)| b - a))
        })
        .collect()
}

/// Sleeps until `at`, then reads the CPU counters.
pub(crate) async fn cpu_at(at: TokioInstant, pids: &[(String, String)]) -> Vec<Option<f64>> {
    tokio::time::sleep_until(at).await;
    cpu_snapshot(pids)
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn finish(
    readers: Vec<tokio::task::JoinHandle<anyhow::Result<Stats>>>,
    seconds: f64,
    clients: usize,
    window: usize,
    rate: f64,
    pids: &[(String, String)],
    cpu0: Vec<Option<f64>>,
    cpu1: Vec<Option<f64>>,
) -> anyhow::Result<Outcome> {
    let mut stats = Stats::default();
    for r in readers {
        stats.merge(r.await??);
    }
    let cpu = cpu_delta(pids, &cpu0, &cpu1);
    Ok(Outcome {
        stats,
        seconds,
        clients,
        window,
        rate,
        cpu,
        cpu_start: cpu0,
    })
}
