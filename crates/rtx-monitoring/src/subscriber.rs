//! [`SpanLogSubscriber`]: one purpose-built `tracing` subscriber for the span layer and the JSON
//! log layer together, in place of `tracing-subscriber`'s `Registry` with the two as layers.
//!
//! Why: on the `Registry` every span pays for machinery our two layers do not use (a boxed map
//! of extensions per layer, a lock around it, a lookup per layer per callback, the per-layer
//! filter bookkeeping), and the registry alone, with no layer at all, already cost more than a
//! whole unsampled span may (`BENCHMARKS.md`, Tracing). Here a span is one record in a store
//! of reused slots (`SpanStore`, below), each holding everything the two layers keep (trace
//! identity, the sampled span's record for export, its rendered log fields) behind one
//! uncontended mutex, and the span's reference count and parent in atomics beside it. A
//! callback looks the span up once. `tracing` stays the API: the same macros,
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
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};

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
    /// Tells this subscriber's entries in the threads' [`THREADS`] from others'.
    key: u64,
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

/// What a slot keeps of its open span behind the slot's mutex: everything but the span's
/// reference count and parent, which the slot keeps in atomics so that closing a span with
/// nothing to take out of its record needs no lock.
#[derive(Default)]
struct SpanRecord {
    metadata: Option<&'static Metadata<'static>>,
    identity: SpanIdentity,
    /// The record to export, for a sampled span.
    finished: Option<FinishedSpan>,
    /// Its fields rendered for log lines, when `logged`. Kept, cleared, from one span of the
    /// slot to the next rather than moved in and out.
    fields: SpanFields,
    /// Whether the log filter passes the span's level.
    logged: bool,
}

/// One slot of the store: an open span, or a free slot waiting for the next one.
#[derive(Default)]
struct Slot {
    /// The generation of the slot's span (high 32 bits), [`HOLDS_MORE`], and the span's
    /// references: its handles (`Span` values and clones) plus its children still open. No
    /// references: the slot is free. The generation is bumped each time the slot takes a new
    /// span and is part of the span's id, so that a stale id (of a span closed since) never
    /// reaches the span that reuses the slot.
    state: AtomicU64,
    /// The id of the span it opened inside, 0 for none, kept open while this one is: a log
    /// line inside this span walks up through it.
    parent: AtomicU64,
    record: Mutex<SpanRecord>,
}

/// Set in a slot's state when the record holds something to take out or drop when the span
/// closes (a sampled span's record, a `tracestate`): only then does closing lock the record.
const HOLDS_MORE: u64 = 1 << 31;
/// The reference count's bits of a slot's state.
const REFS: u64 = HOLDS_MORE - 1;

/// Slots in the first page; each next page doubles, so that twenty pages hold 67 million open
/// spans while an idle subscriber holds one small page.
const FIRST_PAGE_BITS: u32 = 6;
const PAGES: usize = 20;
/// A thread keeps at most this many free slots; past it, half go to the shared list, so that
/// slots freed on one thread (a span closed where it did not open) reach the others.
const LOCAL_FREE: usize = 256;

/// The span records: slots in pages that are allocated once and never move, handed out from
/// a free list per thread.
///
/// Why not the `sharded-slab` pool the `tracing-subscriber` registry uses (and this subscriber
/// used first): its lock-free slot life cycle costs several compare-and-swaps per span, and a
/// create, get and clear took 42–50 ns against 21–25 ns for a slot here, in the same run on
/// the machine of `BENCHMARKS.md`; a span's whole budget is 60 ns. Here opening a span takes
/// its slot's uncontended mutex once; closing it is a load and a store of the slot's state
/// when it was the span's last reference and the record holds nothing to take out (an
/// unsampled span), and the free list of the thread that closes a span takes no atomics.
struct SpanStore {
    pages: [OnceLock<Box<[Slot]>>; PAGES],
    /// Slots ever handed out: the next new slot's index.
    next: AtomicUsize,
    /// Shared with the threads' entries, which hand their free slots back here when the
    /// thread ends.
    shared_free: Arc<Mutex<Vec<u32>>>,
}

