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

use meridian_testkit::nemesis::{
    self, failure_report, history, register, set, FaultKind, Nemesis, NemesisConfig, Stage, Stop,
};

const DURATION: Duration = Duration::from_secs(10);
const SEEDS: [u64; 2] = [1, 2];
const BINARY: &str = "nemesis_topology";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn operations_stay_linearizable_and_inserts_stay_while_ranges_split_and_move() {
    let mut kinds = FaultKind::ALL.to_vec();
    // Topology changes five times as often as each other fault.
    for _ in 0..5 {
        kinds.extend(FaultKind::TOPOLOGY);
    }
    let split_keys: Vec<Vec<u8>> = [
        &b"c"[..],
        b"e/1",
        b"f/",
        b"f/5",
        b"p",
        b"r/1",
        b"s/",
        b"s/5",
    ]
    .iter()
    .map(|k| k.to_vec())
    .collect();
    for seed in nemesis::seeds(&SEEDS) {
        let mut stage = Stage::start_with(seed, &kinds, 5, split_keys.clone())
            .await
            .unwrap_or_else(|e| panic!("seed {seed}: the cluster did not start: {e}"));
        // Shorter steps than the other nemesis tests: a stale snapshot
        // needs a move, a split and two more moves to do harm.
        stage.nemesis = Nemesis::new(NemesisConfig {
            wait: (Duration::from_millis(100), Duration::from_millis(400)),
            hold: (Duration::from_millis(200), Duration::from_millis(800)),
            ..stage.nemesis.config().clone()
        });
        let registers = register::RegisterHistory::new();
        let inserts = set::SetHistory::new();
        let origin = registers.start();
        let stop = Stop::new();
        let register_config = register::RegisterConfig {
            keys: vec![
                b"e/0".to_vec(),
                b"e/1".to_vec(),
                b"r/0".to_vec(),
                b"r/1".to_vec(),
            ],
            clients: 4,
            op_timeout: Duration::from_secs(8),
        };
        let set_config = set::SetConfig {
            prefixes: vec![b"f/".to_vec(), b"s/".to_vec()],
            clients: 2,
            op_timeout: Duration::from_secs(8),
        };
        let (ds_registers, ds_inserts) = (stage.dist_sender(), stage.dist_sender());
        let workload = async {
            tokio::join!(
                register::run(
                    ds_registers,
                    registers.clone(),
                    seed,
                    stop.clone(),
                    register_config
                ),
                set::run(
                    ds_inserts,
                    inserts.clone(),
                    seed,
                    stop.clone(),
                    set_config.clone()
                ),
            )
        };
        let (log, _) = stage.run(DURATION, &stop, workload).await;
        let log = log.unwrap_or_else(|e| panic!("{e}"));
        let report = |violation: &str| failure_report(seed, BINARY, violation, Some(&log), origin);
        if let Err(e) = stage.wait_until_writable(Duration::from_secs(30)).await {
            panic!("{}", report(&e));
        }
        // Whoever leads each range, its replicas must agree.
        let ranges = stage
            .cluster
            .check_replica_consistency(Duration::from_secs(30))
            .await
            .unwrap_or_else(|e| panic!("{}", report(&e)));
        let entries = registers.entries();
        let summary = register::check(&entries).unwrap_or_else(|v| {
            let saved = history::save("register", seed, &entries);
            panic!("{}", report(&format!("{v}\n{saved}")))
        });
        let present = set::read_final(
            &stage.dist_sender(),
            &set_config.prefixes,
            Duration::from_secs(30),
        )
        .await
        .unwrap_or_else(|e| panic!("{}", report(&e)));
        let insert_entries = inserts.entries();
        let set_summary = set::check(&insert_entries, &present).unwrap_or_else(|v| {
            let saved = history::save("set", seed, &insert_entries);
            panic!("{}", report(&format!("{v}\n{saved}")))
        });
        eprintln!(
            "seed {seed}: {} faults ({} splits, {} moves), {ranges} ranges consistent; register: {summary}; set: {set_summary}",
            log.records.len(),
            log.count(FaultKind::Split),
            log.count(FaultKind::Move),
        );
        eprint!("{}", log.render(origin));
        assert!(
            summary.outcomes.ok >= 20 && set_summary.inserts.ok >= 5,
            "{}",
            report(&format!(
                "too little progress: register {summary}; set {set_summary}"
            ))
        );
        assert!(
            log.count(FaultKind::Split) + log.count(FaultKind::Move) > 0,
            "seed {seed}: no topology change ran"
        );
        stage.shutdown().await;
    }
}
