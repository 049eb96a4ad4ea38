//! A span request (scan, reverse scan, delete-range) walking its ranges.
//!
//! A cursor starts at the span's start (forward) or end (reverse). Each
//! step looks up the range at the cursor (for a reverse scan, the range
//! holding the key just below it), sends the part of the span inside that
//! range, with the rows still wanted as its limit, and moves the cursor to
//! the part's far edge. The walk stops at the span's other end, or when
//! the row limit is reached: then the response carries the resume key
//! (forward: the next start key; reverse: the next exclusive end key),
//! either the range's own or the cursor at a range boundary.
//!
//! Not here: point requests ([`super::points`]) and the replica order
//! within a range ([`super::routing`]).

use meridian_hlc::Timestamp;
use meridian_kvapi::{BatchRequest, Request, Response};

use super::routing::{Attempt, RoutedBatch};
use super::{unexpected, Backoff, BatchHeader, DistSender};
use crate::error::ClientError;

impl DistSender {
    /// Sends a span request range by range; with the highest timestamp a
    /// range served its part at.
    pub(super) async fn send_span(
        &self,
        header: &BatchHeader,
        request: &Request,
        backoff: &mut Backoff,
    ) -> Result<(Response, Timestamp), ClientError> {
        let mut highest = Timestamp::ZERO;
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
                .call_range(&range, &part_start, |d| RoutedBatch {
                    request: BatchRequest {
                        range_id: d.range_id,
                        timestamp: header.timestamp,
                        txn: header.txn.clone(),
                        requests: vec![part.clone()],
                    },
                    nearest_first: header.nearest_replica,
                })
                .await;
            let response = match attempt {
                Attempt::Done(mut batch) => {
                    highest = highest.max(batch.timestamp);
                    batch.responses.pop()
                }
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
                        return Ok((Response::Scan { rows, resume_key }, highest));
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
                let response = Response::Scan {
                    rows,
                    resume_key: Some(cursor),
                };
                return Ok((response, highest));
            }
        }
        let response = if delete {
            Response::DeleteRange { deleted }
        } else {
            Response::Scan {
                rows,
                resume_key: None,
            }
        };
        Ok((response, highest))
    }
}
