//! Single-key operations and inserts while the ranges themselves change
//! (issue 14): on 5 nodes, a seeded nemesis splits the ranges at keys the
//! workload uses and moves their replicas to other nodes, between kills,
//! isolations, clock skews and lease transfers. Each key must stay
//! linearizable, every acknowledged insert must be there at the end and no
//! definitely failed one, and at the end every range's replicas must hold
//! the same data, whoever leads. A moved replica is filled by a snapshot,
//! so this is where a snapshot that overwrote another range's data (a
//! stale snapshot of a range split since) shows up. A failure names the seed; replay it with
//! `MERIDIAN_NEMESIS_SEED=<seed>`.

use std::time::Duration;

use meridian_testkit::nemesis::{self, Campaign, FaultKind, Workload};

const DURATION: Duration = Duration::from_secs(10);
const SEEDS: [u64; 2] = [1, 2];

/// Every fault kind, splits and moves each five times as likely as
/// another: a stale snapshot needs a move, a split and two more moves to
/// do harm.
fn kinds() -> Vec<FaultKind> {
    let mut kinds = FaultKind::ALL.to_vec();
    for _ in 0..5 {
        kinds.extend(FaultKind::TOPOLOGY);
    }
    kinds
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn operations_stay_linearizable_and_inserts_stay_while_ranges_split_and_move() {
    let campaign = Campaign {
        workloads: vec![Workload::Register, Workload::Set],
        kinds: kinds(),
        nodes: 5,
        duration: DURATION,
        short_steps: true,
        replay: nemesis::test_replay("nemesis_topology"),
    };
    for seed in nemesis::seeds(&SEEDS) {
        let report = campaign.run(seed).await.unwrap_or_else(|e| panic!("{e}"));
        eprintln!("{report}");
        eprint!("{}", report.fault_log);
        if let Some(violation) = &report.violation {
            panic!("{violation}");
        }
        assert!(
            report.splits + report.moves > 0,
            "seed {seed}: no topology change ran"
        );
    }
}
