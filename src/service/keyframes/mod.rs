//! Where a segment's keyframes are: its object read whole and probed once,
//! then kept in memory. A KEYFRAME clip (its end segments' cuts), an
//! I-frame playlist (every keyframe of the range) and a master playlist
//! (the I-frame bitrate of each rendition's first segment) all ask here.
//!
//! The cache holds at most [`CACHE_BYTES`] of tables, dropping those used
//! longest ago first; a table of a 6-second segment with a keyframe a
//! second weighs about 650 bytes. Segments are taken as written
//! once: an object rewritten under the same key keeps its old table until
//! the cache drops it. At most [`PROBES_AT_ONCE`] objects are read and
//! probed at a time across the service, so their bytes in memory stay
//! below `PROBES_AT_ONCE` times [`MAX_PROBED_BYTES`].

mod lru;

use std::fmt;
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use super::IndexService;
use crate::manifest::Segment;
use crate::media::{self, Keyframe, Probe};
use crate::storage::{ByteRange, StorageError};
use lru::Lru;

/// Largest segment read whole to find its keyframes.
pub const MAX_PROBED_BYTES: u64 = 64 * 1024 * 1024;
/// Bytes of keyframe tables the cache keeps.
pub const CACHE_BYTES: usize = 32 * 1024 * 1024;
/// Objects read and probed at once, across every request.
pub const PROBES_AT_ONCE: usize = 4;

/// What a probe of a whole segment says, with the object's size.
#[derive(Debug)]
pub struct KeyframeTable {
    pub probe: Probe,
    pub total_len: u64,
}

impl KeyframeTable {
    /// Roughly what the table and its key take in memory.
    fn weight(&self, id: &ObjectId) -> usize {
        const OVERHEAD: usize = 128;
        std::mem::size_of::<KeyframeTable>()
            + self.probe.keyframes.capacity() * std::mem::size_of::<Keyframe>()
            + self.probe.codec_string.len()
            + id.endpoint.len()
            + id.bucket.len()
            + id.object.len()
            + OVERHEAD
    }
}

/// Why a segment has no keyframe table.
#[derive(Debug, Clone)]
pub enum TableError {
    /// For good, or until someone changes the object or the config: not
    /// found, refused, too large, not media the probe reads.
    Unusable(Arc<str>),
    /// Object storage did not answer: a retry may succeed.
    Unavailable(String),
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TableError::Unusable(reason) => f.write_str(reason),
            TableError::Unavailable(reason) => f.write_str(reason),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ObjectId {
    endpoint: String,
    bucket: String,
    object: String,
}

/// A table, or why the object's media can never give one (kept so that a
/// live playlist reloaded every few seconds does not read a bad segment
/// each time).
type Cached = Result<Arc<KeyframeTable>, Arc<str>>;

pub struct KeyframeCache {
    tables: Mutex<Lru<Arc<ObjectId>, Cached>>,
    /// Bounds the probes running at once, and so the bytes they hold.
    probes: Semaphore,
}

impl Default for KeyframeCache {
    fn default() -> KeyframeCache {
        KeyframeCache {
            tables: Mutex::new(Lru::new(CACHE_BYTES)),
            probes: Semaphore::new(PROBES_AT_ONCE),
        }
    }
}

impl KeyframeCache {
    fn get(&self, id: &ObjectId) -> Option<Cached> {
        self.tables.lock().expect("cache lock").get(id)
    }

