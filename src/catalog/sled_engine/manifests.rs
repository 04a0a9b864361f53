//! Manifest metadata: stored with an expiry index and a per-stream index in
//! creation order, read by id or by page.

use std::sync::atomic::Ordering;

use prost::Message;
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

use super::super::{
    CatalogError, Commit, ManifestPage, ManifestQuery, ManifestRecord, Order, TokenAnswer,
};
use super::SledCatalog;
use super::tokens::{insert_answer, live_answer};
use crate::manifest::Micros;
use crate::manifest::range::MANIFEST_RETENTION;

fn expiry_key(record: &ManifestRecord) -> Vec<u8> {
    let mut key = Vec::with_capacity(24);
    key.extend_from_slice(&(record.expires.max(0) as u64).to_be_bytes());
    key.extend_from_slice(&record.id_bytes());
    key
}

fn stream_key(stream_id: u64, created: Micros, record_id: &[u8; 16]) -> Vec<u8> {
    let mut key = Vec::with_capacity(32);
    key.extend_from_slice(&stream_id.to_be_bytes());
    key.extend_from_slice(&(created.max(0) as u64).to_be_bytes());
    key.extend_from_slice(record_id);
    key
}

/// Playlist location + record id: which manifests share one playlist
/// object (a template without `{RecordId}` writes the same key again).
fn object_key(record: &ManifestRecord) -> Vec<u8> {
    let mut key = object_prefix(record);
    key.extend_from_slice(&record.id_bytes());
    key
}

fn object_prefix(record: &ManifestRecord) -> Vec<u8> {
    [
        record.oss_endpoint.as_bytes(),
        record.oss_bucket.as_bytes(),
        record.oss_object.as_bytes(),
        b"",
    ]
    .join(&0u8)
}

fn decode(bytes: &[u8]) -> Result<ManifestRecord, CatalogError> {
    ManifestRecord::decode(bytes).map_err(|err| CatalogError::Corrupt(err.to_string()))
}

impl SledCatalog {
    /// Stores a manifest's metadata with its indexes. Not durable until
    /// [`SledCatalog::flush`].
    pub fn put_manifest(&self, record: &ManifestRecord) -> Result<(), CatalogError> {
        self.put_manifest_answering(record, None).map(|_| ())
    }

    /// Stores a manifest's metadata with its indexes and, when the request
    /// carried a ClientToken, its answer, all in one transaction; nothing
    /// is written when the token has a live answer already. Not durable
    /// until [`SledCatalog::flush`].
    pub fn put_manifest_answering(
        &self,
        record: &ManifestRecord,
        answer: Option<&TokenAnswer>,
    ) -> Result<Commit<()>, CatalogError> {
        let id = record.id_bytes();
        let by_expiry = expiry_key(record);
        let by_stream = stream_key(record.stream_id, record.created, &id);
        let by_object = object_key(record);
        let added = (
            &self.manifests,
            &self.manifest_expiry,
            &self.manifests_by_stream,
            &self.manifests_by_object,
            &self.tokens,
            &self.token_expiry,
        )
            .transaction(
                |(manifests, expiry, streams, objects, tokens, token_expiry)| {
                    if let Some(answer) = answer {
                        let now = answer.record.created;
                        if let Some(first) = live_answer(tokens, &answer.key, now)? {
                            return Ok(Commit::Answered(first));
                        }
                    }
                    let previous = manifests.insert(&id, record.encode_to_vec())?;
                    expiry.insert(by_expiry.as_slice(), &[])?;
                    streams.insert(by_stream.as_slice(), &[])?;
                    objects.insert(by_object.as_slice(), &[])?;
                    if let Some(answer) = answer {
                        insert_answer(tokens, token_expiry, answer)?;
                    }
                    Ok::<_, ConflictableTransactionError<CatalogError>>(Commit::Done(
                        previous.is_none(),
                    ))
                },
            )
            .map_err(CatalogError::from)?;
        match added {
            Commit::Done(added) => {
                if added {
                    self.manifests_stored.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Commit::Done(()))
            }
            Commit::Answered(first) => Ok(Commit::Answered(first)),
        }
    }

