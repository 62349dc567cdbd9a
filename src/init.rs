//! A tiny init for when secrets-sync is pid 1 (a container without
//! `--init` or `tini`).
//!
//! A process that is pid 1 inherits every orphan of its namespace: an `exec`
//! action's shell that starts something in the background and exits leaves
//! that grandchild to pid 1, and nobody else reaps it (21 zombies after 8
//! rotations were seen). Reaping with `waitpid(-1)` inside the sidecar
//! would steal the exit statuses tokio waits for, so, as `tini` does,
//! pid 1 stays a small parent: it starts the real sidecar again as its
//! child (same binary, same arguments, same environment), forwards
//! SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2 and SIGQUIT to it, reaps every
//! child that ends, and exits with the sidecar's status once it ends (128 +
//! the signal for a killed one). Nothing else runs in the parent: no
//! runtime, no config, no secret.

use std::process::Command;

use signal_hook::consts::{SIGCHLD, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};

/// When this process is pid 1, runs the sidecar as a child and returns its
/// exit status once it ended; `None` otherwise (or when the child cannot be
/// started: then this process carries on as the sidecar itself).
pub fn supervise_if_pid1() -> Option<i32> {
    if rustix::process::getpid().as_raw_nonzero().get() != 1 {
        return None;
    }
    // Handlers first, so that no SIGCHLD or SIGTERM is missed.
    let mut signals = match signal_hook::iterator::Signals::new([
        SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGQUIT,
    ]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("secrets-sync: pid 1 cannot install signal handlers ({e}); running without an init, orphans are not reaped");
            return None;
        }
    };
    let exe = std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into());
    let child = match Command::new(&exe).args(std::env::args_os().skip(1)).spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "secrets-sync: pid 1 cannot start the sidecar as its child ({e}); running without an init, orphans are not reaped"
            );
            return None;
        }
    };
    let sidecar = child.id();
    for sig in signals.forever() {
        if sig != SIGCHLD {
            if let Some(pid) = i32::try_from(sidecar)
                .ok()
                .and_then(rustix::process::Pid::from_raw)
            {
                let _ = rustix::process::kill_process(pid, forwarded(sig));
            }
            continue;
        }
        // Every child that ended: the sidecar, or an orphan it left us.
        while let Ok(Some((pid, status))) =
            rustix::process::wait(rustix::process::WaitOptions::NOHANG)
        {
            if u32::try_from(pid.as_raw_nonzero().get()).is_ok_and(|p| p == sidecar) {
                return Some(
                    status
                        .exit_status()
                        .or_else(|| status.terminating_signal().map(|s| 128 + s))
                        .unwrap_or(1),
                );
            }
        }
    }
    Some(1)
}

fn forwarded(sig: i32) -> rustix::process::Signal {
    use rustix::process::Signal;
    match sig {
        SIGTERM => Signal::TERM,
        SIGINT => Signal::INT,
        SIGHUP => Signal::HUP,
        SIGUSR1 => Signal::USR1,
        SIGUSR2 => Signal::USR2,
        _ => Signal::QUIT,
    }
}
