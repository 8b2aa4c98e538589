//! Gauges: values that go up and down, set from wherever the truth lives.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// A floating-point gauge. Unlike counters it is one shared atomic: `set` must win over every
/// earlier write, which per-thread copies cannot express, and gauges are set far less often
/// than counters are incremented.
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct Gauge {
    value: Option<Arc<AtomicU64>>,
}

impl Gauge {
    pub(crate) fn new() -> Self {
        Self {
            value: Some(Arc::new(AtomicU64::new(0f64.to_bits()))),
        }
    }

    /// A gauge that records nothing.
    pub fn noop() -> Self {
        Self { value: None }
    }

    /// Sets the value.
    #[inline]
    pub fn set(&self, value: f64) {
        if let Some(v) = &self.value {
            v.store(value.to_bits(), Relaxed);
        }
    }

    /// Adds `delta` (negative to subtract).
    #[inline]
    pub fn add(&self, delta: f64) {
        if let Some(v) = &self.value {
            let _ = v.fetch_update(Relaxed, Relaxed, |bits| {
                Some((f64::from_bits(bits) + delta).to_bits())
            });
        }
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.add(1.0);
    }

    /// Subtracts one.
    #[inline]
    pub fn dec(&self) {
        self.add(-1.0);
    }

    /// Sets 1 for true, 0 for false.
    #[inline]
    pub fn set_bool(&self, value: bool) {
        self.set(if value { 1.0 } else { 0.0 });
    }

    /// The current value.
    pub fn get(&self) -> f64 {
        self.value
            .as_ref()
            .map_or(0.0, |v| f64::from_bits(v.load(Relaxed)))
    }

    /// Increments now and decrements when the returned guard drops: for in-flight gauges.
    pub fn track_in_flight(&self) -> InFlight {
        self.inc();
        InFlight {
            gauge: self.clone(),
        }
    }
}

/// Decrements its gauge when dropped, so an early return or a panic cannot leak an in-flight
/// count.
#[derive(Debug)]
#[must_use = "the in-flight count drops as soon as the guard does"]
pub struct InFlight {
    gauge: Gauge,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}
