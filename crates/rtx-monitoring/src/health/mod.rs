//! Health checks: a registry of async checks, each run in the background on its own interval
//! and timeout, and the liveness and readiness verdicts that probes read without waiting.
//!
//! Owns check scheduling and verdicts. It must not make a probe wait on a check, and it knows
//! nothing of HTTP (the `http` module renders the verdicts).

mod builtin;
mod report;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

pub use builtin::{MemoryCheck, TaskCheck, UptimeCheck};
pub use report::{CheckReport, HealthReport};

use crate::catalogue::SelfMetrics;
use crate::metrics::{Gauge, Histogram};

/// The three states of a check and of a verdict, worst last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// Working as intended.
    Healthy,
    /// Working, with reduced capacity or margin.
    Degraded,
    /// Not working.
    Unhealthy,
}

impl Status {
    /// `healthy`, `degraded` or `unhealthy`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Healthy => "healthy",
            Status::Degraded => "degraded",
            Status::Unhealthy => "unhealthy",
        }
    }

    /// The IETF health-check draft's name: `pass`, `warn` or `fail`.
    pub fn as_ietf(self) -> &'static str {
        match self {
            Status::Healthy => "pass",
            Status::Degraded => "warn",
            Status::Unhealthy => "fail",
        }
    }

    /// `rtx_health_check_status`: 2 healthy, 1 degraded, 0 unhealthy.
    pub fn gauge_value(self) -> f64 {
        match self {
            Status::Healthy => 2.0,
            Status::Degraded => 1.0,
            Status::Unhealthy => 0.0,
        }
    }
}

/// What one run of a check found.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckResult {
    /// The verdict.
    pub status: Status,
    /// A sentence for the operator.
    pub message: String,
    /// The observed value, if the check measures one.
    pub value: Option<f64>,
    /// Its unit (`bytes`, `seconds`, `tasks`, …).
    pub unit: Option<&'static str>,
}

impl CheckResult {
    /// A verdict with a message and no measurement.
    pub fn new(status: Status, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            value: None,
            unit: None,
        }
    }

    /// Adds the observed value and its unit.
    pub fn with_value(mut self, value: f64, unit: &'static str) -> Self {
        self.value = Some(value);
        self.unit = Some(unit);
        self
    }

    /// Grades `value` against two thresholds: degraded above `warn`, unhealthy above `critical`.
    pub fn graded(value: f64, warn: f64, critical: f64, unit: &'static str, what: &str) -> Self {
        let status = if value > critical {
            Status::Unhealthy
        } else if value > warn {
            Status::Degraded
        } else {
            Status::Healthy
        };
        Self::new(
            status,
            format!("{what} {value} {unit} (warn above {warn}, critical above {critical})"),
        )
        .with_value(value, unit)
    }
}

/// The future a check returns.
pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = CheckResult> + Send + 'a>>;

/// A health check. Implement it, or pass a closure to [`Health::add_fn`].
pub trait Check: Send + Sync + 'static {
    /// Runs the check once.
    fn run(&self) -> CheckFuture<'_>;
}

/// Which verdicts a check counts in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// Liveness and readiness: in-process conditions (memory, tasks).
    Both,
    /// Readiness only: downstreams (database, LPs), which must never restart the process.
    Readiness,
    /// Reported, never counted (uptime).
    Informational,
}

/// How and how often a check runs.
#[derive(Clone, Debug)]
pub struct CheckSpec {
    /// Name, the `check` label.
    pub name: String,
    /// Time between runs.
    pub interval: Duration,
    /// A run that takes longer is unhealthy with "timed out after …".
    pub timeout: Duration,
    /// Which verdicts it counts in.
    pub probe: Probe,
}

impl CheckSpec {
    /// A spec with a 5 s interval and a 1 s timeout.
    pub fn new(name: &str, probe: Probe) -> Self {
        Self {
            name: name.to_owned(),
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(1),
            probe,
        }
    }

