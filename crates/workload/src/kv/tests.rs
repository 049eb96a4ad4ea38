use std::collections::HashMap;

use meridian_keys::encoding::decode_int_asc;
use meridian_keys::space::{table_prefix, TABLE_PREFIX};

use super::*;

fn config() -> KvConfig {
    KvConfig {
        concurrency: 4,
        duration: Duration::from_millis(200),
        read_percent: 50,
        keys: 100,
        value_bytes: 8,
        seed: 42,
    }
}

/// The row number of a key made by [`kv_key`].
fn row_of(key: &[u8]) -> u64 {
    let prefix = table_prefix(KV_TABLE_ID);
    assert!(
        key.starts_with(&prefix),
        "{key:?} lacks the kv table prefix"
    );
    let (row, used) = decode_int_asc(&key[prefix.len()..]).expect("a row number");
    assert_eq!(
        prefix.len() + used,
        key.len(),
        "nothing follows the row number"
    );
    u64::try_from(row).expect("rows are non-negative")
}

#[test]
fn kv_keys_sort_by_row_in_user_space() {
    let mut rng = SmallRng::seed_from_u64(1);
    let mut rows: Vec<u64> = vec![0, 1, 2, 127, 128, 255, 256, 65_535, 65_536, 1 << 32];
    rows.extend([u32::MAX as u64, i64::MAX as u64 - 1, i64::MAX as u64]);
    rows.extend((0..10).map(|_| rng.random_range(0..1000)));
    rows.extend((0..10).map(|_| rng.random_range(0..=i64::MAX as u64)));
    for &i in &rows {
        let key = kv_key(i);
        assert!(
            key[0] >= TABLE_PREFIX,
            "row {i} is outside the user key space"
        );
        assert_eq!(row_of(&key), i);
        for &j in &rows {
            assert_eq!(key.cmp(&kv_key(j)), i.cmp(&j), "rows {i} and {j}");
        }
    }
}

#[test]
fn split_points_cut_evenly() {
    assert!(split_points(1000, 0).is_empty());
    assert!(split_points(1000, 1).is_empty());
    assert_eq!(
        split_points(1000, 4),
        vec![kv_key(250), kv_key(500), kv_key(750)]
    );

    for (keys, ranges) in [(10, 3), (1000, 7), (7, 7), (u64::MAX / 2, 16), (1 << 63, 5)] {
        let points = split_points(keys, ranges);
        assert_eq!(points.len(), ranges - 1, "{keys} keys in {ranges} ranges");
        assert!(points.windows(2).all(|w| w[0] < w[1]), "ascending");
        let mut bounds = vec![0];
        bounds.extend(points.iter().map(|p| row_of(p)));
        bounds.push(keys);
        let sizes: Vec<u64> = bounds.windows(2).map(|w| w[1] - w[0]).collect();
        let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
        assert!(
            max - min <= 1,
            "{keys} keys in {ranges} ranges: sizes {sizes:?}"
        );
    }
}

#[test]
fn split_points_never_repeat_when_ranges_exceed_keys() {
    assert_eq!(split_points(3, 10), vec![kv_key(1), kv_key(2)]);
    assert!(split_points(1, 10).is_empty());
}

#[test]
fn config_validation() {
    assert_eq!(config().validate(), Ok(()));
    assert_eq!(
        KvConfig {
            read_percent: 100,
            keys: MAX_KEYS,
            ..config()
        }
        .validate(),
        Ok(())
    );

    let cases = [
        (
            KvConfig {
                concurrency: 0,
                ..config()
            },
            "concurrency must be at least 1",
        ),
        (
            KvConfig {
                read_percent: 101,
                ..config()
            },
            "read percent must be between 0 and 100, got 101",
        ),
        (
            KvConfig {
                keys: 0,
                ..config()
            },
            "key space must hold at least 1 key",
        ),
        (
            KvConfig {
                keys: MAX_KEYS + 1,
                ..config()
            },
            "key space of 9223372036854775809 keys",
        ),
        (
            KvConfig {
                duration: Duration::ZERO,
                ..config()
            },
            "duration must be greater than zero",
        ),
        (
            KvConfig {
                value_bytes: meridian_keys::MAX_VALUE_BYTES + 1,
                ..config()
            },
            "value size of 16777217 bytes exceeds the maximum",
        ),
    ];
    for (config, message) in cases {
        let err = config.validate().expect_err(message);
        assert!(
            err.to_string().contains(message),
            "{err} should say {message}"
        );
    }
}

