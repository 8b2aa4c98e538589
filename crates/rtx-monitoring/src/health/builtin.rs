//! The built-in in-process checks: resident memory, live async tasks, uptime.

use std::time::Instant;

use super::{Check, CheckFuture, CheckResult, Status};
use crate::metrics::ProcessSample;

/// Resident memory against two thresholds, in bytes.
#[derive(Clone, Copy, Debug)]
pub struct MemoryCheck {
    /// Degraded above this.
    pub warn_bytes: f64,
    /// Unhealthy above this.
    pub critical_bytes: f64,
}

impl Default for MemoryCheck {
    /// 1 GiB and 2 GiB, the thresholds of the memory alerts.
    fn default() -> Self {
        Self {
            warn_bytes: 1024.0 * 1024.0 * 1024.0,
            critical_bytes: 2.0 * 1024.0 * 1024.0 * 1024.0,
        }
    }
}

impl Check for MemoryCheck {
    fn run(&self) -> CheckFuture<'_> {
        Box::pin(async move {
            match ProcessSample::read() {
                Some(s) => CheckResult::graded(
                    s.resident_bytes,
                    self.warn_bytes,
                    self.critical_bytes,
                    "bytes",
                    "resident memory",
                ),
                None => CheckResult::new(
                    Status::Degraded,
                    "resident memory cannot be read on this platform",
                ),
            }
        })
    }
}

/// Live tokio tasks against two thresholds.
#[derive(Clone, Debug)]
pub struct TaskCheck {
    /// The runtime to count.
    pub handle: tokio::runtime::Handle,
    /// Degraded above this.
    pub warn: f64,
    /// Unhealthy above this.
    pub critical: f64,
}

impl TaskCheck {
    /// Counts the current runtime's tasks with the `TaskCountHigh` threshold (10,000) as warn
    /// and five times it as critical.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn current() -> Self {
        Self {
            handle: tokio::runtime::Handle::current(),
            warn: 10_000.0,
            critical: 50_000.0,
        }
    }
}

impl Check for TaskCheck {
    fn run(&self) -> CheckFuture<'_> {
        Box::pin(async move {
            let alive = self.handle.metrics().num_alive_tasks() as f64;
            CheckResult::graded(alive, self.warn, self.critical, "tasks", "live")
        })
    }
}

/// How long the process has run; informational, always healthy.
#[derive(Clone, Copy, Debug)]
pub struct UptimeCheck {
    /// When the process started.
    pub started: Instant,
}

impl Check for UptimeCheck {
    fn run(&self) -> CheckFuture<'_> {
        Box::pin(async move {
            let seconds = self.started.elapsed().as_secs_f64();
            CheckResult::new(Status::Healthy, format!("up for {seconds:.0} s"))
                .with_value(seconds, "seconds")
        })
    }
}