thread_local! {
    /// What each thread keeps for each subscriber that has seen it (nearly always one): one
    /// entry holds the entered spans and the free slots, so that each callback looks up the
    /// thread's state once (opening a span looked up two per-subscriber maps). A plain
    /// `thread_local!` measured the same as the `thread_local` crate's map, which is no
    /// longer needed.
    static THREADS: RefCell<Vec<ThreadSpans>> = const { RefCell::new(Vec::new()) };
}

/// Subscriber keys: each subscriber's entries in [`THREADS`] carry its own.
static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

/// What a thread keeps for one subscriber: its entered spans, innermost last, and its free
/// slots.
struct ThreadSpans {
    subscriber: u64,
    entered: Vec<Entered>,
    free: Vec<u32>,
    /// The store's shared free list: the slots left in `free` go back there when the thread
    /// ends; dangling once the subscriber is dropped.
    shared_free: Weak<Mutex<Vec<u32>>>,
}

impl Drop for ThreadSpans {
    fn drop(&mut self) {
        if let Some(shared) = self.shared_free.upgrade() {
            lock(&shared).append(&mut self.free);
        }
    }
}

impl ThreadSpans {
    fn new(subscriber: u64, spans: &SpanStore) -> Self {
        Self {
            subscriber,
            entered: Vec::with_capacity(16),
            free: Vec::with_capacity(LOCAL_FREE),
            shared_free: Arc::downgrade(&spans.shared_free),
        }
    }

    /// The innermost span this thread has entered.
    fn current(&self) -> Option<Id> {
        self.entered
            .iter()
            .rev()
            .find(|e| !e.again)
            .map(|e| e.id.clone())
    }
}

/// A thread's stack of entered spans is full (16 deep at first): out of line, so that entering
/// a span saves no registers for the growth.
#[cold]
#[inline(never)]
fn grow_and_push(entered: &mut Vec<Entered>, span: Entered) {
    entered.push(span);
}

