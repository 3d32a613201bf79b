//! The interner's hash table: each name's id, found by the name's hash, in open addressing
//! with linear probing. It is the interner's own rather than hashbrown's so that a batch of
//! names can fetch each name's slot a few names ahead ([`IdTable::prefetch`]): merging a
//! million new item names into the global table was otherwise a chain of cache misses, one
//! name after the other, on the reader's merging thread.

use crate::buffers::prefetch;

/// Per slot, one byte tells empty (0) from taken (the top bit set, and the hash's top seven
/// bits below it), so a probe reads a name only on a 1-in-128 false match; the ids sit in a
/// parallel array. Five bytes a slot, as hashbrown's table took.
#[derive(Clone, Default)]
pub(super) struct IdTable {
    tags: Vec<u8>,
    ids: Vec<u32>,
    len: usize,
}

/// Where a probe for a name ended.
pub(super) enum Probe {
    Found(u32),
    /// The name is absent; this empty slot is where it goes (until the table changes).
    Vacant(usize),
}

/// The byte that marks a slot taken by a name with this hash.
#[inline(always)]
fn tag_of(hash: u64) -> u8 {
    0x80 | (hash >> 57) as u8
}

impl IdTable {
    /// A table that holds `names` names before it must grow.
    pub(super) fn with_capacity(names: usize) -> Self {
        // At most seven eighths full, so every probe meets an empty slot.
        let slots = (names * 8).div_ceil(7).next_power_of_two().max(16);
        Self {
            tags: vec![0; slots],
            ids: vec![0; slots],
            len: 0,
        }
    }

    /// Names it holds before it must grow.
    pub(super) fn capacity(&self) -> usize {
        self.tags.len() / 8 * 7
    }

    pub(super) fn is_full(&self) -> bool {
        self.len >= self.capacity()
    }

    /// Bytes of its two arrays.
    pub(super) fn heap_bytes(&self) -> usize {
        self.tags.capacity() + self.ids.capacity() * 4
    }

    /// The id whose name has `hash` and passes `is_name`, or the empty slot where it goes.
    #[inline(always)]
    pub(super) fn find(&self, hash: u64, mut is_name: impl FnMut(u32) -> bool) -> Probe {
        if self.tags.is_empty() {
            return Probe::Vacant(0);
        }
        let tag = tag_of(hash);
        let mask = self.tags.len() - 1;
        let mut slot = hash as usize & mask;
        loop {
            let taken = self.tags[slot];
            if taken == 0 {
                return Probe::Vacant(slot);
            }
            if taken == tag && is_name(self.ids[slot]) {
                return Probe::Found(self.ids[slot]);
            }
            slot = (slot + 1) & mask;
        }
    }

    /// Puts `id` in `slot`, an empty slot [`IdTable::find`] returned for `hash` with no
    /// change to the table since. The caller makes room first ([`IdTable::is_full`]).
    #[inline(always)]
    pub(super) fn fill(&mut self, slot: usize, hash: u64, id: u32) {
        self.tags[slot] = tag_of(hash);
        self.ids[slot] = id;
        self.len += 1;
    }

    /// Puts `id`, known to be absent, in the first empty slot for `hash`.
    pub(super) fn insert_absent(&mut self, hash: u64, id: u32) {
        if let Probe::Vacant(slot) = self.find(hash, |_| false) {
            self.fill(slot, hash, id);
        }
    }

    /// Starts fetching the first slot a probe for `hash` reads.
    #[inline(always)]
    pub(super) fn prefetch(&self, hash: u64) {
        if !self.tags.is_empty() {
            let slot = hash as usize & (self.tags.len() - 1);
            prefetch(&self.tags, slot);
            prefetch(&self.ids, slot);
        }
    }
}
