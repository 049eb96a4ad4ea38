//! Evaluation: running a batch of KV requests against MVCC at one
//! timestamp. Reads go straight to the engine; a batch with writes is
//! evaluated into a storage batch whose data writes become the command the
//! range replicates (later requests of the batch read its earlier writes).
//!
//! This module owns the mapping of each request type to its MVCC
//! operation (in a one-phase commit, whose rules live in
//! [`crate::txn_eval`], writes are committed values, not intents), and the GC rule every request meets first: a batch at or
//! below the range's GC threshold is refused ([`GcFloor`]), since the
//! versions it would read may be gone. It does not choose the timestamp nor
//! hold latches (the replica does, [`crate::replica`] and [`crate::lease`]),
//! and it does not apply the writes: the state machine does, once Raft
//! committed them.

use meridian_hlc::Timestamp;
use meridian_kvapi::{KvError, RangeId, Request, Response, TxnMeta};
use meridian_storage::mvcc::{
    mvcc_conditional_put, mvcc_delete_range, mvcc_get, mvcc_put, mvcc_scan, ReadOptions,
    ScanOptions,
};
use meridian_storage::{Engine, MvccStats, Reader, WriteSet};

use crate::error::kv_error;
use crate::raft::state_machine::AppliedSummary;
use crate::txn_eval::{
    end_in_one_phase, evaluate_txn_request, is_one_phase_commit, is_txn_request, query_intent,
    query_txn,
};

/// The GC threshold of a range as its applied state gives it: a batch at
/// or below it is refused with `BelowGcThreshold`. Taken after the
/// batch's latches and lease check, so no GC of the range can apply while
/// the batch evaluates (a GC holds a latch over the whole range until it
/// applied), and the threshold is at least that of every GC whose
/// removals the engine shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcFloor {
    pub range_id: RangeId,
    /// Zero: the range was never collected.
    pub threshold: Timestamp,
}

impl GcFloor {
    /// The floor as the state machine last published it.
    pub fn of(range_id: RangeId, applied: &tokio::sync::watch::Receiver<AppliedSummary>) -> Self {
        let threshold = applied.borrow().gc_threshold;
        GcFloor {
            range_id,
            threshold,
        }
    }

    /// Refuses `ts` at or below the threshold. GC keeps the newest version
    /// at or below the threshold, so a read exactly at it would still be
    /// right; refusing it too keeps one simple rule, as CockroachDB does.
    pub fn check(&self, ts: Timestamp) -> Result<(), KvError> {
        if !self.threshold.is_zero() && ts <= self.threshold {
            return Err(KvError::BelowGcThreshold {
                range_id: self.range_id,
                timestamp: ts,
                threshold: self.threshold,
            });
        }
        Ok(())
    }
}

/// The outcome of evaluating a batch: responses, and for a batch with
/// writes, the write set to replicate and its stats delta.
pub struct Evaluated {
    pub responses: Vec<Response>,
    pub writes: Option<(WriteSet, MvccStats)>,
    /// The highest timestamp the batch's intents lie at: the batch's own,
    /// or higher where it rewrote an intent of its transaction that a push
    /// had moved up (a rewrite never moves an intent back down). The batch
    /// answers it, so its coordinator never commits below an intent.
    pub written_at: Timestamp,
}

