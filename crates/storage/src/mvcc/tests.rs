//! Data-driven MVCC scenarios (`crates/storage/testdata/mvcc/*.txt`) and
//! a property test against an in-memory model.
//!
//! A scenario file is a list of blocks separated by blank lines, read by
//! the shared runner (`meridian-golden`, one test per file in
//! `mvcc::tests::golden`):
//!
//! ```text
//! # a comment
//! put k=a ts=10 v=one
//! ----
//! ok
//! ```
//!
//! One command goes above `----`, its output below. Run with
//! `UPDATE_GOLDEN=1` to rewrite the outputs, then read the diff. A new file
//! in `testdata/mvcc/` gets its test by adding its name to the list in
//! `mod golden` below (a test fails until it is listed).
//!
//! Commands (timestamps are `wall` or `wall.logical`):
//! - `txn name=T ts=TS [epoch=N] [seq=N] [ignore=A-B,C-D]`: define or
//!   update transaction T (its sequence number, the ranges rolled back)
//! - `put k=K ts=TS v=V [txn=T]`, `del k=K ts=TS [txn=T]`
//! - `cput k=K ts=TS v=V [exp=E] [txn=T]` (no `exp`: the key must be absent)
//! - `get k=K ts=TS [txn=T] [unc=TS]`
//! - `scan start=K end=K ts=TS [txn=T] [unc=TS] [limit=N] [reverse]`
//! - `delete_range start=K end=K ts=TS [txn=T]`
//! - `resolve k=K txn=T status=committed|aborted|pending [ts=TS]`
//! - `resolve_range start=K end=K txn=T status=... [ts=TS] [limit=N]`
//! - `gc k=K threshold=TS`, `gc_range start=K end=K threshold=TS`
//! - `dump`: every stored record; `stats`: incremental stats, checked
//!   against a full recount

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use meridian_hlc::Timestamp;
use meridian_keys::mvcc::decode_mvcc_key;
use meridian_kvapi::{TxnId, TxnMeta};
use proptest::prelude::*;

use super::*;
use crate::cursor::Reader;
use crate::engine::{Batch, Engine, EngineOptions};
use crate::error::StorageError;
use crate::stats::{compute_stats, MvccStats};

fn parse_ts(s: &str) -> Timestamp {
    match s.split_once('.') {
        Some((w, l)) => Timestamp::new(w.parse().unwrap(), l.parse().unwrap()),
        None => Timestamp::new(s.parse().unwrap(), 0),
    }
}

fn fmt_ts(ts: Timestamp) -> String {
    if ts.logical == 0 {
        ts.wall_nanos.to_string()
    } else {
        format!("{}.{}", ts.wall_nanos, ts.logical)
    }
}

struct Scenario {
    _dir: tempfile::TempDir,
    engine: Engine,
    txns: HashMap<String, TxnMeta>,
    names: HashMap<TxnId, String>,
    stats: MvccStats,
}

