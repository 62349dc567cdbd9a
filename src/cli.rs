//! The command line's definition (clap): `run` (default), `check` (alias
//! `validate`), `isready`, `init`, `convert`, `schema` and `version`. In the library so that the
//! man page and shell completions are generated from it and checked
//! current by the tests (tests/cli_docs.rs).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::settings::{ConfigArgs, RunArgs, RuntimeArgs};

/// Keeps secrets from HashiCorp Vault / OpenBao in sync as files.
#[derive(Parser)]
#[command(
    name = "secrets-sync",
    version,
    about,
    args_conflicts_with_subcommands = true,
    disable_version_flag = true
)]
pub struct Cli {
    /// Print the version (`-v` as the Go tool has it, or `-V`).
    #[arg(short = 'v', short_alias = 'V', long, action = clap::ArgAction::Version)]
    pub version: (),
    #[command(subcommand)]
    pub command: Option<Command>,
    /// With no subcommand, `run` is meant.
    #[command(flatten)]
    pub run: Box<RunArgs>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Sync secrets to files until stopped (the default).
    Run(Box<RunArgs>),
    /// Validate the config file (also as `validate`): prints every error and
    /// exits 2, or exits 0.
    #[command(visible_alias = "validate")]
    Check(Box<CheckArgs>),
    /// Exit 0 if the running instance is ready, 1 if not (for healthchecks).
    Isready(IsreadyArgs),
    /// Print a commented starter config (or write it to --output).
    Init(InitArgs),
    /// Convert an ExternalSecret, Vault Agent injector annotations or a
    /// Vault Agent HCL config into a secrets-sync config (printed); what
    /// does not convert is listed on stderr and the exit code is 1.
    Convert(ConvertArgs),
    /// Print the JSON Schema of the config file (for editors and CI:
    /// `secrets-sync schema > secrets-sync.schema.json`).
    Schema,
    /// Print the version and the platform.
    Version,
}

#[derive(Args)]
pub struct InitArgs {
    /// Write the config to this file instead of standard output (an
    /// existing file is kept unless --force).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Overwrite --output if it exists.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args)]
pub struct ConvertArgs {
    /// Files to convert (YAML: ExternalSecret, SecretStore, Pod/Deployment
    /// with vault.hashicorp.com annotations; or Vault Agent HCL); none or
    /// `-` reads standard input.
    pub inputs: Vec<PathBuf>,
    /// Directory the generated config writes its files to (default: where
    /// the source put them; /secrets for an ExternalSecret).
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<String>,
    /// KV mount of the secrets (default: the SecretStore's, else `secret`).
    #[arg(long, value_name = "PATH")]
    pub mount_path: Option<String>,
    /// KV version, v1 or v2 (default: the SecretStore's, else v2).
    #[arg(long, value_name = "VERSION", value_parser = ["v1", "v2", "1", "2"])]
    pub kv_version: Option<String>,
}

#[derive(Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Checked too, so that `check` refuses what `run` would.
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

#[derive(Args)]
pub struct IsreadyArgs {
    /// The status file the running instance writes.
    #[arg(long, env = "STATUS_FILE", default_value = "/tmp/.ready-state")]
    pub status_file: PathBuf,

    /// A status file whose heartbeat is older than this is a wedged (or
    /// gone) process: not ready (2s-10m; the running instance's setting).
    #[arg(long, env = "LIVENESS_TIMEOUT", default_value = "10s",
          value_parser = crate::config::settings::duration_in(std::time::Duration::from_secs(2), std::time::Duration::from_secs(600), false))]
    pub liveness_timeout: std::time::Duration,
}