#[test]
fn op_picker_is_seeded_and_keeps_proportions() {
    let config = KvConfig {
        read_percent: 30,
        keys: 10,
        value_bytes: 5,
        ..config()
    };
    let ops = |worker| {
        let mut picker = OpPicker::new(&config, worker);
        (0..10_000).map(|_| picker.next_op()).collect::<Vec<_>>()
    };
    let first = ops(0);
    assert_eq!(first, ops(0), "same seed, same ops");
    assert_ne!(first, ops(1), "workers draw different ops");

    let reads = first.iter().filter(|op| op.kind() == OpKind::Read).count();
    assert!(
        (2_800..=3_200).contains(&reads),
        "{reads} reads of 10000 at 30%"
    );
    let mut rows_seen = [0u32; 10];
    for op in &first {
        let (Op::Read { key } | Op::Write { key, .. }) = op;
        rows_seen[row_of(key) as usize] += 1;
        if let Op::Write { value, .. } = op {
            assert_eq!(value.len(), 5);
        }
    }
    assert!(
        rows_seen.iter().all(|&n| (800..=1200).contains(&n)),
        "uniform rows: {rows_seen:?}"
    );
}

#[test]
fn reporter_splits_interval_from_cumulative() {
    let shards: Vec<_> = (0..2).map(|_| Arc::new(Mutex::new(Stats::new()))).collect();
    let start = Instant::now();
    let mut reporter = Reporter::new(start);
    for _ in 0..3 {
        lock(&shards[0]).record(OpKind::Read, Duration::from_millis(1), Ok(()));
    }
    lock(&shards[1]).record(OpKind::Write, Duration::from_millis(4), Ok(()));
    lock(&shards[1]).record(OpKind::Write, Duration::from_millis(4), Err("nope".into()));

    let line = reporter.tick(&shards, start + Duration::from_secs(2));
    assert_eq!(line.elapsed, Duration::from_secs(2));
    assert_eq!((line.cumulative_ops, line.errors), (4, 1));
    assert_eq!(line.interval_ops_per_sec, 2.0);
    assert!(
        (line.p50_ms - 1.0).abs() < 0.01 && (line.max_ms - 4.0).abs() < 0.01,
        "{line:?}"
    );

    let line = reporter.tick(&shards, start + Duration::from_secs(3));
    assert_eq!(
        (line.cumulative_ops, line.errors),
        (4, 1),
        "cumulative figures carry over"
    );
    assert_eq!(
        (line.interval_ops_per_sec, line.p50_ms, line.max_ms),
        (0.0, 0.0, 0.0)
    );

    lock(&shards[0]).record(OpKind::Read, Duration::from_millis(1), Ok(()));
    let summary = reporter.finish(&shards, &config(), Duration::from_secs(4));
    assert_eq!(
        (summary.read.ops, summary.write.ops, summary.write.errors),
        (4, 1, 1)
    );
    assert_eq!(summary.total.ops_per_sec, 1.25);
    assert_eq!(summary.first_errors, vec!["nope".to_string()]);
}

/// What a [`RecordingTarget`] saw of one key.
#[derive(Debug, Default)]
struct KeyCalls {
    gets: u64,
    puts: u64,
}

/// An in-memory target that records every call; it can fail every put.
#[derive(Clone, Default)]
struct RecordingTarget {
    calls: Arc<Mutex<HashMap<Vec<u8>, KeyCalls>>>,
    values: Arc<Mutex<HashMap<Vec<u8>, Vec<u8>>>>,
    /// When set, every put fails with this message plus the put's number
    /// modulo 10, so that failures have ten distinct messages.
    fail_puts: Option<&'static str>,
}

impl RecordingTarget {
    fn totals(&self) -> (u64, u64) {
        let calls = self.calls.lock().unwrap();
        (
            calls.values().map(|c| c.gets).sum(),
            calls.values().map(|c| c.puts).sum(),
        )
    }
}

impl KvTarget for RecordingTarget {
    async fn put(&self, key: Vec<u8>, value: Vec<u8>) -> Result<(), String> {
        let puts = {
            let mut calls = self.calls.lock().unwrap();
            let entry = calls.entry(key.clone()).or_default();
            entry.puts += 1;
            entry.puts
        };
        if let Some(message) = self.fail_puts {
            return Err(format!("{message} {}", puts % 10));
        }
        self.values.lock().unwrap().insert(key, value);
        Ok(())
    }

    async fn get(&self, key: Vec<u8>) -> Result<Option<Vec<u8>>, String> {
        self.calls
            .lock()
            .unwrap()
            .entry(key.clone())
            .or_default()
            .gets += 1;
        Ok(self.values.lock().unwrap().get(&key).cloned())
    }
}

