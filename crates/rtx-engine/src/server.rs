//! The HTTP server: wires the monitoring library into axum and runs until SIGTERM or SIGINT.

use rtx_monitoring::catalogue::{BuildInfo, CatalogueConfig, LpSpec, TradingMetrics};
use rtx_monitoring::http::MetricsEndpoint;
use rtx_monitoring::metrics::{Registry, RegistryError};

use crate::config::Config;

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listen address is taken or not ours.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The metric catalogue could not be registered.
    #[error("cannot register metrics: {0}")]
    Metrics(#[from] RegistryError),
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

/// Serves until a shutdown signal.
///
/// # Errors
/// When the address cannot be bound or the catalogue cannot be registered.
pub async fn serve(config: Config) -> Result<(), ServeError> {
    let registry = if config.monitoring {
        Registry::new()
    } else {
        Registry::disabled()
    };
    let _metrics = TradingMetrics::new(&registry, &catalogue_config(&config))?;
    let app = MetricsEndpoint::new(registry)
        .with_bearer_token(config.metrics_token.as_deref())
        .router();
    let listener = tokio::net::TcpListener::bind(config.listen_addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen_addr,
            source,
        })?;
    let local = listener.local_addr()?;
    eprintln!(
        "{} {} listening on {local}",
        config.service_name, config.service_version
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
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
