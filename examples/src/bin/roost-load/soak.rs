//! `soak`: one publisher at a fixed rate, S subscribers of one node, for a long time.
//!
//! Every item carries a sequence number (`~S<n>~`) besides its send time, and each
//! subscriber keeps a bitmap of the numbers it received, so the end of the run can say
//! exactly how many notifications were missing or came twice. The RSS of every `--pids`
//! process is sampled every `--sample` seconds and printed as progress. The verdict (RSS
//! flat after warm-up, nothing missing, no error) is `scripts/soak`'s: this program
//! measures and reports one JSON line.

use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant as TokioInstant;

use crate::measure::{
    cpu_delta, cpu_snapshot, login_all, now_us, percentile, rss_kib, send_loop, Pace, Stats,
};
use crate::scenarios::{subscribe_all, Ctx};
use crate::wire::Mark;
use crate::{Args, Scenario, PUBSUB_NS};

/// What one subscriber received.
#[derive(Default)]
struct Seen {
    /// Bit n set: item n arrived.
    bits: Vec<u64>,
    distinct: u64,
    duplicates: u64,
    errors: u64,
    lat_us: Vec<u32>,
    /// The send time of the notification being read, until its sequence number comes.
    last_ts: Option<u64>,
    first_error: Option<String>,
}

impl Seen {
    fn mark(&mut self, n: u64) -> bool {
        let (w, b) = ((n / 64) as usize, n % 64);
        if self.bits.len() <= w {
            self.bits.resize(w + 1, 0);
        }
        if self.bits[w] & (1 << b) != 0 {
            self.duplicates += 1;
            false
        } else {
            self.bits[w] |= 1 << b;
            self.distinct += 1;
            true
        }
    }
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let Scenario::Soak {
        subscribers,
        rate,
        sample,
        progress,
        drain,
        metrics,
    } = args.scenario.clone()
    else {
        unreachable!("soak::run runs the soak scenario")
    };
    anyhow::ensure!(rate > 0.0, "--rate must be positive");
    let ctx = Ctx::new(args);
    let svc = ctx.args.service.clone();
    let mut conns = login_all(&ctx.args, 0, subscribers + 1, true).await?;
    let node = format!("{}-soak", ctx.rid);
    conns[0]
        .create_node(&svc, &node, ctx.args.max_items)
        .await?;
    subscribe_all(&mut conns[1..], &svc, &node).await?;
    eprintln!(
        "roost-load: soak: {subscribers} subscribers of {node}, {rate} items/s for {} s",
        ctx.args.duration
    );

    let delivered = Arc::new(AtomicU64::new(0));
    let start = TokioInstant::now();
    let end = start + Duration::from_secs_f64(ctx.args.duration);
    let last = end + Duration::from_secs_f64(drain);
    let cpu0 = cpu_snapshot(&ctx.pids);
    let t0 = now_us();

    let mut it = conns.into_iter();
    let (mut pr, pw) = it.next().expect("publisher").split();
    let sent = Arc::new(AtomicU64::new(0));
    let (sent2, payload) = (sent.clone(), ctx.payload.clone());
    let sender = tokio::spawn(send_loop(
        pw,
        Arc::new(Semaphore::new(0)),
        1,
        Pace::Rate(rate),
        end,
        move |b| {
            let n = sent2.fetch_add(1, Ordering::Relaxed);
            let t = now_us();
            let _ = write!(
                b,
                "<iq type='set' to='{svc}' id='~L{t}~{n}'><pubsub xmlns='{PUBSUB_NS}'>\
                 <publish node='{node}'><item><entry xmlns='urn:roost:load'>~T{t}~~S{n}~{payload}\
                 </entry></item></publish></pubsub></iq>"
            );
        },
    ));
    let acked = Arc::new(AtomicU64::new(0));
    let acked2 = acked.clone();
    let acks = tokio::spawn(async move {
        let mut st = Stats::default();
        pr.scan(last, &mut st, |m, st| {
            match m {
                Mark::Ack(_) => {
                    acked2.fetch_add(1, Ordering::Relaxed);
                }
                Mark::Error => st.errors += 1,
                Mark::Ts(_) | Mark::Seq(_) => {}
            }
            false
        })
        .await
        .map(|_| st)
    });

    let mut seen = Vec::new();
    let mut readers = Vec::new();
    for c in it {
        let (mut r, w) = c.split();
        let s = Arc::new(Mutex::new(Seen::default()));
        seen.push(s.clone());
        let delivered = delivered.clone();
        readers.push(tokio::spawn(async move {
            let _w = w;
            let mut st = Stats::default();
            let r = r
                .scan(last, &mut st, |m, _| {
                    let mut s = s.lock().expect("not poisoned");
                    match m {
                        Mark::Ts(t) => s.last_ts = Some(t),
                        Mark::Seq(n) => {
                            if s.mark(n) {
                                delivered.fetch_add(1, Ordering::Relaxed);
                            }
                            if let Some(t) = s.last_ts.take() {
                                let l = now_us().saturating_sub(t).min(u64::from(u32::MAX));
                                s.lat_us.push(l as u32);
                            }
                        }
                        Mark::Error => s.errors += 1,
                        Mark::Ack(_) => {}
                    }
                    false
                })
                .await;
            let mut s = s.lock().expect("not poisoned");
            if s.first_error.is_none() {
                s.first_error = st.first_error;
            }
            if let Err(e) = r {
                s.errors += 1;
                s.first_error = Some(format!("connection: {e:#}"));
            }
        }));
    }

