//! Meta-record repair: a range whose descriptor changed (split, membership
//! change) gets its meta record rewritten by its leaseholder.
//!
//! The queue remembers, per range, the generation it last wrote, and
//! writes again whenever the descriptor's generation differs. The memory
//! starts empty, so after a start every leaseholder rewrites the records
//! of all its ranges once: that repairs a record a crash left stale. The
//! write itself never puts an older descriptor over a newer one
//! ([`system::update_meta`]).
//!
//! Not here: the record's encoding and the conditional write (`system`).

use std::collections::HashMap;

use meridian_kvapi::{RangeDescriptor, RangeId};
use meridian_kvclient::{ClientError, DistSender};

use crate::system;

/// The generation of each range's descriptor last written to meta.
#[derive(Debug, Default)]
pub(crate) struct MetaSync {
    synced: HashMap<RangeId, u64>,
}

impl MetaSync {
    /// Whether `d`'s meta record should be written.
    pub fn needs_write(&self, d: &RangeDescriptor) -> bool {
        self.synced.get(&d.range_id) != Some(&d.generation)
    }

    /// Writes `d`'s meta record if it changed since the last write.
    pub async fn sync(&mut self, ds: &DistSender, d: &RangeDescriptor) -> Result<(), ClientError> {
        if self.needs_write(d) {
            system::update_meta(ds, d).await?;
            self.written(d);
        }
        Ok(())
    }

    fn written(&mut self, d: &RangeDescriptor) {
        self.synced.insert(d.range_id, d.generation);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(range_id: RangeId, generation: u64) -> RangeDescriptor {
        RangeDescriptor {
            range_id,
            start_key: vec![0x10],
            end_key: vec![0x20],
            replicas: Vec::new(),
            generation,
        }
    }

    #[test]
    fn every_range_is_written_once_after_a_start() {
        let sync = MetaSync::default();
        assert!(sync.needs_write(&range(1, 0)));
        assert!(sync.needs_write(&range(9, 4)));
    }

    #[test]
    fn a_range_is_written_again_only_when_its_generation_changes() {
        let mut sync = MetaSync::default();
        sync.written(&range(2, 3));
        assert!(!sync.needs_write(&range(2, 3)));
        assert!(sync.needs_write(&range(2, 4)));
        // Any change, not only a newer one: the record follows the replica.
        assert!(sync.needs_write(&range(2, 2)));
        assert!(sync.needs_write(&range(3, 3)));
    }
}
