//! The systemd notify protocol (`Type=notify`), without a C library: one
//! datagram per state change to the socket in `$NOTIFY_SOCKET` (a path, or
//! `@name` for an abstract socket).
//!
//! This module owns the variables systemd sets (`NOTIFY_SOCKET`,
//! `WATCHDOG_USEC`, `WATCHDOG_PID`), read once at start by name, and the
//! messages: `READY=1` when the readiness policy first holds,
//! `RELOADING=1` (with `MONOTONIC_USEC`) and `READY=1` around a SIGHUP
//! reload, `STOPPING=1` on shutdown, `WATCHDOG=1` at half the watchdog
//! interval. Without `NOTIFY_SOCKET` every call does nothing. A message that
//! cannot be sent is logged once at warn level; it never stops the sidecar.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// What systemd asked for, parsed from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NotifyEnv {
    /// Where to send: a socket path or an abstract name (`@` dropped).
    pub(crate) socket: Option<Target>,
    /// How often to send `WATCHDOG=1` (half of `WATCHDOG_USEC`).
    pub(crate) watchdog: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Path(std::path::PathBuf),
    Abstract(Vec<u8>),
}

/// A variable systemd set that cannot be used; logged, never fatal.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum NotifyEnvError {
    #[error("NOTIFY_SOCKET {0:?} is neither an absolute path nor an @abstract name; systemd notifications are off")]
    Socket(String),
    #[error("WATCHDOG_USEC {0:?} is not a positive number of microseconds; no watchdog pings")]
    Watchdog(String),
}

/// Reads the variables by name (`get` is `std::env::var` outside tests).
/// `pid` is this process's id, for `WATCHDOG_PID`.
pub(crate) fn parse_env(
    get: impl Fn(&str) -> Option<String>,
    pid: u32,
) -> (NotifyEnv, Vec<NotifyEnvError>) {
    let mut errors = Vec::new();
    let socket = match get("NOTIFY_SOCKET").filter(|s| !s.is_empty()) {
        None => None,
        Some(s) if s.starts_with('/') => Some(Target::Path(s.into())),
        Some(s) if s.len() > 1 && s.starts_with('@') => {
            Some(Target::Abstract(s.as_bytes()[1..].to_vec()))
        }
        Some(s) => {
            errors.push(NotifyEnvError::Socket(s));
            None
        }
    };
    // The watchdog is ours only when WATCHDOG_PID is unset or names us.
    let for_us = get("WATCHDOG_PID").is_none_or(|p| p.trim().parse::<u32>() == Ok(pid));
    let watchdog = match get("WATCHDOG_USEC").filter(|_| for_us && socket.is_some()) {
        None => None,
        Some(v) => match v.trim().parse::<u64>() {
            Ok(us) if us > 0 => Some(Duration::from_micros(us / 2).max(Duration::from_millis(1))),
            _ => {
                errors.push(NotifyEnvError::Watchdog(v));
                None
            }
        },
    };
    (NotifyEnv { socket, watchdog }, errors)
}

/// A state change systemd is told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Ready,
    /// `monotonic_usec`: CLOCK_MONOTONIC when the reload began.
    Reloading {
        monotonic_usec: u64,
    },
    Stopping,
    Watchdog,
}

impl State {
    /// The datagram's text.
    pub(crate) fn message(self) -> String {
        match self {
            State::Ready => "READY=1\nSTATUS=secrets synced\n".into(),
            State::Reloading { monotonic_usec } => {
                format!(
                    "RELOADING=1\nMONOTONIC_USEC={monotonic_usec}\nSTATUS=reloading the config\n"
                )
            }
            State::Stopping => "STOPPING=1\nSTATUS=stopping\n".into(),
            State::Watchdog => "WATCHDOG=1\n".into(),
        }
    }
}

/// Sends the notifications of one process.
pub(crate) struct Notifier {
    socket: Option<(UnixDatagram, SocketAddr)>,
    watchdog: Option<Duration>,
    /// `READY=1` was sent once: later reloads end with `READY=1` again;
    /// before it, a reload says nothing (the start is still under way).
    announced: AtomicBool,
    /// A failed send was logged (once is enough).
    warned: AtomicBool,
}

impl Notifier {
    /// Nothing to tell anyone (no `NOTIFY_SOCKET`, `--once`).
    pub(crate) fn off() -> Self {
        Self::new(NotifyEnv {
            socket: None,
            watchdog: None,
        })
    }

    /// From the process environment; bad variables are logged.
    pub(crate) fn from_env() -> Self {
        let (env, errors) = parse_env(|k| std::env::var(k).ok(), std::process::id());
        for e in errors {
            tracing::warn!("{e}");
        }
        Self::new(env)
    }

    fn new(env: NotifyEnv) -> Self {
        let socket = env.socket.and_then(|t| match open(&t) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, socket = ?t, "cannot use NOTIFY_SOCKET; systemd notifications are off");
                None
            }
        });
        Self {
            watchdog: env.watchdog.filter(|_| socket.is_some()),
            socket,
            announced: AtomicBool::new(false),
            warned: AtomicBool::new(false),
        }
    }

    /// How often the watchdog wants `WATCHDOG=1`, if it does.
    pub(crate) fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog
    }

    /// The readiness policy holds (sent the first time only).
    pub(crate) fn ready(&self) {
        if !self.announced.swap(true, Ordering::SeqCst) {
            self.send(State::Ready);
        }
    }

    /// A SIGHUP reload begins; the returned guard sends `READY=1` when the
    /// reload ended (applied or refused: either way the service runs on).
    pub(crate) fn reloading(&self) -> Option<ReloadGuard<'_>> {
        if !self.announced.load(Ordering::SeqCst) {
            return None;
        }
        self.send(State::Reloading {
            monotonic_usec: monotonic_usec(),
        });
        Some(ReloadGuard(self))
    }

    pub(crate) fn stopping(&self) {
        self.send(State::Stopping);
    }

    pub(crate) fn watchdog(&self) {
        self.send(State::Watchdog);
    }

    fn send(&self, state: State) {
        let Some((sock, addr)) = &self.socket else {
            return;
        };
        if let Err(e) = sock.send_to_addr(state.message().as_bytes(), addr) {
            if !self.warned.swap(true, Ordering::SeqCst) {
                tracing::warn!(error = %e, "cannot notify systemd (NOTIFY_SOCKET); carrying on");
            }
        } else {
            tracing::debug!(state = ?state, "systemd notified");
        }
    }
}

