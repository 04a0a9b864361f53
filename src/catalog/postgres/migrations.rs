//! Versioned schema migrations, embedded in the binary and applied at
//! open. Replicas that start together take turns on an advisory lock, so
//! exactly one applies each version; `schema_migrations` records what is
//! applied. A migration is SQL, and where rows must be rewritten in a
//! way SQL cannot, a step of this binary, all in one transaction.

use deadpool_postgres::Pool;

use super::storage;
use crate::catalog::CatalogError;

enum Step {
    Sql(&'static str),
    /// Version 1's segment rows into blocks (see `repack.rs`).
    PackVersion1Rows,
    /// The weekly partitions around the wall clock, for rows about to be
    /// copied into a newly partitioned table.
    CreatePartitionsAhead,
}

/// Every migration in order; a version once released is never edited.
const MIGRATIONS: &[(i32, &[Step])] = &[
    (1, &[Step::Sql(include_str!("migrations/0001_catalog.sql"))]),
    (
        2,
        &[
            Step::Sql(include_str!("migrations/0002_segment_blocks.sql")),
            Step::PackVersion1Rows,
            Step::Sql(include_str!("migrations/0002_drop_rows.sql")),
        ],
    ),
    (
        3,
        &[
            Step::Sql(include_str!("migrations/0003_manifest_partitions.sql")),
            Step::CreatePartitionsAhead,
            Step::Sql(include_str!("migrations/0003_copy_manifests.sql")),
        ],
    ),
];

/// Key of the advisory lock held while migrating ("recindex" in ASCII).
const MIGRATION_LOCK: i64 = 0x7265_6369_6e64_6578;

/// The newest version of the schema.
pub(super) fn latest() -> i32 {
    MIGRATIONS.last().map_or(0, |(version, _)| *version)
}

/// Applies the migrations not yet applied: their versions.
pub(super) async fn apply(pool: &Pool) -> Result<Vec<i32>, CatalogError> {
    let mut client = pool.get().await.map_err(storage)?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(storage)?;
    let applied = apply_locked(&mut client).await;
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    if applied.is_err() || unlocked.is_err() {
        // A session lock must not go back to the pool with the connection.
        drop(deadpool_postgres::Object::take(client));
    }
    let applied = applied?;
    unlocked.map_err(storage)?;
    Ok(applied)
}

async fn apply_locked(client: &mut deadpool_postgres::Object) -> Result<Vec<i32>, CatalogError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version integer PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(storage)?;
    let done: Vec<i32> = client
        .query("SELECT version FROM schema_migrations", &[])
        .await
        .map_err(storage)?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut applied = Vec::new();
    for (version, steps) in MIGRATIONS {
        if done.contains(version) {
            continue;
        }
        let tx = client.transaction().await.map_err(storage)?;
        for step in *steps {
            match step {
                Step::Sql(sql) => tx.batch_execute(sql).await.map_err(storage)?,
                Step::PackVersion1Rows => {
                    super::repack::pack_version_1_rows(&tx).await?;
                }
                Step::CreatePartitionsAhead => {
                    super::partitions::create_ahead(&tx, super::wall_clock()).await?;
                }
            }
        }
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[version],
        )
        .await
        .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        tracing::info!(version, "catalog schema migrated");
        applied.push(*version);
    }
    Ok(applied)
}
