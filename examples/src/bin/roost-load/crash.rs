//! `crash`: SIGKILL Roost under publish load, restart it, and look for every acknowledged
//! item, round after round.
//!
//! This program starts Roost itself (the command after `--`), so that it knows when the
//! kill happens and which acknowledgements came before it. Each round: P fresh publisher
//! connections each create a node with `pubsub#max_items = max` and publish to it with W
//! publishes in flight, every item with an id of its own; after a random delay Roost gets
//! SIGKILL; replies already on their way are collected for a second; Roost is started again
//! on the same data directory, and each node's items are listed through its history
//! (XEP-0313, pages of 250). Every item whose publish got an IQ result must be there, once.
//! Publishes without a result (in flight at the kill, or bounced by the server while Roost
//! was down) may or may not be stored.

use std::collections::HashSet;
use std::io::Write as _;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use tokio::io::AsyncReadExt;
use tokio::sync::Semaphore;
use tokio::time::Instant as TokioInstant;

use crate::measure::{cpu_seconds, login_all, payload_text, run_id, send_loop, Pace};
use crate::wire::{find, Conn};
use crate::{Args, Scenario, PUBSUB_NS};

/// Options of the `crash` scenario.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct CrashArgs {
    /// Publisher connections (users PREFIX0 ..), each on its own node.
    #[arg(long, default_value_t = 8)]
    publishers: usize,
    /// Publishes in flight per publisher.
    #[arg(long, default_value_t = 64)]
    window: usize,
    /// Kill-and-restart rounds.
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    /// Shortest load before the kill, in seconds (the moment is random in between).
    #[arg(long, default_value_t = 1.5)]
    kill_min: f64,
    /// Longest load before the kill, in seconds.
    #[arg(long, default_value_t = 3.0)]
    kill_max: f64,
    /// File Roost's output is appended to.
    #[arg(long, default_value = "roost.log")]
    roost_log: std::path::PathBuf,
    /// Seconds to wait for Roost to answer after a (re)start.
    #[arg(long, default_value_t = 60.0)]
    ready_timeout: f64,
    /// The Roost command line (with its own --data-dir, kept across rounds).
    #[arg(last = true, required = true)]
    roost: Vec<String>,
}

/// A Roost process this program runs.
struct Roost {
    child: Child,
    cmd: Vec<String>,
    log: std::path::PathBuf,
}

impl Roost {
    fn spawn(cmd: &[String], log: &std::path::Path) -> anyhow::Result<Roost> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let child = Command::new(&cmd[0])
            .args(&cmd[1..])
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {}", cmd[0]))?;
        Ok(Roost {
            child,
            cmd: cmd.to_vec(),
            log: log.to_owned(),
        })
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// SIGKILL, and reap it.
    fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    fn restart(&mut self) -> anyhow::Result<()> {
        *self = Roost::spawn(&self.cmd, &self.log)?;
        Ok(())
    }

    /// SIGTERM (a clean stop), SIGKILL if it is still there after 10 s.
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.kill();
    }
}

