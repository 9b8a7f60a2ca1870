//! [`CowList`]: a list whose copies share what they did not change, so that a snapshot's
//! node list can be copied for an edit at a cost that does not grow with the cluster.
//!
//! Items are kept in fixed chunks of [`CHUNK`] behind reference-counted pointers, and
//! the chunk pointers behind one more. Cloning a list takes one reference; changing
//! item `i` of a shared list ([`CowList::make_mut`]) copies the chunk pointers once
//! (one per 64 items: 79 at 5,000 nodes) and then only the chunk that holds `i`
//! (64 items), however many items the list has. Reading is a slice index per level.

use std::fmt;
use std::sync::{Arc, Weak};

use rayon::prelude::*;

/// Items per chunk (a power of two: an index splits into chunk and offset by shifts).
pub const CHUNK: usize = 64;
const CHUNK_BITS: u32 = CHUNK.trailing_zeros();

/// A list of `T` in chunks shared between copies; see the module's doc.
pub struct CowList<T> {
    chunks: Arc<[Arc<[T]>]>,
    len: usize,
}

/// Which chunks a list had, without keeping their items alive: a weak reference per
/// chunk ([`CowList::mark`], [`CowList::unmarked`]). A marked chunk's allocation stays,
/// so no later chunk takes its address: a list holding the very chunk shares it, and a
/// chunk copied for an edit (`Arc::make_mut` moves a chunk out of an allocation that
/// weak references still see) has a new address.
pub struct ChunkMarks<T> {
    chunks: Vec<Weak<[T]>>,
    len: usize,
}

impl<T> Default for ChunkMarks<T> {
    fn default() -> Self {
        ChunkMarks {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Clone for CowList<T> {
    fn clone(&self) -> Self {
        CowList {
            chunks: Arc::clone(&self.chunks),
            len: self.len,
        }
    }
}

impl<T> Default for CowList<T> {
    fn default() -> Self {
        CowList {
            chunks: Arc::from(Vec::new()),
            len: 0,
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for CowList<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T> CowList<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, i: usize) -> Option<&T> {
        (i < self.len).then(|| &self.chunks[i >> CHUNK_BITS][i & (CHUNK - 1)])
    }

    /// The items in order.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter {
            chunks: self.chunks.iter(),
            current: [].iter(),
            remaining: self.len,
        }
    }

    /// The positions of the items in chunks that `marks` did not see (every position
    /// when the lengths differ), in order: the items that may have changed since the
    /// list `marks` were taken of. A chunk this list shares with that one is skipped
    /// whole; an edit copies its chunk, so a list edited since costs a pointer compare
    /// per chunk plus its changed chunks' items.
    pub fn unmarked(&self, marks: &ChunkMarks<T>) -> Vec<usize> {
        if self.len != marks.len {
            return (0..self.len).collect();
        }
        let mut at = Vec::new();
        for (c, (mine, seen)) in self.chunks.iter().zip(&marks.chunks).enumerate() {
            if !std::ptr::addr_eq(Arc::as_ptr(mine), seen.as_ptr()) {
                let start = c << CHUNK_BITS;
                at.extend(start..start + mine.len());
            }
        }
        at
    }

    /// Brings `marks` to this list: the chunks it did not see are marked now.
    pub fn mark(&self, marks: &mut ChunkMarks<T>) {
        if self.len != marks.len {
            *marks = ChunkMarks {
                chunks: self.chunks.iter().map(Arc::downgrade).collect(),
                len: self.len,
            };
            return;
        }
        for (mine, seen) in self.chunks.iter().zip(&mut marks.chunks) {
            if !std::ptr::addr_eq(Arc::as_ptr(mine), seen.as_ptr()) {
                *seen = Arc::downgrade(mine);
            }
        }
    }

    /// The items in order, in parallel (indexed: `enumerate` gives list positions).
    pub fn par_iter(&self) -> impl IndexedParallelIterator<Item = &T>
    where
        T: Send + Sync,
    {
        (0..self.len).into_par_iter().map(move |i| &self[i])
    }
}

impl<T: Clone> CowList<T> {
    /// Item `i`, writable: the chunk pointers and `i`'s chunk are copied first when
    /// another list shares them. Panics when `i` is out of bounds, as a slice does.
    pub fn make_mut(&mut self, i: usize) -> &mut T {
        assert!(
            i < self.len,
            "index {i} out of bounds for a list of {}",
            self.len
        );
        let chunk = &mut Arc::make_mut(&mut self.chunks)[i >> CHUNK_BITS];
        &mut Arc::make_mut(chunk)[i & (CHUNK - 1)]
    }

    /// The items at `positions` (ascending, each once), writable at once, as
    /// [`CowList::make_mut`] gives one: for changing them in parallel. Panics when the
    /// positions are out of order, repeated or out of bounds.
    pub fn make_mut_each(&mut self, positions: &[usize]) -> Vec<&mut T> {
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "positions must ascend, each once"
        );
        if let Some(&last) = positions.last() {
            assert!(
                last < self.len,
                "index {last} out of bounds for a list of {}",
                self.len
            );
        }
        let mut wanted = positions.iter().copied().peekable();
        let mut items = Vec::with_capacity(positions.len());
        for (c, chunk) in Arc::make_mut(&mut self.chunks).iter_mut().enumerate() {
            let start = c << CHUNK_BITS;
            if wanted.peek().is_none_or(|&i| i >= start + CHUNK) {
                continue;
            }
            for (offset, item) in Arc::make_mut(chunk).iter_mut().enumerate() {
                if wanted.next_if_eq(&(start + offset)).is_some() {
                    items.push(item);
                }
            }
        }
        items
    }
}

impl<T> From<Vec<T>> for CowList<T> {
    fn from(items: Vec<T>) -> Self {
        let len = items.len();
        let mut chunks = Vec::with_capacity(len.div_ceil(CHUNK));
        let mut items = items.into_iter();
        loop {
            let chunk: Arc<[T]> = items.by_ref().take(CHUNK).collect();
            if chunk.is_empty() {
                break;
            }
            chunks.push(chunk);
        }
        CowList {
            chunks: chunks.into(),
            len,
        }
    }
}

impl<T> FromIterator<T> for CowList<T> {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Self {
        CowList::from(items.into_iter().collect::<Vec<T>>())
    }
}

impl<T> std::ops::Index<usize> for CowList<T> {
    type Output = T;

