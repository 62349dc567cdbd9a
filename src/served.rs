//! What the local secrets API (`SECRETS_API`) serves: per configured
//! secret, the content of its files as last written (or kept at start),
//! under each file's template key or field name, with the version the
//! source gave and when the content last changed.
//!
//! The sync actors put an entry after every write (the rendered bytes, the
//! same ones the writer put in the files) and record when each attempt
//! ended; the HTTP handlers only read. Only exists when the API is on: the
//! process keeps no copy of the files' content otherwise. Entries hold
//! values, so they are zeroized on drop and never printed (`Debug` names
//! keys and sizes only).

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Instant, SystemTime};

use zeroize::Zeroizing;

/// One secret's files as last written: (key, content) in the job's order.
pub(crate) struct Entry {
    pub(crate) files: Vec<(String, Zeroizing<Vec<u8>>)>,
    /// The source's version of the content (`None`: KV v1, dynamic).
    pub(crate) version: Option<String>,
    /// When the content last changed (first served, or differed from the
    /// entry before).
    pub(crate) updated: SystemTime,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let files: Vec<(&str, usize)> = self
            .files
            .iter()
            .map(|(k, v)| (k.as_str(), v.len()))
            .collect();
        f.debug_struct("Entry")
            .field("files", &files)
            .field("version", &self.version)
            .finish()
    }
}

/// What a name looks up to.
#[derive(Debug)]
pub(crate) enum Lookup {
    /// Not a configured secret.
    Unknown,
    /// Configured, nothing written yet (or its files changed by a reload).
    NotSynced,
    Ready(Arc<Entry>),
}

/// When a secret's last attempt ended, and whether it succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Attempted {
    pub(crate) at: Instant,
    pub(crate) ok: bool,
}

#[derive(Default)]
struct Inner {
    /// The configured secrets, in config order.
    names: Vec<String>,
    entries: HashMap<String, Arc<Entry>>,
    attempts: HashMap<String, Attempted>,
}

/// The shared table (see the module doc).
#[derive(Default)]
pub(crate) struct Served {
    inner: RwLock<Inner>,
}

impl Served {
    pub(crate) fn new() -> Arc<Self> {
        Arc::default()
    }

    /// A plan was applied: `names` are its secrets in config order; the
    /// entries of removed secrets and of those in `forget` (their files
    /// changed) are dropped.
    pub(crate) fn set_names(&self, names: Vec<String>, forget: &[String]) {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        inner
            .entries
            .retain(|k, _| names.contains(k) && !forget.contains(k));
        inner
            .attempts
            .retain(|k, _| names.contains(k) && !forget.contains(k));
        inner.names = names;
    }

    /// The configured secrets, in config order.
    pub(crate) fn names(&self) -> Vec<String> {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .names
            .clone()
    }

    /// The files of `name` were written (or kept) with `files`. The
    /// `updated` time moves only when the content differs.
    pub(crate) fn put(
        &self,
        name: &str,
        files: Vec<(String, Zeroizing<Vec<u8>>)>,
        version: Option<String>,
    ) {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        if !inner.names.iter().any(|n| n == name) {
            return;
        }
        let updated = match inner.entries.get(name) {
            Some(old) if old.files == files => old.updated,
            _ => SystemTime::now(),
        };
        inner.entries.insert(
            name.to_string(),
            Arc::new(Entry {
                files,
                version,
                updated,
            }),
        );
    }

    /// An attempt of `name` ended (`ok`: its files hold what the source
    /// just said).
    pub(crate) fn finished(&self, name: &str, ok: bool) {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        if inner.names.iter().any(|n| n == name) {
            inner.attempts.insert(
                name.to_string(),
                Attempted {
                    at: Instant::now(),
                    ok,
                },
            );
        }
    }

    pub(crate) fn get(&self, name: &str) -> Lookup {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        match inner.entries.get(name) {
            Some(e) => Lookup::Ready(Arc::clone(e)),
            None if inner.names.iter().any(|n| n == name) => Lookup::NotSynced,
            None => Lookup::Unknown,
        }
    }

    /// When the last attempt of `name` ended.
    pub(crate) fn attempted(&self, name: &str) -> Option<Attempted> {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .attempts
            .get(name)
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(v: &str) -> Vec<(String, Zeroizing<Vec<u8>>)> {
        vec![("k".to_string(), Zeroizing::new(v.as_bytes().to_vec()))]
    }

    #[test]
    fn unknown_not_synced_and_ready() {
        let s = Served::new();
        s.set_names(vec!["a".into(), "b".into()], &[]);
        assert!(matches!(s.get("x"), Lookup::Unknown));
        assert!(matches!(s.get("a"), Lookup::NotSynced));
        s.put("a", files("1"), Some("3".into()));
        let Lookup::Ready(e) = s.get("a") else {
            panic!("a is written")
        };
        assert_eq!(e.version.as_deref(), Some("3"));
        assert_eq!(s.names(), ["a", "b"]);
        // A secret not in the config is never put.
        s.put("x", files("1"), None);
        assert!(matches!(s.get("x"), Lookup::Unknown));
    }

    #[test]
    fn updated_moves_only_when_the_content_changes() {
        let s = Served::new();
        s.set_names(vec!["a".into()], &[]);
        s.put("a", files("1"), None);
        let Lookup::Ready(first) = s.get("a") else {
            panic!()
        };
        std::thread::sleep(std::time::Duration::from_millis(5));
        s.put("a", files("1"), None);
        let Lookup::Ready(same) = s.get("a") else {
            panic!()
        };
        assert_eq!(first.updated, same.updated);
        s.put("a", files("2"), None);
        let Lookup::Ready(new) = s.get("a") else {
            panic!()
        };
        assert!(new.updated > first.updated);
    }

    #[test]
    fn a_reload_drops_removed_and_changed_secrets() {
        let s = Served::new();
        s.set_names(vec!["a".into(), "b".into(), "c".into()], &[]);
        for n in ["a", "b", "c"] {
            s.put(n, files("1"), None);
            s.finished(n, true);
        }
        s.set_names(vec!["a".into(), "b".into()], &["b".to_string()]);
        assert!(matches!(s.get("a"), Lookup::Ready(_)));
        assert!(matches!(s.get("b"), Lookup::NotSynced));
        assert!(matches!(s.get("c"), Lookup::Unknown));
        assert!(s.attempted("b").is_none() && s.attempted("a").is_some());
    }

    #[test]
    fn debug_prints_no_value() {
        let e = Entry {
            files: files("canary-value-123"),
            version: None,
            updated: SystemTime::now(),
        };
        let text = format!("{e:?}");
        assert!(!text.contains("canary-value-123"), "{text}");
        assert!(text.contains("\"k\""));
    }
}