    /// Removes a manifest's metadata and its index entries in one step.
    /// Not durable until [`SledCatalog::flush`].
    pub fn delete_manifest(&self, record: &ManifestRecord) -> Result<(), CatalogError> {
        let id = record.id_bytes();
        let by_expiry = expiry_key(record);
        let by_stream = stream_key(record.stream_id, record.created, &id);
        let by_object = object_key(record);
        let removed = (
            &self.manifests,
            &self.manifest_expiry,
            &self.manifests_by_stream,
            &self.manifests_by_object,
        )
            .transaction(|(manifests, expiry, streams, objects)| {
                let previous = manifests.remove(&id)?;
                expiry.remove(by_expiry.as_slice())?;
                objects.remove(by_object.as_slice())?;
                streams.remove(by_stream.as_slice())?;
                Ok::<_, ConflictableTransactionError<CatalogError>>(previous.is_some())
            })
            .map_err(CatalogError::from)?;
        if removed {
            self.manifests_stored.fetch_sub(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Whether another live manifest points at the same playlist object as
    /// `record`, so deleting that object would break it.
    pub fn playlist_shared(
        &self,
        record: &ManifestRecord,
        now: Micros,
    ) -> Result<bool, CatalogError> {
        let own = record.id_bytes();
        for entry in self.manifests_by_object.scan_prefix(object_prefix(record)) {
            let (key, _) = entry?;
            let id = &key[key.len() - 16..];
            if id == own {
                continue;
            }
            let uuid =
                uuid::Uuid::from_slice(id).map_err(|err| CatalogError::Corrupt(err.to_string()))?;
            if self.manifest(&uuid, now)?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The manifest with this id, unless it has expired.
    pub fn manifest(
        &self,
        record_id: &uuid::Uuid,
        now: Micros,
    ) -> Result<Option<ManifestRecord>, CatalogError> {
        let Some(bytes) = self.manifests.get(record_id.as_bytes())? else {
            return Ok(None);
        };
        let record = decode(&bytes)?;
        Ok((record.expires > now).then_some(record))
    }

    /// A page of the stream's live manifests created in [from, until]:
    /// `skip` entries, then up to `take`. Reads the index keys of the range
    /// to count them and only the records of the page.
    pub fn list_manifests(
        &self,
        query: ManifestQuery,
        now: Micros,
    ) -> Result<ManifestPage, CatalogError> {
        let ManifestQuery {
            stream_id,
            from,
            until,
            order,
            skip,
            take,
        } = query;
        // Created at or before this, a manifest has expired.
        let oldest_live = now.saturating_sub(MANIFEST_RETENTION).saturating_add(1);
        let from = from.max(oldest_live);
        if from > until {
            return Ok(ManifestPage {
                total: 0,
                records: Vec::new(),
            });
        }
        let low = stream_key(stream_id, from, &[0; 16]);
        let high = stream_key(stream_id, until, &[0xff; 16]);
        let range = self.manifests_by_stream.range(low..=high);
        let keys: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> = match order {
            Order::Ascending => Box::new(range),
            Order::Descending => Box::new(range.rev()),
        };
        let mut total = 0;
        let mut records = Vec::new();
        for entry in keys {
            let (key, _) = entry?;
            if total >= skip && records.len() < take {
                let id = &key[16..32];
                if let Some(bytes) = self.manifests.get(id)? {
                    records.push(decode(&bytes)?);
                }
            }
            total += 1;
        }
        Ok(ManifestPage { total, records })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Micros = 1_800_000_000_000_000;

    fn record(stream_id: u64, created: Micros) -> ManifestRecord {
        ManifestRecord {
            record_id: uuid::Uuid::new_v4().as_bytes().to_vec(),
            stream_id,
            created,
            expires: created + MANIFEST_RETENTION,
            ..Default::default()
        }
    }

    #[test]
    fn a_manifest_is_visible_until_its_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = SledCatalog::open(dir.path(), 1 << 20).unwrap();
        let id = uuid::Uuid::new_v4();
        let record = ManifestRecord {
            record_id: id.as_bytes().to_vec(),
            oss_object: "a.m3u8".into(),
            created: NOW,
            expires: NOW + MANIFEST_RETENTION,
            ..Default::default()
        };
        catalog.put_manifest(&record).unwrap();
        let found = catalog.manifest(&id, record.expires - 1).unwrap();
        assert_eq!(found.as_ref().map(|r| r.uuid()), Some(id));
        assert_eq!(catalog.manifest(&id, record.expires).unwrap(), None);
        assert_eq!(catalog.manifest(&uuid::Uuid::new_v4(), NOW).unwrap(), None);
        // The expiry index orders records by expiry for the sweeper.
        let (key, _) = catalog.manifest_expiry.iter().next().unwrap().unwrap();
        assert_eq!(&key[..8], &(record.expires as u64).to_be_bytes());
        assert_eq!(&key[8..], id.as_bytes());
    }

    #[test]
    fn pages_walk_every_manifest_once_in_either_order() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = SledCatalog::open(dir.path(), 1 << 20).unwrap();
        let mut records: Vec<ManifestRecord> = (0..23)
            .map(|i| record(7, NOW - 1000 + (i / 2) * 10))
            .collect();
        records.push(record(8, NOW - 500)); // another stream
        for r in &records {
            catalog.put_manifest(r).unwrap();
        }
        for order in [Order::Ascending, Order::Descending] {
            let mut seen = Vec::new();
            for page in 0..5 {
                let listed = catalog
                    .list_manifests(
                        ManifestQuery {
                            stream_id: 7,
                            from: NOW - 2000,
                            until: NOW,
                            order,
                            skip: page * 5,
                            take: 5,
                        },
                        NOW,
                    )
                    .unwrap();
                assert_eq!(listed.total, 23);
                seen.extend(listed.records.iter().map(|r| r.uuid()));
            }
            assert_eq!(seen.len(), 23);
            let mut unique = seen.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), 23);
            let created: Vec<Micros> = seen
                .iter()
                .map(|id| catalog.manifest(id, NOW).unwrap().unwrap().created)
                .collect();
            let mut sorted = created.clone();
            sorted.sort();
            if order == Order::Descending {
                sorted.reverse();
            }
            assert_eq!(created, sorted);
        }
        // The range bounds are inclusive and cut on creation time.
        let inner = catalog
            .list_manifests(
                ManifestQuery {
                    stream_id: 7,
                    from: NOW - 990,
                    until: NOW - 980,
                    order: Order::Ascending,
                    skip: 0,
                    take: 30,
                },
                NOW,
            )
            .unwrap();
        assert_eq!(inner.total, 4);
    }

    #[test]
    fn deleted_and_expired_manifests_are_not_listed() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = SledCatalog::open(dir.path(), 1 << 20).unwrap();
        let old = record(7, NOW - MANIFEST_RETENTION);
        let young = record(7, NOW - MANIFEST_RETENTION + 1);
        let gone = record(7, NOW - 5);
        for r in [&old, &young, &gone] {
            catalog.put_manifest(r).unwrap();
        }
        catalog.delete_manifest(&gone).unwrap();
        let listed = catalog
            .list_manifests(
                ManifestQuery {
                    stream_id: 7,
                    from: 0,
                    until: NOW,
                    order: Order::Ascending,
                    skip: 0,
                    take: 30,
                },
                NOW,
            )
            .unwrap();
        assert_eq!(listed.total, 1);
        assert_eq!(listed.records[0].uuid(), young.uuid());
        assert!(catalog.manifest(&gone.uuid(), NOW).unwrap().is_none());
        assert!(catalog.manifest(&old.uuid(), NOW).unwrap().is_none());
    }

    #[test]
    fn manifests_sharing_a_playlist_know_of_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = SledCatalog::open(dir.path(), 1 << 20).unwrap();
        let mut first = record(7, NOW - 10);
        first.oss_object = "live/index.m3u8".into();
        let mut second = record(7, NOW - 5);
        second.oss_object = "live/index.m3u8".into();
        let mut other = record(7, NOW - 5);
        other.oss_object = "live/other.m3u8".into();
        for r in [&first, &second, &other] {
            catalog.put_manifest(r).unwrap();
        }
        assert!(catalog.playlist_shared(&first, NOW).unwrap());
        assert!(!catalog.playlist_shared(&other, NOW).unwrap());
        catalog.delete_manifest(&second).unwrap();
        assert!(!catalog.playlist_shared(&first, NOW).unwrap());
    }
}
