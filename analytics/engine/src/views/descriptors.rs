//! What views derive once per call-site descriptor of a block (a log row's level, target and
//! message; a metric row's name, unit and target), found again by the descriptor's id.

use super::block_source::Rollback;
use super::columns::{EventRows, ViewColumns};
use crate::decode::{id_slot, le_word, RunTypes, Taken, Udt, UdtTable};
use crate::time::TickConverter;
use std::collections::HashMap;

/// Where a static event type (a descriptor reference and a time; the rest of its row comes from
/// the descriptor) keeps its descriptor id and time: byte offsets in its events.
#[derive(Clone, Copy, Default)]
pub struct StaticAt {
    pub desc: usize,
    pub time: usize,
}

/// A fast path's layout of a static event type, for [`DescriptorMemo::take_run`].
pub trait StaticLayout: Copy + Default {
    fn at(&self) -> StaticAt;
}

impl StaticLayout for StaticAt {
    fn at(&self) -> StaticAt {
        *self
    }
}

/// The rows of a view with a static-event fast path, and what that path shares with the walk: the
/// rows of the block's descriptors (`D`).
#[derive(Default)]
pub struct StaticBuild<V, D> {
    pub rows: EventRows<V>,
    pub descriptors: D,
}

impl<V: ViewColumns, D> Rollback for StaticBuild<V, D> {
    fn len(&self) -> usize {
        self.rows.len()
    }
    fn truncate(&mut self, len: usize) {
        self.rows.truncate(len)
    }
}

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

    /// A view's fast path: the run of events of one record length `stride` from the start of
    /// `records`, of the types `learn` admits ([`RunTypes::take_run`]), as long as each one's
    /// descriptor already has a row in this block (the walk resolved it: the first event of each
    /// descriptor goes through the walk). `take(layout, event, row, time in ns)` gets each.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub fn take_run<L: StaticLayout>(
        &self,
        records: &[u8],
        stride: usize,
        fast: &mut RunTypes<L>,
        table: &UdtTable,
        learn: impl Fn(&Udt, &[usize]) -> Option<L> + Copy,
        converter: &TickConverter,
        mut take: impl FnMut(&L, &[u8], &T, i64),
    ) -> Taken {
        fast.take_run(records, stride, table, learn, |t, event| {
            let at = t.at();
            let Some(row) = self.get(le_word(event, at.desc)) else { return false };
            take(t, event, row, converter.ticks_to_ns(le_word(event, at.time) as i64));
            true
        })
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
