//! Metrics, audit lines and the promise that no secret value is ever
//! printed, exported or served, against the real OpenBao.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use common::{read, unique, wait_for, ConfigBuilder, Sync, ROOT_TOKEN};
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
    let only_good = ConfigBuilder::new().secret("good", &good, "1s", &d.join("good"));
    let config = only_good
        .clone()
        .secret("gone", &format!("missing/{good}"), "1s", &d.join("gone"))
        .build();
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
        // The Go tool's `status` label splits the attempts.
        m.get(&format!("secret_fetch_total{{secret_name=good,status=success,vault_path={gp}}}"))
            .is_some_and(|v| *v >= 3.0)
            && m.get(&format!("secret_fetch_total{{secret_name=good,status=error,vault_path={gp}}}")) == Some(&0.0)
            && m.get(&format!("secret_fetch_total{{secret_name=gone,status=error,vault_path=secret/data/missing/{good}}}"))
                .is_some_and(|v| *v >= 2.0)
            && m.get(&format!("secret_fetch_errors_total{{{lgone}}}"))
                .is_some_and(|v| *v >= 2.0)
            // One of the two secrets synced (the Go tool's gauge).
            && m.get("secrets_synced{}") == Some(&1.0)
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
        metric(
            &m2,
            &format!("secret_fetch_total{{secret_name=good,status=success,vault_path={gp}}}")
        ) > metric(
            &m1,
            &format!("secret_fetch_total{{secret_name=good,status=success,vault_path={gp}}}")
        )
    );
    // A reload that removes `gone` removes its series.
    let tmp = d.join(".c.new");
    std::fs::write(&tmp, only_good.build()).unwrap();
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
    let config = ConfigBuilder::new()
        .secret_json(json!({
            "name": "a",
            "path": p,
            "files": [{"path": d.join("a"), "key": "v", "mode": "0640"}],
        }))
        .build();
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
    refreshInterval: 1s
    template:
      data:
        # `round` on a string fails and Tera quotes the value in its error.
        x: '{{{{ .n | round }}}} {{{{ .a }}}}'
    files: [{{path: {d}/r}}]
  - name: write-fails
    path: {write_fail}
    refreshInterval: 1s
    files: [{{path: {d}/blocker/v, key: v}}]
  - name: rotating
    path: {rotating}
    refreshInterval: 1s
    template:
      data:
        out: '{{{{ .v }}}}+{{{{ secret["tls.key"] }}}}'
    files: [{{path: {d}/out}}]
"#,
        d = d.display()
    );
    let audit = d.join("audit.log");
    let audit_s = audit.display().to_string();
    let (otlp_port, spans) = otlp_receiver();
    let endpoint = format!("http://127.0.0.1:{otlp_port}");
    let env = [
        ("VAULT_TOKEN", ROOT_TOKEN),
        ("LOG_LEVEL", "trace"),
        ("AUDIT_LOG_FILE", audit_s.as_str()),
        ("ENABLE_TRACING", "true"),
        ("OTEL_EXPORTER_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    let mut s = Sync::start(d, &config, &bao.addr, &env);
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
    // Spans, flushed at shutdown, including those of the failed attempts.
    assert!(s.stop().success());
    let bodies = spans.lock().unwrap();
    let names: Vec<String> = bodies
        .iter()
        .flat_map(|b| decode_spans(b))
        .map(|s| s.name)
        .collect();
    assert!(
        names.iter().filter(|n| *n == "render").count() >= 3,
        "{names:?}"
    );
    assert!(names.iter().any(|n| n == "write"), "{names:?}");
    for body in bodies.iter() {
        assert!(
            !body.windows(C.len()).any(|w| w == C.as_bytes()),
            "a canary was exported in a span"
        );
    }
    assert!(
        !s.logs().contains(C),
        "a canary leaked into the shutdown logs"
    );
}

/// One decoded span: the fields of the OTLP protobuf `Span` that matter here.
#[derive(Debug, Clone)]
struct OtlpSpan {
    name: String,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent_span_id: Vec<u8>,
}

/// Protobuf wire format: (field number, wire type, payload) for each field.
fn fields(mut b: &[u8]) -> Vec<(u64, u8, Vec<u8>)> {
    fn varint(b: &mut &[u8]) -> u64 {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let Some((&byte, rest)) = b.split_first() else {
                return v;
            };
            *b = rest;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
        }
        v
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let key = varint(&mut b);
        let (field, wire) = (key >> 3, (key & 7) as u8);
        let payload = match wire {
            0 => {
                varint(&mut b);
                Vec::new()
            }
            1 => {
                let (p, rest) = b.split_at(8.min(b.len()));
                b = rest;
                p.to_vec()
            }
            2 => {
                let len = varint(&mut b) as usize;
                let (p, rest) = b.split_at(len.min(b.len()));
                b = rest;
                p.to_vec()
            }
            5 => {
                let (p, rest) = b.split_at(4.min(b.len()));
                b = rest;
                p.to_vec()
            }
            _ => panic!("unexpected protobuf wire type {wire}"),
        };
        out.push((field, wire, payload));
    }
    out
}

