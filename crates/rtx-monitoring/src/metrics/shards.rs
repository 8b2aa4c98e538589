//! Per-thread cell storage behind every counter and histogram.
//!
//! Why not one shared atomic per series, as the other clients do: a locked read-modify-write on
//! a cache line that two cores both write costs 5 ns uncontended and ten times that when the
//! line bounces between cores (the peers in `BENCHMARKS.md` lose throughput when a second thread
//! joins). Here every thread that records claims a *slot*, and every slot owns a private copy of
//! every cell. A thread is the only writer of its slot, so an update is a plain load and store of
//! a relaxed atomic: no lock prefix, no shared cache line, no lost update. A scrape sums the
//! slots. When a thread exits its slot goes back to a free list with its values intact, and the
//! next thread continues from them, so nothing recorded is ever lost.
//!
//! Private slots are capped at a small multiple of the cores ([`private_slots`]): a scrape reads
//! every slot, and a private copy per thread of a process that runs hundreds of mostly idle
//! threads would make the scrape and the memory grow with the thread count while buying nothing,
//! since no more threads than cores record at once. Threads past the cap share a few *striped*
//! copies (one per core, [`stripes`]) updated with real read-modify-write atomics: slower, still
//! exact. A thread keeps the slot or stripe it was given for its whole life.

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};

/// The most private slots any machine gets, whatever its core count.
pub(crate) const MAX_SLOTS: usize = 128;
/// Private slots per core: the cores' worker threads plus as many again for the threads that
/// record now and then (a blocking pool, a writer thread) without spilling onto the stripes.
const SLOTS_PER_CORE: usize = 2;
/// Private slots on the smallest machine, so that a 1- or 2-core box still gives its few
/// recording threads their own copy.
const MIN_SLOTS: usize = 4;
/// The most striped copies: each one is read by every scrape and held in memory.
const MAX_STRIPES: usize = 16;
const CHUNK_BITS: usize = 9;
/// Cells per chunk: one chunk is 4 KiB, a page, allocated the first time a thread touches it.
pub(crate) const CHUNK_CELLS: usize = 1 << CHUNK_BITS;
/// Chunks per copy. Every copy's chunk table is allocated with the registry (16 bytes an entry:
/// 8 KiB a copy, 48 KiB for the six copies of a 2-core machine, 1.1 MiB for the 144 of a
/// 64-core one), so this bounds what an unused registry costs as well as what a full one holds.
const MAX_CHUNKS: usize = 512;
/// The most cells one registry can hold: 262,144, 2 MiB a copy (a counter takes one cell, a
/// classic latency histogram 18, one with exemplars and native buckets about 430; the whole
/// engine catalogue with 100 symbols and 1,000 accounts takes 47,000).
pub(crate) const MAX_CELLS: usize = CHUNK_CELLS * MAX_CHUNKS;

/// How many slots and stripes this process uses, fixed at the first use from the core count.
struct Layout {
    slots: usize,
    stripes: usize,
}

fn layout() -> &'static Layout {
    static LAYOUT: OnceLock<Layout> = OnceLock::new();
    LAYOUT.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Layout {
            slots: (cores * SLOTS_PER_CORE).clamp(MIN_SLOTS, MAX_SLOTS),
            stripes: cores.clamp(1, MAX_STRIPES),
        }
    })
}

/// How many threads can own a private slot at once.
pub(crate) fn private_slots() -> usize {
    layout().slots
}

/// How many striped copies the threads past [`private_slots`] share.
pub(crate) fn stripes() -> usize {
    layout().stripes
}

const UNCLAIMED: u32 = 0;
/// Set in a thread's state when it records into stripe `state & !STRIPED`; otherwise the state
/// is its private slot plus one.
const STRIPED: u32 = 1 << 31;

thread_local! {
    // 0 = no slot yet, k + 1 = owns slot k, STRIPED | s = shares stripe s. A const initializer
    // with no destructor makes reading it a single thread-pointer-relative load.
    static SLOT: Cell<u32> = const { Cell::new(UNCLAIMED) };
    static RELEASER: SlotReleaser = const { SlotReleaser };
    // The first chunk-table entry of the thread's private copy (slot × MAX_CHUNKS), or
    // NO_PRIVATE_COPY: what a record adds its chunk to, one add where the slot number took a
    // decrement, a multiply and an add.
    static FIRST_ENTRY: Cell<usize> = const { Cell::new(NO_PRIVATE_COPY) };
}

