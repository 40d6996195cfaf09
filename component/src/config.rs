//! Configuration: command-line flags, `ROOST_…` environment variables and a TOML file.
//!
//! Precedence: flag, then environment, then file, then default. Every setting exists in all
//! three forms, so the same names appear in `--help`, the README and `roost.toml`.

use crate::guard::StanzaLimits;
use crate::quota::RateLimit;
use crate::relay::RelaySpec;
use clap::Parser;
use roost_nodes::policy::CreatePolicy;
use roost_nodes::{BareJid, Policy};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Roost: an XEP-0060 publish-subscribe service attached to an XMPP server as an
/// XEP-0114 external component.
#[derive(Debug, Parser, Default)]
#[command(name = "roost", version, about, long_about = None)]
pub struct Cli {
    /// An offline tool instead of the service (`roost export`, `import`, `check`).
    #[command(subcommand)]
    pub tool: Option<crate::tools::Tool>,
    /// TOML file with any of the settings below (flags and environment variables win).
    #[arg(long, env = "ROOST_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Check the configuration (flags, environment and file) and exit: 0 when it is valid,
    /// 2 with one line naming the bad setting otherwise. Connects to nothing, opens no store.
    #[arg(long)]
    pub check_config: bool,
    /// The server's component port [default: 127.0.0.1:5347].
    #[arg(long, env = "ROOST_SERVER", value_name = "HOST:PORT")]
    pub server: Option<String>,
    /// The component's domain, e.g. pubsub.example.org (required).
    #[arg(long, env = "ROOST_JID", value_name = "DOMAIN")]
    pub jid: Option<String>,
    /// The shared secret (the server's `component_secret` / `password`).
    #[arg(
        long,
        env = "ROOST_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub secret: Option<String>,
    /// Read the shared secret from this file (trailing newline ignored).
    #[arg(long, env = "ROOST_SECRET_FILE", value_name = "FILE")]
    pub secret_file: Option<PathBuf>,
    /// Directory of the sled database [default: ./roost-data].
    #[arg(long, env = "ROOST_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Log filter, tracing syntax, e.g. `info` or `roost=debug` [default: info].
    #[arg(long, env = "ROOST_LOG", value_name = "FILTER")]
    pub log: Option<String>,
    /// Seconds of silence on the link before Roost pings the server to keep it alive [default: 60].
    #[arg(long, env = "ROOST_KEEPALIVE", value_name = "SECS")]
    pub keepalive: Option<u64>,
    /// Acknowledge a change only once it is on disk [default: true]. `false` is for measuring
    /// what durability costs: acknowledged changes may then be lost in a crash.
    #[arg(long, env = "ROOST_DURABLE", value_name = "BOOL")]
    pub durable: Option<bool>,
    /// When requests come back to back (a batch starts within twice this of the last sync),
    /// wait up to this long from its first request for more before syncing, so that they
    /// share the flush; 0 turns it off, at most 10000 [default: 500].
    #[arg(long, env = "ROOST_GROUP_COMMIT_WAIT_US", value_name = "MICROS")]
    pub group_commit_wait_us: Option<u64>,
    /// JIDs that are owners of every node (comma-separated).
    #[arg(
        long,
        env = "ROOST_ADMINS",
        value_delimiter = ',',
        value_name = "JID,…"
    )]
    pub admins: Option<Vec<String>>,
    /// Who may create nodes: `domain` (users of the parent domain), `anyone`, `admins`, or a
    /// comma-separated list of domains [default: domain].
    #[arg(long, env = "ROOST_CREATE_NODES", value_name = "WHO")]
    pub create_nodes: Option<String>,
    /// Items kept per node at most; also what `max_items = max` means [default: 10000].
    #[arg(long, env = "ROOST_MAX_ITEMS_PER_NODE", value_name = "N")]
    pub max_items_per_node: Option<u64>,
    /// Largest item payload accepted, in bytes [default: 262144].
    #[arg(long, env = "ROOST_MAX_PAYLOAD_SIZE", value_name = "BYTES")]
    pub max_payload_size: Option<u64>,
    /// Largest stanza read from the server, in bytes; a larger one gets `policy-violation`
    /// [default: 1048576, or 2 × max_payload_size if that is more].
    #[arg(long, env = "ROOST_MAX_STANZA_SIZE", value_name = "BYTES")]
    pub max_stanza_size: Option<u64>,
    /// Deepest element nesting accepted in a stanza (the stanza itself is level 1); a deeper
    /// one gets `policy-violation` [default: 128, at most 1024].
    #[arg(long, env = "ROOST_MAX_STANZA_DEPTH", value_name = "LEVELS")]
    pub max_stanza_depth: Option<u64>,
    /// Nodes one JID may own [default: 1000].
    #[arg(long, env = "ROOST_MAX_NODES_PER_JID", value_name = "N")]
    pub max_nodes_per_jid: Option<u64>,
    /// Subscriptions one node may hold [default: 1000000].
    #[arg(long, env = "ROOST_MAX_SUBSCRIPTIONS_PER_NODE", value_name = "N")]
    pub max_subscriptions_per_node: Option<u64>,
    /// Subscriptions one JID may hold [default: 10000].
    #[arg(long, env = "ROOST_MAX_SUBSCRIPTIONS_PER_JID", value_name = "N")]
    pub max_subscriptions_per_jid: Option<u64>,
    /// Longest content filter (`x-roost#filter`) accepted, in bytes [default: 1024].
    #[arg(long, env = "ROOST_MAX_FILTER_LENGTH", value_name = "BYTES")]
    pub max_filter_length: Option<u64>,
    /// Most predicates in one content filter [default: 32].
    #[arg(long, env = "ROOST_MAX_FILTER_PREDICATES", value_name = "N")]
    pub max_filter_predicates: Option<u64>,
    /// Requests per second one bare JID may sustain; above it requests get
    /// `resource-constraint` (wait). 0 turns the limit off [default: 10000].
    #[arg(long, env = "ROOST_RATE_LIMIT", value_name = "N")]
    pub rate_limit: Option<u64>,
    /// Requests one bare JID may send in a burst above the rate [default: 2 × rate_limit].
    #[arg(long, env = "ROOST_RATE_BURST", value_name = "N")]
    pub rate_burst: Option<u64>,
    /// Children one collection (XEP-0248) may hold at most; what a collection's
    /// `pubsub#children_max = max` means [default: 10000].
    #[arg(long, env = "ROOST_MAX_CHILDREN", value_name = "N")]
    pub max_children: Option<u64>,
    /// Topic hierarchies from node names: with a separator such as `/`, creating
    /// `logs/web/nginx` also creates the collections `logs/web` and `logs` when missing
    /// (owned by the creator, with the new node's access model) and associates each name
    /// with the one above it. Empty: names are flat [default: empty].
    #[arg(long, env = "ROOST_HIERARCHY", value_name = "SEPARATOR")]
    pub hierarchy: Option<String>,
    /// Relay nodes: local node LOCAL mirrors node NODE of pubsub service SERVICE
    /// (comma-separated, e.g. `logs=pubsub.a.example/logs`). The service subscribes upstream
    /// once and republishes locally.
    #[arg(
        long = "relay",
        env = "ROOST_RELAYS",
        value_delimiter = ',',
        value_name = "LOCAL=SERVICE/NODE,…"
    )]
    pub relays: Option<Vec<String>>,
    /// Serve Prometheus metrics at /metrics and the health at /health on this address,
    /// e.g. 127.0.0.1:9100 [default: off].
    #[arg(long, env = "ROOST_METRICS_LISTEN", value_name = "HOST:PORT")]
    pub metrics_listen: Option<String>,
}

