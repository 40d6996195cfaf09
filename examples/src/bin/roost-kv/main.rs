//! `roost-kv`: a pubsub node as a key/value store, after Zeek Broker's master/clone stores.
//! The node is the master; item id = key, payload = value:
//!
//! ```xml
//! <item id='KEY'><value xmlns='urn:roost:kv:0'>VALUE</value></item>
//! ```
//!
//! ```text
//! roost-kv --jid alice@example.org --node config create --writer bob@example.org
//! roost-kv --jid alice@example.org --node config put color blue
//! roost-kv --jid alice@example.org --node config get color        # blue
//! roost-kv --jid alice@example.org --node config del color
//! roost-kv --jid bob@example.org --node config watch              # put/del lines as they happen
//! roost-kv --jid bob@example.org --node config clone --state config.json --dump now.json
//! ```
//!
//! * `create` makes the node a store: `pubsub#max_items=max`, `persist_items`,
//!   `deliver_payloads`, `notify_retract`, `send_last_published_item=never`; an existing
//!   node of the account's is given that configuration. `--writer JID` makes others
//!   publishers (they may put and delete any key).
//! * Writes are publishes and retractions (with `notify='true'`). The service orders them:
//!   the last write of a key it accepts wins, and every clone applies them in that order.
//! * `clone` keeps a copy: it reads the node's whole history when it starts and after every
//!   reconnection (see `catchup.rs` for why the whole history, and why that is right while
//!   writes go on), then follows the notifications. Lines on stdin (`put KEY VALUE`,
//!   `del KEY`, `dump`) are written to the node, in order, one at a time, retried while the
//!   service is away; the copy changes when the node's notification comes back, never
//!   before, so all clones see the same order.
//! * The line protocol (stdin of `clone` and `write`, stdout of `clone` and `watch`) writes
//!   keys and values with `\\`, `\t`, `\n`, `\r` and `\xHH` escapes (and spaces in keys as
//!   `\x20`): what `watch` prints can be fed to `write`.

mod catchup;
mod kv;
mod live;
mod wire;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Parser, Subcommand};
use minidom::Element;
use roost_examples::connect::ConnectArgs;
use roost_examples::{describe_error, init_logging, Session};
use xmpp_parsers::jid::Jid;
use xmpp_parsers::stanza_error::{DefinedCondition, StanzaError};

/// A pubsub node as a key/value store: one item per key.
#[derive(Parser, Debug)]
#[command(version)]
pub struct Args {
    /// Account to log in with, e.g. alice@example.org.
    #[arg(long)]
    jid: Jid,

    /// Password of that account.
    #[arg(long, env = "ROOST_PASSWORD", hide_env_values = true)]
    password: String,

    /// Where and how to connect (STARTTLS with a verified certificate by default).
    #[command(flatten)]
    connect: ConnectArgs,

    /// JID of the pubsub service.
    #[arg(long, default_value = "pubsub.localhost")]
    service: Jid,

    /// The node holding the store.
    #[arg(long)]
    node: String,

    /// Resource to log in with; `watch` and `clone` subscribe this full JID. Default:
    /// `roost-kv-watch` and `roost-kv-clone` (give two clones of one account different
    /// ones), a server-chosen one for the other commands.
    #[arg(long)]
    resource: Option<String>,

    /// Seconds to wait for login and for each reply.
    #[arg(long, default_value_t = 15)]
    timeout: u64,

    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Create the node as a store, or give the account's existing node the store's
    /// configuration.
    Create {
        /// Make this JID a publisher of the node (may put and delete); repeatable.
        #[arg(long = "writer", value_name = "JID")]
        writers: Vec<Jid>,
    },
    /// Set KEY to VALUE (both taken as they are, no escapes).
    Put { key: String, value: String },
    /// Print the value of KEY; exit code 3 when there is no such key.
    Get { key: String },
    /// Delete KEY (deleting a missing key is not an error).
    Del { key: String },
    /// Write the `put KEY VALUE` / `del KEY` lines of stdin to the node, in order; exit
    /// once all are acknowledged.
    Write,
    /// Print every change as it happens: `put KEY VALUE`, `del KEY`, `purge`, `deleted`.
    Watch,
    /// Keep a copy of the store, follow it, print its changes, and write stdin's lines.
    Clone {
        /// Keep the copy in this file (JSON), loaded at start and rewritten on changes.
        #[arg(long, value_name = "FILE")]
        state: Option<PathBuf>,
        /// Write the copy to this file (JSON) on SIGUSR1, on a `dump` line and on exit.
        #[arg(long, value_name = "FILE")]
        dump: Option<PathBuf>,
        /// Also read the whole history again every SECS seconds (0: only on start, on
        /// reconnection and after the service was seen away).
        #[arg(long, value_name = "SECS", default_value_t = 0)]
        resync: u64,
    },
}

/// Exit code of `get` for a missing key.
const NO_SUCH_KEY: u8 = 3;

