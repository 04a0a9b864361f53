//! The catalog contract (`record_index::catalog::Catalog`) as every engine
//! must keep it. Each property is written once, over `Arc<dyn Catalog>`,
//! in the modules below; `contract_suite!` makes a test of each for one
//! engine, given how to open it and open it again. An engine passes when
//! its module here passes unchanged.

mod fixtures;
mod manifests;
#[path = "../common/pg_server.rs"]
mod pg_server;
mod retention;
mod segments;
mod tokens;

use std::sync::Arc;

use async_trait::async_trait;
use record_index::catalog::Catalog;

/// An engine under test: a fresh, empty catalog, and the same catalog
/// opened again as after a restart of the process.
#[async_trait]
pub trait Engine: Sized + Send {
    async fn open() -> Self;
    fn catalog(&self) -> Arc<dyn Catalog>;
    /// Closes the catalog (every handle given out must be dropped) and
    /// opens what it stored.
    async fn reopen(&mut self);
}

macro_rules! contract_suite {
    ($engine:ty) => {
        contract_suite!(@each $engine;
            segments::registration_is_idempotent_whatever_times_are_sent,
            segments::registered_tells_what_register_would_count_as_duplicate,
            segments::the_longest_segment_follows_accepted_segments_only,
            segments::streams_are_found_in_order_and_kept_apart,
            segments::the_scan_is_exclusive_then_inclusive_and_ordered,
            segments::pages_resume_past_their_last_segment,
            segments::a_page_is_never_longer_than_the_cap,
            segments::paging_is_stable_under_concurrent_registers,
            segments::concurrent_registers_of_one_stream_accept_each_object_once,
            segments::segments_expire_90_days_after_their_start,
            segments::a_stream_is_made_without_segments_once,
            segments::a_sink_is_offered_what_the_pages_hold,
            manifests::a_manifest_is_found_by_id_until_it_expires,
            manifests::listings_page_in_creation_order_with_their_total,
            manifests::an_ascending_listing_is_stable_under_new_manifests,
            manifests::deletion_is_exact_and_shared_playlists_are_told,
            tokens::a_manifest_and_its_token_commit_together_once,
            tokens::a_register_and_its_token_commit_together_once,
            tokens::concurrent_commits_with_one_token_make_one_manifest,
            tokens::a_token_is_live_for_24_hours,
            tokens::a_token_stored_alone_is_kept_once,
            retention::a_sweep_removes_each_record_at_its_expiry,
            retention::a_sweep_works_in_bounded_batches_oldest_first,
            retention::a_sweep_keeps_a_token_used_again_after_its_expiry,
            retention::counts_follow_every_write_without_a_scan,
            retention::acknowledged_writes_survive_a_reopen,
        );
    };
    (@each $engine:ty; $($module:ident :: $property:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $property() {
                let mut engine = <$engine as $crate::Engine>::open().await;
                $crate::$module::$property(&mut engine).await;
            }
        )*
    };
}

mod postgres;
mod postgres_upgrade;

/// The embedded engine, in a temporary directory.
mod sled {
    use std::sync::Arc;

    use async_trait::async_trait;
    use record_index::catalog::Catalog;
    use record_index::catalog::sled_engine::{SledCatalog, SledEngine};

    pub struct Sled {
        dir: tempfile::TempDir,
        catalog: Option<Arc<dyn Catalog>>,
    }

    fn open_in(dir: &std::path::Path) -> Arc<dyn Catalog> {
        Arc::new(SledEngine::new(SledCatalog::open(dir, 1 << 20).unwrap()))
    }

    #[async_trait]
    impl crate::Engine for Sled {
        async fn open() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let catalog = Some(open_in(dir.path()));
            Sled { dir, catalog }
        }

        fn catalog(&self) -> Arc<dyn Catalog> {
            self.catalog.clone().expect("open")
        }

        async fn reopen(&mut self) {
            let closing = self.catalog.take().expect("open");
            assert_eq!(
                Arc::strong_count(&closing),
                1,
                "a handle of the catalog is still held"
            );
            drop(closing);
            let path = self.dir.path().to_path_buf();
            self.catalog = Some(
                tokio::task::spawn_blocking(move || open_in(&path))
                    .await
                    .unwrap(),
            );
        }
    }

    contract_suite!(Sled);
}
