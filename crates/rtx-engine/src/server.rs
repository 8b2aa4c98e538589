//! Start-up and shutdown: opens the database, restores accounts, positions and orders, starts
//! the LP sessions, the mark-to-market loop and the simulated flow, and serves HTTP until
//! SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::sync::Arc;

use rtx_monitoring::catalogue::{
    BuildInfo, CatalogueConfig, LpSpec, OrderType, Side, TradingMetrics,
};
use rtx_monitoring::health::{
    CheckSpec, Health, MemoryCheck, Outcome, Probe, Status, TaskCheck, UptimeCheck,
};
use rtx_monitoring::http::{HealthEndpoint, MetricsEndpoint};
use rtx_monitoring::logging::LogConfig;
use rtx_monitoring::metrics::{Registry, RegistryError};
use tokio::sync::watch;

use crate::config::{Config, Secret};
use crate::market::lp::{self, LpSession};
use crate::market::Market;
use crate::store::{AccountRow, OrderRecord, Store, StoreError};
use crate::trading::accounts::{Account, Accounts};
use crate::trading::{risk, OrderRequest, Router};

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listen address is taken or not ours.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The metric catalogue could not be registered.
    #[error("cannot register metrics: {0}")]
    Metrics(#[from] RegistryError),
    /// The database could not be opened or read.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// Logging could not start.
    #[error("{0}")]
    Logging(#[from] rtx_monitoring::logging::LogError),
    /// The server failed while running.
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

fn catalogue_config(config: &Config) -> CatalogueConfig {
    CatalogueConfig {
        symbols: config.symbols.clone(),
        lps: config
            .lps
            .iter()
            .map(|name| LpSpec {
                name: name.clone(),
                protocol: "FIX".to_owned(),
            })
            .collect(),
        slo_target: config.slo_target,
        slo_window: config.slo_window,
        account_cap: config.account_cap,
        route_cap: config.route_cap,
        label_cap: config.label_cap,
        build: BuildInfo {
            version: config.service_version.clone(),
            commit: env!("RTX_BUILD_COMMIT").to_owned(),
            rustc: env!("RTX_BUILD_RUSTC").to_owned(),
        },
    }
}

/// Where the `runbook_url` annotations point: the runbooks in this repository.
pub const RUNBOOK_BASE: &str = "docs/RUNBOOKS.md";

/// The default rules with this configuration's threshold overrides.
pub fn alert_rules(config: &Config) -> Vec<rtx_monitoring::alerts::AlertRule> {
    let mut rules = rtx_monitoring::alerts::default_rules();
    for (name, threshold) in &config.alerts.thresholds {
        rtx_monitoring::alerts::set_threshold(&mut rules, name, *threshold);
    }
    for rule in &mut rules {
        if let Some(secs) = config.alerts.for_secs.get(rule.name) {
            rule.for_duration = std::time::Duration::from_secs(*secs);
        }
    }
    rules
}

/// Alertmanager settings from the configuration: basic-auth credentials move from the URL
/// userinfo into the client's auth, so they never appear in a URL that might be logged.
fn alertmanager_config(
    config: &Config,
    service_name: &str,
) -> Option<rtx_monitoring::alerts::AlertmanagerConfig> {
    use rtx_monitoring::alerts::{AlertmanagerAuth, AlertmanagerConfig};
    if config.alertmanager_urls.is_empty() {
        return None;
    }
    let mut auth = match &config.alerts.alertmanager_bearer_token {
        Some(token) => AlertmanagerAuth::Bearer(token.clone()),
        None => AlertmanagerAuth::None,
    };
    let urls = config
        .alertmanager_urls
        .iter()
        .map(|u| {
            let url = u.expose();
            match (url.find("://"), url.rfind('@')) {
                (Some(scheme), Some(at)) if at > scheme => {
                    if let Some((user, password)) = url[scheme + 3..at].split_once(':') {
                        auth = AlertmanagerAuth::Basic {
                            user: user.to_owned(),
                            password: password.to_owned(),
                        };
                    }
                    format!("{}{}", &url[..scheme + 3], &url[at + 1..])
                }
                _ => url.to_owned(),
            }
        })
        .collect();
    let mut am = AlertmanagerConfig::new(urls);
    am.auth = auth;
    am.resend_interval = std::time::Duration::from_secs(config.alerts.resend_interval_secs);
    am.extra_labels = vec![
        ("service".to_owned(), service_name.to_owned()),
        ("instance".to_owned(), config.listen_addr.to_string()),
    ];
    am.runbook_base = RUNBOOK_BASE.to_owned();
    am.ca_pem = config.alerts.alertmanager_ca_file.as_ref().and_then(|path| match std::fs::read(path) {
        Ok(pem) => Some(pem),
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "cannot read the Alertmanager CA file; using system roots only");
            None
        }
    });
    Some(am)
}