/// Past every table, and far enough that adding a chunk index never wraps: a thread with no
/// private slot (none claimed yet, or on a stripe) always misses the fast path.
const NO_PRIVATE_COPY: usize = 1 << 48;

struct SlotPool {
    free: Vec<u32>,
    next: u32,
}

static POOL: Mutex<SlotPool> = Mutex::new(SlotPool {
    free: Vec::new(),
    next: 0,
});
/// One past the highest slot ever claimed: scrapes only look at slots below it.
static HIGH_WATER: AtomicUsize = AtomicUsize::new(0);

/// Gives the thread's slot back when the thread exits.
struct SlotReleaser;

impl Drop for SlotReleaser {
    fn drop(&mut self) {
        let state = SLOT.with(Cell::get);
        if state != UNCLAIMED && state & STRIPED == 0 {
            // Whatever this thread still records while it is torn down goes to a stripe.
            SLOT.with(|s| s.set(STRIPED));
            FIRST_ENTRY.with(|e| e.set(NO_PRIVATE_COPY));
            // The mutex hand-off orders this thread's last stores before the next owner's loads.
            if let Ok(mut pool) = POOL.lock() {
                pool.free.push(state - 1);
            }
        }
    }
}

/// A stripe for a thread past the cap, spread round-robin so that the threads sharing one
/// stripe are as few as they can be.
fn next_stripe() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    STRIPED | (NEXT.fetch_add(1, Relaxed) % stripes() as u32)
}

#[cold]
fn claim_slot() -> u32 {
    let cap = private_slots();
    let claimed = match POOL.lock() {
        Ok(mut pool) => match pool.free.pop() {
            Some(k) => Some(k),
            None if (pool.next as usize) < cap => {
                pool.next += 1;
                HIGH_WATER.fetch_max(pool.next as usize, Relaxed);
                Some(pool.next - 1)
            }
            None => None,
        },
        Err(_) => None,
    };
    let state = match claimed {
        // Registering the releaser fails only while this thread is being torn down; then the
        // slot cannot be given back later, so give it back now and use a stripe.
        Some(k) if RELEASER.try_with(|_| ()).is_ok() => k + 1,
        Some(k) => {
            if let Ok(mut pool) = POOL.lock() {
                pool.free.push(k);
            }
            next_stripe()
        }
        None => next_stripe(),
    };
    SLOT.with(|s| s.set(state));
    if state & STRIPED == 0 {
        FIRST_ENTRY.with(|e| e.set((state as usize - 1) * MAX_CHUNKS));
    }
    state
}

/// The calling thread's state: its private slot plus one, or `STRIPED` with its stripe.
#[inline(always)]
fn current_state() -> u32 {
    let state = SLOT.with(Cell::get);
    if state == UNCLAIMED {
        claim_slot()
    } else {
        state
    }
}

type Chunk = [AtomicU64; CHUNK_CELLS];

#[cold]
fn new_chunk() -> Box<Chunk> {
    Box::new(std::array::from_fn(|_| AtomicU64::new(0)))
}

/// All cells of one registry: the table every handle records through, and the allocator of
/// new series' cells.
#[doc(hidden)]
pub struct ShardedCells {
    table: CellTable,
    next_cell: Mutex<usize>,
}

/// Every copy of a registry's cells (one per private slot, one per stripe), in lazily
/// allocated chunks, shared by the registry and every handle.
///
/// Every copy's chunks sit in one flat table, copy `c`'s chunk `k` at `c * MAX_CHUNKS + k`
/// (private slots first, then stripes), and each handle holds the table itself rather than the
/// registry's cells, so that a record goes from the handle to its cell in two dependent loads
/// (the chunk's entry, the cell), where a table per copy behind the registry took four
/// (`BENCHMARKS.md` has the figures).
#[derive(Clone)]
pub(crate) struct CellTable {
    chunks: Arc<[OnceLock<Box<Chunk>>]>,
}

