//! A batch of point requests: grouped per range, the groups sent in
//! parallel, the responses put back in batch order.
//!
//! 1. Each pending request's key is looked up; requests of one range form
//!    one group (in batch order), sent as one `BatchRequest`.
//! 2. A group's responses fill the slots of its members; a group that must
//!    be retried (the range moved or split, nobody answered) goes back to
//!    pending with the requests whose lookup failed, and the next round
//!    looks their ranges up again after a backoff.
//!
//! Not here: span requests ([`super::spans`]) and the replica order within
//! a range ([`super::routing`]).

use futures_util::future::join_all;
use meridian_hlc::Timestamp;
use meridian_kvapi::{BatchRequest, KvError, Request, Response};

use super::routing::{Attempt, RoutedBatch};
use super::{Backoff, BatchHeader, DistSender};
use crate::error::ClientError;
use crate::range_cache::CachedRange;

impl DistSender {
    /// Sends the point requests `pending`, grouped per range, in parallel.
    /// Returns the highest timestamp a range served its part at.
    pub(super) async fn send_points(
        &self,
        header: &BatchHeader,
        requests: &[Request],
        mut pending: Vec<usize>,
        responses: &mut [Option<Response>],
        backoff: &mut Backoff,
    ) -> Result<Timestamp, ClientError> {
        let mut highest = Timestamp::ZERO;
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
                self.call_range(range, key, move |d| RoutedBatch {
                    request: BatchRequest {
                        range_id: d.range_id,
                        timestamp: header.timestamp,
                        txn: header.txn.clone(),
                        requests: members.iter().map(|&i| requests[i].clone()).collect(),
                    },
                    nearest_first: header.nearest_replica,
                })
            }))
            .await;
            // A part whose outcome is unknown makes the whole batch's
            // unknown, whatever other parts answered: a definite error
            // must never hide a part that may still apply.
            if let Some(ambiguous) = attempts.iter().find_map(|a| match a {
                Attempt::Fatal(e @ KvError::AmbiguousResult { .. }) => Some(e.clone()),
                _ => None,
            }) {
                return Err(ambiguous.into());
            }
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
                        highest = highest.max(batch.timestamp);
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
        Ok(highest)
    }
}