/// A span left while spans entered after it are still entered (futures polled out of order):
/// out of line, as [`grow_and_push`] is.
#[cold]
#[inline(never)]
fn remove_inner(entered: &mut Vec<Entered>, at: usize) {
    entered.remove(at);
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

/// The generation and slot index an id is made of.
fn split(id: &Id) -> (u64, usize) {
    let key = id.into_u64();
    (key >> 32, (key & u64::from(u32::MAX)) as usize)
}

/// Whether slot state `state` is the open span of generation `generation`.
fn is_open(state: u64, generation: u64) -> bool {
    state >> 32 == generation && state & REFS != 0
}

impl SpanStore {
    fn new() -> Self {
        Self {
            pages: std::array::from_fn(|_| OnceLock::new()),
            next: AtomicUsize::new(0),
            shared_free: Arc::default(),
        }
    }

    fn slot(&self, index: usize) -> Option<&Slot> {
        let (page, offset) = locate(index);
        self.pages.get(page)?.get()?.get(offset)
    }

    /// A free slot: the thread's, else a batch from the shared list, else a new one.
    fn take_slot(&self, thread: &mut ThreadSpans) -> usize {
        match thread.free.pop() {
            Some(index) => index as usize,
            None => self.take_shared_or_new_slot(thread),
        }
    }

    /// The thread has no free slot: out of line, so that opening a span with one (nearly every
    /// span once a thread has closed a few) saves no registers for this.
    #[cold]
    #[inline(never)]
    fn take_shared_or_new_slot(&self, thread: &mut ThreadSpans) -> usize {
        {
            let mut shared = lock(&self.shared_free);
            if let Some(index) = shared.pop() {
                let batch = shared.len().min(LOCAL_FREE / 2);
                let at = shared.len() - batch;
                thread.free.extend(shared.drain(at..));
                return index as usize;
            }
        }
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Opens a span with one reference in free slot `index`, its record written in place by
    /// `init`, which answers whether the record holds something to take out when the span
    /// closes; `parent` is the span it opens inside.
    fn insert(
        &self,
        index: usize,
        parent: Option<&Id>,
        init: impl FnOnce(&mut SpanRecord) -> bool,
    ) -> Id {
        let (page, offset) = locate(index);
        let slot = &self
            .pages
            .get(page)
            // As the `tracing-subscriber` registry does when its pool is full: `new_span` has
            // no way to fail, and 67 million spans open at once is a leak, not a load.
            .expect("the span store is full")
            .get_or_init(|| {
                (0..1usize << (page + FIRST_PAGE_BITS as usize))
                    .map(|_| Slot::default())
                    .collect()
            })[offset];
        // The slot is this thread's alone until the id is handed out: nobody else writes its
        // state, and a stale id's look-up finds no references in it.
        let generation = ((slot.state.load(Ordering::Relaxed) >> 32) as u32)
            .wrapping_add(1)
            .max(1);
        slot.parent
            .store(parent.map_or(0, Id::into_u64), Ordering::Relaxed);
        let holds_more = init(&mut lock(&slot.record));
        let state = u64::from(generation) << 32 | if holds_more { HOLDS_MORE } else { 0 } | 1;
        slot.state.store(state, Ordering::Release);
        Id::from_u64(u64::from(generation) << 32 | index as u64)
    }

    /// The slot of the open span `id`.
    fn open_slot(&self, id: &Id) -> Option<&Slot> {
        let (generation, index) = split(id);
        let slot = self.slot(index)?;
        is_open(slot.state.load(Ordering::Acquire), generation).then_some(slot)
    }

    /// The open span `id`, locked; `None` once it has closed.
    fn get(&self, id: &Id) -> Option<MutexGuard<'_, SpanRecord>> {
        let slot = self.open_slot(id)?;
        let record = lock(&slot.record);
        // Checked again under the lock: the span may have closed, and its slot taken a new
        // span, since the first look (only a stale id can race so).
        is_open(slot.state.load(Ordering::Acquire), split(id).0).then_some(record)
    }

    /// Runs `f` on the open span `id`'s record for export, locked, when it has one (it is
    /// sampled); `None` otherwise.
    fn with_finished<R>(&self, id: &Id, f: impl FnOnce(&mut FinishedSpan) -> R) -> Option<R> {
        self.get(id)?.finished.as_mut().map(f)
    }

    /// Whether the open span `id`'s record holds more than its identity (a sampled span's
    /// record, a `tracestate`), read without the lock.
    fn holds_more(&self, id: &Id) -> bool {
        self.open_slot(id)
            .is_some_and(|slot| slot.state.load(Ordering::Relaxed) & HOLDS_MORE != 0)
    }

    /// The span the open span `id` opened inside.
    fn parent(&self, id: &Id) -> Option<Id> {
        let parent = self.open_slot(id)?.parent.load(Ordering::Relaxed);
        (parent != 0).then(|| Id::from_u64(parent))
    }

    /// One more reference to the open span `id`.
    fn acquire(&self, id: &Id) -> bool {
        match self.open_slot(id) {
            Some(slot) => {
                slot.state.fetch_add(1, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// Drops one reference to the open span `id`. When it was the last, the span closes: its
    /// slot is free (the id is stale from here on), its record for export, if it has one, is
    /// handed to `finish`, and the slot's index and the span's parent are returned, for the
    /// caller to give the slot back to its thread's free list ([`give_back`](Self::give_back)).
    ///
    /// The record goes to a callback rather than out in the return value: returned, it was
    /// copied whole even when there was none, and the copy was a tenth of an unsampled span.
    fn release(&self, id: &Id, finish: impl FnOnce(FinishedSpan)) -> Option<(u32, Option<Id>)> {
        let (generation, index) = split(id);
        let slot = self.slot(index)?;
        let state = slot.state.load(Ordering::Acquire);
        if !is_open(state, generation) {
            return None;
        }
        // One reference left, and it is the caller's: no other thread holds one that it could
        // drop or copy at the same time, so the count needs no atomic decrement.
        if state & REFS != 1 {
            let before = slot.state.fetch_sub(1, Ordering::AcqRel);
            if before & REFS != 1 {
                return None;
            }
        }
        let parent = slot.parent.load(Ordering::Relaxed);
        let finished = if state & HOLDS_MORE != 0 {
            let mut record = lock(&slot.record);
            record.identity.trace_state = None;
            record.finished.take()
        } else {
            None
        };
        slot.state.store(generation << 32, Ordering::Release);
        if let Some(finished) = finished {
            finish(finished);
        }
        Some((index as u32, (parent != 0).then(|| Id::from_u64(parent))))
    }

    /// Gives free slot `index` to `thread`'s free list, or half of that list to the shared one
    /// when it is full (so that slots freed on one thread reach the others).
    fn give_back(&self, thread: &mut ThreadSpans, index: u32) {
        thread.free.push(index);
        if thread.free.len() > LOCAL_FREE {
            let half = thread.free.len() / 2;
            lock(&self.shared_free).extend(thread.free.drain(..half));
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
            key: NEXT_KEY.fetch_add(1, Ordering::Relaxed),
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

    /// Runs `f` on what this thread keeps for this subscriber, or answers `None` while the
    /// thread is ending (its thread-locals already gone). `f` must not call out of the
    /// subscriber: the thread's entries stay borrowed while it runs.
    fn with_thread<R>(&self, f: impl FnOnce(&mut ThreadSpans) -> R) -> Option<R> {
        THREADS
            .try_with(|threads| {
                let mut threads = threads.borrow_mut();
                let at = match threads.iter().position(|t| t.subscriber == self.key) {
                    Some(at) => at,
                    None => self.add_thread_entry(&mut threads),
                };
                f(&mut threads[at])
            })
            .ok()
    }

    /// Adds this subscriber's entry to a thread's, at the thread's first callback: out of line,
    /// so that the callbacks' common path keeps no registers for it.
    #[cold]
    #[inline(never)]
    fn add_thread_entry(&self, threads: &mut Vec<ThreadSpans>) -> usize {
        // The entries of subscribers dropped since go first.
        threads.retain(|t| t.shared_free.strong_count() > 0);
        threads.push(ThreadSpans::new(self.key, &self.spans));
        threads.len() - 1
    }

    /// The innermost span this thread has entered.
    fn current_id(&self) -> Option<Id> {
        self.with_thread(|thread| thread.current()).flatten()
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
            next = self.spans.parent(&id);
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
        // One visit to the thread's state: the current span and a free slot.
        let (current, index) = self
            .with_thread(|thread| {
                let current = if attrs.is_contextual() {
                    thread.current()
                } else {
                    None
                };
                (current, self.spans.take_slot(thread))
            })
            .unwrap_or_else(|| {
                // The thread is ending: a slot from the shared list, or a new one.
                let mut ending = ThreadSpans::new(self.key, &self.spans);
                (None, self.spans.take_slot(&mut ending))
            });
        let parent = if attrs.is_contextual() {
            current
        } else {
            attrs.parent().cloned()
        };
        // The parent stays open while this span is (a line logged here walks up through it).
        let parent = parent.filter(|p| self.spans.acquire(p));
        let metadata = attrs.metadata();
        let logs = self.logs_enabled(metadata);
        // Everything is written in place into the slot: nothing large is moved.
        self.spans.insert(index, parent.as_ref(), |span| {
            span.metadata = Some(metadata);
            // The parent's identity is read while the new slot is locked. No deadlock: until
            // its id is out, a thread can wait for the new slot's lock only through a stale id,
            // and such a look-up holds no other lock.
            let parent_identity = || Some(self.spans.get(parent.as_ref()?)?.identity.clone());
            self.tracer.open(
                attrs,
                parent_identity,
                &mut span.identity,
                &mut span.finished,
            );
            span.logged = logs.is_some();
            if let Some(logs) = logs {
                logs.json.render_span_fields_into(&mut span.fields, attrs);
            }
            span.finished.is_some() || span.identity.trace_state.is_some()
        })
    }

    fn record(&self, id: &Id, values: &Record<'_>) {
        let Some((sampled, logged)) = self
            .spans
            .get(id)
            .map(|span| (span.finished.is_some(), span.logged))
        else {
            return;
        };
        // The values are formatted with no lock held, and the span locked only to keep the
        // result: a `Debug` that logs writes a line that reads this very span.
        if sampled {
            let recorded = SpanLayer::collect(values);
            self.spans
                .with_finished(id, |finished| SpanLayer::apply(finished, recorded));
        }
        if let (Some(logs), true) = (&self.logs, logged) {
            logs.json.render_fields(values, |bytes, entries| {
                if let Some(mut span) = self.spans.get(id) {
                    span.fields.append(bytes, entries);
                }
            });
        }
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let span = if event.is_contextual() {
            self.current_id()
        } else {
            event.parent().cloned()
        };
        // Only a sampled span keeps events, and only a span whose record holds more than its
        // ids can be one: the others are not locked.
        if let Some(id) = span.as_ref().filter(|id| self.spans.holds_more(id)) {
            let keeps = self
                .spans
                .with_finished(id, |finished| SpanLayer::keeps_events(finished));
            if keeps == Some(true) {
                // Formatted with no lock held: a message's `Display` that logs writes a line
                // that reads this very span.
                let message = SpanLayer::event_message(event);
                self.spans
                    .with_finished(id, |finished| SpanLayer::push_event(finished, message));
            }
        }
        if let Some(logs) = self.logs_enabled(event.metadata()) {
            let scope = span.is_some().then(|| self.scope(span));
            logs.json.write_event(event, scope);
        }
    }

    fn enter(&self, id: &Id) {
        self.with_thread(|thread| {
            let again = thread.entered.iter().any(|e| e.id == *id);
            let entered = Entered {
                id: id.clone(),
                again,
            };
            if thread.entered.len() < thread.entered.capacity() {
                thread.entered.push(entered);
            } else {
                grow_and_push(&mut thread.entered, entered);
            }
        });
    }

    fn exit(&self, id: &Id) {
        self.with_thread(|thread| {
            let entered = &mut thread.entered;
            if let Some(at) = entered.iter().rposition(|e| e.id == *id) {
                // Nearly always the innermost: popped, with no call to shift the rest.
                if at + 1 == entered.len() {
                    entered.pop();
                } else {
                    remove_inner(entered, at);
                }
            }
        });
    }

    fn clone_span(&self, id: &Id) -> Id {
        self.spans.acquire(id);
        id.clone()
    }

    fn try_close(&self, id: Id) -> bool {
        let Some((index, parent)) = self
            .spans
            .release(&id, |finished| self.tracer.finish(finished))
        else {
            return false;
        };
        if self
            .with_thread(|thread| self.spans.give_back(thread, index))
            .is_none()
        {
            // The thread is ending: the slot goes straight to the shared list.
            lock(&self.spans.shared_free).push(index);
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

    /// Past the entered stack's first capacity (16), and spans left out of order (as futures
    /// polled in turn leave theirs): the current span is always the innermost still entered.
    #[test]
    fn deep_and_out_of_order_entries_keep_the_innermost_span_current() {
        let subscriber = SpanLogSubscriber::new(SpanLayer::new(0.0, None));
        tracing::subscriber::with_default(subscriber, || {
            let spans: Vec<tracing::Span> = (0..40)
                .map(|depth| tracing::info_span!("nested", depth))
                .collect();
            let guards: Vec<_> = spans.iter().map(tracing::Span::enter).collect();
            assert_eq!(tracing::Span::current().id(), spans[39].id());
            let mut guards: Vec<Option<_>> = guards.into_iter().map(Some).collect();
            // Leave span 10 while 11..40 are still entered: 39 stays current.
            drop(guards[10].take());
            assert_eq!(tracing::Span::current().id(), spans[39].id());
            // Leave the innermost: 38 is current, and so on down to 11.
            for depth in (12..40).rev() {
                drop(guards[depth].take());
                assert_eq!(tracing::Span::current().id(), spans[depth - 1].id());
            }
            // Past the hole at 10: 9 is current.
            drop(guards[11].take());
            assert_eq!(tracing::Span::current().id(), spans[9].id());
        });
    }

    /// Opens a span with nothing to take out when it closes, in a slot of `thread`'s.
    fn open(store: &SpanStore, thread: &mut ThreadSpans) -> Id {
        let index = store.take_slot(thread);
        store.insert(index, None, |_| false)
    }

    /// Drops a reference to `id`, giving its slot back to `thread` when it closes; whether it
    /// closed.
    fn close(store: &SpanStore, thread: &mut ThreadSpans, id: &Id) -> Option<Option<Id>> {
        let (index, parent) = store.release(id, drop)?;
        store.give_back(thread, index);
        Some(parent)
    }

    #[test]
    fn a_stale_id_never_reaches_the_span_that_reuses_its_slot() {
        let store = SpanStore::new();
        let thread = &mut ThreadSpans::new(0, &store);
        let first = open(&store, thread);
        assert!(close(&store, thread, &first).is_some());
        let second = open(&store, thread);
        assert_eq!(split(&first).1, split(&second).1, "the slot is reused");
        assert!(store.get(&first).is_none(), "the old id is stale");
        assert!(close(&store, thread, &first).is_none());
        assert!(!store.acquire(&first));
        assert!(store.get(&second).is_some());
    }

    #[test]
    fn a_span_closes_with_its_last_reference_whichever_thread_drops_it() {
        let store = SpanStore::new();
        let thread = &mut ThreadSpans::new(0, &store);
        for _ in 0..200 {
            let id = open(&store, thread);
            for _ in 0..3 {
                assert!(store.acquire(&id));
            }
            // Four references dropped on four threads at once: exactly one closes the span.
            let closed: usize = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..4)
                    .map(|_| {
                        let (store, id) = (&store, id.clone());
                        scope.spawn(move || usize::from(store.release(&id, drop).is_some()))
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).sum()
            });
            assert_eq!(closed, 1);
            assert!(store.get(&id).is_none());
        }
    }

    #[test]
    fn closing_takes_out_the_record_only_of_a_span_that_holds_one() {
        let store = SpanStore::new();
        let thread = &mut ThreadSpans::new(0, &store);
        let parent = open(&store, thread);
        let index = store.take_slot(thread);
        let child = store.insert(index, Some(&parent), |record| {
            record.identity.trace_state = Some(Default::default());
            true
        });
        assert_eq!(close(&store, thread, &child), Some(Some(parent)));
        let index = store.take_slot(thread);
        assert_eq!(index, split(&child).1, "the slot is reused");
        let reused = store.insert(index, None, |record| {
            assert!(record.identity.trace_state.is_none(), "dropped at close");
            false
        });
        assert!(store.parent(&reused).is_none());
    }

    #[test]
    fn spans_opened_on_one_thread_and_closed_on_another_reuse_slots() {
        let store = std::sync::Arc::new(SpanStore::new());
        let opener = &mut ThreadSpans::new(0, &store);
        for _ in 0..50 {
            let ids: Vec<Id> = (0..100).map(|_| open(&store, opener)).collect();
            let closer = std::sync::Arc::clone(&store);
            std::thread::spawn(move || {
                // Its entry hands its free slots back to the shared list when it is dropped,
                // as a thread's entries are when the thread ends.
                let thread = &mut ThreadSpans::new(0, &closer);
                for id in ids {
                    assert!(close(&closer, thread, &id).is_some());
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

    #[test]
    fn a_thread_keeps_one_entry_per_live_subscriber() {
        let entries = || THREADS.with(|threads| threads.borrow().len());
        let before = entries();
        for _ in 0..10 {
            let subscriber = SpanLogSubscriber::new(SpanLayer::new(0.0, None));
            tracing::subscriber::with_default(subscriber, || {
                let _span = tracing::info_span!("a").entered();
            });
        }
        assert!(
            entries() <= before + 1,
            "the entries of dropped subscribers are pruned: {before} then {}",
            entries()
        );
    }
}