    // Progress and RSS samples until the publishing ends and everything acknowledged has
    // reached everyone (or the drain time is over).
    let mut samples = Vec::new();
    let mut next_sample = start;
    let mut next_progress = start;
    let mut last_delivered = (start, 0u64);
    loop {
        let now = TokioInstant::now();
        if now >= next_sample {
            let t = now.duration_since(start).as_secs_f64();
            let d = delivered.load(Ordering::Relaxed);
            let rss: serde_json::Map<String, serde_json::Value> = ctx
                .pids
                .iter()
                .map(|(n, p)| (n.clone(), rss_kib(p).into()))
                .collect();
            let heap = match &metrics {
                Some(addr) => heap_kib(addr).await,
                None => None,
            };
            let per_s = (d - last_delivered.1) as f64
                / now.duration_since(last_delivered.0).as_secs_f64().max(1e-3);
            if now >= next_progress {
                eprintln!(
                    "roost-load: soak {t:>6.0} s: {} published, {} acked, {d} notifications \
                     ({per_s:.0}/s), RSS KiB {}{}",
                    sent.load(Ordering::Relaxed),
                    acked.load(Ordering::Relaxed),
                    serde_json::Value::Object(rss.clone()),
                    heap.map(|h| format!(", Roost's heap {h} KiB"))
                        .unwrap_or_default()
                );
                last_delivered = (now, d);
                next_progress += Duration::from_secs_f64(progress);
            }
            samples.push(serde_json::json!({
                "t": (t * 10.0).round() / 10.0, "delivered": d, "rss_kib": rss, "heap_kib": heap,
            }));
            next_sample += Duration::from_secs_f64(sample);
        }
        let want = acked.load(Ordering::Relaxed) * subscribers as u64;
        if now >= last
            || (now >= end && sender.is_finished() && delivered.load(Ordering::Relaxed) >= want)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seconds = (now_us() - t0) as f64 / 1e6;
    let cpu1 = cpu_snapshot(&ctx.pids);
    for r in &readers {
        r.abort();
    }
    for r in readers {
        let _ = r.await;
    }
    sender.abort();
    acks.abort();
    let pub_errors = match acks.await {
        Ok(Ok(st)) => st.errors,
        _ => 0,
    };

    let sent = sent.load(Ordering::Relaxed);
    let acked = acked.load(Ordering::Relaxed).saturating_sub(pub_errors);
    let expected = acked * subscribers as u64;
    let (mut got, mut dups, mut errs, mut complete) = (0u64, 0u64, 0u64, 0usize);
    let mut lat = Vec::new();
    let mut first_error = None;
    for s in &seen {
        let mut s = s.lock().expect("not poisoned");
        got += s.distinct;
        dups += s.duplicates;
        errs += s.errors;
        if s.distinct >= acked {
            complete += 1;
        }
        lat.append(&mut s.lat_us);
        if first_error.is_none() {
            first_error = s.first_error.take();
        }
    }
    lat.sort_unstable();
    let cpu: serde_json::Map<String, serde_json::Value> = cpu_delta(&ctx.pids, &cpu0, &cpu1)
        .into_iter()
        .map(|(n, c)| (n, c.map(|c| (c * 100.0).round() / 100.0).into()))
        .collect();
    let line = serde_json::json!({
        "scenario": "soak",
        "service": ctx.args.service,
        "label": ctx.args.label,
        "subscribers": subscribers,
        "rate": rate,
        "size": ctx.args.size,
        "seconds": (seconds * 100.0).round() / 100.0,
        "published": sent,
        "acked": acked,
        "publish_errors": pub_errors,
        "expected": expected,
        "delivered": got,
        "missing": expected.saturating_sub(got),
        "duplicates": dups,
        "subscribers_complete": complete,
        "subscriber_errors": errs,
        "lat_us": {
            "p50": percentile(&lat, 0.5),
            "p90": percentile(&lat, 0.9),
            "p99": percentile(&lat, 0.99),
            "max": lat.last().copied().unwrap_or(0),
        },
        "cpu_s": cpu,
        "samples": samples,
    });
    println!("{line}");
    if let Some(e) = first_error {
        eprintln!("roost-load: soak: first error: {e}");
    }
    Ok(())
}

/// `roost_heap_allocated_bytes` from Roost's metrics endpoint at `addr`, in KiB; `None`
/// when it cannot be read (the sample then has no heap figure, and the verdict says so).
async fn heap_kib(addr: &str) -> Option<u64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fetch = async {
        let mut sock = tokio::net::TcpStream::connect(addr).await.ok()?;
        // One GET on loopback, answered by Roost's own minimal endpoint (HTTP/1.0, the
        // connection closed after the body): not worth an HTTP client dependency.
        sock.write_all(b"GET /metrics HTTP/1.0\r\n\r\n")
            .await
            .ok()?;
        let mut body = String::new();
        sock.read_to_string(&mut body).await.ok()?;
        body.lines().find_map(|l| {
            let v = l.strip_prefix("roost_heap_allocated_bytes ")?;
            Some(v.trim().parse::<f64>().ok()? as u64 / 1024)
        })
    };
    tokio::time::timeout(Duration::from_secs(2), fetch)
        .await
        .ok()
        .flatten()
}
