//! The `secrets-sync` command: `run` (default), `check` (alias `validate`),
//! `isready`, `init` and `version`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use secrets_sync::cli::{Cli, Command, ConvertArgs, InitArgs};
use secrets_sync::config::settings::{ConfigArgs, RunArgs, RuntimeArgs, SettingError};
use secrets_sync::config::Credentials;
use secrets_sync::plan;
use secrets_sync::status::ReadyFile;

/// The config `init` writes (checked by the tests to pass `check`).
const STARTER: &str = include_str!("starter.yaml");

fn main() -> ExitCode {
    secrets_sync::memory::one_arena();
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Check(a)) => check(&a.config, &a.runtime),
        Some(Command::Isready(a)) => isready(&a.status_file, a.liveness_timeout),
        Some(Command::Init(a)) => init(&a),
        Some(Command::Convert(a)) => convert(&a),
        Some(Command::Schema) => {
            print!("{}", secrets_sync::config::SCHEMA);
            ExitCode::SUCCESS
        }
        Some(Command::Version) => {
            println!(
                "secrets-sync version {}\n  OS/Arch: {}/{}",
                env!("CARGO_PKG_VERSION"),
                std::env::consts::OS,
                std::env::consts::ARCH
            );
            ExitCode::SUCCESS
        }
        Some(Command::Run(a)) => run(*a),
        None => run(*cli.run),
    }
}

/// Prints every out-of-range setting; `true` when there was none.
fn settings_ok(runtime: &RuntimeArgs) -> bool {
    match runtime.validate() {
        Ok(()) => true,
        Err(errors) => {
            let n = errors.len();
            eprintln!("invalid setting{}:", if n == 1 { "" } else { "s" });
            for e in &errors {
                eprintln!("  - {e}");
            }
            false
        }
    }
}

fn check(args: &ConfigArgs, runtime: &RuntimeArgs) -> ExitCode {
    let settings = settings_ok(runtime);
    match plan::load(args, Credentials::Optional) {
        Ok(plan) if settings => {
            for w in &plan.warnings {
                eprintln!("warning: {w}");
            }
            let actions = match plan.action_count() {
                0 => String::new(),
                1 => ", 1 action".to_string(),
                n => format!(", {n} actions"),
            };
            println!(
                "{}: OK ({} secrets, {} files{actions})",
                args.config_file.display(),
                plan.secret_count(),
                plan.file_count()
            );
            ExitCode::SUCCESS
        }
        Ok(_) => ExitCode::from(2),
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}

/// Prints the converted config; what did not convert goes to stderr and
/// makes the exit code 1 (2: an input could not be read).
fn convert(args: &ConvertArgs) -> ExitCode {
    use secrets_sync::convert::{convert, Input, Options};
    let stdin = [PathBuf::from("-")];
    let paths = if args.inputs.is_empty() {
        &stdin[..]
    } else {
        &args.inputs[..]
    };
    let mut inputs = Vec::with_capacity(paths.len());
    for p in paths {
        let read = if p.as_os_str() == "-" {
            secrets_sync::convert::read_bounded(std::io::stdin(), "standard input")
        } else {
            secrets_sync::convert::read_input_file(p)
        };
        match read {
            Ok(text) => inputs.push(Input {
                name: if p.as_os_str() == "-" {
                    "standard input".into()
                } else {
                    p.display().to_string()
                },
                text,
                dir: p.parent().map(PathBuf::from).unwrap_or_default(),
            }),
            Err(e) => {
                eprintln!("cannot read {}: {e}", p.display());
                return ExitCode::from(2);
            }
        }
    }
    let opts = Options {
        output_dir: args.output_dir.clone(),
        mount_path: args.mount_path.clone(),
        kv_version: args.kv_version.clone(),
    };
    let c = convert(&inputs, &opts);
    print!("{}", c.config);
    for n in &c.notes {
        eprintln!("note: {n}");
    }
    for p in &c.problems {
        eprintln!("not converted: {p}");
    }
    if c.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "{} construct{} not converted: the config above lacks {}; see docs/migrating-*.md",
            c.problems.len(),
            if c.problems.len() == 1 { "" } else { "s" },
            if c.problems.len() == 1 { "it" } else { "them" }
        );
        ExitCode::FAILURE
    }
}

fn init(args: &InitArgs) -> ExitCode {
    let Some(path) = &args.output else {
        print!("{STARTER}");
        return ExitCode::SUCCESS;
    };
    let mut open = std::fs::OpenOptions::new();
    open.write(true);
    if args.force {
        open.create(true).truncate(true);
    } else {
        open.create_new(true);
    }
    let written = open
        .open(path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, STARTER.as_bytes()));
    match written {
        Ok(()) => {
            eprintln!(
                "wrote {}; check it with: secrets-sync check --config {}",
                path.display(),
                path.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            eprintln!(
                "{} exists; not overwritten (use --force to replace it)",
                path.display()
            );
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("cannot write {}: {e}", path.display());
            ExitCode::from(1)
        }
    }
}

fn isready(path: &PathBuf, window: std::time::Duration) -> ExitCode {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("not ready: cannot read {}: {e}", path.display());
            return ExitCode::from(1);
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    match serde_json::from_slice::<ReadyFile>(&text) {
        Ok(ReadyFile {
            heartbeat: Some(beat),
            ..
        }) if !secrets_sync::liveness::heartbeat_fresh(beat, now, window) => {
            eprintln!(
                "not ready: {} was last written {}s ago (LIVENESS_TIMEOUT is {}s): secrets-sync is wedged or gone",
                path.display(),
                now.saturating_sub(beat),
                window.as_secs()
            );
            ExitCode::from(1)
        }
        Ok(f) if f.ready => {
            println!("ready ({}/{} secrets synced)", f.synced, f.total);
            ExitCode::SUCCESS
        }
        Ok(f) => {
            eprintln!("not ready ({}/{} secrets synced)", f.synced, f.total);
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("not ready: {} is not a status file: {e}", path.display());
            ExitCode::from(1)
        }
    }
}

fn run(args: RunArgs) -> ExitCode {
    // As pid 1, stay a small init that reaps orphans and run the sidecar as
    // its child (src/init.rs).
    if let Some(code) = secrets_sync::init::supervise_if_pid1() {
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    // Settings first: the log level itself is one of them.
    if let Err(errors) = args.runtime.validate() {
        let errors: Vec<String> = errors.iter().map(SettingError::to_string).collect();
        eprintln!("invalid settings; not starting:");
        for e in &errors {
            eprintln!("  - {e}");
        }
        return ExitCode::from(2);
    }
    let rt = &args.runtime;
    let telemetry = secrets_sync::telemetry::init(
        &rt.log_level,
        rt.log_format,
        rt.enable_tracing,
        rt.otel_exporter_endpoint
            .as_deref()
            .filter(|e| !e.is_empty()),
    );
    let plan = match plan::load(&args.config, Credentials::Required) {
        Ok(p) => p,
        Err(e) => {
            let errors: Vec<String> = e.errors.iter().map(ToString::to_string).collect();
            tracing::error!(file = %e.file.display(), errors = ?errors, "invalid config; not starting");
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    for w in &plan.warnings {
        tracing::warn!(warning = %w, "config warning");
    }
    let code = match secrets_sync::app::run(args, plan) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    };
    telemetry.shutdown();
    code
}
