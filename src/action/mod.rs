//! Change actions: what runs after a secret's files changed, so that the
//! app learns of a rotation (a signal, a program, an HTTP call).
//!
//! This module owns running one action once ([`run`]) and coalescing
//! triggers ([`debounce`]); the ActionActor (`crate::actors::action`) owns
//! the schedule. Nothing here logs or returns what a program printed or an
//! HTTP answer held: an outcome is a result, a short reason made of names,
//! statuses and counts, and a byte count.

pub(crate) mod debounce;
mod exec;
mod http;
mod signal;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::blocking::READ_DEADLINE;
use crate::config::{ActionKind, ActionSpec};

/// How one run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ok,
    /// The target was not there (no pid file, no such process): nothing to
    /// tell yet, not an error (the app may not have started).
    Skipped(String),
    Failed(String),
    TimedOut,
    /// A signal reached some of the matching processes, not all (another
    /// user's process of the same name): not retried, counted apart.
    Partial {
        signalled: Vec<i32>,
        reason: String,
    },
}

/// Every `result` label [`Outcome::label`] gives.
pub(crate) const RESULT_LABELS: [&str; 5] = ["ok", "skipped", "failed", "timeout", "partial"];

impl Outcome {
    /// The `result` label of `secret_action_runs_total` (one of
    /// [`RESULT_LABELS`]).
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Skipped(_) => "skipped",
            Outcome::Failed(_) => "failed",
            Outcome::TimedOut => "timeout",
            Outcome::Partial { .. } => "partial",
        }
    }

    /// Worth a retry.
    pub(crate) fn failed(&self) -> bool {
        matches!(self, Outcome::Failed(_) | Outcome::TimedOut)
    }

    /// The reason, for logs and `/status` (names and numbers only).
    pub(crate) fn reason(&self, timeout: Duration) -> Option<String> {
        match self {
            Outcome::Ok => None,
            Outcome::Skipped(r) | Outcome::Failed(r) | Outcome::Partial { reason: r, .. } => {
                Some(r.clone())
            }
            Outcome::TimedOut => Some(format!(
                "did not finish within its timeout of {}",
                crate::duration::GoDuration(timeout)
            )),
        }
    }
}

/// What one run did.
#[derive(Debug)]
pub(crate) struct RunResult {
    pub(crate) outcome: Outcome,
    pub(crate) took: Duration,
    /// What the program printed or the HTTP answer held, in bytes (the
    /// content itself is discarded: it may hold secrets).
    pub(crate) output_bytes: u64,
    /// Processes signalled.
    pub(crate) signalled: Vec<i32>,
}

/// The secrets and files that triggered a run.
#[derive(Debug, Clone)]
pub(crate) struct Trigger {
    pub(crate) secrets: Vec<String>,
    pub(crate) files: Vec<PathBuf>,
}

/// Runs `spec` once for `trigger`.
pub(crate) async fn run(spec: &ActionSpec, trigger: &Trigger) -> RunResult {
    let started = Instant::now();
    let mut result = RunResult {
        outcome: Outcome::Ok,
        took: Duration::ZERO,
        output_bytes: 0,
        signalled: Vec::new(),
    };
    match &spec.kind {
        ActionKind::Signal {
            signal,
            signal_name,
            target,
        } => {
            // Reads a pid file the app writes, or scans /proc: off the
            // actor thread, under a deadline.
            let (sig, name, target) = (*signal, signal_name.clone(), target.clone());
            let sent = crate::blocking::run("signalling the app", READ_DEADLINE, move || {
                signal::send(sig, &name, &target)
            })
            .await;
            match sent {
                Ok(Ok(pids)) => result.signalled = pids,
                Ok(Err(Outcome::Partial { signalled, reason })) => {
                    result.signalled = signalled.clone();
                    result.outcome = Outcome::Partial { signalled, reason };
                }
                Ok(Err(o)) => result.outcome = o,
                Err(e) => result.outcome = Outcome::Failed(e.to_string()),
            }
        }
        ActionKind::Exec { argv } => {
            let (o, bytes) = exec::run(&spec.name, argv, trigger, spec.timeout).await;
            result.outcome = o;
            result.output_bytes = bytes;
        }
        ActionKind::Http {
            url,
            method,
            headers,
        } => {
            let (o, bytes) = http::call(url, method, headers, spec.timeout).await;
            result.outcome = o;
            result.output_bytes = bytes;
        }
    }
    result.took = started.elapsed();
    result
}

/// What an action targets, for logs and `/status`: a pid file or process
/// name, a program path, or a URL without user info and query (either may
/// hold a credential).
pub(crate) fn describe(kind: &ActionKind) -> String {
    match kind {
        ActionKind::Signal {
            signal_name,
            target,
            ..
        } => match target {
            crate::config::SignalTarget::PidFile(p) => {
                format!("{signal_name} to the pid in {}", p.display())
            }
            crate::config::SignalTarget::Process(n) => format!("{signal_name} to process {n:?}"),
        },
        ActionKind::Exec { argv } => format!("exec {}", argv.first().map_or("", String::as_str)),
        ActionKind::Http { url, method, .. } => {
            format!("{method} {}", http::redacted(url))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_label_is_listed() {
        for o in [
            Outcome::Ok,
            Outcome::Skipped(String::new()),
            Outcome::Failed(String::new()),
            Outcome::TimedOut,
            Outcome::Partial {
                signalled: vec![],
                reason: String::new(),
            },
        ] {
            assert!(RESULT_LABELS.contains(&o.label()), "{o:?}");
        }
    }
}