impl Cli {
    /// The command line and environment as at start-up, parsed again (for a reload).
    pub fn try_parse_from_env() -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::env::args_os())
    }
}

/// The TOML file: the same settings, with the same names in snake_case.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    server: Option<String>,
    jid: Option<String>,
    secret: Option<String>,
    secret_file: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    log: Option<String>,
    keepalive: Option<u64>,
    durable: Option<bool>,
    group_commit_wait_us: Option<u64>,
    admins: Option<Vec<String>>,
    create_nodes: Option<String>,
    max_items_per_node: Option<u64>,
    max_payload_size: Option<u64>,
    max_stanza_size: Option<u64>,
    max_stanza_depth: Option<u64>,
    max_nodes_per_jid: Option<u64>,
    max_subscriptions_per_node: Option<u64>,
    max_subscriptions_per_jid: Option<u64>,
    max_filter_length: Option<u64>,
    max_filter_predicates: Option<u64>,
    rate_limit: Option<u64>,
    rate_burst: Option<u64>,
    max_children: Option<u64>,
    hierarchy: Option<String>,
    relays: Option<Vec<String>>,
    metrics_listen: Option<String>,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the server's component listener is.
    pub server: String,
    /// The component's domain.
    pub jid: BareJid,
    /// The shared secret.
    pub secret: String,
    /// The sled directory.
    pub data_dir: PathBuf,
    /// The tracing filter.
    pub log: String,
    /// Silence before a keepalive ping.
    pub keepalive: Duration,
    /// Flush before acknowledging.
    pub durable: bool,
    /// How long a batch that follows the last sync closely gathers requests (zero: never).
    pub group_commit_wait: Duration,
    /// What the engine enforces.
    pub policy: Policy,
    /// What one stanza read from the link may be.
    pub limits: StanzaLimits,
    /// Per-JID request rate; `None` when turned off.
    pub rate_limit: Option<RateLimit>,
    /// Relay nodes (see [`crate::relay`]).
    pub relays: Vec<RelaySpec>,
    /// Where the metrics endpoint listens; `None`: no endpoint.
    pub metrics_listen: Option<std::net::SocketAddr>,
}