impl Scenario {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path(), &EngineOptions::default()).unwrap();
        Scenario {
            _dir: dir,
            engine,
            txns: HashMap::new(),
            names: HashMap::new(),
            stats: MvccStats::default(),
        }
    }

    fn name(&self, id: TxnId) -> String {
        self.names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| id.to_string())
    }

    fn fmt_err(&self, err: StorageError) -> String {
        match err {
            StorageError::WriteIntent { intents } => {
                let list: Vec<String> = intents
                    .iter()
                    .map(|i| {
                        format!(
                            "{} of {}@{}",
                            String::from_utf8_lossy(&i.key),
                            self.name(i.txn.id),
                            fmt_ts(i.txn.write_timestamp)
                        )
                    })
                    .collect();
                format!("conflict: intents {}", list.join(", "))
            }
            StorageError::WriteTooOld {
                requested,
                existing,
            } => format!(
                "write too old: requested {}, existing {}",
                fmt_ts(requested),
                fmt_ts(existing)
            ),
            StorageError::ReadWithinUncertainty {
                read_ts,
                value_ts,
                uncertainty_limit,
            } => format!(
                "uncertain: read {} found value at {} (limit {})",
                fmt_ts(read_ts),
                fmt_ts(value_ts),
                fmt_ts(uncertainty_limit)
            ),
            StorageError::ConditionFailed { actual } => format!(
                "condition failed: actual {}",
                actual.map_or("<none>".into(), |v| String::from_utf8_lossy(&v)
                    .into_owned())
            ),
            other => format!("error: {other}"),
        }
    }

    fn fmt_value(v: &Option<VersionedValue>) -> String {
        match v {
            Some(v) => format!(
                "{} @{}",
                String::from_utf8_lossy(&v.value),
                fmt_ts(v.timestamp)
            ),
            None => "<none>".into(),
        }
    }

    fn dump(&self) -> String {
        let mut out = String::new();
        let mut cursor = self.engine.cursor(None, None);
        cursor.seek(&[]);
        while cursor.valid() {
            let k = decode_mvcc_key(cursor.key()).unwrap();
            let key = String::from_utf8_lossy(&k.key);
            match decode_record(cursor.value(), k.timestamp.is_none()).unwrap() {
                Record::Intent(i) => {
                    let show = |v: &Option<Vec<u8>>| {
                        v.as_ref().map_or("<delete>".into(), |v| {
                            String::from_utf8_lossy(v).into_owned()
                        })
                    };
                    let mut sequence = String::new();
                    if i.txn.sequence != 0 || !i.history.is_empty() {
                        write!(sequence, " seq {}", i.txn.sequence).unwrap();
                    }
                    let mut history = String::new();
                    if !i.history.is_empty() {
                        let earlier: Vec<String> = i
                            .history
                            .iter()
                            .map(|(seq, v)| format!("{seq}={}", show(v)))
                            .collect();
                        write!(history, " (earlier: {})", earlier.join(", ")).unwrap();
                    }
                    writeln!(
                        out,
                        "{key} intent {}@{} epoch {}{sequence}: {}{history}",
                        self.name(i.txn.id),
                        fmt_ts(i.txn.write_timestamp),
                        i.txn.epoch,
                        show(&i.value),
                    )
                }
                Record::Value(v) => writeln!(
                    out,
                    "{key}@{}: {}",
                    fmt_ts(k.timestamp.unwrap()),
                    String::from_utf8_lossy(&v)
                ),
                Record::Tombstone => {
                    writeln!(out, "{key}@{}: <tombstone>", fmt_ts(k.timestamp.unwrap()))
                }
            }
            .unwrap();
            cursor.next();
        }
        if out.is_empty() {
            out.push_str("<empty>\n");
        }
        out
    }

    /// Runs one write command in its own batch; the batch and the stats
    /// delta are kept only if it succeeds.
    fn write(&mut self, f: impl FnOnce(&mut Batch, &mut MvccStats) -> Result<String>) -> String {
        let mut batch = self.engine.batch();
        let mut delta = MvccStats::default();
        match f(&mut batch, &mut delta) {
            Ok(out) => {
                self.engine.commit(batch, false).unwrap();
                self.stats.add(&delta);
                out
            }
            Err(e) => self.fmt_err(e),
        }
    }

    fn run(&mut self, line: &str) -> String {
        let mut words = line.split_whitespace();
        let cmd = words.next().unwrap();
        let mut args: HashMap<&str, &str> = HashMap::new();
        let mut flags = Vec::new();
        for w in words {
            match w.split_once('=') {
                Some((k, v)) => {
                    args.insert(k, v);
                }
                None => flags.push(w),
            }
        }
        let arg = |name: &str| {
            *args
                .get(name)
                .unwrap_or_else(|| panic!("{line}: missing {name}="))
        };
        let key = |name: &str| arg(name).replace("\\x00", "\0").into_bytes();
        let ts = |name: &str| parse_ts(arg(name));
        let txn = args.get("txn").map(|n| self.txns[*n].clone());
        let unc = args.get("unc").map(|s| parse_ts(s));
        match cmd {
            "txn" => {
                let name = args["name"].to_string();
                let write_ts = ts("ts");
                let epoch = args.get("epoch").map_or(0, |e| e.parse().unwrap());
                let meta = self.txns.entry(name.clone()).or_insert_with(|| {
                    let mut meta = TxnMeta::new(name.as_bytes().to_vec(), write_ts);
                    meta.id = TxnId(name.bytes().fold(7u128, |h, b| h * 31 + b as u128));
                    meta
                });
                meta.write_timestamp = write_ts;
                meta.epoch = epoch;
                let mut out = format!("{name} @{} epoch {epoch}", fmt_ts(write_ts));
                if let Some(seq) = args.get("seq") {
                    meta.sequence = seq.parse().unwrap();
                    write!(out, " seq {seq}").unwrap();
                }
                if let Some(ignore) = args.get("ignore") {
                    meta.ignored_seqs = ignore
                        .split(',')
                        .map(|r| {
                            let (a, b) = r.split_once('-').unwrap();
                            (a.parse().unwrap(), b.parse().unwrap())
                        })
                        .collect();
                    write!(out, " ignoring {ignore}").unwrap();
                }
                self.names.insert(meta.id, name.clone());
                out
            }
            "put" | "del" => {
                let (k, t) = (key("k"), ts("ts"));
                let v = (cmd == "put").then(|| key("v"));
                self.write(|b, s| {
                    mvcc_put(b, &k, t, txn.as_ref(), v.as_deref(), s).map(|_| "ok".into())
                })
            }
            "cput" => {
                let (k, t, v) = (key("k"), ts("ts"), key("v"));
                let exp = args.get("exp").map(|e| e.as_bytes().to_vec());
                self.write(|b, s| {
                    mvcc_conditional_put(b, &k, t, txn.as_ref(), Some(&v), exp.as_deref(), s)
                        .map(|_| "ok".into())
                })
            }
            "get" => {
                let opts = ReadOptions {
                    txn: txn.as_ref(),
                    uncertainty_limit: unc,
                };
                match mvcc_get(&self.engine, &key("k"), ts("ts"), &opts) {
                    Ok(v) => Self::fmt_value(&v),
                    Err(e) => self.fmt_err(e),
                }
            }
            "scan" => {
                let opts = ReadOptions {
                    txn: txn.as_ref(),
                    uncertainty_limit: unc,
                };
                let scan = ScanOptions {
                    max_rows: args.get("limit").map_or(0, |l| l.parse().unwrap()),
                    max_bytes: 0,
                    reverse: flags.contains(&"reverse"),
                };
                match mvcc_scan(
                    &self.engine,
                    &key("start"),
                    &key("end"),
                    ts("ts"),
                    &opts,
                    scan,
                ) {
                    Ok(r) => {
                        let mut out: Vec<String> = r
                            .rows
                            .iter()
                            .map(|(k, v)| {
                                format!(
                                    "{}: {}",
                                    String::from_utf8_lossy(k),
                                    Self::fmt_value(&Some(v.clone()))
                                )
                            })
                            .collect();
                        if out.is_empty() {
                            out.push("<no rows>".into());
                        }
                        if let Some(resume) = r.resume_key {
                            out.push(format!("resume at {:?}", String::from_utf8_lossy(&resume)));
                        }
                        out.join("\n")
                    }
                    Err(e) => self.fmt_err(e),
                }
            }
            "delete_range" => {
                let (s0, e0, t) = (key("start"), key("end"), ts("ts"));
                self.write(|b, s| {
                    mvcc_delete_range(b, &s0, &e0, t, txn.as_ref(), s).map(|keys| {
                        let keys: Vec<_> = keys
                            .iter()
                            .map(|k| String::from_utf8_lossy(k).into_owned())
                            .collect();
                        format!("deleted [{}]", keys.join(", "))
                    })
                })
            }
            "resolve" | "resolve_range" => {
                let txn = txn.expect("resolve needs txn=");
                let status = match args["status"] {
                    "committed" => ResolutionStatus::Committed,
                    "aborted" => ResolutionStatus::Aborted,
                    "pending" => ResolutionStatus::Pending,
                    other => panic!("unknown status {other}"),
                };
                let resolution = IntentResolution {
                    txn_id: txn.id,
                    epoch: txn.epoch,
                    status,
                    timestamp: args.get("ts").map_or(txn.write_timestamp, |t| parse_ts(t)),
                    ignored_seqs: txn.ignored_seqs.clone(),
                };
                if cmd == "resolve" {
                    let k = key("k");
                    self.write(|b, s| {
                        resolve_intent(b, &k, &resolution, s)
                            .map(|found| format!("resolved: {found}"))
                    })
                } else {
                    let (s0, e0) = (key("start"), key("end"));
                    let limit = args.get("limit").map_or(0, |l| l.parse().unwrap());
                    self.write(|b, s| {
                        resolve_intent_span(b, &s0, &e0, &resolution, limit, s).map(
                            |(n, resume)| match resume {
                                Some(r) => format!(
                                    "resolved {n}, resume at {:?}",
                                    String::from_utf8_lossy(&r)
                                ),
                                None => format!("resolved {n}"),
                            },
                        )
                    })
                }
            }
            "gc" => {
                let (k, t) = (key("k"), ts("threshold"));
                self.write(|b, s| gc_key(b, &k, t, s).map(|n| format!("removed {n}")))
            }
            "gc_range" => {
                let (s0, e0, t) = (key("start"), key("end"), ts("threshold"));
                self.write(|b, s| gc_span(b, &s0, &e0, t, s).map(|n| format!("removed {n}")))
            }
            "dump" => self.dump().trim_end().to_string(),
            "stats" => {
                let computed = compute_stats(&self.engine, b"", &[0xff, 0xff]).unwrap();
                assert_eq!(
                    self.stats, computed,
                    "incremental stats differ from a recount"
                );
                let s = self.stats;
                format!(
                    "live_count={} live_bytes={} key_count={} versions={} intents={} bytes={}",
                    s.live_count,
                    s.live_bytes,
                    s.key_count,
                    s.version_count,
                    s.intent_count,
                    s.total_bytes()
                )
            }
            other => panic!("unknown command {other:?}"),
        }
    }
}

