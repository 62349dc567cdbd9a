//! The layering the architecture promises, checked on the source: every
//! file of `src/` is a module, its `crate::...` and `super::...` paths
//! (outside comments and its `#[cfg(test)] mod tests`) are its imports.
//!
//! * no import circle between modules (files);
//! * the Vault source takes its own types: nothing under `src/vault/`
//!   imports `crate::plan`, `crate::config` or `crate::actors`;
//! * events emit, actors send: nothing under `src/telemetry/` imports
//!   `crate::actors` or sends a message (`do_send`, `.send(`);
//! * each source is its own module: `src/aws/` imports neither `crate::plan`,
//!   `crate::config` nor `crate::actors`.
//!
//! Modules only tests build (`tests`, and what `#[cfg_attr(test, ...)]`
//! attributes name) are left out.
//!
//! `cargo test --test layers -- --nocapture` prints the module graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path (`vault::session`) -> its source, without comments and
/// without its test module.
fn modules() -> BTreeMap<String, String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).expect("read src") {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    let mut out = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&src).expect("under src");
        let mut parts: Vec<String> = rel
            .iter()
            .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
            .collect();
        if parts.last().is_some_and(|l| l == "mod") {
            parts.pop();
        }
        // The crate roots, and modules only the tests build.
        if parts == ["lib"] || parts == ["main"] || parts.last().is_some_and(|l| l == "tests") {
            continue;
        }
        let text = std::fs::read_to_string(&f).expect("read source");
        let text = match text.find("#[cfg(test)]\nmod tests") {
            Some(i) => &text[..i],
            None => &text[..],
        };
        let code: String = text
            .lines()
            // Attributes of test builds only (the schema's derive).
            .filter(|l| !l.contains("cfg_attr(test"))
            .map(|l| match l.find("//") {
                // A `//` inside a string is rare in these files and only
                // shortens what is read.
                Some(i) => &l[..i],
                None => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        out.insert(parts.join("::"), code);
    }
    out
}

/// The modules `code` (of module `me`) refers to, resolved to the longest
/// module that exists.
fn imports(me: &str, code: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let path_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    for (start, prefix) in code
        .match_indices("crate::")
        .map(|(i, _)| (i, "crate"))
        .chain(code.match_indices("super::").map(|(i, _)| (i, "super")))
    {
        if start > 0
            && code[..start]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        {
            continue; // `super::super::x` is read from its first `super`
        }
        let rest: String = code[start..]
            .chars()
            .take_while(|c| path_char(*c))
            .collect();
        let mut segs: Vec<&str> = rest.split("::").filter(|s| !s.is_empty()).collect();
        // Resolve to an absolute path of segments.
        let mut base: Vec<&str> = if prefix == "crate" {
            segs.remove(0);
            Vec::new()
        } else {
            let mut b: Vec<&str> = me.split("::").collect();
            // A file `a/b.rs` is module a::b; `super` is a. A `mod.rs` is
            // the folder's module itself: `super` is its parent too.
            while segs.first() == Some(&"super") {
                segs.remove(0);
                b.pop();
            }
            b
        };
        base.extend(segs);
        // The longest prefix that is a module.
        for n in (1..=base.len()).rev() {
            let cand = base[..n].join("::");
            if known.contains(&cand) {
                if cand != me {
                    out.insert(cand);
                }
                break;
            }
        }
    }
    out
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mods = modules();
    let known: BTreeSet<String> = mods.keys().cloned().collect();
    mods.iter()
        .map(|(m, code)| (m.clone(), imports(m, code, &known)))
        .collect()
}

/// The circles of `g` (strongly connected components of more than one).
fn circles(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // Kosaraju, iteratively small enough to recurse: ~100 modules.
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        seen: &mut BTreeSet<String>,
        order: &mut Vec<String>,
    ) {
        if !seen.insert(n.to_string()) {
            return;
        }
        for m in g.get(n).into_iter().flatten() {
            visit(m, g, seen, order);
        }
        order.push(n.to_string());
    }
    let mut seen = BTreeSet::new();
    let mut order = Vec::new();
    for n in g.keys() {
        visit(n, g, &mut seen, &mut order);
    }
    let mut rev: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (a, bs) in g {
        for b in bs {
            rev.entry(b.clone()).or_default().insert(a.clone());
        }
    }
    let mut assigned = BTreeSet::new();
    let mut out = Vec::new();
    for n in order.iter().rev() {
        if assigned.contains(n) {
            continue;
        }
        let mut comp = Vec::new();
        let mut stack = vec![n.clone()];
        while let Some(x) = stack.pop() {
            if !assigned.insert(x.clone()) {
                continue;
            }
            comp.push(x.clone());
            for y in rev.get(&x).into_iter().flatten() {
                stack.push(y.clone());
            }
        }
        if comp.len() > 1 {
            comp.sort();
            out.push(comp);
        }
    }
    out
}

#[test]
fn no_import_circle_between_modules() {
    let g = graph();
    assert!(g.len() > 50, "too few modules read: {}", g.len());
    for (m, deps) in &g {
        println!(
            "{m} -> {}",
            deps.iter().cloned().collect::<Vec<_>>().join(" ")
        );
    }
    let c = circles(&g);
    assert!(c.is_empty(), "import circles: {c:?}");
}

#[test]
fn the_sources_take_their_own_types() {
    let g = graph();
    for (m, deps) in &g {
        if m == "vault" || m.starts_with("vault::") || m == "aws" || m.starts_with("aws::") {
            for d in deps {
                let top = d.split("::").next().unwrap_or(d);
                assert!(
                    !["plan", "config", "actors"].contains(&top),
                    "{m} imports {d}: a source takes its own input types"
                );
            }
        }
    }
    // The check can fail: a module that did import the planner is seen.
    let known: BTreeSet<String> = g.keys().cloned().collect();
    let seen = imports("vault::x", "use crate::plan::Job;", &known);
    assert!(seen.contains("plan"), "{seen:?}");
}

#[test]
fn telemetry_emits_and_never_sends() {
    let mods = modules();
    let g = graph();
    for (m, code) in mods.iter().filter(|(m, _)| m.starts_with("telemetry")) {
        for d in &g[m] {
            assert!(!d.starts_with("actors"), "{m} imports {d}");
        }
        for send in ["do_send(", ".send(", "try_send("] {
            assert!(!code.contains(send), "{m} sends a message ({send})");
        }
    }
}

#[test]
fn a_circle_is_found_when_there_is_one() {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.insert("a".into(), ["b".to_string()].into());
    g.insert("b".into(), ["c".to_string()].into());
    g.insert("c".into(), ["a".to_string()].into());
    g.insert("d".into(), ["a".to_string()].into());
    assert_eq!(circles(&g), vec![vec!["a", "b", "c"]]);
}
