//! The measured scenarios: publish, fanout (and blast), route, subscribe-storm.

use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::Semaphore;
use tokio::time::Instant as TokioInstant;

use crate::blast::Blast;
use crate::measure::{
    cpu_at, cpu_delta, cpu_snapshot, finish, login_all, now_us, payload_text, record, run_id,
    send_loop, Pace, Stats, Window,
};
use crate::wire::{Conn, Mark};
use crate::{Args, Outcome, Scenario, PUBSUB_NS};

/// What every scenario shares: the processes watched, the run's id, the measured window.
pub(crate) struct Ctx {
    pub(crate) args: Args,
    /// NAME=PID pairs whose CPU is read, the load generator itself last.
    pub(crate) pids: Vec<(String, String)>,
    /// Unique per run, so runs never share nodes (nor hit "already subscribed").
    pub(crate) rid: String,
    pub(crate) win: Arc<Window>,
    /// The payload element's text after its timestamp marker.
    pub(crate) payload: String,
    /// How long readers go on after the window, for replies still on their way.
    pub(crate) drain: Duration,
}

impl Ctx {
    pub(crate) fn new(args: Args) -> Ctx {
        let mut pids: Vec<(String, String)> = args
            .pids
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| {
                let (n, p) = s.split_once('=').unwrap_or(("pid", s));
                (n.to_string(), p.to_string())
            })
            .collect();
        pids.push(("load".into(), std::process::id().to_string()));
        Ctx {
            rid: run_id(),
            win: Arc::new(Window {
                start: AtomicU64::new(u64::MAX),
                end: AtomicU64::new(u64::MAX),
            }),
            payload: payload_text(args.size),
            drain: Duration::from_secs(2),
            pids,
            args,
        }
    }

    /// Starts the warm-up now; returns when the measured window starts and ends.
    pub(crate) fn open_window(&self) -> (TokioInstant, TokioInstant) {
        let warmup = Duration::from_secs_f64(self.args.warmup);
        let dur = Duration::from_secs_f64(self.args.duration);
        let s = now_us() + warmup.as_micros() as u64;
        self.win.start.store(s, Ordering::Relaxed);
        self.win
            .end
            .store(s + dur.as_micros() as u64, Ordering::Relaxed);
        let t = TokioInstant::now();
        (t + warmup, t + warmup + dur)
    }

    /// A publish IQ to `node`, with the send time in its id and in its payload.
    pub(crate) fn publish_iq(&self, node: &str) -> impl FnMut(&mut Vec<u8>) + Send + 'static {
        let (svc, payload, node) = (
            self.args.service.clone(),
            self.payload.clone(),
            node.to_owned(),
        );
        let mut seq = 0u64;
        move |b| {
            seq += 1;
            let t = now_us();
            let _ = write!(
                b,
                "<iq type='set' to='{svc}' id='~L{t}~{seq}'><pubsub xmlns='{PUBSUB_NS}'>\
                 <publish node='{node}'><item><entry xmlns='urn:roost:load'>~T{t}~{payload}\
                 </entry></item></publish></pubsub></iq>"
            );
        }
    }
}

