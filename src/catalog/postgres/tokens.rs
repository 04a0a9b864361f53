//! ClientToken answers. A write guarded by a token first claims the key
//! inside its own transaction: the key's primary index makes a second
//! claimer wait for the first to commit or roll back, then see its answer,
//! so one token wins once across every replica.

use deadpool_postgres::Transaction;
use tokio_postgres::Row;

use super::statements::{execute, query_one, query_opt};
use super::{PgCatalog, before, storage};
use crate::catalog::{CatalogError, Commit, TOKEN_RETENTION, TokenAnswer, TokenRecord};
use crate::manifest::Micros;

fn record(row: &Row) -> TokenRecord {
    TokenRecord {
        created: row.get(0),
        fingerprint: row.get(1),
        response: row.get(2),
    }
}

/// Claims a key: see [`claim`].
pub(super) const CLAIM: &str = "INSERT INTO tokens AS t (key, created, fingerprint, response)
    VALUES ($1, $2, $3, $4)
    ON CONFLICT (key) DO UPDATE
        SET created = EXCLUDED.created,
            fingerprint = EXCLUDED.fingerprint,
            response = EXCLUDED.response
        WHERE t.created <= $5
    RETURNING 1";

/// Stores `answer` under `key` unless the key holds an answer still live
/// at `answer.created`; then that answer is returned and the caller must
/// roll back. A dead answer under the key is replaced.
pub(super) async fn claim(
    tx: &Transaction<'_>,
    key: &[u8],
    answer: &TokenRecord,
) -> Result<Option<TokenRecord>, CatalogError> {
    let dead_before = before(answer.created, TOKEN_RETENTION);
    let claimed = query_opt(
        tx,
        CLAIM,
        &[
            &key,
            &answer.created,
            &answer.fingerprint,
            &answer.response,
            &dead_before,
        ],
    )
    .await?;
    if claimed.is_some() {
        return Ok(None);
    }
    // The conflicting answer is committed: this statement's snapshot,
    // taken after the claim waited for it, sees it.
    let row = query_one(
        tx,
        "SELECT created, fingerprint, response FROM tokens WHERE key = $1",
        &[&key],
    )
    .await?;
    Ok(Some(record(&row)))
}

/// Replaces the response of an answer claimed in this transaction.
pub(super) async fn set_response(
    tx: &Transaction<'_>,
    key: &[u8],
    response: &[u8],
) -> Result<(), CatalogError> {
    execute(
        tx,
        "UPDATE tokens SET response = $2 WHERE key = $1",
        &[&key, &response],
    )
    .await?;
    Ok(())
}

impl PgCatalog {
    pub async fn token(
        &self,
        key: &[u8],
        now: Micros,
    ) -> Result<Option<TokenRecord>, CatalogError> {
        let client = self.client().await?;
        let row = query_opt(
            &client,
            "SELECT created, fingerprint, response FROM tokens
             WHERE key = $1 AND created > $2",
            &[&key, &before(now, TOKEN_RETENTION)],
        )
        .await?;
        Ok(row.as_ref().map(record))
    }

    /// A token's answer by itself, once.
    pub async fn put_token(&self, answer: &TokenAnswer) -> Result<Commit<()>, CatalogError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(storage)?;
        if let Some(first) = claim(&tx, &answer.key, &answer.record).await? {
            tx.rollback().await.map_err(storage)?;
            return Ok(Commit::Answered(first));
        }
        tx.commit().await.map_err(storage)?;
        Ok(Commit::Done(()))
    }
}
