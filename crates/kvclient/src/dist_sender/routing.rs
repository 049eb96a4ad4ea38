//! Routing: which range holds a key, and one pass over that range's
//! replicas.
//!
//! 1. [`DistSender::lookup`] answers from the range cache; on a miss it asks
//!    the view for the first range, and, unless the key is in it, reads the
//!    first meta record above the key from the first range, checks that the
//!    descriptor covers the key (a split may be half published) and caches
//!    it.
//! 2. [`DistSender::call_range`] sends one request to the cached leaseholder
//!    (a follower read: to the nearest replica by measured round trip),
//!    else to each replica in descriptor order: `NotLeaseholder` moves its
//!    hint to the front (and into the cache), `RangeKeyMismatch` replaces
//!    the cache entry and ends the pass, other retryable errors and
//!    transport failures try the next replica; when nobody served, the
//!    entry is evicted so the next lookup reads the meta records again.
//!    A write whose request may have been delivered (a timeout, a
//!    connection lost after sending) is never sent again: it ends as
//!    `AmbiguousResult`, because the leaseholder may have applied it.
//!
//! Waiting between passes is the caller's (the backoff in `mod.rs`).

use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use meridian_keys::space::{meta_key, META_PREFIX};
use meridian_kvapi::wire::{decode_meta_value, AdminSplitRequest};
use meridian_kvapi::{
    BatchRequest, BatchResponse, KvError, NodeId, RangeDescriptor, RangeId, Request, Response,
};
use meridian_transport::TransportError;

use super::DistSender;
use crate::node_transport::NodeTransport;
use crate::range_cache::CachedRange;

/// How one attempt at one range ended.
pub(super) enum Attempt<T> {
    Done(T),
    /// The range is not where the cache said, or no replica answered: look
    /// it up again (after a backoff) and retry.
    Retry(String),
    Fatal(KvError),
}

/// A request the DistSender sends to one replica of a range, through the
/// [`NodeTransport`] call that carries it.
pub(super) trait RangeCall: Sync {
    type Output;
    /// Whether running the call twice could differ from running it once. A
    /// call that may have been delivered (a timeout, a connection lost after
    /// sending) is then never sent again: its outcome is ambiguous.
    fn may_not_repeat(&self) -> bool;
    /// Whether to try the replicas nearest first instead of the
    /// leaseholder (a follower read).
    fn nearest_first(&self) -> bool {
        false
    }
    /// The descriptor generation the serving replica reported, if the
    /// call's answer carries one.
    fn served_generation(_output: &Self::Output) -> Option<u64> {
        None
    }
    fn send<'a>(
        &'a self,
        transport: &'a dyn NodeTransport,
        node: NodeId,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Result<Self::Output, KvError>, TransportError>>;
}

impl RangeCall for BatchRequest {
    type Output = BatchResponse;
    fn served_generation(output: &BatchResponse) -> Option<u64> {
        Some(output.range_generation)
    }
    fn may_not_repeat(&self) -> bool {
        // A blind put applied twice lets a reader see a, b, a; a conditional
        // put that succeeded fails on its own value the second time.
        self.requests.iter().any(Request::is_write)
    }
    fn send<'a>(
        &'a self,
        transport: &'a dyn NodeTransport,
        node: NodeId,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Result<BatchResponse, KvError>, TransportError>> {
        transport.batch(node, self, timeout)
    }
}

/// A batch of a `send`, with how to route it.
pub(super) struct RoutedBatch {
    pub request: BatchRequest,
    /// See [`super::BatchHeader::nearest_replica`].
    pub nearest_first: bool,
}

impl RangeCall for RoutedBatch {
    type Output = BatchResponse;
    fn served_generation(output: &BatchResponse) -> Option<u64> {
        BatchRequest::served_generation(output)
    }
    fn may_not_repeat(&self) -> bool {
        self.request.may_not_repeat()
    }
    fn nearest_first(&self) -> bool {
        // Only reads: a replica other than the leaseholder serves nothing
        // else, and trying it first would only cost a hop.
        self.nearest_first && !self.request.requests.iter().any(Request::is_write)
    }
    fn send<'a>(
        &'a self,
        transport: &'a dyn NodeTransport,
        node: NodeId,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Result<BatchResponse, KvError>, TransportError>> {
        self.request.send(transport, node, timeout)
    }
}

impl RangeCall for AdminSplitRequest {
    type Output = (RangeDescriptor, RangeDescriptor);
    fn may_not_repeat(&self) -> bool {
        // A split names its right-hand range id: a second one at the same
        // key finds the split done and answers with the same descriptors.
        false
    }
    fn send<'a>(
        &'a self,
        transport: &'a dyn NodeTransport,
        node: NodeId,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Result<Self::Output, KvError>, TransportError>> {
        transport.admin_split(node, self, timeout)
    }
}

