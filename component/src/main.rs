//! `roost`: an XEP-0060 publish-subscribe service as an XEP-0114 external component.
//! The work is in the `roost_component` library; this is configuration, logging, the store
//! and signals.

use clap::Parser;
use roost_component::{config, recovery, roost::Roost, session, Config};
use roost_nodes::Service;
use roost_storage::Reopenable;
use std::process::ExitCode;
use tokio::sync::watch;
use tracing::{error, info};

fn main() -> ExitCode {
    let cli = config::Cli::parse();
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
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

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
    // The XML parser under tokio-xmpp builds each stanza's tree recursively, one call per
    // nesting level, before Roost can look at it; a client's deeply nested payload (bounded
    // only by the XMPP server's stanza size limit) would overflow the default 8 MiB stack
    // and abort the process. The reservation is virtual: only pages touched are resident.
    let worker = std::thread::Builder::new()
        .name("roost".into())
        .stack_size(STACK_BYTES)
        .spawn(move || rt.block_on(run(cfg)));
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

async fn run(cfg: Config) -> ExitCode {
    info!(data_dir = %cfg.data_dir.display(), "opening the store");
    let store = match Reopenable::open(&cfg.data_dir, cfg.durable) {
        Ok(s) => {
            if !cfg.durable {
                tracing::warn!("durable = false: acknowledged changes may be lost in a crash");
            }
            s
        }
        Err(e) => {
            error!(
                "cannot open the store in {}: {e} (is another roost using it? is the directory writable?)",
                cfg.data_dir.display()
            );
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
    let mut roost = Roost::new(service, &cfg).with_recovery(recovery::reopen(
        cfg.data_dir.clone(),
        cfg.durable,
        cfg.policy.clone(),
    ));

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        info!("shutting down: no new requests");
        let _ = stop_tx.send(true);
    });

    let result = session::run(&cfg, &mut roost, stop_rx).await;
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
