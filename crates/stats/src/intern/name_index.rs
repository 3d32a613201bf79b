//! A read-only index of names to ids for the ids a file repeats on every line (annotators,
//! labels). Names of up to 15 bytes — nearly every id — are packed into one 128-bit
//! integer each, so a lookup is a multiply and a compare of two words, with no hashing of
//! bytes and no visit to a name arena; longer names are looked up in a copy of the
//! interner.

use super::{Interner, le_u32, le_u64};

/// Longest name that packs into a key.
const MOST_PACKED_BYTES: usize = 15;

#[derive(Clone, Copy)]
struct Slot {
    key: [u64; 2],
    /// `u32::MAX` for an empty slot.
    id: u32,
}

const EMPTY: Slot = Slot {
    key: [0, 0],
    id: u32::MAX,
};

pub struct NameIndex {
    /// Open addressing with linear probing, at most half full.
    slots: Vec<Slot>,
    /// Right shift that turns a 64-bit hash into a slot.
    shift: u32,
    /// Every name, for names too long to pack (only when there are any).
    long: Option<Interner>,
    /// Names indexed.
    len: usize,
}

impl NameIndex {
    /// An index of every name `names` holds, with the same ids.
    pub fn of(names: &Interner) -> Self {
        let capacity = (names.len() * 2).next_power_of_two().max(16);
        let mut index = Self {
            slots: vec![EMPTY; capacity],
            shift: 64 - capacity.trailing_zeros(),
            long: None,
            len: names.len(),
        };
        for (id, name) in names.names().enumerate() {
            match pack(name.as_bytes()) {
                Some(key) => index.insert(key, id as u32),
                None if index.long.is_none() => index.long = Some(names.clone()),
                None => {}
            }
        }
        index
    }

    /// The number of names indexed.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn slot_of(&self, key: [u64; 2]) -> usize {
        let folded = key[0] ^ key[1].rotate_left(29).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (folded.wrapping_mul(0xD6E8_FEB8_6659_FD93) >> self.shift) as usize
    }

    fn insert(&mut self, key: [u64; 2], id: u32) {
        let mask = self.slots.len() - 1;
        let mut at = self.slot_of(key);
        while self.slots[at].id != u32::MAX {
            at = (at + 1) & mask;
        }
        self.slots[at] = Slot { key, id };
    }

    /// The id of `name`, if the index holds it. Always inlined: called for two fields of
    /// every line, from another crate, and a call cost more than the lookup.
    #[inline(always)]
    pub fn get(&self, name: &str) -> Option<u32> {
        let Some(key) = pack(name.as_bytes()) else {
            return self.long.as_ref().and_then(|names| names.get(name));
        };
        let mask = self.slots.len() - 1;
        let mut at = self.slot_of(key);
        loop {
            let slot = self.slots[at];
            if slot.id == u32::MAX {
                return None;
            }
            if slot.key == key {
                return Some(slot.id);
            }
            at = (at + 1) & mask;
        }
    }
}

/// The name's bytes and length in one 128-bit key, as two words; `None` past 15 bytes.
/// Bytes are read with loads that may overlap (no copy of a variable length), and the
/// length goes in the top byte, which no packed name reaches.
#[inline]
fn pack(name: &[u8]) -> Option<[u64; 2]> {
    let n = name.len();
    let word = |at: usize| le_u64(name, at);
    let half = |at: usize| u64::from(le_u32(name, at));
    let byte = |at: usize| u64::from(name[at]) << (8 * at);
    let (low, high) = match n {
        0 => (0, 0),
        1..4 => (byte(0) | byte(n / 2) | byte(n - 1), 0),
        4..8 => (half(0) | (half(n - 4) << (8 * (n - 4))), 0),
        8 => (word(0), 0),
        9..=MOST_PACKED_BYTES => (word(0), word(n - 8) >> (8 * (16 - n))),
        _ => return None,
    };
    Some([low, high | ((n as u64) << 56)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_keys_differ_exactly_when_names_do() {
        let mut names = vec![String::new()];
        for n in 1..=MOST_PACKED_BYTES {
            let base: String = "abcdefghijklmnopq"[..n].to_owned();
            for at in 0..n {
                let mut bytes = base.as_bytes().to_vec();
                bytes[at] = b'Z';
                names.push(String::from_utf8(bytes).unwrap());
            }
            names.push(base.clone());
            names.push(format!("{}\0", &base[..n - 1]));
        }
        for a in &names {
            for b in &names {
                assert_eq!(
                    pack(a.as_bytes()) == pack(b.as_bytes()),
                    a == b,
                    "{a:?} {b:?}"
                );
            }
        }
        assert!(pack(b"sixteen bytes!!!").is_none());
    }

    #[test]
    fn the_index_finds_every_name_with_its_interned_id() {
        let mut interner = Interner::new();
        let names: Vec<String> = (0..5_000)
            .map(|n| match n % 4 {
                0 => format!("{n}"),
                1 => format!("annotator-{n}"),
                2 => format!("a rather long annotator name {n}"),
                _ => format!("é{n}"),
            })
            .collect();
        for name in &names {
            interner.intern(name);
        }
        let index = NameIndex::of(&interner);
        for name in &names {
            assert_eq!(index.get(name), interner.get(name), "{name}");
        }
        for absent in [
            "",
            "5001",
            "annotator-5001",
            "a rather long annotator name x",
            "é",
        ] {
            assert_eq!(index.get(absent), None, "{absent}");
        }
        let short_only = NameIndex::of(&interner.names().take(2).fold(
            Interner::new(),
            |mut names, name| {
                names.intern(name);
                names
            },
        ));
        assert!(
            short_only.long.is_none(),
            "short names need no copy of the interner"
        );
        assert_eq!(short_only.get("annotator-1"), Some(1));
    }
}
