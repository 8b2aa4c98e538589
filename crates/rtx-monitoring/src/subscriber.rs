//! [`SpanLogSubscriber`]: one purpose-built `tracing` subscriber for the span layer and the JSON
//! log layer together, in place of `tracing-subscriber`'s `Registry` with the two as layers.
//!
//! Why: on the `Registry` every span pays for machinery our two layers do not use (a boxed map
//! of extensions per layer, a lock around it, a lookup per layer per callback, the per-layer
//! filter bookkeeping), and the registry alone, with no layer at all, already cost more than a
//! whole unsampled span may (`BENCHMARKS.md`, Tracing). Here a span is one record in a store
//! of reused slots (`SpanStore`, below), each behind one uncontended mutex, holding everything the
//! two layers keep (trace identity, the sampled span's record for export, its rendered log
//! fields). A callback looks the span up once. `tracing` stays the API: the same macros,
//! `Span::current()`, `Span::record`.
//!
//! What it does not do: per-layer filters or other layers. It is the stack the engine installs
//! ([`try_init_with_spans`](crate::logging::try_init_with_spans)); an application composing its
//! own `tracing-subscriber` stack keeps [`SpanLayer`] and [`JsonLayer`] as layers, which behave
//! the same (`tests/the_span_log_subscriber_behaves_as_the_layers.rs` holds them to it).
//!
//! One difference: an event below the log filter is disabled at its call site, so it does not
//! become an event of a sampled span either (as a layer, the span layer saw every event).

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use thread_local::ThreadLocal;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use tracing_core::span::Current;
use tracing_subscriber::filter::Targets;

use crate::logging::{JsonLayer, SpanFields, SpanView};
use crate::metrics::TraceIds;
use crate::trace::{FinishedSpan, SpanIdentity, SpanLayer};

/// Spans and JSON logs through one subscriber: see the [module documentation](self).
///
/// ```
/// use rtx_monitoring::subscriber::SpanLogSubscriber;
/// use rtx_monitoring::trace::SpanLayer;
/// let subscriber = SpanLogSubscriber::new(SpanLayer::new(1.0, None));
/// tracing::subscriber::with_default(subscriber, || {
///     let _order = tracing::info_span!("order.execute", order.symbol = "EURUSD").entered();
///     assert!(rtx_monitoring::trace::current_traceparent().is_some());
/// });
/// ```
pub struct SpanLogSubscriber {
    spans: SpanStore,
    /// Each thread's entered spans, innermost last.
    entered: ThreadLocal<RefCell<Vec<Entered>>>,
    tracer: SpanLayer,
    logs: Option<Logs>,
}

/// The JSON layer and the level filter in front of it.
struct Logs {
    json: JsonLayer,
    filter: Targets,
}

impl std::fmt::Debug for SpanLogSubscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanLogSubscriber")
            .field("tracer", &self.tracer)
            .field("logs", &self.logs.as_ref().map(|l| &l.filter))
            .finish_non_exhaustive()
    }
}

/// A span on a thread's stack of entered spans.
struct Entered {
    id: Id,
    /// Entered again while already on the stack: as in the `tracing-subscriber` registry, the
    /// innermost span stays the current one (re-entering an outer span does not make its
    /// fields and ids those of the lines logged next).
    again: bool,
}

/// One slot of the store: an open span, or a free slot waiting for the next one.
#[derive(Default)]
struct SpanRecord {
    /// Bumped each time the slot takes a new span, and part of the span's id, so that a stale
    /// id (of a span closed since) never reaches the span that reuses the slot.
    generation: u32,
    live: bool,
    /// Handles (`Span` values and clones) plus children still open.
    refs: usize,
    metadata: Option<&'static Metadata<'static>>,
    /// The span it opened inside, kept open while this one is: a log line inside this span
    /// walks up through it.
    parent: Option<Id>,
    identity: SpanIdentity,
    /// The record to export, for a sampled span.
    finished: Option<FinishedSpan>,
    /// Its fields rendered for log lines, when `logged`. Kept, cleared, from one span of the
    /// slot to the next rather than moved in and out.
    fields: SpanFields,
    /// Whether the log filter passes the span's level.
    logged: bool,
}

