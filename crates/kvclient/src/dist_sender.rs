//! The DistSender: sends KV requests to the ranges that hold their keys.
//!
//! A batch is cut by range: point requests are grouped per range and the
//! groups sent in parallel; a scan or delete-range walks its ranges in key
//! order (forward or backward) until its row limit. Each part goes to the
//! leaseholder the cache remembers, else to the range's replicas in turn,
//! and is retried until the deadline when the answer says the lease moved
//! (`NotLeaseholder`, with a hint), the range changed (`RangeKeyMismatch`,
//! with the range's current descriptor), the replica is not there yet
//! (`RangeNotFound`), or the node is unreachable.
//!
//! Without transactions, the parts of a batch that spans ranges are not
//! atomic with each other and may execute at different timestamps; the
//! transaction coordinator will give multi-range batches one timestamp.
//!
//! Range addressing: the first range (meta and system keys) is found
//! through [`ClusterView::first_range`]; every other range through its meta
//! record, `meta_key(end_key) -> descriptor`, read from the first range.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::{join_all, BoxFuture};
use meridian_keys::space::{meta_key, META_PREFIX};
use meridian_kvapi::wire::{decode_meta_value, AdminSplitRequest, AdminSplitResult};
use meridian_kvapi::{
    BatchRequest, BatchResult, KvError, NodeId, RangeDescriptor, Request, Response,
};
use meridian_transport::{Rpc, Transport};
use tracing::debug;

use crate::error::ClientError;
use crate::range_cache::{CachedRange, RangeCache};

/// What the DistSender needs to know of the cluster beyond the range cache.
pub trait ClusterView: Send + Sync + 'static {
    /// The descriptor of the first range, if it can be found now.
    fn first_range(&self) -> BoxFuture<'_, Option<RangeDescriptor>>;
    /// Told when a call to `node` failed in transport (unknown, down or
    /// partitioned), e.g. to refresh its address.
    fn node_unreachable(&self, _node: NodeId) {}
}

#[derive(Debug, Clone, Copy)]
pub struct DistSenderConfig {
    /// Bound on one call to one replica.
    pub rpc_timeout: Duration,
    /// Bound on a whole `send`, retries included.
    pub deadline: Duration,
}

impl Default for DistSenderConfig {
    fn default() -> Self {
        DistSenderConfig {
            rpc_timeout: Duration::from_secs(3),
            deadline: Duration::from_secs(30),
        }
    }
}

struct BatchCall;
impl Rpc for BatchCall {
    const KIND: u16 = meridian_kvapi::wire::BATCH_KIND;
    const NAME: &'static str = "Batch";
    type Request = BatchRequest;
    type Response = BatchResult;
}

struct AdminSplitCall;
impl Rpc for AdminSplitCall {
    const KIND: u16 = meridian_kvapi::wire::ADMIN_SPLIT_KIND;
    const NAME: &'static str = "AdminSplit";
    type Request = AdminSplitRequest;
    type Response = AdminSplitResult;
}

/// How one attempt at one range ended.
enum Attempt<T> {
    Done(T),
    /// The range is not where the cache said, or no replica answered: look
    /// it up again (after a backoff) and retry.
    Retry(String),
    Fatal(KvError),
}

/// Cheap to clone; clones share the cache.
#[derive(Clone)]
pub struct DistSender {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Transport,
    cache: RangeCache,
    view: Arc<dyn ClusterView>,
    config: DistSenderConfig,
}

/// Exponential backoff between retries, bounded by the deadline.
struct Backoff {
    next: Duration,
    deadline: Instant,
    deadline_len: Duration,
}

impl Backoff {
    fn new(deadline_len: Duration) -> Self {
        Backoff {
            next: Duration::from_millis(5),
            deadline: Instant::now() + deadline_len,
            deadline_len,
        }
    }

    /// Waits before the next retry, or fails once the deadline passed.
    async fn wait(&mut self, last_error: String) -> Result<(), ClientError> {
        let now = Instant::now();
        if now >= self.deadline {
            return Err(ClientError::Timeout {
                deadline_ms: self.deadline_len.as_millis() as u64,
                last_error,
            });
        }
        debug!(retry_in = ?self.next, %last_error, "retrying");
        tokio::time::sleep(self.next.min(self.deadline - now)).await;
        self.next = (self.next * 2).min(Duration::from_millis(500));
        Ok(())
    }
}

impl DistSender {
    pub fn new(transport: Transport, view: Arc<dyn ClusterView>, config: DistSenderConfig) -> Self {
        DistSender {
            inner: Arc::new(Inner {
                transport,
                cache: RangeCache::default(),
                view,
                config,
            }),
        }
    }

