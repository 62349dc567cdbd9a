//! Telemetry: logs (tracing, JSON by default), metrics, the audit log and
//! optional OpenTelemetry traces.

pub mod audit;
pub(crate) mod events;
pub mod metrics;
pub mod otel;
mod otlp_http;
pub mod series;

use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

use crate::config::settings::LogFormat;

/// What must be flushed at exit.
#[derive(Default)]
pub struct TelemetryGuard {
    tracer_provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Exports the spans still buffered. Call outside the async runtime.
    pub fn shutdown(self) {
        if let Some(p) = self.tracer_provider {
            if let Err(e) = p.shutdown() {
                eprintln!("warning: flushing traces failed: {e}");
            }
        }
    }
}

/// Installs the global subscriber: logs filtered by `level` (a level name or
/// any tracing filter directive; an invalid one falls back to `info` and says
/// so) and, with `tracing` on, an OpenTelemetry layer of its own that sees
/// this crate's spans whatever the log level.
pub fn init(
    level: &str,
    format: LogFormat,
    tracing: bool,
    otel_endpoint: Option<&str>,
) -> TelemetryGuard {
    let (filter, bad_level) = match EnvFilter::try_new(level) {
        Ok(f) => (f, false),
        Err(_) => (EnvFilter::new("info"), true),
    };
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stdout)
        .with_target(true);
    let fmt: Box<dyn Layer<Registry> + Send + Sync> = match format {
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_filter(filter)
            .boxed(),
        LogFormat::Text => fmt.with_filter(filter).boxed(),
    };
    let mut guard = TelemetryGuard::default();
    let mut otel_error = None;
    let otel = if tracing {
        match otel::provider(otel_endpoint) {
            Ok((provider, tracer)) => {
                guard.tracer_provider = Some(provider);
                let targets = Targets::new()
                    .with_target("secrets_sync", tracing::Level::DEBUG)
                    .with_target("tracing_actix_web", tracing::Level::INFO);
                Some(
                    tracing_opentelemetry::layer()
                        .with_tracer(tracer)
                        .with_filter(targets)
                        .boxed(),
                )
            }
            Err(e) => {
                otel_error = Some(e);
                None
            }
        }
    } else {
        None
    };
    let installed = tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .try_init()
        .is_ok();
    if installed {
        if bad_level {
            tracing::warn!(log_level = level, "LOG_LEVEL not understood; using info");
        }
        if let Some(e) = otel_error {
            tracing::error!(error = %e, "tracing disabled");
        } else if guard.tracer_provider.is_some() {
            tracing::info!("exporting OpenTelemetry traces");
        }
    }
    guard
}
