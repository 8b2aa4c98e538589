//! The whole stack in one builder: the registry and the catalogue sections a service chooses,
//! JSON logs, the span layer (with the exemplar source), OTLP export, health with its built-in
//! checks, the axum routes and the request layer, and one shutdown that drains, exports and
//! flushes. The service name and version are given once.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use rtx_monitoring::catalogue::Sections;
//! use rtx_monitoring::Monitoring;
//!
//! let monitoring = Monitoring::builder("order-gateway", "1.4.2")
//!     .sections(Sections { orders: true, api: true, ..Sections::NONE })
//!     .symbols(["EURUSD", "GBPUSD", "USDJPY"])
//!     .venues([("LMAX", "FIX")])
//!     .otlp_endpoint("http://otel-collector:4318")
//!     .start()
//!     .await?;
//! let app = monitoring.measure(axum::Router::new() /* your routes */);
//! # let _ = app;
//! // … serve `app`; on SIGTERM:
//! monitoring.shutdown(std::time::Duration::from_secs(2)).await;
//! # Ok(()) }
//! ```
//!
//! Everything it does stays reachable piece by piece ([`TradingMetrics::new`],
//! [`logging::try_init_with_spans`](crate::logging::try_init_with_spans), [`SpanLayer`], [`Health`],
//! [`MetricsEndpoint`], [`HealthEndpoint`], [`track_requests`]) for a service that needs to
//! wire them differently.

use std::sync::Arc;
use std::time::Duration;

use axum::middleware::from_fn_with_state;

use crate::catalogue::{CatalogueConfig, LpSpec, Sections, TradingMetrics};
use crate::health::{
    Check, CheckResult, CheckSpec, Health, MemoryCheck, Probe, TaskCheck, UptimeCheck,
};
use crate::http::{track_requests, HealthEndpoint, MetricsEndpoint};
use crate::logging::{LogConfig, LogError, LogGuard};
use crate::metrics::{Registry, RegistryError};
use crate::trace::{SpanLayer, SpanSink};

/// Why the stack could not start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A metric family could not be registered (a name taken twice).
    #[error("cannot register metrics: {0}")]
    Metrics(#[from] RegistryError),
    /// Logging could not start (a bad filter, or a global subscriber already set).
    #[error("{0}")]
    Logging(#[from] LogError),
}

/// A check to register at start.
type AddCheck = Box<dyn FnOnce(&Health) + Send>;

/// Settings of the whole stack; [`Monitoring::builder`] makes one.
#[must_use = "a builder does nothing until `start`"]
pub struct MonitoringBuilder {
    catalogue: CatalogueConfig,
    checks: Vec<AddCheck>,
    log: LogConfig,
    sample_ratio: f64,
    #[cfg(feature = "otlp")]
    otlp_endpoint: Option<String>,
    metrics_token: Option<String>,
}

impl std::fmt::Debug for MonitoringBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MonitoringBuilder")
            .field("catalogue", &self.catalogue)
            .field("checks", &self.checks.len())
            .finish_non_exhaustive()
    }
}

impl MonitoringBuilder {
    /// Adds a health check of your own beside the built-in ones (memory, tasks, uptime).
    pub fn check(mut self, spec: CheckSpec, check: impl Check) -> Self {
        self.checks
            .push(Box::new(move |health: &Health| health.add(spec, check)));
        self
    }