    pub fn cache(&self) -> &RangeCache {
        &self.inner.cache
    }

    pub fn transport(&self) -> &Transport {
        &self.inner.transport
    }

    /// Sends `requests` and returns their responses in order.
    pub async fn send(&self, requests: Vec<Request>) -> Result<Vec<Response>, ClientError> {
        if requests.is_empty() {
            return Err(ClientError::InvalidRequest("empty batch".into()));
        }
        for request in &requests {
            if let (start, Some(end)) = request.span() {
                if start > end {
                    return Err(ClientError::InvalidRequest(
                        "span start is after its end".into(),
                    ));
                }
            }
        }
        let mut backoff = Backoff::new(self.inner.config.deadline);
        let mut responses: Vec<Option<Response>> = vec![None; requests.len()];
        let all_points = requests.iter().all(|r| r.span().1.is_none());
        if all_points {
            let points: Vec<usize> = (0..requests.len()).collect();
            self.send_points(&requests, points, &mut responses, &mut backoff)
                .await?;
        } else {
            // With span requests in the batch, requests run one after the
            // other in batch order, so a later write is never undone by an
            // earlier delete-range.
            for (i, request) in requests.iter().enumerate() {
                responses[i] = Some(match request.span() {
                    (_, Some(_)) => self.send_span(request, &mut backoff).await?,
                    (_, None) => {
                        let mut one = vec![None];
                        self.send_points(
                            std::slice::from_ref(request),
                            vec![0],
                            &mut one,
                            &mut backoff,
                        )
                        .await?;
                        one.pop().flatten().expect("sent")
                    }
                });
            }
        }
        Ok(responses
            .into_iter()
            .map(|r| r.expect("all sent"))
            .collect())
    }

    pub async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ClientError> {
        match self.send_one(Request::Get { key: key.to_vec() }).await? {
            Response::Get { value } => Ok(value),
            other => Err(unexpected(&other)),
        }
    }

    pub async fn put(&self, key: &[u8], value: &[u8]) -> Result<(), ClientError> {
        self.send_one(Request::Put {
            key: key.to_vec(),
            value: value.to_vec(),
        })
        .await
        .map(|_| ())
    }

    pub async fn delete(&self, key: &[u8]) -> Result<(), ClientError> {
        self.send_one(Request::Delete { key: key.to_vec() })
            .await
            .map(|_| ())
    }

    /// Rows of `[start, end)` in key order, at most `max_rows` (0: all).
    pub async fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        max_rows: u32,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, ClientError> {
        match self
            .send_one(Request::Scan {
                start: start.to_vec(),
                end: end.to_vec(),
                max_rows,
            })
            .await?
        {
            Response::Scan { rows, .. } => Ok(rows),
            other => Err(unexpected(&other)),
        }
    }

    async fn send_one(&self, request: Request) -> Result<Response, ClientError> {
        let mut responses = self.send(vec![request]).await?;
        Ok(responses.pop().expect("one response per request"))
    }

    /// Splits the range holding `split_key` there; the right-hand side
    /// becomes range `right_range_id`.
    pub async fn admin_split(
        &self,
        split_key: &[u8],
        right_range_id: u64,
    ) -> Result<(RangeDescriptor, RangeDescriptor), ClientError> {
        let mut backoff = Backoff::new(self.inner.config.deadline);
        loop {
            let error = match self.lookup(split_key, false).await {
                Ok(range) => {
                    if range.descriptor.start_key == split_key {
                        // Already split here (perhaps by our own earlier try).
                        let right = range.descriptor.clone();
                        let left = self.lookup_before(split_key, &mut backoff).await?;
                        return Ok((left.descriptor, right));
                    }
                    let attempt = self
                        .call_range::<AdminSplitCall, _>(&range, split_key, |d| AdminSplitRequest {
                            range_id: d.range_id,
                            split_key: split_key.to_vec(),
                            right_range_id,
                        })
                        .await;
                    match attempt {
                        Attempt::Done((left, right)) => {
                            self.inner.cache.insert(left.clone());
                            self.inner.cache.insert(right.clone());
                            return Ok((left, right));
                        }
                        Attempt::Retry(e) => e,
                        Attempt::Fatal(e) => return Err(e.into()),
                    }
                }
                Err(e) => e,
            };
            backoff.wait(error).await?;
        }
    }

    /// The range holding the key just below `key`.
    async fn lookup_before(
        &self,
        key: &[u8],
        backoff: &mut Backoff,
    ) -> Result<CachedRange, ClientError> {
        loop {
            match self.lookup(key, true).await {
                Ok(range) => return Ok(range),
                Err(e) => backoff.wait(e).await?,
            }
        }
    }

