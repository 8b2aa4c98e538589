//! The OpenAPI 3.1 document served at `GET /api/openapi.json` and checked in as
//! `docs/openapi.json`. The API and admin operations come from their handlers' `#[utoipa::path]`
//! annotations and the types they serialize, collected by the same `routes!` calls that mount
//! them (see [`super::app`]), so a mounted handler cannot be missing from it. The monitoring
//! endpoints are served by `rtx-monitoring`, which knows nothing of OpenAPI; they are described
//! here, and the schemas of their bodies mirror what that crate renders. The fuzzer in the test
//! command checks every answer against this document, which is what keeps the mirror honest.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, RefOr};
use utoipa::{Modify, OpenApi, ToSchema};

use super::ErrorBody;

/// Where the document is served.
pub const PATH: &str = "/api/openapi.json";

/// The security scheme of the admin endpoints (`RTX_ADMIN_TOKEN`). The `security(...)` of an
/// annotation takes only a literal, so the handlers spell these two names out.
pub const ADMIN_TOKEN: &str = "admin_token";

/// The security scheme of `/metrics` when `RTX_METRICS_TOKEN` is set.
pub const METRICS_TOKEN: &str = "metrics_token";

/// The parts of the document no handler annotation carries: its header, the security schemes,
/// and the monitoring endpoints.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "rtx-engine",
        description = "The reference trading backend's HTTP API: orders, positions, accounts, the \
                       WebSocket quote stream, fault injection for tests and game days, and the \
                       monitoring endpoints. Every 4xx and 5xx answer carries the error body \
                       `{\"error\": {\"code\", \"message\", \"field\"}}`, including unknown routes \
                       (404) and methods a route does not serve (405, with `Allow`).",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    paths(metrics, health, ready, alerts, document),
    components(schemas(ErrorBody, Symbol)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "orders", description = "Orders, positions and accounts."),
        (name = "quotes", description = "The WebSocket quote stream."),
        (name = "admin", description = "Fault injection, on only when `RTX_ADMIN_TOKEN` is set \
                                        (404 otherwise); bearer token required."),
        (name = "monitoring", description = "Metrics, probes, alerts and this document.")
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, what) in [
            (ADMIN_TOKEN, "The value of `RTX_ADMIN_TOKEN`."),
            (
                METRICS_TOKEN,
                "The value of `RTX_METRICS_TOKEN`, when it is set.",
            ),
        ] {
            let mut http = Http::new(HttpAuthScheme::Bearer);
            http.description = Some(what.to_owned());
            components.add_security_scheme(name, SecurityScheme::Http(http));
        }
    }
}

/// A symbol this engine trades. The document lists the configured ones: any other is refused
/// (400 `unknown_symbol` in an order, 404 in the admin price move).
#[derive(Debug)]
pub struct Symbol;

impl utoipa::PartialSchema for Symbol {
    fn schema() -> RefOr<Schema> {
        // Any string until [`finish`] lists the configured symbols.
        RefOr::T(Schema::Object(
            ObjectBuilder::new().schema_type(Type::String).build(),
        ))
    }
}

impl ToSchema for Symbol {}

/// Fills in what only the running configuration knows: the traded symbols.
pub fn finish(document: &mut Document, symbols: &[&str]) {
    let schema = ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("A symbol this engine trades."))
        .enum_values(Some(symbols.iter().copied()))
        .examples(symbols.first().copied())
        .build();
    document
        .components
        .get_or_insert_with(Default::default)
        .schemas
        .insert("Symbol".to_owned(), RefOr::T(Schema::Object(schema)));
}

/// The engine's own health verdict (`application/json`).
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // A description of what `rtx-monitoring` renders, never built here.
struct HealthReport {
    /// `healthy` and `degraded` answer 200, `unhealthy` 503.
    status: HealthStatus,
    /// Why it is unhealthy whatever the checks say (starting up, draining).
    reason: Option<String>,
    /// Service version.
    version: String,
    /// Seconds since start.
    uptime_seconds: f64,
    /// Every check the verdict shows, by name (`memory`, `tasks`, `uptime`, `database`, `lps`).
    checks: BTreeMap<String, CheckReport>,
}

/// One check in a verdict.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // As HealthReport.
struct CheckReport {
    /// Its status.
    status: HealthStatus,
    /// What it found.
    message: String,
    /// The observed value.
    #[schema(required)]
    value: Option<f64>,
    /// Its unit (`bytes`, `tasks`, `seconds`, `connections`).
    #[schema(required)]
    unit: Option<String>,
    /// When it last finished (RFC 3339), null before its first run.
    #[schema(required, format = DateTime)]
    last_run: Option<String>,
    /// How long that run took, in seconds.
    #[schema(required)]
    duration_seconds: Option<f64>,
    /// Which verdicts it counts in: `liveness,readiness`, `readiness` or `informational`.
    counts_in: String,
}

/// A check's or a verdict's status.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // As HealthReport.
enum HealthStatus {
    Healthy,
    Degraded,
    Unhealthy,
}

/// The IETF health-check draft format (`application/health+json`).
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // As HealthReport.
struct IetfHealth {
    /// `pass`, `warn` or `fail`.
    status: IetfStatus,
    /// Service version.
    version: String,
    /// The configured service name.
    #[serde(rename = "serviceId")]
    service_id: String,
    /// Why it fails whatever the checks say (starting up, draining).
    output: Option<String>,
    /// Checks keyed `component:measurement`, one entry each.
    checks: BTreeMap<String, Vec<IetfCheck>>,
}

