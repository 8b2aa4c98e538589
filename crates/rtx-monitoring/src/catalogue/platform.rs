//! Platform families: the API, the database, the runtime and build, and the monitoring layer's
//! own health (alerts, logs, spans, health checks).

use std::sync::{Arc, OnceLock};
#[cfg(feature = "tokio-runtime")]
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::{
    names_of, spec_counter, spec_gauge, CatalogueConfig, ConnectionCloseReason, DbOutcome,
    HttpMethod, LogLevel, NotificationOutcome, PoolState,
};
use crate::metrics::{
    Counter, Dense, Dynamic, Gauge, Histogram, InFlight, LabelValue, MetricSpec, NativeConfig,
    Registry, RegistryError, LATENCY_BUCKETS, OTHER_LABEL_VALUE,
};

/// The route label of requests that matched no route: unknown paths share it, so a scanner
/// cannot grow the series count.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The REST API: requests by method, route template and status.
///
/// Cloning it is one reference-count increment: the request middleware's state is a clone of
/// it, and axum clones a middleware's state for every request.
#[derive(Clone, Debug)]
pub struct ApiMetrics {
    series: Arc<ApiSeries>,
}

/// The families and handles behind an [`ApiMetrics`].
#[derive(Debug)]
struct ApiSeries {
    requests: Dynamic<Counter>,
    duration: Dynamic<Histogram>,
    /// Each route's handles, resolved from the two families once: a request then finds them
    /// without the families' hashing and read lock.
    routes: Arc<RouteTable>,
    in_flight: Gauge,
    connections_active: Gauge,
    connections_closed: Dense<Counter, 1>,
}

/// Distinct status codes one route and method keeps handles for; a route answering with more
/// (rare: the status label is capped at 64 anyway) resolves the extra ones per request.
const CACHED_STATUSES: usize = 16;

/// The handles of one route template and method, and the name of its server spans.
#[derive(Debug)]
pub(crate) struct RouteRequests {
    /// `GET /api/orders/{id}`: the span name OpenTelemetry's HTTP conventions give a server
    /// span, rendered once rather than per request.
    span_name: Box<str>,
    route: Box<str>,
    method: HttpMethod,
    duration: Histogram,
    /// Filled first come, first served: a slot, once set, never changes, so readers need no
    /// lock.
    statuses: [OnceLock<(u16, Counter)>; CACHED_STATUSES],
    requests: Dynamic<Counter>,
}

impl RouteRequests {
    /// The server span's name: method and route template.
    pub(crate) fn span_name(&self) -> &str {
        &self.span_name
    }

    /// Records a finished request: its status and duration.
    pub(crate) fn record(&self, status: u16, elapsed: Duration) {
        self.counter(status, |counter| counter.inc());
        self.duration.observe_duration(elapsed);
    }

    /// Runs `f` on the counter of `status`, resolving it once per status code.
    fn counter<T>(&self, status: u16, f: impl FnOnce(&Counter) -> T) -> T {
        let resolve = || {
            self.requests.get(&[
                self.method.as_str(),
                &self.route,
                itoa::Buffer::new().format(status),
            ])
        };
        for slot in &self.statuses {
            let (cached, counter) = slot.get_or_init(|| (status, resolve()));
            if *cached == status {
                return f(counter);
            }
        }
        f(&resolve())
    }
}

/// Route templates and their handles, by a hash of the template, in open addressing over a
/// fixed number of slots. Slots are claimed once and never change, so a lookup is a hash of
/// the template, a load and a string comparison: no lock, no allocation.
struct RouteTable {
    slots: Box<[OnceLock<RouteSlot>]>,
    /// Where a route goes once every slot is taken: only past the route cap, where the
    /// families fold the route into `__other__` anyway.
    overflow: RouteSlot,
}

impl std::fmt::Debug for RouteTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let used = self.slots.iter().filter(|s| s.get().is_some()).count();
        f.debug_struct("RouteTable")
            .field("routes", &used)
            .finish_non_exhaustive()
    }
}

/// One route template: its handles per method, each resolved on the method's first request.
struct RouteSlot {
    route: Box<str>,
    methods: [OnceLock<Box<RouteRequests>>; HttpMethod::ALL.len()],
}

impl RouteSlot {
    fn new(route: &str) -> Self {
        Self {
            route: route.into(),
            methods: std::array::from_fn(|_| OnceLock::new()),
        }
    }
}