/// ExportTraceServiceRequest -> ResourceSpans(1) -> ScopeSpans(2) -> Span(2).
fn decode_spans(body: &[u8]) -> Vec<OtlpSpan> {
    let mut spans = Vec::new();
    for (f, _, rs) in fields(body) {
        if f != 1 {
            continue;
        }
        for (f, _, ss) in fields(&rs) {
            if f != 2 {
                continue;
            }
            for (f, _, span) in fields(&ss) {
                if f != 2 {
                    continue;
                }
                let mut s = OtlpSpan {
                    name: String::new(),
                    trace_id: vec![],
                    span_id: vec![],
                    parent_span_id: vec![],
                };
                for (f, _, v) in fields(&span) {
                    match f {
                        1 => s.trace_id = v,
                        2 => s.span_id = v,
                        4 => s.parent_span_id = v,
                        5 => s.name = String::from_utf8(v).unwrap(),
                        _ => {}
                    }
                }
                spans.push(s);
            }
        }
    }
    spans
}

/// A minimal OTLP/HTTP receiver: keeps every request body, answers 200.
fn otlp_receiver() -> (u16, common::Spans) {
    let (endpoint, bodies) = common::otlp_sink();
    let port = endpoint
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("the sink's port");
    (port, bodies)
}

#[test]
fn traces_reach_an_otlp_receiver_with_parent_links_and_no_values() {
    let bao = require_bao!();
    const C: &str = "CANARY-5d1c0a";
    let p = unique("traced");
    bao.kv_put(&p, json!({"v": format!("{C}-traced")}));
    let (port, bodies) = otlp_receiver();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = ConfigBuilder::new()
        .secret("traced", &p, "1s", &d.join("t"))
        .build();
    let endpoint = format!("http://127.0.0.1:{port}");
    let env = [
        ("VAULT_TOKEN", ROOT_TOKEN),
        ("ENABLE_TRACING", "true"),
        ("OTEL_EXPORTER_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("LOG_LEVEL", "trace"),
    ];
    let mut s = Sync::start(d, &config, &bao.addr, &env);
    wait_for(Duration::from_secs(15), || read(&d.join("t")).is_some())
        .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    let _ = s.get("/status");
    let all_spans = || -> Vec<OtlpSpan> {
        bodies
            .lock()
            .unwrap()
            .iter()
            .flat_map(|b| decode_spans(b))
            .collect()
    };
    let have = |spans: &[OtlpSpan], n: &str| spans.iter().any(|s| s.name == n);
    wait_for(Duration::from_secs(15), || {
        let spans = all_spans();
        [
            "sync",
            "vault.read",
            "vault.request",
            "render",
            "write",
            "GET /status",
        ]
        .iter()
        .all(|n| have(&spans, n))
    })
    .unwrap_or_else(|e| {
        let names: Vec<String> = all_spans().into_iter().map(|s| s.name).collect();
        panic!("{e}: got {names:?}\n{}", s.logs())
    });
    let spans = all_spans();
    // Parent links: read, render and write hang under a sync of the same trace.
    let by_id = |id: &[u8]| spans.iter().find(|s| s.span_id == id);
    for child in ["vault.read", "render", "write"] {
        let c = spans.iter().find(|s| s.name == child).unwrap();
        let parent =
            by_id(&c.parent_span_id).unwrap_or_else(|| panic!("{child} has no exported parent"));
        assert_eq!(parent.name, "sync", "{child}'s parent");
        assert_eq!(parent.trace_id, c.trace_id);
    }
    // Each read's HTTP call hangs under it (the start-up token lookup has no parent).
    assert!(spans
        .iter()
        .filter(|s| s.name == "vault.request")
        .any(|r| by_id(&r.parent_span_id).is_some_and(|p| p.name == "vault.read")));
    assert!(s.stop().success());
    for body in bodies.lock().unwrap().iter() {
        assert!(
            !body.windows(C.len()).any(|w| w == C.as_bytes()),
            "a canary value was exported in a span"
        );
    }
    assert!(!s.logs().contains(C));
}

/// The Go tool's ENABLE_METRICS=false: no inspection listener (no /metrics,
/// no /status), the probes still served.
#[test]
fn enable_metrics_false_turns_the_inspection_listener_off() {
    let Some(bao) = common::bao() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = unique("enable-metrics");
    bao.kv_put(&path, json!({"v": "1"}));
    let out = dir.path().join("v");
    let config = ConfigBuilder::new().secret("m", &path, "1h", &out).build();
    let s = Sync::start(
        dir.path(),
        &config,
        &bao.addr,
        &[("VAULT_TOKEN", ROOT_TOKEN), ("ENABLE_METRICS", "false")],
    );
    wait_for(Duration::from_secs(15), || read(&out).is_some())
        .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    assert_eq!(s.get("/health").map(|r| r.0), Ok(200));
    assert!(s.get("/metrics").is_err(), "/metrics still served");
    assert!(s.get("/status").is_err(), "/status still served");
    let logs = s.logs();
    assert!(!logs.contains("/status /metrics"), "{logs}");
}