impl std::fmt::Debug for ShardedCells {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedCells")
            .field("cells", &self.allocated())
            .finish()
    }
}

impl std::fmt::Debug for CellTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CellTable")
            .field("copies", &(self.chunks.len() / MAX_CHUNKS))
            .finish()
    }
}

/// The cells of one series as seen by the recording thread: `base` indexes into `chunk`.
pub(crate) struct LocalCells<'a> {
    chunk: &'a Chunk,
    base: usize,
    exclusive: bool,
}

impl LocalCells<'_> {
    /// Adds to an integer cell.
    #[inline(always)]
    pub(crate) fn add_u64(&self, offset: usize, value: u64) {
        let cell = &self.chunk[self.base + offset];
        if self.exclusive {
            // Single writer: a plain load and store cannot lose an update.
            cell.store(cell.load(Relaxed).wrapping_add(value), Relaxed);
        } else {
            cell.fetch_add(value, Relaxed);
        }
    }

    /// Adds to a floating-point cell (stored as its bit pattern).
    #[inline(always)]
    pub(crate) fn add_f64(&self, offset: usize, value: f64) {
        let cell = &self.chunk[self.base + offset];
        if self.exclusive {
            cell.store(
                (f64::from_bits(cell.load(Relaxed)) + value).to_bits(),
                Relaxed,
            );
        } else {
            let _ = cell.fetch_update(Relaxed, Relaxed, |bits| {
                Some((f64::from_bits(bits) + value).to_bits())
            });
        }
    }

    /// The cell itself, for updates that are not sums (an exemplar's fields).
    #[inline(always)]
    pub(crate) fn cell(&self, offset: usize) -> &AtomicU64 {
        &self.chunk[self.base + offset]
    }

    /// True when the calling thread is the only writer of these cells (a private slot); false
    /// on a stripe, which other threads update at the same time.
    #[inline(always)]
    pub(crate) fn is_exclusive(&self) -> bool {
        self.exclusive
    }
}

impl Default for ShardedCells {
    fn default() -> Self {
        Self::new()
    }
}

impl ShardedCells {
    pub(crate) fn new() -> Self {
        Self {
            table: CellTable {
                chunks: (0..(private_slots() + stripes()) * MAX_CHUNKS)
                    .map(|_| OnceLock::new())
                    .collect(),
            },
            next_cell: Mutex::new(0),
        }
    }

    /// Reserves `count` consecutive cells that never straddle a chunk, so that one series is
    /// always reached through a single chunk lookup. `None` when the registry is full.
    pub(crate) fn allocate(&self, count: usize) -> Option<usize> {
        assert!(
            count > 0 && count <= CHUNK_CELLS,
            "a series needs 1..={CHUNK_CELLS} cells"
        );
        let mut next = self
            .next_cell
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let room = CHUNK_CELLS - (*next & (CHUNK_CELLS - 1));
        let start = if room < count { *next + room } else { *next };
        if start + count > MAX_CELLS {
            return None;
        }
        *next = start + count;
        Some(start)
    }