/// FxHash over the template's 8-byte words: the keys are the application's own route
/// templates (a raw path never reaches the table), so a fast hash without flooding resistance
/// is enough, and it costs a few multiplications where SipHash costs tens of nanoseconds.
fn route_hash(route: &str) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut hash = route.len() as u64;
    for chunk in route.as_bytes().chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        hash = (hash.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
    }
    hash
}

impl RouteTable {
    /// Room for every route the cap keeps (and `unmatched`) at most half full, so probes stay
    /// short; a router has a fixed set of templates, so the table never needs to grow.
    fn new(route_cap: usize) -> Self {
        let slots = (route_cap.saturating_add(2)).next_power_of_two() * 2;
        Self {
            slots: (0..slots).map(|_| OnceLock::new()).collect(),
            overflow: RouteSlot::new(OTHER_LABEL_VALUE),
        }
    }

    fn slot(&self, route: &str) -> &RouteSlot {
        let mask = self.slots.len() - 1;
        let start = route_hash(route) as usize & mask;
        for probe in 0..self.slots.len() {
            let slot = self.slots[(start + probe) & mask].get_or_init(|| RouteSlot::new(route));
            if *slot.route == *route {
                return slot;
            }
        }
        &self.overflow
    }
}

impl ApiMetrics {
    pub(crate) fn new(r: &Registry, config: &CatalogueConfig) -> Result<Self, RegistryError> {
        let route_cap = Some(config.route_cap);
        let series = ApiSeries {
            routes: Arc::new(RouteTable::new(config.route_cap)),
            requests: r.dynamic(
                spec_counter(
                    "rtx_http_requests_total",
                    "HTTP requests served, by method, route template and status code.",
                    &["method", "route", "status"],
                ),
                &[None, route_cap, Some(64)],
            )?,
            duration: r.dynamic(
                MetricSpec::histogram(
                    "rtx_http_request_duration_seconds",
                    "HTTP request duration in seconds, by method and route template.",
                    LATENCY_BUCKETS,
                )
                .with_native(NativeConfig::LATENCY)
                .with_unit("seconds")
                .with_labels(&["method", "route"])
                .with_exemplars(),
                &[None, route_cap],
            )?,
            in_flight: r.gauge(MetricSpec::gauge(
                "rtx_http_requests_in_flight",
                "HTTP requests being served.",
            ))?,
            connections_active: r.gauge(MetricSpec::gauge(
                "rtx_http_connections_active",
                "Open HTTP connections on the engine's listeners, WebSocket connections included.",
            ))?,
            connections_closed: r.dense(
                spec_counter(
                    "rtx_http_connections_closed_total",
                    "HTTP connections the server closed itself, by reason (timeouts and limits).",
                    &["reason"],
                ),
                [&names_of::<ConnectionCloseReason>()],
            )?,
        };
        Ok(Self {
            series: Arc::new(series),
        })
    }

    /// Records a finished request. `route` is the route template (`/api/orders/{id}`), never the
    /// raw path; use [`UNMATCHED_ROUTE`] when nothing matched.
    pub fn record_request(&self, method: HttpMethod, route: &str, status: u16, elapsed: Duration) {
        self.route(method, route).record(status, elapsed);
    }

    /// The handles of one route template and method, resolved on their first request and
    /// found afterwards without a lock or an allocation. Routes past the route cap share the
    /// `__other__` series, as the families fold them; once the table holds every route it has
    /// room for (only possible past the cap), further routes share one entry whose span name
    /// is the method alone, as OpenTelemetry names a server span without a route.
    pub(crate) fn route(&self, method: HttpMethod, route: &str) -> &RouteRequests {
        let slot = self.series.routes.slot(route);
        slot.methods[method.index()].get_or_init(|| {
            let overflowed = std::ptr::eq(slot, &self.series.routes.overflow);
            let span_name = if overflowed {
                method.as_str().into()
            } else {
                format!("{} {}", method.as_str(), slot.route).into()
            };
            // Past the table, `route` is one of many: the handles are the folded series'.
            let label = if overflowed { OTHER_LABEL_VALUE } else { route };
            Box::new(RouteRequests {
                span_name,
                route: slot.route.clone(),
                method,
                duration: self.series.duration.get(&[method.as_str(), label]),
                statuses: std::array::from_fn(|_| OnceLock::new()),
                requests: self.series.requests.clone(),
            })
        })
    }

    /// The request counter for one label set.
    pub fn requests(&self, method: HttpMethod, route: &str, status: u16) -> Counter {
        self.series
            .requests
            .get(&[method.as_str(), route, itoa::Buffer::new().format(status)])
    }