    /// Sends the point requests `pending`, grouped per range, in parallel.
    async fn send_points(
        &self,
        requests: &[Request],
        mut pending: Vec<usize>,
        responses: &mut [Option<Response>],
        backoff: &mut Backoff,
    ) -> Result<(), ClientError> {
        while !pending.is_empty() {
            let mut groups: Vec<(CachedRange, Vec<usize>)> = Vec::new();
            let mut last_error = None;
            for &i in &pending {
                let key = requests[i].span().0;
                match self.lookup(key, false).await {
                    Ok(range) => match groups
                        .iter_mut()
                        .find(|(r, _)| r.descriptor.range_id == range.descriptor.range_id)
                    {
                        Some((_, members)) => members.push(i),
                        None => groups.push((range, vec![i])),
                    },
                    Err(e) => last_error = Some(e),
                }
            }
            let attempts = join_all(groups.iter().map(|(range, members)| {
                let key = requests[members[0]].span().0;
                self.call_range::<BatchCall, _>(range, key, move |d| BatchRequest {
                    range_id: d.range_id,
                    timestamp: None,
                    txn: None,
                    requests: members.iter().map(|&i| requests[i].clone()).collect(),
                })
            }))
            .await;
            let mut retry = Vec::new();
            for ((_, members), attempt) in groups.into_iter().zip(attempts) {
                match attempt {
                    Attempt::Done(batch) if batch.responses.len() != members.len() => {
                        return Err(ClientError::InvalidRequest(format!(
                            "range answered {} responses to {} requests",
                            batch.responses.len(),
                            members.len()
                        )));
                    }
                    Attempt::Done(batch) => {
                        for (i, response) in members.into_iter().zip(batch.responses) {
                            responses[i] = Some(response);
                        }
                    }
                    Attempt::Retry(e) => {
                        last_error = Some(e);
                        retry.extend(members);
                    }
                    Attempt::Fatal(e) => return Err(e.into()),
                }
            }
            // Requests whose range lookup failed are tried again too.
            let unrouted: Vec<usize> = pending
                .iter()
                .copied()
                .filter(|i| responses[*i].is_none() && !retry.contains(i))
                .collect();
            retry.extend(unrouted);
            pending = retry;
            if let Some(error) = last_error.filter(|_| !pending.is_empty()) {
                backoff.wait(error).await?;
            }
        }
        Ok(())
    }

    /// Sends a span request range by range.
    async fn send_span(
        &self,
        request: &Request,
        backoff: &mut Backoff,
    ) -> Result<Response, ClientError> {
        let (start, end) = match request.span() {
            (start, Some(end)) => (start.to_vec(), end.to_vec()),
            (key, None) => (key.to_vec(), key.to_vec()),
        };
        let (max_rows, reverse, delete) = match request {
            Request::Scan { max_rows, .. } => (*max_rows, false, false),
            Request::ReverseScan { max_rows, .. } => (*max_rows, true, false),
            Request::DeleteRange { .. } => (0, false, true),
            _ => unreachable!("only span requests get here"),
        };
        let mut rows = Vec::new();
        let mut deleted = Vec::new();
        // Forward: the next key to read; reverse: the exclusive end of what
        // is left.
        let mut cursor = if reverse { end.clone() } else { start.clone() };
        loop {
            let done = if reverse {
                cursor <= start
            } else {
                cursor >= end
            };
            if done {
                break;
            }
            let range = match self.lookup(&cursor, reverse).await {
                Ok(range) => range,
                Err(e) => {
                    backoff.wait(e).await?;
                    continue;
                }
            };
            let d = &range.descriptor;
            let (part_start, part_end) = if reverse {
                (start.clone().max(d.start_key.clone()), cursor.clone())
            } else {
                (cursor.clone(), end.clone().min(d.end_key.clone()))
            };
            let remaining = if max_rows == 0 {
                0
            } else {
                max_rows.saturating_sub(rows.len() as u32).max(1)
            };
            let part = match request {
                Request::Scan { .. } => Request::Scan {
                    start: part_start.clone(),
                    end: part_end.clone(),
                    max_rows: remaining,
                },
                Request::ReverseScan { .. } => Request::ReverseScan {
                    start: part_start.clone(),
                    end: part_end.clone(),
                    max_rows: remaining,
                },
                _ => Request::DeleteRange {
                    start: part_start.clone(),
                    end: part_end.clone(),
                },
            };
            let attempt = self
                .call_range::<BatchCall, _>(&range, &part_start, |d| BatchRequest {
                    range_id: d.range_id,
                    timestamp: None,
                    txn: None,
                    requests: vec![part.clone()],
                })
                .await;
            let response = match attempt {
                Attempt::Done(mut batch) => batch.responses.pop(),
                Attempt::Retry(e) => {
                    backoff.wait(e).await?;
                    continue;
                }
                Attempt::Fatal(e) => return Err(e.into()),
            };
            match response {
                Some(Response::Scan {
                    rows: part_rows,
                    resume_key,
                }) => {
                    rows.extend(part_rows);
                    if max_rows > 0 && rows.len() > max_rows as usize {
                        rows.truncate(max_rows as usize);
                    }
                    if resume_key.is_some() {
                        return Ok(Response::Scan { rows, resume_key });
                    }
                }
                Some(Response::DeleteRange { deleted: keys }) if delete => deleted.extend(keys),
                Some(other) => return Err(unexpected(&other)),
                None => return Err(ClientError::InvalidRequest("empty response".into())),
            }
            cursor = if reverse { part_start } else { part_end };
            let finished = if reverse {
                cursor <= start
            } else {
                cursor >= end
            };
            if max_rows > 0 && rows.len() as u32 >= max_rows && !finished {
                return Ok(Response::Scan {
                    rows,
                    resume_key: Some(cursor),
                });
            }
        }
        if delete {
            Ok(Response::DeleteRange { deleted })
        } else {
            Ok(Response::Scan {
                rows,
                resume_key: None,
            })
        }
    }