fn demo_accounts(config: &Config) -> Vec<AccountRow> {
    (1..=config.trading.demo_accounts)
        .map(|i| AccountRow {
            id: format!("demo-{i}"),
            // The first three trade like professionals: their flow goes to an LP (A-book).
            group: if i <= 3 { "professional" } else { "retail" }.to_owned(),
            balance: config.trading.demo_balance,
        })
        .collect()
}

fn side_of(name: &str) -> Side {
    if name == "sell" {
        Side::Sell
    } else {
        Side::Buy
    }
}

/// Rebuilds accounts and positions from the database.
async fn restore_accounts(
    store: &Store,
    market: &Market,
    metrics: &TradingMetrics,
) -> Result<Accounts, StoreError> {
    let mut accounts = Accounts::default();
    for row in store.accounts().await? {
        let gauges = metrics.accounts.account(&row.id);
        accounts.insert(Account::new(row.id, row.group, row.balance, gauges));
    }
    for fill in store.fills().await? {
        if let (Some(account), Some(symbol)) =
            (accounts.get(&fill.account_id), market.symbol(&fill.symbol))
        {
            account.lock().replay_fill(
                market,
                symbol,
                side_of(&fill.side),
                fill.volume,
                fill.price,
            );
        }
    }
    Ok(accounts)
}

fn pending_request(router: &Router, record: &OrderRecord) -> Option<OrderRequest> {
    let order_type = match record.order_type.as_str() {
        "limit" => OrderType::Limit,
        "stop" => OrderType::Stop,
        _ => return None,
    };
    Some(OrderRequest {
        account: Arc::clone(router.accounts().get(&record.account_id)?),
        symbol: router.market().symbol(&record.symbol)?,
        side: side_of(&record.side),
        order_type,
        volume: record.volume,
        price: record.price,
        client_order_id: record.client_order_id.clone(),
    })
}

