//! Evaluation: running a batch of KV requests against MVCC at one
//! timestamp. Reads go straight to the engine; a batch with writes is
//! evaluated into a storage batch whose data writes become the command the
//! range replicates.

use meridian_hlc::Timestamp;
use meridian_kvapi::{KvError, Request, Response, TxnMeta};
use meridian_storage::mvcc::{
    mvcc_conditional_put, mvcc_delete_range, mvcc_get, mvcc_put, mvcc_scan, ReadOptions,
    ScanOptions,
};
use meridian_storage::{Engine, MvccStats, Reader, WriteSet};

use crate::error::kv_error;

/// The outcome of evaluating a batch: responses, and for a batch with
/// writes, the write set to replicate and its stats delta.
pub struct Evaluated {
    pub responses: Vec<Response>,
    pub writes: Option<(WriteSet, MvccStats)>,
}

pub fn evaluate(
    engine: &Engine,
    requests: &[Request],
    ts: Timestamp,
    txn: Option<&TxnMeta>,
    uncertainty_limit: Option<Timestamp>,
) -> Result<Evaluated, KvError> {
    let opts = ReadOptions {
        txn,
        uncertainty_limit,
    };
    if !requests.iter().any(Request::is_write) {
        let responses = requests
            .iter()
            .map(|r| read(engine, r, ts, &opts))
            .collect::<Result<_, _>>()?;
        return Ok(Evaluated {
            responses,
            writes: None,
        });
    }
    let mut batch = engine.batch();
    let mut stats = MvccStats::default();
    let mut responses = Vec::with_capacity(requests.len());
    for request in requests {
        let response = match request {
            Request::Put { key, value } => {
                mvcc_put(&mut batch, key, ts, txn, Some(value), &mut stats).map(|_| Response::Put)
            }
            Request::ConditionalPut {
                key,
                value,
                expected,
            } => mvcc_conditional_put(
                &mut batch,
                key,
                ts,
                txn,
                Some(value),
                expected.as_deref(),
                &mut stats,
            )
            .map(|_| Response::ConditionalPut),
            Request::Delete { key } => {
                mvcc_put(&mut batch, key, ts, txn, None, &mut stats).map(|_| Response::Delete)
            }
            Request::DeleteRange { start, end } => {
                mvcc_delete_range(&mut batch, start, end, ts, txn, &mut stats)
                    .map(|deleted| Response::DeleteRange { deleted })
            }
            read_request => {
                responses.push(read(&batch, read_request, ts, &opts)?);
                continue;
            }
        };
        responses.push(response.map_err(kv_error)?);
    }
    Ok(Evaluated {
        responses,
        writes: Some((batch.into_write_set(), stats)),
    })
}

fn read(
    reader: &dyn Reader,
    request: &Request,
    ts: Timestamp,
    opts: &ReadOptions,
) -> Result<Response, KvError> {
    match request {
        Request::Get { key } => mvcc_get(reader, key, ts, opts)
            .map(|v| Response::Get {
                value: v.map(|v| v.value),
            })
            .map_err(kv_error),
        Request::Scan {
            start,
            end,
            max_rows,
        }
        | Request::ReverseScan {
            start,
            end,
            max_rows,
        } => {
            let scan = ScanOptions {
                max_rows: *max_rows as usize,
                max_bytes: 0,
                reverse: matches!(request, Request::ReverseScan { .. }),
            };
            mvcc_scan(reader, start, end, ts, opts, scan)
                .map(|r| Response::Scan {
                    rows: r.rows.into_iter().map(|(k, v)| (k, v.value)).collect(),
                    resume_key: r.resume_key,
                })
                .map_err(kv_error)
        }
        _ => Err(KvError::InvalidRequest("not a read".into())),
    }
}
