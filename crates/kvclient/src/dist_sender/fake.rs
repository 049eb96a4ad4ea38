//! A scripted cluster for the DistSender's unit tests: it is both the
//! [`NodeTransport`] and the [`ClusterView`].
//!
//! It holds the truth the DistSender must discover: the ranges (with meta
//! records for all but the first, kept in its key-value map as a real
//! cluster keeps them in range 1), each range's leaseholder, the nodes that
//! are down, and one-shot scripted refusals per (node, range). A call is
//! logged, then answered as a real node would: down nodes fail in
//! transport, a scripted refusal is returned once, a node without a replica
//! answers `RangeNotFound`, a follower `NotLeaseholder` with the hint, keys
//! outside the range `RangeKeyMismatch` with the current descriptor; the
//! leaseholder evaluates the batch on the map, honouring row limits and
//! setting resume keys as a range does.
//!
//! Not a model of Raft, timestamps or MVCC: one map, no versions.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use futures_util::future::BoxFuture;
use meridian_hlc::Timestamp;
use meridian_keys::space::{meta_key, META_PREFIX};
use meridian_kvapi::wire::{encode_meta_value, AdminSplitRequest, AdminSplitResult};
use meridian_kvapi::{
    BatchRequest, BatchResponse, BatchResult, KvError, NodeId, RangeDescriptor, RangeId,
    ReplicaDescriptor, Request, Response,
};
use meridian_transport::TransportError;
use parking_lot::Mutex;

use super::ClusterView;
use crate::node_transport::NodeTransport;

/// One call the DistSender made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub node: NodeId,
    pub range_id: RangeId,
    pub requests: Vec<Request>,
}

#[derive(Default)]
struct State {
    ranges: BTreeMap<RangeId, RangeDescriptor>,
    leaseholders: BTreeMap<RangeId, NodeId>,
    data: BTreeMap<Vec<u8>, Vec<u8>>,
    down: BTreeSet<NodeId>,
    scripted: VecDeque<(NodeId, RangeId, KvError)>,
    lost_replies: Vec<(NodeId, RangeId, Option<NodeId>)>,
    calls: Vec<Call>,
    unreachable: Vec<NodeId>,
}

#[derive(Default)]
pub struct FakeCluster {
    state: Mutex<State>,
}

pub fn descriptor(
    range_id: RangeId,
    start: &[u8],
    end: &[u8],
    nodes: &[NodeId],
    generation: u64,
) -> RangeDescriptor {
    RangeDescriptor {
        range_id,
        start_key: start.to_vec(),
        end_key: end.to_vec(),
        replicas: nodes.iter().map(|&n| ReplicaDescriptor::voter(n)).collect(),
        generation,
    }
}

impl FakeCluster {
    /// Adds or replaces a range (range 1 is the first range) with its
    /// leaseholder, and writes its meta record.
    pub fn set_range(&self, range: RangeDescriptor, leaseholder: NodeId) {
        let mut s = self.state.lock();
        if range.range_id != 1 {
            s.data.retain(|k, v| {
                !(k.first() == Some(&META_PREFIX) && decoded_id(v) == Some(range.range_id))
            });
            s.data
                .insert(meta_key(&range.end_key), encode_meta_value(&range));
        }
        s.leaseholders.insert(range.range_id, leaseholder);
        s.ranges.insert(range.range_id, range);
    }

    pub fn set_leaseholder(&self, range_id: RangeId, node: NodeId) {
        self.state.lock().leaseholders.insert(range_id, node);
    }

    pub fn put(&self, key: &[u8], value: &[u8]) {
        self.state.lock().data.insert(key.to_vec(), value.to_vec());
    }

    pub fn value(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.state.lock().data.get(key).cloned()
    }

    pub fn set_down(&self, node: NodeId) {
        self.state.lock().down.insert(node);
    }

    /// The next call to `node` for `range_id` is refused with `error`.
    pub fn refuse_once(&self, node: NodeId, range_id: RangeId, error: KvError) {
        self.state
            .lock()
            .scripted
            .push_back((node, range_id, error));
    }