impl DistSender {
    /// The range holding `key` (with `before`: holding the key just below
    /// `key`), from the cache, the view or the meta records.
    pub(super) async fn lookup(&self, key: &[u8], before: bool) -> Result<CachedRange, String> {
        let cache = &self.inner.cache;
        let cached = if before {
            cache.lookup_before(key)
        } else {
            cache.lookup(key)
        };
        if let Some(range) = cached {
            return Ok(range);
        }
        let fits = |d: &RangeDescriptor| {
            if before {
                d.contains_key_before(key)
            } else {
                d.contains_key(key)
            }
        };
        if let Some(descriptor) = self.inner.view.locate(key, before).filter(|d| fits(d)) {
            cache.insert(descriptor.clone());
            return Ok(CachedRange {
                descriptor,
                leaseholder: None,
            });
        }
        let first = self
            .inner
            .view
            .first_range()
            .await
            .ok_or_else(|| "the first range cannot be found yet".to_string())?;
        let in_first = fits(&first);
        cache.insert(first.clone());
        if in_first {
            return cache
                .lookup(&first.start_key)
                .ok_or_else(|| "the first range was evicted".to_string());
        }
        // The first meta record whose end key is above `key` (or, looking
        // before `key`, at or above it).
        let mut meta_start = meta_key(key);
        if !before {
            meta_start.push(0);
        }
        let first_cached = cache
            .lookup(&first.start_key)
            .ok_or_else(|| "the first range was evicted".to_string())?;
        let scan = Request::Scan {
            start: meta_start.clone(),
            end: vec![META_PREFIX + 1],
            max_rows: 1,
        };
        let attempt = self
            .call_range(&first_cached, &meta_start, |d| BatchRequest {
                range_id: d.range_id,
                timestamp: None,
                txn: None,
                requests: vec![scan.clone()],
            })
            .await;
        let rows = match attempt {
            Attempt::Done(mut batch) => match batch.responses.pop() {
                Some(Response::Scan { rows, .. }) => rows,
                _ => return Err("unexpected meta response".into()),
            },
            Attempt::Retry(e) => return Err(format!("meta lookup: {e}")),
            Attempt::Fatal(e) => return Err(format!("meta lookup: {e}")),
        };
        let descriptor = rows
            .first()
            .and_then(|(_, value)| decode_meta_value(value))
            .ok_or_else(|| "no meta record for the key yet".to_string())?;
        if !fits(&descriptor) {
            return Err(format!(
                "meta record of range {} does not cover the key yet (a split in progress)",
                descriptor.range_id
            ));
        }
        cache.insert(descriptor.clone());
        Ok(CachedRange {
            descriptor,
            leaseholder: None,
        })
    }