impl meridian_golden::Runner for Scenario {
    fn run(&mut self, command: &str) -> String {
        Scenario::run(self, command)
    }
}

mod golden {
    meridian_golden::test_each_file! {
        dir: "testdata/mvcc",
        runner: super::Scenario::new,
        files: [basic, gc, intents, isolation, resolution_rules, savepoints, uncertainty],
    }
}

#[test]
fn corrupt_values_are_errors_not_panics() {
    let mut scenario = Scenario::new();
    scenario.run("put k=a ts=10 v=x");
    // Overwrite the stored version with bytes of an unknown kind.
    let mut batch = scenario.engine.batch();
    batch.put_data(
        meridian_keys::mvcc::encode_version_key(b"a", Timestamp::new(10, 0)),
        vec![0x77],
    );
    batch.put_data(
        meridian_keys::mvcc::encode_intent_key(b"b"),
        vec![0x10, 0xff, 0xff],
    );
    batch.put_data(
        meridian_keys::mvcc::encode_version_key(b"c", Timestamp::new(10, 0)),
        vec![],
    );
    scenario.engine.commit(batch, false).unwrap();
    let opts = ReadOptions::default();
    for key in [&b"a"[..], b"b", b"c"] {
        let err = mvcc_get(&scenario.engine, key, Timestamp::new(20, 0), &opts).unwrap_err();
        assert!(matches!(err, StorageError::Corrupt { .. }), "{err:?}");
    }
}

