//! What the in-process benches share (`#[path = "support/mod.rs"] mod support;` in each):
//! nearest-rank percentiles over sorted samples, an allocation counter installed as the
//! bench binary's global allocator, and the machine line of the report.

#![allow(dead_code)] // each bench uses what it needs

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Sorted per-iteration times.
pub struct Samples(pub Vec<Duration>);

impl Samples {
    pub fn new(mut v: Vec<Duration>) -> Self {
        v.sort_unstable();
        Samples(v)
    }

    /// Nearest rank: the smallest sample with at least `p` of them at or below it.
    pub fn percentile(&self, p: f64) -> Duration {
        let n = self.0.len();
        let rank = ((p * n as f64).ceil() as usize).clamp(1, n);
        self.0[rank - 1]
    }

    pub fn max(&self) -> Duration {
        *self.0.last().expect("samples")
    }
}

/// Counts heap allocations while `COUNTING` is on (off while timing: a relaxed load is all it
/// costs then).
struct CountingAlloc;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

fn count() {
    if COUNTING.load(Ordering::Relaxed) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call is passed on to the system allocator unchanged.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc;

pub fn start_counting() {
    ALLOCATIONS.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::Relaxed);
}

/// Allocations (and reallocations) since `start_counting`.
pub fn stop_counting() -> u64 {
    COUNTING.store(false, Ordering::Relaxed);
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// Allocations one run of `f` makes; what it returns is dropped uncounted.
pub fn allocations<T>(f: impl FnOnce() -> T) -> u64 {
    start_counting();
    let out = black_box(f());
    let n = stop_counting();
    drop(out);
    n
}

/// "2 CPUs, AMD EPYC …, x86_64" from /proc/cpuinfo where it can be read.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cpus} CPUs, {model}, {}", std::env::consts::ARCH)
}
