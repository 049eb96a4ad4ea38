//! Bank transfers in transactions under faults (issue 10's "bank in-process
//! under faults", issue 14's bank workload): clients move money between
//! six accounts on two ranges with `run_txn`, others sum every account in
//! read-only transactions, while a seeded nemesis kills and restarts nodes
//! (often the leader), isolates them and skews their clocks within
//! `max_offset`. Every committed sum must be exactly the starting total,
//! and so must the accounts once the faults are over. A failure names the
//! seed; replay it with `MERIDIAN_NEMESIS_SEED=<seed>`.

use std::time::Duration;

use meridian_testkit::nemesis::{self, bank, failure_report, FaultKind, Stage, Stop};

/// Each schedule's length; with the cluster's start and the checks, a
/// seed takes about 15 s.
const DURATION: Duration = Duration::from_secs(10);
const SEEDS: [u64; 3] = [101, 102, 103];
const BINARY: &str = "nemesis_bank";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transfers_keep_the_total_and_every_read_only_sum_is_exact_under_faults() {
    for seed in nemesis::seeds(&SEEDS) {
        let mut stage = Stage::start(seed, &FaultKind::ALL)
            .await
            .unwrap_or_else(|e| panic!("seed {seed}: the cluster did not start: {e}"));
        let config = bank::BankConfig {
            accounts: ["b0", "b1", "b2", "n0", "n1", "n2"]
                .iter()
                .map(|a| a.as_bytes().to_vec())
                .collect(),
            initial: 100,
            transfer_clients: 4,
            reader_clients: 2,
            txn_timeout: Duration::from_secs(15),
        };
        let ds = stage.dist_sender();
        let clocks = stage.clocks();
        bank::setup(&ds, &clocks[0], &config)
            .await
            .unwrap_or_else(|e| panic!("seed {seed}: the accounts were not set up: {e}"));

        let history = bank::BankHistory::new();
        let origin = history.start();
        let stop = Stop::new();
        let workload = bank::run(
            ds.clone(),
            clocks.clone(),
            history.clone(),
            seed,
            stop.clone(),
            config.clone(),
        );
        let (log, ()) = stage.run(DURATION, &stop, workload).await;
        let log = log.unwrap_or_else(|e| panic!("{e}"));
        let report = |violation: &str| failure_report(seed, BINARY, violation, Some(&log), origin);
        if let Err(e) = stage.wait_until_writable(Duration::from_secs(30)).await {
            panic!("{}", report(&e));
        }
        // Whoever leads each range, its replicas must agree.
        if let Err(e) = stage
            .cluster
            .check_replica_consistency(Duration::from_secs(30))
            .await
        {
            panic!("{}", report(&e));
        }

        let balances = tokio::time::timeout(
            Duration::from_secs(60),
            bank::read_all(&stage.dist_sender(), &clocks[0], &config.accounts),
        )
        .await
        .map_err(|_| "no answer in 60 s".to_string())
        .and_then(|r| r.map_err(|e| e.to_string()))
        .unwrap_or_else(|e| panic!("{}", report(&format!("the final read failed: {e}"))));
        let entries = history.entries();
        let summary = bank::check(&entries, &config, &balances).unwrap_or_else(|v| {
            let saved = nemesis::history::save("bank", seed, &entries);
            panic!(
                "{}",
                report(&format!(
                    "{v}
{saved}"
                ))
            )
        });
        eprintln!(
            "seed {seed}: {} faults; {summary}; final balances {balances:?}",
            log.records.len()
        );
        eprint!("{}", log.render(origin));
        assert!(
            summary.transfers.ok >= 5 && summary.reads.ok >= 3,
            "{}",
            report(&format!("too little progress: {summary}"))
        );
        assert!(!log.records.is_empty(), "seed {seed}: no fault ran");
        stage.shutdown().await;
    }
}