    /// One pass over the replicas of `range`, leaseholder first.
    pub(super) async fn call_range<C: RangeCall>(
        &self,
        range: &CachedRange,
        key: &[u8],
        make: impl Fn(&RangeDescriptor) -> C,
    ) -> Attempt<C::Output> {
        let inner = &self.inner;
        let descriptor = &range.descriptor;
        let request = make(descriptor);
        let suspects = self.suspects(descriptor.range_id);
        let mut order: Vec<NodeId> = Vec::new();
        if let Some(l) = range.leaseholder {
            order.push(l);
        }
        for r in &descriptor.replicas {
            if !order.contains(&r.node_id) {
                order.push(r.node_id);
            }
        }
        if request.nearest_first() {
            if let Some(me) = inner.transport.local_replica(descriptor.range_id) {
                if !order.contains(&me) {
                    order.push(me);
                }
            }
            // Stable: replicas at an unknown distance keep the leaseholder
            // first among them.
            order.sort_by_key(|&n| inner.transport.round_trip(n).unwrap_or(Duration::MAX));
        }
        // Suspected nodes last; a write skips them: sent to a node that
        // does not answer, it could only end ambiguous.
        order.sort_by_key(|n| suspects.contains(n));
        let mut tried: Vec<NodeId> = Vec::new();
        if request.may_not_repeat() {
            tried.extend(order.iter().filter(|n| suspects.contains(n)));
        }
        // Every replica's answer, for the error when none served: the last
        // one alone (often a dead node's) hides why the live ones refused.
        let mut failures: Vec<String> = Vec::new();
        while let Some(node) = order.first().copied() {
            order.remove(0);
            if tried.contains(&node) {
                continue;
            }
            tried.push(node);
            let result = request
                .send(&*inner.transport, node, inner.config.rpc_timeout)
                .await;
            match result {
                Ok(Ok(value)) => {
                    let stale =
                        C::served_generation(&value).is_some_and(|g| g > descriptor.generation);
                    if stale && request.nearest_first() && self.may_relook(descriptor.range_id) {
                        // The cached descriptor is older than the serving
                        // replica's (replicas were added or moved since),
                        // so the nearest replica may be missing from it:
                        // look the range up again next time. Only for
                        // follower reads, and at most once per
                        // `RELOOK_AFTER`: the meta record (or the first
                        // range's descriptor a node remembers) may lag the
                        // replica for a while, and looking up on every
                        // request would cost a round trip each.
                        inner.cache.evict(key, descriptor.range_id);
                        return Attempt::Done(value);
                    }
                    if suspects.contains(&node) {
                        inner.suspects.lock().remove(&(node, descriptor.range_id));
                    }
                    // The cache's write lock only when the lease moved: every
                    // concurrent request passes here.
                    if range.leaseholder != Some(node) {
                        inner.cache.set_leaseholder(key, descriptor.range_id, node);
                    }
                    return Attempt::Done(value);
                }
                Ok(Err(KvError::NotLeaseholder {
                    leaseholder,
                    descriptor: current,
                    ..
                })) => {
                    failures.push(format!(
                        "node {node} does not hold the lease (hint: {:?})",
                        leaseholder.as_ref().map(|h| h.node_id)
                    ));
                    if let Some(current) = current {
                        inner.cache.insert(*current);
                    }
                    if let Some(holder) = leaseholder {
                        if !tried.contains(&holder.node_id) && !suspects.contains(&holder.node_id) {
                            inner
                                .cache
                                .set_leaseholder(key, descriptor.range_id, holder.node_id);
                            order.insert(0, holder.node_id);
                        }
                    }
                }
                Ok(Err(KvError::RangeKeyMismatch {
                    range_id,
                    descriptor: current,
                })) => {
                    inner.cache.evict(key, range_id);
                    if let Some(current) = current {
                        inner.cache.insert(*current);
                    }
                    return Attempt::Retry(format!("range {range_id} no longer holds the key"));
                }
                Ok(Err(e)) if e.is_retryable() => failures.push(format!("node {node}: {e}")),
                Ok(Err(e)) => return Attempt::Fatal(e),
                Err(e) if e.may_have_executed() && request.may_not_repeat() => {
                    // The leaseholder may have applied it and keeps going
                    // after we stop waiting: trying elsewhere could apply it
                    // twice. Only the caller can find out what happened; the
                    // next request starts elsewhere.
                    self.suspect(node, descriptor.range_id);
                    inner.view.node_unreachable(node);
                    inner.cache.evict(key, descriptor.range_id);
                    return Attempt::Fatal(KvError::AmbiguousResult {
                        range_id: descriptor.range_id,
                        reason: format!("node {node}: {e}"),
                    });
                }
                Err(e) => {
                    self.suspect(node, descriptor.range_id);
                    inner.view.node_unreachable(node);
                    failures.push(format!("node {node}: {e}"));
                }
            }
        }
        // Nobody served it: the descriptor may be stale (replicas moved).
        inner.cache.evict(key, descriptor.range_id);
        Attempt::Retry(match failures.is_empty() {
            true => format!("range {} has no replicas", descriptor.range_id),
            false => failures.join("; "),
        })
    }

    /// The nodes whose replica of `range_id` is suspected now (see
    /// `Inner::suspects`), forgetting the suspicions that ran out.
    fn suspects(&self, range_id: RangeId) -> Vec<NodeId> {
        let mut suspects = self.inner.suspects.lock();
        if suspects.is_empty() {
            return Vec::new();
        }
        let now = Instant::now();
        suspects.retain(|_, until| *until > now);
        suspects
            .keys()
            .filter(|(_, range)| *range == range_id)
            .map(|(node, _)| *node)
            .collect()
    }

    /// Whether a stale cached descriptor of `range_id` may be looked up
    /// again now (and if so, not again for [`RELOOK_AFTER`]).
    fn may_relook(&self, range_id: RangeId) -> bool {
        let now = Instant::now();
        let mut relooked = self.inner.relooked.lock();
        match relooked.get(&range_id) {
            Some(&at) if now.duration_since(at) < RELOOK_AFTER => false,
            _ => {
                relooked.insert(range_id, now);
                true
            }
        }
    }

    fn suspect(&self, node: NodeId, range_id: RangeId) {
        let until = Instant::now() + self.inner.config.rpc_timeout.max(SUSPECT_FOR);
        self.inner.suspects.lock().insert((node, range_id), until);
    }
}

/// How often a follower read may look a range up again because its cached
/// descriptor is older than the serving replica's.
const RELOOK_AFTER: Duration = Duration::from_secs(2);

/// How long a replica that failed in the transport stays suspected. A dead
/// leaseholder's range elects a new leader within a few election timeouts.
const SUSPECT_FOR: Duration = Duration::from_secs(5);