/// Sends `READY=1` when the reload is over.
pub(crate) struct ReloadGuard<'a>(&'a Notifier);

impl Drop for ReloadGuard<'_> {
    fn drop(&mut self) {
        self.0.send(State::Ready);
    }
}

fn open(target: &Target) -> std::io::Result<(UnixDatagram, SocketAddr)> {
    let addr = match target {
        Target::Path(p) => SocketAddr::from_pathname(p)?,
        Target::Abstract(name) => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(name)?
        }
    };
    let sock = UnixDatagram::unbound()?;
    // A full receive queue must not stall the actor that reports.
    sock.set_nonblocking(true)?;
    Ok((sock, addr))
}

/// CLOCK_MONOTONIC in microseconds, as systemd compares it.
fn monotonic_usec() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    u64::try_from(t.tv_sec)
        .unwrap_or(0)
        .saturating_mul(1_000_000)
        .saturating_add(u64::try_from(t.tv_nsec).unwrap_or(0) / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn the_variables_are_parsed_by_name() {
        let (e, errs) = parse_env(env(&[]), 7);
        assert_eq!((e.socket, e.watchdog), (None, None));
        assert!(errs.is_empty());

        let (e, _) = parse_env(
            env(&[
                ("NOTIFY_SOCKET", "/run/systemd/notify"),
                ("WATCHDOG_USEC", "30000000"),
            ]),
            7,
        );
        assert_eq!(e.socket, Some(Target::Path("/run/systemd/notify".into())));
        assert_eq!(e.watchdog, Some(Duration::from_secs(15)));

        let (e, _) = parse_env(env(&[("NOTIFY_SOCKET", "@sd-notify")]), 7);
        assert_eq!(e.socket, Some(Target::Abstract(b"sd-notify".to_vec())));

        // Another process's watchdog, or no socket: no pings.
        let (e, errs) = parse_env(
            env(&[
                ("NOTIFY_SOCKET", "@x"),
                ("WATCHDOG_USEC", "1000"),
                ("WATCHDOG_PID", "8"),
            ]),
            7,
        );
        assert_eq!(e.watchdog, None);
        assert!(errs.is_empty());
        let (e, _) = parse_env(env(&[("WATCHDOG_USEC", "1000")]), 7);
        assert_eq!(e.watchdog, None);

        let (_, errs) = parse_env(
            env(&[("NOTIFY_SOCKET", "relative"), ("WATCHDOG_USEC", "soon")]),
            7,
        );
        assert_eq!(errs, vec![NotifyEnvError::Socket("relative".into())]);
        let (_, errs) = parse_env(env(&[("NOTIFY_SOCKET", "@x"), ("WATCHDOG_USEC", "0")]), 7);
        assert_eq!(errs, vec![NotifyEnvError::Watchdog("0".into())]);
    }

    fn recv(sock: &UnixDatagram) -> String {
        let mut buf = [0u8; 512];
        let n = sock.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    /// A test-owned socket, by path and by abstract name: the messages and
    /// their order (READY once, reload only after it, then READY again).
    #[test]
    fn datagrams_reach_a_path_and_an_abstract_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let name = format!("secrets-sync-test-{}", std::process::id());
        let by_path = UnixDatagram::bind(&path).unwrap();
        let by_name = {
            use std::os::linux::net::SocketAddrExt;
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
                .unwrap()
        };
        for (target, sock) in [
            (Target::Path(path.clone()), &by_path),
            (Target::Abstract(name.clone().into_bytes()), &by_name),
        ] {
            sock.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            let n = Notifier::new(NotifyEnv {
                socket: Some(target),
                watchdog: None,
            });
            // Before READY a reload says nothing.
            assert!(n.reloading().is_none());
            n.ready();
            n.ready();
            assert_eq!(recv(sock), "READY=1\nSTATUS=secrets synced\n");
            {
                let _g = n.reloading().unwrap();
                let m = recv(sock);
                assert!(m.starts_with("RELOADING=1\nMONOTONIC_USEC="), "{m}");
                let usec: u64 = m.lines().nth(1).unwrap()[15..].parse().unwrap();
                assert!(usec > 0 && usec <= monotonic_usec());
            }
            assert_eq!(recv(sock), "READY=1\nSTATUS=secrets synced\n");
            n.watchdog();
            assert_eq!(recv(sock), "WATCHDOG=1\n");
            n.stopping();
            assert_eq!(recv(sock), "STOPPING=1\nSTATUS=stopping\n");
            // The second ready() above sent nothing.
            let mut buf = [0u8; 64];
            assert!(sock.recv(&mut buf).is_err(), "an extra datagram");
        }
    }

    #[test]
    fn a_missing_socket_is_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let n = Notifier::new(NotifyEnv {
            socket: Some(Target::Path(dir.path().join("nobody-listens"))),
            watchdog: Some(Duration::from_secs(1)),
        });
        n.ready();
        n.stopping();
        assert_eq!(n.watchdog_interval(), Some(Duration::from_secs(1)));
        assert!(n.warned.load(Ordering::SeqCst));
    }
}