pub fn evaluate(
    engine: &Engine,
    requests: &[Request],
    ts: Timestamp,
    txn: Option<&TxnMeta>,
    uncertainty_limit: Option<Timestamp>,
    gc: GcFloor,
) -> Result<Evaluated, KvError> {
    // Reads and writes alike: the history at or below the threshold is
    // what GC judged; a write there would change it after the fact.
    gc.check(ts)?;
    let opts = ReadOptions {
        txn,
        uncertainty_limit,
    };
    if !requests.iter().any(Request::is_write) {
        let responses = requests
            .iter()
            .map(|r| match r {
                Request::QueryTxn { .. } => query_txn(engine, r),
                Request::GetForUpdate { key } => {
                    check_lockable(engine, key, ts, txn).and_then(|()| read(engine, r, ts, &opts))
                }
                _ => read(engine, r, ts, &opts),
            })
            .collect::<Result<_, _>>()?;
        return Ok(Evaluated {
            responses,
            writes: None,
            written_at: ts,
        });
    }
    let mut batch = engine.batch();
    let mut stats = MvccStats::default();
    let mut responses = Vec::with_capacity(requests.len());
    // A one-phase commit: its record (if any) is settled first, then its
    // writes are evaluated as committed values (no transaction: no
    // intents), and the commit's answer comes last.
    let (requests, write_txn, one_phase_end) = if is_one_phase_commit(requests, txn)? {
        let (end, writes) = requests.split_last().expect("a commit");
        let answer = end_in_one_phase(&mut batch, end, txn, ts)?;
        (writes, None, Some(answer))
    } else {
        (requests, txn, None)
    };
    let mut written_at = ts;
    for request in requests {
        let response = match request {
            Request::Put { key, value } => {
                mvcc_put(&mut batch, key, ts, write_txn, Some(value), &mut stats).map(|at| {
                    written_at = written_at.max(at);
                    Response::Put
                })
            }
            Request::ConditionalPut {
                key,
                value,
                expected,
            } => mvcc_conditional_put(
                &mut batch,
                key,
                ts,
                write_txn,
                Some(value),
                expected.as_deref(),
                &mut stats,
            )
            .map(|at| {
                written_at = written_at.max(at);
                Response::ConditionalPut
            }),
            Request::Delete { key } => mvcc_put(&mut batch, key, ts, write_txn, None, &mut stats)
                .map(|at| {
                    written_at = written_at.max(at);
                    Response::Delete
                }),
            Request::DeleteRange { start, end } => {
                mvcc_delete_range(&mut batch, start, end, ts, write_txn, &mut stats)
                    .map(|deleted| Response::DeleteRange { deleted })
            }
            txn_request if is_txn_request(txn_request) => {
                responses.push(evaluate_txn_request(
                    &mut batch,
                    txn_request,
                    txn,
                    &mut stats,
                )?);
                continue;
            }
            read_request => {
                if let Request::GetForUpdate { key } = read_request {
                    check_lockable(engine, key, ts, txn)?;
                }
                responses.push(read(&batch, read_request, ts, &opts)?);
                continue;
            }
        };
        responses.push(response.map_err(|e| one_phase_error(kv_error(e), txn, &one_phase_end))?);
    }
    responses.extend(one_phase_end);
    Ok(Evaluated {
        responses,
        writes: Some((batch.into_write_set(), stats)),
        written_at,
    })
}

/// For a transaction's batch whose writes the leaseholder moves from
/// `requested` (its timestamp) above a read it served: refuses it with
/// `WriteTooOld` if one of its keys has a version at or above `requested`,
/// as it would be refused there. Otherwise nothing was written on those
/// keys since, so the transaction's reads of them still hold at the moved
/// timestamp (its intents keep them so until it ends), and only its other
/// reads need a refresh. Other conflicts are left to the evaluation.
pub fn check_moved_writes(
    engine: &Engine,
    requests: &[Request],
    requested: Timestamp,
    txn: &TxnMeta,
) -> Result<(), KvError> {
    let mut batch = engine.batch();
    let mut stats = MvccStats::default();
    for request in requests {
        let checked = match request {
            Request::Put { key, .. }
            | Request::ConditionalPut { key, .. }
            | Request::Delete { key } => {
                mvcc_put(&mut batch, key, requested, Some(txn), None, &mut stats).map(|_| ())
            }
            Request::DeleteRange { start, end } => {
                mvcc_delete_range(&mut batch, start, end, requested, Some(txn), &mut stats)
                    .map(|_| ())
            }
            _ => Ok(()),
        };
        if let Err(e) = checked.map_err(kv_error) {
            if matches!(e, KvError::WriteTooOld { .. }) {
                return Err(e);
            }
        }
    }
    Ok(())
}

/// A write of a one-phase commit that met its own transaction's intent:
/// the transaction wrote before, so this batch is not all of it.
fn one_phase_error(
    error: KvError,
    txn: Option<&TxnMeta>,
    one_phase_end: &Option<Response>,
) -> KvError {
    match (error, txn) {
        (KvError::WriteIntent { key, txn: holder }, Some(txn))
            if one_phase_end.is_some() && holder.id == txn.id =>
        {
            KvError::OnePhaseCommitIncomplete {
                txn_id: txn.id,
                reason: format!("it holds an intent on {key:?} already"),
            }
        }
        (error, _) => error,
    }
}