/// A configuration problem, phrased as one line that names the field.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn bad(field: &str, why: impl std::fmt::Display) -> ConfigError {
    ConfigError(format!("invalid configuration: {field}: {why}"))
}

impl Config {
    /// Resolve flags and environment (already in `cli`) over the TOML file they name.
    pub fn resolve(cli: Cli) -> Result<Config, ConfigError> {
        let file = match &cli.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        macro_rules! pick {
            ($f:ident) => {
                cli.$f.or(file.$f)
            };
        }
        let server = pick!(server).unwrap_or_else(|| "127.0.0.1:5347".to_owned());
        if server
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok())
            .is_none()
        {
            return Err(bad("server", format!("{server:?} is not HOST:PORT")));
        }
        let jid_s = pick!(jid).ok_or_else(|| {
            bad(
                "jid",
                "missing: give the component's domain with --jid pubsub.example.org",
            )
        })?;
        let jid: BareJid = jid_s
            .parse()
            .map_err(|e| bad("jid", format!("{jid_s:?}: {e}")))?;
        if jid.node().is_some() {
            return Err(bad(
                "jid",
                format!("{jid_s:?} must be a bare domain such as pubsub.example.org"),
            ));
        }
        let secret = match (pick!(secret), pick!(secret_file)) {
            (Some(s), _) => s,
            (None, Some(path)) => std::fs::read_to_string(&path)
                .map(|s| s.trim_end_matches(['\r', '\n']).to_owned())
                .map_err(|e| bad("secret_file", format!("{}: {e}", path.display())))?,
            (None, None) => {
                return Err(bad(
                    "secret",
                    "missing: give --secret, ROOST_SECRET or --secret-file",
                ))
            }
        };
        if secret.is_empty() {
            return Err(bad("secret", "is empty"));
        }
        let keepalive = pick!(keepalive).unwrap_or(60);
        if keepalive == 0 {
            return Err(bad("keepalive", "must be at least 1 second"));
        }