    /// The next call to `node` for `range_id` is served, but its reply is
    /// lost: the caller sees a timeout. With `lease_to`, the lease then moves
    /// to that node.
    pub fn lose_reply_once(&self, node: NodeId, range_id: RangeId, lease_to: Option<NodeId>) {
        self.state
            .lock()
            .lost_replies
            .push((node, range_id, lease_to));
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().calls.clone()
    }

    /// The calls to `range_id`, as (node, requests).
    pub fn calls_to(&self, range_id: RangeId) -> Vec<(NodeId, Vec<Request>)> {
        self.calls()
            .into_iter()
            .filter(|c| c.range_id == range_id)
            .map(|c| (c.node, c.requests))
            .collect()
    }

    pub fn clear_calls(&self) {
        self.state.lock().calls.clear();
    }

    /// The nodes the DistSender reported unreachable.
    pub fn reported_unreachable(&self) -> Vec<NodeId> {
        self.state.lock().unreachable.clone()
    }

    /// The refusal `node` answers for `range_id`, if any, and the range.
    fn admit(
        s: &mut State,
        node: NodeId,
        range_id: RangeId,
    ) -> Result<Result<RangeDescriptor, KvError>, TransportError> {
        if s.down.contains(&node) {
            return Err(TransportError::Connect {
                to: node,
                reason: "down (scripted)".into(),
            });
        }
        if let Some(i) = s
            .scripted
            .iter()
            .position(|(n, r, _)| *n == node && *r == range_id)
        {
            let (_, _, error) = s.scripted.remove(i).expect("found");
            return Ok(Err(error));
        }
        let Some(range) = s.ranges.get(&range_id).cloned() else {
            return Ok(Err(KvError::RangeNotFound { range_id }));
        };
        if range.replica_on(node).is_none() {
            return Ok(Err(KvError::RangeNotFound { range_id }));
        }
        let holder = s.leaseholders[&range_id];
        if holder != node {
            return Ok(Err(KvError::NotLeaseholder {
                range_id,
                leaseholder: range.replica_on(holder).cloned(),
                descriptor: None,
            }));
        }
        Ok(Ok(range))
    }

    fn serve(&self, node: NodeId, request: &BatchRequest) -> Result<BatchResult, TransportError> {
        let mut s = self.state.lock();
        s.calls.push(Call {
            node,
            range_id: request.range_id,
            requests: request.requests.clone(),
        });
        let range = match Self::admit(&mut s, node, request.range_id)? {
            Ok(range) => range,
            Err(e) => return Ok(Err(e)),
        };
        let inside = request.requests.iter().all(|r| match r.span() {
            (key, None) => range.contains_key(key),
            (start, Some(end)) => range.contains_span(start, end),
        });
        if !inside {
            return Ok(Err(KvError::RangeKeyMismatch {
                range_id: range.range_id,
                descriptor: Some(Box::new(range)),
            }));
        }
        let responses = request
            .requests
            .iter()
            .map(|r| evaluate(&mut s.data, r))
            .collect();
        if let Some(i) = s
            .lost_replies
            .iter()
            .position(|&(n, r, _)| n == node && r == request.range_id)
        {
            let (_, range_id, lease_to) = s.lost_replies.remove(i);
            if let Some(holder) = lease_to {
                s.leaseholders.insert(range_id, holder);
            }
            return Err(TransportError::Timeout {
                to: node,
                rpc: "Batch",
                timeout: Duration::from_secs(1),
            });
        }
        Ok(Ok(BatchResponse {
            timestamp: Timestamp::new(1, 0),
            responses,
            range_generation: 0,
        }))
    }

