//! Progress of a long offline operation (migration, export, import, check, backup): a bar
//! when standard error is a terminal, otherwise a log line every few seconds.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// One phase's progress towards a known total.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    doing: &'static str,
    what: &'static str,
    total: u64,
    last: Instant,
    started: Instant,
}

impl Progress {
    /// `doing` (e.g. "exporting") `what` (e.g. "items"), `total` of them.
    pub fn new(doing: &'static str, what: &'static str, total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = indicatif::ProgressBar::new(total);
            let template = format!("{doing} {{msg}}: [{{bar:40}}] {{pos}}/{{len}} ({{eta}} left)");
            b.set_style(
                indicatif::ProgressStyle::with_template(&template)
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            b.set_message(what);
            b
        });
        Progress {
            bar,
            doing,
            what,
            total,
            last: Instant::now(),
            started: Instant::now(),
        }
    }

    /// `pos` of the total are done.
    pub fn at(&mut self, pos: u64) {
        if let Some(b) = &self.bar {
            b.set_position(pos);
        } else if self.last.elapsed() >= Duration::from_secs(3) {
            self.last = Instant::now();
            let pct = 100.0 * pos as f64 / self.total.max(1) as f64;
            let secs = self.started.elapsed().as_secs_f64();
            let left = if pct > 0.0 {
                secs * (100.0 - pct) / pct
            } else {
                0.0
            };
            tracing::info!(
                "{} {}: {pos}/{} ({pct:.0} %), about {left:.0} s left",
                self.doing,
                self.what,
                self.total
            );
        }
    }

    /// The phase is over: the bar goes away.
    pub fn done(self) {
        if let Some(b) = self.bar {
            b.finish_and_clear();
        }
    }
}
