//! The lease queue: moves a range's lease to the first lease preference
//! of its zone config that a live voter meets, once the replicate queue
//! has nothing else to do for the range (a lease moving during a
//! membership change would only interrupt it). After a failover heals,
//! the preferred region's voters are live again and the lease goes back
//! within a queue pass or two.
//!
//! The lease follows Raft leadership here, so moving it is a leadership
//! transfer; the new leaseholder's first writes wait out nothing, since the
//! previous lease's reads are carried over (kvserver's `lease`).
//!
//! Not here: choosing the target (the placement allocator, through
//! [`Plan::lease`]).

use meridian_kvapi::RangeDescriptor;
use meridian_kvserver::store::StoreError;
use tracing::info;

use crate::allocator::{Plan, ReplicateAction};
use crate::member::Member;

/// Transfers the lease of `d` where `plan` says it should be, if anywhere.
pub(crate) async fn move_lease(
    member: &Member,
    d: &RangeDescriptor,
    plan: &Plan,
) -> Result<(), StoreError> {
    let (ReplicateAction::Nothing, Some(to)) = (&plan.action, plan.lease) else {
        return Ok(());
    };
    info!(
        range_id = d.range_id,
        to, "moving the lease to its preferred voter"
    );
    member.store.transfer_leadership(d.range_id, to).await
}