/// The checks of SPEC §5: memory, tasks and uptime in process; the database and the LPs for
/// readiness only, so that a database blip never restarts the pod.
fn register_checks(
    config: &Config,
    metrics: &TradingMetrics,
    store: &Store,
    lps: &[Arc<LpSession>],
    started: std::time::Instant,
) -> Health {
    let h = &config.health;
    let health = Health::new(&config.service_version, Some(metrics.monitoring.clone()));
    let every = std::time::Duration::from_millis(h.interval_ms);
    let timeout = std::time::Duration::from_millis(h.timeout_ms);
    let spec = |name: &str, probe| CheckSpec::new(name, probe).every(every).timeout(timeout);
    health.add(
        spec("memory", Probe::Both),
        MemoryCheck {
            warn_bytes: h.memory_warn_bytes,
            critical_bytes: h.memory_critical_bytes,
        },
    );
    health.add(
        spec("tasks", Probe::Both),
        TaskCheck {
            warn: h.tasks_warn,
            critical: h.tasks_critical,
            ..TaskCheck::current()
        },
    );
    health.add(
        spec("uptime", Probe::Informational),
        UptimeCheck { started },
    );
    let store = store.clone();
    let slow = std::time::Duration::from_millis(h.database_slow_ms);
    health.add_fn(spec("database", Probe::Readiness), move || {
        let store = store.clone();
        async move {
            match store.ping().await {
                Ok(took) => {
                    let status = if took > slow {
                        Status::Degraded
                    } else {
                        Status::Healthy
                    };
                    Outcome::new(
                        status,
                        format!("ping answered in {took:?} (degraded above {slow:?})"),
                    )
                    .with_value(took.as_secs_f64(), "seconds")
                }
                Err(e) => Outcome::new(Status::Unhealthy, format!("ping failed: {e}")),
            }
        }
    });
    let sessions = lps.to_vec();
    let lp_spec = CheckSpec::new("liquidity_providers", Probe::Readiness)
        .every(std::time::Duration::from_millis(h.lp_interval_ms))
        .timeout(timeout);
    health.add_fn(lp_spec, move || {
        let down: Vec<String> = sessions
            .iter()
            .filter(|s| !s.is_connected())
            .map(|s| s.name().to_owned())
            .collect();
        let total = sessions.len();
        async move {
            let connected = total - down.len();
            let status = match connected {
                0 => Status::Unhealthy,
                n if n < total => Status::Degraded,
                _ => Status::Healthy,
            };
            let message = if down.is_empty() {
                format!("all {total} LPs connected")
            } else {
                format!(
                    "{connected} of {total} LPs connected; down: {}",
                    down.join(", ")
                )
            };
            Outcome::new(status, message).with_value(connected as f64, "connections")
        }
    });
    health
}

/// Serves until a shutdown signal, then drains and stops cleanly.
///
/// # Errors
/// When the address cannot be bound, the catalogue cannot be registered, or the database
/// cannot be opened.
pub async fn serve(config: Config, logging: LogConfig) -> Result<(), ServeError> {
    let started = std::time::Instant::now();
    let registry = if config.monitoring {
        Registry::new()
    } else {
        Registry::disabled()
    };
    let metrics = TradingMetrics::new(&registry, &catalogue_config(&config))?;
    let log_guard = rtx_monitoring::logging::try_init(logging, Some(metrics.monitoring.clone()))?;
    let result = run(config, registry, metrics, started).await;
    if let Err(e) = &result {
        rtx_monitoring::fatal!(error = %e, "rtx-engine stopped on an error");
    }
    // Everything logged before and during shutdown reaches stdout before the process exits.
    log_guard.flush(std::time::Duration::from_secs(5));
    result
}

