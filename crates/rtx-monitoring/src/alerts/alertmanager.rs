//! Sends the evaluator's alerts to Alertmanager (`POST /api/v2/alerts`), the way Prometheus
//! does: firing alerts re-sent on an interval with `endsAt` ahead, resolutions sent with
//! `endsAt` at the resolution and repeated while retained, failures retried with backoff. It
//! always sends the latest full set, so an Alertmanager that comes back receives the current
//! state; and it runs on its own task, so a dead Alertmanager never delays evaluation.

use std::sync::Arc;
use std::time::Duration;

use super::evaluate::{Alert, AlertState};
use crate::catalogue::{NotificationOutcome, SelfMetrics};
use crate::time::rfc3339;

/// Credentials for Alertmanager.
#[derive(Clone, PartialEq, Eq)]
pub enum AlertmanagerAuth {
    /// None.
    None,
    /// HTTP basic.
    Basic {
        /// User.
        user: String,
        /// Password.
        password: String,
    },
    /// `Authorization: Bearer`.
    Bearer(String),
}

impl std::fmt::Debug for AlertmanagerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AlertmanagerAuth::None => "None",
            AlertmanagerAuth::Basic { .. } => "Basic(<redacted>)",
            AlertmanagerAuth::Bearer(_) => "Bearer(<redacted>)",
        })
    }
}

/// Where and how to notify.
#[derive(Clone, Debug)]
pub struct AlertmanagerConfig {
    /// Base URLs (`http://127.0.0.1:9093`); every one receives every alert.
    pub urls: Vec<String>,
    /// Credentials.
    pub auth: AlertmanagerAuth,
    /// How often firing alerts are re-sent (Prometheus: 1 minute).
    pub resend_interval: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Labels added to every alert (`service`, `instance`).
    pub extra_labels: Vec<(String, String)>,
    /// Base of the runbook links.
    pub runbook_base: String,
    /// PEM certificates to trust besides the system's (a private CA for `https` URLs).
    pub ca_pem: Option<Vec<u8>>,
}

impl AlertmanagerConfig {
    /// Notifies `urls` with defaults: 1 minute resend, 5 s timeout.
    pub fn new(urls: Vec<String>) -> Self {
        Self {
            urls,
            auth: AlertmanagerAuth::None,
            resend_interval: Duration::from_secs(60),
            timeout: Duration::from_secs(5),
            extra_labels: Vec::new(),
            runbook_base: "docs/RUNBOOKS.md".to_owned(),
            ca_pem: None,
        }
    }
}

fn payload(alerts: &[Alert], config: &AlertmanagerConfig, now_unix: f64) -> serde_json::Value {
    let ends_ahead = (config.resend_interval.as_secs_f64() * 4.0).max(60.0);
    let items: Vec<serde_json::Value> = alerts
        .iter()
        .filter(|a| a.state != AlertState::Pending)
        .map(|a| {
            let mut labels = serde_json::Map::new();
            labels.insert("alertname".into(), a.name.into());
            labels.insert("severity".into(), a.severity.into());
            for (k, v) in &config.extra_labels {
                labels.insert(k.clone(), v.clone().into());
            }
            for (k, v) in &a.labels {
                labels.insert(k.clone(), v.clone().into());
            }
            let ends_at = match (a.state, a.resolved_at) {
                (AlertState::Resolved, Some(at)) => at,
                _ => now_unix + ends_ahead,
            };
            serde_json::json!({
                "labels": labels,
                "annotations": {
                    "summary": a.summary,
                    "description": a.description,
                    "runbook_url": format!("{}#{}", config.runbook_base, a.runbook),
                },
                "startsAt": rfc3339(a.fired_at.unwrap_or(a.active_since)),
                "endsAt": rfc3339(ends_at),
            })
        })
        .collect();
    serde_json::Value::Array(items)
}

/// The HTTP client: rustls for `https` URLs, trusting the system's roots and `ca_pem`.
fn client(config: &AlertmanagerConfig) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder().timeout(config.timeout);
    if let Some(pem) = &config.ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| format!("bad CA certificate: {e}"))?;
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(|e| e.to_string())
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    body: &str,
    config: &AlertmanagerConfig,
) -> Result<(), String> {
    let mut request = client
        .post(format!("{}/api/v2/alerts", url.trim_end_matches('/')))
        .header("content-type", "application/json")
        .body(body.to_owned());
    request = match &config.auth {
        AlertmanagerAuth::None => request,
        AlertmanagerAuth::Basic { user, password } => request.basic_auth(user, Some(password)),
        AlertmanagerAuth::Bearer(token) => request.bearer_auth(token),
    };
    match request.send().await {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(format!("Alertmanager answered {}", r.status())),
        Err(e) => {
            // reqwest's own message hides the cause (refused, TLS, timeout): show the chain.
            let mut message = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                message.push_str(": ");
                message.push_str(&cause.to_string());
                source = cause.source();
            }
            Err(message)
        }
    }
}

