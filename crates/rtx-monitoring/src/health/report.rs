//! Verdicts as probes show them: the engine's JSON and the IETF health-check draft format.

use std::collections::BTreeMap;

use super::{LastRun, Probe, Status};
use crate::time::rfc3339;

/// One check in a verdict.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckReport {
    /// Its status.
    pub status: Status,
    /// What it found.
    pub message: String,
    /// The observed value.
    pub value: Option<f64>,
    /// Its unit.
    pub unit: Option<&'static str>,
    /// When it last finished (RFC 3339), `None` before its first run.
    pub last_run: Option<String>,
    /// How long that run took, in seconds.
    pub duration_seconds: Option<f64>,
    /// Which verdicts it counts in.
    pub probe: Probe,
}

impl CheckReport {
    pub(crate) fn from_run(run: &LastRun, probe: Probe) -> Self {
        Self {
            status: run.outcome.status,
            message: run.outcome.message.clone(),
            value: run.outcome.value,
            unit: run.outcome.unit,
            last_run: Some(rfc3339(run.finished_unix)),
            duration_seconds: Some(run.took.as_secs_f64()),
            probe,
        }
    }

    pub(crate) fn not_run(probe: Probe) -> Self {
        Self {
            status: Status::Unhealthy,
            message: "not run yet".to_owned(),
            value: None,
            unit: None,
            last_run: None,
            duration_seconds: None,
            probe,
        }
    }
}

/// A liveness or readiness verdict.
#[derive(Clone, Debug, PartialEq)]
pub struct HealthReport {
    /// Overall status: the worst counted check, or unhealthy while starting or draining.
    pub status: Status,
    /// Why it is unhealthy regardless of the checks (starting up, draining).
    pub reason: Option<String>,
    /// Service version.
    pub version: String,
    /// Seconds since start.
    pub uptime_seconds: f64,
    /// Every check the verdict shows, by name.
    pub checks: BTreeMap<String, CheckReport>,
}

impl HealthReport {
    /// 200 for healthy or degraded, 503 for unhealthy.
    pub fn http_status(&self) -> u16 {
        if self.status == Status::Unhealthy {
            503
        } else {
            200
        }
    }

    /// The engine's own JSON (`docs/HEALTH.md`).
    pub fn to_json(&self) -> serde_json::Value {
        let checks: serde_json::Map<String, serde_json::Value> = self
            .checks
            .iter()
            .map(|(name, c)| {
                let probe = match c.probe {
                    Probe::Both => "liveness,readiness",
                    Probe::Readiness => "readiness",
                    Probe::Informational => "informational",
                };
                let body = serde_json::json!({
                    "status": c.status.as_str(),
                    "message": c.message,
                    "value": c.value,
                    "unit": c.unit,
                    "last_run": c.last_run,
                    "duration_seconds": c.duration_seconds,
                    "counts_in": probe,
                });
                (name.clone(), body)
            })
            .collect();
        let mut body = serde_json::json!({
            "status": self.status.as_str(),
            "version": self.version,
            "uptime_seconds": self.uptime_seconds,
            "checks": checks,
        });
        if let Some(reason) = &self.reason {
            body["reason"] = serde_json::Value::String(reason.clone());
        }
        body
    }

    /// The IETF health-check draft format (`application/health+json`): `pass`/`warn`/`fail`,
    /// `checks` keyed `component:measurement`.
    pub fn to_health_json(&self, service_id: &str) -> serde_json::Value {
        let mut checks = serde_json::Map::new();
        for (name, c) in &self.checks {
            let measurement = match c.unit {
                Some("bytes") => "utilization",
                Some("seconds") if name == "uptime" => "uptime",
                Some("seconds") => "responseTime",
                Some("tasks") => "count",
                Some("connections") => "connections",
                _ => "status",
            };
            let mut entry = serde_json::json!({
                "componentId": name,
                "componentType": if matches!(c.probe, Probe::Readiness) { "component" } else { "system" },
                "status": c.status.as_ietf(),
                "output": c.message,
            });
            if let Some(v) = c.value {
                entry["observedValue"] = v.into();
            }
            if let Some(u) = c.unit {
                entry["observedUnit"] = u.into();
            }
            if let Some(t) = &c.last_run {
                entry["time"] = t.clone().into();
            }
            checks.insert(
                format!("{name}:{measurement}"),
                serde_json::Value::Array(vec![entry]),
            );
        }
        let mut body = serde_json::json!({
            "status": self.status.as_ietf(),
            "version": self.version,
            "serviceId": service_id,
            "checks": checks,
        });
        if let Some(reason) = &self.reason {
            body["output"] = reason.clone().into();
        }
        body
    }
}
