//! `rtx-engine`: the reference trading backend. With no subcommand it serves.

mod api;
mod config;
mod listener;
mod market;
mod server;
mod sim;
mod store;
mod trading;

use std::process::ExitCode;

use clap::Parser;

use config::{Cli, Command, Config};

fn print(text: &str) -> ExitCode {
    use std::io::Write;
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = write!(std::io::stdout(), "{text}");
    if !text.ends_with('\n') {
        let _ = writeln!(std::io::stdout());
    }
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(&cli.settings) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("rtx-engine: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Some(Command::CheckConfig) => print(&format!("configuration OK: {config:#?}")),
        Some(Command::Rules) => print(&rtx_monitoring::alerts::render_rules(
            &server::alert_rules(&config),
            server::RUNBOOK_BASE,
        )),
        Some(Command::Dashboard) => print(&format!(
            "{:#}",
            rtx_monitoring::dashboard::render_dashboard(&rtx_monitoring::dashboard::default_rows())
        )),
        Some(Command::MetricsDoc) => {
            let registry = rtx_monitoring::metrics::Registry::new();
            match rtx_monitoring::catalogue::TradingMetrics::new(
                &registry,
                &server::catalogue_config(&config),
            ) {
                Ok(_) => print(&rtx_monitoring::catalogue::render_markdown(&registry)),
                Err(e) => {
                    eprintln!("rtx-engine: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(Command::PrometheusRule) => print(&server::prometheus_rule(&config)),
        Some(Command::Runbooks) => print(&rtx_monitoring::alerts::render_runbooks(
            &server::alert_rules(&config),
        )),
        Some(Command::RuleTests) => print(&rtx_monitoring::alerts::render_rule_tests(
            &server::alert_rules(&config),
            "prometheus_alerts.yml",
            server::RUNBOOK_BASE,
        )),
        None => {
            let logging = rtx_monitoring::logging::LogConfig {
                filter: config.log_level.clone(),
                redact_keys: config.logging.redact_keys.clone(),
                buffer_bytes: config.logging.buffer_bytes,
                ..rtx_monitoring::logging::LogConfig::new(
                    &config.service_name,
                    &config.service_version,
                )
            };
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("rtx-engine: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(server::serve(config, logging)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    // Logging may not be up (that may be the error): stderr always is.
                    eprintln!("rtx-engine: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