        let mut policy = Policy::default();
        for a in pick!(admins).unwrap_or_default() {
            let a = a.trim();
            if a.is_empty() {
                continue;
            }
            let j: BareJid = a
                .parse()
                .map_err(|e| bad("admins", format!("{a:?}: {e}")))?;
            policy.admins.push(j);
        }
        policy.create = match pick!(create_nodes).as_deref().unwrap_or("domain") {
            "domain" => {
                let parent = jid
                    .domain()
                    .as_str()
                    .split_once('.')
                    .map(|(_, p)| p.to_owned())
                    .ok_or_else(|| {
                        bad("create_nodes", "`domain` needs a component domain with a parent, such as pubsub.example.org")
                    })?;
                CreatePolicy::Domains(vec![parent])
            }
            "anyone" => CreatePolicy::Anyone,
            "admins" => CreatePolicy::AdminsOnly,
            list => CreatePolicy::Domains(list.split(',').map(|d| d.trim().to_owned()).collect()),
        };
        macro_rules! cap {
            ($f:ident) => {
                if let Some(v) = pick!($f) {
                    if v == 0 {
                        return Err(bad(stringify!($f), "must be at least 1"));
                    }
                    policy.$f = v;
                }
            };
        }
        cap!(max_items_per_node);
        cap!(max_payload_size);
        cap!(max_nodes_per_jid);
        cap!(max_subscriptions_per_node);
        cap!(max_subscriptions_per_jid);
        // The filter limits are the engine's `usize`s; a value beyond it is no limit.
        let size = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        if let Some(v) = pick!(max_filter_length) {
            if v == 0 {
                return Err(bad("max_filter_length", "must be at least 1"));
            }
            policy.filter_limits.max_len = size(v);
        }
        if let Some(v) = pick!(max_filter_predicates) {
            if v == 0 {
                return Err(bad("max_filter_predicates", "must be at least 1"));
            }
            policy.filter_limits.max_predicates = size(v);
        }
        cap!(max_children);
        policy.hierarchy = pick!(hierarchy).filter(|s| !s.is_empty());
        policy.default_config.max_payload_size = policy
            .default_config
            .max_payload_size
            .min(policy.max_payload_size);

        let limits = stanza_limits(
            pick!(max_stanza_depth),
            pick!(max_stanza_size),
            policy.max_payload_size,
        )?;

        let group_commit_wait = pick!(group_commit_wait_us).unwrap_or(500);
        if group_commit_wait > 10_000 {
            return Err(bad(
                "group_commit_wait_us",
                format!("{group_commit_wait} is more than 10000 (10 ms): every request under load would wait that long"),
            ));
        }

        let rate_limit = match pick!(rate_limit).unwrap_or(10_000) {
            0 => None,
            per_sec => {
                let burst = pick!(rate_burst).unwrap_or(per_sec.saturating_mul(2));
                if burst == 0 {
                    return Err(bad("rate_burst", "must be at least 1"));
                }
                Some(RateLimit {
                    per_sec: per_sec as f64,
                    burst: burst as f64,
                })
            }
        };

        let mut relays: Vec<RelaySpec> = Vec::new();
        for r in pick!(relays).unwrap_or_default() {
            if r.trim().is_empty() {
                continue;
            }
            let spec: RelaySpec = r.parse().map_err(|e| bad("relays", e))?;
            if relays.iter().any(|o| o.local == spec.local) {
                return Err(bad(
                    "relays",
                    format!("local node {:?} is named twice", spec.local),
                ));
            }
            relays.push(spec);
        }
        if !relays.is_empty() {
            // The service publishes the relayed items itself, on nodes it owns.
            policy.admins.push(jid.clone());
        }