    /// Adds a health check of your own from an async closure:
    /// `.check_fn(CheckSpec::new("venue", Probe::Readiness), || async { CheckResult::new(Status::Healthy, "up") })`.
    pub fn check_fn<F, Fut>(mut self, spec: CheckSpec, f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = CheckResult> + Send + 'static,
    {
        self.checks
            .push(Box::new(move |health: &Health| health.add_fn(spec, f)));
        self
    }

    /// The parts of the catalogue to register (default: all).
    pub fn sections(mut self, sections: Sections) -> Self {
        self.catalogue.sections = sections;
        self
    }

    /// The symbols the service trades (the `symbol` label's values).
    pub fn symbols<S: AsRef<str>>(mut self, symbols: impl IntoIterator<Item = S>) -> Self {
        self.catalogue.symbols = symbols.into_iter().map(|s| s.as_ref().to_owned()).collect();
        self
    }

    /// The liquidity providers or venues, with the protocol each speaks (`lp` and `protocol`).
    pub fn venues<N: AsRef<str>, P: AsRef<str>>(
        mut self,
        venues: impl IntoIterator<Item = (N, P)>,
    ) -> Self {
        self.catalogue.lps = venues
            .into_iter()
            .map(|(name, protocol)| LpSpec {
                name: name.as_ref().to_owned(),
                protocol: protocol.as_ref().to_owned(),
            })
            .collect();
        self
    }

    /// The rest of the catalogue's settings (SLO target, label caps), sections, symbols and
    /// venues included: replaces what the methods above set.
    pub fn catalogue(mut self, config: CatalogueConfig) -> Self {
        let build = std::mem::take(&mut self.catalogue.build);
        self.catalogue = CatalogueConfig { build, ..config };
        self
    }

    /// The log level filter, `info` or `info,my_gateway=debug` (default `info`).
    pub fn log_filter(mut self, filter: &str) -> Self {
        filter.clone_into(&mut self.log.filter);
        self
    }

    /// Where log lines go (default stdout), e.g. a writer in tests.
    pub fn log_sink(mut self, sink: crate::logging::Sink) -> Self {
        self.log.sink = sink;
        self
    }

    /// Field-name fragments to redact beyond the built-in ones (password, token, …).
    pub fn redact_keys<K: AsRef<str>>(mut self, keys: impl IntoIterator<Item = K>) -> Self {
        self.log.redact_keys = keys.into_iter().map(|k| k.as_ref().to_owned()).collect();
        self
    }

    /// Root sampling ratio, 0.0–1.0 (default 1.0).
    pub fn sample_ratio(mut self, ratio: f64) -> Self {
        self.sample_ratio = ratio;
        self
    }

    /// Export sampled spans over OTLP/HTTP to this base URL (`http://collector:4318`).
    #[cfg(feature = "otlp")]
    pub fn otlp_endpoint(mut self, endpoint: &str) -> Self {
        self.otlp_endpoint = Some(endpoint.to_owned());
        self
    }

    /// Require this bearer token on `/metrics`.
    pub fn metrics_token(mut self, token: &str) -> Self {
        self.metrics_token = Some(token.to_owned());
        self
    }

    /// Registers the catalogue, installs logging and tracing as the global subscriber, starts
    /// the OTLP exporter and the health checks (memory, tasks, uptime), and marks the service
    /// ready. Call it inside a tokio runtime, once per process.
    ///
    /// # Errors
    /// When a metric name is taken, the log filter is invalid, or a global subscriber is
    /// already installed.
    pub async fn start(self) -> Result<Monitoring, SetupError> {
        let started = std::time::Instant::now();
        let registry = Registry::new();
        let metrics = TradingMetrics::new(&registry, &self.catalogue)?;
        let (exporter_stop, exporter_stopped) = tokio::sync::watch::channel(false);
        #[cfg(feature = "otlp")]
        let exporter = self.otlp_endpoint.as_ref().map(|endpoint| {
            crate::trace::OtlpExporter::new(
                crate::trace::OtlpConfig::new(endpoint, &self.log.service, &self.log.version),
                metrics.monitoring.spans_exported.clone(),
                metrics.monitoring.spans_dropped.clone(),
            )
        });
        #[cfg(not(feature = "otlp"))]
        let exporter: Option<Arc<dyn SpanSink>> = None;
        let sink = exporter.clone().map(|e| e as Arc<dyn SpanSink>);
        let service = self.log.service.clone();
        let version = self.log.version.clone();
        let logs = crate::logging::try_init_with_spans(
            self.log,
            Some(metrics.monitoring.clone()),
            SpanLayer::new(self.sample_ratio, sink),
        )?;
        #[cfg(feature = "otlp")]
        let exporter_task =
            exporter.map(|e| tokio::spawn(e.run(exporter_stopped, Duration::from_secs(3))));
        #[cfg(not(feature = "otlp"))]
        let exporter_task: Option<tokio::task::JoinHandle<()>> = {
            drop(exporter_stopped);
            None
        };
        let health = Health::new(&version, Some(metrics.monitoring.clone()));
        health.add(
            CheckSpec::new("memory", Probe::Both),
            MemoryCheck::default(),
        );
        health.add(CheckSpec::new("tasks", Probe::Both), TaskCheck::current());
        health.add(
            CheckSpec::new("uptime", Probe::Informational),
            UptimeCheck { started },
        );
        for add in self.checks {
            add(&health);
        }
        let checks = health.start().await;
        health.set_ready();
        Ok(Monitoring {
            service,
            registry,
            metrics,
            health,
            metrics_token: self.metrics_token,
            logs,
            exporter_stop,
            exporter_task,
            checks,
        })
    }
}

/// The running stack: handles to record with, the routes to serve, and the shutdown.
#[derive(Debug)]
pub struct Monitoring {
    service: String,
    registry: Registry,
    metrics: TradingMetrics,
    health: Health,
    metrics_token: Option<String>,
    logs: LogGuard,
    exporter_stop: tokio::sync::watch::Sender<bool>,
    exporter_task: Option<tokio::task::JoinHandle<()>>,
    checks: Vec<tokio::task::JoinHandle<()>>,
}

impl Monitoring {
    /// Starts describing the stack of the service `service` at `version`: the name and version
    /// that logs, spans, `rtx_build_info` and the probes carry.
    pub fn builder(service: &str, version: &str) -> MonitoringBuilder {
        let mut catalogue = CatalogueConfig::default();
        catalogue.build.version = version.to_owned();
        MonitoringBuilder {
            catalogue,
            checks: Vec::new(),
            log: LogConfig::new(service, version),
            sample_ratio: 1.0,
            #[cfg(feature = "otlp")]
            otlp_endpoint: None,
            metrics_token: None,
        }
    }

