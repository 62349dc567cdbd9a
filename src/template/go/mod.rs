//! Go's `text/template`, run with Go's semantics: the engine for templates
//! written in Go syntax (External Secrets Operator's, Vault Agent's after
//! `convert`, the Go tool's `{{ .field }}`).
//!
//! One lexer ([`lex`]) and parser ([`parse`]) serve rendering and
//! `convert`; [`exec`] runs a tree with `missingkey=error` over the
//! secret's fields; [`fmt`] is Go's printing and `printf`; [`funcs`] the
//! functions (Go's builtins, ESO's, Sprig's, consul-template's names);
//! [`value`] Go's truth and kinds.
//! Deliberate differences from Go are listed in docs/configuration.md
//! ("Go templates").

pub(crate) mod exec;
pub(crate) mod fmt;
pub(crate) mod funcs;
pub(crate) mod lex;
pub(crate) mod parse;
pub(crate) mod value;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

pub(crate) use parse::Tree;

/// What a Go template may reach besides its secret: the environment
/// variables `template.env` lists (their values read once, when the config
/// was loaded) for `env "NAME"`, and the directories `template.fileDirs`
/// lists for `file "PATH"`. Empty: neither function is available.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Host {
    /// Name → value ("" when the variable was not set).
    pub(crate) env: BTreeMap<String, String>,
    /// Absolute, lexically clean directories.
    pub(crate) file_dirs: Vec<PathBuf>,
}

impl Host {
    /// A host of these variables and directories (checked by the config).
    pub fn new(env: BTreeMap<String, String>, file_dirs: Vec<PathBuf>) -> Self {
        Self { env, file_dirs }
    }
}

/// Compiles a Go template: the tree, or the error (a syntax error or a
/// refused function) with its line and column.
pub(crate) fn compile(src: &str, host: &Host) -> Result<Tree, String> {
    let items = lex::lex(src).map_err(|e| at(src, e.pos, &e.message))?;
    let tree = parse::parse_items(&items, src.len(), &funcs::known)
        .map_err(|e| at(src, e.pos, &e.message))?;
    refuse(src, &items, host)?;
    Ok(tree)
}

/// For `engine: auto`: `None` when `src` does not read as a Go template
/// (it does not parse as one, or holds a Tera tag (`{%`, `{#`) in its text,
/// which Go would print as it is), else what [`compile`] gives. The source
/// is lexed and parsed once.
pub(crate) fn compile_if_go(src: &str, host: &Host) -> Option<Result<Tree, String>> {
    let items = lex::lex(src).ok()?;
    let tera_text = items
        .iter()
        .any(|(t, _)| matches!(t, lex::Tok::Text(x) if x.contains("{%") || x.contains("{#")));
    if tera_text {
        return None;
    }
    let tree = parse::parse_items(&items, src.len(), &funcs::known).ok()?;
    Some(refuse(src, &items, host).map(|()| tree))
}

/// Renders `tree` over `dot`; the error names where in `src` and why,
/// never a value.
pub(crate) fn render(src: &str, tree: &Tree, dot: &Value, host: &Host) -> Result<String, String> {
    exec::execute(tree, dot, host).map_err(|e| at(src, e.pos, &e.message))
}

fn at(src: &str, pos: usize, message: &str) -> String {
    let (line, col) = lex::line_col(src, pos);
    format!("{message} (line {line}, column {col})")
}

