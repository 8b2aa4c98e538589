//! The standard `process_*` metrics, read from Linux `/proc` at scrape time, under the names
//! every Prometheus client uses so that existing dashboards work unchanged.

use std::fs;

use super::gauge::Gauge;
use super::registry::{MetricSpec, Registry, RegistryError};

/// Linux reports CPU times in clock ticks of `USER_HZ`, which is 100 on every architecture Rust
/// targets; reading it through `sysconf` would need libc for one constant.
const TICKS_PER_SECOND: f64 = 100.0;

/// One reading of the process's resources.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcessSample {
    /// Resident set size in bytes.
    pub resident_bytes: f64,
    /// Virtual memory size in bytes.
    pub virtual_bytes: f64,
    /// User plus system CPU time in seconds.
    pub cpu_seconds: f64,
    /// Open file descriptors.
    pub open_fds: f64,
    /// The soft limit on open file descriptors.
    pub max_fds: f64,
    /// OS threads.
    pub threads: f64,
    /// Start time in seconds since the Unix epoch.
    pub start_time_seconds: f64,
}

impl ProcessSample {
    /// Reads `/proc/self`; `None` where there is no procfs (not Linux).
    pub fn read() -> Option<Self> {
        let stat = fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name, which is in parentheses and may contain spaces.
        let after = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        let field = |n: usize| -> f64 {
            fields
                .get(n - 3)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0)
        };
        let boot_time = fs::read_to_string("/proc/stat").ok().and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("btime ")
                    .and_then(|v| v.trim().parse::<f64>().ok())
            })
        })?;
        let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
        let vm_rss_kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        let open_fds = fs::read_dir("/proc/self/fd")
            .map(|d| d.count() as f64)
            .unwrap_or(0.0);
        let max_fds = fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|l| {
                l.lines()
                    .find(|line| line.starts_with("Max open files"))
                    .and_then(|line| {
                        line.split_whitespace()
                            .nth(3)
                            .and_then(|v| v.parse::<f64>().ok())
                    })
            })
            .unwrap_or(0.0);
        Some(Self {
            resident_bytes: vm_rss_kib * 1024.0,
            virtual_bytes: field(23),
            cpu_seconds: (field(14) + field(15)) / TICKS_PER_SECOND,
            open_fds,
            max_fds,
            threads: field(20),
            start_time_seconds: boot_time + field(22) / TICKS_PER_SECOND,
        })
    }
}

/// Registers the process metrics and refreshes them before every scrape.
///
/// # Errors
/// When a `process_*` name is already registered.
pub fn register_process_collector(registry: &Registry) -> Result<(), RegistryError> {
    let cpu = registry.external_counter(
        MetricSpec::counter(
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
        )
        .with_unit("seconds"),
    )?;
    let resident = registry.gauge(
        MetricSpec::gauge(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
        )
        .with_unit("bytes"),
    )?;
    let virt = registry.gauge(
        MetricSpec::gauge(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
        )
        .with_unit("bytes"),
    )?;
    let open_fds = registry.gauge(MetricSpec::gauge(
        "process_open_fds",
        "Number of open file descriptors.",
    ))?;
    let max_fds = registry.gauge(MetricSpec::gauge(
        "process_max_fds",
        "Maximum number of open file descriptors.",
    ))?;
    let threads = registry.gauge(MetricSpec::gauge(
        "process_threads",
        "Number of OS threads in the process.",
    ))?;
    let start = registry.gauge(
        MetricSpec::gauge(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
        )
        .with_unit("seconds"),
    )?;
    let set_all = move |s: ProcessSample, gauges: [&Gauge; 7]| {
        let values = [
            s.cpu_seconds,
            s.resident_bytes,
            s.virtual_bytes,
            s.open_fds,
            s.max_fds,
            s.threads,
            s.start_time_seconds,
        ];
        for (g, v) in gauges.iter().zip(values) {
            g.set(v);
        }
    };
    registry.on_collect(move || {
        if let Some(sample) = ProcessSample::read() {
            set_all(
                sample,
                [
                    &cpu, &resident, &virt, &open_fds, &max_fds, &threads, &start,
                ],
            );
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_process_reading_is_plausible() {
        let s = ProcessSample::read().expect("procfs on Linux");
        assert!(s.resident_bytes > 1024.0 * 1024.0);
        assert!(s.virtual_bytes >= s.resident_bytes);
        assert!(s.threads >= 1.0);
        assert!(s.open_fds >= 3.0 && s.max_fds >= s.open_fds);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(s.start_time_seconds <= now + 1.0 && s.start_time_seconds > now - 86_400.0 * 365.0);
    }
}