/// Slots in the first page; each next page doubles, so that twenty pages hold 67 million open
/// spans while an idle subscriber holds one small page.
const FIRST_PAGE_BITS: u32 = 6;
const PAGES: usize = 20;
/// A thread keeps at most this many free slots; past it, half go to the shared list, so that
/// slots freed on one thread (a span closed where it did not open) reach the others.
const LOCAL_FREE: usize = 256;

/// The span records: slots in pages that are allocated once and never move, each behind its
/// own mutex, handed out from a free list per thread.
///
/// Why not the `sharded-slab` pool the `tracing-subscriber` registry uses (and this subscriber
/// used first): its lock-free slot life cycle costs several compare-and-swaps per span, and a
/// create, get and clear took 42–50 ns against 21–25 ns for a slot here, in the same run on
/// the machine of `BENCHMARKS.md`; a span's whole budget is 60 ns. An uncontended mutex is two
/// atomic operations, and the free list of the thread that closes a span needs none.
struct SpanStore {
    pages: [OnceLock<Box<[Mutex<SpanRecord>]>>; PAGES],
    /// Slots ever handed out: the next new slot's index.
    next: AtomicUsize,
    free: ThreadLocal<RefCell<Vec<u32>>>,
    shared_free: Mutex<Vec<u32>>,
}

/// The page and offset of slot `index`.
fn locate(index: usize) -> (usize, usize) {
    let shifted = index + (1 << FIRST_PAGE_BITS);
    let page = (usize::BITS - 1 - shifted.leading_zeros() - FIRST_PAGE_BITS) as usize;
    (page, shifted - (1 << (page + FIRST_PAGE_BITS as usize)))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SpanStore {
    fn new() -> Self {
        Self {
            pages: std::array::from_fn(|_| OnceLock::new()),
            next: AtomicUsize::new(0),
            free: ThreadLocal::new(),
            shared_free: Mutex::new(Vec::new()),
        }
    }

    fn slot(&self, index: usize) -> Option<&Mutex<SpanRecord>> {
        let (page, offset) = locate(index);
        self.pages.get(page)?.get()?.get(offset)
    }

    fn local_free(&self) -> &RefCell<Vec<u32>> {
        self.free
            .get_or(|| RefCell::new(Vec::with_capacity(LOCAL_FREE)))
    }

    /// A free slot: this thread's, else a batch from the shared list, else a new one.
    fn take_slot(&self) -> usize {
        let local = self.local_free();
        if let Some(index) = local.borrow_mut().pop() {
            return index as usize;
        }
        {
            let mut shared = lock(&self.shared_free);
            if let Some(index) = shared.pop() {
                let batch = shared.len().min(LOCAL_FREE / 2);
                let at = shared.len() - batch;
                local.borrow_mut().extend(shared.drain(at..));
                return index as usize;
            }
        }
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Opens a span in a free slot, written by `init` in place.
    fn insert(&self, init: impl FnOnce(&mut SpanRecord)) -> Id {
        let index = self.take_slot();
        let (page, offset) = locate(index);
        let page = self
            .pages
            .get(page)
            // As the `tracing-subscriber` registry does when its pool is full: `new_span` has
            // no way to fail, and 67 million spans open at once is a leak, not a load.
            .expect("the span store is full")
            .get_or_init(|| {
                (0..1usize << (page + FIRST_PAGE_BITS as usize))
                    .map(|_| Mutex::default())
                    .collect()
            });
        let mut record = lock(&page[offset]);
        record.generation = record.generation.wrapping_add(1).max(1);
        record.live = true;
        record.refs = 1;
        init(&mut record);
        Id::from_u64((u64::from(record.generation) << 32) | index as u64)
    }

    /// The open span `id`, locked; `None` once it has closed.
    fn get(&self, id: &Id) -> Option<MutexGuard<'_, SpanRecord>> {
        let key = id.into_u64();
        let record = lock(self.slot((key & u64::from(u32::MAX)) as usize)?);
        (record.live && u64::from(record.generation) == key >> 32).then_some(record)
    }

    /// Closes the span `id`, whose locked `record` the caller has emptied of what it takes
    /// along, and gives its slot back: the id is stale from here on (`get` answers `None`), and
    /// the trace state it shared is dropped now rather than at the slot's next use.
    fn release(&self, id: &Id, mut record: MutexGuard<'_, SpanRecord>) {
        record.live = false;
        record.identity = SpanIdentity::default();
        drop(record);
        let index = (id.into_u64() & u64::from(u32::MAX)) as u32;
        let mut local = self.local_free().borrow_mut();
        local.push(index);
        if local.len() > LOCAL_FREE {
            let half = local.len() / 2;
            lock(&self.shared_free).extend(local.drain(..half));
        }
    }
}

/// A span enclosing an event, as the event's log line reads it.
struct StoredSpan<'a> {
    spans: &'a SpanStore,
    id: Id,
}