#[test]
fn oversized_keys_and_values_are_refused() {
    let mut scenario = Scenario::new();
    let big_key = vec![b'k'; meridian_keys::MAX_KEY_BYTES + 1];
    let out = scenario.write(|b, s| {
        mvcc_put(b, &big_key, Timestamp::new(1, 0), None, Some(b"v"), s).map(|_| "ok".into())
    });
    assert!(out.contains("exceeds the limit"), "{out}");
    let big_value = vec![0u8; meridian_keys::MAX_VALUE_BYTES + 1];
    let out = scenario.write(|b, s| {
        mvcc_put(b, b"k", Timestamp::new(1, 0), None, Some(&big_value), s).map(|_| "ok".into())
    });
    assert!(out.contains("exceeds the limit"), "{out}");
    assert_eq!(scenario.dump(), "<empty>\n");
}

#[test]
fn batch_reads_its_own_writes() {
    let scenario = Scenario::new();
    let mut batch = scenario.engine.batch();
    let mut stats = MvccStats::default();
    let t = |w| Timestamp::new(w, 0);
    mvcc_put(&mut batch, b"a", t(10), None, Some(b"1"), &mut stats).unwrap();
    mvcc_put(&mut batch, b"b", t(10), None, Some(b"2"), &mut stats).unwrap();
    // A second write in the same batch sees the first one.
    let err = mvcc_put(&mut batch, b"a", t(5), None, Some(b"0"), &mut stats).unwrap_err();
    assert!(matches!(err, StorageError::WriteTooOld { .. }));
    // The same key again at the same timestamp replaces the batch's own write.
    mvcc_put(&mut batch, b"b", t(10), None, Some(b"2b"), &mut stats).unwrap();
    mvcc_put(&mut batch, b"a", t(20), None, None, &mut stats).unwrap();
    let opts = ReadOptions::default();
    let scan = mvcc_scan(&batch, b"a", b"z", t(30), &opts, ScanOptions::default()).unwrap();
    assert_eq!(scan.rows.len(), 1, "a is deleted at 20: {scan:?}");
    let reverse = ScanOptions {
        reverse: true,
        ..ScanOptions::default()
    };
    let back = mvcc_scan(&batch, b"a", b"z", t(15), &opts, reverse).unwrap();
    let keys: Vec<_> = back.rows.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(keys, vec![b"b".to_vec(), b"a".to_vec()]);
    // Nothing is visible outside the batch until it commits.
    assert_eq!(
        mvcc_get(&scenario.engine, b"b", t(30), &opts).unwrap(),
        None
    );
    scenario.engine.commit(batch, true).unwrap();
    assert_eq!(
        compute_stats(&scenario.engine, b"", b"\xff").unwrap(),
        stats
    );
    assert!(mvcc_get(&scenario.engine, b"b", t(30), &opts)
        .unwrap()
        .is_some());
}

