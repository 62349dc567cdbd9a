//! `signal` actions: find the process (pid file or name) and signal it.

use std::path::Path;

use rustix::process::{Pid, Signal};

use super::Outcome;
use crate::config::SignalTarget;

/// Longest pid file read (PostgreSQL's postmaster.pid holds several lines;
/// only the first is used).
const PID_FILE_MAX: u64 = 4096;

/// Signals the target; `Ok` with the pids signalled, or the outcome when
/// there was none to signal (skipped) or the signal failed. Every match of
/// a process name is tried: one we may not signal (another uid's decoy) is
/// skipped, and a run that reached some but not all is `Partial`. Never
/// signals secrets-sync itself, pid 1 or a pid below 1. Runs off the actor
/// thread (it reads files another user may write, and `/proc`).
pub(super) fn send(sig: Signal, name: &str, target: &SignalTarget) -> Result<Vec<i32>, Outcome> {
    let pids = match target {
        SignalTarget::PidFile(path) => vec![read_pid_file(path)?],
        SignalTarget::Process(n) => {
            let pids = find_processes(Path::new("/proc"), n);
            if pids.is_empty() {
                return Err(Outcome::Skipped(format!(
                    "no process named {n:?} is running"
                )));
            }
            pids
        }
    };
    let mut sent = Vec::with_capacity(pids.len());
    let mut denied = Vec::new();
    for pid in pids {
        let Some(p) = Pid::from_raw(pid) else {
            continue;
        };
        match rustix::process::kill_process(p, sig) {
            Ok(()) => sent.push(pid),
            Err(rustix::io::Errno::SRCH) => {}
            Err(rustix::io::Errno::PERM) => denied.push(pid),
            Err(e) => {
                tracing::warn!(signal = name, pid, error = %e, "cannot signal the process");
                denied.push(pid);
            }
        }
    }
    match (sent.is_empty(), denied.is_empty()) {
        (false, true) => Ok(sent),
        (false, false) => Err(Outcome::Partial {
            signalled: sent,
            reason: format!(
                "{name} sent, but not to {} matching process(es) {denied:?} (not permitted: another user's?)",
                denied.len()
            ),
        }),
        (true, false) => Err(Outcome::Failed(format!(
            "cannot send {name} to process(es) {denied:?}: not permitted (run the app as this user, or share its uid)"
        ))),
        (true, true) => Err(Outcome::Skipped(match target {
            SignalTarget::PidFile(p) => format!("the process in {} is not running", p.display()),
            SignalTarget::Process(n) => format!("no process named {n:?} is running"),
        })),
    }
}

/// Is `pid` one a pid file may name? Not pid 1 (init, or the pause
/// container: in a shared PID namespace it may be ours to kill), not
/// below 1 (`kill(0)`/`kill(-1)` reach whole groups), not secrets-sync.
fn allowed_target(pid: i32) -> Result<(), &'static str> {
    if pid < 1 {
        return Err("not a process id (a positive number)");
    }
    if pid == 1 {
        return Err("pid 1 (init, or the container's first process), which is never signalled");
    }
    if u32::try_from(pid).is_ok_and(|p| p == std::process::id()) {
        return Err("secrets-sync itself, which is never signalled");
    }
    Ok(())
}

fn read_pid_file(path: &Path) -> Result<i32, Outcome> {
    use crate::fs::read::{read_untrusted, Expect, ReadError};
    let bytes = match read_untrusted(path, PID_FILE_MAX, Expect::default()) {
        Ok(b) => b,
        Err(ReadError::Missing(_)) => {
            return Err(Outcome::Skipped(format!(
                "pid file {} does not exist (yet)",
                path.display()
            )))
        }
        Err(e) => return Err(Outcome::Failed(format!("pid file: {e}"))),
    };
    let text = String::from_utf8_lossy(&bytes);
    // The first line: PostgreSQL's postmaster.pid has more.
    let t = text.lines().next().unwrap_or_default().trim();
    if t.is_empty() {
        // Written but not filled yet, as at an app's start.
        return Err(Outcome::Skipped(format!(
            "pid file {} is empty",
            path.display()
        )));
    }
    let pid = t.parse::<i32>().map_err(|_| {
        Outcome::Failed(format!(
            "pid file {} does not hold a process id (a positive number)",
            path.display()
        ))
    })?;
    allowed_target(pid).map_err(|why| {
        Outcome::Failed(format!(
            "pid file {} names process {pid}: {why}",
            path.display()
        ))
    })?;
    Ok(pid)
}

