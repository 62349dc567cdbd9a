//! The per-secret metric series, kept compactly.
//!
//! Seven families carry `secret_name` and `vault_path` labels (and
//! `secret_fetch_total` the Go tool's `status`) (see the table
//! in [`super::metrics`]). Built from `prometheus` vectors they cost about
//! 3.3 KiB per secret — each child owns its own copy of the descriptor, the
//! help text and every label name and value, and a histogram child two
//! shards of buckets — which was over half of the live heap at 10 000
//! secrets. Here a secret's series are one [`SecretSeries`]: its two label
//! values and a small block of numbers behind a mutex (written once per sync
//! by the secret's own actor, read at scrape time). [`SecretSeriesSet`] is
//! the `prometheus` collector that turns them into the same exposition the
//! vectors produced: same names, help, label names, buckets, and series that
//! appear only once they have something to say (an error counter after the
//! first error of its stage, the histogram after the first attempt).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, LabelPair, MetricFamily, MetricType};

pub(crate) use crate::attempt::SyncStage;

/// How one sync attempt ended, as the metrics count it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Attempt {
    /// Synced; `files_written` files were replaced (unchanged ones are not
    /// counted); `at` is the Unix time of the success.
    Synced { files_written: u64, at: f64 },
    /// Failed at `stage`; `vault` when Vault itself answered with an error
    /// (counted by `secret_fetch_errors_total` too).
    Failed { stage: SyncStage, vault: bool },
}

/// Latency buckets from 1 ms to 30 s, shared by every duration histogram.
pub(crate) const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Default)]
struct Numbers {
    fetch: u64,
    fetch_errors: u64,
    files_written: u64,
    sync_errors: [u64; 3],
    last_success: Option<f64>,
    breaker: Option<i64>,
    /// Per-bucket (not cumulative) counts of `secret_sync_duration_seconds`.
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
    /// Unix seconds when the lease ends (leased secrets).
    lease_expiry: Option<f64>,
    /// Unix seconds of the certificate's NotAfter (`pki` secrets).
    certificate_expiry: Option<f64>,
    /// Renames refused with EBUSY and done in place instead.
    inplace_fallbacks: u64,
}

/// The series of one secret. Cheap to update; only the secret's own
/// SyncActor writes to it.
pub(crate) struct SecretSeries {
    /// Also the key of [`SecretSeriesSet`]'s map (one allocation for both).
    name: Arc<str>,
    /// Shared with the job (one allocation per secret for the path).
    vault_path: Arc<str>,
    numbers: Mutex<Numbers>,
}

impl SecretSeries {
    /// The last success before any attempt of this run: when an earlier run
    /// wrote the files still on disk (`STATE_DIR`), so `secret_age_seconds`
    /// counts from there.
    pub(crate) fn seed_last_success(&self, at: f64) {
        let mut n = self.numbers.lock().unwrap_or_else(PoisonError::into_inner);
        if n.last_success.is_none() {
            n.last_success = Some(at);
        }
    }

    /// Records one sync attempt that took `took`; `breaker` is the state
    /// the read saw (`None` if the Vault actor did not answer).
    pub(crate) fn record(&self, took: Duration, breaker: Option<i64>, attempt: Attempt) {
        let secs = took.as_secs_f64();
        let mut n = self.numbers.lock().unwrap_or_else(PoisonError::into_inner);
        n.fetch += 1;
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| secs <= *b) {
            n.buckets[i] += 1;
        }
        n.count += 1;
        n.sum += secs;
        if breaker.is_some() {
            n.breaker = breaker;
        }
        match attempt {
            Attempt::Synced { files_written, at } => {
                n.last_success = Some(at);
                n.files_written += files_written;
            }
            Attempt::Failed { stage, vault } => {
                if vault {
                    n.fetch_errors += 1;
                }
                n.sync_errors[stage.index()] += 1;
            }
        }
    }
}

impl SecretSeries {
    /// When the secret's lease ends (Unix seconds); `None` clears it.
    pub(crate) fn set_lease_expiry(&self, at: Option<u64>) {
        self.numbers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .lease_expiry = at.map(|t| t as f64);
    }

    /// Counts files rewritten in place after a rename failed with EBUSY.
    pub(crate) fn count_inplace_fallbacks(&self, n: u64) {
        self.numbers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .inplace_fallbacks += n;
    }

    /// The NotAfter of the secret's certificate (Unix seconds).
    pub(crate) fn set_certificate_expiry(&self, at: Option<u64>) {
        self.numbers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .certificate_expiry = at.map(|t| t as f64);
    }
}

