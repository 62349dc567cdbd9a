//! The man page and shell completions in `packaging/` are generated from the
//! clap definitions (`secrets_sync::cli::Cli`) and must be current: this
//! test renders them and compares. After changing the command line, run
//! `UPDATE_CLI_DOCS=1 cargo test --test cli_docs` and commit the result.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;
use secrets_sync::cli::Cli;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("packaging")
}

/// Every generated file: (path under packaging/, content).
fn generated() -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let cmd = Cli::command();
    let mut man = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut man)
        .expect("render the man page");
    out.push((PathBuf::from("man/secrets-sync.1"), man));
    for sub in cmd.get_subcommands() {
        let name = format!("secrets-sync-{}", sub.get_name());
        let mut page = Vec::new();
        // clap takes a &'static name (no `string` feature): leaked, in a test.
        let static_name: &'static str = Box::leak(name.clone().into_boxed_str());
        clap_mangen::Man::new(sub.clone().name(static_name))
            .render(&mut page)
            .expect("render a subcommand's man page");
        out.push((PathBuf::from(format!("man/{name}.1")), page));
    }
    for (shell, file) in [
        (Shell::Bash, "secrets-sync.bash"),
        (Shell::Zsh, "_secrets-sync"),
        (Shell::Fish, "secrets-sync.fish"),
    ] {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "secrets-sync", &mut buf);
        out.push((PathBuf::from(format!("completions/{file}")), buf));
    }
    out
}

#[test]
fn man_page_and_completions_are_current() {
    let update = std::env::var("UPDATE_CLI_DOCS").is_ok_and(|v| v == "1");
    let mut stale = Vec::new();
    for (rel, content) in generated() {
        let path: PathBuf = root().join(&rel);
        if update {
            std::fs::create_dir_all(path.parent().unwrap_or(Path::new("."))).unwrap();
            std::fs::write(&path, &content).unwrap();
        } else if std::fs::read(&path).ok().as_deref() != Some(&content[..]) {
            stale.push(rel.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "out of date in packaging/: {stale:?}; run UPDATE_CLI_DOCS=1 cargo test --test cli_docs and commit"
    );
    // The page documents the commands and a setting by its variable.
    let man = std::fs::read_to_string(root().join("man/secrets-sync.1")).unwrap();
    for word in ["validate", "isready", "init", "CONFIG_FILE"] {
        assert!(man.contains(word), "the man page lacks {word}");
    }
}
