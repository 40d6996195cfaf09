//! `roost-load`: load generator for XMPP publish-subscribe services, Roost or
//! any other (e.g. a server's built-in pubsub), over many real c2s connections.
//!
//! Scenarios, each printing one JSON line on stdout:
//!
//! - `publish`: N publishers, each on its own node, W IQs in flight each →
//!   publishes acknowledged per second and ack latency percentiles.
//! - `fanout`: one publisher, S online subscribers of one node → notifications
//!   delivered per second and publish→notification latency (from a timestamp in
//!   the payload). Closed loop (at most W items not yet delivered to everyone)
//!   or open loop with `--rate`.
//! - `route`: plain c2s→c2s messages between pairs of users, no pubsub at all:
//!   the server's own routing ceiling and message latency.
//! - `subscribe-storm`: S clients subscribe to K nodes at the same moment →
//!   subscriptions per second.
//! - `blast`: `fanout` against a do-nothing XEP-0114 component run by this program
//!   (`blast.rs`): it answers each publish and writes pre-rendered notifications of the
//!   same shape as Roost's to the subscribers, storing nothing. What the server alone
//!   costs per notification, the yardstick for Roost's fan-out.
//! - `soak`: `fanout` at a fixed rate for a long time, checking that every subscriber
//!   gets every item exactly once and sampling the processes' RSS (`soak.rs`).
//! - `crash`: publishers with items in flight while this program SIGKILLs and restarts
//!   the Roost it runs, round after round; every acknowledged item must be found
//!   afterwards (`crash.rs`).
//! - `register`: creates the users with in-band registration (XEP-0077), for runs with
//!   more users than `prosodyctl`/`ejabberdctl` register in reasonable time.
//!
//! Unlike `roost-publish`, this program does not use tokio-xmpp or
//! xmpp-parsers on the hot path: the load generator shares the machine with the
//! server under test, so every microsecond it spends parsing XML is a
//! microsecond taken from what it measures. It speaks the few stanzas it needs
//! as pre-formatted text (STARTTLS, SASL PLAIN, resource binding) and
//! finds replies by scanning received bytes for markers it planted: IQ ids
//! `~L<send time>~<seq>` and payload timestamps `~T<send time>~`. A marker is
//! never escaped by a server's XML serializer, so a byte scan finds it.
//!
//! ```text
//! roost-load --server 127.0.0.1:5222 --insecure-plaintext --service pubsub.localhost \
//!     --users-prefix u --users 20 --password pw publish --clients 8 --window 16
//! ```
//!
//! Connections use STARTTLS with a verified certificate unless `--insecure-plaintext`
//! (see `roost_examples::connect`): TLS costs the server CPU too, so compare services
//! with the same setting.

mod blast;
mod crash;
mod measure;
mod scenarios;
mod soak;
mod wire;

use clap::{Parser, Subcommand};
use roost_examples::connect::ConnectArgs;

use measure::{now_us, percentile, Stats};

/// Namespace of XEP-0060 requests.
pub(crate) const PUBSUB_NS: &str = "http://jabber.org/protocol/pubsub";

/// Drive publish-subscribe load at an XMPP server over real c2s connections.
#[derive(Parser, Debug, Clone)]
#[command(version)]
pub(crate) struct Args {
    /// Where and how to connect (STARTTLS with a verified certificate by default).
    #[command(flatten)]
    pub(crate) connect: ConnectArgs,

    /// The server's domain (the part after @ in the users' JIDs).
    #[arg(long, default_value = "localhost")]
    pub(crate) domain: String,

    /// JID of the pubsub service under test, e.g. pubsub.localhost (Roost) or
    /// pubsub-builtin.localhost (the server's own).
    #[arg(long, default_value = "pubsub.localhost")]
    pub(crate) service: String,

    /// Users are PREFIX0, PREFIX1, ...; they must already exist.
    #[arg(long, default_value = "u")]
    pub(crate) users_prefix: String,

    /// How many users exist (PREFIX0 .. PREFIX(N-1)); one connection each.
    #[arg(long, default_value_t = 20)]
    pub(crate) users: usize,

