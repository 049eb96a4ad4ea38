//! Durability: what a synced commit acknowledged survives a SIGKILL of the
//! process, and the engine reopens with data, raft log and range-local
//! state intact.
//!
//! The writer runs in a child process (this same test binary, re-executed
//! with `MERIDIAN_CRASH_DIR` set) that prints how many batches it has
//! committed with `sync = true` and keeps writing until the parent kills it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use meridian_hlc::Timestamp;
use meridian_keys::RangeLocalKind;
use meridian_storage::mvcc::{mvcc_get, mvcc_put, ReadOptions};
use meridian_storage::raft_log::RaftStateKind;
use meridian_storage::{Engine, EngineOptions, MvccStats};

const CRASH_DIR_ENV: &str = "MERIDIAN_CRASH_DIR";

fn key(i: u64) -> Vec<u8> {
    format!("key-{i:08}").into_bytes()
}

/// Writes one batch per iteration, forever: an MVCC version, a raft log
/// entry and the applied index, as a replica applying a command would.
fn write_until_killed(dir: &str) -> ! {
    let engine = Engine::open(dir, &EngineOptions::default()).unwrap();
    let mut stats = MvccStats::default();
    for i in 1.. {
        let mut batch = engine.batch();
        mvcc_put(
            &mut batch,
            &key(i),
            Timestamp::new(i, 0),
            None,
            Some(&i.to_be_bytes()),
            &mut stats,
        )
        .unwrap();
        batch.put_log_entry(1, i, &i.to_be_bytes());
        batch.put_raft_state(1, RaftStateKind::Committed, &i.to_be_bytes());
        batch.put_range_local(1, RangeLocalKind::AppliedState, &i.to_be_bytes());
        engine.commit(batch, true).unwrap();
        // Acknowledge only after the synced commit returned.
        println!("{i}");
    }
    unreachable!()
}

/// Not a test on its own: the body of the child process of
/// `synced_writes_survive_sigkill`. Without the environment variable it has
/// nothing to do.
#[test]
fn crash_child_writer() {
    if let Ok(dir) = std::env::var(CRASH_DIR_ENV) {
        write_until_killed(&dir);
    }
}

#[test]
fn synced_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crash_child_writer",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_DIR_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acknowledged = 0u64;
    while acknowledged < 200 {
        let line = lines.next().expect("child exited early").unwrap();
        if let Ok(i) = line.trim().parse() {
            acknowledged = i;
        }
    }
    child.kill().unwrap(); // SIGKILL: no destructors, no flush.
    child.wait().unwrap();

    let engine = Engine::open(dir.path(), &EngineOptions::default()).unwrap();
    let opts = ReadOptions::default();
    for i in 1..=acknowledged {
        let got = mvcc_get(&engine, &key(i), Timestamp::MAX, &opts).unwrap();
        assert_eq!(
            got.map(|v| v.value),
            Some(i.to_be_bytes().to_vec()),
            "key {i} lost"
        );
    }
    let (first, last) = engine.log_bounds(1).unwrap().expect("log survived");
    assert_eq!(first, 1);
    assert!(last >= acknowledged);
    let applied = engine
        .range_local(1, RangeLocalKind::AppliedState)
        .unwrap()
        .unwrap();
    let applied = u64::from_be_bytes(applied.try_into().unwrap());
    assert!(applied >= acknowledged);
    // Data and applied index were written in one batch: whatever survived
    // beyond the acknowledged prefix survived together.
    let beyond = mvcc_get(&engine, &key(applied), Timestamp::MAX, &opts).unwrap();
    assert!(beyond.is_some(), "applied index {applied} without its data");
    assert!(mvcc_get(&engine, &key(applied + 1), Timestamp::MAX, &opts)
        .unwrap()
        .is_none());
}