    fn keep(&self, id: ObjectId, cached: Cached) {
        let weight = match &cached {
            Ok(table) => table.weight(&id),
            Err(reason) => std::mem::size_of::<ObjectId>() + reason.len() + 128,
        };
        let mut tables = self.tables.lock().expect("cache lock");
        tables.insert(Arc::new(id), cached, weight);
    }
}

impl IndexService {
    /// The keyframe table of `segment`'s object: kept from an earlier
    /// probe, or read whole (when at most [`MAX_PROBED_BYTES`]) and probed
    /// off the async runtime.
    pub(in crate::service) async fn keyframe_table(
        &self,
        segment: &Segment,
    ) -> Result<Arc<KeyframeTable>, TableError> {
        let id = ObjectId {
            endpoint: segment.endpoint.clone(),
            bucket: segment.bucket.clone(),
            object: segment.object.clone(),
        };
        if let Some(cached) = self.keyframes.get(&id) {
            return cached.map_err(TableError::Unusable);
        }
        let _permit = self
            .keyframes
            .probes
            .acquire()
            .await
            .map_err(|_| TableError::Unavailable("the service is stopping".into()))?;
        // Another request may have probed it while this one waited.
        if let Some(cached) = self.keyframes.get(&id) {
            return cached.map_err(TableError::Unusable);
        }
        let bytes = self.read_whole(segment).await?;
        let probed = tokio::task::spawn_blocking(move || {
            let total_len = bytes.len() as u64;
            media::probe(&bytes).map(|mut probe| {
                probe.keyframes.shrink_to_fit();
                KeyframeTable { probe, total_len }
            })
        })
        .await
        .map_err(|err| TableError::Unusable(format!("probing it failed: {err}").into()))?;
        let cached: Cached = match probed {
            Ok(table) => Ok(Arc::new(table)),
            Err(err) => Err(format!("probing it failed: {err}").into()),
        };
        self.keyframes.keep(id, cached.clone());
        cached.map_err(TableError::Unusable)
    }

    /// The whole object, when it is not larger than [`MAX_PROBED_BYTES`]:
    /// a size the catalog knows saves asking object storage first.
    async fn read_whole(&self, segment: &Segment) -> Result<bytes::Bytes, TableError> {
        let (endpoint, bucket, key) = (&segment.endpoint, &segment.bucket, &segment.object);
        if !self.storage.has_endpoint(endpoint) {
            return Err(TableError::Unusable(
                format!("endpoint {endpoint} is not one this service reads from").into(),
            ));
        }
        let too_large = |size: u64| {
            TableError::Unusable(
                format!("{size} bytes is more than the {MAX_PROBED_BYTES} a segment may have to be read whole").into(),
            )
        };
        let mut size = segment.size;
        if size == 0 {
            size = self
                .storage
                .head(endpoint, bucket, key)
                .await
                .map_err(read_error)?
                .size;
        }
        if size > MAX_PROBED_BYTES {
            return Err(too_large(size));
        }
        let object = self
            .storage
            .get(
                endpoint,
                bucket,
                key,
                Some(ByteRange::First(MAX_PROBED_BYTES)),
            )
            .await
            .map_err(read_error)?;
        if object.total_len > MAX_PROBED_BYTES {
            return Err(too_large(object.total_len));
        }
        Ok(object.body)
    }
}

fn read_error(err: StorageError) -> TableError {
    match err {
        StorageError::Unreachable(_) | StorageError::Transient(_) => {
            TableError::Unavailable(format!("reading it failed: {err}"))
        }
        StorageError::NotFound | StorageError::Rejected(_) => {
            TableError::Unusable(format!("reading it failed: {err}").into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::VideoCodec;

    #[test]
    fn a_six_second_segment_weighs_about_650_bytes() {
        let id = ObjectId {
            endpoint: "oss-cn-shanghai.aliyuncs.com".into(),
            bucket: "records".into(),
            object: "live/cam1/2026-11-25/100000.ts".into(),
        };
        let keyframe = Keyframe {
            offset: 564,
            tables_offset: Some(188),
            tables_end: Some(564),
            end: 30_000,
            pts: 0,
        };
        let table = KeyframeTable {
            probe: Probe {
                video_pid: 256,
                codec: VideoCodec::H264,
                width: 1280,
                height: 720,
                codec_string: "avc1.64001F".into(),
                first_pts: 0,
                last_pts: 6 * 90_000,
                duration_micros: 6_000_000,
                frames: 150,
                keyframes: vec![keyframe; 6],
            },
            total_len: 3_000_000,
        };
        let weight = table.weight(&id);
        assert!((550..=750).contains(&weight), "{weight} bytes");
        // What the cache's documentation promises it holds.
        assert!(CACHE_BYTES / weight >= 45_000, "{weight} bytes");
    }
}