    /// The range holding `key` (with `before`: holding the key just below
    /// `key`), from the cache or the meta records.
    pub async fn lookup_range(&self, key: &[u8]) -> Result<RangeDescriptor, ClientError> {
        let mut backoff = Backoff::new(self.inner.config.deadline);
        loop {
            match self.lookup(key, false).await {
                Ok(range) => return Ok(range.descriptor),
                Err(e) => backoff.wait(e).await?,
            }
        }
    }

    async fn lookup(&self, key: &[u8], before: bool) -> Result<CachedRange, String> {
        let cache = &self.inner.cache;
        let cached = if before {
            cache.lookup_before(key)
        } else {
            cache.lookup(key)
        };
        if let Some(range) = cached {
            return Ok(range);
        }
        let first = self
            .inner
            .view
            .first_range()
            .await
            .ok_or_else(|| "the first range cannot be found yet".to_string())?;
        let in_first = if before {
            first.start_key.as_slice() < key && key <= first.end_key.as_slice()
        } else {
            first.contains_key(key)
        };
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
            .call_range::<BatchCall, _>(&first_cached, &meta_start, |d| BatchRequest {
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
        let fits = if before {
            descriptor.start_key.as_slice() < key && key <= descriptor.end_key.as_slice()
        } else {
            descriptor.contains_key(key)
        };
        if !fits {
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
    async fn call_range<R, T>(
        &self,
        range: &CachedRange,
        key: &[u8],
        make: impl Fn(&RangeDescriptor) -> R::Request,
    ) -> Attempt<T>
    where
        R: Rpc<Response = Result<T, KvError>>,
    {
        let inner = &self.inner;
        let descriptor = &range.descriptor;
        let mut order: Vec<NodeId> = Vec::new();
        if let Some(l) = range.leaseholder {
            order.push(l);
        }
        for r in &descriptor.replicas {
            if !order.contains(&r.node_id) {
                order.push(r.node_id);
            }
        }
        let request = make(descriptor);
        let mut tried: Vec<NodeId> = Vec::new();
        let mut last_error = format!("range {} has no replicas", descriptor.range_id);
        while let Some(node) = order.first().copied() {
            order.remove(0);
            if tried.contains(&node) {
                continue;
            }
            tried.push(node);
            let result = inner
                .transport
                .call::<R>(node, &request, inner.config.rpc_timeout)
                .await;
            match result {
                Ok(Ok(value)) => {
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
                    last_error = format!("node {node} does not hold the lease");
                    if let Some(current) = current {
                        inner.cache.insert(*current);
                    }
                    if let Some(holder) = leaseholder {
                        if !tried.contains(&holder.node_id) {
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
                Ok(Err(e)) if e.is_retryable() => last_error = e.to_string(),
                Ok(Err(e)) => return Attempt::Fatal(e),
                Err(e) => {
                    inner.view.node_unreachable(node);
                    last_error = format!("node {node}: {e}");
                }
            }
        }
        // Nobody served it: the descriptor may be stale (replicas moved).
        inner.cache.evict(key, descriptor.range_id);
        Attempt::Retry(last_error)
    }
}

fn unexpected(response: &Response) -> ClientError {
    ClientError::InvalidRequest(format!("unexpected response {response:?}"))
}