    fn split(
        &self,
        node: NodeId,
        request: &AdminSplitRequest,
    ) -> Result<AdminSplitResult, TransportError> {
        let mut s = self.state.lock();
        s.calls.push(Call {
            node,
            range_id: request.range_id,
            requests: Vec::new(),
        });
        let range = match Self::admit(&mut s, node, request.range_id)? {
            Ok(range) => range,
            Err(e) => return Ok(Err(e)),
        };
        let holder = s.leaseholders[&range.range_id];
        drop(s);
        let mut left = range.clone();
        left.end_key = request.split_key.clone();
        left.generation += 1;
        let mut right = range;
        right.range_id = request.right_range_id;
        right.start_key = request.split_key.clone();
        right.generation = left.generation;
        self.set_range(left.clone(), holder);
        self.set_range(right.clone(), holder);
        Ok(Ok((left, right)))
    }
}

fn decoded_id(value: &[u8]) -> Option<RangeId> {
    meridian_kvapi::wire::decode_meta_value(value).map(|d| d.range_id)
}

/// One request on the map, as a range evaluates it.
fn evaluate(data: &mut BTreeMap<Vec<u8>, Vec<u8>>, request: &Request) -> Response {
    match request {
        Request::Get { key } | Request::GetForUpdate { key } => Response::Get {
            value: data.get(key).cloned(),
        },
        Request::Put { key, value } => {
            data.insert(key.clone(), value.clone());
            Response::Put
        }
        Request::Delete { key } => {
            data.remove(key);
            Response::Delete
        }
        Request::DeleteRange { start, end } => {
            let deleted: Vec<Vec<u8>> = data
                .range(start.clone()..end.clone())
                .map(|(k, _)| k.clone())
                .collect();
            for key in &deleted {
                data.remove(key);
            }
            Response::DeleteRange { deleted }
        }
        Request::Scan {
            start,
            end,
            max_rows,
        } => {
            let mut rows: Vec<_> = data
                .range(start.clone()..end.clone())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let mut resume_key = None;
            if *max_rows > 0 && rows.len() > *max_rows as usize {
                // Forward: the next start key is the first row not returned.
                resume_key = Some(rows[*max_rows as usize].0.clone());
                rows.truncate(*max_rows as usize);
            }
            Response::Scan { rows, resume_key }
        }
        Request::ReverseScan {
            start,
            end,
            max_rows,
        } => {
            let mut rows: Vec<_> = data
                .range(start.clone()..end.clone())
                .rev()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let mut resume_key = None;
            if *max_rows > 0 && rows.len() > *max_rows as usize {
                rows.truncate(*max_rows as usize);
                // Reverse: the next exclusive end is the last row returned.
                resume_key = rows.last().map(|(k, _)| k.clone());
            }
            Response::Scan { rows, resume_key }
        }
        Request::ConditionalPut {
            key,
            value,
            expected,
        } => {
            // A range answers a failed condition with `ConditionFailed`; the
            // tests that use conditional puts only need the success.
            assert_eq!(data.get(key), expected.as_ref(), "condition failed");
            data.insert(key.clone(), value.clone());
            Response::ConditionalPut
        }
        // The routing tests send no transaction requests.
        Request::HeartbeatTxn { .. }
        | Request::EndTxn { .. }
        | Request::QueryTxn { .. }
        | Request::PushTxn { .. }
        | Request::QueryIntent { .. }
        | Request::RecoverTxn { .. }
        | Request::ResolveIntent { .. } => {
            unimplemented!("the fake cluster has no transactions")
        }
    }
}

impl NodeTransport for FakeCluster {
    fn batch<'a>(
        &'a self,
        node: NodeId,
        request: &'a BatchRequest,
        _timeout: Duration,
    ) -> BoxFuture<'a, Result<BatchResult, TransportError>> {
        Box::pin(async move { self.serve(node, request) })
    }

    fn admin_split<'a>(
        &'a self,
        node: NodeId,
        request: &'a AdminSplitRequest,
        _timeout: Duration,
    ) -> BoxFuture<'a, Result<AdminSplitResult, TransportError>> {
        Box::pin(async move { self.split(node, request) })
    }
}

impl ClusterView for FakeCluster {
    fn first_range(&self) -> BoxFuture<'_, Option<RangeDescriptor>> {
        Box::pin(async move { self.state.lock().ranges.get(&1).cloned() })
    }

    fn node_unreachable(&self, node: NodeId) {
        self.state.lock().unreachable.push(node);
    }
}
