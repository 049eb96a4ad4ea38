//! Row locks (`GetForUpdate`, kvserver's `locks`) on a real 3-node
//! cluster: a transaction that read a key with a lock writes it at its own
//! timestamp while another writer of the key waits (at the leaseholder
//! until the holder writes, then on its intent), instead of the other
//! writer landing first and making it restart; a locking read below a
//! newer version is served above it; and locks go with their
//! transaction's end.

mod common;

use common::{lock_waiters, locks_held, two_ranges, WAIT};
use meridian_kvclient::txn::{run_txn, Txn};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_writer_waits_for_a_locking_read_s_transaction_instead_of_restarting_it() {
    let cluster = two_ranges().await;
    let ds = cluster.dist_sender().clone();
    let clock = cluster.node(1).unwrap().clock.clone();
    let seed = Txn::begin(ds.clone(), clock.clone(), 1);
    seed.put(b"b", b"10").await.unwrap();
    seed.commit().await.unwrap();

    let holder = Txn::begin(ds.clone(), clock.clone(), 1);
    let read = holder.get_for_update(b"b").await.unwrap();
    assert_eq!(read.as_deref(), Some(&b"10"[..]));
    assert_eq!(locks_held(&cluster), 1);

    // Another transaction writes the key: without the lock its intent
    // would land first, above the holder's timestamp, and the holder's
    // write would then have to move up past a changed read: a restart.
    let writer = {
        let (ds, clock) = (ds.clone(), clock.clone());
        tokio::spawn(async move {
            let txn = Txn::begin(ds, clock, 1);
            txn.put(b"b", b"other").await?;
            txn.commit().await
        })
    };
    cluster
        .wait_for("the writer to wait for the lock", WAIT, || async {
            (lock_waiters(&cluster) == 1).then_some(())
        })
        .await
        .unwrap();
    let started_at = holder.meta().write_timestamp;
    holder.put(b"b", b"11").await.expect("the holder writes");
    holder.commit().await.expect("the holder commits");
    assert_eq!(
        holder.meta().write_timestamp,
        started_at,
        "the holder committed where it read"
    );
    writer
        .await
        .unwrap()
        .expect("the writer goes once the lock is released");
    assert_eq!(locks_held(&cluster), 0, "locks outlived their transactions");

    // The writer went after the holder: its value is the last.
    let check = Txn::begin(ds.clone(), clock.clone(), 1);
    assert_eq!(
        check.get(b"b").await.unwrap().as_deref(),
        Some(&b"other"[..])
    );
    check.commit().await.unwrap();
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rollback_releases_the_locks_of_a_transaction_that_wrote_nothing() {
    let cluster = two_ranges().await;
    let ds = cluster.dist_sender().clone();
    let clock = cluster.node(1).unwrap().clock.clone();
    let holder = Txn::begin(ds.clone(), clock.clone(), 1);
    holder.get_for_update(b"c").await.unwrap();
    holder.get_for_update(b"n").await.unwrap();
    assert_eq!(locks_held(&cluster), 2, "one lock on each range");
    holder.rollback().await.unwrap();
    cluster
        .wait_for("the locks to go", WAIT, || async {
            (locks_held(&cluster) == 0).then_some(())
        })
        .await
        .unwrap();
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_locking_read_below_a_newer_version_reads_it_and_moves_its_transaction_up() {
    let cluster = two_ranges().await;
    let ds = cluster.dist_sender().clone();
    let clock = cluster.node(1).unwrap().clock.clone();
    let holder = Txn::begin(ds.clone(), clock.clone(), 1);
    // A read to refresh when the transaction moves.
    assert_eq!(holder.get(b"c").await.unwrap(), None);
    let other = Txn::begin(ds.clone(), clock.clone(), 1);
    other.put(b"b", b"newer").await.unwrap();
    other.commit().await.unwrap();
    let newer_at = other.meta().write_timestamp;
    assert!(newer_at > holder.meta().write_timestamp);

    let read = holder.get_for_update(b"b").await.expect("no restart");
    assert_eq!(read.as_deref(), Some(&b"newer"[..]));
    assert!(
        holder.meta().write_timestamp > newer_at,
        "the transaction moved above the version it locked"
    );
    assert_eq!(locks_held(&cluster), 1);
    holder.put(b"b", b"mine").await.unwrap();
    holder.commit().await.unwrap();
    let check = Txn::begin(ds.clone(), clock.clone(), 1);
    assert_eq!(
        check.get(b"b").await.unwrap().as_deref(),
        Some(&b"mine"[..])
    );
    check.commit().await.unwrap();
    cluster.shutdown().await;
}

/// Thirty-two transactions increment one key at once, each reading it
/// with a lock: every one commits (the helper retries what must restart)
/// and no increment is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_writers_of_one_key_all_make_progress() {
    let cluster = two_ranges().await;
    let ds = cluster.dist_sender().clone();
    let clock = cluster.node(1).unwrap().clock.clone();
    let writers = 32;
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let (ds, clock) = (ds.clone(), clock.clone());
        tasks.push(tokio::spawn(async move {
            run_txn(&ds, &clock, |txn| async move {
                let n: i64 = match txn.get_for_update(b"hot").await? {
                    Some(v) => String::from_utf8(v).unwrap().parse().unwrap(),
                    None => 0,
                };
                txn.put(b"hot", (n + 1).to_string().as_bytes()).await
            })
            .await
        }));
    }
    for task in tasks {
        task.await.unwrap().expect("a writer gave up");
    }
    let check = Txn::begin(ds.clone(), clock.clone(), 1);
    let total = check.get(b"hot").await.unwrap().unwrap();
    assert_eq!(String::from_utf8(total).unwrap(), writers.to_string());
    check.commit().await.unwrap();
    cluster
        .wait_for("every lock released", WAIT, || async {
            (locks_held(&cluster) == 0).then_some(())
        })
        .await
        .unwrap();
    cluster.shutdown().await;
}
