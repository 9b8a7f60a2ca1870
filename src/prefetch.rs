//! Hints that ask the CPU to bring memory into its cache ahead of use.
//!
//! A batch of watch events spread over a cluster copies one node per event, and frees
//! the copy it replaces a moment later. Each copy raises the reference count of every
//! pod on the node, each drop lowers them, and the pod that a new version replaced is
//! freed block by block: a few dozen lines of memory per event that no core has touched
//! since the pod was decoded. An atomic count update or a free that misses the cache
//! waits for that line before the next one is even asked for; asking for all of them
//! first lets the misses overlap. A query's preemption screen and dry runs are the
//! other user: a few dozen instructions per node over every node of the cluster, each
//! reading a chain of blocks (the node, its `Node` and ladder, the ladder's priorities
//! and rungs) that the nodes a few places ahead can ask for while it runs. These
//! functions only ask: they never fault, whatever the address, and do nothing on
//! targets without a prefetch instruction.

use std::sync::Arc;

/// Asks for the cache line holding the byte at `at`.
#[inline(always)]
fn line(at: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint; it reads nothing and cannot fault, whatever the
    // address (`_mm_prefetch` is unsafe only as every intrinsic is).
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(at.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

/// Asks for the line holding `arc`'s reference counts, which sit just before its value
/// in the same allocation (two words before it, for values aligned to at most 16 bytes;
/// a value aligned more strictly has padding there, and the hint misses harmlessly).
#[inline(always)]
pub fn counts_of<T>(arc: &Arc<T>) {
    line(
        Arc::as_ptr(arc)
            .cast::<u8>()
            .wrapping_sub(2 * size_of::<usize>()),
    );
}

/// Asks for every line of the allocation behind `arc`: its counts and its value (all of
/// it, for values aligned to at most 16 bytes, as [`counts_of`] says).
#[inline(always)]
pub fn block_of<T>(arc: &Arc<T>) {
    let counts = 2 * size_of::<usize>();
    let start = Arc::as_ptr(arc).cast::<u8>().wrapping_sub(counts);
    for at in lines_of(start, counts + size_of::<T>()) {
        line(at);
    }
}

/// Asks for every line of `items`' buffer.
#[inline(always)]
pub fn all_of<T>(items: &[T]) {
    for at in lines_of(items.as_ptr().cast(), size_of_val(items)) {
        line(at);
    }
}

/// The size of a cache line on the targets that have prefetch hints.
const LINE: usize = 64;

/// The start of every cache line that the `len` bytes from `start` touch.
fn lines_of(start: *const u8, len: usize) -> impl Iterator<Item = *const u8> {
    let first = start.wrapping_sub(start.addr() % LINE);
    let count = (start.addr() % LINE + len).div_ceil(LINE);
    (0..count).map(move |i| first.wrapping_add(i * LINE))
}

/// Asks for the first line of the heap block behind `items`' buffer (none is asked for
/// an empty one, which has no block).
#[inline(always)]
pub fn buffer_of<T>(items: &[T]) {
    if !items.is_empty() {
        line(items.as_ptr().cast());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asking_never_faults_whatever_the_address() {
        line(std::ptr::null());
        line(usize::MAX as *const u8);
        line(std::ptr::dangling());
        let freed = Arc::new([0u64; 8]);
        let at = Arc::as_ptr(&freed).cast::<u8>();
        drop(freed);
        line(at);
        counts_of(&Arc::new(()));
        buffer_of::<u8>(&[]);
        buffer_of(&[1u8, 2, 3]);
        block_of(&Arc::new([0u8; 1000]));
        all_of::<u64>(&[]);
        all_of(&[7u64; 100]);
    }

    #[test]
    fn a_blocks_lines_cover_it_whatever_its_alignment() {
        let lines = |start: usize, len: usize| -> Vec<usize> {
            let start = std::ptr::without_provenance::<u8>(start);
            lines_of(start, len).map(|at| at.addr()).collect()
        };
        assert_eq!(lines(640, 64), [640]);
        assert_eq!(lines(640, 65), [640, 704]);
        assert_eq!(lines(700, 10), [640, 704]);
        assert_eq!(lines(703, 1), [640]);
        // A 472-byte block starting 48 bytes into a line touches 9 lines, not 8.
        assert_eq!(
            lines(640 + 48, 472),
            (0..9).map(|i| 640 + 64 * i).collect::<Vec<_>>()
        );
        assert_eq!(lines(640, 0), Vec::<usize>::new());
    }
}
