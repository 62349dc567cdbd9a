//! Test harness: one real OpenBao dev server per test binary, a tiny HTTP
//! client to seed it, and a runner for the `secrets-sync` binary.
//!
//! The server is found through `BAO_BIN` (set by `scripts/test.sh`), then
//! `.tools/bin/bao`, then `PATH`. When it is missing the tests fail under
//! `CI=true` and say loudly that they were skipped otherwise.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub mod pg;
pub mod proxy;

pub const ROOT_TOKEN: &str = "root";

pub struct Bao {
    pub addr: String,
    pub bin: PathBuf,
    /// The file audit device's log: one JSON line per request and response.
    pub audit_log: PathBuf,
}

fn find_bao() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("BAO_BIN").map(PathBuf::from) {
        if p.is_file() {
            return Some(p);
        }
    }
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/bin/bao");
    if local.is_file() {
        return Some(local);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("bao"))
            .find(|p| p.is_file())
    })
}

/// Where files of servers shared by a test binary go: `target/tmp`, not
/// `/tmp` (a shared server outlives every test, so no test can remove them).
pub fn test_tmp() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&d).expect("CARGO_TARGET_TMPDIR");
    d
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free local port")
}

/// `bao server -dev` on `port` with extra arguments, as a child of the
/// calling thread (SIGKILL when that thread ends). Output goes to a log file.
pub fn bao_command(bin: &Path, port: u16, extra: &[String]) -> Command {
    // Under target/tmp (cargo's CARGO_TARGET_TMPDIR): shared servers live
    // as long as the test process, so nothing could remove their files.
    let log = test_tmp().join(format!("secrets-sync-test-bao-{port}.log"));
    let log_file = std::fs::File::create(&log).expect("bao log file");
    let mut cmd = Command::new(bin);
    cmd.args([
        "server",
        "-dev",
        &format!("-dev-root-token-id={ROOT_TOKEN}"),
        &format!("-dev-listen-address=127.0.0.1:{port}"),
    ])
    .args(extra)
    .stdin(Stdio::null())
    .stdout(log_file.try_clone().expect("log clone"))
    .stderr(log_file);
    // SAFETY: prctl is async-signal-safe; nothing else runs in the child.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd
}

/// Waits until the dev server on `host` answers its health check.
pub fn wait_healthy(host: &str) {
    wait_for(Duration::from_secs(30), || {
        http(host, "GET", "/v1/sys/health", None, None).is_ok_and(|(s, _)| s == 200)
    })
    .unwrap_or_else(|_| panic!("bao dev server did not become healthy on {host}"));
}

/// Starts `bao server -dev` with extra arguments in a thread that outlives
/// every test; the server gets SIGKILL when the test process exits.
pub fn start_bao(bin: &Path, port: u16, extra: &[String]) -> String {
    let bin = bin.to_path_buf();
    let extra = extra.to_vec();
    std::thread::spawn(move || {
        let mut child = bao_command(&bin, port, &extra)
            .spawn()
            .expect("cannot start bao");
        let _ = child.wait();
    });
    format!("127.0.0.1:{port}")
}

/// The `bao` binary; under `CI=true` a missing one fails the test, otherwise
/// the test is reported as skipped on stderr.
pub fn bao_bin() -> Option<PathBuf> {
    let found = find_bao();
    if found.is_none() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true but the OpenBao binary `bao` was not found: run scripts/install-openbao.sh or set BAO_BIN");
        }
        eprintln!("SKIPPED: OpenBao `bao` not found (run scripts/install-openbao.sh); integration tests did not run");
    }
    found
}

/// The shared dev server (plain HTTP), or `None` when `bao` is missing
/// outside CI.
pub fn bao() -> Option<&'static Bao> {
    static BAO: OnceLock<Option<Bao>> = OnceLock::new();
    BAO.get_or_init(|| {
        let bin = bao_bin()?;
        let port = free_port();
        let dir = test_tmp().join(format!("secrets-sync-test-audit-{port}"));
        std::fs::create_dir_all(&dir).expect("audit dir");
        let audit_log = dir.join("audit.log");
        let hcl = dir.join("audit.hcl");
        std::fs::write(
            &hcl,
            format!(
                "audit \"file\" \"file\" {{\n  options {{\n    file_path = \"{}\"\n  }}\n}}\n",
                audit_log.display()
            ),
        )
        .expect("audit config");
        let host = start_bao(&bin, port, &[format!("-config={}", hcl.display())]);
        wait_healthy(&host);
        Some(Bao {
            addr: format!("http://{host}"),
            bin,
            audit_log,
        })
    })
    .as_ref()
}