/// The family each [`Desc`] of the set describes, in `descs` order.
const FETCH: usize = 0;
const FETCH_ERRORS: usize = 1;
const SYNC_ERRORS: usize = 2;
const DURATION: usize = 3;
const LAST_SUCCESS: usize = 4;
const FILES_WRITTEN: usize = 5;
const BREAKER: usize = 6;
const LEASE_EXPIRY: usize = 7;
const CERTIFICATE_EXPIRY: usize = 8;
const INPLACE_FALLBACKS: usize = 9;
const AGE: usize = 10;

const FAMILIES: [(&str, &str, MetricType); 11] = [
    (
        "secret_fetch_total",
        "Secret reads attempted, per secret.",
        MetricType::COUNTER,
    ),
    (
        "secret_fetch_errors_total",
        "Secret reads that failed, per secret.",
        MetricType::COUNTER,
    ),
    (
        "secret_sync_errors_total",
        "Failed syncs by stage (fetch, render, write).",
        MetricType::COUNTER,
    ),
    (
        "secret_sync_duration_seconds",
        "Duration of a sync attempt (fetch, render, write).",
        MetricType::HISTOGRAM,
    ),
    (
        "secret_last_success_timestamp_seconds",
        "Unix time of the last successful sync, per secret.",
        MetricType::GAUGE,
    ),
    (
        "secret_files_written_total",
        "Files replaced on disk (unchanged files are not counted).",
        MetricType::COUNTER,
    ),
    (
        "circuit_breaker_state",
        "Circuit breaker state seen by the secret's last attempt: 0 closed, 1 half-open, 2 open.",
        MetricType::GAUGE,
    ),
    (
        "secret_lease_expiry_timestamp_seconds",
        "Unix time when the secret's lease ends (leased secrets).",
        MetricType::GAUGE,
    ),
    (
        "secret_certificate_expiry_timestamp_seconds",
        "Unix time of the NotAfter of the secret's certificate (pki secrets).",
        MetricType::GAUGE,
    ),
    (
        "secret_inplace_fallbacks_total",
        "Files written the other way than asked: rewritten in place because renaming over them failed with EBUSY (a mount point), or renamed over because a writeMode: inPlace file was another user's.",
        MetricType::COUNTER,
    ),
    (
        "secret_age_seconds",
        "Seconds since the secret's content was last confirmed by its source (a successful read), at scrape time: alert on it.",
        MetricType::GAUGE,
    ),
];

/// Families labelled by `secret_name` only.
fn name_only(family: usize) -> bool {
    family == LEASE_EXPIRY
        || family == CERTIFICATE_EXPIRY
        || family == INPLACE_FALLBACKS
        || family == AGE
}

/// Every secret's series, by secret name: the collector of the per-secret
/// families.
pub(crate) struct SecretSeriesSet {
    descs: Vec<Desc>,
    by_name: RwLock<BTreeMap<Arc<str>, Arc<SecretSeries>>>,
}

impl SecretSeriesSet {
    pub(crate) fn new() -> prometheus::Result<Self> {
        let descs = FAMILIES
            .iter()
            .enumerate()
            .map(|(i, (name, help, _))| {
                let mut labels = vec!["secret_name".to_string()];
                if !name_only(i) {
                    labels.push("vault_path".to_string());
                }
                if *name == FAMILIES[SYNC_ERRORS].0 {
                    labels.push("stage".to_string());
                }
                if *name == FAMILIES[FETCH].0 {
                    labels.push("status".to_string());
                }
                Desc::new(name.to_string(), help.to_string(), labels, HashMap::new())
            })
            .collect::<prometheus::Result<Vec<_>>>()?;
        Ok(Self {
            descs,
            by_name: RwLock::default(),
        })
    }

    /// Fresh series for a secret (counters at zero), replacing any earlier
    /// series of that name. The counters exist from the start, so rates and
    /// alerts work before the first attempt ends.
    pub(crate) fn register(&self, name: &str, vault_path: Arc<str>) -> Arc<SecretSeries> {
        let series = Arc::new(SecretSeries {
            name: name.into(),
            vault_path,
            numbers: Mutex::default(),
        });
        self.by_name
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(Arc::clone(&series.name), Arc::clone(&series));
        series
    }

