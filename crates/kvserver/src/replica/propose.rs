//! Proposals: a replica's commands through Raft, answered once applied,
//! and Raft's refusals as KV errors.
//!
//! A command evaluated in one term and appended in a later one is skipped
//! by every replica (see `crate::raft::state_machine`), so its proposer
//! answers `NotLeaseholder` and the client may retry; a command appended
//! and then lost may still commit through another leader, so it answers
//! `AmbiguousResult`.
//!
//! Not here: what is proposed (writes, GC, splits: [`crate::replica`],
//! [`crate::gc`], [`crate::split`]).

use meridian_kvapi::{KvError, NodeId};
use openraft::errors::ClientWriteError;

use super::Replica;
use crate::raft::types::{CommandResult, RaftCommand};

impl Replica {
    pub(crate) async fn propose(&self, command: RaftCommand) -> Result<(), KvError> {
        self.propose_for_result(command).await.map(|_| ())
    }

    /// Proposes `command` and returns what applying it produced.
    pub(crate) async fn propose_for_result(
        &self,
        command: RaftCommand,
    ) -> Result<CommandResult, KvError> {
        let ambiguous = |reason: String| KvError::AmbiguousResult {
            range_id: self.range_id,
            reason,
        };
        self.metrics.proposals.inc();
        match self.raft.client_write(command).await {
            Ok(response) if response.data.applied => Ok(response.data),
            // Proposed in a later term than it was evaluated in: every
            // replica skipped it, so a retry is safe.
            Ok(_) => Err(self.not_leaseholder(self.leader())),
            Err(e) => match e.api_error() {
                // Refused before anything was appended: safe to retry.
                Some(ClientWriteError::ForwardToLeader(forward)) => {
                    let leader = forward.leader_node.as_ref().map(|n| n.node_id);
                    Err(self.raft_error(Some(leader), &e))
                }
                // Appended, then discarded or the group failed: the write
                // may still commit through another leader.
                _ => Err(ambiguous(e.to_string())),
            },
        }
    }

    /// A Raft refusal as a KV error: `forward` is `Some(leader hint)` when
    /// Raft says another node leads (then `NotLeaseholder`), else the range
    /// is unavailable for now.
    pub(crate) fn raft_error(
        &self,
        forward: Option<Option<NodeId>>,
        e: &dyn std::fmt::Display,
    ) -> KvError {
        match forward {
            Some(leader) => self.not_leaseholder(leader.filter(|&l| l != self.node_id)),
            None => KvError::Unavailable {
                range_id: self.range_id,
                reason: e.to_string(),
            },
        }
    }
}
