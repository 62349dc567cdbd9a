//! OpenTelemetry traces over OTLP/HTTP (protobuf), when `ENABLE_TRACING=true`.
//!
//! Spans: `sync` (one per attempt of a secret) with children `vault.read`
//! (and `vault.request` per HTTP call, `vault.auth` for logins), `render` and
//! `write`; plus one span per request to this server, named after its
//! method and route (`GET /status`, by tracing-actix-web). Attributes hold names, paths, counts and error kinds,
//! never a value.
//!
//! `OTEL_EXPORTER_ENDPOINT` (the seed's variable) is the collector's base
//! URL (`http://jaeger:4318`); `/v1/traces` is appended. Without it the
//! standard `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_ENDPOINT`
//! apply; `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES` and the
//! `OTEL_BSP_*` batch settings are honoured by the SDK. Spans are exported
//! by the SDK's own background thread (through `otlp_http`, plain HTTP); nothing of this runs when tracing is
//! off (the spans are then disabled at DEBUG level and cost a level check).

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;

/// Tracing could not be set up (the process then runs without it).
#[derive(Debug, thiserror::Error)]
#[error("cannot set up OpenTelemetry export: {0}")]
pub(crate) struct OtelError(String);

/// The collector URL for traces from the seed's base endpoint.
pub(crate) fn traces_url(base: &str) -> String {
    let base = base.trim().trim_end_matches('/');
    if base.ends_with("/v1/traces") {
        base.to_string()
    } else {
        format!("{base}/v1/traces")
    }
}

/// The collector URL spans go to: ours (`OTEL_EXPORTER_ENDPOINT`), else
/// the standard variables in the SDK's order; `None`: the SDK's default
/// (`http://localhost:4318`).
fn effective_url(
    ours: Option<&str>,
    traces: Option<&str>,
    general: Option<&str>,
) -> Option<String> {
    let set = |v: Option<&str>| {
        v.map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    set(ours).or_else(|| set(traces)).or_else(|| set(general))
}

/// Builds the exporter and provider (its HTTP client: `otlp_http`).
pub(crate) fn provider(
    endpoint: Option<&str>,
) -> Result<(SdkTracerProvider, SdkTracer), OtelError> {
    let var = |name| std::env::var(name).ok();
    let url = effective_url(
        endpoint,
        var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").as_deref(),
        var("OTEL_EXPORTER_OTLP_ENDPOINT").as_deref(),
    );
    if let Some(url) = url.filter(|u| !u.starts_with("http://")) {
        return Err(OtelError(format!(
            "the collector URL {url:?} is not http:// (OTEL_EXPORTER_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT): the exporter speaks plain HTTP only; point it at a collector on the pod or host (http://localhost:4318) that forwards over TLS"
        )));
    }
    let mut builder = SpanExporter::builder()
        .with_http()
        .with_http_client(super::otlp_http::PlainHttp::from_env());
    if let Some(e) = endpoint.filter(|e| !e.trim().is_empty()) {
        builder = builder.with_endpoint(traces_url(e));
    }
    let exporter = builder.build().map_err(|e| OtelError(e.to_string()))?;
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("secrets-sync");
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    let tracer = provider.tracer("secrets-sync");
    Ok((provider, tracer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_collector_url_is_ours_then_the_standard_variables() {
        let u = |a, b, c| effective_url(a, b, c);
        assert_eq!(
            u(Some("http://a"), Some("http://b"), None).as_deref(),
            Some("http://a")
        );
        assert_eq!(
            u(Some(" "), Some("http://b"), Some("http://c")).as_deref(),
            Some("http://b")
        );
        assert_eq!(
            u(None, None, Some("https://c")).as_deref(),
            Some("https://c")
        );
        assert_eq!(u(None, None, None), None);
        // An https collector is refused at start, with what to do.
        let e = provider(Some("https://collector:4318"))
            .err()
            .map(|e| e.to_string());
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("not http://") && e.contains("localhost:4318")),
            "{e:?}"
        );
    }

    #[test]
    fn endpoint_gets_the_traces_path_once() {
        assert_eq!(
            traces_url("http://jaeger:4318"),
            "http://jaeger:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://jaeger:4318/"),
            "http://jaeger:4318/v1/traces"
        );
        assert_eq!(traces_url("http://c/v1/traces"), "http://c/v1/traces");
    }
}