impl SpanView for StoredSpan<'_> {
    fn ids(&self) -> Option<TraceIds> {
        Some(self.spans.get(&self.id)?.identity.ids)
    }
    fn with_fields<R>(&self, f: impl FnOnce(Option<&SpanFields>) -> R) -> R {
        match self.spans.get(&self.id) {
            Some(record) => f(record.logged.then_some(&record.fields)),
            None => f(None),
        }
    }
}

impl SpanLogSubscriber {
    /// Spans only: ids, sampling and export as `spans` is configured, and no log lines.
    pub fn new(spans: SpanLayer) -> Self {
        Self {
            spans: SpanStore::new(),
            entered: ThreadLocal::new(),
            tracer: spans,
            logs: None,
        }
    }

    /// Also writes every event that `filter` passes as a JSON line through `json`, with the
    /// fields of the spans it is in (as [`JsonLayer`] does as a layer behind that filter).
    #[must_use]
    pub fn with_logs(mut self, json: JsonLayer, filter: Targets) -> Self {
        self.logs = Some(Logs { json, filter });
        self
    }

    /// The innermost span this thread has entered.
    fn current_id(&self) -> Option<Id> {
        let entered = self.entered.get()?.borrow();
        entered
            .iter()
            .rev()
            .find(|e| !e.again)
            .map(|e| e.id.clone())
    }

    /// The ids of the current span when it is sampled: the exemplar source.
    pub(crate) fn current_sampled_ids(&self) -> Option<TraceIds> {
        let span = self.spans.get(&self.current_id()?)?;
        span.identity.sampled().then_some(span.identity.ids)
    }

    /// Runs `f` on the identity of the span `id`.
    pub(crate) fn with_identity<T>(
        &self,
        id: &Id,
        f: impl FnOnce(&SpanIdentity) -> Option<T>,
    ) -> Option<T> {
        // Cloned out, so that `f` runs with no lock held.
        let identity = self.spans.get(id)?.identity.clone();
        f(&identity)
    }

    fn logs_enabled(&self, metadata: &Metadata<'_>) -> Option<&Logs> {
        self.logs.as_ref().filter(|logs| {
            logs.filter
                .would_enable(metadata.target(), metadata.level())
        })
    }

    /// Whether a callsite is on: every span (they carry the trace whatever the log level), and
    /// the events the log filter passes.
    fn on(&self, metadata: &Metadata<'_>) -> bool {
        metadata.is_span() || self.logs.is_none() || self.logs_enabled(metadata).is_some()
    }

    /// The spans from `id` outwards.
    fn scope(&self, id: Option<Id>) -> impl Iterator<Item = StoredSpan<'_>> {
        let mut next = id;
        std::iter::from_fn(move || {
            let id = next.take()?;
            next.clone_from(&self.spans.get(&id)?.parent);
            Some(StoredSpan {
                spans: &self.spans,
                id,
            })
        })
    }
}

