//! The offline subcommands: `roost export`, `roost import`, `roost check`. Each works on a
//! data directory that no running Roost holds, says what it did in one line on standard
//! error, shows progress on a terminal, and exits 0 (done, or nothing wrong), 1 (failed,
//! or problems found) or 2 (cannot start: bad arguments, data directory in use).

use std::io::{BufReader, BufWriter, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use roost_storage::{check, lock, SledStore};

use crate::dump;

/// The offline subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Tool {
    /// Write the data directory's whole content as an XML dump (docs/dump-format.md) to
    /// FILE or standard output. Roost must not be running on it (take an online backup
    /// with SIGUSR1, and export that).
    Export {
        /// The data directory.
        #[arg(long, env = "ROOST_DATA_DIR", value_name = "DIR")]
        data_dir: PathBuf,
        /// Where to write the dump [default: standard output].
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Read a dump (from FILE, or standard input) into a new or empty data directory.
    Import {
        /// The data directory to create; refused if it holds anything.
        #[arg(long, env = "ROOST_DATA_DIR", value_name = "DIR")]
        data_dir: PathBuf,
        /// The dump [default: standard input].
        #[arg(value_name = "FILE")]
        input: Option<PathBuf>,
    },
    /// Verify the data directory's indexes and invariants and say what is wrong.
    Check {
        /// The data directory.
        #[arg(long, env = "ROOST_DATA_DIR", value_name = "DIR")]
        data_dir: PathBuf,
    },
}

/// Runs a subcommand to its end.
pub fn run(tool: Tool) -> ExitCode {
    use std::io::IsTerminal as _;
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match tool {
        Tool::Export { data_dir, out } => export(&data_dir, out.as_deref()),
        Tool::Import { data_dir, input } => import(&data_dir, input.as_deref()),
        Tool::Check { data_dir } => check_dir(&data_dir),
    }
}

fn fail(code: u8, msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("roost: {msg}");
    ExitCode::from(code)
}

/// Opens an existing data directory for an offline tool, or says in one line why not.
fn open(data_dir: &Path) -> Result<SledStore, ExitCode> {
    if !data_dir.join(roost_storage::layout::V2).is_dir()
        && !roost_storage::layout::holds_v1(data_dir)
    {
        return Err(fail(
            2,
            format!(
                "{} holds no Roost database (no {}/ in it): check --data-dir",
                data_dir.display(),
                roost_storage::layout::V2
            ),
        ));
    }
    if let Some(line) = lock::in_use(data_dir) {
        return Err(fail(2, line));
    }
    SledStore::open(data_dir)
        .map_err(|e| fail(2, format!("cannot open {}: {e}", data_dir.display())))
}

fn export(data_dir: &Path, out: Option<&Path>) -> ExitCode {
    let mut store = match open(data_dir) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let result = match out {
        Some(path) => match std::fs::File::create(path) {
            Ok(f) => dump::export(&mut store, BufWriter::new(f)).and_then(|(w, t)| {
                w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
                Ok(t)
            }),
            Err(e) => return fail(2, format!("cannot create {}: {e}", path.display())),
        },
        None => {
            if std::io::stdout().is_terminal() {
                return fail(
                    2,
                    "the dump is XML: give --out FILE, or redirect standard output",
                );
            }
            dump::export(&mut store, BufWriter::new(std::io::stdout().lock())).map(|(_, t)| t)
        }
    };
    match result {
        Ok(t) => {
            eprintln!(
                "roost: exported {}: {t}{}",
                data_dir.display(),
                out.map(|p| format!(" to {}", p.display()))
                    .unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            if let Some(p) = out.filter(|p| p.is_file()) {
                // A partial dump must not pass for a complete one (a regular file only:
                // never /dev/null or a pipe).
                let _ = std::fs::remove_file(p);
            }
            fail(1, format!("export failed: {e}"))
        }
    }
}

fn import(data_dir: &Path, input: Option<&Path>) -> ExitCode {
    if let Some(line) = lock::in_use(data_dir) {
        return fail(2, line);
    }
    if let Err(e) = roost_storage::bulk::refuse_non_empty(data_dir) {
        return fail(2, e);
    }
    let result = match input {
        Some(path) => match std::fs::File::open(path) {
            Ok(f) => dump::import(BufReader::with_capacity(1 << 20, f), data_dir),
            Err(e) => return fail(2, format!("cannot read {}: {e}", path.display())),
        },
        None => {
            if std::io::stdin().is_terminal() {
                return fail(2, "give the dump as FILE, or on standard input");
            }
            dump::import(std::io::stdin().lock(), data_dir)
        }
    };
    match result {
        Ok(t) => {
            eprintln!("roost: imported into {}: {t}", data_dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => fail(
            1,
            format!(
                "import failed: {e}; nothing usable was written (remove {} before trying again)",
                data_dir.display()
            ),
        ),
    }
}

fn check_dir(data_dir: &Path) -> ExitCode {
    let store = match open(data_dir) {
        Ok(s) => s,
        Err(code) => return code,
    };
    match check::check(&store) {
        Ok(r) => {
            let summary = format!(
                "{} nodes, {} affiliations, {} subscriptions, {} items, {} item expiries \
                 ({} stale, removed when due)",
                r.nodes, r.affiliations, r.subscriptions, r.items, r.expiries, r.stale_expiries
            );
            if r.problems.is_empty() {
                eprintln!("roost: {} is sound: {summary}", data_dir.display());
                ExitCode::SUCCESS
            } else {
                for p in &r.problems {
                    println!("{p}");
                }
                fail(
                    1,
                    format!(
                        "{} has {} problem(s) (listed above): {summary}. What to do: {}",
                        data_dir.display(),
                        r.problems.len(),
                        check::REPAIR
                    ),
                )
            }
        }
        Err(e) => fail(
            1,
            format!("check failed: cannot read {}: {e}", data_dir.display()),
        ),
    }
}
