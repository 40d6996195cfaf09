//! `roost-migrate`: copy the nodes of another XEP-0060 pubsub service into Roost, over XMPP.
//!
//! It logs in as an account that administers nodes on the source service (Prosody's or
//! ejabberd's built-in pubsub, another Roost, any XEP-0060 service) and for every node it
//! lists (disco#items) and may configure, copies into the target service:
//!
//! 1. the configuration: each field of the source's form that the target's form also has,
//!    with a value the target offers; the others are reported as not copied;
//! 2. the items, oldest first, with their ids and payloads;
//! 3. the affiliations;
//! 4. the subscriptions (JID and state), then their options where the source gives them.
//!
//! Items come before subscriptions so that subscribers are not sent every old item again.
//! What cannot be kept is reported per node: the target records itself as the publisher of
//! every copied item and stamps it with the time of the copy; it assigns new subscription
//! ids; it sends each copied subscriber a subscription notification (XEP-0060 §8.8.4).
//! Setting another entity's subscription options needs the account to be an admin of the
//! target Roost (`admins`); without it the options are reported as not copied.
//!
//! ```text
//! roost-migrate --jid admin@example.org --from pubsub.old.example.org \
//!     --to pubsub.example.org [--node NODE]... [--dry-run]
//! ```
//!
//! The report goes to stdout, one block per node; progress to stderr. Exit code 0 when
//! every node that could be read was copied, 1 otherwise.
//!
//! Requests and replies are handled as minidom elements, not xmpp-parsers' pubsub types:
//! those reject what real servers send (ejabberd puts an RSM `<set/>` beside `<items/>`),
//! and `pubsub::owner::Affiliation` cannot be built outside the crate in 0.23.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use minidom::Element;
use roost_examples::connect::ConnectArgs;
use roost_examples::{init_logging, Session};
use xmpp_parsers::jid::Jid;
use xmpp_parsers::stanza_error::StanzaError;

mod source;
mod target;
mod xml;