/// Runs until `shutdown` flips: sends on every change of the alert set and every
/// `resend_interval`, retrying failures with exponential backoff (1 s doubling to 30 s or the
/// resend interval, whichever is shorter).
pub async fn run(
    config: AlertmanagerConfig,
    mut alerts: tokio::sync::watch::Receiver<Arc<Vec<Alert>>>,
    metrics: Option<SelfMetrics>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let client = match client(&config) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the Alertmanager client; notifications are off");
            return;
        }
    };
    let record = |outcome| {
        if let Some(m) = &metrics {
            m.record_notification(outcome);
        }
    };
    // Per URL: when the next attempt is due, and the current backoff.
    let mut next_due: Vec<tokio::time::Instant> =
        vec![tokio::time::Instant::now(); config.urls.len()];
    let mut backoff: Vec<Duration> = vec![Duration::from_secs(1); config.urls.len()];
    loop {
        let current = alerts.borrow_and_update().clone();
        let now = tokio::time::Instant::now();
        if !current.is_empty() {
            let body = payload(&current, &config, crate::time::unix_now()).to_string();
            for (i, url) in config.urls.iter().enumerate() {
                if next_due[i] > now {
                    continue;
                }
                match post(&client, url, &body, &config).await {
                    Ok(()) => {
                        record(NotificationOutcome::Success);
                        backoff[i] = Duration::from_secs(1);
                        next_due[i] = now + config.resend_interval;
                    }
                    Err(e) => {
                        record(NotificationOutcome::Failure);
                        tracing::warn!(alertmanager = %url, error = %e, retry_in_ms = backoff[i].as_millis() as u64, "alert notification failed");
                        next_due[i] = now + backoff[i];
                        // Never wait longer than a resend interval: a recovered Alertmanager
                        // hears the current state within one.
                        backoff[i] = (backoff[i] * 2)
                            .min(Duration::from_secs(30))
                            .min(config.resend_interval);
                    }
                }
            }
        }
        let wake = next_due
            .iter()
            .min()
            .copied()
            .unwrap_or(now + config.resend_interval)
            .max(now + Duration::from_millis(50));
        tokio::select! {
            changed = alerts.changed() => {
                if changed.is_err() {
                    return;
                }
                // A change is sent at once to every Alertmanager that is not backing off.
                let now = tokio::time::Instant::now();
                for (due, b) in next_due.iter_mut().zip(&backoff) {
                    if *b == Duration::from_secs(1) {
                        *due = now;
                    }
                }
            }
            () = tokio::time::sleep_until(wake) => {}
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn payload_follows_the_v2_api() {
        let alert = Alert {
            name: "LPDisconnected",
            severity: "critical",
            labels: BTreeMap::from([("lp".to_owned(), "OANDA".to_owned())]),
            state: AlertState::Firing,
            value: 0.0,
            summary: "LP OANDA is disconnected".into(),
            description: "d".into(),
            runbook: "lpdisconnected".into(),
            active_since: 1_800_000_000.0,
            fired_at: Some(1_800_000_030.0),
            resolved_at: None,
        };
        let mut config = AlertmanagerConfig::new(vec![]);
        config
            .extra_labels
            .push(("service".into(), "rtx-engine".into()));
        let p = payload(std::slice::from_ref(&alert), &config, 1_800_000_060.0);
        assert_eq!(p[0]["labels"]["alertname"], "LPDisconnected");
        assert_eq!(p[0]["labels"]["lp"], "OANDA");
        assert_eq!(p[0]["labels"]["service"], "rtx-engine");
        assert_eq!(p[0]["startsAt"], rfc3339(1_800_000_030.0));
        assert_eq!(
            p[0]["endsAt"],
            rfc3339(1_800_000_300.0),
            "endsAt 4 resend intervals ahead"
        );
        assert!(p[0]["annotations"]["runbook_url"]
            .as_str()
            .unwrap()
            .ends_with("#lpdisconnected"));
        let resolved = Alert {
            state: AlertState::Resolved,
            resolved_at: Some(1_800_000_100.0),
            ..alert
        };
        let p = payload(&[resolved], &config, 1_800_000_200.0);
        assert_eq!(
            p[0]["endsAt"],
            rfc3339(1_800_000_100.0),
            "a resolution ends at the resolution"
        );
        assert_eq!(
            format!("{:?}", AlertmanagerAuth::Bearer("s3cret".into())),
            "Bearer(<redacted>)"
        );
    }
}