        let metrics_listen = match pick!(metrics_listen).filter(|a| !a.trim().is_empty()) {
            None => None,
            Some(a) => Some(a.trim().parse().map_err(|e| {
                bad(
                    "metrics_listen",
                    format!("{a:?}: {e} (give an IP address and port, e.g. 127.0.0.1:9100)"),
                )
            })?),
        };

        Ok(Config {
            server,
            jid,
            secret,
            data_dir: pick!(data_dir).unwrap_or_else(|| PathBuf::from("./roost-data")),
            log: pick!(log).unwrap_or_else(|| "info".to_owned()),
            keepalive: Duration::from_secs(keepalive),
            durable: pick!(durable).unwrap_or(true),
            group_commit_wait: Duration::from_micros(group_commit_wait),
            policy,
            limits,
            rate_limit,
            relays,
            metrics_listen,
        })
    }

    /// The domain the component hangs off (`example.org` for `pubsub.example.org`): where
    /// keepalive pings go.
    pub fn server_domain(&self) -> String {
        let d = self.jid.domain().as_str();
        d.split_once('.').map(|(_, p)| p).unwrap_or(d).to_owned()
    }
}

/// The stanza limits, checked against the largest payload: a stanza limit below it would
/// refuse with `policy-violation` payloads the node would take, and answer payloads a little
/// over it the same way instead of with `payload-too-big` (XEP-0060 §7.1.3.4).
fn stanza_limits(
    depth: Option<u64>,
    size: Option<u64>,
    max_payload: u64,
) -> Result<StanzaLimits, ConfigError> {
    let max_depth = depth.unwrap_or(StanzaLimits::DEFAULT_DEPTH as u64);
    if !(1..=StanzaLimits::MAX_DEPTH as u64).contains(&max_depth) {
        return Err(bad(
            "max_stanza_depth",
            format!(
                "{max_depth} is not between 1 and {} (parsing costs a stanza's size times its depth)",
                StanzaLimits::MAX_DEPTH
            ),
        ));
    }
    let max_bytes = match size {
        Some(b) if b <= max_payload => {
            return Err(bad(
                "max_stanza_size",
                format!("{b} must be larger than max_payload_size ({max_payload}): raise it, or lower max_payload_size"),
            ))
        }
        Some(b) => b,
        None => (StanzaLimits::DEFAULT_BYTES as u64).max(max_payload.saturating_mul(2)),
    };
    Ok(StanzaLimits {
        max_depth: max_depth as usize,
        max_bytes: usize::try_from(max_bytes).unwrap_or(usize::MAX),
    })
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError(format!(
            "invalid configuration: config: {}: {e}",
            path.display()
        ))
    })?;
    toml::from_str(&text).map_err(|e| {
        // toml's message names the offending key and line; keep it on one line.
        let msg = e.to_string().replace('\n', " ");
        ConfigError(format!(
            "invalid configuration: {}: {}",
            path.display(),
            msg.trim()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        let mut v = vec!["roost"];
        v.extend_from_slice(args);
        Cli::try_parse_from(v).unwrap()
    }

    /// The least a command line needs (a JID and a secret) plus `extra`, resolved.
    fn resolve_with(extra: &[&str]) -> Result<Config, ConfigError> {
        let mut args = vec!["--jid", "pubsub.localhost", "--secret", "s"];
        args.extend_from_slice(extra);
        Config::resolve(cli(&args))
    }

    #[test]
    fn issue_form_works() {
        let c = Config::resolve(cli(&[
            "--server",
            "127.0.0.1:5347",
            "--jid",
            "pubsub.localhost",
            "--secret",
            "s",
            "--data-dir",
            "/tmp/d",
        ]))
        .unwrap();
        assert_eq!(c.jid.to_string(), "pubsub.localhost");
        assert_eq!(c.data_dir, PathBuf::from("/tmp/d"));
        assert_eq!(
            c.policy.create,
            CreatePolicy::Domains(vec!["localhost".into()])
        );
        assert_eq!(c.server_domain(), "localhost");
    }

    #[test]
    fn missing_jid_names_the_field() {
        let e = Config::resolve(cli(&["--secret", "s"])).unwrap_err();
        assert!(e.0.contains("jid"), "{e}");
    }

    #[test]
    fn file_is_read_and_flags_win() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("roost.toml");
        std::fs::write(&p, "jid = \"pubsub.example.org\"\nsecret = \"f\"\nmax_items_per_node = 5\nadmins = [\"root@example.org\"]\n").unwrap();
        let c =
            Config::resolve(cli(&["--config", p.to_str().unwrap(), "--secret", "flag"])).unwrap();
        assert_eq!(c.secret, "flag");
        assert_eq!(c.policy.max_items_per_node, 5);
        assert_eq!(c.policy.admins.len(), 1);
    }

    #[test]
    fn filter_limits_from_file_and_flags() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("roost.toml");
        std::fs::write(&p, "jid = \"pubsub.example.org\"\nsecret = \"f\"\nmax_filter_length = 200\nmax_filter_predicates = 4\n").unwrap();
        let path = p.to_str().unwrap();
        let c = Config::resolve(cli(&["--config", path])).unwrap();
        assert_eq!(c.policy.filter_limits.max_len, 200);
        assert_eq!(c.policy.filter_limits.max_predicates, 4);
        let c = Config::resolve(cli(&["--config", path, "--max-filter-predicates", "9"])).unwrap();
        assert_eq!(c.policy.filter_limits.max_predicates, 9);
        let c = resolve_with(&[]).unwrap();
        assert_eq!(c.policy.filter_limits.max_len, 1024);
        assert!(resolve_with(&["--max-filter-length", "0"]).is_err());
    }

    #[test]
    fn hierarchy_and_max_children() {
        let c = resolve_with(&[]).unwrap();
        assert_eq!(c.policy.hierarchy, None);
        assert_eq!(c.policy.max_children, 10_000);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("roost.toml");
        std::fs::write(
            &p,
            "jid = \"pubsub.example.org\"\nsecret = \"f\"\nhierarchy = \"/\"\nmax_children = 5\n",
        )
        .unwrap();
        let c = Config::resolve(cli(&["--config", p.to_str().unwrap()])).unwrap();
        assert_eq!(c.policy.hierarchy.as_deref(), Some("/"));
        assert_eq!(c.policy.max_children, 5);
        assert_eq!(
            resolve_with(&["--hierarchy", ""]).unwrap().policy.hierarchy,
            None
        );
        assert!(resolve_with(&["--max-children", "0"]).is_err());
    }

    #[test]
    fn unknown_file_key_names_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("roost.toml");
        std::fs::write(&p, "jid = \"pubsub.example.org\"\nsecert = \"f\"\n").unwrap();
        let e = Config::resolve(cli(&["--config", p.to_str().unwrap()])).unwrap_err();
        assert!(e.0.contains("secert"), "{e}");
        assert!(!e.0.contains('\n'));
    }

    #[test]
    fn rate_limit_defaults_and_off() {
        let c = resolve_with(&[]).unwrap();
        assert_eq!(
            c.rate_limit,
            Some(RateLimit {
                per_sec: 10_000.0,
                burst: 20_000.0
            })
        );
        assert_eq!(
            resolve_with(&["--rate-limit", "0"]).unwrap().rate_limit,
            None
        );
        assert!(resolve_with(&["--rate-burst", "0"]).is_err());
    }

    #[test]
    fn group_commit_wait_defaults_to_500us_and_is_bounded() {
        let wait = |extra: &[&str]| resolve_with(extra).map(|c| c.group_commit_wait);
        assert_eq!(wait(&[]).unwrap(), Duration::from_micros(500));
        let off = ["--group-commit-wait-us", "0"];
        assert_eq!(wait(&off).unwrap(), Duration::ZERO);
        let e = wait(&["--group-commit-wait-us", "10001"]).unwrap_err();
        assert!(e.0.contains("group_commit_wait_us"), "{e}");
    }

    #[test]
    fn relays_from_flags_and_file() {
        let c = Config::resolve(cli(&[
            "--jid",
            "relay.localhost",
            "--secret",
            "s",
            "--relay",
            "a=pubsub.x.example/logs,b=pubsub.y.example/n/m",
        ]))
        .unwrap();
        assert_eq!(c.relays.len(), 2);
        assert_eq!(c.relays[1].node, "n/m");
        assert!(c.policy.is_admin(&"relay.localhost".parse().unwrap()));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("roost.toml");
        std::fs::write(
            &p,
            "jid = \"relay.localhost\"\nsecret = \"f\"\nrelays = [\"a=pubsub.x.example/logs\"]\n",
        )
        .unwrap();
        let c = Config::resolve(cli(&["--config", p.to_str().unwrap()])).unwrap();
        assert_eq!(c.relays[0].to_string(), "a=pubsub.x.example/logs");
        for bad in ["a=nowhere", "a=x.example/n,a=y.example/n"] {
            let e = Config::resolve(cli(&[
                "--jid",
                "relay.localhost",
                "--secret",
                "s",
                "--relay",
                bad,
            ]))
            .unwrap_err();
            assert!(e.0.contains("relays"), "{e}");
        }
        let plain = Config::resolve(cli(&["--jid", "pubsub.localhost", "--secret", "s"])).unwrap();
        assert!(plain.relays.is_empty());
        assert!(!plain.policy.is_admin(&"pubsub.localhost".parse().unwrap()));
    }

    #[test]
    fn stanza_limits_default_and_follow_the_payload_cap() {
        assert_eq!(resolve_with(&[]).unwrap().limits, StanzaLimits::default());
        let big = resolve_with(&["--max-payload-size", "4000000"]).unwrap();
        assert_eq!(big.limits.max_bytes, 8_000_000);
        let set =
            resolve_with(&["--max-stanza-size", "300000", "--max-stanza-depth", "16"]).unwrap();
        assert_eq!(
            set.limits,
            StanzaLimits {
                max_depth: 16,
                max_bytes: 300_000
            }
        );
        for (extra, field) in [
            (&["--max-stanza-size", "262144"][..], "max_stanza_size"),
            (&["--max-stanza-depth", "0"][..], "max_stanza_depth"),
            (&["--max-stanza-depth", "5000"][..], "max_stanza_depth"),
        ] {
            let e = resolve_with(extra).unwrap_err();
            assert!(e.0.contains(field), "{e}");
        }
    }

    #[test]
    fn metrics_listen_is_off_by_default_and_checked() {
        assert_eq!(resolve_with(&[]).unwrap().metrics_listen, None);
        let c = resolve_with(&["--metrics-listen", "127.0.0.1:9100"]).unwrap();
        assert_eq!(c.metrics_listen, Some("127.0.0.1:9100".parse().unwrap()));
        let e = resolve_with(&["--metrics-listen", "localhost"]).unwrap_err();
        assert!(e.0.contains("metrics_listen"), "{e}");
    }

    #[test]
    fn bad_values_are_refused() {
        for args in [
            &[
                "--jid",
                "pubsub.localhost",
                "--secret",
                "s",
                "--server",
                "nope",
            ][..],
            &["--jid", "user@pubsub.localhost", "--secret", "s"][..],
            &[
                "--jid",
                "pubsub.localhost",
                "--secret",
                "s",
                "--max-items-per-node",
                "0",
            ][..],
        ] {
            assert!(Config::resolve(cli(args)).is_err(), "{args:?}");
        }
    }
}
