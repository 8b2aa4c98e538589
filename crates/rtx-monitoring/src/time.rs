//! RFC 3339 timestamps in UTC without a date-time crate: probes, logs and alerts only ever
//! format UTC, and a formatter this small is cheaper than a dependency.
//!
//! Internal; [`rfc3339`] is public as [`crate::logging::rfc3339`], the format of every
//! timestamp the library writes.

/// Seconds since the Unix epoch.
#[cfg(feature = "tokio-runtime")]
pub(crate) fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Formats Unix seconds as RFC 3339 UTC with microseconds, e.g. `2026-11-24T05:13:09.123456Z`:
/// the format of a log line's `timestamp`, a health check's `last_run` and an alert's times.
/// An application that writes its own timestamps (an order's creation time) with it reads the
/// same as its logs, so the two can be matched by eye and compared as text.
///
/// ```
/// use rtx_monitoring::logging::rfc3339;
///
/// assert_eq!(rfc3339(0.0), "1970-01-01T00:00:00.000000Z");
/// assert_eq!(rfc3339(1_795_497_189.123_456), "2026-11-24T05:13:09.123456Z");
/// ```
pub fn rfc3339(unix_seconds: f64) -> String {
    let micros_total = (unix_seconds * 1e6).round() as i64;
    let secs = micros_total.div_euclid(1_000_000);
    let micros = micros_total.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Writes `YYYY-MM-DDTHH:MM:SS.` for Unix second `secs` into `out` without allocating: the
/// prefix a log line's timestamp shares with every other line of the same second.
pub(crate) fn write_second_prefix(secs: u64, out: &mut [u8; 20]) {
    let secs = i64::try_from(secs).unwrap_or(i64::MAX);
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    let fields: [(i64, usize); 6] = [
        (year.clamp(0, 9999), 4),
        (i64::from(month), 2),
        (i64::from(day), 2),
        (rem / 3600, 2),
        ((rem % 3600) / 60, 2),
        (rem % 60, 2),
    ];
    let mut at = 0;
    for ((value, width), separator) in fields.into_iter().zip(*b"--T::.") {
        let mut v = value;
        for digit in out[at..at + width].iter_mut().rev() {
            *digit = b'0' + (v % 10) as u8;
            v /= 10;
        }
        out[at + width] = separator;
        at += width + 1;
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn the_second_prefix_matches_the_full_format() {
        for secs in [0u64, 951_782_400, 1_795_497_189, 4_102_444_799] {
            let mut prefix = [0u8; 20];
            super::write_second_prefix(secs, &mut prefix);
            assert_eq!(
                &prefix[..],
                &rfc3339(secs as f64).as_bytes()[..20],
                "{secs}"
            );
        }
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(0.0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(rfc3339(951_782_400.5), "2000-02-29T00:00:00.500000Z");
        assert_eq!(
            rfc3339(1_795_497_189.123_456),
            "2026-11-24T05:13:09.123456Z"
        );
    }
}