impl Subscriber for SpanLogSubscriber {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if self.on(metadata) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.on(metadata)
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let parent = if attrs.is_contextual() {
            self.current_id()
        } else {
            attrs.parent().cloned()
        };
        // The parent stays open while this span is (a line logged here walks up through it).
        // Its identity is copied out, so that no two slots are ever locked at once.
        let parent_identity = parent.as_ref().and_then(|p| {
            let mut parent = self.spans.get(p)?;
            parent.refs += 1;
            Some(parent.identity.clone())
        });
        let metadata = attrs.metadata();
        let logs = self.logs_enabled(metadata);
        // Everything is written in place into the slot: nothing large is moved.
        self.spans.insert(|span| {
            span.metadata = Some(metadata);
            span.parent = parent;
            span.identity = self
                .tracer
                .open(attrs, || parent_identity, &mut span.finished);
            span.logged = logs.is_some();
            if let Some(logs) = logs {
                logs.json.render_span_fields_into(&mut span.fields, attrs);
            }
        })
    }

    fn record(&self, id: &Id, values: &Record<'_>) {
        let Some(mut span) = self.spans.get(id) else {
            return;
        };
        let span = &mut *span;
        if let Some(finished) = span.finished.as_mut() {
            SpanLayer::record(finished, values);
        }
        if let (Some(logs), true) = (&self.logs, span.logged) {
            logs.json.record_span_fields(&mut span.fields, values);
        }
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let span = if event.is_contextual() {
            self.current_id()
        } else {
            event.parent().cloned()
        };
        if let Some(mut record) = span.as_ref().and_then(|id| self.spans.get(id)) {
            if let Some(finished) = record.finished.as_mut() {
                SpanLayer::event(finished, event);
            }
        }
        if let Some(logs) = self.logs_enabled(event.metadata()) {
            let scope = span.is_some().then(|| self.scope(span));
            logs.json.write_event(event, scope);
        }
    }

    fn enter(&self, id: &Id) {
        let mut entered = self
            .entered
            .get_or(|| RefCell::new(Vec::with_capacity(16)))
            .borrow_mut();
        let again = entered.iter().any(|e| e.id == *id);
        entered.push(Entered {
            id: id.clone(),
            again,
        });
    }

    fn exit(&self, id: &Id) {
        if let Some(entered) = self.entered.get() {
            let mut entered = entered.borrow_mut();
            if let Some(at) = entered.iter().rposition(|e| e.id == *id) {
                entered.remove(at);
            }
        }
    }

    fn clone_span(&self, id: &Id) -> Id {
        if let Some(mut span) = self.spans.get(id) {
            span.refs += 1;
        }
        id.clone()
    }

    fn try_close(&self, id: Id) -> bool {
        let Some(mut span) = self.spans.get(&id) else {
            return false;
        };
        span.refs -= 1;
        if span.refs != 0 {
            return false;
        }
        let (finished, parent) = (span.finished.take(), span.parent.take());
        self.spans.release(&id, span);
        if let Some(finished) = finished {
            self.tracer.finish(finished);
        }
        if let Some(parent) = parent {
            self.try_close(parent);
        }
        true
    }

    fn current_span(&self) -> Current {
        let current = self.current_id().and_then(|id| {
            let metadata = self.spans.get(&id)?.metadata?;
            Some((id, metadata))
        });
        match current {
            Some((id, metadata)) => Current::new(id, metadata),
            None => Current::none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_map_onto_doubling_pages_without_gaps() {
        let mut expected = (0, 0);
        for index in 0..10_000 {
            assert_eq!(locate(index), expected, "slot {index}");
            expected.1 += 1;
            if expected.1 == 1 << (expected.0 + FIRST_PAGE_BITS as usize) {
                expected = (expected.0 + 1, 0);
            }
        }
    }

    #[test]
    fn a_stale_id_never_reaches_the_span_that_reuses_its_slot() {
        let store = SpanStore::new();
        let first = store.insert(|_| {});
        store.release(&first, store.get(&first).unwrap());
        let second = store.insert(|_| {});
        assert_eq!(
            first.into_u64() & u64::from(u32::MAX),
            second.into_u64() & u64::from(u32::MAX),
            "the slot is reused"
        );
        assert!(store.get(&first).is_none(), "the old id is stale");
        assert!(store.get(&second).is_some());
    }

    #[test]
    fn spans_opened_on_one_thread_and_closed_on_another_reuse_slots() {
        let store = std::sync::Arc::new(SpanStore::new());
        for _ in 0..50 {
            let ids: Vec<Id> = (0..100).map(|_| store.insert(|_| {})).collect();
            let closer = std::sync::Arc::clone(&store);
            std::thread::spawn(move || {
                for id in ids {
                    closer.release(&id, closer.get(&id).unwrap());
                }
            })
            .join()
            .unwrap();
        }
        let slots = store.next.load(Ordering::Relaxed);
        assert!(
            slots <= 100 + 2 * LOCAL_FREE,
            "5,000 spans, at most 100 open at once, took {slots} slots"
        );
    }
}
