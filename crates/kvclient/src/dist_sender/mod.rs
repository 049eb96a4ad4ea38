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
//! record, `meta_key(end_key) -> descriptor`, read from the first range
//! (unless the view knows the range itself, [`ClusterView::locate`]).
//!
//! The files, one concern each:
//! - this one: the public API, the configuration and the retry backoff;
//! - [`routing`]: finding a key's range (cache, view, meta records) and one
//!   pass over a range's replicas, leaseholder first;
//! - [`points`]: a batch of point requests, grouped per range and
//!   reassembled in batch order;
//! - [`spans`]: a scan, reverse scan or delete-range walking its ranges.
//!
//! Not here: the network ([`NodeTransport`] is the seam; the QUIC transport
//! implements it) and the cache's own rules ([`crate::range_cache`]).

mod points;
mod routing;
mod spans;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use meridian_hlc::Timestamp;
use meridian_kvapi::wire::AdminSplitRequest;
use meridian_kvapi::{NodeId, RangeDescriptor, RangeId, Request, Response, TxnMeta};
use meridian_transport::Transport;
use tracing::debug;

use crate::error::ClientError;
use crate::node_transport::NodeTransport;
use crate::range_cache::{CachedRange, RangeCache};
use routing::Attempt;

/// What the DistSender needs to know of the cluster beyond the range cache.
pub trait ClusterView: Send + Sync + 'static {
    /// The descriptor of the first range, if it can be found now.
    fn first_range(&self) -> BoxFuture<'_, Option<RangeDescriptor>>;
    /// The range holding `key` (with `before`: holding the key just below
    /// `key`), for a view that knows the ranges without reading meta
    /// records, as an in-process test cluster does. `None` (the default):
    /// the meta records decide.
    fn locate(&self, _key: &[u8], _before: bool) -> Option<RangeDescriptor> {
        None
    }
    /// Told when a call to `node` failed in transport (unknown, down or
    /// partitioned), e.g. to refresh its address.
    fn node_unreachable(&self, _node: NodeId) {}
}

/// What every part of a batch carries, whichever range serves it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchHeader {
    /// The timestamp every part is served at; `None`: each range's
    /// leaseholder picks one.
    pub timestamp: Option<Timestamp>,
    /// The transaction the batch belongs to.
    pub txn: Option<TxnMeta>,
    /// For reads at a fixed timestamp old enough to be closed (a follower
    /// read): try the nearest replica first, by measured round trip; any
    /// replica that cannot serve it sends it on toward the leaseholder.
    pub nearest_replica: bool,
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

/// Cheap to clone; clones share the cache.
#[derive(Clone)]
pub struct DistSender {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Arc<dyn NodeTransport>,
    cache: RangeCache,
    view: Arc<dyn ClusterView>,
    config: DistSenderConfig,
    /// Replicas (node, range) whose last call failed in the transport, until
    /// when they are suspected: tried after every other replica of the
    /// range, and not at all for a write, which could only end ambiguous
    /// there. Per range, not per node: a timeout may be one range's trouble
    /// (a lost quorum, a long latch wait), and the node's other ranges must
    /// not pay for it.
    suspects: parking_lot::Mutex<std::collections::HashMap<(NodeId, RangeId), Instant>>,
    /// When each range was last looked up again for a stale descriptor
    /// (a follower read's, see `routing`).
    relooked: parking_lot::Mutex<std::collections::HashMap<RangeId, Instant>>,
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
    /// A DistSender calling nodes over the QUIC `transport`.
    pub fn new(transport: Transport, view: Arc<dyn ClusterView>, config: DistSenderConfig) -> Self {
        Self::with_transport(Arc::new(transport), view, config)
    }

    /// A DistSender calling nodes through any [`NodeTransport`] (an
    /// in-process cluster, a scripted test double).
    pub fn with_transport(
        transport: Arc<dyn NodeTransport>,
        view: Arc<dyn ClusterView>,
        config: DistSenderConfig,
    ) -> Self {
        DistSender {
            inner: Arc::new(Inner {
                transport,
                cache: RangeCache::default(),
                view,
                config,
                suspects: Default::default(),
                relooked: Default::default(),
            }),
        }
    }

    pub fn cache(&self) -> &RangeCache {
        &self.inner.cache
    }

    /// Sends `requests` and returns their responses in order; each range
    /// serves its part at a timestamp its leaseholder picks.
    pub async fn send(&self, requests: Vec<Request>) -> Result<Vec<Response>, ClientError> {
        self.send_with(&BatchHeader::default(), requests).await
    }

    /// Sends `requests` with `header` (the timestamp every range serves its
    /// part at, the transaction they belong to) and returns their responses
    /// in order.
    pub async fn send_with(
        &self,
        header: &BatchHeader,
        requests: Vec<Request>,
    ) -> Result<Vec<Response>, ClientError> {
        self.send_with_timestamp(header, requests)
            .await
            .map(|(responses, _)| responses)
    }

    /// As [`Self::send_with`], with the highest timestamp a range served
    /// its part at: above the header's when a leaseholder moved a
    /// transaction's writes above a read it served (their intents lie
    /// there, and the transaction must follow before it commits).
    pub async fn send_with_timestamp(
        &self,
        header: &BatchHeader,
        requests: Vec<Request>,
    ) -> Result<(Vec<Response>, Timestamp), ClientError> {
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
        let mut highest = Timestamp::ZERO;
        let all_points = requests.iter().all(|r| r.span().1.is_none());
        if all_points {
            let points: Vec<usize> = (0..requests.len()).collect();
            highest = self
                .send_points(header, &requests, points, &mut responses, &mut backoff)
                .await?;
        } else {
            // With span requests in the batch, requests run one after the
            // other in batch order, so a later write is never undone by an
            // earlier delete-range.
            for (i, request) in requests.iter().enumerate() {
                let (response, at) = match request.span() {
                    (_, Some(_)) => self.send_span(header, request, &mut backoff).await?,
                    (_, None) => {
                        let mut one = vec![None];
                        let at = self
                            .send_points(
                                header,
                                std::slice::from_ref(request),
                                vec![0],
                                &mut one,
                                &mut backoff,
                            )
                            .await?;
                        (one.pop().flatten().expect("sent"), at)
                    }
                };
                responses[i] = Some(response);
                highest = highest.max(at);
            }
        }
        let responses = responses
            .into_iter()
            .map(|r| r.expect("all sent"))
            .collect();
        Ok((responses, highest))
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
        right_range_id: RangeId,
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
                        .call_range(&range, split_key, |d| AdminSplitRequest {
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

    /// The range holding `key`, from the cache or the meta records.
    pub async fn lookup_range(&self, key: &[u8]) -> Result<RangeDescriptor, ClientError> {
        let mut backoff = Backoff::new(self.inner.config.deadline);
        loop {
            match self.lookup(key, false).await {
                Ok(range) => return Ok(range.descriptor),
                Err(e) => backoff.wait(e).await?,
            }
        }
    }
}

fn unexpected(response: &Response) -> ClientError {
    ClientError::InvalidRequest(format!("unexpected response {response:?}"))
}
