//! The bounded blocking pool: where everything that may block, or that
//! computes on untrusted input, runs instead of the actor thread.
//!
//! **The actor thread never blocks and never computes on untrusted input.**
//! File opens and reads (pid files, `/proc` scans, certificates kept at
//! start, config and template files at a reload) and template renders over
//! secret values go through [`run`]: a thread of tokio's blocking pool,
//! at most [`SLOTS`] at once, under a deadline. An attempt past its
//! deadline is an error for that secret (or that reload), never a stuck
//! process; the thread it ran on finishes on its own (nothing can cancel a
//! blocking call), holding its slot until then, so at most [`SLOTS`]
//! runaway jobs exist at once and the work each one can do is bounded where
//! it is driven by a value (see `crate::template` and `crate::config::yaml`).

use std::sync::LazyLock;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::duration::GoDuration;

/// Jobs running on the pool at once, process-wide.
pub(crate) const SLOTS: usize = 8;

/// Threads of the runtime's blocking pool (`app::run` sets it): every slot
/// plus four for the writer's batches, which do not take a slot (a write is
/// bounded by the files of one secret). A job past this waits for a thread.
pub(crate) const MAX_THREADS: usize = SLOTS + 4;
/// How long an idle blocking thread waits for work before it ends. A sync
/// burst reuses its threads; after it, the pool shrinks to what the spread
/// refreshes keep busy instead of holding every thread (12 KB of stack
/// each) for tokio's default 10 s after every use.
pub(crate) const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(2);

/// Deadline of one render of a secret's files.
pub(crate) const RENDER_DEADLINE: Duration = Duration::from_secs(10);

/// Deadline of small file reads (pid files, `/proc`, a certificate).
pub(crate) const READ_DEADLINE: Duration = Duration::from_secs(5);

/// Deadline of planning a reloaded config (its files, TLS material).
pub(crate) const RELOAD_DEADLINE: Duration = Duration::from_secs(20);

static POOL: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(SLOTS));

/// Why an offloaded job gave no result. Names the job, never its data.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub(crate) enum OffloadError {
    #[error("{what} did not finish within {} (it runs on, off the actor thread; this attempt failed)", GoDuration(*deadline))]
    TimedOut {
        what: &'static str,
        deadline: Duration,
    },
    #[error("{what} failed: its worker thread ended early")]
    Lost { what: &'static str },
    #[error("{what} did not start: the previous one is still running past its deadline")]
    Busy { what: &'static str },
}

/// Runs `f` on the blocking pool, waiting at most `deadline` (for a slot
/// and for the work). The current tracing span is carried over.
pub(crate) async fn run<T, F>(
    what: &'static str,
    deadline: Duration,
    f: F,
) -> Result<T, OffloadError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let span = tracing::Span::current();
    let work = async move {
        let permit = POOL
            .acquire()
            .await
            .map_err(|_| OffloadError::Lost { what })?;
        tokio::task::spawn_blocking(move || {
            // Held until the work ends, also when nobody waits for it any more.
            let _slot = permit;
            span.in_scope(f)
        })
        .await
        .map_err(|_| OffloadError::Lost { what })
    };
    match tokio::time::timeout(deadline, work).await {
        Ok(r) => r,
        Err(_) => {
            tracing::warn!(job = what, deadline = %GoDuration(deadline), "offloaded work passed its deadline");
            Err(OffloadError::TimedOut { what, deadline })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_past_its_deadline_fails_and_others_still_run() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            let stuck = run("stuck job", Duration::from_millis(100), move || {
                let _ = rx.recv_timeout(Duration::from_secs(5));
            })
            .await;
            assert_eq!(
                stuck,
                Err(OffloadError::TimedOut {
                    what: "stuck job",
                    deadline: Duration::from_millis(100)
                })
            );
            // The stuck one still holds its slot; the others serve.
            let ok = run("quick job", Duration::from_secs(5), || 41 + 1).await;
            assert_eq!(ok, Ok(42));
            drop(tx);
        });
    }
}