#[test]
fn batch_reverse_scan_ending_at_a_pending_key_sees_keys_below_it() {
    // The reverse scan seeks to the span's end, which is exactly the intent
    // key of "c", a key this batch wrote: the merge must still see "b".
    let scenario = Scenario::new();
    let mut batch = scenario.engine.batch();
    let mut stats = MvccStats::default();
    let t = Timestamp::new(10, 0);
    let txn = model_txn(0);
    mvcc_put(&mut batch, b"b", t, Some(&txn), Some(b"1"), &mut stats).unwrap();
    mvcc_put(&mut batch, b"c", t, Some(&txn), Some(b"2"), &mut stats).unwrap();
    let reverse = ScanOptions {
        reverse: true,
        ..ScanOptions::default()
    };
    let opts = ReadOptions {
        txn: Some(&txn),
        uncertainty_limit: None,
    };
    let rows = mvcc_scan(&batch, b"a", b"c", Timestamp::new(20, 0), &opts, reverse).unwrap();
    let keys: Vec<_> = rows.rows.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(keys, vec![b"b".to_vec()]);
}

#[test]
fn bounded_gc_lists_the_keys_it_collected_and_resumes_after_its_budget() {
    let scenario = Scenario::new();
    let t = |w| Timestamp::new(w, 0);
    let mut batch = scenario.engine.batch();
    let mut stats = MvccStats::default();
    // a and c have garbage below 25; b (one version) and d (above) have none.
    for (key, ts) in [
        ("a", 10),
        ("a", 20),
        ("b", 10),
        ("c", 10),
        ("c", 20),
        ("d", 30),
        ("d", 40),
    ] {
        mvcc_put(
            &mut batch,
            key.as_bytes(),
            t(ts),
            None,
            Some(b"v"),
            &mut stats,
        )
        .unwrap();
    }
    scenario.engine.commit(batch, false).unwrap();

    // A budget of one byte stops after the first key with garbage.
    let mut batch = scenario.engine.batch();
    let mut delta = MvccStats::default();
    let first = gc_span_bounded(&mut batch, b"", b"z", t(25), &mut delta, 1).unwrap();
    assert_eq!(first.removed, 1);
    assert_eq!(first.keys, vec![b"a".to_vec()]);
    assert_eq!(first.resume_key, Some(b"a\0".to_vec()));
    scenario.engine.commit(batch, false).unwrap();
    stats.add(&delta);

    // Collecting only the listed keys (what a replica does under its latch
    // after finding them without one) removes the same versions.
    let mut scratch = scenario.engine.batch();
    let found = gc_span_bounded(
        &mut scratch,
        b"a\0",
        b"z",
        t(25),
        &mut MvccStats::default(),
        usize::MAX,
    )
    .unwrap();
    assert_eq!(found.keys, vec![b"c".to_vec()]);
    assert_eq!(found.resume_key, None);
    let mut batch = scenario.engine.batch();
    let mut delta = MvccStats::default();
    let removed: usize = found
        .keys
        .iter()
        .map(|k| gc_key(&mut batch, k, t(25), &mut delta).unwrap())
        .sum();
    assert_eq!(removed, found.removed);
    scenario.engine.commit(batch, false).unwrap();
    stats.add(&delta);

    assert_eq!(compute_stats(&scenario.engine, b"", b"z").unwrap(), stats);
    assert_eq!(
        stats.version_count, 5,
        "a@20, b@10, c@20, d@30, d@40 remain"
    );
    let again = gc_span(
        &mut scenario.engine.batch(),
        b"",
        b"z",
        t(25),
        &mut MvccStats::default(),
    )
    .unwrap();
    assert_eq!(again, 0, "nothing left below the threshold");
}

