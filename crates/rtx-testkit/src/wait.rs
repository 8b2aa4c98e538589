//! Polling for a condition with a deadline: the deadline bounds a test, the poll ends it as soon
//! as the condition holds. Owns nothing else; in particular it knows nothing of the engine.

use std::time::{Duration, Instant};

/// How long [`wait_until`] and friends sleep between looks, unless [`Poll::every`] says otherwise.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(50);

/// A polling schedule: look at once, then every `interval` until `timeout` has passed.
///
/// ```
/// use std::time::Duration;
/// let mut n = 0;
/// rtx_testkit::Poll::up_to(Duration::from_secs(5))
///     .every(Duration::from_millis(1))
///     .until("three looks", || {
///         n += 1;
///         n == 3
///     });
/// assert_eq!(n, 3);
/// ```
#[derive(Clone, Copy, Debug)]
#[must_use]
pub struct Poll {
    timeout: Duration,
    interval: Duration,
}

impl Poll {
    /// Polls for at most `timeout`, every [`DEFAULT_INTERVAL`].
    pub const fn up_to(timeout: Duration) -> Self {
        Self {
            timeout,
            interval: DEFAULT_INTERVAL,
        }
    }

    /// Looks again every `interval` instead.
    pub const fn every(self, interval: Duration) -> Self {
        Self { interval, ..self }
    }

    /// Blocks until `condition` holds.
    ///
    /// # Panics
    /// When it still does not hold after the timeout, naming `what` was awaited.
    #[track_caller]
    pub fn until(self, what: &str, mut condition: impl FnMut() -> bool) {
        self.until_ok(what, || if condition() { Ok(()) } else { Err("") });
    }

    /// Blocks until `check` returns `Ok`, and returns its value.
    ///
    /// # Panics
    /// When it still returns `Err` after the timeout, with `what` and the last `Err`.
    #[track_caller]
    pub fn until_ok<T, E: std::fmt::Display>(
        self,
        what: &str,
        mut check: impl FnMut() -> Result<T, E>,
    ) -> T {
        let deadline = Instant::now() + self.timeout;
        loop {
            let last = match check() {
                Ok(value) => return value,
                Err(last) => last,
            };
            let now = Instant::now();
            if now >= deadline {
                self.timed_out(what, &last);
            }
            std::thread::sleep(self.interval.min(deadline - now));
        }
    }

    /// Like [`Poll::until`], sleeping on the tokio timer between looks.
    ///
    /// # Panics
    /// When it still does not hold after the timeout.
    pub async fn until_async(self, what: &str, mut condition: impl AsyncFnMut() -> bool) {
        self.until_ok_async(
            what,
            async || {
                if condition().await {
                    Ok(())
                } else {
                    Err("")
                }
            },
        )
        .await;
    }

    /// Like [`Poll::until_ok`], sleeping on the tokio timer between looks.
    ///
    /// # Panics
    /// When it still returns `Err` after the timeout.
    pub async fn until_ok_async<T, E: std::fmt::Display>(
        self,
        what: &str,
        mut check: impl AsyncFnMut() -> Result<T, E>,
    ) -> T {
        let deadline = Instant::now() + self.timeout;
        loop {
            let last = match check().await {
                Ok(value) => return value,
                Err(last) => last,
            };
            let now = Instant::now();
            if now >= deadline {
                self.timed_out(what, &last);
            }
            tokio::time::sleep(self.interval.min(deadline - now)).await;
        }
    }

    #[track_caller]
    fn timed_out(self, what: &str, last: &dyn std::fmt::Display) -> ! {
        let last = last.to_string();
        if last.is_empty() {
            panic!("timed out after {:?} waiting for {what}", self.timeout)
        }
        panic!(
            "timed out after {:?} waiting for {what}; last seen: {last}",
            self.timeout
        )
    }
}

/// Blocks until `condition` holds, looking every [`DEFAULT_INTERVAL`].
///
/// # Panics
/// When it still does not hold after `timeout`.
#[track_caller]
pub fn wait_until(timeout: Duration, what: &str, condition: impl FnMut() -> bool) {
    Poll::up_to(timeout).until(what, condition);
}

/// Blocks until `check` returns `Ok`, and returns its value. The last `Err` goes into the panic
/// message: make it say what was seen instead.
///
/// # Panics
/// When it still returns `Err` after `timeout`.
#[track_caller]
pub fn wait_for<T, E: std::fmt::Display>(
    timeout: Duration,
    what: &str,
    check: impl FnMut() -> Result<T, E>,
) -> T {
    Poll::up_to(timeout).until_ok(what, check)
}

/// [`wait_until`] for async tests.
///
/// # Panics
/// When it still does not hold after `timeout`.
pub async fn wait_until_async(timeout: Duration, what: &str, condition: impl AsyncFnMut() -> bool) {
    Poll::up_to(timeout).until_async(what, condition).await;
}

/// [`wait_for`] for async tests.
///
/// # Panics
/// When it still returns `Err` after `timeout`.
pub async fn wait_for_async<T, E: std::fmt::Display>(
    timeout: Duration,
    what: &str,
    check: impl AsyncFnMut() -> Result<T, E>,
) -> T {
    Poll::up_to(timeout).until_ok_async(what, check).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_returns_the_first_ok_value() {
        let mut n = 0;
        let got = Poll::up_to(Duration::from_secs(5))
            .every(Duration::from_millis(1))
            .until_ok("the third look", || {
                n += 1;
                if n == 3 {
                    Ok(n)
                } else {
                    Err(format!("look {n}"))
                }
            });
        assert_eq!(got, 3);
    }

    #[test]
    #[should_panic(expected = "waiting for the impossible; last seen: never")]
    fn a_wait_that_times_out_names_what_it_saw_last() {
        wait_for(Duration::from_millis(20), "the impossible", || {
            Err::<(), _>("never")
        });
    }
}