    /// The catalogue's handles, to record with.
    pub fn metrics(&self) -> &TradingMetrics {
        &self.metrics
    }

    /// The registry, to add your own families beside the catalogue or to encode it.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The health checks and the readiness state. Add your own checks with the builder's
    /// [`check`](MonitoringBuilder::check) and [`check_fn`](MonitoringBuilder::check_fn): the
    /// checks run from `start`.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// `/metrics`, `/health` and `/ready`, for a router of their own (a management port).
    pub fn routes(&self) -> axum::Router {
        MetricsEndpoint::new(self.registry.clone())
            .with_bearer_token(self.metrics_token.as_deref())
            .router()
            .merge(HealthEndpoint::new(self.health.clone(), &self.service).router())
    }

    /// `app` with the monitoring routes added and every matched route measured
    /// (`rtx_http_requests_total`, the request duration with exemplars, the server span with
    /// the caller's trace context). Not named `instrument`, which `tracing::Instrument` takes.
    pub fn measure(&self, app: axum::Router) -> axum::Router {
        app.merge(self.routes())
            .route_layer(from_fn_with_state(self.metrics.api.clone(), track_requests))
    }

    /// Turns readiness to 503, so that load balancers stop sending traffic while the server
    /// finishes what it has. Call it on SIGTERM, before the server stops accepting.
    pub fn begin_drain(&self) {
        self.health.set_draining();
    }

    /// Stops the checks, exports the spans still queued and flushes the log, each bounded by
    /// `deadline`. Call it after the server has stopped.
    pub async fn shutdown(self, deadline: Duration) {
        self.health.set_draining();
        for check in &self.checks {
            check.abort();
        }
        let _ = self.exporter_stop.send(true);
        if let Some(task) = self.exporter_task {
            let _ = tokio::time::timeout(deadline, task).await;
        }
        self.logs.flush(deadline);
    }
}
