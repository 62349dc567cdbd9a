//! `signal` actions: find the process (pid file or name) and signal it.

use std::path::Path;

use rustix::process::{Pid, Signal};

use super::Outcome;
use crate::config::SignalTarget;

/// Longest pid file read (a pid and a newline, with room to spare).
const PID_FILE_MAX: u64 = 64;

/// Signals the target; `Ok` with the pids signalled, or the outcome when
/// there was none to signal (skipped) or the signal failed.
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
    for pid in pids {
        let Some(p) = Pid::from_raw(pid) else {
            continue;
        };
        match rustix::process::kill_process(p, sig) {
            Ok(()) => sent.push(pid),
            Err(rustix::io::Errno::SRCH) => {}
            Err(e) => {
                return Err(Outcome::Failed(format!(
                    "cannot send {name} to process {pid}: {e}"
                )))
            }
        }
    }
    if sent.is_empty() {
        return Err(Outcome::Skipped(match target {
            SignalTarget::PidFile(p) => format!("the process in {} is not running", p.display()),
            SignalTarget::Process(n) => format!("no process named {n:?} is running"),
        }));
    }
    Ok(sent)
}

fn read_pid_file(path: &Path) -> Result<i32, Outcome> {
    use std::io::Read;
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Outcome::Skipped(format!(
                "pid file {} does not exist (yet)",
                path.display()
            )))
        }
        Err(e) => {
            return Err(Outcome::Failed(format!(
                "cannot read pid file {}: {e}",
                path.display()
            )))
        }
    };
    let mut text = String::new();
    if let Err(e) = f.take(PID_FILE_MAX).read_to_string(&mut text) {
        return Err(Outcome::Failed(format!(
            "cannot read pid file {}: {e}",
            path.display()
        )));
    }
    // The first line: PostgreSQL's postmaster.pid has more.
    let t = text.lines().next().unwrap_or_default().trim();
    if t.is_empty() {
        // Written but not filled yet, as at an app's start.
        return Err(Outcome::Skipped(format!(
            "pid file {} is empty",
            path.display()
        )));
    }
    match t.parse::<i32>() {
        Ok(pid) if pid > 0 => Ok(pid),
        _ => Err(Outcome::Failed(format!(
            "pid file {} does not hold a process id (a positive number)",
            path.display()
        ))),
    }
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
        if u32::try_from(pid).is_ok_and(|p| p == me) {
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
        let found = find_processes(Path::new("/proc"), &name);
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
