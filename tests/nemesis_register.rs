//! Single-key operations under faults (issue 10's linearizability test,
//! issue 14's register and set workloads): clients get, put and
//! conditionally put a few keys on two ranges through the DistSender while
//! a seeded nemesis kills and restarts nodes (often the leader), isolates
//! them and skews their clocks within `max_offset`; at the same time other
//! clients insert unique keys. Each key must be linearizable (a real
//! checker, ambiguous writes possibly applied at any time after their
//! invocation), every acknowledged insert must be there at the end and no
//! definitely failed one. A failure names the seed; replay it with
//! `MERIDIAN_NEMESIS_SEED=<seed>`.

use std::time::Duration;

use meridian_testkit::nemesis::{self, Campaign, FaultKind, Workload};

/// Each schedule's length; with the cluster's start and the checks, a
/// seed takes about 15 s.
const DURATION: Duration = Duration::from_secs(10);
const SEEDS: [u64; 3] = [1, 2, 3];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn single_key_operations_stay_linearizable_and_acknowledged_inserts_stay_under_faults() {
    let campaign = Campaign {
        workloads: vec![Workload::Register, Workload::Set],
        kinds: FaultKind::ALL.to_vec(),
        nodes: 3,
        duration: DURATION,
        short_steps: false,
        replay: nemesis::test_replay("nemesis_register"),
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