pub(crate) async fn run(args: Args) -> anyhow::Result<Outcome> {
    let scenario = args.scenario.clone();
    let mut ctx = Ctx::new(args);
    match scenario {
        Scenario::Publish {
            clients,
            window,
            rate,
        } => publish(&ctx, clients, window, rate, None).await,
        Scenario::Fanout {
            subscribers,
            window,
            rate,
        } => fanout(&ctx, subscribers, window, rate, None).await,
        Scenario::Blast {
            subscribers,
            publishers,
            window,
            rate,
            component,
            secret,
        } => {
            let subs: Vec<String> = (1..=subscribers)
                .filter(|_| publishers == 0)
                .map(|i| format!("{}{i}@{}", ctx.args.users_prefix, ctx.args.domain))
                .collect();
            let blast = Blast::start(&component, &ctx.args.service, &secret, subs).await?;
            // Its own thread: its CPU is reported apart from the clients'.
            let load = ctx.pids.pop().expect("load pid");
            ctx.pids.push(("component".into(), blast.proc_task()));
            ctx.pids.push(load);
            if publishers > 0 {
                publish(&ctx, publishers, window, rate, Some(blast)).await
            } else {
                fanout(&ctx, subscribers, window, rate, Some(blast)).await
            }
        }
        Scenario::Route {
            pairs,
            window,
            rate,
        } => route(&ctx, pairs, window, rate).await,
        Scenario::SubscribeStorm {
            clients,
            nodes,
            window,
        } => subscribe_storm(&ctx, clients, nodes, window).await,
        Scenario::Soak { .. } | Scenario::Crash(_) | Scenario::Register { .. } => {
            unreachable!("run by their own modules")
        }
    }
}

/// N publishers, each on its own node, W publishes in flight each (or a total rate); with
/// `blast`, to the do-nothing component, which needs no nodes.
async fn publish(
    ctx: &Ctx,
    clients: usize,
    window: usize,
    rate: f64,
    blast: Option<Blast>,
) -> anyhow::Result<Outcome> {
    let mut conns = login_all(&ctx.args, 0, clients, false).await?;
    for (i, c) in conns.iter_mut().enumerate().filter(|_| blast.is_none()) {
        c.create_node(
            &ctx.args.service,
            &format!("{}-p{i}", ctx.rid),
            ctx.args.max_items,
        )
        .await?;
    }
    eprintln!("roost-load: {clients} publishers ready");
    let (wstart, wend) = ctx.open_window();
    let cpu0 = cpu_at(wstart, &ctx.pids).await;
    let mut readers = Vec::new();
    for (i, c) in conns.into_iter().enumerate() {
        let (mut r, w) = c.split();
        let sem = Arc::new(Semaphore::new(window));
        let pace = if rate > 0.0 {
            Pace::Rate(rate / clients as f64)
        } else {
            Pace::Window
        };
        let make = ctx.publish_iq(&format!("{}-p{i}", ctx.rid));
        tokio::spawn(send_loop(w, sem.clone(), 1, pace, wend, make));
        let (win, drain) = (ctx.win.clone(), ctx.drain);
        readers.push(tokio::spawn(async move {
            let mut st = Stats::default();
            r.scan(wend + drain, &mut st, |m, st| match m {
                Mark::Ack(t) => {
                    record(&win, st, t);
                    sem.add_permits(1);
                    false
                }
                Mark::Error => {
                    st.errors += 1;
                    false
                }
                Mark::Ts(_) | Mark::Seq(_) => false,
            })
            .await
            .map(|_| st)
        }));
    }
    let cpu1 = cpu_at(wend, &ctx.pids).await;
    let mut o = finish(
        readers,
        ctx.args.duration,
        clients,
        window,
        rate,
        &ctx.pids,
        cpu0,
        cpu1,
    )
    .await?;
    if let Some(b) = blast {
        o.stats.errors += b.stop().await?;
    }
    Ok(o)
}

/// Subscribes every connection's bare JID to `node` on the service, all requests at once.
pub(crate) async fn subscribe_all(conns: &mut [Conn], svc: &str, node: &str) -> anyhow::Result<()> {
    for c in conns.iter_mut() {
        let id = format!("sub-{}", c.jid);
        c.send(&format!(
            "<iq type='set' to='{svc}' id='{id}'><pubsub xmlns='{PUBSUB_NS}'>\
             <subscribe node='{node}' jid='{}'/></pubsub></iq>",
            c.jid
        ))
        .await?;
    }
    for c in conns.iter_mut() {
        let id = format!("sub-{}", c.jid);
        c.await_iq(&id)
            .await
            .with_context(|| format!("subscribing {}", c.jid))?;
    }
    Ok(())
}

