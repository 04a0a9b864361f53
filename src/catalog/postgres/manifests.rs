//! Manifest records: one row each, the prost-encoded record beside the
//! columns that find it (by id, by stream and creation time, by playlist
//! object, by expiry).

use prost::Message;
use tokio_postgres::Row;

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

impl PgCatalog {
    pub async fn put_manifest(
        &self,
        record: &ManifestRecord,
        answer: Option<TokenAnswer>,
    ) -> Result<Commit<()>, CatalogError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(storage)?;
        if let Some(answer) = &answer
            && let Some(first) = tokens::claim(&tx, &answer.key, &answer.record).await?
        {
            tx.rollback().await.map_err(storage)?;
            return Ok(Commit::Answered(first));
        }
        let inserted: bool = tx
            .query_one(
                "INSERT INTO manifests
                     (record_id, stream_id, created, expires, endpoint, bucket, object, record)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (record_id) DO UPDATE
                     SET stream_id = EXCLUDED.stream_id, created = EXCLUDED.created,
                         expires = EXCLUDED.expires, endpoint = EXCLUDED.endpoint,
                         bucket = EXCLUDED.bucket, object = EXCLUDED.object,
                         record = EXCLUDED.record
                 RETURNING xmax = 0",
                &[
                    &record.id_bytes().as_slice(),
                    &(record.stream_id as i64),
                    &record.created,
                    &record.expires,
                    &record.oss_endpoint,
                    &record.oss_bucket,
                    &record.oss_object,
                    &record.encode_to_vec(),
                ],
            )
            .await
            .map_err(storage)?
            .get(0);
        let added = i64::from(inserted);
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
        let rows = client
            .query(
                "SELECT record_id, record FROM manifests
                 WHERE record_id = ANY($1::bytea[]) AND expires > $2",
                &[&keys, &now],
            )
            .await
            .map_err(storage)?;
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
        let removed = tx
            .execute(
                "DELETE FROM manifests WHERE record_id = ANY($1::bytea[])",
                &[&ids(records)],
            )
            .await
            .map_err(storage)? as i64;
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
        let rows = client
            .query(
                "SELECT EXISTS (
                     SELECT 1 FROM manifests m
                     WHERE m.endpoint = r.endpoint AND m.bucket = r.bucket
                       AND m.object = r.object AND m.record_id <> r.id AND m.expires > $5)
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[])
                     WITH ORDINALITY AS r(endpoint, bucket, object, id, n)
                 ORDER BY r.n",
                &[&endpoints, &buckets, &objects, &ids(records), &now],
            )
            .await
            .map_err(storage)?;
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
        let total: i64 = tx
            .query_one(
                "SELECT count(*) FROM manifests
                 WHERE stream_id = $1 AND created BETWEEN $2 AND $3 AND expires > $4",
                &[&stream_id, &query.from, &query.until, &now],
            )
            .await
            .map_err(storage)?
            .get(0);
        let rows = tx
            .query(
                &page_sql,
                &[&stream_id, &query.from, &query.until, &now, &skip, &take],
            )
            .await
            .map_err(storage)?;
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
