//! `roost`: an XEP-0060 publish-subscribe service as an XEP-0114 external component.
//! The work is in the `roost_component` library; this is configuration, logging, the store
//! and signals.

use clap::Parser;
use roost_component::{backup, config, metrics, recovery, reload, roost::Roost, session, Config};
use roost_nodes::Service;
use roost_storage::Reopenable;
use std::process::ExitCode;
use tokio::sync::watch;
use tracing::{error, info};

// Why jemalloc: see the `jemalloc` feature in Cargo.toml.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read once at its start (the C `malloc_conf` string, under the
/// prefixed name tikv-jemalloc-sys gives it; `_RJEM_MALLOC_CONF` in the environment
/// overrides). Freed pages are kept for reuse rather than returned to the system after 10 s,
/// as glibc's malloc kept them: returning them and faulting them back in at the next burst
/// is CPU for nothing on a service whose load comes in bursts. With them returned, Roost's
/// RSS followed its live heap down after the soak's warm-up and then up by 11-15 % over its
/// 10 minutes (`scripts/soak`: +2.5 MB with 1 200 items stored, cause not yet known), where
/// glibc's and now jemalloc's kept pages hold it flat. Measured in docs/benchmarks.md,
/// "Publish CPU, 2026-12-06, seventh session".
#[cfg(feature = "jemalloc")]
#[export_name = "_rjem_malloc_conf"]
static MALLOC_CONF: Option<&'static u8> = Some(&b"dirty_decay_ms:-1,muzzy_decay_ms:-1\0"[0]);

fn main() -> ExitCode {
    let mut cli = config::Cli::parse();
    if let Some(tool) = cli.tool.take() {
        return roost_component::tools::run(tool);
    }
    let check_only = cli.check_config;
    let cfg = match Config::resolve(cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("roost: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = match tracing_subscriber::EnvFilter::try_new(&cfg.log) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("roost: invalid configuration: log: {:?}: {e}", cfg.log);
            return ExitCode::from(2);
        }
    };
    if check_only {
        println!(
            "roost: configuration OK: {} via {}, data in {}",
            cfg.jid,
            cfg.server,
            cfg.data_dir.display()
        );
        return ExitCode::SUCCESS;
    }
    use std::io::IsTerminal;
    use tracing_subscriber::prelude::*;
    // The filter sits behind a reload handle so that SIGHUP can change it (reload.rs).
    let (filter, log_handle) = tracing_subscriber::reload::Layer::new(filter);
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .init();
    let set_log = move |f: &str| {
        let filter = tracing_subscriber::EnvFilter::try_new(f).map_err(|e| e.to_string())?;
        log_handle.reload(filter).map_err(|e| e.to_string())
    };

    // One thread is enough: the engine is driven by one task, and sled flushes on its own.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Building, cloning, printing and dropping a stanza's tree each recurse once per nesting
    // level (about 3.4 KiB a level in a debug build). The guard (guard.rs) bounds the depth
    // at max_stanza_depth, at most 1024; a spawned thread's default 2 MiB would not hold
    // that many levels, this reservation holds far more. It is virtual: only pages touched
    // are resident.
    let worker = std::thread::Builder::new()
        .name("roost".into())
        .stack_size(STACK_BYTES)
        .spawn(move || rt.block_on(run(cfg, set_log)));
    match worker.map(|w| w.join()) {
        Ok(Ok(code)) => code,
        Ok(Err(_)) => ExitCode::FAILURE,
        Err(e) => {
            error!("cannot start the service thread: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Stack of the service thread; see the comment where it is spawned.
const STACK_BYTES: usize = 1 << 30;

async fn run(
    cfg: Config,
    set_log: impl Fn(&str) -> Result<(), String> + Send + 'static,
) -> ExitCode {
    info!(data_dir = %cfg.data_dir.display(), "opening the store");
    let store = match Reopenable::open(&cfg.data_dir, cfg.durable) {
        Ok(s) => {
            if !cfg.durable {
                tracing::warn!("durable = false: acknowledged changes may be lost in a crash");
            }
            s
        }
        Err(e) => {
            error!("cannot open the store in {}: {e}", cfg.data_dir.display());
            return ExitCode::FAILURE;
        }
    };
    let service = match Service::open(store, cfg.policy.clone()) {
        Ok(s) => s,
        Err(e) => {
            error!("cannot load the store in {}: {e}", cfg.data_dir.display());
            return ExitCode::FAILURE;
        }
    };
    let backups = backup::Requests::default();
    if let Err(e) = backups.on_sigusr1() {
        error!("cannot listen for SIGUSR1 ({e}); online backups are off");
    }
    let mut roost = Roost::new(service, &cfg)
        .with_recovery(recovery::reopen(
            cfg.data_dir.clone(),
            cfg.durable,
            cfg.policy.clone(),
        ))
        .with_between_batches(backup::hook(cfg.data_dir.clone(), backups));

    if let Some(addr) = cfg.metrics_listen {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => {
                info!(%addr, "metrics at http://{addr}/metrics, health at /health");
                tokio::spawn(metrics::http::serve(l, roost.metrics().clone()));
            }
            Err(e) => {
                error!("cannot listen on metrics_listen {addr}: {e} (is the port in use?)");
                return ExitCode::FAILURE;
            }
        }
    }
    let (reload_tx, reload_rx) = watch::channel(std::sync::Arc::new(cfg.clone()));
    tokio::spawn(reload::on_sighup(cfg.clone(), reload_tx, set_log));

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        info!("shutting down: no new requests");
        let _ = stop_tx.send(true);
    });

    let result = session::run(&cfg, &mut roost, stop_rx, reload_rx).await;
    let flushed = roost.service_mut().store_mut().flush();
    match (result, flushed) {
        (Ok(()), Ok(())) => {
            info!("stopped cleanly");
            ExitCode::SUCCESS
        }
        (Err(e), _) => {
            error!("{e}");
            ExitCode::FAILURE
        }
        (Ok(()), Err(e)) => {
            error!("flushing the store on shutdown failed: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(e) => {
            error!("cannot listen for SIGTERM ({e}); only SIGINT will stop roost cleanly");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