/// One publisher, S online subscribers: of a node of the service, or, with `blast`, the
/// users the blast component sends to.
async fn fanout(
    ctx: &Ctx,
    subscribers: usize,
    window: usize,
    rate: f64,
    blast: Option<Blast>,
) -> anyhow::Result<Outcome> {
    let mut conns = login_all(&ctx.args, 0, subscribers + 1, true).await?;
    let node = format!("{}-f", ctx.rid);
    if blast.is_none() {
        conns[0]
            .create_node(&ctx.args.service, &node, ctx.args.max_items)
            .await?;
        subscribe_all(&mut conns[1..], &ctx.args.service, &node).await?;
    }
    eprintln!("roost-load: {subscribers} subscribers ready");
    let (wstart, wend) = ctx.open_window();
    let cpu0 = cpu_at(wstart, &ctx.pids).await;
    let cost = subscribers as u32;
    let sem = Arc::new(Semaphore::new(window * subscribers));
    let mut readers = Vec::new();
    let mut it = conns.into_iter();
    let (mut pr, pw) = it.next().expect("publisher").split();
    let pace = if rate > 0.0 {
        Pace::Rate(rate)
    } else {
        Pace::Window
    };
    tokio::spawn(send_loop(
        pw,
        sem.clone(),
        cost,
        pace,
        wend,
        ctx.publish_iq(&node),
    ));
    // The publisher's acks: only errors matter here.
    let drain = ctx.drain;
    let acks = tokio::spawn(async move {
        let mut st = Stats::default();
        pr.scan(wend + drain, &mut st, |m, st| {
            if let Mark::Error = m {
                st.errors += 1;
            }
            false
        })
        .await
        .map(|_| st)
    });
    for c in it {
        let (mut r, w) = c.split();
        let (sem, win) = (sem.clone(), ctx.win.clone());
        readers.push(tokio::spawn(async move {
            // Dropping the write half would end the session.
            let _w = w;
            let mut st = Stats::default();
            r.scan(wend + drain, &mut st, |m, st| match m {
                Mark::Ts(t) => {
                    record(&win, st, t);
                    sem.add_permits(1);
                    false
                }
                Mark::Error => {
                    st.errors += 1;
                    false
                }
                Mark::Ack(_) | Mark::Seq(_) => false,
            })
            .await
            .map(|_| st)
        }));
    }
    let cpu1 = cpu_at(wend, &ctx.pids).await;
    let mut o = finish(
        readers,
        ctx.args.duration,
        subscribers,
        window,
        rate,
        &ctx.pids,
        cpu0,
        cpu1,
    )
    .await?;
    let a = acks.await??;
    o.stats.errors += a.errors;
    if o.stats.first_error.is_none() {
        o.stats.first_error = a.first_error;
    }
    if let Some(b) = blast {
        let e = b.stop().await?;
        o.stats.errors += e;
    }
    Ok(o)
}

