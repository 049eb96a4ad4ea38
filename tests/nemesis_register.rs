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

use meridian_testkit::nemesis::{
    self, failure_report, history, register, set, FaultKind, Stage, Stop,
};

/// Each schedule's length; with the cluster's start and the checks, a
/// seed takes about 15 s.
const DURATION: Duration = Duration::from_secs(10);
const SEEDS: [u64; 3] = [1, 2, 3];
const BINARY: &str = "nemesis_register";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn single_key_operations_stay_linearizable_and_acknowledged_inserts_stay_under_faults() {
    for seed in nemesis::seeds(&SEEDS) {
        let mut stage = Stage::start(seed, &FaultKind::ALL)
            .await
            .unwrap_or_else(|e| panic!("seed {seed}: the cluster did not start: {e}"));
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
            clients: 5,
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
        if let Err(e) = stage
            .cluster
            .check_replica_consistency(Duration::from_secs(30))
            .await
        {
            panic!("{}", report(&e));
        }

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
            panic!(
                "{}",
                report(&format!(
                    "{v}
{saved}"
                ))
            )
        });
        eprintln!(
            "seed {seed}: {} faults; register: {summary}; set: {set_summary}",
            log.records.len()
        );
        eprint!("{}", log.render(origin));
        // Quorum held throughout: the clients must have got work done.
        assert!(
            summary.outcomes.ok >= 20 && set_summary.inserts.ok >= 5,
            "{}",
            report(&format!(
                "too little progress: register {summary}; set {set_summary}"
            ))
        );
        assert!(!log.records.is_empty(), "seed {seed}: no fault ran");
        stage.shutdown().await;
    }
}
