//! The range cache: descriptors seen so far, keyed by end key, and the
//! leaseholder each range last answered from.
//!
//! Entries come from meta lookups and from the descriptors that replicas
//! attach to `RangeKeyMismatch` and `NotLeaseholder`. They may be stale; a
//! stale entry costs one redirected request, after which it is replaced.

use std::collections::BTreeMap;
use std::ops::Bound;

use meridian_kvapi::{NodeId, RangeDescriptor, RangeId};
use parking_lot::RwLock;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedRange {
    pub descriptor: RangeDescriptor,
    pub leaseholder: Option<NodeId>,
}

#[derive(Debug, Default)]
pub struct RangeCache {
    /// By end key: the range containing `k` is the first entry whose end
    /// key is greater than `k`, if its start key is at most `k`.
    ranges: RwLock<BTreeMap<Vec<u8>, CachedRange>>,
}

impl RangeCache {
    /// The cached range containing `key`.
    pub fn lookup(&self, key: &[u8]) -> Option<CachedRange> {
        let ranges = self.ranges.read();
        let (_, entry) = ranges
            .range::<[u8], _>((Bound::Excluded(key), Bound::Unbounded))
            .next()?;
        (entry.descriptor.start_key.as_slice() <= key).then(|| entry.clone())
    }

    /// The cached range holding the key just below `key` (its start key is
    /// below `key` and its end key at or above it): where a reverse scan
    /// ending at `key` continues.
    pub fn lookup_before(&self, key: &[u8]) -> Option<CachedRange> {
        let ranges = self.ranges.read();
        let (_, entry) = ranges
            .range::<[u8], _>((Bound::Included(key), Bound::Unbounded))
            .next()?;
        (entry.descriptor.start_key.as_slice() < key).then(|| entry.clone())
    }

    /// Adds `descriptor`, evicting the entries it overlaps, unless the cache
    /// knows a newer generation of the same range.
    pub fn insert(&self, descriptor: RangeDescriptor) {
        let mut ranges = self.ranges.write();
        let overlapping: Vec<Vec<u8>> = ranges
            .range::<[u8], _>((
                Bound::Excluded(descriptor.start_key.as_slice()),
                Bound::Unbounded,
            ))
            .take_while(|(_, e)| e.descriptor.start_key < descriptor.end_key)
            .map(|(end, _)| end.clone())
            .collect();
        let mut leaseholder = None;
        for end in &overlapping {
            let existing = &ranges[end];
            if existing.descriptor.range_id == descriptor.range_id {
                if existing.descriptor.generation > descriptor.generation {
                    return;
                }
                leaseholder = existing.leaseholder;
            }
        }
        for end in overlapping {
            ranges.remove(&end);
        }
        let leaseholder = leaseholder.filter(|l| descriptor.replica_on(*l).is_some());
        ranges.insert(
            descriptor.end_key.clone(),
            CachedRange {
                descriptor,
                leaseholder,
            },
        );
    }

    /// Forgets `range_id` if the cache holds it for `key`.
    pub fn evict(&self, key: &[u8], range_id: RangeId) {
        let mut ranges = self.ranges.write();
        let found = ranges
            .range::<[u8], _>((Bound::Excluded(key), Bound::Unbounded))
            .next()
            .filter(|(_, e)| e.descriptor.range_id == range_id)
            .map(|(end, _)| end.clone());
        if let Some(end) = found {
            ranges.remove(&end);
        }
    }

    /// Remembers that `node` holds the lease of the cached range `range_id`.
    pub fn set_leaseholder(&self, key: &[u8], range_id: RangeId, node: NodeId) {
        let mut ranges = self.ranges.write();
        if let Some((_, entry)) = ranges
            .range_mut::<[u8], _>((Bound::Excluded(key), Bound::Unbounded))
            .next()
        {
            if entry.descriptor.range_id == range_id {
                entry.leaseholder = Some(node);
            }
        }
    }

    /// Every cached range, in key order.
    pub fn all(&self) -> Vec<CachedRange> {
        self.ranges.read().values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meridian_kvapi::ReplicaDescriptor;

    fn range(id: u64, start: &[u8], end: &[u8], generation: u64) -> RangeDescriptor {
        RangeDescriptor {
            range_id: id,
            start_key: start.to_vec(),
            end_key: end.to_vec(),
            replicas: vec![ReplicaDescriptor::voter(1)],
            generation,
        }
    }

    #[test]
    fn lookup_finds_the_range_containing_a_key() {
        let cache = RangeCache::default();
        cache.insert(range(1, b"", b"m", 1));
        cache.insert(range(2, b"m", b"z", 1));
        assert_eq!(cache.lookup(b"a").unwrap().descriptor.range_id, 1);
        assert_eq!(cache.lookup(b"").unwrap().descriptor.range_id, 1);
        assert_eq!(cache.lookup(b"m").unwrap().descriptor.range_id, 2);
        assert!(cache.lookup(b"z").is_none());
    }

    #[test]
    fn a_split_replaces_the_wider_entry() {
        let cache = RangeCache::default();
        cache.insert(range(1, b"a", b"z", 1));
        cache.set_leaseholder(b"a", 1, 1);
        cache.insert(range(1, b"a", b"m", 2));
        assert!(cache.lookup(b"n").is_none(), "the right side is unknown");
        let left = cache.lookup(b"b").unwrap();
        assert_eq!(left.descriptor.end_key, b"m");
        assert_eq!(left.leaseholder, Some(1), "the lease hint survives");
        cache.insert(range(7, b"m", b"z", 2));
        assert_eq!(cache.lookup(b"n").unwrap().descriptor.range_id, 7);
    }

    #[test]
    fn an_older_generation_does_not_replace_a_newer_one() {
        let cache = RangeCache::default();
        cache.insert(range(1, b"a", b"m", 2));
        cache.insert(range(1, b"a", b"z", 1));
        assert_eq!(cache.lookup(b"b").unwrap().descriptor.end_key, b"m");
    }

    #[test]
    fn evict_only_removes_the_named_range() {
        let cache = RangeCache::default();
        cache.insert(range(1, b"a", b"m", 1));
        cache.evict(b"b", 2);
        assert!(cache.lookup(b"b").is_some());
        cache.evict(b"b", 1);
        assert!(cache.lookup(b"b").is_none());
    }
}