/// Runs `config` against `target`, failing the test if the run does not
/// stop well after its deadline.
async fn run_bounded(target: RecordingTarget, config: &KvConfig) -> (KvSummary, Vec<ProgressLine>) {
    let mut lines = Vec::new();
    let run = run_with_interval(target, config, Duration::from_millis(50), |line| {
        lines.push(line.clone())
    });
    let summary = tokio::time::timeout(config.duration + Duration::from_secs(10), run)
        .await
        .expect("the run stops after its deadline")
        .expect("a valid config");
    (summary, lines)
}

/// Every call the target saw is in the summary, and nothing else.
fn assert_accounts_for(target: &RecordingTarget, summary: &KvSummary) {
    let (gets, puts) = target.totals();
    assert_eq!(summary.read.ops + summary.read.errors, gets, "{summary:?}");
    assert_eq!(
        summary.write.ops + summary.write.errors,
        puts,
        "{summary:?}"
    );
    assert_eq!(summary.total.ops, summary.read.ops + summary.write.ops);
    assert_eq!(
        summary.total.errors,
        summary.read.errors + summary.write.errors
    );
}

#[tokio::test]
async fn run_with_only_writes() {
    let target = RecordingTarget::default();
    let config = KvConfig {
        read_percent: 0,
        ..config()
    };
    let (summary, _) = run_bounded(target.clone(), &config).await;

    let (gets, puts) = target.totals();
    assert_eq!(gets, 0);
    assert!(puts > 0);
    assert_accounts_for(&target, &summary);
    assert_eq!(summary.total.errors, 0);
    assert!(summary.first_errors.is_empty());
    assert!(
        summary.elapsed_secs >= 0.2,
        "ran until the deadline: {}",
        summary.elapsed_secs
    );

    let calls = target.calls.lock().unwrap();
    assert!(
        calls.keys().all(|key| row_of(key) < config.keys),
        "keys stay in the key space"
    );
    let values = target.values.lock().unwrap();
    assert!(values.values().all(|v| v.len() == config.value_bytes));
}

#[tokio::test]
async fn run_with_only_reads() {
    let target = RecordingTarget::default();
    let config = KvConfig {
        read_percent: 100,
        ..config()
    };
    let (summary, _) = run_bounded(target.clone(), &config).await;

    let (gets, puts) = target.totals();
    assert!(gets > 0);
    assert_eq!(puts, 0);
    assert_accounts_for(&target, &summary);
    assert_eq!(summary.write.ops, 0);
    let text = summary.render_text();
    assert!(
        text.contains("  read\n") && !text.contains("  write\n"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_counts_target_errors_and_keeps_going() {
    let target = RecordingTarget {
        fail_puts: Some("injected put failure"),
        ..Default::default()
    };
    let config = KvConfig {
        concurrency: 8,
        keys: 1000,
        ..config()
    };
    let (summary, _) = run_bounded(target.clone(), &config).await;

    assert_accounts_for(&target, &summary);
    assert!(summary.read.ops > 0, "workers go on after errors");
    assert_eq!(summary.read.errors, 0);
    assert_eq!(summary.write.ops, 0, "failed puts are not latencies");
    assert!(summary.write.errors > 0);
    assert_eq!(summary.first_errors.len(), crate::stats::MAX_FIRST_ERRORS);
    for message in &summary.first_errors {
        assert!(message.starts_with("injected put failure "), "{message}");
    }
    let text = summary.render_text();
    assert!(
        text.contains("first errors:\n  injected put failure"),
        "{text}"
    );
}

#[tokio::test]
async fn run_reports_progress() {
    let target = RecordingTarget::default();
    let (summary, lines) = run_bounded(target.clone(), &config()).await;

    // Several lines, not one at the end: workers that never yielded would
    // starve the reporter on this one-thread runtime until the deadline.
    assert!(
        lines.len() >= 2,
        "a 200 ms run reports every 50 ms: {lines:?}"
    );
    for pair in lines.windows(2) {
        assert!(pair[0].elapsed < pair[1].elapsed);
        assert!(pair[0].cumulative_ops <= pair[1].cumulative_ops);
    }
    let last = lines.last().unwrap();
    assert!(last.cumulative_ops <= summary.total.ops);
    assert!(
        lines.iter().any(|line| line.interval_ops_per_sec > 0.0),
        "{lines:?}"
    );
    assert_eq!(lines.iter().map(|line| line.errors).max(), Some(0));
}

#[tokio::test]
async fn run_refuses_invalid_config() {
    let target = RecordingTarget::default();
    let config = KvConfig {
        concurrency: 0,
        ..config()
    };
    let result = run(target.clone(), &config, |_| {
        panic!("no progress on a refused run")
    })
    .await;
    assert_eq!(result.unwrap_err(), WorkloadError::ZeroConcurrency);
    assert_eq!(target.totals(), (0, 0));
}
