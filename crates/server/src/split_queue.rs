//! Splits from the server's side: when the queue splits a range (above
//! `range_max_bytes`, at its middle key), how `meridian debug split`
//! reaches the same path, and how the SQL layer asks for one (a new
//! table starts on a range of its own: [`SqlSplitter`]). Both call [`split`], which hands the work to
//! kvserver's [`Store::split`](meridian_kvserver::Store::split) (the whole
//! split process, described in `kvserver::split`) with this node's
//! DistSender as the [`SplitCluster`]: range ids come from the range-id
//! counter in the first range, the split itself goes to the range's
//! leaseholder, and the meta records are written through the DistSender.
//!
//! Not here: finding the split key, the split command and its apply, the
//! new replica (all kvserver).

use meridian_kvapi::{RangeDescriptor, RangeId};
use meridian_kvclient::{ClientError, DistSender};
use meridian_kvserver::replica::Replica;
use meridian_kvserver::{SplitCluster, SplitPoint};
use serde::{Deserialize, Serialize};
use std::sync::Weak;
use tracing::{info, warn};

use crate::member::Member;
use crate::system;

/// The cluster as a split needs it, reached through a DistSender.
struct ClusterSplitter<'a> {
    ds: &'a DistSender,
}

impl SplitCluster for ClusterSplitter<'_> {
    type Error = ClientError;

    async fn allocate_range_id(&self) -> Result<RangeId, ClientError> {
        // Ranges 1 to 3 exist from the bootstrap.
        let first_free = crate::bootstrap::LAST_BOOTSTRAP_RANGE_ID + 1;
        system::next_id(self.ds, system::RANGE_ID_COUNTER, first_free).await
    }

    async fn admin_split(
        &self,
        split_key: &[u8],
        right_range_id: RangeId,
    ) -> Result<(RangeDescriptor, RangeDescriptor), ClientError> {
        self.ds.admin_split(split_key, right_range_id).await
    }

    async fn record_descriptor(&self, descriptor: &RangeDescriptor) -> Result<(), ClientError> {
        system::update_meta(self.ds, descriptor).await
    }
}

/// Where to split a range.
pub enum SplitAt<'a> {
    /// At this key, in whichever range holds it.
    Key(&'a [u8]),
    /// At the middle (by bytes) of this local replica's range.
    Middle(&'a Replica),
}

/// Why a split did not happen. Crosses the wire (`DebugSplitRpc`), so the
/// causes from lower layers are carried as their messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum SplitError {
    #[error("keys below 0x10 belong to the meta and system range, which does not split")]
    SystemRange,
    #[error("this node has not joined a cluster yet")]
    NotMember,
    #[error("node stopping")]
    Stopping,
    #[error("finding a split key: {0}")]
    FindKey(String),
    #[error("allocating a range id: {0}")]
    AllocateId(String),
    #[error("split: {0}")]
    Split(String),
    #[error("meta update after split: {0}")]
    Meta(String),
}

/// Whether the queue should split a range starting at `start_key` of
/// `total_bytes`: never the system ranges (the first range and the
/// catalog range, below `0x10`), otherwise above `range_max_bytes`.
pub(crate) fn needs_split(start_key: &[u8], total_bytes: i64, range_max_bytes: u64) -> bool {
    meridian_kvserver::split::splittable_key(start_key) && total_bytes as u64 > range_max_bytes
}

/// Splits a range (see the module documentation). A range too small to
/// have a middle key is left as it is.
pub async fn split(member: &Member, at: SplitAt<'_>) -> Result<(), SplitError> {
    use meridian_kvserver::SplitError as Failed;
    let point = match at {
        SplitAt::Key(key) => SplitPoint::Key(key.to_vec()),
        SplitAt::Middle(replica) => SplitPoint::MiddleOf(replica.range_id()),
    };
    let cluster = ClusterSplitter { ds: &member.ds };
    match member.store.split(&cluster, point).await {
        Ok(Some((left, right))) => {
            info!(left = left.range_id, right = right.range_id, "range split");
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(Failed::SystemRange { .. }) => Err(SplitError::SystemRange),
        Err(e @ (Failed::RangeNotFound(_) | Failed::FindSplitKey(_))) => {
            Err(SplitError::FindKey(e.to_string()))
        }
        Err(Failed::AllocateRangeId(e)) => Err(SplitError::AllocateId(e.to_string())),
        Err(Failed::Split(e)) => Err(SplitError::Split(e.to_string())),
        Err(e @ Failed::RecordDescriptor { .. }) => Err(SplitError::Meta(e.to_string())),
    }
}

/// The SQL engine's way to split (at a new table's first key): in the
/// background, through [`split`], while the membership lives.
pub struct SqlSplitter {
    member: Weak<Member>,
}

impl SqlSplitter {
    pub fn new(member: Weak<Member>) -> SqlSplitter {
        SqlSplitter { member }
    }
}

impl meridian_sql::RangeSplitter for SqlSplitter {
    fn split_at(&self, key: Vec<u8>) {
        let member = self.member.clone();
        tokio::spawn(async move {
            let Some(member) = member.upgrade() else {
                return;
            };
            if let Err(e) = split(&member, SplitAt::Key(&key)).await {
                warn!("splitting for the SQL layer at {key:?}: {e}");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_ranges_never_split() {
        let (catalog_start, _) = meridian_keys::space::CATALOG_SPAN;
        assert!(!needs_split(&[], 1 << 40, 512 << 20));
        assert!(!needs_split(catalog_start, 1 << 40, 512 << 20));
    }

    #[test]
    fn a_range_splits_only_above_the_limit() {
        let data = [meridian_keys::space::TABLE_PREFIX];
        assert!(!needs_split(&data, 512 << 20, 512 << 20));
        assert!(needs_split(&data, (512 << 20) + 1, 512 << 20));
        assert!(needs_split(b"\x20k", 2_000, 1_000));
    }

    #[test]
    fn split_errors_cross_the_wire() {
        for error in [
            SplitError::SystemRange,
            SplitError::Split("no leaseholder".into()),
        ] {
            let bytes = postcard::to_allocvec(&error).expect("encodes");
            let back: SplitError = postcard::from_bytes(&bytes).expect("decodes");
            assert_eq!(back, error);
        }
    }
}
