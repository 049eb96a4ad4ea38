//! MVCC against raw RocksDB, same operations, same run.
//!
//! Both sides use one RocksDB each, opened with the same block cache, bloom
//! filter and compression settings, preloaded with the same `KEYS` keys of
//! `VALUE_BYTES` bytes. Writes are not synced on either side (the syscall
//! would dominate both). Groups:
//!
//! - `put`: a new version of an existing key (MVCC reads the key's newest
//!   record first to check for intents and newer versions) vs a blind put,
//!   and vs a get followed by a put (the least an MVCC write must do).
//! - `get`: a point read at the present timestamp vs a point get.
//! - `scan100`: 100 consecutive rows vs 100 iterator steps.
//!
//! Run: `cargo bench -p meridian-storage --bench mvcc`. The ratio of the
//! two medians is what `docs/benchmarks.md` records.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use meridian_hlc::Timestamp;
use meridian_storage::mvcc::{mvcc_get, mvcc_put, mvcc_scan, ReadOptions, ScanOptions};
use meridian_storage::{Engine, EngineOptions, MvccStats};
use rocksdb::{BlockBasedOptions, Cache, DBCompressionType, Options, WriteOptions, DB};

const KEYS: u64 = 100_000;
const VALUE_BYTES: usize = 256;

fn key(i: u64) -> Vec<u8> {
    format!("user/{i:010}").into_bytes()
}

struct Fixture {
    _dirs: (tempfile::TempDir, tempfile::TempDir),
    engine: Engine,
    raw: DB,
    clock: AtomicU64,
}

fn raw_db(path: &std::path::Path) -> DB {
    let cache = Cache::new_lru_cache(EngineOptions::default().block_cache_bytes);
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(&cache);
    table.set_format_version(6);
    table.set_bloom_filter(10.0, false);
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.set_max_background_jobs(2);
    opts.set_compression_type(DBCompressionType::Lz4);
    opts.set_block_based_table_factory(&table);
    DB::open(&opts, path).unwrap()
}

fn fixture() -> Fixture {
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let engine = Engine::open(dirs.0.path(), &EngineOptions::default()).unwrap();
    let raw = raw_db(dirs.1.path());
    let value = vec![7u8; VALUE_BYTES];
    let mut stats = MvccStats::default();
    for chunk in (0..KEYS).collect::<Vec<_>>().chunks(1000) {
        let mut batch = engine.batch();
        let mut raw_batch = rocksdb::WriteBatch::default();
        for &i in chunk {
            mvcc_put(
                &mut batch,
                &key(i),
                Timestamp::new(1, 0),
                None,
                Some(&value),
                &mut stats,
            )
            .unwrap();
            raw_batch.put(key(i), &value);
        }
        engine.commit(batch, false).unwrap();
        raw.write(raw_batch).unwrap();
    }
    engine.flush().unwrap();
    raw.flush().unwrap();
    Fixture {
        _dirs: dirs,
        engine,
        raw,
        clock: AtomicU64::new(10),
    }
}

fn random_index(state: &mut u64) -> u64 {
    // xorshift: cheap, deterministic, no allocation.
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state % KEYS
}

fn benches(c: &mut Criterion) {
    let f = fixture();
    let value = vec![9u8; VALUE_BYTES];
    let no_sync = {
        let mut w = WriteOptions::default();
        w.set_sync(false);
        w
    };

    let mut group = c.benchmark_group("put");
    group.throughput(Throughput::Elements(1));
    let mut rng = 0x9e3779b97f4a7c15u64;
    group.bench_function("mvcc", |b| {
        b.iter(|| {
            let i = random_index(&mut rng);
            let ts = Timestamp::new(f.clock.fetch_add(1, Ordering::Relaxed), 0);
            let mut batch = f.engine.batch();
            let mut stats = MvccStats::default();
            mvcc_put(&mut batch, &key(i), ts, None, Some(&value), &mut stats).unwrap();
            f.engine.commit(batch, false).unwrap();
        })
    });
    group.bench_function("rocksdb", |b| {
        b.iter(|| {
            let i = random_index(&mut rng);
            let mut batch = rocksdb::WriteBatch::default();
            batch.put(key(i), &value);
            f.raw.write_opt(batch, &no_sync).unwrap();
        })
    });
    // What an MVCC write must do at least: look at the key, then write it.
    group.bench_function("rocksdb_get_then_put", |b| {
        b.iter(|| {
            let i = random_index(&mut rng);
            black_box(f.raw.get(key(i)).unwrap());
            let mut batch = rocksdb::WriteBatch::default();
            batch.put(key(i), &value);
            f.raw.write_opt(batch, &no_sync).unwrap();
        })
    });
    group.finish();

    let mut group = c.benchmark_group("get");
    group.throughput(Throughput::Elements(1));
    let opts = ReadOptions::default();
    group.bench_function("mvcc", |b| {
        b.iter(|| {
            let i = random_index(&mut rng);
            let ts = Timestamp::new(f.clock.load(Ordering::Relaxed), 0);
            black_box(mvcc_get(&f.engine, &key(i), ts, &opts).unwrap().unwrap());
        })
    });
    group.bench_function("rocksdb", |b| {
        b.iter(|| {
            let i = random_index(&mut rng);
            black_box(f.raw.get(key(i)).unwrap().unwrap());
        })
    });
    group.finish();

    let mut group = c.benchmark_group("scan100");
    group.throughput(Throughput::Elements(100));
    group.bench_function("mvcc", |b| {
        b.iter_batched(
            || random_index(&mut rng).min(KEYS - 101),
            |i| {
                let ts = Timestamp::new(f.clock.load(Ordering::Relaxed), 0);
                let scan = ScanOptions {
                    max_rows: 100,
                    ..ScanOptions::default()
                };
                let rows = mvcc_scan(&f.engine, &key(i), &key(KEYS), ts, &opts, scan).unwrap();
                assert_eq!(rows.rows.len(), 100);
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("rocksdb", |b| {
        b.iter_batched(
            || random_index(&mut rng).min(KEYS - 101),
            |i| {
                let mut iter = f.raw.raw_iterator();
                iter.seek(key(i));
                let mut rows = Vec::with_capacity(100);
                while iter.valid() && rows.len() < 100 {
                    rows.push((iter.key().unwrap().to_vec(), iter.value().unwrap().to_vec()));
                    iter.next();
                }
                assert_eq!(rows.len(), 100);
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(mvcc, benches);
criterion_main!(mvcc);