/// The first refused function the template names, as an error with
/// where and why (`env` and `file` are refused when the template lists no
/// variables or directories for them).
fn refuse(src: &str, items: &[lex::Item], host: &Host) -> Result<(), String> {
    let found = items.iter().find_map(|(t, pos)| match t {
        lex::Tok::Ident(name) => {
            let why = match name.as_str() {
                "env" if host.env.is_empty() => Some(
                    "list the variables it may read in the secret's template.env (credentials are never allowed)",
                ),
                "file" if host.file_dirs.is_empty() => Some(
                    "list the directories it may read under in the secret's template.fileDirs",
                ),
                "env" | "file" => None,
                n => funcs::refused(n),
            };
            why.map(|w| (name, *pos, w))
        }
        _ => None,
    });
    match found {
        Some((name, pos, why)) => Err(at(
            src,
            pos,
            &format!("the function {name} is not available: {why}"),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    fn run(src: &str, dot: Value) -> Result<String, String> {
        let host = super::Host::default();
        let tree = super::compile(src, &host)?;
        super::render(src, &tree, &dot, &host)
    }

    fn ok(src: &str, dot: Value) -> String {
        run(src, dot).unwrap_or_else(|e| panic!("{src}: {e}"))
    }

    /// Each expected output is what Go's text/template gives (its
    /// documentation, and `exec_test.go`'s cases of the same form).
    #[test]
    fn go_semantics() {
        let d = json!({
            "name": "db", "empty": "", "zero": 0, "list": ["a", "b", "c"],
            "none": [], "m": {"y": 2, "x": 1}, "t": true, "f": false, "n": 7
        });
        for (src, want) in [
            // Pipelines, parenthesized pipelines, chained fields.
            ("{{ .name | printf \"%s-%s\" \"x\" }}", "x-db"),
            ("{{ (.m).x }} {{ .m.y }}", "1 2"),
            // Variables: declared, assigned, scoped to their block.
            ("{{ $x := 1 }}{{ if .t }}{{ $x = 2 }}{{ $y := 3 }}{{ $y }}{{ end }}{{ $x }}", "32"),
            ("{{ with $v := .name }}{{ $v }}{{ . }}{{ end }}", "dbdb"),
            // `$` is the data the template was run with, inside any dot.
            ("{{ range .list }}{{ $.name }}{{ end }}", "dbdbdb"),
            // if / else if / else.
            ("{{ if .f }}A{{ else if .zero }}B{{ else if .n }}C{{ else }}D{{ end }}", "C"),
            ("{{ if .empty }}A{{ else }}B{{ end }}", "B"),
            // range: index and value, maps by sorted key, else when empty,
            // break and continue, over an integer.
            ("{{ range $i, $v := .list }}{{ $i }}={{ $v }};{{ end }}", "0=a;1=b;2=c;"),
            ("{{ range $k, $v := .m }}{{ $k }}{{ $v }}{{ end }}", "x1y2"),
            ("{{ range .none }}x{{ else }}empty{{ end }}", "empty"),
            ("{{ range .list }}{{ if eq . \"b\" }}{{ continue }}{{ end }}{{ if eq . \"c\" }}{{ break }}{{ end }}{{ . }}{{ end }}", "a"),
            ("{{ range $i := 3 }}{{ $i }}{{ end }}", "012"),
            // with: dot is the value; else when it is empty.
            ("{{ with .m }}{{ .x }}{{ end }}{{ with .empty }}no{{ else }}else{{ end }}", "1else"),
            ("{{ with .f }}no{{ else with .n }}{{ . }}{{ end }}", "7"),
            // Logic and comparison; and/or return a value, and stop early.
            ("{{ and .t .n }} {{ or .empty .zero .name }} {{ not .t }}", "7 db false"),
            ("{{ or .name (index .none 5) }}", "db"),
            ("{{ eq .n 7 }} {{ eq .name \"a\" \"db\" }} {{ ne .n 1 }} {{ lt 1 2 }} {{ le 2 2 }} {{ gt \"b\" \"a\" }} {{ ge 1.5 2 }}", "true true true true true true false"),
            // len, index, slice.
            ("{{ len .list }} {{ len .name }} {{ len .m }} {{ index .list 1 }} {{ index .m \"y\" }} {{ slice .list 1 2 }} {{ slice .name 1 }}", "3 2 2 b 2 [b] b"),
            // print, println, printf.
            ("{{ print 1 2 \"a\" 3 }}|{{ println .name 1 }}|{{ printf \"%05.1f|%x|%q|%v\" 3.14259 255 .name .list }}", "1 2a3|db 1\n|003.1|ff|\"db\"|[a b c]"),
            // Values print as Go prints them.
            ("{{ .m }} {{ .list }} {{ .t }} {{ index .m \"nope\" }}", "map[x:1 y:2] [a b c] true <no value>"),
            // Trim markers and comments.
            ("a  {{- .name -}}  b {{/* note */}}c\n{{- /* trimmed */ -}}\nd", "adbb cd"),
            // define / template / block, with their own dot and `$`.
            ("{{ define \"t\" }}[{{ . }}{{ $ }}]{{ end }}{{ template \"t\" .name }}{{ template \"t\" 1 }}", "[dbdb][11]"),
            ("{{ block \"b\" .n }}<{{ . }}>{{ end }}", "<7>"),
            ("{{ define \"r\" }}{{ if gt . 0 }}{{ . }}{{ template \"r\" (sub . 1) }}{{ end }}{{ end }}{{ template \"r\" 3 }}", "321"),
        ] {
            assert_eq!(ok(src, d.clone()), want, "{src}");
        }
    }

    #[test]
    fn go_errors_as_go_reports_them() {
        let d = json!({"name": "db", "m": {"x": 1}, "list": [1]});
        for (src, why) in [
            // missingkey=error, at every level.
            ("{{ .nope }}", "map has no entry for key \"nope\""),
            ("{{ .m.nope }}", "map has no entry for key \"nope\""),
            ("{{ .name.x }}", "can't evaluate field x in text"),
            ("{{ index .list 3 }}", "index out of range"),
            ("{{ template \"none\" }}", "no such template \"none\""),
            ("{{ .name 1 }}", "not a function"),
            ("{{ lt .m 1 }}", "non-comparable"),
            ("{{ eq .name 1 }}", "incompatible types for comparison"),
            (
                "{{ range .name }}{{ end }}",
                "range can't iterate over text",
            ),
            ("{{ printf \"%d\" .name }}", "%d cannot print text"),
            ("{{ len 3 }}", "len of a number"),
            // A line and column.
            ("a\nb{{ .nope }}", "(line 2, column 5)"),
        ] {
            let e = run(src, d.clone()).unwrap_err();
            assert!(e.contains(why), "{src}: {e}");
        }
    }

    #[test]
    fn functions_outside_the_secret_are_refused_when_compiled() {
        for (src, why) in [
            ("{{ now }}", "no clock"),
            ("{{ env \"HOME\" }}", "template.env"),
            ("{{ file \"/etc/hostname\" }}", "template.fileDirs"),
            ("{{ expandenv \"$HOME\" }}", "nothing else"),
            ("{{ randAlphaNum 8 }}", "every render"),
            ("{{ key \"a/b\" }}", "no Consul"),
            ("{{ with secret \"kv/data/x\" }}{{ end }}", "its own secret"),
        ] {
            let e = super::compile(src, &super::Host::default()).unwrap_err();
            assert!(
                e.contains("is not available") && e.contains(why),
                "{src}: {e}"
            );
        }
    }

    #[test]
    fn every_render_is_bounded() {
        let d = json!({"s": "x"});
        for (src, why) in [
            ("{{ range 3000000 }}{{ end }}", "more than"),
            ("{{ range 2000 }}{{ range 2000 }}{{ end }}{{ end }}", "steps"),
            ("{{ define \"r\" }}{{ template \"r\" . }}{{ end }}{{ template \"r\" . }}", "nest deeper"),
            ("{{ range 100 }}{{ printf \"%99999s\" \"\" }}{{ printf \"%99999s\" \"\" }}{{ end }}", "output would pass"),
            ("{{ range 1000 }}{{ repeat 100000 \"x\" }}{{ end }}", "output would pass"),
            ("{{ repeat 100000000 \"x\" }}", "would pass 8 MiB"),
            ("{{ until 100000000 }}", "more than"),
            ("{{ splitList \"\" (repeat 200000 \"x\") }}", "more than 100000 items"),
            ("{{ printf (repeat 200 \"%[1]99999d\") 1 }}", "printf: the result would pass 8 MiB"),
        ] {
            let e = run(src, d.clone()).unwrap_err();
            assert!(e.contains(why), "{src}: {e}");
        }
    }

    #[test]
    fn a_render_error_never_prints_a_value() {
        let canary = "canary-Zq7x";
        let d = json!({"v": canary, "j": format!("{{\"k\": \"{canary}\"}}"), "n": canary});
        for src in [
            "{{ .v | b64dec }}",
            "{{ .v | fromJson }}",
            "{{ printf \"%d\" .v }}",
            "{{ .v | int | printf \"%s\" }}",
            "{{ (.j | fromJson).nope }}",
            "{{ fail .v }}",
            "{{ index .v 99 }}",
            "{{ .v | filterPEM \"CERTIFICATE\" }}",
            "{{ regexMatch \"(\" .v }}",
            "{{ eq .v 1 }}",
            "{{ range .v }}{{ end }}",
            "{{ .v.x }}",
            "{{ (.j | fromJson) | len | printf \"%s\" }}",
        ] {
            let e = run(src, d.clone()).unwrap_err();
            assert!(!e.contains("canary"), "{src}: {e}");
        }
    }

    #[test]
    fn sprig_functions_give_sprigs_results() {
        let d = json!({"s": "Hello World", "csv": "a,b,c", "l": ["b", "a", "b"], "m": {"a": 1}});
        for (src, want) in [
            ("{{ .s | upper }} {{ .s | lower }} {{ title \"hello world\" }}", "HELLO WORLD hello world Hello World"),
            ("{{ replace \"o\" \"0\" .s }} {{ .s | trunc 5 }} {{ substr 0 4 .s }} {{ abbrev 8 .s }}", "Hell0 W0rld Hello Hell Hello..."),
            ("{{ .s | contains \"World\" }} {{ hasPrefix \"He\" .s }} {{ hasSuffix \"x\" .s }}", "true true false"),
            ("{{ splitList \",\" .csv | join \"+\" }} {{ (split \",\" .csv)._1 }}", "a+b+c b"),
            ("{{ .l | uniq }} {{ .l | sortAlpha }} {{ first .l }} {{ last .l }} {{ rest .l }} {{ has \"a\" .l }}", "[b a] [a b b] b b [a b] true"),
            ("{{ $d := dict \"k\" \"v\" \"n\" 1 }}{{ $d.k }} {{ get $d \"n\" }} {{ hasKey $d \"k\" }} {{ keys $d }}", "v 1 true [k n]"),
            ("{{ coalesce \"\" 0 \"x\" }} {{ empty \"\" }} {{ \"\" | default \"d\" }} {{ ternary \"y\" \"n\" true }}", "x true d y"),
            ("{{ add 1 2 3 }} {{ sub 5 2 }} {{ mul 2 3 }} {{ div 7 2 }} {{ mod 7 2 }} {{ max 1 9 3 }} {{ add1 1 }}", "6 3 6 3 1 9 2"),
            ("{{ regexReplaceAll \"a(x*)b\" \"-ab-axxb-\" \"${1}W\" }} {{ regexFindAll \"[0-9]\" \"a1b2c3\" 2 }}", "-W-xxW- [1 2]"),
            ("{{ \"x\" | b64enc }} {{ \"eA==\" | b64dec }} {{ \"x\" | sha256sum | trunc 8 }} {{ \"x\" | b32enc }}", "eA== x 2d711642 PA======"),
            ("{{ .m | toJson }} {{ \"{\\\"a\\\":[1]}\" | fromJson | toJson }} {{ list 1 \"a\" | toJson }}", "{\"a\":1} {\"a\":[1]} [1,\"a\"]"),
            ("{{ \"x\" | quote }} {{ \"x\" | squote }} {{ \"a\\nb\" | indent 2 }}{{ \"c\" | nindent 1 }}", "\"x\" 'x'   a\n  b\n c"),
            ("{{ toUpper \"a\" }}{{ toLower \"B\" }}{{ trimSpace \" c \" }}{{ replaceAll \"x\" \"y\" \"axa\" }}{{ \"eg==\" | base64Decode }}", "Abcayaz"),
            ("{{ typeOf 1 }} {{ typeOf \"a\" }} {{ kindOf .l }} {{ kindIs \"map\" .m }}", "int string slice true"),
            ("{{ until 3 }} {{ seq 3 }} {{ cat \"a\" 1 nil \"b\" }}", "[0 1 2] 1 2 3 a 1 b"),
        ] {
            assert_eq!(ok(src, d.clone()), want, "{src}");
        }
    }
}

#[cfg(test)]
mod host_tests {
    use std::path::PathBuf;

    use serde_json::json;

    use super::Host;

    fn run(src: &str, host: &Host) -> Result<String, String> {
        let tree = super::compile(src, host)?;
        super::render(src, &tree, &json!({"v": "canary-host-Q1"}), host)
    }

    #[test]
    fn env_reads_only_the_listed_variables() {
        let host = Host::new(
            [("APP_REGION".to_string(), "eu-1".to_string())].into(),
            Vec::new(),
        );
        assert_eq!(run("{{ env \"APP_REGION\" }}", &host).unwrap(), "eu-1");
        let e = run("{{ env \"HOME\" }}", &host).unwrap_err();
        assert!(e.contains("not listed in the secret's template.env"), "{e}");
        // A name built from a value is never repeated.
        let e = run("{{ env .v }}", &host).unwrap_err();
        assert!(!e.contains("canary"), "{e}");
        // Without a list, `env` does not compile.
        assert!(super::compile("{{ env \"X\" }}", &Host::default())
            .unwrap_err()
            .contains("template.env"));
    }

    #[test]
    fn file_reads_a_regular_file_under_the_listed_directories() {
        let dir = tempfile::tempdir().unwrap();
        let allowed = dir.path().join("allowed");
        std::fs::create_dir_all(&allowed).unwrap();
        std::fs::write(allowed.join("region"), "eu-1\n").unwrap();
        std::fs::write(dir.path().join("outside"), "no").unwrap();
        std::os::unix::fs::symlink(dir.path().join("outside"), allowed.join("link")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            allowed.join("fifo"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        std::fs::write(
            allowed.join("big"),
            vec![b'x'; usize::try_from(super::funcs::FILE_MAX).unwrap() + 1],
        )
        .unwrap();
        let host = Host::new(Default::default(), vec![allowed.clone()]);
        let read = |p: PathBuf| {
            run(
                &format!("{{{{ file {:?} }}}}", p.display().to_string()),
                &host,
            )
        };
        assert_eq!(read(allowed.join("region")).unwrap(), "eu-1\n");
        for (p, why) in [
            (
                dir.path().join("outside"),
                "under the secret's template.fileDirs",
            ),
            (allowed.join("../outside"), "clean absolute path"),
            (allowed.join("link"), "a symlink"),
            (allowed.join("fifo"), "a FIFO"),
            (allowed.join("big"), "larger than"),
            (allowed.join("none"), "does not exist"),
        ] {
            let e = read(p.clone()).unwrap_err();
            assert!(e.contains(why), "{}: {e}", p.display());
            assert!(!e.contains(&*dir.path().to_string_lossy()), "{e}");
        }
        assert!(super::compile("{{ file \"/etc/x\" }}", &Host::default())
            .unwrap_err()
            .contains("template.fileDirs"));
    }
}