    /// Sets the interval.
    pub fn every(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Sets the timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

struct Registered {
    spec: CheckSpec,
    check: Arc<dyn Check>,
    status_gauge: Gauge,
    duration: Histogram,
}

/// The latest run of one check.
#[derive(Clone, Debug)]
pub(crate) struct LastRun {
    pub(crate) outcome: CheckResult,
    pub(crate) finished_unix: f64,
    pub(crate) took: Duration,
}

const STARTING: u8 = 0;
const READY: u8 = 1;
const DRAINING: u8 = 2;

struct Inner {
    checks: RwLock<Vec<Arc<Registered>>>,
    results: RwLock<BTreeMap<String, LastRun>>,
    phase: AtomicU8,
    /// Changes whenever a result or the phase does, so renderings can be cached.
    generation: AtomicU64,
    version: String,
    started: Instant,
    metrics: Option<SelfMetrics>,
}

/// The check registry and the verdicts. Clones share state.
#[derive(Clone)]
pub struct Health {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("phase", &self.inner.phase.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Health {
    /// A registry for a service `version`, recording into `metrics` when given.
    pub fn new(version: &str, metrics: Option<SelfMetrics>) -> Self {
        Self {
            inner: Arc::new(Inner {
                checks: RwLock::new(Vec::new()),
                results: RwLock::new(BTreeMap::new()),
                phase: AtomicU8::new(STARTING),
                generation: AtomicU64::new(0),
                version: version.to_owned(),
                started: Instant::now(),
                metrics,
            }),
        }
    }

    /// Adds a check. Call [`Health::start`] (once) to run them.
    pub fn add(&self, spec: CheckSpec, check: impl Check) {
        let (status_gauge, duration) = match &self.inner.metrics {
            Some(m) => (
                m.health_status.get(&[&spec.name]),
                m.health_duration.get(&[&spec.name]),
            ),
            None => (Gauge::noop(), Histogram::noop()),
        };
        let registered = Arc::new(Registered {
            spec,
            check: Arc::new(check),
            status_gauge,
            duration,
        });
        self.inner
            .checks
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(registered);
    }

    /// Adds a check from an async closure:
    ///
    /// ```
    /// # use rtx_monitoring::health::{Health, CheckSpec, Probe, CheckResult, Status};
    /// let health = Health::new("1.0.0", None);
    /// health.add_fn(CheckSpec::new("cache", Probe::Readiness), || async {
    ///     CheckResult::new(Status::Healthy, "cache answers")
    /// });
    /// ```
    pub fn add_fn<F, Fut>(&self, spec: CheckSpec, f: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = CheckResult> + Send + 'static,
    {
        struct FnCheck<F>(F);
        impl<F, Fut> Check for FnCheck<F>
        where
            F: Fn() -> Fut + Send + Sync + 'static,
            Fut: Future<Output = CheckResult> + Send + 'static,
        {
            fn run(&self) -> CheckFuture<'_> {
                Box::pin((self.0)())
            }
        }
        self.add(spec, FnCheck(f));
    }

    /// The checks registered so far, copied out so no lock is held while they run or report.
    fn registered(&self) -> Vec<Arc<Registered>> {
        self.inner
            .checks
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Runs every check now, all at once, then each on its own interval in the background,
    /// until the returned handles are aborted or the runtime stops. Returns after the first
    /// round, so the first probe already has results; the round takes as long as its slowest
    /// check (at most that check's timeout), not the sum of them.
    pub async fn start(&self) -> Vec<tokio::task::JoinHandle<()>> {
        let checks = self.registered();
        self.run_concurrently(&checks).await;
        checks
            .into_iter()
            .map(|c| {
                let health = self.clone();
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(c.spec.interval);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    tick.tick().await;
                    loop {
                        tick.tick().await;
                        health.run_once(Arc::clone(&c)).await;
                    }
                })
            })
            .collect()
    }

    /// Runs each of `checks` once, each on its own task so that none waits for another, and
    /// returns when all have finished.
    async fn run_concurrently(&self, checks: &[Arc<Registered>]) {
        let mut round = tokio::task::JoinSet::new();
        for c in checks {
            let (health, c) = (self.clone(), Arc::clone(c));
            round.spawn(async move { health.run_once(c).await });
        }
        while let Some(finished) = round.join_next().await {
            if let Err(e) = finished {
                if e.is_panic() {
                    // A panicking check is a bug: it fails `start`, not just its own task.
                    std::panic::resume_unwind(e.into_panic());
                }
            }
        }
    }

    async fn run_once(&self, c: Arc<Registered>) {
        let started = Instant::now();
        let outcome = match tokio::time::timeout(c.spec.timeout, c.check.run()).await {
            Ok(outcome) => outcome,
            Err(_) => CheckResult::new(
                Status::Unhealthy,
                format!("timed out after {:?}", c.spec.timeout),
            ),
        };
        let took = started.elapsed();
        c.status_gauge.set(outcome.status.gauge_value());
        c.duration.observe_duration(took);
        let run = LastRun {
            outcome,
            finished_unix: crate::time::unix_now(),
            took,
        };
        self.inner
            .results
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(c.spec.name.clone(), run);
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// A number that changes whenever a check result or the start-up/drain phase changes.
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    /// Time since this registry was created.
    pub fn uptime(&self) -> Duration {
        self.inner.started.elapsed()
    }

    /// Start-up is done: readiness may pass from now on.
    pub fn set_ready(&self) {
        let _ =
            self.inner
                .phase
                .compare_exchange(STARTING, READY, Ordering::AcqRel, Ordering::Acquire);
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Shutdown has begun: readiness fails from now on, whatever the checks say.
    pub fn set_draining(&self) {
        self.inner.phase.store(DRAINING, Ordering::Release);
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Liveness: in-process checks only. Never waits on a check.
    pub fn liveness(&self) -> HealthReport {
        self.report(false)
    }

    /// Readiness: every counted check, and the start-up and drain state.
    pub fn readiness(&self) -> HealthReport {
        self.report(true)
    }

    fn report(&self, readiness: bool) -> HealthReport {
        let checks = self.registered();
        let results = self
            .inner
            .results
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let mut status = Status::Healthy;
        let mut reports = BTreeMap::new();
        for c in &checks {
            let counted = match c.spec.probe {
                Probe::Both => true,
                Probe::Readiness => readiness,
                Probe::Informational => false,
            };
            if !readiness && c.spec.probe == Probe::Readiness {
                continue;
            }
            let report = match results.get(&c.spec.name) {
                Some(run) => CheckReport::from_run(run, c.spec.probe),
                None => CheckReport::not_run(c.spec.probe),
            };
            // A check that has not run yet blocks readiness but never fails liveness.
            let effective = if results.contains_key(&c.spec.name) || readiness {
                report.status
            } else {
                Status::Healthy
            };
            if counted {
                status = status.max(effective);
            }
            reports.insert(c.spec.name.clone(), report);
        }
        let mut reason = None;
        if readiness {
            match self.inner.phase.load(Ordering::Acquire) {
                STARTING => {
                    status = Status::Unhealthy;
                    reason = Some("starting up".to_owned());
                }
                DRAINING => {
                    status = Status::Unhealthy;
                    reason = Some("shutting down: draining connections".to_owned());
                }
                _ => {}
            }
        }
        HealthReport {
            status,
            reason,
            version: self.inner.version.clone(),
            uptime_seconds: self.inner.started.elapsed().as_secs_f64(),
            checks: reports,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_hanging_check_is_unhealthy_within_its_timeout_and_liveness_keeps_answering() {
        let health = Health::new("t", None);
        health.add_fn(
            CheckSpec::new("hangs", Probe::Both).timeout(Duration::from_millis(200)),
            || async {
                std::future::pending::<()>().await;
                unreachable!()
            },
        );
        health.add_fn(CheckSpec::new("db", Probe::Readiness), || async {
            CheckResult::new(Status::Healthy, "ok")
        });
        let _tasks = health.start().await;
        let live = health.liveness();
        assert_eq!(live.status, Status::Unhealthy);
        assert!(
            live.checks["hangs"]
                .message
                .contains("timed out after 200ms"),
            "{:?}",
            live.checks["hangs"]
        );
        assert!(
            !live.checks.contains_key("db"),
            "liveness never looks at downstreams"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_checks_of_a_round_run_at_the_same_time() {
        use std::sync::atomic::AtomicUsize;

        let running = Arc::new(AtomicUsize::new(0));
        let most_at_once = Arc::new(AtomicUsize::new(0));
        let health = Health::new("t", None);
        for name in ["slow-a", "slow-b"] {
            let (running, most_at_once) = (Arc::clone(&running), Arc::clone(&most_at_once));
            health.add_fn(CheckSpec::new(name, Probe::Both), move || {
                let (running, most_at_once) = (Arc::clone(&running), Arc::clone(&most_at_once));
                async move {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most_at_once.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    running.fetch_sub(1, Ordering::SeqCst);
                    CheckResult::new(Status::Healthy, "ok")
                }
            });
        }
        let started = tokio::time::Instant::now();
        let _tasks = health.start().await;
        assert_eq!(
            most_at_once.load(Ordering::SeqCst),
            2,
            "both checks were running at once"
        );
        assert!(
            started.elapsed() < Duration::from_millis(600),
            "the round took {:?}, as long as both checks in turn",
            started.elapsed()
        );
        assert_eq!(health.liveness().checks.len(), 2);
    }

    #[tokio::test]
    async fn readiness_fails_until_ready_and_again_while_draining() {
        let health = Health::new("t", None);
        health.add_fn(CheckSpec::new("lps", Probe::Readiness), || async {
            CheckResult::new(Status::Degraded, "1 of 3 down")
        });
        let _tasks = health.start().await;
        assert_eq!(health.readiness().status, Status::Unhealthy);
        health.set_ready();
        assert_eq!(health.readiness().status, Status::Degraded);
        assert_eq!(health.liveness().status, Status::Healthy);
        health.set_draining();
        let r = health.readiness();
        assert_eq!(r.status, Status::Unhealthy);
        assert_eq!(
            r.reason.as_deref(),
            Some("shutting down: draining connections")
        );
        health.set_ready();
        assert_eq!(
            health.readiness().status,
            Status::Unhealthy,
            "draining is final"
        );
    }

    #[test]
    fn grading_uses_both_thresholds() {
        assert_eq!(
            CheckResult::graded(5.0, 10.0, 20.0, "tasks", "live").status,
            Status::Healthy
        );
        assert_eq!(
            CheckResult::graded(15.0, 10.0, 20.0, "tasks", "live").status,
            Status::Degraded
        );
        assert_eq!(
            CheckResult::graded(25.0, 10.0, 20.0, "tasks", "live").status,
            Status::Unhealthy
        );
    }
}
