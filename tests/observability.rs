//! Metrics, audit lines and the promise that no secret value is ever
//! printed, exported or served, against the real OpenBao.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use common::{read, unique, wait_for, Sync, ROOT_TOKEN};
use serde_json::json;

/// Parses /metrics with a real exposition-format parser into
/// `name{sorted labels}` -> value.
fn scrape(s: &Sync) -> HashMap<String, f64> {
    let (code, body) = s.get("/metrics").expect("/metrics");
    assert_eq!(code, 200);
    let lines = body.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid exposition format");
    let mut out = HashMap::new();
    for sample in scrape.samples {
        let mut labels: Vec<String> = sample
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        labels.sort();
        let v = match sample.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            prometheus_parse::Value::Histogram(h) => h.iter().map(|b| b.count).fold(0.0, f64::max),
            prometheus_parse::Value::Summary(_) => continue,
        };
        out.insert(format!("{}{{{}}}", sample.metric, labels.join(",")), v);
    }
    out
}

fn metric(m: &HashMap<String, f64>, key: &str) -> f64 {
    *m.get(key).unwrap_or_else(|| {
        let mut keys: Vec<_> = m.keys().collect();
        keys.sort();
        panic!("no series {key}; have:\n{keys:#?}")
    })
}

#[test]
fn metrics_move_with_successes_and_failures_and_vanish_on_removal() {
    let bao = require_bao!();
    let good = unique("m-good");
    bao.kv_put(&good, json!({"v": "1"}));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = format!(
        "secrets:\n  - name: good\n    path: {good}\n    refreshInterval: 300ms\n    files: [{{path: {d}/good, key: v}}]\n  - name: gone\n    path: missing/{good}\n    refreshInterval: 300ms\n    files: [{{path: {d}/gone, key: v}}]\n",
        d = d.display()
    );
    let env = [
        ("VAULT_TOKEN", ROOT_TOKEN),
        ("WATCH_CONFIG", "true"),
        ("WATCH_DEBOUNCE", "100ms"),
    ];
    let s = Sync::start(d, &config, &bao.addr, &env);
    wait_for(Duration::from_secs(15), || {
        read(&d.join("good")).as_deref() == Some("1")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    let gp = format!("secret/data/{good}");
    let lg = format!("secret_name=good,vault_path={gp}");
    let lgone = format!("secret_name=gone,vault_path=secret/data/missing/{good}");
    wait_for(Duration::from_secs(10), || {
        let m = scrape(&s);
        m.get(&format!("secret_fetch_total{{{lg}}}"))
            .is_some_and(|v| *v >= 3.0)
            && m.get(&format!("secret_fetch_errors_total{{{lgone}}}"))
                .is_some_and(|v| *v >= 2.0)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", s.get("/metrics").unwrap().1));
    let m1 = scrape(&s);
    assert_eq!(
        metric(&m1, &format!("secret_fetch_errors_total{{{lg}}}")),
        0.0
    );
    assert_eq!(
        metric(&m1, &format!("secret_files_written_total{{{lg}}}")),
        1.0
    );
    assert_eq!(metric(&m1, &format!("circuit_breaker_state{{{lg}}}")), 0.0);
    assert!(
        metric(
            &m1,
            &format!("secret_last_success_timestamp_seconds{{{lg}}}")
        ) > 1.7e9
    );
    let gone_fetch = format!("secret_name=gone,stage=fetch,vault_path=secret/data/missing/{good}");
    assert!(metric(&m1, &format!("secret_sync_errors_total{{{gone_fetch}}}")) >= 2.0);
    assert!(
        metric(
            &m1,
            "vault_request_errors_total{kind=not_found,operation=read}"
        ) >= 2.0
    );
    assert!(metric(&m1, "vault_request_duration_seconds_count{operation=read}") >= 5.0);
    assert_eq!(
        metric(&m1, "vault_token_ttl_seconds{}"),
        0.0,
        "root token does not expire"
    );
    assert_eq!(metric(&m1, "secrets_ready{}"), 1.0);
    assert_eq!(metric(&m1, "secrets_configured{}"), 2.0);
    assert!(
        metric(
            &m1,
            "http_requests_total{method=GET,route=/metrics,status=200}"
        ) >= 1.0
    );
    assert!(
        metric(
            &m1,
            "http_requests_total{method=GET,route=/health,status=200}"
        ) >= 1.0
    );
    // Counters move on.
    bao.kv_put(&good, json!({"v": "2"}));
    wait_for(Duration::from_secs(10), || {
        scrape(&s).get(&format!("secret_files_written_total{{{lg}}}")) == Some(&2.0)
    })
    .unwrap();
    let m2 = scrape(&s);
    assert!(
        metric(&m2, &format!("secret_fetch_total{{{lg}}}"))
            > metric(&m1, &format!("secret_fetch_total{{{lg}}}"))
    );
    // A reload that removes `gone` removes its series.
    let only_good = config.split("  - name: gone").next().unwrap().to_string();
    let tmp = d.join(".c.new");
    std::fs::write(&tmp, only_good).unwrap();
    std::fs::rename(&tmp, d.join("config.yaml")).unwrap();
    wait_for(Duration::from_secs(10), || {
        !s.get("/metrics")
            .unwrap()
            .1
            .contains("secret_name=\"gone\"")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", s.get("/metrics").unwrap().1));
    let m3 = scrape(&s);
    assert_eq!(metric(&m3, "config_reloads_total{result=success}"), 1.0);
    assert_eq!(metric(&m3, "secrets_configured{}"), 1.0);
}

fn audit_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
        .collect()
}

#[test]
fn audit_lines_carry_pod_identity() {
    let bao = require_bao!();
    let p = unique("audit");
    bao.kv_put(&p, json!({"v": "x"}));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let audit = d.join("audit.log");
    let config = format!(
        "secrets:\n  - name: a\n    path: {p}\n    files: [{{path: {}/a, key: v, mode: \"0640\"}}]\n",
        d.display()
    );
    let audit_s = audit.display().to_string();
    let env = [
        ("VAULT_TOKEN", ROOT_TOKEN),
        ("AUDIT_LOG_FILE", audit_s.as_str()),
        ("POD_NAME", "app-7d9f"),
        ("POD_NAMESPACE", "shop"),
        ("SERVICE_ACCOUNT", "app"),
        ("NODE_NAME", "node-1"),
    ];
    let s = Sync::start(d, &config, &bao.addr, &env);
    wait_for(Duration::from_secs(15), || audit_lines(&audit).len() >= 2)
        .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    let lines = audit_lines(&audit);
    let read = lines.iter().find(|l| l["event"] == "secret_read").unwrap();
    assert_eq!(read["secret"], "a");
    assert_eq!(read["path"], format!("secret/data/{p}"));
    assert_eq!(read["version"], 1);
    let written = lines.iter().find(|l| l["event"] == "file_written").unwrap();
    assert_eq!(written["file"], format!("{}/a", d.display()));
    assert_eq!(written["mode"], "0640");
    for l in [read, written] {
        assert_eq!(l["pod_name"], "app-7d9f");
        assert_eq!(l["pod_namespace"], "shop");
        assert_eq!(l["service_account"], "app");
        assert_eq!(l["node_name"], "node-1");
    }
}

#[test]
fn canaries_never_leave_the_files() {
    let bao = require_bao!();
    const C: &str = "CANARY-b7e24f";
    let render_fail = unique("canary-render");
    let write_fail = unique("canary-write");
    let rotating = unique("canary-rotate");
    bao.kv_put(
        &render_fail,
        json!({"a": format!("{C}-render-a"), "n": format!("{C}-render-n")}),
    );
    bao.kv_put(&write_fail, json!({"v": format!("{C}-write")}));
    bao.kv_put(
        &rotating,
        json!({"v": format!("{C}-rotate-1"), "tls.key": format!("{C}-dotted")}),
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("blocker"), "not a directory").unwrap();
    let config = format!(
        r#"
secrets:
  - name: render-fails
    path: {render_fail}
    refreshInterval: 300ms
    template:
      data:
        # `round` on a string fails and Tera quotes the value in its error.
        x: '{{{{ .n | round }}}} {{{{ .a }}}}'
    files: [{{path: {d}/r}}]
  - name: write-fails
    path: {write_fail}
    refreshInterval: 300ms
    files: [{{path: {d}/blocker/v, key: v}}]
  - name: rotating
    path: {rotating}
    refreshInterval: 300ms
    template:
      data:
        out: '{{{{ .v }}}}+{{{{ secret["tls.key"] }}}}'
    files: [{{path: {d}/out}}]
"#,
        d = d.display()
    );
    let audit = d.join("audit.log");
    let audit_s = audit.display().to_string();
    let env = [
        ("VAULT_TOKEN", ROOT_TOKEN),
        ("LOG_LEVEL", "trace"),
        ("AUDIT_LOG_FILE", audit_s.as_str()),
    ];
    let s = Sync::start(d, &config, &bao.addr, &env);
    wait_for(Duration::from_secs(15), || {
        read(&d.join("out")).is_some_and(|c| c.contains("rotate-1"))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    bao.kv_put(
        &rotating,
        json!({"v": format!("{C}-rotate-2"), "tls.key": format!("{C}-dotted")}),
    );
    wait_for(Duration::from_secs(10), || {
        read(&d.join("out")).is_some_and(|c| c.contains("rotate-2"))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    wait_for(Duration::from_secs(10), || {
        let st = s.status();
        st["secrets"]["render-fails"]["consecutive_failures"].as_u64() >= Some(2)
            && st["secrets"]["write-fails"]["consecutive_failures"].as_u64() >= Some(2)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    let st = s.status();
    assert!(st["secrets"]["render-fails"]["last_error"]
        .as_str()
        .unwrap()
        .contains("round"));
    assert!(st["secrets"]["write-fails"]["last_error"]
        .as_str()
        .unwrap()
        .contains("blocker"));
    let outputs = [
        ("logs", s.logs()),
        ("status", st.to_string()),
        ("ready", s.get("/ready").unwrap().1),
        ("metrics", s.get("/metrics").unwrap().1),
        ("audit", std::fs::read_to_string(&audit).unwrap()),
        (
            "status file",
            std::fs::read_to_string(&s.status_file).unwrap(),
        ),
    ];
    assert!(
        outputs[4].1.contains("file_written"),
        "the audit log is empty"
    );
    assert!(outputs[0].1.contains("TRACE"), "trace logging was not on");
    for (what, text) in outputs {
        assert!(!text.contains(C), "a canary leaked into {what}:\n{text}");
    }
}
