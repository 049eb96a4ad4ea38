//! openraft's storage conformance suite on our log store and state machine,
//! over a real RocksDB per sub-test.

use meridian_keys::space::MAX_KEY;
use meridian_storage::{Engine, EngineOptions};
use openraft::testing::log::{StoreBuilder, Suite};
use openraft::StorageError;

use super::log_store::LogStore;
use super::state_machine::StateMachine;
use super::syncer::Syncer;
use super::types::TypeConfig;

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<TypeConfig>> {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = Engine::open(dir.path(), &EngineOptions::default()).expect("engine");
        let syncer = Syncer::start(engine.clone(), None);
        let log = LogStore::new(engine.clone(), 1, syncer);
        let sm = StateMachine::open(engine, 1, 1, (Vec::new(), MAX_KEY.to_vec()), None)
            .expect("state machine");
        Ok((dir, log, sm))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openraft_storage_suite() -> Result<(), StorageError<TypeConfig>> {
    Suite::test_all(Builder).await?;
    Ok(())
}