    fn index(&self, i: usize) -> &T {
        match self.get(i) {
            Some(item) => item,
            None => panic!("index {i} out of bounds for a list of {}", self.len),
        }
    }
}

impl<'a, T> IntoIterator for &'a CowList<T> {
    type Item = &'a T;
    type IntoIter = Iter<'a, T>;

    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

/// [`CowList::iter`]: a slice iterator per chunk.
#[derive(Clone)]
pub struct Iter<'a, T> {
    chunks: std::slice::Iter<'a, Arc<[T]>>,
    current: std::slice::Iter<'a, T>,
    remaining: usize,
}

impl<'a, T> Iterator for Iter<'a, T> {
    type Item = &'a T;

    fn next(&mut self) -> Option<&'a T> {
        loop {
            if let Some(item) = self.current.next() {
                self.remaining -= 1;
                return Some(item);
            }
            self.current = self.chunks.next()?.iter();
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<T> ExactSizeIterator for Iter<'_, T> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(n: usize) -> CowList<usize> {
        (0..n).collect()
    }

    #[test]
    fn reads_as_the_vector_it_was_built_from() {
        for n in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK + 7] {
            let l = list(n);
            assert_eq!(l.len(), n);
            assert_eq!(l.is_empty(), n == 0);
            assert_eq!(
                l.iter().copied().collect::<Vec<_>>(),
                (0..n).collect::<Vec<_>>()
            );
            assert_eq!(l.iter().len(), n);
            assert_eq!(
                l.par_iter()
                    .enumerate()
                    .map(|(i, v)| (i, *v))
                    .collect::<Vec<_>>(),
                (0..n).map(|i| (i, i)).collect::<Vec<_>>()
            );
            assert!((0..n).all(|i| l[i] == i && l.get(i) == Some(&i)));
            assert_eq!(l.get(n), None);
        }
    }

    #[test]
    fn items_changed_at_once_are_those_asked_for_and_the_original_keeps_its_own() {
        let original = list(5 * CHUNK + 7);
        let mut changed = original.clone();
        let positions = [0, 3, CHUNK + 1, 4 * CHUNK, 5 * CHUNK + 6];
        for item in changed.make_mut_each(&positions) {
            *item += 1000;
        }
        for i in 0..original.len() {
            assert_eq!(original[i], i, "the original is unchanged");
            let bump = if positions.contains(&i) { 1000 } else { 0 };
            assert_eq!(changed[i], i + bump, "item {i}");
        }
        for (c, (mine, theirs)) in changed
            .chunks
            .iter()
            .zip(original.chunks.iter())
            .enumerate()
        {
            let touched = positions.iter().any(|&i| i >> CHUNK_BITS == c);
            assert_eq!(!Arc::ptr_eq(mine, theirs), touched, "chunk {c} copied");
        }
        assert!(changed.make_mut_each(&[]).is_empty());
    }

    #[test]
    #[should_panic(expected = "positions must ascend")]
    fn items_changed_at_once_cannot_repeat() {
        list(10).make_mut_each(&[3, 3]);
    }