    fn allocated(&self) -> usize {
        *self
            .next_cell
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The table handles record through.
    pub(crate) fn table(&self) -> CellTable {
        self.table.clone()
    }
}

impl CellTable {
    /// Runs `record` on the calling thread's view of the cells starting at `base`.
    ///
    /// The path nearly every record takes ([`CellTable::private`]: the thread owns a private
    /// slot and has touched this chunk before) is two dependent loads from the handle and no
    /// call, inlined with `record` into the caller, where the view is known to be exclusive so
    /// `record`'s atomics fold to plain adds. Everything else (a thread's first record, a new
    /// chunk, a thread past the private slots sharing a stripe) goes through one out-of-line
    /// copy. Why this matters: with the claim and the lazy allocations inline, every record
    /// saved and restored registers for calls it never made and branched over them, and took
    /// 6.5 ns where this took 3.5–4.0 (`BENCHMARKS.md`). For a `record` too large to be inlined
    /// twice, call [`CellTable::private`] and a slow path of its own (as `Histogram` does).
    #[inline(always)]
    pub(crate) fn with_local<R>(
        &self,
        base: usize,
        record: impl FnOnce(&LocalCells<'_>) -> R,
    ) -> R {
        match self.private(base) {
            Some(local) => record(&local),
            None => self.with_local_slow(base, record),
        }
    }

    /// The calling thread's private copy of the chunk holding `base`, if it has a private slot
    /// and that chunk exists in it.
    #[inline(always)]
    pub(crate) fn private(&self, base: usize) -> Option<LocalCells<'_>> {
        // One bounds check covers every thread that must take the slow path (NO_PRIVATE_COPY
        // lands past the table); a private slot's chunk index is below MAX_CHUNKS since every
        // cell is below MAX_CELLS, so it never reaches the next copy.
        let entry = FIRST_ENTRY.with(Cell::get) + (base >> CHUNK_BITS);
        let chunk = self.chunks.get(entry)?.get()?;
        Some(LocalCells {
            chunk,
            base: base & (CHUNK_CELLS - 1),
            exclusive: true,
        })
    }

    #[cold]
    #[inline(never)]
    fn with_local_slow<R>(&self, base: usize, record: impl FnOnce(&LocalCells<'_>) -> R) -> R {
        record(&self.local(base))
    }

    /// The calling thread's view of the cells starting at `base`, claiming its slot and
    /// allocating what it lacks; [`CellTable::with_local`] is the fast way in.
    pub(crate) fn local(&self, base: usize) -> LocalCells<'_> {
        let state = current_state();
        let (copy, exclusive) = if state & STRIPED == 0 {
            (state as usize - 1, true)
        } else {
            (private_slots() + (state & !STRIPED) as usize, false)
        };
        LocalCells {
            chunk: self.chunks[copy * MAX_CHUNKS + (base >> CHUNK_BITS)].get_or_init(new_chunk),
            base: base & (CHUNK_CELLS - 1),
            exclusive,
        }
    }

    /// One copy's chunk table.
    fn copy(&self, copy: usize) -> &[OnceLock<Box<Chunk>>] {
        &self.chunks[copy * MAX_CHUNKS..(copy + 1) * MAX_CHUNKS]
    }

    /// The copies a scrape reads, with whether each is a private slot's: the private slots up
    /// to the highest ever claimed, then the stripes.
    fn live_copies(&self) -> impl Iterator<Item = (&[OnceLock<Box<Chunk>>], bool)> {
        let slots = private_slots();
        let high = HIGH_WATER.load(Relaxed).min(slots);
        let copies = self.chunks.len() / MAX_CHUNKS;
        (0..high)
            .map(|c| (self.copy(c), true))
            .chain((slots..copies).map(|c| (self.copy(c), false)))
    }

    /// A copy's value of one cell: 0 where its chunk was never touched.
    #[inline]
    fn peek(copy: &[OnceLock<Box<Chunk>>], cell: usize) -> u64 {
        copy[cell >> CHUNK_BITS]
            .get()
            .map_or(0, |c| c[cell & (CHUNK_CELLS - 1)].load(Relaxed))
    }

    /// Sum of an integer cell over every slot.
    pub(crate) fn read_u64(&self, cell: usize) -> u64 {
        self.live_copies().fold(0u64, |sum, (copy, _)| {
            sum.wrapping_add(Self::peek(copy, cell))
        })
    }

    /// Sum of a floating-point cell over every slot.
    pub(crate) fn read_f64(&self, cell: usize) -> f64 {
        self.live_copies()
            .map(|(copy, _)| f64::from_bits(Self::peek(copy, cell)))
            .sum()
    }

