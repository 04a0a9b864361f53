//! Manifest records: one row each, the prost-encoded record beside the
//! columns that find it (by id, by stream and creation time, by playlist
//! object, by expiry).

use prost::Message;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::statements::{self, execute, prepare, query_one};
use super::{PgCatalog, storage, tokens};
use crate::catalog::{
    CatalogError, Commit, ManifestPage, ManifestQuery, ManifestRecord, Order, TokenAnswer,
};
use crate::manifest::Micros;

fn decode(row: &Row, column: usize) -> Result<ManifestRecord, CatalogError> {
    let bytes: &[u8] = row.get(column);
    ManifestRecord::decode(bytes).map_err(|err| CatalogError::Corrupt(err.to_string()))
}

fn ids(records: &[ManifestRecord]) -> Vec<Vec<u8>> {
    records.iter().map(|r| r.id_bytes().to_vec()).collect()
}

/// Stores a record, replacing one of its id: whether it was added. (A
/// partitioned table has no `xmax` to tell an insert from an update.)
const PUT_MANIFEST: &str = "WITH replaced AS (
        UPDATE manifests SET stream_id = $2, created = $3, endpoint = $5, bucket = $6,
            object = $7, record = $8
        WHERE record_id = $1 AND expires = $4
        RETURNING 1),
    added AS (
        INSERT INTO manifests
            (record_id, stream_id, created, expires, endpoint, bucket, object, record)
        SELECT $1, $2, $3, $4, $5, $6, $7, $8 WHERE NOT EXISTS (SELECT 1 FROM replaced)
        ON CONFLICT DO NOTHING
        RETURNING 1)
    SELECT EXISTS (SELECT 1 FROM added)";

impl PgCatalog {
    pub async fn put_manifest(
        &self,
        record: &ManifestRecord,
        answer: Option<TokenAnswer>,
    ) -> Result<Commit<()>, CatalogError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(storage)?;
        // The claim, then the record, in one round trip (both prepared
        // first, so each is sent when polled, in this order); when the
        // token was answered before, the record is rolled back unseen.
        futures::try_join!(prepare(&tx, tokens::CLAIM), prepare(&tx, PUT_MANIFEST))?;
        let claim = async {
            match &answer {
                Some(answer) => tokens::claim(&tx, &answer.key, &answer.record).await,
                None => Ok(None),
            }
        };
        let (id, encoded) = (record.id_bytes(), record.encode_to_vec());
        let params: [&(dyn ToSql + Sync); 8] = [
            &id.as_slice(),
            &(record.stream_id as i64),
            &record.created,
            &record.expires,
            &record.oss_endpoint,
            &record.oss_bucket,
            &record.oss_object,
            &encoded,
        ];
        let (claimed, inserted) = futures::join!(claim, query_one(&tx, PUT_MANIFEST, &params));
        // The claim's outcome first: an earlier answer stands whatever
        // became of the record after it.
        if let Some(first) = claimed? {
            tx.rollback().await.map_err(storage)?;
            return Ok(Commit::Answered(first));
        }
        let added = i64::from(inserted?.get::<_, bool>(0));
        PgCatalog::count_in(&tx, 0, added).await?;
        tx.commit().await.map_err(storage)?;
        self.counted(0, added);
        Ok(Commit::Done(()))
    }

    pub async fn manifests(
        &self,
        ids: &[uuid::Uuid],
        now: Micros,
    ) -> Result<Vec<Option<ManifestRecord>>, CatalogError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<Vec<u8>> = ids.iter().map(|id| id.as_bytes().to_vec()).collect();
        let client = self.client().await?;
        let rows = statements::query(
            &client,
            "SELECT record_id, record FROM manifests
             WHERE record_id = ANY($1::bytea[]) AND expires > $2",
            &[&keys, &now],
        )
        .await?;
        let mut found = std::collections::HashMap::new();
        for row in &rows {
            let id: Vec<u8> = row.get(0);
            found.insert(id, decode(row, 1)?);
        }
        Ok(keys.iter().map(|key| found.get(key).cloned()).collect())
    }

    pub async fn delete_manifests(&self, records: &[ManifestRecord]) -> Result<(), CatalogError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(storage)?;
        let removed = execute(
            &tx,
            "DELETE FROM manifests WHERE record_id = ANY($1::bytea[])",
            &[&ids(records)],
        )
        .await? as i64;
        PgCatalog::count_in(&tx, 0, -removed).await?;
        tx.commit().await.map_err(storage)?;
        self.counted(0, -removed);
        Ok(())
    }

    pub async fn playlists_shared(
        &self,
        records: &[ManifestRecord],
        now: Micros,
    ) -> Result<Vec<bool>, CatalogError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let endpoints: Vec<&str> = records.iter().map(|r| r.oss_endpoint.as_str()).collect();
        let buckets: Vec<&str> = records.iter().map(|r| r.oss_bucket.as_str()).collect();
        let objects: Vec<&str> = records.iter().map(|r| r.oss_object.as_str()).collect();
        let client = self.client().await?;
        let rows = statements::query(
            &client,
            "SELECT EXISTS (
                 SELECT 1 FROM manifests m
                 WHERE m.endpoint = r.endpoint AND m.bucket = r.bucket
                   AND m.object = r.object AND m.record_id <> r.id AND m.expires > $5)
             FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[])
                 WITH ORDINALITY AS r(endpoint, bucket, object, id, n)
             ORDER BY r.n",
            &[&endpoints, &buckets, &objects, &ids(records), &now],
        )
        .await?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    pub async fn list_manifests(
        &self,
        query: ManifestQuery,
        now: Micros,
    ) -> Result<ManifestPage, CatalogError> {
        let direction = match query.order {
            Order::Ascending => "ASC",
            Order::Descending => "DESC",
        };
        let page_sql = format!(
            "SELECT record FROM manifests
             WHERE stream_id = $1 AND created BETWEEN $2 AND $3 AND expires > $4
             ORDER BY created {direction}, record_id {direction}
             OFFSET $5 LIMIT $6"
        );
        let stream_id = query.stream_id as i64;
        let skip = i64::try_from(query.skip).unwrap_or(i64::MAX);
        let take = i64::try_from(query.take).unwrap_or(i64::MAX);
        let mut client = self.client().await?;
        // One snapshot for the page and its total.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(storage)?;
        // Both read the transaction's snapshot: one round trip.
        let range: [&(dyn ToSql + Sync); 6] =
            [&stream_id, &query.from, &query.until, &now, &skip, &take];
        let (total, rows) = futures::try_join!(
            query_one(
                &tx,
                "SELECT count(*) FROM manifests
                 WHERE stream_id = $1 AND created BETWEEN $2 AND $3 AND expires > $4",
                &range[..4],
            ),
            statements::query(&tx, &page_sql, &range),
        )?;
        let total: i64 = total.get(0);
        tx.commit().await.map_err(storage)?;
        Ok(ManifestPage {
            total: total as usize,
            records: rows
                .iter()
                .map(|row| decode(row, 0))
                .collect::<Result<_, _>>()?,
        })
    }
}
