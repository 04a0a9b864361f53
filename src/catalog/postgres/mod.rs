//! The catalog in PostgreSQL, for replicas that share one catalog.
//!
//! The client is tokio-postgres behind a deadpool-postgres pool: async on
//! the runtime the service already runs (no blocking pool), pooled so a
//! request borrows a ready connection, mature and widely deployed, and
//! plain SQL with no ORM or macros that need a database at compile time.
//!
//! Every contract call is one transaction or one statement; the database
//! enforces what must hold across replicas (unique keys, row locks), never
//! a lock of this process. The schema is in `migrations/`, applied at open
//! (see `migrations.rs`, or `record-index migrate`); segments are
//! range-partitioned by end time (see `partitions.rs`). The sweep runs on
//! one replica at a time (`sweep_lock.rs`) and drops weeks past retention
//! whole. Failures a retry can fix are `CatalogError::Unavailable`
//! (`errors.rs`). `docs/postgres.md` is the operator's view.

mod engine;
mod errors;
mod manifests;
mod migrations;
mod partitions;
mod repack;
mod retention;
mod scan;
mod segments;
mod statements;
mod sweep_lock;
mod tokens;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

pub(crate) use errors::storage;
pub use scan::SCAN_BLOCKS;

use super::{CatalogError, Stored};
use crate::manifest::Micros;

/// Longest wait for a pooled connection or a new one.
const POOL_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// How to reach the database.
#[derive(Clone)]
pub struct PgOptions {
    /// A libpq connection string or URL. It may hold a password: it is
    /// never logged nor put in an error.
    pub url: String,
    pub pool_size: usize,
    /// Every statement is cancelled by the server past this; 0 for none.
    pub statement_timeout_ms: u64,
}

impl PgOptions {
    /// The options of `[catalog]`, the connection string read from the
    /// environment variable it names. An error names the variable only.
    pub fn from_config(settings: &crate::config::CatalogConfig) -> Result<PgOptions, String> {
        let url = std::env::var(&settings.url_env)
            .map_err(|_| format!("{} is not set", settings.url_env))?;
        Ok(PgOptions {
            url,
            pool_size: settings.pool_size,
            statement_timeout_ms: settings.statement_timeout_ms,
        })
    }
}

impl std::fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgOptions")
            .field("pool_size", &self.pool_size)
            .field("statement_timeout_ms", &self.statement_timeout_ms)
            .finish_non_exhaustive()
    }
}

/// What `migrate` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// Versions applied by this call, in order.
    pub applied: Vec<i32>,
    /// The newest version this binary knows.
    pub latest: i32,
}

/// A pool whose connections carry the options; it connects lazily.
fn pool(options: &PgOptions) -> Result<Pool, CatalogError> {
    let mut config: tokio_postgres::Config = options
        .url
        .parse()
        .map_err(|_| CatalogError::Storage("postgres: the connection string is invalid".into()))?;
    if options.statement_timeout_ms > 0 {
        config.options(format!(
            "-c statement_timeout={}",
            options.statement_timeout_ms
        ));
    }
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    // A request waits this long at most for a connection, whether the
    // pool is exhausted or the database does not answer.
    let wait = Some(POOL_WAIT);
    Pool::builder(manager)
        .max_size(options.pool_size.max(1))
        .runtime(Runtime::Tokio1)
        .wait_timeout(wait)
        .create_timeout(wait)
        .recycle_timeout(wait)
        .build()
        .map_err(storage)
}

/// The PostgreSQL engine; cheap to clone.
#[derive(Clone)]
pub struct PgCatalog {
    pool: Pool,
    counts: Arc<Counts>,
    /// The week whose partitions this process last saw to.
    partitions_week: Arc<AtomicI64>,
}

/// This process's view of the record counts: loaded at open and at each
/// [`PgCatalog::check`] (the health loop's, every few seconds), so the
/// other replicas' writes show within seconds, and moved between by the
/// deltas of its own commits, so [`PgCatalog::stored`] never reads. A
/// commit that lands while the counts load may count twice until the
/// next load.
#[derive(Default)]
struct Counts {
    segments: AtomicI64,
    manifests: AtomicI64,
}

impl PgCatalog {
    /// Connects, applies the migrations not yet applied and creates the
    /// partitions of the weeks ahead.
    pub async fn open(options: &PgOptions) -> Result<PgCatalog, CatalogError> {
        let pool = pool(options)?;
        migrations::apply(&pool).await?;
        let catalog = PgCatalog {
            pool,
            counts: Arc::default(),
            partitions_week: Arc::new(AtomicI64::new(i64::MIN)),
        };
        catalog.load_counts().await?;
        partitions::create_ahead(&catalog.client().await?, wall_clock()).await?;
        Ok(catalog)
    }

    /// Applies the migrations not yet applied and creates the partitions
    /// of the weeks ahead, as `open` does, without opening a catalog: the
    /// versions applied now, none when the schema was up to date.
    pub async fn migrate(options: &PgOptions) -> Result<Migrated, CatalogError> {
        let pool = pool(options)?;
        let applied = migrations::apply(&pool).await?;
        partitions::create_ahead(&pool.get().await.map_err(storage)?, wall_clock()).await?;
        Ok(Migrated {
            applied,
            latest: migrations::latest(),
        })
    }

    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, CatalogError> {
        self.pool.get().await.map_err(storage)
    }

    async fn load_counts(&self) -> Result<(), CatalogError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT COALESCE(SUM(segments), 0)::bigint, COALESCE(SUM(manifests), 0)::bigint
                 FROM record_counts",
                &[],
            )
            .await
            .map_err(storage)?;
        self.counts.segments.store(row.get(0), Ordering::SeqCst);
        self.counts.manifests.store(row.get(1), Ordering::SeqCst);
        Ok(())
    }

    /// Adds to the stored counts inside the caller's transaction; the
    /// caller applies the same delta to [`Counts`] once it committed.
    pub(crate) async fn count_in(
        tx: &deadpool_postgres::Transaction<'_>,
        segments: i64,
        manifests: i64,
    ) -> Result<(), CatalogError> {
        if segments == 0 && manifests == 0 {
            return Ok(());
        }
        let slot = i16::from(rand_slot());
        statements::execute(
            tx,
            "UPDATE record_counts SET segments = segments + $2, manifests = manifests + $3
             WHERE slot = $1",
            &[&slot, &segments, &manifests],
        )
        .await?;
        Ok(())
    }

    pub(crate) fn counted(&self, segments: i64, manifests: i64) {
        self.counts.segments.fetch_add(segments, Ordering::SeqCst);
        self.counts.manifests.fetch_add(manifests, Ordering::SeqCst);
    }

    pub fn stored(&self) -> Stored {
        Stored {
            segments: self.counts.segments.load(Ordering::SeqCst).max(0) as u64,
            manifests: self.counts.manifests.load(Ordering::SeqCst).max(0) as u64,
        }
    }

    /// Reads the counts (16 rows): proof that the database answers, and
    /// the fleet's counts.
    pub async fn check(&self) -> Result<(), CatalogError> {
        self.load_counts().await
    }
}

/// One of the 16 count slots.
fn rand_slot() -> u8 {
    let mut byte = [0u8; 1];
    // A fixed slot is still correct, only more contended.
    let _ = getrandom::getrandom(&mut byte);
    byte[0] % 16
}

fn wall_clock() -> Micros {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_micros() as Micros)
        .unwrap_or(0)
}

/// `now - span`, without overflow: the bound below which a record made
/// `span` before `now` is expired.
pub(crate) fn before(now: Micros, span: Micros) -> Micros {
    now.saturating_sub(span)
}