async fn run(
    config: Config,
    registry: Registry,
    metrics: TradingMetrics,
    started: std::time::Instant,
) -> Result<(), ServeError> {
    let store = Store::open(config.database_url.expose(), metrics.db.clone()).await?;
    let ping = store.ping().await?;
    tracing::info!(database = %config.database_url.redacted(), ping_us = ping.as_micros() as u64, "database ready");
    store.seed_accounts(&demo_accounts(&config)).await?;
    let market = Arc::new(Market::new(metrics.clone()));
    let accounts = Arc::new(restore_accounts(&store, &market, &metrics).await?);
    let (recent, _) = store.recent_orders(10_000).await?;
    let fill_seq = store.max_fill_seq().await?;
    let lps: Vec<Arc<LpSession>> = metrics
        .lp_ids()
        .zip(config.lps.iter().zip(&config.lp_behaviour))
        .map(|(id, (name, behaviour))| {
            LpSession::new(
                id,
                name.clone(),
                behaviour.clone(),
                Arc::clone(&market),
                metrics.clone(),
            )
        })
        .collect();
    let router = Arc::new(Router::new(
        Arc::clone(&market),
        lps.clone(),
        accounts,
        store.clone(),
        metrics.clone(),
        config.trading.clone(),
        recent.into_iter().rev().collect(),
        fill_seq,
    ));
    for record in store.pending_orders().await? {
        if let Some(request) = pending_request(&router, &record) {
            router.restore_pending(request, record);
        }
    }

    let (stop, stopped) = watch::channel(false);
    let mut tasks = Vec::new();
    for session in &lps {
        tasks.push(tokio::spawn(lp::run(Arc::clone(session), stopped.clone())));
    }
    tasks.push(tokio::spawn(risk::run(
        Arc::clone(&router),
        metrics.clone(),
        stopped.clone(),
    )));
    tasks.push(tokio::spawn(crate::sim::run(
        Arc::clone(&router),
        config.sim_order_rate,
        stopped.clone(),
    )));

    let evaluator = rtx_monitoring::alerts::Evaluator::new(
        alert_rules(&config),
        registry.clone(),
        std::time::Duration::from_secs(config.alerts.window_secs),
        Some(metrics.monitoring.clone()),
    )
    .with_history_cap(config.alerts.history_cap);
    tasks.push(tokio::spawn(
        evaluator
            .clone()
            .run(config.alert_eval_interval, stopped.clone()),
    ));
    if let Some(am) = alertmanager_config(&config, &config.service_name) {
        tracing::info!(
            alertmanagers = am.urls.len(),
            "sending alerts to Alertmanager"
        );
        tasks.push(tokio::spawn(rtx_monitoring::alerts::run_notifier(
            am,
            evaluator.subscribe(),
            Some(metrics.monitoring.clone()),
            stopped.clone(),
        )));
    }
    tasks.push(tokio::spawn(runtime_collector(
        registry.clone(),
        config.runtime_interval,
        stopped.clone(),
    )));
    let health = register_checks(&config, &metrics, &store, &lps, started);
    let health_tasks = health.start().await;

    let endpoint = MetricsEndpoint::new(registry)
        .with_bearer_token(config.metrics_token.as_ref().map(Secret::expose));
    let probes = HealthEndpoint::new(health.clone(), &config.service_name).router();
    let app = crate::api::app(
        Arc::clone(&router),
        metrics,
        endpoint
            .router()
            .merge(probes)
            .merge(rtx_monitoring::http::alerts_router(evaluator)),
        config.admin_token.as_ref().map(Secret::expose),
    );
    let listener = tokio::net::TcpListener::bind(config.listen_addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen_addr,
            source,
        })?;
    let local = listener.local_addr()?;
    tracing::info!(listen_addr = %local, "{} {} listening", config.service_name, config.service_version);
    // Start-up is done: the database is migrated and state restored. Readiness now follows the
    // checks, which still hold it at 503 until an LP is connected.
    health.set_ready();
    let drain = std::time::Duration::from_millis(config.shutdown.drain_delay_ms);
    let deadline = std::time::Duration::from_millis(config.shutdown.timeout_ms);
    let draining = health.clone();
    let shutdown = async move {
        shutdown_signal().await;
        draining.set_draining();
        tracing::info!(
            drain_ms = drain.as_millis() as u64,
            "shutdown: /ready answers 503; serving on so load balancers notice"
        );
        tokio::spawn(async move {
            tokio::time::sleep(deadline).await;
            rtx_monitoring::fatal!(
                timeout_ms = deadline.as_millis() as u64,
                "shutdown did not finish in time; exiting"
            );
            std::process::exit(1);
        });
        tokio::time::sleep(drain).await;
    };
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    // No new requests arrive now; let orders already inside the router finish and be stored.
    router.drain().await;
    let _ = stop.send(true);
    for task in tasks {
        let _ = task.await;
    }
    for task in health_tasks {
        task.abort();
    }
    store.close().await;
    tracing::info!("{} stopped cleanly", config.service_name);
    Ok(())
}

/// The runtime collector (the seed's `runtime.go`): reads process and tokio figures into their
/// gauges on an interval even when nobody scrapes, so the memory and task alerts see them.
async fn runtime_collector(
    registry: Registry,
    interval: std::time::Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => registry.refresh(),
            _ = stop.changed() => return,
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
