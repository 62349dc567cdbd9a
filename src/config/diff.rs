//! What changed between two configs, secret by secret.
//!
//! The Supervisor applies the result: removed secrets stop, added ones start,
//! changed ones restart, unchanged ones keep running on their schedule.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::SecretSpec;

/// Secrets grouped by what a reload does to them (names, in new-config order
/// where they exist there).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Diff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub unchanged: Vec<String>,
}

/// Compares secrets by name and full definition (path, interval, template
/// sources, files).
pub fn diff(old: &[Arc<SecretSpec>], new: &[Arc<SecretSpec>]) -> Diff {
    let mut d = Diff::default();
    let old_by_name: HashMap<&str, &SecretSpec> =
        old.iter().map(|o| (o.name.as_str(), &**o)).collect();
    let new_names: HashSet<&str> = new.iter().map(|n| n.name.as_str()).collect();
    for n in new {
        match old_by_name.get(n.name.as_str()) {
            None => d.added.push(n.name.clone()),
            Some(o) if **o == **n => d.unchanged.push(n.name.clone()),
            Some(_) => d.changed.push(n.name.clone()),
        }
    }
    for o in old {
        if !new_names.contains(o.name.as_str()) {
            d.removed.push(o.name.clone());
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FileSpec;
    use std::time::Duration;

    fn spec(name: &str, path: &str, secs: u64) -> Arc<SecretSpec> {
        Arc::new(SecretSpec {
            name: name.into(),
            path: path.into(),
            refresh_interval: Duration::from_secs(secs),
            template: None,
            files: vec![FileSpec {
                path: format!("/s/{name}").into(),
                source: "f".into(),
                mode: 0o600,
                owner: None,
                group: None,
            }],
        })
    }

    #[test]
    fn classifies_every_secret() {
        let old = vec![
            spec("a", "p/a", 30),
            spec("b", "p/b", 30),
            spec("c", "p/c", 30),
        ];
        let new = vec![
            spec("a", "p/a", 30),
            spec("b", "p/b", 60),
            spec("d", "p/d", 30),
        ];
        let d = diff(&old, &new);
        assert_eq!(d.unchanged, ["a"]);
        assert_eq!(d.changed, ["b"]);
        assert_eq!(d.added, ["d"]);
        assert_eq!(d.removed, ["c"]);
    }

    #[test]
    fn identical_configs_change_nothing() {
        let old = vec![spec("a", "p/a", 30)];
        let d = diff(&old, &old.clone());
        assert_eq!(d.unchanged, ["a"]);
        assert!(d.added.is_empty() && d.removed.is_empty() && d.changed.is_empty());
    }
}
