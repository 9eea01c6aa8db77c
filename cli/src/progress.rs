//! Progress reporting: an `indicatif` bar when stderr is a terminal, plain one-line-per-second reports
//! when `--progress` is given on a pipe (what a cron log wants), nothing otherwise. Updates are meant to
//! be called once per batch, not per record; drawing is rate-limited by `indicatif` (terminal) or the
//! clock (lines), so the cost stays far below the work it reports.

use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::engine::Progress;
use crate::output::{bytes, count, rate};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Nothing.
    Off,
    /// An animated bar on the terminal.
    Bar,
    /// A plain text line every second.
    Lines,
}

impl Mode {
    /// The mode for the given switches: bars on a terminal, lines when forced on a pipe.
    pub fn choose(quiet: bool, force: bool) -> Mode {
        if quiet {
            Mode::Off
        } else if std::io::stderr().is_terminal() {
            Mode::Bar
        } else if force {
            Mode::Lines
        } else {
            Mode::Off
        }
    }
}

/// Progress of a load: bytes of input consumed (of a known total or not) and records.
#[derive(Debug)]
pub struct LoadProgress {
    mode: Mode,
    bar: Option<ProgressBar>,
    total: Option<u64>,
    start: Instant,
    last_message: Instant,
}

impl LoadProgress {
    /// Starts reporting; `total` is the input size when every input is a regular file.
    pub fn new(mode: Mode, total: Option<u64>) -> Self {
        let bar = (mode == Mode::Bar).then(|| {
            let style = match total {
                Some(_) => "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
                None => "{spinner} [{elapsed_precise}] {bytes} {binary_bytes_per_sec} {msg}",
            };
            let b = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr_with_hz(10));
            b.set_style(ProgressStyle::with_template(style).expect("valid template"));
            b
        });
        let now = Instant::now();
        LoadProgress {
            mode,
            bar,
            total,
            start: now,
            last_message: now,
        }
    }

    /// Reports `done` input bytes and `records` records so far.
    pub fn update(&mut self, done: u64, records: u64) {
        if self.mode == Mode::Off {
            return;
        }
        let now = Instant::now();
        let step = match self.mode {
            Mode::Lines => Duration::from_secs(1),
            _ => Duration::from_millis(200),
        };
        if let Some(b) = &self.bar {
            b.set_position(done);
        }
        if now.duration_since(self.last_message) < step {
            return;
        }
        self.last_message = now;
        let secs = now.duration_since(self.start).as_secs_f64();
        let rec_rate = count(rate(records, secs));
        match &self.bar {
            Some(b) => b.set_message(format!("{} records ({rec_rate}/s)", count(records as f64))),
            None => {
                let of = self
                    .total
                    .map(|t| format!(" of {}", bytes(t)))
                    .unwrap_or_default();
                eprintln!(
                    "kvtool: load: {} records, {}{of} in {secs:.0} s ({rec_rate} records/s, {}/s)",
                    records,
                    bytes(done),
                    bytes(rate(done, secs) as u64)
                );
            }
        }
    }

    /// Acknowledges a `--sync-every` sync point: the first `committed` records written (the first
    /// `resume` records read, counting skipped and bad ones) are durable. Printed as a line in
    /// [`Mode::Lines`], so a cron log (or a crash test) knows what survives a crash from here on and
    /// which `--skip-records` resumes after it; the bar shows nothing extra.
    pub fn synced(&self, committed: u64, resume: u64) {
        if self.mode == Mode::Lines {
            eprintln!(
                "kvtool: load: synced: {committed} records committed and durable; after a crash resume with --skip-records {resume}"
            );
        }
    }

    /// Says that every record is handed over and the store is being synced and flushed (which can take
    /// a while after a large load); the bar keeps ticking until [`LoadProgress::finish`].
    pub fn closing(&self) {
        match (&self.bar, self.mode) {
            (Some(b), _) => {
                b.set_message("all records written; syncing and flushing the store");
                b.enable_steady_tick(Duration::from_millis(200));
            }
            (None, Mode::Lines) => {
                eprintln!("kvtool: load: all records written; syncing and flushing the store")
            }
            _ => {}
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// The engine's [`Progress`] shown as a bar (check, compact, rebalance).
#[derive(Debug)]
pub struct BarProgress {
    bar: Option<ProgressBar>,
}

impl BarProgress {
    /// A bar on stderr unless `mode` is not [`Mode::Bar`].
    pub fn new(mode: Mode) -> Self {
        let bar = (mode == Mode::Bar).then(|| {
            let b = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(10));
            b.set_style(
                ProgressStyle::with_template(
                    "{msg:>12} [{elapsed_precise}] {wide_bar} {pos}/{len} ETA {eta}",
                )
                .expect("valid template"),
            );
            b
        });
        BarProgress { bar }
    }
}

impl Progress for BarProgress {
    fn start(&self, what: &str, total: u64) {
        if let Some(b) = &self.bar {
            b.reset();
            b.set_length(total);
            b.set_position(0);
            b.set_message(what.to_string());
        }
    }

    fn advance(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