    /// Password shared by all users.
    #[arg(
        long,
        env = "ROOST_PASSWORD",
        hide_env_values = true,
        default_value = "pw"
    )]
    pub(crate) password: String,

    /// Seconds measured (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    pub(crate) duration: f64,

    /// Seconds of load before measuring starts.
    #[arg(long, default_value_t = 2.0)]
    pub(crate) warmup: f64,

    /// Payload size in bytes (the payload element's text).
    #[arg(long, default_value_t = 256)]
    pub(crate) size: usize,

    /// `pubsub#max_items` of the nodes the run creates (the same for every
    /// service, so that each keeps and trims the same number of items).
    #[arg(long, default_value_t = 1000)]
    pub(crate) max_items: u32,

    /// Processes whose CPU time to report for the measured window, as
    /// NAME=PID, comma-separated (e.g. server=123,roost=456).
    #[arg(long, value_delimiter = ',')]
    pub(crate) pids: Vec<String>,

    /// Free-form label copied into the JSON line.
    #[arg(long, default_value = "")]
    pub(crate) label: String,

    /// Tokio worker threads of the load generator itself.
    #[arg(long, default_value_t = 1)]
    pub(crate) threads: usize,

    #[command(subcommand)]
    pub(crate) scenario: Scenario,
}

/// What to measure.
#[derive(Subcommand, Debug, Clone)]
pub(crate) enum Scenario {
    /// N publishers, each publishing to its own node with W IQs in flight.
    Publish {
        /// Publisher connections.
        #[arg(long, default_value_t = 8)]
        clients: usize,
        /// Publish IQs in flight per publisher.
        #[arg(long, default_value_t = 16)]
        window: usize,
        /// Total publishes per second across publishers (0: as fast as acks allow).
        #[arg(long, default_value_t = 0.0)]
        rate: f64,
    },
    /// One publisher, S online subscribers of one node.
    Fanout {
        /// Subscriber connections.
        #[arg(long, default_value_t = 16)]
        subscribers: usize,
        /// Items not yet delivered to every subscriber, at most.
        #[arg(long, default_value_t = 8)]
        window: usize,
        /// Items published per second (0: closed loop on `--window`).
        #[arg(long, default_value_t = 0.0)]
        rate: f64,
    },
    /// Pairs of users sending each other plain messages (no pubsub).
    Route {
        /// Sender→receiver pairs (2 connections each).
        #[arg(long, default_value_t = 8)]
        pairs: usize,
        /// Messages not yet received, per pair, at most.
        #[arg(long, default_value_t = 16)]
        window: usize,
        /// Total messages per second across pairs (0: closed loop on `--window`).
        #[arg(long, default_value_t = 0.0)]
        rate: f64,
    },
    /// S clients subscribing to K nodes at once.
    SubscribeStorm {
        /// Subscribing connections.
        #[arg(long, default_value_t = 16)]
        clients: usize,
        /// Nodes each client subscribes to.
        #[arg(long, default_value_t = 20)]
        nodes: usize,
        /// Subscribe IQs in flight per client.
        #[arg(long, default_value_t = 16)]
        window: usize,
    },
    /// `fanout` (or `publish`, with `--publishers`) against a do-nothing component run here:
    /// the server's own cost.
    Blast {
        /// Subscriber connections (they need not subscribe: the component sends to them).
        #[arg(long, default_value_t = 16)]
        subscribers: usize,
        /// With N > 0, `publish` instead: N publisher connections, `--window` publishes in
        /// flight each, acknowledged by the component (no subscribers, no notifications):
        /// the most a component can get through the server.
        #[arg(long, default_value_t = 0)]
        publishers: usize,
        /// Items not yet delivered to every subscriber, at most.
        #[arg(long, default_value_t = 8)]
        window: usize,
        /// Items published per second (0: closed loop on `--window`).
        #[arg(long, default_value_t = 0.0)]
        rate: f64,
        /// The server's component listener (XEP-0114) the blast component connects to;
        /// it serves `--service`, which the server must accept as a component domain.
        #[arg(long)]
        component: String,
        /// The component's shared secret.
        #[arg(long, env = "ROOST_COMPONENT_SECRET", hide_env_values = true)]
        secret: String,
    },
    /// `fanout` at a fixed rate for a long time: every item to every subscriber, RSS sampled.
    Soak {
        /// Subscriber connections.
        #[arg(long, default_value_t = 1000)]
        subscribers: usize,
        /// Items published per second.
        #[arg(long)]
        rate: f64,
        /// Seconds between two RSS samples of the `--pids` processes.
        #[arg(long, default_value_t = 5.0)]
        sample: f64,
        /// Seconds between two progress lines on stderr.
        #[arg(long, default_value_t = 30.0)]
        progress: f64,
        /// Seconds to wait after the last publish for the last notifications.
        #[arg(long, default_value_t = 30.0)]
        drain: f64,
        /// Roost's metrics endpoint (HOST:PORT, as given to its `--metrics-listen`): its
        /// heap figures (`roost_heap_allocated_bytes`) are sampled with the RSS.
        #[arg(long)]
        metrics: Option<String>,
    },
    /// SIGKILL and restart Roost under publish load; every acknowledged item must survive.
    Crash(crash::CrashArgs),
    /// Create users PREFIX<first> .. PREFIX<first+count-1> by in-band registration
    /// (XEP-0077); existing ones are fine.
    Register {
        /// First user number.
        #[arg(long, default_value_t = 0)]
        first: usize,
        /// How many users.
        #[arg(long)]
        count: usize,
        /// Registrations in flight at once.
        #[arg(long, default_value_t = 32)]
        parallel: usize,
    },
}