    /// Deletes every series of a secret. An actor still holding the old
    /// [`SecretSeries`] writes into a value nobody exports any more.
    pub(crate) fn remove(&self, name: &str) {
        self.by_name
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_name
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

fn label(name: &str, value: &str) -> LabelPair {
    let mut l = LabelPair::default();
    l.set_name(name.to_string());
    l.set_value(value.to_string());
    l
}

/// A metric with the secret's labels and one more (`stage`, `status`: both
/// sort between the two, and labels go sorted by name, as `prometheus` has
/// them).
fn metric(s: &SecretSeries, extra: Option<(&str, &str)>) -> proto::Metric {
    let mut labels = vec![label("secret_name", &s.name)];
    if let Some((name, value)) = extra {
        labels.push(label(name, value));
    }
    labels.push(label("vault_path", &s.vault_path));
    proto::Metric::from_label(labels)
}

/// A metric labelled by `secret_name` only (the families of [`name_only`]).
fn name_metric(s: &SecretSeries) -> proto::Metric {
    proto::Metric::from_label(vec![label("secret_name", &s.name)])
}

fn with_counter(mut m: proto::Metric, v: u64) -> proto::Metric {
    let mut c = proto::Counter::default();
    c.set_value(v as f64);
    m.set_counter(c);
    m
}

fn with_gauge(mut m: proto::Metric, v: f64) -> proto::Metric {
    let mut g = proto::Gauge::default();
    g.set_value(v);
    m.set_gauge(g);
    m
}

fn counter(s: &SecretSeries, extra: Option<(&str, &str)>, v: u64) -> proto::Metric {
    with_counter(metric(s, extra), v)
}

fn gauge(s: &SecretSeries, v: f64) -> proto::Metric {
    with_gauge(metric(s, None), v)
}

fn histogram(s: &SecretSeries, n: &Numbers) -> proto::Metric {
    let mut m = metric(s, None);
    let mut h = proto::Histogram::default();
    let mut cumulative = 0;
    let buckets = LATENCY_BUCKETS
        .iter()
        .zip(n.buckets)
        .map(|(bound, c)| {
            cumulative += c;
            let mut b = proto::Bucket::default();
            b.set_upper_bound(*bound);
            b.set_cumulative_count(cumulative);
            b
        })
        .collect();
    h.set_bucket(buckets);
    h.set_sample_count(n.count);
    h.set_sample_sum(n.sum);
    m.set_histogram(h);
    m
}

impl Collector for SecretSeriesSet {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut metrics: [Vec<proto::Metric>; 11] = Default::default();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let all: Vec<Arc<SecretSeries>> = self
            .by_name
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        for s in &all {
            let n = s.numbers.lock().unwrap_or_else(PoisonError::into_inner);
            // The Go tool's `status` label: attempts whose read succeeded
            // and those that failed at the fetch stage.
            let failed = n.sync_errors[SyncStage::Fetch.index()];
            let ok = n.fetch.saturating_sub(failed);
            metrics[FETCH].push(counter(s, Some(("status", "success")), ok));
            metrics[FETCH].push(counter(s, Some(("status", "error")), failed));
            metrics[FETCH_ERRORS].push(counter(s, None, n.fetch_errors));
            metrics[FILES_WRITTEN].push(counter(s, None, n.files_written));
            for st in SyncStage::ALL {
                let v = n.sync_errors[st.index()];
                if v > 0 {
                    metrics[SYNC_ERRORS].push(counter(s, Some(("stage", st.as_str())), v));
                }
            }
            if n.count > 0 {
                metrics[DURATION].push(histogram(s, &n));
            }
            if let Some(t) = n.last_success {
                metrics[LAST_SUCCESS].push(gauge(s, t));
                metrics[AGE].push(with_gauge(name_metric(s), (now - t).max(0.0)));
            }
            if let Some(b) = n.breaker {
                metrics[BREAKER].push(gauge(s, b as f64));
            }
            for (family, v) in [
                (LEASE_EXPIRY, n.lease_expiry),
                (CERTIFICATE_EXPIRY, n.certificate_expiry),
            ] {
                if let Some(t) = v {
                    metrics[family].push(with_gauge(name_metric(s), t));
                }
            }
            if n.inplace_fallbacks > 0 {
                metrics[INPLACE_FALLBACKS].push(with_counter(name_metric(s), n.inplace_fallbacks));
            }
        }
        FAMILIES
            .iter()
            .zip(metrics)
            .map(|((name, help, kind), ms)| {
                let mut mf = MetricFamily::default();
                mf.set_name(name.to_string());
                mf.set_help(help.to_string());
                mf.set_field_type(*kind);
                mf.set_metric(ms);
                mf
            })
            .collect()
    }
}

/// Lets the registry own a handle to the set while the process keeps one.
pub(crate) struct SharedSeries(pub Arc<SecretSeriesSet>);

impl Collector for SharedSeries {
    fn desc(&self) -> Vec<&Desc> {
        self.0.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.0.collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{Encoder, Registry, TextEncoder};

    fn render(set: &Arc<SecretSeriesSet>) -> String {
        let r = Registry::new();
        r.register(Box::new(SharedSeries(Arc::clone(set)))).unwrap();
        let mut buf = Vec::new();
        TextEncoder::new().encode(&r.gather(), &mut buf).unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn counters_exist_from_registration_and_the_rest_appear_when_set() {
        let set = Arc::new(SecretSeriesSet::new().unwrap());
        set.register("db", "secret/data/db".into());
        let text = render(&set);
        let l = r#"{secret_name="db",vault_path="secret/data/db"}"#;
        for st in ["success", "error"] {
            let want = format!(
                r#"secret_fetch_total{{secret_name="db",status="{st}",vault_path="secret/data/db"}} 0"#
            );
            assert!(text.contains(&want), "{want}: {text}");
        }
        for c in ["secret_fetch_errors_total", "secret_files_written_total"] {
            assert!(text.contains(&format!("{c}{l} 0")), "{c}: {text}");
        }
        for absent in [
            "secret_sync_duration_seconds_count",
            "secret_last_success_timestamp_seconds{",
            "circuit_breaker_state{",
            "secret_sync_errors_total{",
            "secret_age_seconds{",
        ] {
            assert!(!text.contains(absent), "{absent}: {text}");
        }
    }

    #[test]
    fn attempts_move_every_family_like_the_prometheus_vectors_did() {
        let set = Arc::new(SecretSeriesSet::new().unwrap());
        let s = set.register("db", "secret/data/db".into());
        s.record(
            Duration::from_millis(3),
            Some(0),
            Attempt::Synced {
                files_written: 2,
                at: 1_700_000_000.0,
            },
        );
        s.record(
            Duration::from_millis(40),
            Some(2),
            Attempt::Failed {
                stage: SyncStage::Fetch,
                vault: true,
            },
        );
        s.record(
            Duration::from_secs(60),
            None,
            Attempt::Failed {
                stage: SyncStage::Write,
                vault: false,
            },
        );
        let text = render(&set);
        let l = r#"secret_name="db",vault_path="secret/data/db""#;
        for want in [
            r#"secret_fetch_total{secret_name="db",status="success",vault_path="secret/data/db"} 2"#
                .to_string(),
            r#"secret_fetch_total{secret_name="db",status="error",vault_path="secret/data/db"} 1"#
                .to_string(),
            format!("secret_fetch_errors_total{{{l}}} 1"),
            format!("secret_files_written_total{{{l}}} 2"),
            format!("secret_last_success_timestamp_seconds{{{l}}} 1700000000"),
            // The last state any read saw; the third attempt saw none.
            format!("circuit_breaker_state{{{l}}} 2"),
            r#"secret_sync_errors_total{secret_name="db",stage="fetch",vault_path="secret/data/db"} 1"#
                .to_string(),
            r#"secret_sync_errors_total{secret_name="db",stage="write",vault_path="secret/data/db"} 1"#
                .to_string(),
            format!("secret_sync_duration_seconds_bucket{{{l},le=\"0.001\"}} 0"),
            format!("secret_sync_duration_seconds_bucket{{{l},le=\"0.005\"}} 1"),
            format!("secret_sync_duration_seconds_bucket{{{l},le=\"0.05\"}} 2"),
            format!("secret_sync_duration_seconds_bucket{{{l},le=\"30\"}} 2"),
            format!("secret_sync_duration_seconds_bucket{{{l},le=\"+Inf\"}} 3"),
            format!("secret_sync_duration_seconds_count{{{l}}} 3"),
            format!("secret_sync_duration_seconds_sum{{{l}}} 60.04"),
        ] {
            assert!(text.contains(&want), "missing {want} in\n{text}");
        }
        assert!(!text.contains(r#"stage="render""#), "{text}");
        // The age: now minus the last success (2023-11-14), in seconds.
        let age: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix(r#"secret_age_seconds{secret_name="db"} "#))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no secret_age_seconds in\n{text}"));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!((age - (now - 1_700_000_000.0)).abs() < 60.0, "{age}");
    }

    #[test]
    fn removed_and_replaced_secrets() {
        let set = Arc::new(SecretSeriesSet::new().unwrap());
        let old = set.register("db", "secret/data/old".into());
        set.register("web", "secret/data/web".into());
        old.record(
            Duration::from_millis(1),
            Some(0),
            Attempt::Synced {
                files_written: 1,
                at: 1.0,
            },
        );
        // A reload changed db's path: fresh series, the old labels are gone.
        let new = set.register("db", "secret/data/new".into());
        old.record(
            Duration::from_millis(1),
            Some(0),
            Attempt::Synced {
                files_written: 1,
                at: 2.0,
            },
        );
        assert_eq!(&*new.vault_path, "secret/data/new");
        let text = render(&set);
        assert!(!text.contains("secret/data/old"), "{text}");
        assert!(
            text.contains(r#"secret_fetch_total{secret_name="db",status="success",vault_path="secret/data/new"} 0"#),
            "{text}"
        );
        set.remove("db");
        assert_eq!(set.len(), 1);
        let text = render(&set);
        assert!(!text.contains(r#"secret_name="db""#), "{text}");
        assert!(text.contains(r#"secret_name="web""#), "{text}");
    }
}
