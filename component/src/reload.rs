//! SIGHUP: the configuration read again and what can change while linked applied — the
//! engine's policy (limits, admins, who may create nodes), the request rate and the log
//! filter. Every other setting takes a restart; the log names those that changed.

use std::sync::Arc;

use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::config::{Cli, Config};

/// The settings a reload cannot change, as (name, changed?) between two configurations.
fn restart_only(old: &Config, new: &Config) -> Vec<&'static str> {
    let changed = [
        ("server", old.server != new.server),
        ("jid", old.jid != new.jid),
        ("secret", old.secret != new.secret),
        ("data_dir", old.data_dir != new.data_dir),
        ("keepalive", old.keepalive != new.keepalive),
        ("durable", old.durable != new.durable),
        (
            "group_commit_wait_us",
            old.group_commit_wait != new.group_commit_wait,
        ),
        (
            "relays",
            old.relays
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                != new
                    .relays
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>(),
        ),
        ("metrics_listen", old.metrics_listen != new.metrics_listen),
    ];
    changed
        .into_iter()
        .filter_map(|(name, c)| c.then_some(name))
        .collect()
}

/// The configuration in force after a reload from `old` to `new`: `new`'s policy, rate
/// limit and log filter, `old`'s everything else; and the names of the settings that
/// changed but wait for a restart.
pub fn reloaded(old: &Config, new: Config) -> (Config, Vec<&'static str>) {
    let pending = restart_only(old, &new);
    let mut policy = new.policy;
    // The relays in force publish as the service itself (see config.rs).
    if !old.relays.is_empty() && !policy.is_admin(&old.jid) {
        policy.admins.push(old.jid.clone());
    }
    let in_force = Config {
        policy,
        rate_limit: new.rate_limit,
        log: new.log,
        ..old.clone()
    };
    (in_force, pending)
}

/// Re-read the configuration on every SIGHUP: apply the log filter with `set_log`, log
/// what waits for a restart, and hand the configuration in force to the service loop
/// through `tx`. A configuration that does not resolve is logged and changes nothing.
pub async fn on_sighup(
    mut current: Config,
    tx: watch::Sender<Arc<Config>>,
    set_log: impl Fn(&str) -> Result<(), String>,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            error!("cannot listen for SIGHUP ({e}); configuration reloads need a restart");
            return;
        }
    };
    while hup.recv().await.is_some() {
        info!("SIGHUP: reading the configuration again");
        let new = Cli::try_parse_from_env()
            .map_err(|e| e.to_string())
            .and_then(|cli| Config::resolve(cli).map_err(|e| e.to_string()));
        let new = match new {
            Ok(c) => c,
            Err(e) => {
                error!("configuration not reloaded, the old one stays in force: {e}");
                continue;
            }
        };
        if let Err(e) = set_log(&new.log) {
            error!("configuration not reloaded, the old one stays in force: log: {e}");
            continue;
        }
        let (in_force, pending) = reloaded(&current, new);
        if !pending.is_empty() {
            warn!(
                "changed settings that take effect only after a restart: {}",
                pending.join(", ")
            );
        }
        current = in_force;
        let _ = tx.send(Arc::new(current.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn cfg(extra: &[&str]) -> Config {
        let mut args = vec!["roost", "--jid", "pubsub.localhost", "--secret", "s"];
        args.extend_from_slice(extra);
        Config::resolve(Cli::try_parse_from(args).unwrap()).unwrap()
    }

    #[test]
    fn limits_admins_rate_and_log_apply_the_rest_waits() {
        let old = cfg(&[]);
        let new = cfg(&[
            "--max-items-per-node",
            "5",
            "--admins",
            "root@localhost",
            "--rate-limit",
            "0",
            "--log",
            "debug",
            "--server",
            "127.0.0.1:6000",
            "--metrics-listen",
            "127.0.0.1:9100",
        ]);
        let (in_force, pending) = reloaded(&old, new);
        assert_eq!(in_force.policy.max_items_per_node, 5);
        assert!(in_force.policy.is_admin(&"root@localhost".parse().unwrap()));
        assert_eq!(in_force.rate_limit, None);
        assert_eq!(in_force.log, "debug");
        assert_eq!(in_force.server, old.server, "the link's address stays");
        assert_eq!(in_force.metrics_listen, None);
        assert_eq!(pending, vec!["server", "metrics_listen"]);
        let (_, none) = reloaded(&old, cfg(&[]));
        assert!(none.is_empty());
    }

    #[test]
    fn relays_in_force_keep_the_service_admin() {
        let old = cfg(&["--relay", "a=pubsub.x.example/logs"]);
        let (in_force, pending) = reloaded(&old, cfg(&[]));
        assert!(in_force.policy.is_admin(&old.jid));
        assert_eq!(pending, vec!["relays"]);
    }
}