/// Copy the nodes of a pubsub service into a Roost service.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Account to log in with: it must administer the nodes on the source and be allowed
    /// to create nodes on the target (an admin of the target Roost copies everything).
    #[arg(long)]
    jid: Jid,

    /// Password of that account.
    #[arg(long, env = "ROOST_PASSWORD", hide_env_values = true)]
    password: String,

    /// Where and how to connect (STARTTLS with a verified certificate by default).
    #[command(flatten)]
    connect: ConnectArgs,

    /// The pubsub service to copy from, e.g. pubsub.old.example.org.
    #[arg(long)]
    from: Jid,

    /// The Roost service to copy into, e.g. pubsub.example.org.
    #[arg(long)]
    to: Jid,

    /// Copy only these nodes (repeatable); default: every node the source lists.
    #[arg(long = "node", value_name = "NODE")]
    nodes: Vec<String>,

    /// Read the source and report what would be copied, without writing to the target.
    #[arg(long)]
    dry_run: bool,

    /// Seconds to wait for login and for each reply.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    init_logging();
    let args = Args::parse();
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("roost-migrate: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// One field of a data form.
#[derive(Debug, Clone)]
struct Field {
    var: String,
    kind: String,
    values: Vec<String>,
    options: Vec<String>,
}

/// A node as read from the source.
#[derive(Debug)]
struct Node {
    name: String,
    config: Vec<Field>,
    /// `(jid, affiliation)`, or why the source gave none.
    affiliations: Result<Vec<(String, String)>, String>,
    subscriptions: Result<Vec<Sub>, String>,
    items: Vec<Element>,
    /// What the source could not give, or gave oddly.
    notes: Vec<String>,
}

#[derive(Debug)]
struct Sub {
    jid: String,
    state: String,
    subid: Option<String>,
    /// The subscription options the source gave (none when it gives none).
    options: Vec<Field>,
}

/// Whether a node was copied.
enum Copy {
    /// Copied (or readable, in a dry run): a summary.
    Done(String),
    /// Not for this account, or not something Roost has: why.
    Skipped(String),
    /// Not copied, or only partly: why.
    Failed(String),
}

/// What happened to one node, for the report.
struct Outcome {
    node: String,
    result: Copy,
    /// Indented detail lines: `source:` (not given), `mapped:` (changed or dropped),
    /// `target:` (not kept).
    lines: Vec<String>,
}

struct Migrator {
    s: Session,
    me: String,
    from: Jid,
    to: Jid,
    limit: Duration,
}

impl Migrator {
    /// One request and its reply (see `Session::request`).
    async fn iq(
        &mut self,
        to: &Jid,
        set: bool,
        payload: Element,
    ) -> anyhow::Result<Result<Option<Element>, StanzaError>> {
        let to = to.clone();
        self.s.request(&to, set, payload, self.limit).await
    }
}

async fn run(args: Args) -> anyhow::Result<bool> {
    let limit = Duration::from_secs(args.timeout);
    let s = Session::connect(
        args.jid.clone(),
        args.password.clone(),
        &args.connect,
        limit,
        "migrate",
    )
    .await?;
    eprintln!("roost-migrate: connected as {}", s.bound);
    let mut m = Migrator {
        s,
        me: args.jid.to_bare().to_string(),
        from: args.from.clone(),
        to: args.to.clone(),
        limit,
    };
    let names = if args.nodes.is_empty() {
        m.list_nodes().await?
    } else {
        args.nodes.clone()
    };
    eprintln!(
        "roost-migrate: {} node(s) on {}: {}",
        names.len(),
        args.from,
        names.join(" ")
    );
    // The target's configuration form: which fields and values it accepts.
    let target_form = if args.dry_run {
        Vec::new()
    } else {
        m.default_config().await?
    };
    let mut outcomes = Vec::new();
    for name in names {
        eprintln!("roost-migrate: {name}");
        let outcome = match m.read(&name).await? {
            Err(result) => Outcome {
                node: name,
                result,
                lines: Vec::new(),
            },
            Ok(node) if args.dry_run => dry_outcome(node),
            Ok(node) => m.write(node, &target_form).await?,
        };
        outcomes.push(outcome);
    }
    m.s.close().await;
    Ok(report(&outcomes, &args))
}

/// Prints the report; true when no node failed (skipped ones are fine).
fn report(outcomes: &[Outcome], args: &Args) -> bool {
    let (mut copied, mut skipped, mut failed) = (0, 0, 0);
    for o in outcomes {
        match &o.result {
            Copy::Done(summary) => {
                copied += 1;
                println!("node {}: {summary}", o.node);
            }
            Copy::Skipped(why) => {
                skipped += 1;
                println!("node {}: skipped: {why}", o.node);
            }
            Copy::Failed(why) => {
                failed += 1;
                println!("node {}: FAILED: {why}", o.node);
            }
        }
        for l in &o.lines {
            println!("  {l}");
        }
    }
    let verb = if args.dry_run { "readable" } else { "copied" };
    println!(
        "{copied} node(s) {verb} from {} to {}, {skipped} skipped, {failed} failed",
        args.from, args.to
    );
    failed == 0
}

fn dry_outcome(node: Node) -> Outcome {
    let mut lines: Vec<String> = node.notes.iter().map(|n| format!("source: {n}")).collect();
    if let Err(e) = &node.affiliations {
        lines.push(format!("source: no affiliations: {e}"));
    }
    if let Err(e) = &node.subscriptions {
        lines.push(format!("source: no subscriptions: {e}"));
    }
    Outcome {
        result: Copy::Done(format!(
            "{} config field(s), {} item(s), {} affiliation(s), {} subscription(s) (dry run)",
            node.config.len(),
            node.items.len(),
            node.affiliations.as_ref().map_or(0, Vec::len),
            node.subscriptions.as_ref().map_or(0, Vec::len)
        )),
        node: node.name,
        lines,
    }
}