/// One check in the IETF format.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // As HealthReport.
struct IetfCheck {
    /// The check's name.
    #[serde(rename = "componentId")]
    component_id: String,
    /// `system` for in-process checks, `component` for dependencies.
    #[serde(rename = "componentType")]
    component_type: String,
    /// `pass`, `warn` or `fail`.
    status: IetfStatus,
    /// What it found.
    output: String,
    /// The observed value.
    #[serde(rename = "observedValue")]
    observed_value: Option<f64>,
    /// Its unit.
    #[serde(rename = "observedUnit")]
    observed_unit: Option<String>,
    /// When it last finished (RFC 3339).
    #[schema(format = DateTime)]
    time: Option<String>,
}

/// The IETF draft's status.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // As HealthReport.
enum IetfStatus {
    Pass,
    Warn,
    Fail,
}

/// Active alerts and the history, newest first.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // As HealthReport.
struct Alerts {
    /// Pending and firing alerts.
    active: Vec<Alert>,
    /// State changes, newest first, at most `history_cap`.
    history: Vec<AlertChange>,
    /// How many changes the history keeps.
    #[schema(minimum = 0)]
    history_cap: u64,
}

/// One alert.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // As HealthReport.
struct Alert {
    /// The rule's name.
    alertname: String,
    /// `critical`, `warning` or `info`.
    severity: String,
    /// The alert's labels.
    labels: BTreeMap<String, String>,
    /// `pending`, `firing` or `resolved`.
    state: String,
    /// The value that triggered it, null when not finite.
    #[schema(required)]
    value: Option<f64>,
    /// One line.
    summary: String,
    /// What it means.
    description: String,
    /// Where its runbook is.
    runbook: String,
    /// When its condition first held (RFC 3339).
    #[schema(format = DateTime)]
    active_since: String,
    /// When it started firing.
    #[schema(required, format = DateTime)]
    fired_at: Option<String>,
    /// When it resolved.
    #[schema(required, format = DateTime)]
    resolved_at: Option<String>,
}

/// One change in the alert history: the alert as it was, and when.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // As HealthReport.
struct AlertChange {
    #[serde(flatten)]
    alert: Alert,
    /// When the change happened (RFC 3339).
    #[schema(format = DateTime)]
    at: String,
}

/// `GET /metrics`: every metric family of the catalogue, in the Prometheus text format, or in
/// OpenMetrics when `Accept` prefers it; gzip-compressed when `Accept-Encoding` allows.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "get_metrics",
    tag = "monitoring",
    security((), ("metrics_token" = [])),
    responses(
        (status = 200, description = "The exposition.",
         content(
             (String = "text/plain; version=0.0.4; charset=utf-8"),
             (String = "application/openmetrics-text; version=1.0.0; charset=utf-8")
         ),
         headers(("Vary" = String, description = "`accept, accept-encoding`"))),
        (status = 401, description = "`RTX_METRICS_TOKEN` is set and the request does not carry it.",
         body = ErrorBody,
         headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"metrics\"`"))),
    )
)]
#[allow(dead_code)] // Served by `rtx-monitoring`; this only describes it.
fn metrics() {}

/// `GET /health`: liveness. 200 while healthy or degraded, 503 when unhealthy; the IETF
/// health-check draft format when `Accept` asks for `application/health+json`.
#[utoipa::path(
    get,
    path = "/health",
    operation_id = "get_health",
    tag = "monitoring",
    responses(
        (status = 200, description = "Alive (healthy or degraded).",
         content((HealthReport = "application/json"), (IetfHealth = "application/health+json"))),
        (status = 503, description = "Unhealthy: restart me.",
         content((HealthReport = "application/json"), (IetfHealth = "application/health+json"))),
    )
)]
#[allow(dead_code)] // As `metrics`.
fn health() {}

/// `GET /ready`: readiness. 503 while starting, draining, or without a database or a
/// connected LP; otherwise as `/health`.
#[utoipa::path(
    get,
    path = "/ready",
    operation_id = "get_ready",
    tag = "monitoring",
    responses(
        (status = 200, description = "Ready for traffic.",
         content((HealthReport = "application/json"), (IetfHealth = "application/health+json"))),
        (status = 503, description = "Not ready: send no traffic.",
         content((HealthReport = "application/json"), (IetfHealth = "application/health+json"))),
    )
)]
#[allow(dead_code)] // As `metrics`.
fn ready() {}

/// `GET /alerts`: the built-in evaluator's active alerts and history.
#[utoipa::path(
    get,
    path = "/alerts",
    operation_id = "get_alerts",
    tag = "monitoring",
    responses((status = 200, description = "Active alerts and history.", body = Alerts))
)]
#[allow(dead_code)] // As `metrics`.
fn alerts() {}

/// `GET /api/openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    operation_id = "get_openapi_document",
    tag = "monitoring",
    responses((status = 200, description = "The OpenAPI 3.1 document.",
               content_type = "application/json", body = Object))
)]
#[allow(dead_code)] // Mounted in `super::app` with the document it serves.
fn document() {}