/// Pairs of users sending each other plain messages: the server's own routing.
async fn route(ctx: &Ctx, pairs: usize, window: usize, rate: f64) -> anyhow::Result<Outcome> {
    let conns = login_all(&ctx.args, 0, 2 * pairs, true).await?;
    eprintln!("roost-load: {pairs} pairs ready");
    let (wstart, wend) = ctx.open_window();
    let cpu0 = cpu_at(wstart, &ctx.pids).await;
    let mut readers = Vec::new();
    let mut it = conns.into_iter();
    let drain = ctx.drain;
    while let (Some(a), Some(b)) = (it.next(), it.next()) {
        let to = b.jid.clone();
        let (mut ar, aw) = a.split();
        let (mut br, bw) = b.split();
        let sem = Arc::new(Semaphore::new(window));
        let pace = if rate > 0.0 {
            Pace::Rate(rate / pairs as f64)
        } else {
            Pace::Window
        };
        let payload = ctx.payload.clone();
        tokio::spawn(send_loop(aw, sem.clone(), 1, pace, wend, move |buf| {
            let t = now_us();
            let _ = write!(
                buf,
                "<message to='{to}'><body>~T{t}~{payload}</body></message>"
            );
        }));
        let mut a_stats = Stats::default();
        tokio::spawn(async move {
            // Drain whatever the sender receives (errors, if any).
            let _ = ar.scan(wend + drain, &mut a_stats, |_, _| false).await;
        });
        let win = ctx.win.clone();
        readers.push(tokio::spawn(async move {
            let _w = bw;
            let mut st = Stats::default();
            br.scan(wend + drain, &mut st, |m, st| match m {
                Mark::Ts(t) => {
                    record(&win, st, t);
                    sem.add_permits(1);
                    false
                }
                Mark::Error => {
                    st.errors += 1;
                    false
                }
                Mark::Ack(_) | Mark::Seq(_) => false,
            })
            .await
            .map(|_| st)
        }));
    }
    let cpu1 = cpu_at(wend, &ctx.pids).await;
    finish(
        readers,
        ctx.args.duration,
        pairs,
        window,
        rate,
        &ctx.pids,
        cpu0,
        cpu1,
    )
    .await
}

/// S clients subscribe to K nodes at once; the storm is the window.
async fn subscribe_storm(
    ctx: &Ctx,
    clients: usize,
    nodes: usize,
    window: usize,
) -> anyhow::Result<Outcome> {
    let svc = &ctx.args.service;
    let mut conns = login_all(&ctx.args, 0, clients + 1, false).await?;
    let names: Arc<Vec<String>> =
        Arc::new((0..nodes).map(|k| format!("{}-s{k}", ctx.rid)).collect());
    for n in names.iter() {
        conns[0].create_node(svc, n, ctx.args.max_items).await?;
    }
    eprintln!("roost-load: {clients} clients and {nodes} nodes ready");
    // The storm is the window: from the first request to the last reply.
    ctx.win.start.store(0, Ordering::Relaxed);
    let cpu0 = cpu_snapshot(&ctx.pids);
    let t0 = now_us();
    let deadline = TokioInstant::now() + Duration::from_secs(120);
    let mut readers = Vec::new();
    for c in conns.into_iter().skip(1) {
        let jid = c.jid.clone();
        let (mut r, w) = c.split();
        let sem = Arc::new(Semaphore::new(window));
        let (svc, names, sem2, win) = (svc.clone(), names.clone(), sem.clone(), ctx.win.clone());
        let n = names.len();
        let mut k = 0usize;
        let sender = tokio::spawn(send_loop(w, sem, 1, Pace::Window, deadline, move |b| {
            if k < names.len() {
                let t = now_us();
                let _ = write!(
                    b,
                    "<iq type='set' to='{svc}' id='~L{t}~{k}'><pubsub xmlns='{PUBSUB_NS}'>\
                     <subscribe node='{}' jid='{jid}'/></pubsub></iq>",
                    names[k]
                );
                k += 1;
            }
        }));
        readers.push(tokio::spawn(async move {
            let mut st = Stats::default();
            let mut seen = 0;
            r.scan(deadline, &mut st, |m, st| {
                match m {
                    Mark::Ack(t) => {
                        record(&win, st, t);
                        seen += 1;
                        sem2.add_permits(1);
                    }
                    Mark::Error => st.errors += 1,
                    Mark::Ts(_) | Mark::Seq(_) => {}
                }
                seen >= n
            })
            .await?;
            sender.abort();
            Ok(st)
        }));
    }
    let mut o = finish(readers, 0.0, clients, window, 0.0, &ctx.pids, cpu0, vec![]).await?;
    o.seconds = (now_us() - t0) as f64 / 1e6;
    let cpu1 = cpu_snapshot(&ctx.pids);
    o.cpu = cpu_delta(&ctx.pids, &o.cpu_start, &cpu1);
    Ok(o)
}