    #[test]
    fn a_change_copies_one_chunk_and_leaves_the_original_alone() {
        let original = list(5 * CHUNK + 7);
        let mut changed = original.clone();
        *changed.make_mut(CHUNK + 3) = 1000;
        *changed.make_mut(CHUNK + 4) = 1001;
        assert_eq!(original[CHUNK + 3], CHUNK + 3, "the original is unchanged");
        assert_eq!((changed[CHUNK + 3], changed[CHUNK + 4]), (1000, 1001));
        for c in 0..original.chunks.len() {
            let shared = Arc::ptr_eq(&original.chunks[c], &changed.chunks[c]);
            assert_eq!(
                shared,
                c != 1,
                "chunk {c}: only the changed chunk is copied"
            );
        }
        let mut again = changed.clone();
        *again.make_mut(0) = 7;
        assert_eq!(changed[0], 0);
        assert!(Arc::ptr_eq(&changed.chunks[1], &again.chunks[1]));
    }

    #[test]
    fn unmarked_names_the_positions_of_the_chunks_changed_since() {
        let original = list(5 * CHUNK + 7);
        let mut marks = ChunkMarks::default();
        assert_eq!(original.unmarked(&marks).len(), 5 * CHUNK + 7);
        original.mark(&mut marks);
        assert_eq!(original.unmarked(&marks), Vec::<usize>::new());
        assert_eq!(original.clone().unmarked(&marks), Vec::<usize>::new());
        let mut changed = original.clone();
        for i in [3, 5 * CHUNK + 6] {
            *changed.make_mut(i) = 1000;
        }
        let chunk = |c: usize| c * CHUNK..((c + 1) * CHUNK).min(5 * CHUNK + 7);
        let expected: Vec<usize> = chunk(0).chain(chunk(5)).collect();
        assert_eq!(changed.unmarked(&marks), expected);
        changed.mark(&mut marks);
        assert_eq!(changed.unmarked(&marks), Vec::<usize>::new());
        assert_eq!(list(3).unmarked(&marks), vec![0, 1, 2]);
    }

    /// The marks keep no item alive, and a chunk edited in place (its list the only
    /// one holding it) still moves to a new address.
    #[test]
    fn marks_keep_no_item_alive_and_see_a_lone_list_edited() {
        let item = Arc::new(7);
        let mut l: CowList<Arc<i32>> = (0..2 * CHUNK).map(|_| Arc::clone(&item)).collect();
        let mut marks = ChunkMarks::default();
        l.mark(&mut marks);
        *l.make_mut(CHUNK + 1) = Arc::new(8);
        assert_eq!(l.unmarked(&marks), (CHUNK..2 * CHUNK).collect::<Vec<_>>());
        drop(l);
        assert_eq!(Arc::strong_count(&item), 1, "the marks hold no item");
    }

    #[test]
    fn an_unshared_list_changes_in_place() {
        let mut l = list(3 * CHUNK);
        let chunks = Arc::as_ptr(&l.chunks);
        let chunk = Arc::as_ptr(&l.chunks[2]);
        *l.make_mut(2 * CHUNK + 1) = 9;
        assert_eq!(Arc::as_ptr(&l.chunks), chunks);
        assert_eq!(Arc::as_ptr(&l.chunks[2]), chunk);
        assert_eq!(l[2 * CHUNK + 1], 9);
    }

    proptest::proptest! {
        /// Lists edited through copies read as vectors edited the same way, and no copy
        /// ever sees another's writes.
        #[test]
        fn copies_behave_as_independent_vectors(
            len in 0usize..300,
            writes in proptest::collection::vec(
                (0usize..4, proptest::sample::select(vec![0usize, 1, 63, 64, 65, 128, 299]), 0usize..1000),
                0..60,
            ),
        ) {
            let mut lists: Vec<CowList<usize>> = vec![list(len)];
            let mut models: Vec<Vec<usize>> = vec![(0..len).collect()];
            for (copy, at, value) in writes {
                // Write into an existing list, or into a fresh copy of one.
                let target = if copy < lists.len() {
                    copy
                } else {
                    let from = copy % lists.len();
                    lists.push(lists[from].clone());
                    models.push(models[from].clone());
                    lists.len() - 1
                };
                if at < len {
                    *lists[target].make_mut(at) = value;
                    models[target][at] = value;
                }
                for (l, m) in lists.iter().zip(&models) {
                    proptest::prop_assert_eq!(&l.iter().copied().collect::<Vec<_>>(), m);
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "out of bounds")]
    fn an_index_past_the_end_panics_even_inside_the_last_chunk() {
        let l = list(CHUNK + 1);
        let _ = l[CHUNK + 1];
    }
}
