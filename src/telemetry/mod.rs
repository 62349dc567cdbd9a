//! Logging: tracing with JSON lines by default (`LOG_FORMAT=text` for a
//! terminal) and the level from `LOG_LEVEL`.

pub mod audit;
pub mod metrics;

use tracing_subscriber::EnvFilter;

use crate::config::settings::LogFormat;

/// Installs the global subscriber. `level` is a level name (`info`) or any
/// tracing filter directive (`info,secrets_sync=debug`). An invalid value
/// falls back to `info` and says so.
pub fn init_logging(level: &str, format: LogFormat) {
    let (filter, bad) = match EnvFilter::try_new(level) {
        Ok(f) => (f, false),
        Err(_) => (EnvFilter::new("info"), true),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .with_target(true);
    let installed = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
    if installed.is_ok() && bad {
        tracing::warn!(log_level = level, "LOG_LEVEL not understood; using info");
    }
}