// ---------------------------------------------------------------------------
// Property test: the engine against a model of committed versions and intents.

#[derive(Debug, Clone)]
enum Op {
    Put {
        key: u8,
        ts: u64,
        value: Option<u8>,
    },
    TxnPut {
        txn: u8,
        key: u8,
        value: Option<u8>,
    },
    Resolve {
        txn: u8,
        commit: bool,
        bump: u64,
    },
    /// GC in passes of at most `budget` bytes each (`usize::MAX`: one).
    Gc {
        threshold: u64,
        budget: usize,
    },
    Get {
        key: u8,
        ts: u64,
        unc: u64,
        txn: Option<u8>,
    },
    Scan {
        ts: u64,
        limit: usize,
        reverse: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0u8..6;
    let ts = 1u64..60;
    prop_oneof![
        4 => (key.clone(), ts.clone(), proptest::option::weighted(0.8, any::<u8>()))
            .prop_map(|(key, ts, value)| Op::Put { key, ts, value }),
        3 => (0u8..3, key.clone(), proptest::option::weighted(0.8, any::<u8>()))
            .prop_map(|(txn, key, value)| Op::TxnPut { txn, key, value }),
        2 => (0u8..3, any::<bool>(), 0u64..5).prop_map(|(txn, commit, bump)| Op::Resolve { txn, commit, bump }),
        1 => (1u64..60, prop_oneof![Just(usize::MAX), 1usize..120])
            .prop_map(|(threshold, budget)| Op::Gc { threshold, budget }),
        4 => (key, ts.clone(), 0u64..10, proptest::option::of(0u8..3))
            .prop_map(|(key, ts, unc, txn)| Op::Get { key, ts, unc, txn }),
        2 => (ts, 0usize..4, any::<bool>()).prop_map(|(ts, limit, reverse)| Op::Scan { ts, limit, reverse }),
    ]
}

/// What the model expects a read of one key to return.
#[derive(Debug, PartialEq)]
enum Expect {
    Value(Option<(Vec<u8>, Timestamp)>),
    Conflict,
    Uncertain,
}

#[derive(Default)]
struct Model {
    /// Committed versions per key: timestamp -> value (None: tombstone).
    versions: BTreeMap<Vec<u8>, BTreeMap<Timestamp, Option<Vec<u8>>>>,
    /// Intents per key: (txn index, value).
    intents: BTreeMap<Vec<u8>, (u8, Option<Vec<u8>>)>,
    /// Reads below this are not checked: GC may have removed what they saw.
    gc_threshold: Timestamp,
}

impl Model {
    /// The same rule as [`gc_key`]: keep the newest version at or below the
    /// threshold unless it is a tombstone, drop everything older.
    fn gc(&mut self, threshold: Timestamp) {
        self.gc_threshold = self.gc_threshold.max(threshold);
        for versions in self.versions.values_mut() {
            let Some((&newest_below, value)) = versions.range(..=threshold).next_back() else {
                continue;
            };
            let keep = value.is_some();
            versions.retain(|ts, _| *ts > newest_below || (keep && *ts == newest_below));
        }
        self.versions.retain(|_, v| !v.is_empty());
    }