/// What a measured run gives (all scenarios but `soak`, `crash` and `register`).
pub(crate) struct Outcome {
    pub(crate) stats: Stats,
    /// Seconds over which `stats.count` was counted.
    pub(crate) seconds: f64,
    pub(crate) clients: usize,
    pub(crate) window: usize,
    pub(crate) rate: f64,
    pub(crate) cpu: Vec<(String, Option<f64>)>,
    pub(crate) cpu_start: Vec<Option<f64>>,
}

fn main() -> std::process::ExitCode {
    match measure(Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line, whatever RUST_BACKTRACE says.
            eprintln!("roost-load: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn measure(args: Args) -> anyhow::Result<()> {
    now_us();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    let scenario = match &args.scenario {
        Scenario::Publish { .. } => "publish",
        Scenario::Fanout { .. } => "fanout",
        Scenario::Route { .. } => "route",
        Scenario::SubscribeStorm { .. } => "subscribe-storm",
        Scenario::Blast { .. } => "blast",
        Scenario::Soak { .. } => return rt.block_on(soak::run(args)),
        Scenario::Crash(_) => return rt.block_on(crash::run(args)),
        Scenario::Register {
            first,
            count,
            parallel,
        } => {
            let (first, count, parallel) = (*first, *count, *parallel);
            return rt.block_on(wire::register_all(&args, first, count, parallel));
        }
    };
    let (service, size, label) = (args.service.clone(), args.size, args.label.clone());
    let mut o = rt.block_on(scenarios::run(args))?;
    // An IQ error carries its marker too and was counted as a reply: only
    // successes count.
    o.stats.count = o.stats.count.saturating_sub(o.stats.errors);
    o.stats.lat_us.sort_unstable();
    let l = &o.stats.lat_us;
    let per_s = if o.seconds > 0.0 {
        o.stats.count as f64 / o.seconds
    } else {
        0.0
    };
    let cpu: serde_json::Map<String, serde_json::Value> = o
        .cpu
        .iter()
        .map(|(n, c)| {
            let v = c.map_or(serde_json::Value::Null, |c| {
                serde_json::json!((c * 100.0).round() / 100.0)
            });
            (n.clone(), v)
        })
        .collect();
    let line = serde_json::json!({
        "scenario": scenario,
        "service": service,
        "label": label,
        "clients": o.clients,
        "window": o.window,
        "rate": o.rate,
        "size": size,
        "seconds": (o.seconds * 100.0).round() / 100.0,
        "count": o.stats.count,
        "per_s": (per_s * 10.0).round() / 10.0,
        "errors": o.stats.errors,
        "lat_us": {
            "p50": percentile(l, 0.5),
            "p90": percentile(l, 0.9),
            "p99": percentile(l, 0.99),
            "max": l.last().copied().unwrap_or(0),
        },
        "cpu_s": cpu,
    });
    println!("{line}");
    if let Some(e) = &o.stats.first_error {
        eprintln!("roost-load: first error: {e}");
    }
    Ok(())
}