/// Processes (other than this one) whose `comm` or argv[0]'s base name is
/// `name`, without those whose parent also matches (nginx's workers are
/// left to its master): the ones to signal.
pub(super) fn find_processes(proc_root: &Path, name: &str) -> Vec<i32> {
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir(proc_root) else {
        return Vec::new();
    };
    // (pid, parent pid)
    let mut matches: Vec<(i32, i32)> = Vec::new();
    for entry in dir.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name.to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if u32::try_from(pid).is_ok_and(|p| p == me) || pid <= 1 {
            continue;
        }
        let base = entry.path();
        if process_name_matches(&base, name) {
            matches.push((pid, parent_pid(&base).unwrap_or(0)));
        }
    }
    let pids: Vec<i32> = matches.iter().map(|(p, _)| *p).collect();
    let mut top: Vec<i32> = matches
        .iter()
        .filter(|(_, parent)| !pids.contains(parent))
        .map(|(p, _)| *p)
        .collect();
    top.sort_unstable();
    top
}

fn process_name_matches(base: &Path, name: &str) -> bool {
    // comm is cut at 15 bytes: a longer name matches by argv[0].
    let comm = std::fs::read_to_string(base.join("comm")).unwrap_or_default();
    comm.trim_end_matches('\n') == name || argv0_is(base, name)
}

fn argv0_is(base: &Path, name: &str) -> bool {
    let Ok(cmdline) = std::fs::read(base.join("cmdline")) else {
        return false;
    };
    let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
    let file = argv0.rsplit(|b| *b == b'/').next().unwrap_or_default();
    file == name.as_bytes()
}

/// The 4th field of `/proc/PID/stat` (after the parenthesised name, which
/// may itself hold spaces and parentheses).
fn parent_pid(base: &Path) -> Option<i32> {
    let stat = std::fs::read_to_string(base.join("stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    after.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_files_missing_empty_or_garbled() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("app.pid");
        let sig = Signal::CONT;
        let t = SignalTarget::PidFile(p.clone());
        assert!(matches!(send(sig, "SIGCONT", &t), Err(Outcome::Skipped(_))));
        std::fs::write(&p, "").unwrap();
        assert!(matches!(send(sig, "SIGCONT", &t), Err(Outcome::Skipped(_))));
        std::fs::write(&p, "not-a-pid\n").unwrap();
        assert!(matches!(send(sig, "SIGCONT", &t), Err(Outcome::Failed(_))));
        std::fs::write(&p, "-1\n").unwrap();
        assert!(matches!(send(sig, "SIGCONT", &t), Err(Outcome::Failed(_))));
        // Never init, never ourselves, never a group.
        for pid in [0, 1, i32::try_from(std::process::id()).unwrap()] {
            std::fs::write(&p, format!("{pid}\n")).unwrap();
            match send(sig, "SIGCONT", &t) {
                Err(Outcome::Failed(why)) => {
                    assert!(why.contains(&format!("process {pid}")), "{why}")
                }
                other => panic!("{pid}: {other:?}"),
            }
        }
        // A FIFO is refused at once, not waited on.
        std::fs::remove_file(&p).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &p,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        match send(sig, "SIGCONT", &t) {
            Err(Outcome::Failed(why)) => assert!(why.contains("FIFO"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_process_is_found_by_name_and_signalled() {
        // A copy of `sleep` under a name no other process has.
        let d = tempfile::tempdir().unwrap();
        let name = format!("ssync-t{}", std::process::id() % 100_000);
        let bin = d.path().join(&name);
        std::fs::copy("/bin/sleep", &bin).unwrap();
        let mut child = std::process::Command::new(&bin).arg("30").spawn().unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        // Found once the child has exec'ed (before, it is a copy of this
        // test binary under its name).
        let t = std::time::Instant::now();
        let mut found = find_processes(Path::new("/proc"), &name);
        while found.is_empty() && t.elapsed() < std::time::Duration::from_secs(5) {
            std::thread::sleep(std::time::Duration::from_millis(10));
            found = find_processes(Path::new("/proc"), &name);
        }
        assert_eq!(found, [pid]);
        // Another process with the name of its parent is not signalled.
        assert!(find_processes(Path::new("/proc"), "no-such-process-xyz").is_empty());
        let sent = send(Signal::TERM, "SIGTERM", &SignalTarget::Process(name)).unwrap();
        assert_eq!(sent, [pid]);
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "SIGTERM should have ended it: {status:?}"
        );
        // By pid file, a process that is gone is skipped.
        let p = d.path().join("app.pid");
        std::fs::write(&p, format!("{pid}\n")).unwrap();
        assert!(matches!(
            send(Signal::CONT, "SIGCONT", &SignalTarget::PidFile(p)),
            Err(Outcome::Skipped(_))
        ));
    }
}