#[tokio::main]
async fn main() -> ExitCode {
    init_logging();
    let args = Args::parse();
    match run(args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("roost-kv: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Cmd::Put { key, .. } | Cmd::Get { key } | Cmd::Del { key } = &args.command {
        kv::check_text("key", key)?;
    }
    if let Cmd::Put { value, .. } = &args.command {
        kv::check_text("value", value)?;
    }
    // SIGUSR1 must be caught before anything can send it: its default action ends the
    // process.
    let usr1 = match args.command {
        Cmd::Clone { .. } => Some(
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())
                .context("catching SIGUSR1")?,
        ),
        _ => None,
    };
    let default_resource = match args.command {
        Cmd::Watch => Some("roost-kv-watch"),
        Cmd::Clone { .. } => Some("roost-kv-clone"),
        _ => None,
    };
    let jid = match args.resource.as_deref().or(default_resource) {
        Some(r) => format!("{}/{r}", args.jid.to_bare())
            .parse()
            .context("--jid with --resource is not a valid JID")?,
        None => args.jid.clone(),
    };
    let limit = Duration::from_secs(args.timeout);
    let mut s = Session::connect(jid, args.password.clone(), &args.connect, limit, "kv").await?;
    tracing::info!("connected as {}", s.bound);
    let code = match &args.command {
        Cmd::Create { writers } => create(&mut s, &args, writers).await.map(|_| 0),
        Cmd::Put { key, value } => {
            let change = kv::Change::Put(key.clone(), value.clone());
            one_write(&mut s, &args, &change).await.map(|_| 0)
        }
        Cmd::Del { key } => one_write(&mut s, &args, &kv::Change::Del(key.clone()))
            .await
            .map(|_| 0),
        Cmd::Get { key } => get(&mut s, &args, key).await,
        Cmd::Write => live::run(&mut s, &args, live::Mode::Write).await.map(|_| 0),
        Cmd::Watch => live::run(&mut s, &args, live::Mode::Watch).await.map(|_| 0),
        Cmd::Clone {
            state,
            dump,
            resync,
        } => {
            let mode = live::Mode::Clone(live::CloneOpts {
                state: state.clone(),
                dump: dump.clone(),
                resync: (*resync > 0).then(|| Duration::from_secs(*resync)),
                usr1,
            });
            live::run(&mut s, &args, mode).await.map(|_| 0)
        }
    };
    s.close().await;
    code.map(ExitCode::from)
}

/// One IQ `set` (or `get`, when not `set`) and its reply: `Err` when there is none in time.
async fn ask(
    s: &mut Session,
    args: &Args,
    set: bool,
    payload: Element,
) -> anyhow::Result<Result<Option<Element>, StanzaError>> {
    let limit = Duration::from_secs(args.timeout);
    s.request(&args.service, set, payload, limit).await
}

async fn create(s: &mut Session, args: &Args, writers: &[Jid]) -> anyhow::Result<()> {
    let node = &args.node;
    match ask(s, args, true, wire::create(node)).await? {
        Ok(_) => eprintln!("roost-kv: created node {node}"),
        Err(e) if e.defined_condition == DefinedCondition::Conflict => {
            match ask(s, args, true, wire::configure(node)).await? {
                Ok(_) => eprintln!("roost-kv: node {node} exists; configured as a store"),
                Err(e) => bail!(
                    "node {node} exists but configuring it as a store failed: {} \
                     (only its owner can; ask them to run `roost-kv create`)",
                    describe_error(&e)
                ),
            }
        }
        Err(e) => bail!("creating node {node} failed: {}", describe_error(&e)),
    }
    if !writers.is_empty() {
        if let Err(e) = ask(s, args, true, wire::affiliations(node, writers)).await? {
            bail!(
                "making the writers publishers failed: {}",
                describe_error(&e)
            );
        }
        eprintln!("roost-kv: {} writer(s) may put and delete", writers.len());
    }
    Ok(())
}

async fn one_write(s: &mut Session, args: &Args, change: &kv::Change) -> anyhow::Result<()> {
    match ask(s, args, true, wire::write(&args.node, change)).await? {
        Ok(_) => Ok(()),
        Err(e) if matches!(change, kv::Change::Del(_)) && live::already_gone(&e) => {
            eprintln!("roost-kv: {} was not set", change.key());
            Ok(())
        }
        Err(e) => bail!("{} failed: {}", change.line(), describe_error(&e)),
    }
}

async fn get(s: &mut Session, args: &Args, key: &str) -> anyhow::Result<u8> {
    let reply = match ask(s, args, false, wire::get(&args.node, key)).await? {
        Ok(reply) => reply,
        Err(e) => bail!(
            "reading {key} from node {} failed: {}",
            args.node,
            describe_error(&e)
        ),
    };
    match wire::got(reply, key)? {
        Some(Some(value)) => {
            println!("{value}");
            Ok(0)
        }
        Some(None) => bail!("item {key} is not a <value xmlns='{}'/>", kv::KV_NS),
        None => {
            eprintln!("roost-kv: no such key: {key}");
            Ok(NO_SUCH_KEY)
        }
    }
}
