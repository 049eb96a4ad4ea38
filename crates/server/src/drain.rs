//! Draining: before a node stops (SIGTERM), it hands the leases of the
//! ranges it leads to other voters, so clients see a transfer instead of
//! an election timeout.
//!
//! 1. For each range this node leads and that has another voter, ask for
//!    a leadership transfer to the first such voter.
//! 2. Wait until this node leads no range that has another voter, or the
//!    deadline passes, whichever comes first.
//!
//! Not here: stopping the replicas and the transport (`node`), which
//! happens after the drain whether or not it finished.

use std::time::Duration;

use tokio::time::Instant;

use crate::member::Member;

/// How often step 2 looks at the replicas.
const POLL: Duration = Duration::from_millis(50);

/// Moves this node's leases away, spending at most until `deadline`.
pub(crate) async fn drain(member: &Member, deadline: Instant) {
    let me = member.ident.node_id;
    for replica in member.store.replicas() {
        if replica.leader() != Some(me) {
            continue;
        }
        let descriptor = replica.descriptor();
        let Some(target) = descriptor.voters().find(|r| r.node_id != me) else {
            continue;
        };
        let transfer = member
            .store
            .transfer_leadership(replica.range_id(), target.node_id);
        let _ = tokio::time::timeout_at(deadline, transfer).await;
    }
    while Instant::now() < deadline && leads_a_replicated_range(member) {
        tokio::time::sleep(POLL).await;
    }
}

fn leads_a_replicated_range(member: &Member) -> bool {
    let me = member.ident.node_id;
    member
        .store
        .replicas()
        .iter()
        .any(|r| r.leader() == Some(me) && r.descriptor().voters().count() > 1)
}
