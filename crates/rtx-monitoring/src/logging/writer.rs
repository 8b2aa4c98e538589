//! The non-blocking line writer: callers append to a buffer bounded in bytes and return at
//! once; one background thread writes batches to the sink. When the buffer is full, DEBUG and
//! INFO lines are dropped and counted; WARN and above may use a reserve beyond the bound, and
//! are only dropped, counted and reported on stderr when even that is full. After a batch, a
//! line "N log events dropped" tells the reader what is missing.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::metrics::Counter;

/// Where lines go.
pub enum Sink {
    /// Standard output.
    Stdout,
    /// Any writer (a file, a pipe, a test buffer).
    Writer(Box<dyn Write + Send>),
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Sink::Stdout => "Stdout",
            Sink::Writer(_) => "Writer",
        })
    }
}

/// Buffered bytes that make the writer worth waking before its timer. A wake is a futex system
/// call that costs several microseconds; at 512 KiB it is paid once per ~2,000 lines (64 KiB
/// cost ~20 ns per line in the logging bench). The 10 ms timer still bounds a line's wait.
const WAKE_BYTES: usize = 512 * 1024;
/// How long a line waits at most before the writer picks it up unprompted.
const WRITER_TICK: Duration = Duration::from_millis(10);

struct State {
    buffer: Vec<u8>,
    writer_waiting: bool,
    writing: bool,
    closed: bool,
}

pub(crate) struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    drained: Condvar,
    capacity: usize,
    reserve: usize,
    dropped_since_report: AtomicU64,
    dropped: Counter,
}