    fn read(
        &self,
        key: &[u8],
        ts: Timestamp,
        limit: Timestamp,
        txn: Option<(u8, Timestamp)>,
    ) -> Expect {
        if let Some((owner, value)) = self.intents.get(key) {
            match txn {
                Some((me, my_ts)) if me == *owner => {
                    return Expect::Value(value.clone().map(|v| (v, my_ts)));
                }
                _ => {
                    let intent_ts = TXN_TS[*owner as usize];
                    if intent_ts <= limit {
                        return Expect::Conflict;
                    }
                }
            }
        }
        let Some(versions) = self.versions.get(key) else {
            return Expect::Value(None);
        };
        if limit > ts && versions.range(ts.next()..=limit).next().is_some() {
            return Expect::Uncertain;
        }
        Expect::Value(
            versions
                .range(..=ts)
                .next_back()
                .and_then(|(t, v)| v.clone().map(|v| (v, *t))),
        )
    }
}

/// Each of the three model transactions writes at a fixed timestamp.
const TXN_TS: [Timestamp; 3] = [
    Timestamp::new(20, 0),
    Timestamp::new(35, 0),
    Timestamp::new(50, 0),
];

fn model_txn(i: u8) -> TxnMeta {
    let mut meta = TxnMeta::new(vec![i], TXN_TS[i as usize]);
    meta.id = TxnId(1000 + i as u128);
    meta
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn engine_matches_model(ops in proptest::collection::vec(op(), 1..80)) {
        let scenario = Scenario::new();
        let engine = &scenario.engine;
        let mut model = Model::default();
        let mut stats = MvccStats::default();
        let t = |w: u64| Timestamp::new(w, 0);
        for op in ops {
            match op {
                Op::Put { key, ts, value } => {
                    let key = vec![b'a' + key];
                    let value = value.map(|v| vec![v]);
                    let mut batch = engine.batch();
                    let mut delta = MvccStats::default();
                    let result = mvcc_put(&mut batch, &key, t(ts), None, value.as_deref(), &mut delta);
                    let newest = model.versions.get(&key).and_then(|v| v.keys().next_back().copied());
                    match result {
                        Ok(_) => {
                            prop_assert!(!model.intents.contains_key(&key));
                            prop_assert!(newest.is_none_or(|n| n < t(ts)));
                            model.versions.entry(key).or_default().insert(t(ts), value);
                            engine.commit(batch, false).unwrap();
                            stats.add(&delta);
                        }
                        Err(StorageError::WriteIntent { .. }) => prop_assert!(model.intents.contains_key(&key)),
                        Err(StorageError::WriteTooOld { existing, .. }) => prop_assert_eq!(Some(existing), newest),
                        Err(e) => prop_assert!(false, "unexpected {e}"),
                    }
                }
                Op::TxnPut { txn, key, value } => {
                    let key = vec![b'a' + key];
                    let value = value.map(|v| vec![v]);
                    let meta = model_txn(txn);
                    let mut batch = engine.batch();
                    let mut delta = MvccStats::default();
                    let result = mvcc_put(&mut batch, &key, meta.write_timestamp, Some(&meta), value.as_deref(), &mut delta);
                    let newest = model.versions.get(&key).and_then(|v| v.keys().next_back().copied());
                    match result {
                        Ok(_) => {
                            prop_assert!(model.intents.get(&key).is_none_or(|(o, _)| *o == txn));
                            model.intents.insert(key, (txn, value));
                            engine.commit(batch, false).unwrap();
                            stats.add(&delta);
                        }
                        Err(StorageError::WriteIntent { .. }) => {
                            prop_assert!(model.intents.get(&key).is_some_and(|(o, _)| *o != txn))
                        }
                        Err(StorageError::WriteTooOld { existing, .. }) => {
                            prop_assert_eq!(Some(existing), newest);
                            prop_assert!(existing >= meta.write_timestamp);
                        }
                        Err(e) => prop_assert!(false, "unexpected {e}"),
                    }
                }
                Op::Resolve { txn, commit, bump } => {
                    let meta = model_txn(txn);
                    let commit_ts = Timestamp::new(meta.write_timestamp.wall_nanos + bump, 0);
                    let resolution = IntentResolution {
                        txn_id: meta.id,
                        epoch: 0,
                        status: if commit { ResolutionStatus::Committed } else { ResolutionStatus::Aborted },
                        timestamp: commit_ts,
                        ignored_seqs: Vec::new(),
                    };
                    let mut batch = engine.batch();
                    let mut delta = MvccStats::default();
                    resolve_intent_span(&mut batch, b"", b"z", &resolution, 0, &mut delta).unwrap();
                    engine.commit(batch, false).unwrap();
                    stats.add(&delta);
                    let mine: Vec<_> = model.intents.iter().filter(|(_, (o, _))| *o == txn).map(|(k, (_, v))| (k.clone(), v.clone())).collect();
                    for (key, value) in mine {
                        model.intents.remove(&key);
                        if commit {
                            model.versions.entry(key).or_default().insert(commit_ts, value);
                        }
                    }
                }
                Op::Gc { threshold, budget } => {
                    // Each bounded pass commits on its own, as the replica's
                    // GC commands do; together they collect what one would.
                    let mut from = Vec::new();
                    loop {
                        let mut batch = engine.batch();
                        let mut delta = MvccStats::default();
                        let progress = gc_span_bounded(&mut batch, &from, b"z", t(threshold), &mut delta, budget).unwrap();
                        engine.commit(batch, false).unwrap();
                        stats.add(&delta);
                        match progress.resume_key {
                            Some(next) => {
                                prop_assert!(next > from, "a pass must make progress");
                                from = next;
                            }
                            None => break,
                        }
                    }
                    model.gc(t(threshold));
                }
                Op::Get { key, ts, unc, txn } => {
                    let key = vec![b'a' + key];
                    let meta = txn.map(model_txn);
                    let opts = ReadOptions { txn: meta.as_ref(), uncertainty_limit: Some(t(ts + unc)) };
                    if t(ts) < model.gc_threshold {
                        continue;
                    }
                    let got = match mvcc_get(engine, &key, t(ts), &opts) {
                        Ok(v) => Expect::Value(v.map(|v| (v.value, v.timestamp))),
                        Err(StorageError::WriteIntent { .. }) => Expect::Conflict,
                        Err(StorageError::ReadWithinUncertainty { .. }) => Expect::Uncertain,
                        Err(e) => return Err(TestCaseError::fail(format!("unexpected {e}"))),
                    };
                    let expected = model.read(&key, t(ts), t(ts + unc), txn.map(|i| (i, TXN_TS[i as usize])));
                    prop_assert_eq!(got, expected, "get {:?} at {}", key, ts);
                }
                Op::Scan { ts, limit, reverse } => {
                    if t(ts) < model.gc_threshold {
                        continue;
                    }
                    let opts = ReadOptions::default();
                    let scan = ScanOptions { max_rows: limit, max_bytes: 0, reverse };
                    let mut keys: Vec<Vec<u8>> = (0..6u8).map(|k| vec![b'a' + k]).collect();
                    if reverse {
                        keys.reverse();
                    }
                    let mut expected = Vec::new();
                    let mut conflict = false;
                    for key in &keys {
                        match model.read(key, t(ts), t(ts), None) {
                            Expect::Value(Some((v, vt))) => expected.push((key.clone(), v, vt)),
                            Expect::Conflict => conflict = true,
                            _ => {}
                        }
                        if limit > 0 && expected.len() == limit {
                            break;
                        }
                    }
                    match mvcc_scan(engine, b"a", b"z", t(ts), &opts, scan) {
                        Ok(result) => {
                            prop_assert!(!conflict);
                            let got: Vec<_> = result.rows.into_iter().map(|(k, v)| (k, v.value, v.timestamp)).collect();
                            prop_assert_eq!(got, expected);
                        }
                        Err(StorageError::WriteIntent { .. }) => prop_assert!(conflict),
                        Err(e) => prop_assert!(false, "unexpected {e}"),
                    }
                }
            }
            prop_assert_eq!(stats, compute_stats(engine, b"", b"z").unwrap());
        }
    }
}
