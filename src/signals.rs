//! Signals, received on a thread of their own.
//!
//! SIGTERM/SIGINT, SIGHUP and SIGUSR1 are caught by signal-hook's
//! self-pipe handler and read by a dedicated thread, which forwards each one
//! to the actor system over a channel. The shutdown deadline lives on that
//! thread too: after SIGTERM or SIGINT it waits `SHUTDOWN_TIMEOUT` and, if
//! the process is still there (the graceful path is stuck, or the actor
//! thread is), logs why and exits with [`DEADLINE_EXIT`]. So SIGTERM ends
//! the process on time whatever an actor is doing.
//!
//! Children (`exec` actions) start with default signal dispositions:
//! handlers are reset by `execve`, and the mask is not touched here.

use std::time::Duration;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use crate::duration::GoDuration;

/// Exit status when a shutdown did not finish within `SHUTDOWN_TIMEOUT`
/// (0: clean, 1: a `--once` run that did not sync everything, 2: invalid
/// config or settings).
pub const DEADLINE_EXIT: i32 = 3;

/// A signal, as the actor system sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sig {
    Term,
    Int,
    Hup,
    Usr1,
}

impl Sig {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Sig::Term => "SIGTERM",
            Sig::Int => "SIGINT",
            Sig::Hup => "SIGHUP",
            Sig::Usr1 => "SIGUSR1",
        }
    }
}

/// Installs the handlers and starts the signal thread. `deadline` is
/// `SHUTDOWN_TIMEOUT`.
pub(crate) fn start(deadline: Duration) -> std::io::Result<UnboundedReceiver<Sig>> {
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP, SIGUSR1])?;
    let (tx, rx) = unbounded_channel();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for raw in signals.forever() {
                let sig = match raw {
                    SIGTERM => Sig::Term,
                    SIGINT => Sig::Int,
                    SIGHUP => Sig::Hup,
                    _ => Sig::Usr1,
                };
                // The actor system may be gone (a --once run ending).
                let _ = tx.send(sig);
                if matches!(sig, Sig::Term | Sig::Int) {
                    std::thread::sleep(deadline);
                    tracing::error!(
                        signal = sig.name(),
                        timeout = %GoDuration(deadline),
                        exit_code = DEADLINE_EXIT,
                        "shutdown did not finish within SHUTDOWN_TIMEOUT (an actor or a write is stuck); exiting now"
                    );
                    std::process::exit(DEADLINE_EXIT);
                }
            }
        })?;
    Ok(rx)
}
