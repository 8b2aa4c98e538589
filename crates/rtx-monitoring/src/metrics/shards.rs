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
//! Threads beyond [`MAX_SLOTS`] share one overflow slot updated with real read-modify-write
//! atomics: slower, still exact.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};

/// How many threads can own a private slot at once.
pub(crate) const MAX_SLOTS: usize = 128;
const CHUNK_BITS: usize = 9;
/// Cells per chunk: one chunk is 4 KiB, a page, allocated the first time a thread touches it.
pub(crate) const CHUNK_CELLS: usize = 1 << CHUNK_BITS;
const MAX_CHUNKS: usize = 2048;
/// The most cells one registry can hold (a histogram with 17 buckets uses 19).
pub(crate) const MAX_CELLS: usize = CHUNK_CELLS * MAX_CHUNKS;

const UNCLAIMED: u32 = 0;
const OVERFLOW: u32 = u32::MAX;

thread_local! {
    // 0 = no slot yet, k + 1 = owns slot k, OVERFLOW = uses the shared slot. A const
    // initializer with no destructor makes reading it a single thread-pointer-relative load.
    static SLOT: Cell<u32> = const { Cell::new(UNCLAIMED) };
    static RELEASER: SlotReleaser = const { SlotReleaser };
}

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
        if state != UNCLAIMED && state != OVERFLOW {
            SLOT.with(|s| s.set(OVERFLOW));
            // The mutex hand-off orders this thread's last stores before the next owner's loads.
            if let Ok(mut pool) = POOL.lock() {
                pool.free.push(state - 1);
            }
        }
    }
}

#[cold]
fn claim_slot() -> u32 {
    let claimed = match POOL.lock() {
        Ok(mut pool) => match pool.free.pop() {
            Some(k) => Some(k),
            None if (pool.next as usize) < MAX_SLOTS => {
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
        // slot cannot be given back later, so give it back now and use the shared slot.
        Some(k) if RELEASER.try_with(|_| ()).is_ok() => k + 1,
        Some(k) => {
            if let Ok(mut pool) = POOL.lock() {
                pool.free.push(k);
            }
            OVERFLOW
        }
        None => OVERFLOW,
    };
    SLOT.with(|s| s.set(state));
    state
}

/// The calling thread's slot, or `None` for the shared overflow slot.
#[inline(always)]
fn current_slot() -> Option<usize> {
    let mut state = SLOT.with(Cell::get);
    if state == UNCLAIMED {
        state = claim_slot();
    }
    if state == OVERFLOW {
        None
    } else {
        Some(state as usize - 1)
    }
}

type Chunk = [AtomicU64; CHUNK_CELLS];

/// One slot's copy of every cell, in lazily allocated chunks.
struct Arena {
    chunks: Box<[OnceLock<Box<Chunk>>]>,
}

impl Arena {
    fn new() -> Self {
        Self {
            chunks: (0..MAX_CHUNKS).map(|_| OnceLock::new()).collect(),
        }
    }

    #[inline(always)]
    fn chunk(&self, index: usize) -> &Chunk {
        self.chunks[index].get_or_init(new_chunk)
    }

    #[inline]
    fn peek(&self, cell: usize) -> u64 {
        self.chunks[cell >> CHUNK_BITS]
            .get()
            .map_or(0, |c| c[cell & (CHUNK_CELLS - 1)].load(Relaxed))
    }
}

#[cold]
fn new_chunk() -> Box<Chunk> {
    Box::new(std::array::from_fn(|_| AtomicU64::new(0)))
}

/// All cells of one registry: one arena per slot plus the shared overflow arena.
#[doc(hidden)]
pub struct ShardedCells {
    slots: Box<[OnceLock<Arena>]>,
    overflow: Arena,
    next_cell: Mutex<usize>,
}

impl std::fmt::Debug for ShardedCells {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedCells")
            .field("cells", &self.allocated())
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
}

impl ShardedCells {
    pub(crate) fn new() -> Self {
        Self {
            slots: (0..MAX_SLOTS).map(|_| OnceLock::new()).collect(),
            overflow: Arena::new(),
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

    /// The calling thread's view of the cells starting at `base`.
    #[inline(always)]
    pub(crate) fn local(&self, base: usize) -> LocalCells<'_> {
        let (arena, exclusive) = match current_slot() {
            Some(k) => (self.slots[k].get_or_init(Arena::new), true),
            None => (&self.overflow, false),
        };
        LocalCells {
            chunk: arena.chunk(base >> CHUNK_BITS),
            base: base & (CHUNK_CELLS - 1),
            exclusive,
        }
    }

    /// Sum of an integer cell over every slot.
    pub(crate) fn read_u64(&self, cell: usize) -> u64 {
        self.live_arenas()
            .fold(0u64, |sum, arena| sum.wrapping_add(arena.peek(cell)))
    }

    /// Sum of a floating-point cell over every slot.
    pub(crate) fn read_f64(&self, cell: usize) -> f64 {
        self.live_arenas()
            .map(|arena| f64::from_bits(arena.peek(cell)))
            .sum()
    }

    fn live_arenas(&self) -> impl Iterator<Item = &Arena> {
        let high = HIGH_WATER.load(Relaxed).min(MAX_SLOTS);
        self.slots[..high]
            .iter()
            .filter_map(OnceLock::get)
            .chain(std::iter::once(&self.overflow))
    }

    /// Bytes held by allocated chunks: what the memory figures in the docs count.
    pub(crate) fn heap_bytes(&self) -> usize {
        let arenas = self
            .slots
            .iter()
            .filter_map(OnceLock::get)
            .chain(std::iter::once(&self.overflow));
        arenas
            .map(|a| {
                let chunks = a.chunks.iter().filter(|c| c.get().is_some()).count();
                chunks * std::mem::size_of::<Chunk>()
                    + a.chunks.len() * std::mem::size_of::<OnceLock<Box<Chunk>>>()
            })
            .sum()
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

    #[test]
    fn many_threads_lose_no_increment_even_past_the_slot_limit() {
        let cells = Arc::new(ShardedCells::new());
        let base = cells.allocate(2).unwrap();
        // More threads than private slots, in waves, so slots are recycled and overflow is used.
        let threads: Vec<_> = (0..MAX_SLOTS + 40)
            .map(|_| {
                let cells = Arc::clone(&cells);
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        let local = cells.local(base);
                        local.add_u64(0, 1);
                        local.add_f64(1, 0.5);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let n = (MAX_SLOTS + 40) as u64 * 1000;
        assert_eq!(cells.read_u64(base), n);
        assert_eq!(cells.read_f64(base + 1), n as f64 * 0.5);
    }

    #[test]
    fn a_recycled_slot_keeps_the_values_of_the_thread_that_left() {
        let cells = Arc::new(ShardedCells::new());
        let base = cells.allocate(1).unwrap();
        for _ in 0..5 {
            let c = Arc::clone(&cells);
            std::thread::spawn(move || c.local(base).add_u64(0, 7))
                .join()
                .unwrap();
        }
        assert_eq!(cells.read_u64(base), 35);
    }
}
