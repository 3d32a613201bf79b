//! String interning: every id (item, annotator, raw label) becomes a dense `u32`.
//!
//! Names live in one byte arena with offsets, and the hash table stores only ids,
//! so an interned name costs its bytes plus about ten bytes of bookkeeping. (The table's
//! tag bytes hold seven bits of each hash, so a probe reads a name only on a 1-in-128
//! false match; storing more hash bits beside the id cost memory and saved nothing.)

use std::hash::BuildHasher;

use rustc_hash::FxBuildHasher;

mod id_table;
mod name_index;
use id_table::{IdTable, Probe};
pub use name_index::NameIndex;

/// How many names ahead [`Interner::intern_all`] fetches a name's slot.
const FETCH_AHEAD: usize = 16;

/// A set of distinct strings, each with a dense id in first-seen order.
#[derive(Clone, Default)]
pub struct Interner {
    arena: String,
    ends: Vec<u32>,
    /// Ids, found by their names' hashes.
    table: IdTable,
}

fn hash_str(s: &str) -> u64 {
    FxBuildHasher.hash_one(s)
}

impl Interner {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(names: usize, bytes: usize) -> Self {
        Self {
            arena: String::with_capacity(bytes),
            ends: Vec::with_capacity(names),
            table: IdTable::with_capacity(names),
        }
    }

    /// Number of distinct strings.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The string behind `id`. Panics if `id` was not produced by this interner.
    pub fn name(&self, id: u32) -> &str {
        let id = id as usize;
        let start = if id == 0 {
            0
        } else {
            self.ends[id - 1] as usize
        };
        &self.arena[start..self.ends[id] as usize]
    }

    /// The id of `name`, if it was interned.
    pub fn get(&self, name: &str) -> Option<u32> {
        match self.find(name, hash_str(name)) {
            Probe::Found(id) => Some(id),
            Probe::Vacant(_) => None,
        }
    }

    #[inline(always)]
    fn find(&self, name: &str, hash: u64) -> Probe {
        let (arena, ends) = (&self.arena, &self.ends);
        self.table
            .find(hash, |id| same_name(name_of(arena, ends, id), name))
    }

    /// The id of `name`, interning it if new. Returns `(id, was_new)`.
    pub fn intern(&mut self, name: &str) -> (u32, bool) {
        self.intern_hashed(name, hash_str(name))
    }

    #[inline(always)]
    fn intern_hashed(&mut self, name: &str, hash: u64) -> (u32, bool) {
        let slot = match self.find(name, hash) {
            Probe::Found(id) => return (id, false),
            Probe::Vacant(slot) => slot,
        };
        // Growing moves every slot, so the name then takes the first empty one in the new
        // table (it is known to be absent: no names are compared again).
        let grown = self.table.is_full();
        if grown {
            self.grow();
        }
        let id = u32::try_from(self.ends.len()).expect("more than 4 billion distinct ids");
        self.arena.push_str(name);
        self.ends
            .push(u32::try_from(self.arena.len()).expect("interned names exceed 4 GiB"));
        if grown {
            self.table.insert_absent(hash, id);
        } else {
            self.table.fill(slot, hash, id);
        }
        (id, true)
    }

    /// The id of every name, interning new ones in order: the same ids as
    /// [`Interner::intern`] on each in turn, but each name's slot is fetched a few names
    /// ahead, so a batch into a table larger than the cache waits on memory for many names
    /// at once instead of for each name in turn.
    pub fn intern_all<'a>(&mut self, names: impl Iterator<Item = &'a str>) -> Vec<u32> {
        let names: Vec<(&str, u64)> = names.map(|name| (name, hash_str(name))).collect();
        let mut ids = Vec::with_capacity(names.len());
        for (at, &(name, hash)) in names.iter().enumerate() {
            if let Some(&(_, ahead)) = names.get(at + FETCH_AHEAD) {
                self.table.prefetch(ahead);
            }
            ids.push(self.intern_hashed(name, hash).0);
        }
        ids
    }

    /// Room for `names` more names of `bytes` bytes in all, so that interning them re-hashes
    /// nothing: a caller that can estimate how many names are coming saves every doubling of
    /// the table on the way (each re-inserts every name so far).
    pub fn reserve(&mut self, names: usize, bytes: usize) {
        let wanted = self.len() + names;
        if wanted > self.table.capacity() {
            self.rebuild_table(wanted);
        }
        self.arena.reserve(bytes);
        self.ends.reserve(names);
    }

    /// Twice the room in the table.
    fn grow(&mut self) {
        self.rebuild_table((self.table.capacity() * 2).max(16));
    }

    /// A table with room for `capacity` names, filled in id order: the arena is read front
    /// to back (re-hashing in slot order, a random walk over the arena, was a sixth of
    /// reading a file with a million items).
    fn rebuild_table(&mut self, capacity: usize) {
        let mut table = IdTable::with_capacity(capacity);
        for id in 0..self.ends.len() as u32 {
            table.insert_absent(hash_str(name_of(&self.arena, &self.ends, id)), id);
        }
        self.table = table;
    }

    /// All names in id order.
    pub fn names(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        (0..self.len() as u32).map(move |id| self.name(id))
    }

    /// Bytes of all names together.
    pub fn name_bytes(&self) -> usize {
        self.arena.len()
    }

    /// Heap bytes held (arena, offsets and table), for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        self.arena.capacity() + self.ends.capacity() * 4 + self.table.heap_bytes()
    }
}

