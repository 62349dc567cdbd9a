//! `exec` actions: run a program (argv, no shell) in its own process group,
//! with a clean environment, and kill the group at the timeout.
//!
//! The program gets `PATH`, `HOME`, `LANG`, `TZ` (when set) and
//! `SECRETS_SYNC_ACTION`, `SECRETS_SYNC_SECRETS`, `SECRETS_SYNC_FILES`:
//! nothing else of this process's environment, which may hold
//! `VAULT_TOKEN` or `VAULT_SECRET_ID`. What it prints is counted and
//! discarded (it may print a secret).

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::{Outcome, Trigger};

/// Variables passed through from this process's environment.
const PASSED: &[&str] = &["PATH", "HOME", "LANG", "TZ"];

/// Runs `argv`; the outcome and the bytes it printed.
pub(super) async fn run(
    action: &str,
    argv: &[String],
    trigger: &Trigger,
    timeout: Duration,
) -> (Outcome, u64) {
    let Some((program, args)) = argv.split_first() else {
        return (Outcome::Failed("no program to run".into()), 0);
    };
    let files: Vec<String> = trigger
        .files
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(
            PASSED
                .iter()
                .filter_map(|k| std::env::var_os(k).map(|v| (k, v))),
        )
        .env("SECRETS_SYNC_ACTION", action)
        .env("SECRETS_SYNC_SECRETS", trigger.secrets.join(","))
        .env("SECRETS_SYNC_FILES", files.join(","))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return (Outcome::Failed(format!("cannot start {program}: {e}")), 0),
    };
    let pgid = child.id().and_then(|id| i32::try_from(id).ok());
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let finished = {
        let work = async {
            let (a, b) = tokio::join!(drain(out.as_mut()), drain(err.as_mut()));
            let status = child.wait().await;
            (status, a.saturating_add(b))
        };
        actix_rt::time::timeout(timeout, work).await
    };
    match finished {
        Ok((Ok(status), bytes)) if status.success() => (Outcome::Ok, bytes),
        Ok((Ok(status), bytes)) => (Outcome::Failed(format!("{program} {status}")), bytes),
        Ok((Err(e), bytes)) => (
            Outcome::Failed(format!("cannot wait for {program}: {e}")),
            bytes,
        ),
        Err(_) => {
            // The whole group: a script's children too.
            if let Some(pg) = pgid.and_then(rustix::process::Pid::from_raw) {
                let _ = rustix::process::kill_process_group(pg, rustix::process::Signal::KILL);
            }
            let _ = child.wait().await;
            (Outcome::TimedOut, 0)
        }
    }
}

/// Reads a pipe to its end, counting and discarding.
async fn drain<R: tokio::io::AsyncRead + Unpin>(r: Option<&mut R>) -> u64 {
    let Some(r) = r else { return 0 };
    let mut buf = [0u8; 4096];
    let mut n: u64 = 0;
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(k) => n = n.saturating_add(k as u64),
        }
    }
    // What was read may be a secret.
    zeroize::Zeroize::zeroize(&mut buf[..]);
    n
}
