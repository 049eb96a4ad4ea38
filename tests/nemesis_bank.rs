//! Bank transfers in transactions under faults (issue 10's "bank in-process
//! under faults", issue 14's bank workload): clients move money between
//! six accounts on two ranges with `run_txn`, others sum every account in
//! read-only transactions, while a seeded nemesis kills and restarts nodes
//! (often the leader), isolates them and skews their clocks within
//! `max_offset`. Every committed sum must be exactly the starting total,
//! and so must the accounts once the faults are over. A failure names the
//! seed; replay it with `MERIDIAN_NEMESIS_SEED=<seed>`.

use std::time::Duration;

use meridian_testkit::nemesis::{self, Campaign, FaultKind, Workload};

/// Each schedule's length; with the cluster's start and the checks, a
/// seed takes about 15 s.
const DURATION: Duration = Duration::from_secs(10);
const SEEDS: [u64; 3] = [101, 102, 103];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transfers_keep_the_total_and_every_read_only_sum_is_exact_under_faults() {
    let campaign = Campaign {
        workloads: vec![Workload::Bank],
        kinds: FaultKind::ALL.to_vec(),
        nodes: 3,
        duration: DURATION,
        short_steps: false,
        replay: nemesis::test_replay("nemesis_bank"),
    };
    for seed in nemesis::seeds(&SEEDS) {
        let report = campaign.run(seed).await.unwrap_or_else(|e| panic!("{e}"));
        eprintln!("{report}");
        eprint!("{}", report.fault_log);
        if let Some(violation) = &report.violation {
            panic!("{violation}");
        }
    }
}