/// A transaction's locking read of `key` at `ts` meets what its write
/// there would: `WriteTooOld` above a newer version (the transaction must
/// move up before it may lock the value it would then overwrite), and
/// `WriteIntent` on another transaction's intent. Outside a transaction
/// it is a plain read.
fn check_lockable(
    engine: &Engine,
    key: &[u8],
    ts: Timestamp,
    txn: Option<&TxnMeta>,
) -> Result<(), KvError> {
    let Some(txn) = txn else {
        return Ok(());
    };
    let mut scratch = engine.batch();
    let mut stats = MvccStats::default();
    mvcc_put(&mut scratch, key, ts, Some(txn), None, &mut stats)
        .map(|_| ())
        .map_err(kv_error)
}

fn read(
    reader: &dyn Reader,
    request: &Request,
    ts: Timestamp,
    opts: &ReadOptions,
) -> Result<Response, KvError> {
    match request {
        Request::Get { key } | Request::GetForUpdate { key } => mvcc_get(reader, key, ts, opts)
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
        Request::QueryIntent { .. } => query_intent(reader, request, ts),
        _ => Err(KvError::InvalidRequest("not a read".into())),
    }
}

#[cfg(test)]
mod tests {
    use meridian_storage::EngineOptions;

    use super::*;

    /// A range never collected.
    const NO_GC: GcFloor = GcFloor {
        range_id: 1,
        threshold: Timestamp::ZERO,
    };

    fn ts(wall: u64) -> Timestamp {
        Timestamp::new(wall, 0)
    }