    /// Calls `visit` with every slot's and stripe's copy of the `count` cells at `base`, one copy
    /// after the other: a series of many cells (a histogram) is read copy by copy, each copy
    /// from one chunk, rather than cell by cell across every copy. The flag tells whether the
    /// copy is a private slot's (one writer) or a stripe's (several).
    pub(crate) fn for_each_copy(
        &self,
        base: usize,
        count: usize,
        mut visit: impl FnMut(&[AtomicU64], bool),
    ) {
        let (chunk, start) = (base >> CHUNK_BITS, base & (CHUNK_CELLS - 1));
        for (copy, exclusive) in self.live_copies() {
            if let Some(cells) = copy[chunk].get() {
                visit(&cells[start..start + count], exclusive);
            }
        }
    }
}

impl ShardedCells {
    /// Every integer cell summed over every copy, read copy by copy: each copy's chunks are
    /// added in order into one array, a sequential pass per copy, where reading series by series
    /// takes a cache miss per copy for every cell. What a scrape reads its counters and histogram
    /// counts from; floating-point cells are not summed here (see [`CellTotals::u64`]).
    pub(crate) fn totals(&self) -> CellTotals<'_> {
        let allocated = self.allocated();
        let mut sums = vec![0u64; allocated];
        for (copy, _) in self.table.live_copies() {
            for (sums, chunk) in sums.chunks_mut(CHUNK_CELLS).zip(copy.iter()) {
                if let Some(chunk) = chunk.get() {
                    for (sum, cell) in sums.iter_mut().zip(chunk.iter()) {
                        *sum = sum.wrapping_add(cell.load(Relaxed));
                    }
                }
            }
        }
        CellTotals { cells: self, sums }
    }

    /// Bytes held by the chunk table and the allocated chunks: what the memory figures in the
    /// docs count.
    pub(crate) fn heap_bytes(&self) -> usize {
        let table = &self.table.chunks;
        let chunks = table.iter().filter(|c| c.get().is_some()).count();
        chunks * std::mem::size_of::<Chunk>()
            + table.len() * std::mem::size_of::<OnceLock<Box<Chunk>>>()
    }

    /// How many copies hold at least one chunk.
    #[cfg(test)]
    fn copies_in_use(&self) -> usize {
        self.table
            .chunks
            .chunks(MAX_CHUNKS)
            .filter(|copy| copy.iter().any(|c| c.get().is_some()))
            .count()
    }

    /// Whether any stripe holds a chunk.
    #[cfg(test)]
    fn stripes_in_use(&self) -> bool {
        self.table.chunks[private_slots() * MAX_CHUNKS..]
            .iter()
            .any(|c| c.get().is_some())
    }
}

/// The integer cells of a registry summed at one moment: see [`ShardedCells::totals`].
pub(crate) struct CellTotals<'a> {
    cells: &'a ShardedCells,
    sums: Vec<u64>,
}