    /// Marks a request in flight until the guard drops.
    pub fn in_flight(&self) -> InFlight {
        self.series.in_flight.track_in_flight()
    }

    /// Counts a connection as open until the guard drops: hold it as long as the socket.
    pub fn connection(&self) -> InFlight {
        self.series.connections_active.track_in_flight()
    }

    /// Counts a connection the server closed itself, and why.
    pub fn record_connection_closed(&self, reason: ConnectionCloseReason) {
        self.series.connections_closed.get([reason.index()]).inc();
    }
}

/// Database queries and the connection pool.
#[derive(Clone, Debug)]
pub struct DbMetrics {
    duration: Dynamic<Histogram>,
    queries: Dynamic<Counter>,
    pool: Dense<Gauge, 1>,
}

/// Handles for one kind of query (operation and table), resolved once.
#[derive(Clone, Debug)]
pub struct DbQueryMetrics {
    duration: Histogram,
    success: Counter,
    error: Counter,
}

impl DbQueryMetrics {
    /// Records one query.
    #[inline]
    pub fn record(&self, elapsed: Duration, outcome: DbOutcome) {
        self.duration.observe_duration(elapsed);
        match outcome {
            DbOutcome::Success => self.success.inc(),
            DbOutcome::Error => self.error.inc(),
        }
    }
}

impl DbMetrics {
    pub(crate) fn new(r: &Registry, config: &CatalogueConfig) -> Result<Self, RegistryError> {
        let cap = Some(config.label_cap);
        Ok(Self {
            duration: r.dynamic(
                MetricSpec::histogram(
                    "rtx_db_query_duration_seconds",
                    "Database query duration in seconds, by operation and table.",
                    LATENCY_BUCKETS,
                )
                .with_native(NativeConfig::LATENCY)
                .with_unit("seconds")
                .with_labels(&["operation", "table"]),
                &[cap, cap],
            )?,
            queries: r.dynamic(
                spec_counter(
                    "rtx_db_queries_total",
                    "Database queries, by operation, table and outcome.",
                    &["operation", "table", "outcome"],
                ),
                &[cap, cap, None],
            )?,
            pool: r.dense(
                spec_gauge(
                    "rtx_db_pool_connections",
                    "Database pool connections, by state.",
                    &["state"],
                ),
                [&names_of::<PoolState>()],
            )?,
        })
    }

    /// Resolves the handles of one kind of query (`select` on `orders`, …).
    pub fn query(&self, operation: &str, table: &str) -> DbQueryMetrics {
        DbQueryMetrics {
            duration: self.duration.get(&[operation, table]),
            success: self
                .queries
                .get(&[operation, table, DbOutcome::Success.as_str()]),
            error: self
                .queries
                .get(&[operation, table, DbOutcome::Error.as_str()]),
        }
    }

    /// Sets the pool's idle and active connection counts.
    pub fn set_pool(&self, idle: usize, active: usize) {
        self.pool.get([PoolState::Idle.index()]).set(idle as f64);
        self.pool
            .get([PoolState::Active.index()])
            .set(active as f64);
    }
}

/// Identity for `rtx_build_info`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildInfo {
    /// Service version.
    pub version: String,
    /// Source commit.
    pub commit: String,
    /// Compiler version.
    pub rustc: String,
}

impl Default for BuildInfo {
    fn default() -> Self {
        Self {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            commit: "unknown".to_owned(),
            rustc: "unknown".to_owned(),
        }
    }
}

/// Tokio runtime gauges, build info and uptime.
#[derive(Clone, Debug)]
pub struct RuntimeMetrics {
    /// Live tokio tasks (the Rust counterpart of goroutines).
    pub tasks_alive: Gauge,
    /// Runtime worker threads.
    pub workers: Gauge,
    /// Share of worker time spent busy since the previous reading.
    pub busy_ratio: Gauge,
    /// Tasks waiting in the runtime's global queue.
    pub global_queue_depth: Gauge,
}

