//! What views derive once per call-site descriptor of a block (a log row's level, target and
//! message; a metric row's name, unit and target), found again by the descriptor's id.

use crate::decode::id_slot;
use std::collections::HashMap;

/// Rows by descriptor id, for the current block (ids are only unique within a block). A block has
/// a few descriptors used over and over: their [`id_slot`] finds them; the others, whose slot a
/// later one took, are found by the map.
pub struct DescriptorMemo<T> {
    slots: [u32; 64],
    rows: Vec<(u64, T)>,
    index: HashMap<u64, usize, ahash::RandomState>,
}

impl<T> Default for DescriptorMemo<T> {
    fn default() -> Self {
        Self { slots: [u32::MAX; 64], rows: Vec::new(), index: HashMap::default() }
    }
}

impl<T> DescriptorMemo<T> {
    /// Between blocks.
    pub fn clear(&mut self) {
        self.slots = [u32::MAX; 64];
        self.rows.clear();
        self.index.clear();
    }

    #[inline]
    pub fn get(&self, id: u64) -> Option<&T> {
        let i = self.slots[id_slot(id)] as usize;
        match self.rows.get(i) {
            Some((at, row)) if *at == id => Some(row),
            _ => self.index.get(&id).map(|&i| &self.rows[i].1),
        }
    }

    /// The slot keeps the latest descriptor that hashed to it.
    pub fn insert(&mut self, id: u64, row: T) -> &T {
        self.slots[id_slot(id)] = self.rows.len() as u32;
        self.index.insert(id, self.rows.len());
        self.rows.push((id, row));
        &self.rows.last().expect("just pushed").1
    }
}

#[cfg(test)]
mod tests {
    use super::DescriptorMemo;

    #[test]
    fn every_descriptor_is_found_when_slots_collide() {
        let mut memo = DescriptorMemo::default();
        // 300 descriptors share 64 slots; ids are addresses, 8 apart.
        let id = |i: u32| 0x7f00_0000_1000u64 + 8 * i as u64;
        for i in 0..300 {
            assert!(memo.get(id(i)).is_none());
            memo.insert(id(i), i);
        }
        for i in (0..300).rev() {
            assert_eq!(memo.get(id(i)), Some(&i));
        }
        memo.clear();
        assert!(memo.get(id(5)).is_none());
    }
}