/// Handle for appending lines; clones share the buffer.
#[derive(Clone)]
pub struct LineWriter {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for LineWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineWriter")
            .field("capacity", &self.shared.capacity)
            .finish_non_exhaustive()
    }
}

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    shared.state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl LineWriter {
    /// Starts the writer thread. `capacity` bounds the buffer in bytes; `dropped_line` renders
    /// the "N log events dropped" line.
    ///
    /// # Errors
    /// When the thread cannot be spawned.
    pub fn start(
        sink: Sink,
        capacity: usize,
        dropped: Counter,
        dropped_line: fn(u64) -> Vec<u8>,
    ) -> std::io::Result<Self> {
        // Both halves of the double buffer are allocated at the bound up front, so `push`
        // never grows a buffer: how far a buffer fills before the writer swaps it depends on
        // when the writer thread is scheduled, and growing on demand made the number of
        // reallocations (and a caller's latency) depend on that timing. The allocator maps the
        // pages lazily, so the resident cost is the high-water mark actually reached.
        let bound = capacity + reserve_for(capacity);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                buffer: Vec::with_capacity(bound),
                writer_waiting: false,
                writing: false,
                closed: false,
            }),
            wake: Condvar::new(),
            drained: Condvar::new(),
            capacity,
            reserve: reserve_for(capacity),
            dropped_since_report: AtomicU64::new(0),
            dropped,
        });
        let thread_shared = Arc::clone(&shared);
        let batch = Vec::with_capacity(bound);
        std::thread::Builder::new()
            .name("rtx-log-writer".into())
            .spawn(move || write_loop(&thread_shared, sink, batch, dropped_line))?;
        Ok(Self { shared })
    }

    /// Appends one line without blocking on I/O. Returns false when it was dropped.
    pub fn push(&self, line: &[u8], important: bool) -> bool {
        let shared = &*self.shared;
        let mut state = lock(shared);
        let limit = if important {
            shared.capacity + shared.reserve
        } else {
            shared.capacity
        };
        if state.buffer.len() + line.len() > limit || state.closed {
            drop(state);
            shared.dropped.inc();
            shared.dropped_since_report.fetch_add(1, Ordering::Relaxed);
            if important {
                // Never silently: the operator still sees that an error went missing.
                let _ = writeln!(
                    std::io::stderr(),
                    "rtx-monitoring: log buffer full, dropped a WARN/ERROR line"
                );
            }
            return false;
        }
        state.buffer.extend_from_slice(line);
        // Waking the writer costs a system call, more than formatting a line: wake it only for
        // a line that matters or a buffer worth writing; otherwise it wakes on its own timer.
        let wake = state.writer_waiting
            && (important || state.buffer.len() >= WAKE_BYTES.min(shared.capacity / 2));
        drop(state);
        if wake {
            shared.wake.notify_one();
        }
        true
    }

    /// Waits until everything appended so far has been written, for at most `timeout`.
    /// Returns false on timeout (the sink is blocked).
    pub fn flush(&self, timeout: Duration) -> bool {
        let shared = &*self.shared;
        let deadline = Instant::now() + timeout;
        let mut state = lock(shared);
        shared.wake.notify_one();
        while !state.buffer.is_empty() || state.writing {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            state = match shared.drained.wait_timeout(state, deadline - now) {
                Ok((s, _)) => s,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        true
    }

    /// Flushes, then stops the writer thread.
    pub fn close(&self, timeout: Duration) -> bool {
        let flushed = self.flush(timeout);
        lock(&self.shared).closed = true;
        self.shared.wake.notify_one();
        flushed
    }

    /// Bytes waiting to be written.
    pub fn pending_bytes(&self) -> usize {
        lock(&self.shared).buffer.len()
    }
}

/// Room beyond `capacity` that WARN and above may use.
fn reserve_for(capacity: usize) -> usize {
    capacity / 4 + 64 * 1024
}

/// The writer thread: swaps the filled buffer for the empty `batch` (both allocated at the
/// bound, so neither ever grows) and writes it.
fn write_loop(shared: &Shared, sink: Sink, mut batch: Vec<u8>, dropped_line: fn(u64) -> Vec<u8>) {
    let mut out: Box<dyn Write> = match sink {
        Sink::Stdout => Box::new(std::io::stdout()),
        Sink::Writer(w) => w,
    };
    loop {
        {
            let mut state = lock(shared);
            while state.buffer.is_empty() && !state.closed {
                state.writer_waiting = true;
                state = match shared.wake.wait_timeout(state, WRITER_TICK) {
                    Ok((s, _)) => s,
                    Err(poisoned) => poisoned.into_inner().0,
                };
                state.writer_waiting = false;
                if state.buffer.is_empty()
                    && shared.dropped_since_report.load(Ordering::Relaxed) > 0
                {
                    break;
                }
            }
            if state.buffer.is_empty() && state.closed {
                shared.drained.notify_all();
                return;
            }
            std::mem::swap(&mut batch, &mut state.buffer);
            state.writing = true;
        }
        // A blocked sink stalls only this thread; callers keep appending until the bound.
        let mut ok = out.write_all(&batch).is_ok();
        let dropped = shared.dropped_since_report.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            ok &= out.write_all(&dropped_line(dropped)).is_ok();
        }
        ok &= out.flush().is_ok();
        if !ok {
            let _ = writeln!(
                std::io::stderr(),
                "rtx-monitoring: writing log lines failed"
            );
        }
        batch.clear();
        let mut state = lock(shared);
        state.writing = false;
        if state.buffer.is_empty() {
            shared.drained.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// A sink that blocks until the test lets it write.
    struct Gate {
        open: mpsc::Receiver<()>,
        out: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Gate {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let _ = self.open.recv();
            self.out.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn dropped_line(n: u64) -> Vec<u8> {
        format!("{n} log events dropped\n").into_bytes()
    }

    #[test]
    fn a_blocked_sink_drops_and_counts_then_reports_once_it_drains() {
        let (open, gate) = mpsc::channel();
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = Sink::Writer(Box::new(Gate {
            open: gate,
            out: Arc::clone(&out),
        }));
        let writer = LineWriter::start(sink, 100, Counter::noop(), dropped_line).unwrap();
        assert!(writer.push(b"first line\n", false));
        std::thread::sleep(Duration::from_millis(50)); // the writer takes it and blocks
        let mut accepted = 0;
        let started = Instant::now();
        for _ in 0..50 {
            if writer.push(b"0123456789\n", false) {
                accepted += 1;
            }
        }
        assert!(
            started.elapsed() < Duration::from_millis(50),
            "push never waits on the sink"
        );
        assert!(accepted > 0 && accepted < 50);
        for _ in 0..200 {
            let _ = open.send(());
        }
        assert!(writer.flush(Duration::from_secs(5)));
        std::thread::sleep(Duration::from_millis(250));
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        assert!(text.starts_with("first line\n"));
        assert!(
            text.contains(&format!("{} log events dropped\n", 50 - accepted)),
            "{text}"
        );
    }

    #[test]
    fn important_lines_use_the_reserve() {
        let (open, gate) = mpsc::channel();
        let out = Arc::new(Mutex::new(Vec::new()));
        let writer = LineWriter::start(
            Sink::Writer(Box::new(Gate { open: gate, out })),
            10,
            Counter::noop(),
            dropped_line,
        )
        .unwrap();
        assert!(writer.push(b"123456789\n", false));
        assert!(!writer.push(b"x\n", false));
        assert!(writer.push(b"an error line\n", true));
        drop(open);
    }
}
