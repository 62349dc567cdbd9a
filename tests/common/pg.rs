//! A real PostgreSQL server for the database-engine tests: `initdb` and
//! `postgres` from Debian's packages (`PG_BIN_DIR`, set by scripts/test.sh
//! from scripts/install-postgres.sh, else `/usr/lib/postgresql/*/bin`), run
//! as an unprivileged user (PostgreSQL refuses root) on a loopback port,
//! with password (SCRAM) authentication so that a wrong password fails,
//! in a directory of its own under the system temp directory.
//! Each test starts its own server; it is stopped and its directory removed
//! on drop, whether the test passed or not.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The superuser's password (a test-only server on loopback).
pub const SUPER_PASSWORD: &str = "pg-test-superuser";

pub struct Postgres {
    pub port: u16,
    bin: PathBuf,
    dir: PathBuf,
    child: Child,
}

fn find_bin() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("PG_BIN_DIR").map(PathBuf::from) {
        if d.join("initdb").is_file() {
            return Some(d);
        }
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|d| d.join("initdb").is_file() && d.join("postgres").is_file())
        .collect();
    dirs.sort();
    dirs.pop()
}

/// The user the server runs as: `nobody` when the tests run as root.
fn as_unprivileged(cmd: &mut Command) {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        cmd.uid(65534).gid(65534);
    }
    // SAFETY: prctl is async-signal-safe; nothing else runs in the child.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

impl Postgres {
    /// Starts a fresh server, or `None` when PostgreSQL is missing outside
    /// CI (under `CI=true` that fails the test).
    pub fn start() -> Option<Postgres> {
        let Some(bin) = find_bin() else {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true but PostgreSQL (initdb, postgres) was not found: run scripts/install-postgres.sh or set PG_BIN_DIR");
            }
            eprintln!("SKIPPED: PostgreSQL not found (run scripts/install-postgres.sh); database tests did not run");
            return None;
        };
        // Under the system temp directory, not the checkout: the server's
        // user must reach it, and a checkout may sit below a directory
        // only its owner can enter (a `mktemp -d` clone is 0700).
        let dir = std::env::temp_dir().join(super::unique("secrets-sync-pg"));
        std::fs::create_dir_all(&dir).unwrap();
        let data = dir.join("data");
        let pwfile = dir.join("pw");
        std::fs::write(&pwfile, SUPER_PASSWORD).unwrap();
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
            std::os::unix::fs::chown(&pwfile, Some(65534), Some(65534)).unwrap();
        }
        let log = std::fs::File::create(dir.join("initdb.log")).unwrap();
        let mut init = Command::new(bin.join("initdb"));
        // Its own directory as the working directory, which its user can
        // enter (initdb and postgres change back to it).
        init.current_dir(&dir)
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-A", "scram-sha-256", "--no-sync"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        as_unprivileged(&mut init);
        let st = init.status().expect("run initdb");
        assert!(
            st.success(),
            "initdb failed: {}",
            std::fs::read_to_string(dir.join("initdb.log")).unwrap_or_default()
        );
        let port = super::free_port();
        let log = std::fs::File::create(dir.join("postgres.log")).unwrap();
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            std::os::unix::fs::chown(dir.join("postgres.log"), Some(65534), Some(65534)).unwrap();
        }
        let mut cmd = Command::new(bin.join("postgres"));
        cmd.current_dir(&dir)
            .arg("-D")
            .arg(&data)
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", &format!("port={port}")])
            .args(["-c", &format!("unix_socket_directories={}", dir.display())])
            .args(["-c", "fsync=off"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        as_unprivileged(&mut cmd);
        let child = cmd.spawn().expect("start postgres");
        let pg = Postgres {
            port,
            bin,
            dir,
            child,
        };
        super::wait_for(Duration::from_secs(30), || {
            pg.psql("postgres", SUPER_PASSWORD, "select 1").is_ok()
        })
        .unwrap_or_else(|e| {
            panic!(
                "postgres did not accept connections: {e}\n{}",
                std::fs::read_to_string(pg.dir.join("postgres.log")).unwrap_or_default()
            )
        });
        Some(pg)
    }

    /// Runs one SQL statement as `user` with `password` over TCP; the
    /// output (unaligned, tuples only) or psql's error.
    pub fn psql(&self, user: &str, password: &str, sql: &str) -> Result<String, String> {
        let out = Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", user, "-d", "postgres", "-w", "-At", "-c", sql])
            .env("PGPASSWORD", password)
            .env("PGCONNECT_TIMEOUT", "5")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("run psql: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }

    /// Login roles whose name starts with `prefix`.
    pub fn roles_like(&self, prefix: &str) -> Vec<String> {
        let sql = format!(
            "select rolname from pg_roles where starts_with(rolname, '{}') order by 1",
            prefix.replace('\'', "''")
        );
        self.psql("postgres", SUPER_PASSWORD, &sql)
            .unwrap_or_else(|e| panic!("list roles: {e}"))
            .lines()
            .map(str::to_string)
            .collect()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Fast shutdown (SIGINT): the server ends its backends and removes
        // its shared memory; SIGKILL only if it does not.
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGINT);
        }
        let end = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