impl RuntimeMetrics {
    pub(crate) fn new(
        r: &Registry,
        build: &BuildInfo,
        started: Instant,
    ) -> Result<Self, RegistryError> {
        r.info(
            MetricSpec::info(
                "rtx_build_info",
                "Build of the running engine; the value is always 1.",
            )
            .with_labels(&["version", "commit", "rustc"]),
            &[&build.version, &build.commit, &build.rustc],
        )?;
        let uptime = r.gauge(
            MetricSpec::gauge("rtx_uptime_seconds", "Seconds since the engine started.")
                .with_unit("seconds"),
        )?;
        r.on_collect(move || uptime.set(started.elapsed().as_secs_f64()));
        let metrics = Self {
            tasks_alive: r.gauge(MetricSpec::gauge(
                "rtx_runtime_tasks_alive",
                "Live tokio tasks.",
            ))?,
            workers: r.gauge(MetricSpec::gauge(
                "rtx_runtime_workers",
                "Tokio runtime worker threads.",
            ))?,
            busy_ratio: r.gauge(
                MetricSpec::gauge(
                    "rtx_runtime_busy_ratio",
                    "Share of worker time spent running tasks since the previous reading.",
                )
                .with_unit("ratio"),
            )?,
            global_queue_depth: r.gauge(MetricSpec::gauge(
                "rtx_runtime_global_queue_depth",
                "Tasks waiting in the tokio runtime's global queue.",
            ))?,
        };
        #[cfg(feature = "tokio-runtime")]
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let sampler = RuntimeSampler::new(handle, metrics.clone());
            r.on_collect(move || sampler.sample());
        }
        Ok(metrics)
    }
}

/// Reads the tokio runtime's own counters into the runtime gauges.
#[cfg(feature = "tokio-runtime")]
#[derive(Debug)]
pub struct RuntimeSampler {
    handle: tokio::runtime::Handle,
    gauges: RuntimeMetrics,
    previous: Mutex<(Instant, Duration)>,
}

#[cfg(feature = "tokio-runtime")]
impl RuntimeSampler {
    /// Samples `handle` into `gauges`.
    pub fn new(handle: tokio::runtime::Handle, gauges: RuntimeMetrics) -> Self {
        let busy = total_busy(&handle);
        Self {
            handle,
            gauges,
            previous: Mutex::new((Instant::now(), busy)),
        }
    }

    /// Takes one reading.
    pub fn sample(&self) {
        let m = self.handle.metrics();
        let workers = m.num_workers();
        self.gauges.tasks_alive.set(m.num_alive_tasks() as f64);
        self.gauges.workers.set(workers as f64);
        self.gauges
            .global_queue_depth
            .set(m.global_queue_depth() as f64);
        let busy = total_busy(&self.handle);
        let now = Instant::now();
        let mut previous = self.previous.lock().unwrap_or_else(PoisonError::into_inner);
        let wall = now.duration_since(previous.0).as_secs_f64() * workers as f64;
        if wall > 0.0 {
            let ratio = busy.saturating_sub(previous.1).as_secs_f64() / wall;
            self.gauges.busy_ratio.set(ratio.clamp(0.0, 1.0));
        }
        *previous = (now, busy);
    }
}

#[cfg(feature = "tokio-runtime")]
fn total_busy(handle: &tokio::runtime::Handle) -> Duration {
    let m = handle.metrics();
    (0..m.num_workers())
        .map(|w| m.worker_total_busy_duration(w))
        .sum()
}

/// The monitoring layer's own families: alerts, logs, spans, health checks.
#[derive(Clone, Debug)]
pub struct SelfMetrics {
    /// Firing alerts, by name and severity.
    pub alerts_firing: Dynamic<Gauge>,
    /// Alerts that went to firing, by name and severity.
    pub alerts_fired: Dynamic<Counter>,
    notifications: Dense<Counter, 1>,
    log_events: Dense<Counter, 1>,
    /// Log events dropped because the writer's buffer was full.
    pub log_events_dropped: Counter,
    /// Spans handed to the exporter and accepted by the collector.
    pub spans_exported: Counter,
    /// Spans dropped (queue full, collector unreachable).
    pub spans_dropped: Counter,
    /// Health check status (0 unhealthy, 1 degraded, 2 healthy), by check.
    pub health_status: Dynamic<Gauge>,
    /// Health check run time, by check.
    pub health_duration: Dynamic<Histogram>,
}