/// Waits until the service answers a disco#info request (the server answers with an error
/// at once while no component is connected for it).
async fn wait_ready(
    ctl: &mut Conn,
    roost: &mut Roost,
    svc: &str,
    timeout: f64,
) -> anyhow::Result<f64> {
    let t = Instant::now();
    let mut k = 0u64;
    loop {
        if let Ok(Some(st)) = roost.child.try_wait() {
            bail!(
                "roost exited ({st}) before it answered; see {}",
                roost.log.display()
            );
        }
        k += 1;
        let id = format!("ready-{k}");
        ctl.send(&format!(
            "<iq type='get' to='{svc}' id='{id}'>\
             <query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
        ))
        .await?;
        if ctl.await_iq(&id).await.is_ok() {
            return Ok(t.elapsed().as_secs_f64());
        }
        if t.elapsed().as_secs_f64() > timeout {
            bail!(
                "roost did not answer within {timeout} s; see {}",
                roost.log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every item id in `node`'s history, in order, through XEP-0313 pages.
async fn stored_ids(ctl: &mut Conn, svc: &str, node: &str) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    let mut after = String::new();
    for page in 0.. {
        let id = format!("mam-{node}-{page}");
        let rsm_after = if after.is_empty() {
            String::new()
        } else {
            format!("<after>{after}</after>")
        };
        ctl.send(&format!(
            "<iq type='set' to='{svc}' id='{id}'><query xmlns='urn:xmpp:mam:2' node='{node}' \
             queryid='{id}'><set xmlns='http://jabber.org/protocol/rsm'><max>250</max>\
             {rsm_after}</set></query></iq>"
        ))
        .await?;
        let text = ctl
            .await_iq_text(&id)
            .await
            .with_context(|| format!("history of {node}"))?;
        let before = ids.len();
        let mut rest = text.as_str();
        while let Some(p) = rest.find("<result ") {
            rest = &rest[p..];
            let tag = &rest[..rest.find('>').unwrap_or(rest.len())];
            if let Some(i) = attr(tag, "id") {
                ids.push(i);
            }
            rest = &rest[tag.len()..];
        }
        let fin = &text[text.rfind("<fin").unwrap_or(0)..];
        if fin.contains("complete='true'") || fin.contains("complete=\"true\"") {
            break;
        }
        match (fin.find("<last>"), fin.find("</last>")) {
            (Some(a), Some(b)) if ids.len() > before => after = fin[a + 6..b].to_owned(),
            _ => bail!("history of {node}: page {page} neither complete nor continued: {fin}"),
        }
    }
    Ok(ids)
}

fn attr(tag: &str, name: &str) -> Option<String> {
    for q in ['\'', '"'] {
        let pat = format!(" {name}={q}");
        if let Some(p) = tag.find(&pat) {
            let v = &tag[p + pat.len()..];
            return v.find(q).map(|e| v[..e].to_owned());
        }
    }
    None
}

/// One round's outcome.
struct Round {
    killed_after: f64,
    sent: u64,
    acked: HashSet<String>,
    errors: u64,
    /// Acknowledgements per second over the load before the kill.
    acked_per_s: f64,
    cpu_us_per_ack: serde_json::Value,
}

/// Runs the publishers until `kill_at`, SIGKILLs Roost then, and collects the replies that
/// were already on their way.
async fn load_and_kill(
    args: &Args,
    c: &CrashArgs,
    roost: &mut Roost,
    server_pid: Option<&str>,
    round: usize,
    rid: &str,
    delay: f64,
) -> anyhow::Result<Round> {
    let svc = &args.service;
    let mut conns = login_all(args, 0, c.publishers, false).await?;
    for (i, conn) in conns.iter_mut().enumerate() {
        let id = format!("create-{i}");
        conn.send(&format!(
            "<iq type='set' to='{svc}' id='{id}'><pubsub xmlns='{PUBSUB_NS}'>\
             <create node='{rid}-r{round}-p{i}'/><configure><x xmlns='jabber:x:data' type='submit'>\
             <field var='FORM_TYPE' type='hidden'><value>{PUBSUB_NS}#node_config</value></field>\
             <field var='pubsub#max_items'><value>max</value></field></x></configure></pubsub></iq>"
        ))
        .await?;
        conn.await_iq(&id)
            .await
            .with_context(|| format!("creating node {rid}-r{round}-p{i}"))?;
    }
    let payload = payload_text(args.size);
    let sent = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(Mutex::new(HashSet::new()));
    let errors = Arc::new(AtomicU64::new(0));
    let start = TokioInstant::now();
    let kill_at = start + Duration::from_secs_f64(delay);
    let grace = kill_at + Duration::from_secs(1);
    let pids: Vec<String> = [server_pid.map(str::to_owned), Some(roost.pid())]
        .into_iter()
        .flatten()
        .chain([std::process::id().to_string()])
        .collect();
    let cpu0: Vec<Option<f64>> = pids.iter().map(|p| cpu_seconds(p)).collect();
    let mut tasks = Vec::new();
    for (i, conn) in conns.into_iter().enumerate() {
        let (r, w) = conn.split();
        let sem = Arc::new(Semaphore::new(c.window));
        let (node, payload, sent) = (
            format!("{rid}-r{round}-p{i}"),
            payload.clone(),
            sent.clone(),
        );
        let svc = svc.clone();
        let prefix = format!("r{round}p{i}n");
        let sender = tokio::spawn(send_loop(
            w,
            sem.clone(),
            1,
            Pace::Window,
            kill_at,
            move |b| {
                let n = sent.fetch_add(1, Ordering::Relaxed);
                let _ = write!(
                    b,
                    "<iq type='set' to='{svc}' id='{prefix}{n}'><pubsub xmlns='{PUBSUB_NS}'>\
                 <publish node='{node}'><item id='{prefix}{n}'><entry xmlns='urn:roost:load'>\
                 {payload}</entry></item></publish></pubsub></iq>"
                );
            },
        ));
        let (acked, errors) = (acked.clone(), errors.clone());
        let reader = tokio::spawn(read_replies(r, grace, sem, acked, errors));
        tasks.push((sender, reader));
    }
    tokio::time::sleep_until(kill_at).await;
    let cpu1: Vec<Option<f64>> = pids.iter().map(|p| cpu_seconds(p)).collect();
    let n_acked_at_kill = acked.lock().expect("not poisoned").len();
    roost.kill()?;
    let killed_after = start.elapsed().as_secs_f64();
    for (sender, reader) in tasks {
        reader.await??;
        sender.abort();
    }
    let acked = std::mem::take(&mut *acked.lock().expect("not poisoned"));
    let names = ["server", "roost", "load"];
    let off = usize::from(server_pid.is_none());
    let cpu: serde_json::Map<String, serde_json::Value> = pids
        .iter()
        .enumerate()
        .map(|(k, _)| {
            let v = cpu0[k]
                .zip(cpu1[k])
                .filter(|_| n_acked_at_kill > 0)
                .map(|(a, b)| ((b - a) / n_acked_at_kill as f64 * 1e6).round());
            (names[k + off].to_owned(), v.into())
        })
        .collect();
    Ok(Round {
        killed_after,
        sent: sent.load(Ordering::Relaxed),
        acked_per_s: n_acked_at_kill as f64 / delay,
        acked,
        errors: errors.load(Ordering::Relaxed),
        cpu_us_per_ack: cpu.into(),
    })
}

/// Reads IQ replies until `until`: a result acknowledges the item its id names.
async fn read_replies(
    mut r: crate::wire::Reader,
    until: TokioInstant,
    sem: Arc<Semaphore>,
    acked: Arc<Mutex<HashSet<String>>>,
    errors: Arc<AtomicU64>,
) -> anyhow::Result<()> {
    let mut buf = std::mem::take(&mut r.pending);
    let mut chunk = vec![0u8; 65536];
    loop {
        let mut at = 0;
        while let Some(p) = find(&buf[at..], b"<iq ") {
            let s = at + p;
            let Some(e) = buf[s..].iter().position(|&b| b == b'>') else {
                break;
            };
            let tag = String::from_utf8_lossy(&buf[s..s + e]);
            match (attr(&tag, "type").as_deref(), attr(&tag, "id")) {
                (Some("result"), Some(id)) => {
                    acked.lock().expect("not poisoned").insert(id);
                    sem.add_permits(1);
                }
                (Some("error"), Some(_)) => {
                    errors.fetch_add(1, Ordering::Relaxed);
                    sem.add_permits(1);
                }
                _ => {}
            }
            at = s + e;
        }
        // Keep what may be the start of an incomplete tag for the next read.
        let keep = buf[at..]
            .iter()
            .rposition(|&b| b == b'<')
            .map_or(buf.len(), |p| at + p);
        buf.drain(..keep);
        let n = match tokio::time::timeout_at(until, r.r.read(&mut chunk)).await {
            Err(_) => return Ok(()),
            Ok(n) => n?,
        };
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let Scenario::Crash(c) = args.scenario.clone() else {
        unreachable!("crash::run runs the crash scenario")
    };
    anyhow::ensure!(
        c.kill_min > 0.0 && c.kill_max >= c.kill_min,
        "--kill-min must be positive and at most --kill-max"
    );
    let server_pid = args
        .pids
        .iter()
        .find_map(|p| p.strip_prefix("server="))
        .map(str::to_owned);
    let svc = args.service.clone();
    let rid = run_id();
    let mut ctl = login_all(&args, c.publishers, 1, false)
        .await
        .context("the control connection (user PREFIX<publishers>)")?
        .pop()
        .expect("one connection");
    let mut roost = Roost::spawn(&c.roost, &c.roost_log)?;
    let ready = wait_ready(&mut ctl, &mut roost, &svc, c.ready_timeout).await?;
    eprintln!("roost-load: crash: roost ready after {ready:.2} s");
    let mut rounds = Vec::new();
    let mut failures = Vec::new();
    for round in 1..=c.rounds {
        let delay = rand::random_range(c.kill_min..=c.kill_max);
        let r = load_and_kill(
            &args,
            &c,
            &mut roost,
            server_pid.as_deref(),
            round,
            &rid,
            delay,
        )
        .await?;
        roost.restart()?;
        let ready = wait_ready(&mut ctl, &mut roost, &svc, c.ready_timeout).await?;
        let mut stored = HashSet::new();
        let mut dups = 0u64;
        for i in 0..c.publishers {
            for id in stored_ids(&mut ctl, &svc, &format!("{rid}-r{round}-p{i}")).await? {
                if !stored.insert(id) {
                    dups += 1;
                }
            }
        }
        let lost: Vec<&String> = r.acked.iter().filter(|i| !stored.contains(*i)).collect();
        eprintln!(
            "roost-load: crash round {round}/{}: SIGKILL after {:.2} s: {} sent, {} acked \
             ({:.0}/s), {} stored, {} lost, {dups} duplicated; {} refused; ready again after \
             {ready:.2} s",
            c.rounds,
            r.killed_after,
            r.sent,
            r.acked.len(),
            r.acked_per_s,
            stored.len(),
            lost.len(),
            r.errors
        );
        if r.acked.is_empty() {
            failures.push(format!("round {round}: nothing was acknowledged"));
        }
        if !lost.is_empty() {
            let mut few: Vec<&&String> = lost.iter().take(5).collect();
            few.sort();
            failures.push(format!(
                "round {round}: {} acknowledged items lost, e.g. {few:?}",
                lost.len()
            ));
        }
        if dups > 0 {
            failures.push(format!("round {round}: {dups} items stored twice"));
        }
        rounds.push(serde_json::json!({
            "round": round,
            "killed_after_s": (r.killed_after * 100.0).round() / 100.0,
            "sent": r.sent,
            "acked": r.acked.len(),
            "acked_per_s": r.acked_per_s.round(),
            "refused": r.errors,
            "stored": stored.len(),
            "lost": lost.len(),
            "duplicated": dups,
            "ready_s": (ready * 100.0).round() / 100.0,
            "cpu_us_per_ack": r.cpu_us_per_ack,
        }));
    }
    roost.stop();
    let rates: Vec<f64> = rounds
        .iter()
        .filter_map(|r| r["acked_per_s"].as_f64())
        .collect();
    let line = serde_json::json!({
        "scenario": "crash",
        "service": svc,
        "label": args.label,
        "publishers": c.publishers,
        "window": c.window,
        "size": args.size,
        "rounds": rounds,
        "acked": rounds.iter().filter_map(|r| r["acked"].as_u64()).sum::<u64>(),
        "lost": rounds.iter().filter_map(|r| r["lost"].as_u64()).sum::<u64>(),
        "acked_per_s_min": rates.iter().copied().fold(f64::INFINITY, f64::min),
        "acked_per_s_mean": rates.iter().sum::<f64>() / rates.len().max(1) as f64,
    });
    println!("{line}");
    if failures.is_empty() {
        Ok(())
    } else {
        Err(anyhow!(failures.join("; ")))
    }
}