    fn engine() -> (tempfile::TempDir, Engine) {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path(), &EngineOptions::default()).unwrap();
        (dir, engine)
    }

    fn put(key: &[u8], value: &[u8]) -> Request {
        Request::Put {
            key: key.to_vec(),
            value: value.to_vec(),
        }
    }

    fn get(key: &[u8]) -> Request {
        Request::Get { key: key.to_vec() }
    }

    fn scan(start: &[u8], end: &[u8], max_rows: u32, reverse: bool) -> Request {
        let (start, end) = (start.to_vec(), end.to_vec());
        if reverse {
            Request::ReverseScan {
                start,
                end,
                max_rows,
            }
        } else {
            Request::Scan {
                start,
                end,
                max_rows,
            }
        }
    }

    /// Evaluates `requests` at `at` and, as the state machine would, applies
    /// the writes; returns the responses and the stats delta.
    fn run(engine: &Engine, requests: Vec<Request>, at: Timestamp) -> (Vec<Response>, MvccStats) {
        let evaluated = evaluate(engine, &requests, at, None, None, NO_GC).expect("evaluates");
        let mut stats = MvccStats::default();
        if let Some((writes, delta)) = evaluated.writes {
            let mut batch = engine.batch();
            batch.apply_write_set(&writes);
            engine.commit(batch, false).unwrap();
            stats = delta;
        }
        (evaluated.responses, stats)
    }

    fn value_at(engine: &Engine, key: &[u8], at: Timestamp) -> Option<Vec<u8>> {
        match &run(engine, vec![get(key)], at).0[..] {
            [Response::Get { value }] => value.clone(),
            other => panic!("not a get response: {other:?}"),
        }
    }

    #[test]
    fn a_read_only_batch_produces_no_writes() {
        let (_dir, engine) = engine();
        let evaluated = evaluate(&engine, &[get(b"k")], ts(10), None, None, NO_GC).unwrap();
        assert!(evaluated.writes.is_none());
        assert_eq!(evaluated.responses, vec![Response::Get { value: None }]);
    }

    #[test]
    fn a_put_is_written_only_when_its_write_set_is_applied() {
        let (_dir, engine) = engine();
        let evaluated = evaluate(&engine, &[put(b"k", b"v")], ts(10), None, None, NO_GC).unwrap();
        assert_eq!(evaluated.responses, vec![Response::Put]);
        let (writes, stats) = evaluated.writes.expect("a write set");
        assert!(!writes.is_empty());
        assert_eq!(stats.live_count, 1);
        assert_eq!(stats.key_count, 1);
        assert_eq!(value_at(&engine, b"k", ts(20)), None, "evaluation wrote");

        let mut batch = engine.batch();
        batch.apply_write_set(&writes);
        engine.commit(batch, false).unwrap();
        assert_eq!(value_at(&engine, b"k", ts(20)), Some(b"v".to_vec()));
        assert_eq!(value_at(&engine, b"k", ts(5)), None, "visible before ts");
    }

    #[test]
    fn later_requests_of_a_batch_read_its_earlier_writes() {
        let (_dir, engine) = engine();
        let (responses, _) = run(&engine, vec![put(b"k", b"v"), get(b"k")], ts(10));
        assert_eq!(
            responses,
            vec![
                Response::Put,
                Response::Get {
                    value: Some(b"v".to_vec())
                }
            ]
        );
    }

    #[test]
    fn a_conditional_put_checks_the_current_value() {
        let (_dir, engine) = engine();
        let cput = |value: &[u8], expected: Option<&[u8]>| Request::ConditionalPut {
            key: b"k".to_vec(),
            value: value.to_vec(),
            expected: expected.map(<[u8]>::to_vec),
        };
        // Absent, as expected.
        let (responses, _) = run(&engine, vec![cput(b"v1", None)], ts(10));
        assert_eq!(responses, vec![Response::ConditionalPut]);
        // Present, but a different value was expected.
        let refused = evaluate(
            &engine,
            &[cput(b"v2", Some(b"other"))],
            ts(20),
            None,
            None,
            NO_GC,
        );
        assert!(
            matches!(&refused, Err(KvError::ConditionFailed { actual }) if actual.as_deref() == Some(&b"v1"[..])),
            "{:?}",
            refused.map(|e| e.responses)
        );
        // The right expectation.
        run(&engine, vec![cput(b"v2", Some(b"v1"))], ts(30));
        assert_eq!(value_at(&engine, b"k", ts(40)), Some(b"v2".to_vec()));
    }

    #[test]
    fn a_delete_hides_the_key_from_later_reads() {
        let (_dir, engine) = engine();
        run(&engine, vec![put(b"k", b"v")], ts(10));
        let (responses, stats) = run(
            &engine,
            vec![Request::Delete { key: b"k".to_vec() }],
            ts(20),
        );
        assert_eq!(responses, vec![Response::Delete]);
        assert_eq!(stats.live_count, -1);
        assert_eq!(value_at(&engine, b"k", ts(30)), None);
        assert_eq!(value_at(&engine, b"k", ts(15)), Some(b"v".to_vec()));
    }

    #[test]
    fn a_delete_range_reports_the_keys_it_deleted() {
        let (_dir, engine) = engine();
        run(
            &engine,
            vec![put(b"a", b"1"), put(b"b", b"2"), put(b"c", b"3")],
            ts(10),
        );
        let delete = Request::DeleteRange {
            start: b"a".to_vec(),
            end: b"c".to_vec(),
        };
        let (responses, _) = run(&engine, vec![delete], ts(20));
        assert_eq!(
            responses,
            vec![Response::DeleteRange {
                deleted: vec![b"a".to_vec(), b"b".to_vec()]
            }]
        );
        assert_eq!(value_at(&engine, b"a", ts(30)), None);
        assert_eq!(value_at(&engine, b"c", ts(30)), Some(b"3".to_vec()));
    }

    #[test]
    fn scans_honour_direction_row_limits_and_resume_keys() {
        let (_dir, engine) = engine();
        run(
            &engine,
            vec![put(b"a", b"1"), put(b"b", b"2"), put(b"c", b"3")],
            ts(10),
        );
        let row = |k: &[u8], v: &[u8]| (k.to_vec(), v.to_vec());
        let (responses, _) = run(&engine, vec![scan(b"a", b"z", 2, false)], ts(20));
        assert_eq!(
            responses,
            vec![Response::Scan {
                rows: vec![row(b"a", b"1"), row(b"b", b"2")],
                // The first key after the last row returned.
                resume_key: Some(b"b\0".to_vec()),
            }]
        );
        let (responses, _) = run(&engine, vec![scan(b"a", b"z", 0, true)], ts(20));
        assert_eq!(
            responses,
            vec![Response::Scan {
                rows: vec![row(b"c", b"3"), row(b"b", b"2"), row(b"a", b"1")],
                resume_key: None,
            }]
        );
        let (responses, _) = run(&engine, vec![scan(b"a", b"z", 0, false)], ts(5));
        assert_eq!(
            responses,
            vec![Response::Scan {
                rows: vec![],
                resume_key: None
            }],
            "a scan below the writes' timestamp"
        );
    }

    #[test]
    fn a_write_below_an_existing_version_is_too_old() {
        let (_dir, engine) = engine();
        run(&engine, vec![put(b"k", b"new")], ts(20));
        let refused = evaluate(&engine, &[put(b"k", b"old")], ts(10), None, None, NO_GC);
        assert!(
            matches!(
                refused,
                Err(KvError::WriteTooOld { requested, existing })
                    if requested == ts(10) && existing == ts(20)
            ),
            "not WriteTooOld"
        );
    }

    #[test]
    fn a_value_within_the_uncertainty_limit_makes_a_read_uncertain() {
        let (_dir, engine) = engine();
        run(&engine, vec![put(b"k", b"v")], ts(20));
        let uncertain = evaluate(&engine, &[get(b"k")], ts(10), None, Some(ts(25)), NO_GC);
        assert!(
            matches!(
                uncertain,
                Err(KvError::ReadWithinUncertainty { value_ts, .. }) if value_ts == ts(20)
            ),
            "not ReadWithinUncertainty"
        );
        // Below the limit's reach it is simply not visible.
        let evaluated = evaluate(&engine, &[get(b"k")], ts(10), None, Some(ts(15)), NO_GC).unwrap();
        assert_eq!(evaluated.responses, vec![Response::Get { value: None }]);
    }

    #[test]
    fn reads_and_writes_at_or_below_the_gc_threshold_are_refused() {
        let (_dir, engine) = engine();
        run(&engine, vec![put(b"k", b"v")], ts(10));
        let floor = GcFloor {
            range_id: 7,
            threshold: ts(20),
        };
        for (requests, at) in [
            (vec![get(b"k")], ts(20)),
            (vec![get(b"k")], ts(15)),
            (vec![scan(b"a", b"z", 0, false)], ts(5)),
            (vec![put(b"k", b"w")], ts(20)),
        ] {
            let refused = evaluate(&engine, &requests, at, None, None, floor);
            assert!(
                matches!(
                    &refused,
                    Err(KvError::BelowGcThreshold { range_id: 7, timestamp, threshold })
                        if *timestamp == at && *threshold == ts(20)
                ),
                "{requests:?} at {at}: {:?}",
                refused.map(|e| e.responses)
            );
        }
        // Just above it, everything works.
        let evaluated = evaluate(&engine, &[get(b"k")], ts(20).next(), None, None, floor).unwrap();
        assert_eq!(
            evaluated.responses,
            vec![Response::Get {
                value: Some(b"v".to_vec())
            }]
        );
        assert!(evaluate(&engine, &[put(b"k", b"w")], ts(21), None, None, floor).is_ok());
    }
    /// Applies what `requests` by `txn` at its write timestamp evaluated to.
    fn run_txn(
        engine: &Engine,
        requests: &[Request],
        txn: &TxnMeta,
    ) -> Result<Vec<Response>, KvError> {
        let evaluated = evaluate(
            engine,
            requests,
            txn.write_timestamp,
            Some(txn),
            None,
            NO_GC,
        )?;
        if let Some((writes, _)) = evaluated.writes {
            let mut batch = engine.batch();
            batch.apply_write_set(&writes);
            engine.commit(batch, false).unwrap();
        }
        Ok(evaluated.responses)
    }

    fn commit(anchor: &[u8], keys: &[&[u8]]) -> Request {
        Request::EndTxn {
            key: anchor.to_vec(),
            commit: true,
            lock_spans: keys
                .iter()
                .map(|k| (k.to_vec(), [*k, &[0u8][..]].concat()))
                .collect(),
            in_flight_writes: Vec::new(),
            one_phase: true,
        }
    }

    /// Writes and their commit in one batch are committed values at the
    /// transaction's timestamp: a plain read sees them (an intent would be
    /// refused as a conflict), and no record is left.
    #[test]
    fn a_one_phase_commit_writes_values_and_no_record() {
        let (_dir, engine) = engine();
        let txn = TxnMeta::new(b"a".to_vec(), ts(10));
        let responses = run_txn(
            &engine,
            &[
                put(b"a", b"1"),
                Request::Delete { key: b"b".to_vec() },
                put(b"b", b"2"),
                commit(b"a", &[b"a", b"b"]),
            ],
            &txn,
        )
        .unwrap();
        assert_eq!(responses.len(), 4);
        match &responses[3] {
            Response::EndTxn { record } => {
                assert_eq!(record.status, meridian_kvapi::TxnStatus::Committed);
                assert_eq!(record.meta.write_timestamp, ts(10));
            }
            other => panic!("not a commit: {other:?}"),
        }
        assert_eq!(value_at(&engine, b"a", ts(20)), Some(b"1".to_vec()));
        assert_eq!(value_at(&engine, b"b", ts(20)), Some(b"2".to_vec()));
        assert_eq!(value_at(&engine, b"a", ts(9)), None);
        assert_eq!(engine.txn_record(b"a", txn.id).unwrap(), None);
    }

    /// A commit batched with writes that are not all the transaction's
    /// (the rest may be on another range, not written yet) is refused,
    /// as is one meeting the transaction's own earlier intent.
    #[test]
    fn a_one_phase_commit_must_hold_every_write_of_its_transaction() {
        let (_dir, engine) = engine();
        let txn = TxnMeta::new(b"a".to_vec(), ts(10));
        let partial = run_txn(
            &engine,
            &[put(b"a", b"1"), commit(b"a", &[b"a", b"n"])],
            &txn,
        );
        assert!(
            matches!(partial, Err(KvError::OnePhaseCommitIncomplete { .. })),
            "{partial:?}"
        );
        assert_eq!(value_at(&engine, b"a", ts(20)), None);

        run_txn(&engine, &[put(b"c", b"intent")], &txn).unwrap();
        let over_own_intent = run_txn(&engine, &[put(b"c", b"2"), commit(b"a", &[b"c"])], &txn);
        assert!(
            matches!(
                over_own_intent,
                Err(KvError::OnePhaseCommitIncomplete { .. })
            ),
            "{over_own_intent:?}"
        );
    }

    /// Another transaction's intent stops a one-phase commit as it stops
    /// any write; so does a newer version.
    #[test]
    fn a_one_phase_commit_meets_conflicts_as_writes_do() {
        let (_dir, engine) = engine();
        let other = TxnMeta::new(b"k".to_vec(), ts(5));
        run_txn(&engine, &[put(b"k", b"theirs")], &other).unwrap();
        let txn = TxnMeta::new(b"k".to_vec(), ts(10));
        let blocked = run_txn(&engine, &[put(b"k", b"mine"), commit(b"k", &[b"k"])], &txn);
        assert!(
            matches!(&blocked, Err(KvError::WriteIntent { txn, .. }) if txn.id == other.id),
            "{blocked:?}"
        );
        run(&engine, vec![put(b"j", b"newer")], ts(20));
        let txn = TxnMeta::new(b"j".to_vec(), ts(10));
        let too_old = run_txn(&engine, &[put(b"j", b"mine"), commit(b"j", &[b"j"])], &txn);
        assert!(
            matches!(too_old, Err(KvError::WriteTooOld { existing, .. }) if existing == ts(20)),
            "{too_old:?}"
        );
    }

    /// The transaction's own PENDING record goes with the commit; a record
    /// pushed above the commit's timestamp refuses it, an aborted one too.
    #[test]
    fn a_one_phase_commit_settles_an_existing_record() {
        let (_dir, engine) = engine();
        let txn = TxnMeta::new(b"a".to_vec(), ts(10));
        let heartbeat = Request::HeartbeatTxn {
            key: b"a".to_vec(),
            now: ts(10),
        };
        run_txn(&engine, &[heartbeat], &txn).unwrap();
        assert!(engine.txn_record(b"a", txn.id).unwrap().is_some());
        run_txn(&engine, &[put(b"a", b"1"), commit(b"a", &[b"a"])], &txn).unwrap();
        assert_eq!(engine.txn_record(b"a", txn.id).unwrap(), None);

        let pushed = TxnMeta::new(b"p".to_vec(), ts(10));
        let push = Request::PushTxn {
            key: b"p".to_vec(),
            pushee: Box::new(pushed.clone()),
            kind: meridian_kvapi::PushKind::Timestamp(ts(30)),
            pusher_priority: 10,
            now: ts(11),
        };
        run(&engine, vec![push], ts(11));
        let refused = run_txn(&engine, &[put(b"p", b"1"), commit(b"p", &[b"p"])], &pushed);
        assert_eq!(
            refused,
            Err(KvError::TransactionPushed {
                txn_id: pushed.id,
                pushed_to: ts(30)
            })
        );
        assert_eq!(value_at(&engine, b"p", ts(40)), None);
    }
}