impl SelfMetrics {
    pub(crate) fn new(r: &Registry, config: &CatalogueConfig) -> Result<Self, RegistryError> {
        let cap = Some(config.label_cap);
        Ok(Self {
            alerts_firing: r.dynamic(
                spec_gauge(
                    "rtx_alerts_firing",
                    "Alerts firing now in the in-process evaluator.",
                    &["alertname", "severity"],
                ),
                &[cap, None],
            )?,
            alerts_fired: r.dynamic(
                spec_counter(
                    "rtx_alerts_fired_total",
                    "Alerts that went to firing.",
                    &["alertname", "severity"],
                ),
                &[cap, None],
            )?,
            notifications: r.dense(
                spec_counter(
                    "rtx_alertmanager_notifications_total",
                    "Notifications sent to Alertmanager, by outcome.",
                    &["outcome"],
                ),
                [&names_of::<NotificationOutcome>()],
            )?,
            log_events: r.dense(
                spec_counter(
                    "rtx_log_events_total",
                    "Log events written, by level.",
                    &["level"],
                ),
                [&names_of::<LogLevel>()],
            )?,
            log_events_dropped: r.counter(MetricSpec::counter(
                "rtx_log_events_dropped_total",
                "Log events dropped because the writer's buffer was full.",
            ))?,
            spans_exported: r.counter(MetricSpec::counter(
                "rtx_spans_exported_total",
                "Spans exported to the collector.",
            ))?,
            spans_dropped: r.counter(MetricSpec::counter(
                "rtx_spans_dropped_total",
                "Spans dropped (export queue full or collector unreachable).",
            ))?,
            health_status: r.dynamic(
                spec_gauge(
                    "rtx_health_check_status",
                    "Health check status: 0 unhealthy, 1 degraded, 2 healthy.",
                    &["check"],
                ),
                &[cap],
            )?,
            health_duration: r.dynamic(
                MetricSpec::histogram(
                    "rtx_health_check_duration_seconds",
                    "Health check run time in seconds.",
                    LATENCY_BUCKETS,
                )
                .with_native(NativeConfig::LATENCY)
                .with_unit("seconds")
                .with_labels(&["check"]),
                &[cap],
            )?,
        })
    }

    /// Counts a notification outcome.
    pub fn record_notification(&self, outcome: NotificationOutcome) {
        self.notifications.get([outcome.index()]).inc();
    }

    /// Counts a log event written.
    #[inline]
    pub fn record_log_event(&self, level: LogLevel) {
        self.log_events.get([level.index()]).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(route_cap: usize) -> ApiMetrics {
        let config = CatalogueConfig {
            route_cap,
            ..CatalogueConfig::default()
        };
        ApiMetrics::new(&Registry::new(), &config).unwrap()
    }

    #[test]
    fn routes_past_the_cap_share_the_other_series_and_keep_their_own_span_name() {
        let api = api(2);
        for route in ["/a", UNMATCHED_ROUTE, "/c", "/a"] {
            api.record_request(HttpMethod::Get, route, 200, Duration::from_millis(1));
        }
        assert_eq!(api.requests(HttpMethod::Get, "/a", 200).get(), 2);
        assert_eq!(api.requests(HttpMethod::Get, UNMATCHED_ROUTE, 200).get(), 1);
        assert_eq!(
            api.requests(HttpMethod::Get, OTHER_LABEL_VALUE, 200).get(),
            1,
            "the third route is past the cap of 2"
        );
        assert_eq!(api.route(HttpMethod::Get, "/c").span_name(), "GET /c");
        assert_eq!(api.series.requests.len(), 3, "no series beyond the cap");
    }

    #[test]
    fn a_full_table_sends_further_routes_to_one_shared_entry() {
        // A cap of 2 gives 8 slots; 40 routes fill them and overflow.
        let api = api(2);
        for i in 0..40 {
            let route = format!("/r/{i}");
            api.record_request(HttpMethod::Post, &route, 201, Duration::from_millis(1));
        }
        let total: u64 = [OTHER_LABEL_VALUE, "/r/0", "/r/1"]
            .iter()
            .map(|route| api.requests(HttpMethod::Post, route, 201).get())
            .sum();
        assert_eq!(total, 40, "every request counted once");
        let overflowed = api.route(HttpMethod::Post, "/r/39");
        assert_eq!(
            overflowed.span_name(),
            "POST",
            "a span named by the method alone"
        );
        assert_eq!(api.series.requests.len(), 3);
    }

    #[test]
    fn statuses_beyond_the_cached_ones_are_still_counted() {
        let api = api(8);
        let statuses = 200..200 + CACHED_STATUSES as u16 + 4;
        for status in statuses.clone() {
            api.record_request(HttpMethod::Get, "/x", status, Duration::from_millis(1));
            api.record_request(HttpMethod::Get, "/x", status, Duration::from_millis(1));
        }
        for status in statuses {
            assert_eq!(
                api.requests(HttpMethod::Get, "/x", status).get(),
                2,
                "{status}"
            );
        }
    }
}