impl CellTotals<'_> {
    /// The total of integer cell `cell`. Floating-point cells have their own reads
    /// ([`ShardedCells::read_f64`]): their bit patterns do not add as integers. A cell allocated
    /// after the totals were taken is read on its own.
    pub(crate) fn u64(&self, cell: usize) -> u64 {
        match self.sums.get(cell) {
            Some(&sum) => sum,
            None => self.cells.table.read_u64(cell),
        }
    }

    /// The table behind these totals, for the reads they do not cover.
    pub(crate) fn cells(&self) -> &CellTable {
        &self.cells.table
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn series_never_straddle_a_chunk() {
        let cells = ShardedCells::new();
        let first = cells.allocate(CHUNK_CELLS - 3).unwrap();
        let second = cells.allocate(19).unwrap();
        assert_eq!(first, 0);
        assert_eq!(second, CHUNK_CELLS);
    }

    /// Records 1000 times into a counter cell and a float cell from each of `threads` threads
    /// that all hold their slot at once, so that past the cap some of them must share stripes.
    fn record_from_live_threads(cells: &Arc<ShardedCells>, base: usize, threads: usize) {
        let all_claimed = Arc::new(std::sync::Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let cells = Arc::clone(cells);
                let all_claimed = Arc::clone(&all_claimed);
                std::thread::spawn(move || {
                    // Claim a slot or stripe, then wait until every thread holds one, so that
                    // none gives its slot back before the last has claimed.
                    cells.table.local(base).add_u64(0, 0);
                    all_claimed.wait();
                    for _ in 0..1000 {
                        let local = cells.table.local(base);
                        local.add_u64(0, 1);
                        local.add_f64(1, 0.5);
                    }
                })
            })
            .collect();
        for t in handles {
            t.join().unwrap();
        }
    }

    #[test]
    fn threads_past_the_slot_cap_share_stripes_and_lose_nothing() {
        let cells = Arc::new(ShardedCells::new());
        let base = cells.allocate(2).unwrap();
        let threads = private_slots() + 4 * stripes() + 8;
        record_from_live_threads(&cells, base, threads);
        assert!(
            cells.stripes_in_use(),
            "{threads} live threads with {} private slots used no stripe",
            private_slots()
        );
        let n = threads as u64 * 1000;
        assert_eq!(cells.table.read_u64(base), n);
        assert_eq!(cells.table.read_f64(base + 1), n as f64 * 0.5);
    }

    #[test]
    fn waves_of_threads_recycle_slots_and_lose_nothing() {
        let cells = Arc::new(ShardedCells::new());
        let base = cells.allocate(2).unwrap();
        // Waves past the cap: each wave's slots go back to the pool and the next wave continues
        // from their values; the threads of a wave past the cap use stripes.
        let per_wave = private_slots() + 3;
        for _ in 0..4 {
            record_from_live_threads(&cells, base, per_wave);
        }
        let n = 4 * per_wave as u64 * 1000;
        assert_eq!(cells.table.read_u64(base), n);
        assert_eq!(cells.table.read_f64(base + 1), n as f64 * 0.5);
        let arenas = cells.copies_in_use();
        assert!(
            arenas <= private_slots() + stripes(),
            "{arenas} copies for at most {} slots and {} stripes",
            private_slots(),
            stripes()
        );
    }

    #[test]
    fn copies_read_one_by_one_add_up_to_the_cell_reads() {
        let cells = Arc::new(ShardedCells::new());
        let base = cells.allocate(3).unwrap();
        for t in 0..3u64 {
            let c = Arc::clone(&cells);
            std::thread::spawn(move || {
                let local = c.table.local(base);
                local.add_u64(0, t + 1);
                local.add_u64(2, 10 * (t + 1));
            })
            .join()
            .unwrap();
        }
        let mut sums = [0u64; 3];
        cells.table.for_each_copy(base, 3, |copy, _| {
            for (sum, cell) in sums.iter_mut().zip(copy) {
                *sum += cell.load(Relaxed);
            }
        });
        assert_eq!(sums, [6, 0, 60]);
        assert_eq!(sums[0], cells.table.read_u64(base));
        assert_eq!(sums[2], cells.table.read_u64(base + 2));
    }

    #[test]
    fn a_recycled_slot_keeps_the_values_of_the_thread_that_left() {
        let cells = Arc::new(ShardedCells::new());
        let base = cells.allocate(1).unwrap();
        for _ in 0..5 {
            let c = Arc::clone(&cells);
            std::thread::spawn(move || c.table.local(base).add_u64(0, 7))
                .join()
                .unwrap();
        }
        assert_eq!(cells.table.read_u64(base), 35);
    }

    #[test]
    fn totals_read_copy_by_copy_match_the_cell_reads() {
        let cells = Arc::new(ShardedCells::new());
        let first = cells.allocate(3).unwrap();
        // A second series in the next chunk, so that the totals span two chunks.
        let second = cells.allocate(CHUNK_CELLS - 1).unwrap();
        record_from_live_threads(&cells, first, private_slots() + 2);
        std::thread::spawn({
            let c = Arc::clone(&cells);
            move || c.table.local(second).add_u64(5, 9)
        })
        .join()
        .unwrap();
        let late = cells.allocate(1).unwrap();
        cells.table.local(late).add_u64(0, 4);
        let totals = cells.totals();
        assert_eq!(totals.u64(first), cells.table.read_u64(first));
        assert_eq!(totals.u64(first), (private_slots() as u64 + 2) * 1000);
        assert_eq!(totals.u64(first + 2), 0);
        assert_eq!(totals.u64(second + 5), 9);
        assert_eq!(totals.u64(late), 4);
        let after = cells.allocate(1).unwrap();
        cells.table.local(after).add_u64(0, 2);
        assert_eq!(
            totals.u64(after),
            2,
            "a cell newer than the totals is read on its own"
        );
    }
}