/// Returns the shared server or ends the test early (outside CI only).
#[macro_export]
macro_rules! require_bao {
    () => {
        match common::bao() {
            Some(b) => b,
            None => return,
        }
    };
}

impl Bao {
    /// A handle on a server this test started itself (no audit log).
    pub fn at(addr: String, bin: PathBuf) -> Bao {
        Bao {
            addr,
            bin,
            audit_log: PathBuf::new(),
        }
    }

    pub fn host(&self) -> &str {
        self.addr.trim_start_matches("http://")
    }

    /// An API call with the root token; panics on a non-2xx answer.
    pub fn api(&self, method: &str, path: &str, body: Option<&str>) -> String {
        let (status, text) = http(self.host(), method, path, Some(ROOT_TOKEN), body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {text}"
        );
        text
    }

    /// An API call with the root token inside namespace `ns`.
    pub fn api_ns(&self, ns: &str, method: &str, path: &str, body: Option<&str>) -> String {
        let headers = [("X-Vault-Token", ROOT_TOKEN), ("X-Vault-Namespace", ns)];
        let (status, text) = http_with(self.host(), method, path, &headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        assert!(
            (200..300).contains(&status),
            "{method} {path} in {ns}: {status} {text}"
        );
        text
    }

    /// Creates namespace `ns` with a KV v2 mount at `secret/` in it.
    pub fn namespace_with_kv(&self, ns: &str) {
        self.api("POST", &format!("/v1/sys/namespaces/{ns}"), Some("{}"));
        self.api_ns(
            ns,
            "POST",
            "/v1/sys/mounts/secret",
            Some(r#"{"type":"kv","options":{"version":"2"}}"#),
        );
    }

    /// [`approle_at`](Self::approle_at) on the default `approle` mount.
    pub fn approle(&self, role: &str, token_ttl: &str) -> (String, String) {
        self.approle_at("approle", role, token_ttl)
    }

    /// Writes a KV v2 secret at `secret/<path>`.
    pub fn kv_put(&self, path: &str, data: serde_json::Value) {
        let body = serde_json::json!({ "data": data }).to_string();
        self.api("POST", &format!("/v1/secret/data/{path}"), Some(&body));
    }

    /// Enables a mount once (ignores "already in use").
    pub fn ensure_mount(&self, mount: &str, body: &str) {
        let _ = http(
            self.host(),
            "POST",
            &format!("/v1/sys/mounts/{mount}"),
            Some(ROOT_TOKEN),
            Some(body),
        );
    }

    /// Enables an auth method mount of type approle once.
    pub fn ensure_mount_auth(&self, mount: &str) {
        let _ = http(
            self.host(),
            "POST",
            &format!("/v1/sys/auth/{mount}"),
            Some(ROOT_TOKEN),
            Some(r#"{"type":"approle"}"#),
        );
    }

    /// How many read requests for `secret/data/<path>` reached the server.
    pub fn reads_of(&self, path: &str) -> usize {
        let needle = format!("\"path\":\"secret/data/{path}\"");
        std::fs::read_to_string(&self.audit_log)
            .unwrap_or_default()
            .lines()
            .filter(|l| {
                l.contains("\"type\":\"request\"")
                    && l.contains("\"operation\":\"read\"")
                    && l.contains(&needle)
            })
            .count()
    }

    /// Makes an AppRole role reading `secret/*` on the auth mount `mount`;
    /// returns (role_id, secret_id).
    pub fn approle_at(&self, mount: &str, role: &str, token_ttl: &str) -> (String, String) {
        let policy = "path \"secret/data/*\" { capabilities = [\"read\"] }\npath \"kv1/*\" { capabilities = [\"read\"] }";
        self.approle_with(mount, role, token_ttl, "test-read", policy)
    }

    /// Makes an AppRole role on the auth mount `mount` whose tokens have
    /// the ACL policy `policy_name` (written from `policy`, HCL); returns
    /// (role_id, secret_id).
    pub fn approle_with(
        &self,
        mount: &str,
        role: &str,
        token_ttl: &str,
        policy_name: &str,
        policy: &str,
    ) -> (String, String) {
        self.ensure_mount_auth(mount);
        self.api(
            "PUT",
            &format!("/v1/sys/policies/acl/{policy_name}"),
            Some(&serde_json::json!({ "policy": policy }).to_string()),
        );
        let role_body = serde_json::json!({
            "token_policies": policy_name,
            "token_ttl": token_ttl,
            "token_max_ttl": "24h",
        });
        self.api(
            "POST",
            &format!("/v1/auth/{mount}/role/{role}"),
            Some(&role_body.to_string()),
        );
        let rid: serde_json::Value = serde_json::from_str(&self.api(
            "GET",
            &format!("/v1/auth/{mount}/role/{role}/role-id"),
            None,
        ))
        .unwrap();
        let sid: serde_json::Value = serde_json::from_str(&self.api(
            "POST",
            &format!("/v1/auth/{mount}/role/{role}/secret-id"),
            Some("{}"),
        ))
        .unwrap();
        (
            rid["data"]["role_id"].as_str().unwrap().to_string(),
            sid["data"]["secret_id"].as_str().unwrap().to_string(),
        )
    }
}

/// Minimal blocking HTTP/1.0 client: returns (status, body).
pub fn http(
    host: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Result<(u16, String), String> {
    let headers: Vec<(&str, &str)> = token.map(|t| ("X-Vault-Token", t)).into_iter().collect();
    http_with(host, method, path, &headers, body)
}

/// [`http`] with arbitrary headers.
pub fn http_with(
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(host).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: {host}\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or("");
    req.push_str(&format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&resp).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad response: {text:?}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// A tiny HTTP/1.1 server on a free local port, for the few outside parties
/// the tests stand in for (an OTLP collector, the Kubernetes TokenReview
/// API). Each request body goes to `handler`, which returns the status line
/// (`"200 OK"`), the content type and the body of the answer. Keep-alive
/// connections are served until the client closes them.
pub fn serve_http<F>(handler: F) -> u16
where
    F: Fn(&[u8]) -> (&'static str, &'static str, Vec<u8>) + Send + std::marker::Sync + 'static,
{
    serve_http_with_line(move |_, body| handler(body))
}

/// [`serve_http`] whose handler also gets the request line
/// (`"PUT /v1/sys/leases/renew HTTP/1.1"`): a hostile Vault, say.
pub fn serve_http_with_line<F>(handler: F) -> u16
where
    F: Fn(&str, &[u8]) -> (&'static str, &'static str, Vec<u8>)
        + Send
        + std::marker::Sync
        + 'static,
{
    use std::io::BufRead;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("local addr").port();
    let handler = std::sync::Arc::new(handler);
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let handler = std::sync::Arc::clone(&handler);
            std::thread::spawn(move || {
                let Ok(read_half) = conn.try_clone() else {
                    return;
                };
                let mut reader = std::io::BufReader::new(read_half);
                let mut conn = conn;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut len = 0;
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 {
                            return;
                        }
                        if h == "\r\n" {
                            break;
                        }
                        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; len];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    let (status, content_type, answer) = handler(line.trim_end(), &body);
                    let head = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n",
                        answer.len()
                    );
                    if conn
                        .write_all(head.as_bytes())
                        .and_then(|()| conn.write_all(&answer))
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// Does `path` hold exactly `want`?
pub fn file_has(path: &Path, want: &str) -> bool {
    read(path).as_deref() == Some(want)
}

/// Polls `cond` every 50 ms until it holds or `timeout` passes.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> Result<(), String> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if cond() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if cond() {
        Ok(())
    } else {
        Err(format!("condition not met within {timeout:?}"))
    }
}

/// A running `secrets-sync`, killed on drop. Output goes to `log`.
pub struct Sync {
    pub child: Child,
    pub log: PathBuf,
    /// `/health` and `/ready` (HTTP_PORT).
    pub http_port: u16,
    /// `/status` and `/metrics` (METRICS_PORT, on loopback).
    pub metrics_port: u16,
    pub status_file: PathBuf,
}

/// Base command with a clean environment: only what the test sets.
pub fn command(dir: &Path, config: &Path, vault_addr: &str, env: &[(&str, &str)]) -> Command {
    command_for(
        Path::new(env!("CARGO_BIN_EXE_secrets-sync")),
        dir,
        config,
        vault_addr,
        env,
    )
}

/// [`command`] for a copy of the binary elsewhere (e.g. one another user can reach).
pub fn command_for(
    program: &Path,
    dir: &Path,
    config: &Path,
    vault_addr: &str,
    env: &[(&str, &str)],
) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("CONFIG_FILE", config)
        .env("VAULT_ADDR", vault_addr)
        .env("STATUS_FILE", dir.join("status.json"))
        .env("INITIAL_BACKOFF", "200ms")
        .env("MAX_BACKOFF", "1s")
        .env("LOG_LEVEL", "debug")
        // Tests run in parallel: no fixed default port.
        .env("HTTP_PORT", "0")
        .env("METRICS_PORT", "0")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

impl Sync {
    /// Starts `secrets-sync run` with `config` (written to `dir/config.yaml`).
    pub fn start(dir: &Path, config: &str, vault_addr: &str, env: &[(&str, &str)]) -> Sync {
        let program = Path::new(env!("CARGO_BIN_EXE_secrets-sync"));
        Self::start_with(program, dir, config, vault_addr, env, |_| {})
    }

    /// [`start`](Self::start) of `program`, with a last say on the command (user, ...).
    /// The ports are found free just before the start, so another process
    /// may take one in between: a start that fails with "Address already in
    /// use" is tried again on other ports (at most three times).
    pub fn start_with(
        program: &Path,
        dir: &Path,
        config: &str,
        vault_addr: &str,
        env: &[(&str, &str)],
        customize: impl Fn(&mut Command),
    ) -> Sync {
        let cfg = dir.join("config.yaml");
        std::fs::write(&cfg, config).unwrap();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let http_port = free_port();
            let metrics_port = free_port();
            let log = dir.join("secrets-sync.log");
            let out = std::fs::File::create(&log).unwrap();
            let mut cmd = command_for(program, dir, &cfg, vault_addr, env);
            cmd.env("HTTP_PORT", http_port.to_string())
                .env("HTTP_BIND", "127.0.0.1")
                .env("METRICS_PORT", metrics_port.to_string())
                .arg("run")
                .stdout(out.try_clone().unwrap())
                .stderr(out);
            customize(&mut cmd);
            let child = cmd.spawn().expect("start secrets-sync");
            let mut s = Sync {
                child,
                log,
                http_port,
                metrics_port,
                status_file: dir.join("status.json"),
            };
            let started = wait_for(Duration::from_secs(15), || {
                s.get("/health").is_ok() || s.logs().contains("Address already in use")
            });
            if s.logs().contains("Address already in use") && attempt < 3 {
                let _ = s.child.kill();
                let _ = s.child.wait();
                continue;
            }
            if let Err(e) = started.and_then(|()| s.get("/health").map(|_| ())) {
                panic!("secrets-sync HTTP server did not start: {e}\n{}", s.logs());
            }
            return s;
        }
    }

    /// GET `path` from the listener that serves it: `/status` and
    /// `/metrics` from METRICS_PORT, the rest from HTTP_PORT.
    pub fn get(&self, path: &str) -> Result<(u16, String), String> {
        let port = if path.starts_with("/status") || path.starts_with("/metrics") {
            self.metrics_port
        } else {
            self.http_port
        };
        http(&format!("127.0.0.1:{port}"), "GET", path, None, None)
    }

    pub fn status(&self) -> serde_json::Value {
        let (_, body) = self.get("/status").expect("/status");
        serde_json::from_str(&body).expect("/status is JSON")
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        let start = Instant::now();
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st;
            }
            assert!(
                start.elapsed() < Duration::from_secs(35),
                "no exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Sync {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the binary to completion (`check`, `isready`, `run --once`).
pub fn run_to_end(mut cmd: Command) -> (i32, String, String) {
    let out = cmd.output().expect("run secrets-sync");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `secrets-sync check` on `config` (written to a temporary file), with an
/// empty environment: (exit code, stdout, stderr).
pub fn check_config(config: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = dir.path().join("config.yaml");
    std::fs::write(&cfg, config).expect("write config");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_secrets-sync"));
    cmd.env_clear().args(["check", "--config"]).arg(&cfg);
    run_to_end(cmd)
}

/// A unique KV path prefix per test.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// Builds a config file as JSON, which YAML reads unchanged: no quoting or
/// indentation to get wrong in `format!` strings.
#[derive(Default, Clone)]
pub struct ConfigBuilder {
    store: serde_json::Map<String, serde_json::Value>,
    stores: serde_json::Map<String, serde_json::Value>,
    secrets: Vec<serde_json::Value>,
    actions: serde_json::Map<String, serde_json::Value>,
}

impl ConfigBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `secretStore.<key>`.
    pub fn store(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.store.insert(key.to_string(), value.into());
        self
    }

    /// Sets `secretStores.<name>` (a named store, e.g. AWS).
    #[allow(dead_code)]
    pub fn named_store(mut self, name: &str, store: serde_json::Value) -> Self {
        self.stores.insert(name.to_string(), store);
        self
    }

    /// A secret whose field `v` is written to `file`.
    pub fn secret(self, name: &str, path: &str, interval: &str, file: &Path) -> Self {
        self.secret_json(serde_json::json!({
            "name": name,
            "path": path,
            "refreshInterval": interval,
            "files": [{"path": file, "key": "v"}],
        }))
    }

    /// Any secret entry.
    pub fn secret_json(mut self, secret: serde_json::Value) -> Self {
        self.secrets.push(secret);
        self
    }

    /// A change action under `actions.<name>`.
    #[allow(dead_code)]
    pub fn action(mut self, name: &str, action: serde_json::Value) -> Self {
        self.actions.insert(name.to_string(), action);
        self
    }

    pub fn build(&self) -> String {
        let mut doc = serde_json::json!({"secretStore": self.store, "secrets": self.secrets});
        if !self.actions.is_empty() {
            doc["actions"] = serde_json::Value::Object(self.actions.clone());
        }
        if !self.stores.is_empty() {
            doc["secretStores"] = serde_json::Value::Object(self.stores.clone());
        }
        doc.to_string()
    }
}

impl Sync {
    /// Waits until `cond` holds; otherwise fails the test with `what` and
    /// the process's log.
    pub fn wait_until(&self, timeout: Duration, what: &str, cond: impl FnMut() -> bool) {
        if let Err(e) = wait_for(timeout, cond) {
            panic!("{what}: {e}\n--- secrets-sync log ---\n{}", self.logs());
        }
    }

    /// The value of one series of `/metrics`, e.g.
    /// `config_reloads_total{result="failure"}` (`None`: not exported).
    pub fn metric(&self, series: &str) -> Option<f64> {
        let (_, text) = self.get("/metrics").ok()?;
        text.lines().find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
                .and_then(|v| v.trim().parse().ok())
        })
    }

    /// POST `path` to the inspection listener (METRICS_PORT): (status, body).
    #[allow(dead_code)]
    pub fn post(&self, path: &str) -> (u16, String) {
        http(
            &format!("127.0.0.1:{}", self.metrics_port),
            "POST",
            path,
            None,
            None,
        )
        .expect("POST")
    }

    /// Rewrites the config file (in place, as an operator's editor may).
    pub fn write_config(&self, dir: &Path, config: &str) {
        std::fs::write(dir.join("config.yaml"), config).unwrap();
    }
}

/// Exported span batches, as an OTLP/HTTP receiver got them.
pub type Spans = std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>;

/// An OTLP/HTTP receiver keeping every body it gets; returns the
/// endpoint for `OTEL_EXPORTER_ENDPOINT` and the bodies.
pub fn otlp_sink() -> (String, Spans) {
    let bodies: Spans = Default::default();
    let store = std::sync::Arc::clone(&bodies);
    let port = serve_http(move |body| {
        store.lock().unwrap().push(body.to_vec());
        ("200 OK", "application/x-protobuf", Vec::new())
    });
    (format!("http://127.0.0.1:{port}"), bodies)
}

/// Does any exported span batch hold `needle`?
pub fn exported(spans: &Spans, needle: &str) -> bool {
    spans
        .lock()
        .unwrap()
        .iter()
        .any(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
}

/// Runs `docker args...`: its stdout, or an error with its stderr.
pub fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .output()
        .map_err(|e| format!("run docker: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!(
            "docker {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A PKI mount of the test's own: a root CA and a role `web` issuing EC
/// certificates under `example.internal` and `web`, IP SANs allowed
/// (NotBefore backdated 1 s only).
#[allow(dead_code)]
pub fn pki_mount(bao: &Bao) -> String {
    let mount = unique("pki");
    bao.ensure_mount(
        &mount,
        r#"{"type":"pki","config":{"max_lease_ttl":"87600h"}}"#,
    );
    bao.api(
        "POST",
        &format!("/v1/{mount}/root/generate/internal"),
        Some(r#"{"common_name":"test-root","ttl":"8760h"}"#),
    );
    bao.api(
        "POST",
        &format!("/v1/{mount}/roles/web"),
        Some(
            &serde_json::json!({
                "allowed_domains": ["example.internal", "web"],
                "allow_subdomains": true,
                "allow_bare_domains": true,
                "allow_ip_sans": true,
                "key_type": "ec",
                "key_bits": 256,
                "max_ttl": "24h",
                "not_before_duration": "1s",
            })
            .to_string(),
        ),
    );
    mount
}

/// Standard base64 (padded): the tests' own encoder, not the crate's.
pub fn b64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