/// Whether two names are equal, without a call to the C library's `memcmp` for names of
/// up to 16 bytes (nearly every id): two loads that may overlap, compared as integers.
#[inline]
pub fn same_name(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0 => true,
        1..4 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..8 => le_u32(a, 0) == le_u32(b, 0) && le_u32(a, n - 4) == le_u32(b, n - 4),
        8..=16 => le_u64(a, 0) == le_u64(b, 0) && le_u64(a, n - 8) == le_u64(b, n - 8),
        _ => a == b,
    }
}

/// The eight bytes of `x` from `at`, as one little-endian integer.
#[inline]
fn le_u64(x: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&x[at..at + 8]);
    u64::from_le_bytes(bytes)
}

/// The four bytes of `x` from `at`, as one little-endian integer.
#[inline]
fn le_u32(x: &[u8], at: usize) -> u32 {
    let mut bytes = [0u8; 4];
    bytes.copy_from_slice(&x[at..at + 4]);
    u32::from_le_bytes(bytes)
}

#[inline]
fn name_of<'a>(arena: &'a str, ends: &[u32], id: u32) -> &'a str {
    let id = id as usize;
    let start = if id == 0 { 0 } else { ends[id - 1] as usize };
    &arena[start..ends[id] as usize]
}

impl std::fmt::Debug for Interner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_gives_dense_ids_in_first_seen_order() {
        let mut interner = Interner::new();
        assert_eq!(interner.intern("b"), (0, true));
        assert_eq!(interner.intern("a"), (1, true));
        assert_eq!(interner.intern("b"), (0, false));
        assert_eq!(interner.name(1), "a");
        assert_eq!(interner.get("a"), Some(1));
        assert_eq!(interner.get("c"), None);
        assert_eq!(interner.names().collect::<Vec<_>>(), ["b", "a"]);
    }

    /// Room reserved part way keeps every id, and the names interned after it fit without
    /// the table growing again.
    #[test]
    fn room_reserved_part_way_keeps_every_id_and_spares_the_growth() {
        let name = |n: u32| format!("track-{n:07}");
        let mut interner = Interner::new();
        for n in 0..1_000 {
            interner.intern(&name(n));
        }
        interner.reserve(99_000, 99_000 * 13);
        let room = interner.table.capacity();
        assert!(room >= 100_000);
        for n in 1_000..100_000 {
            assert_eq!(interner.intern(&name(n)), (n, true));
        }
        assert_eq!(
            interner.table.capacity(),
            room,
            "no growth after the reserve"
        );
        for n in 0..100_000 {
            assert_eq!(interner.get(&name(n)), Some(n));
        }
        interner.reserve(0, 0);
        assert_eq!(
            interner.table.capacity(),
            room,
            "nothing to add, nothing rebuilt"
        );
    }

    #[test]
    fn every_name_keeps_its_id_through_the_tables_growth() {
        for mut interner in [Interner::new(), Interner::with_capacity(1_000, 8_000)] {
            let name = |n: u32| format!("item-{}", n.wrapping_mul(2_654_435_761));
            for n in 0..100_000 {
                assert_eq!(interner.intern(&name(n)), (n, true));
            }
            for n in (0..100_000).rev() {
                assert_eq!(interner.intern(&name(n)), (n, false));
                assert_eq!(interner.get(&name(n)), Some(n));
            }
            assert_eq!(interner.get("item-x"), None);
            assert_eq!(interner.len(), 100_000);
        }
    }

    /// A batch gives every name the id interning it alone would: names met before, names
    /// repeated inside the batch, and the table growing part way through.
    #[test]
    fn a_batch_gets_the_ids_of_interning_one_name_at_a_time() {
        let name = |n: u32| format!("episode-{}", n.wrapping_mul(2_654_435_761) % 30_000);
        let mut one_by_one = Interner::new();
        let mut batched = Interner::new();
        for batch in 0..6u32 {
            let names: Vec<String> = (batch * 9_000..batch * 9_000 + 12_000).map(name).collect();
            let expected: Vec<u32> = names.iter().map(|n| one_by_one.intern(n).0).collect();
            assert_eq!(
                batched.intern_all(names.iter().map(String::as_str)),
                expected
            );
        }
        assert_eq!(batched.len(), one_by_one.len());
        assert!(batched.names().eq(one_by_one.names()));
        assert_eq!(batched.intern_all(std::iter::empty()), Vec::<u32>::new());
    }

    #[test]
    fn names_are_equal_exactly_when_their_bytes_are() {
        let names: Vec<String> = (0..=20)
            .flat_map(|n| {
                let base = "abcdefghijklmnopqrstu"[..n].to_owned();
                // The same length with one byte changed at each place.
                let changed = (0..n).map(move |at| {
                    let mut bytes = b"abcdefghijklmnopqrstu"[..n].to_vec();
                    bytes[at] = b'Z';
                    String::from_utf8(bytes).unwrap()
                });
                std::iter::once(base).chain(changed)
            })
            .collect();
        for a in &names {
            for b in &names {
                assert_eq!(same_name(a, b), a == b, "{a:?} and {b:?}");
            }
        }
    }

    #[test]
    fn empty_and_unicode_names_round_trip() {
        let mut interner = Interner::new();
        let ids: Vec<u32> = ["", "é", "日本", ""]
            .iter()
            .map(|s| interner.intern(s).0)
            .collect();
        assert_eq!(ids, [0, 1, 2, 0]);
        assert_eq!(interner.name(2), "日本");
    }
}
