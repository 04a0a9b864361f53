//! The catalog: segments of every stream, the metadata of every manifest
//! and the answers to ClientTokens. This module is the contract the
//! service relies on, [`Catalog`]; each engine is a module of its own that
//! implements it:
//! - [`sled_engine`]: the embedded default, one process owning a sled
//!   directory.
//! - [`postgres`]: PostgreSQL, a catalog that replicas share.
//!
//! The contract is shaped for an engine across a network: a request makes
//! one call per step (a whole Register batch, a whole Create commit, a page
//! of a scan), never one per segment, and no engine's types appear in it.
//! `tests/catalog_contract/` holds the suite every engine must pass.

pub mod blocks;
pub mod postgres;
pub mod records;
pub mod sled_engine;
pub mod transfer;

use async_trait::async_trait;

use crate::error::ApiError;
use crate::manifest::{Micros, Segment};

pub use records::{ManifestRecord, TokenRecord};

/// A ClientToken's answer is kept this long after the first request.
pub const TOKEN_RETENTION: Micros = crate::manifest::MICROS_PER_DAY;
/// Segments a scan returns per call at most, whatever it is asked for:
/// bounds the memory of one page.
pub const MAX_SCAN_PAGE: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The engine failed on the work itself (a refused statement, data it
    /// cannot store): trying again will not help.
    #[error("catalog storage failed: {0}")]
    Storage(String),
    /// The engine could not be reached or did not answer in time (a lost
    /// connection, no free connection, a statement timeout, a conflict
    /// the database gave up on): the same request may succeed later.
    #[error("catalog unavailable: {0}")]
    Unavailable(String),
    #[error("catalog data is corrupt: {0}")]
    Corrupt(String),
}

/// UNAVAILABLE tells a client to retry, later or on another replica;
/// INTERNAL that retrying is of no use.
impl From<CatalogError> for ApiError {
    fn from(err: CatalogError) -> ApiError {
        match err {
            CatalogError::Unavailable(_) => ApiError::unavailable(err),
            CatalogError::Storage(_) | CatalogError::Corrupt(_) => ApiError::internal(err),
        }
    }
}

/// The three names that identify a stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamName {
    pub domain: String,
    pub app: String,
    pub stream: String,
}

/// What the catalog knows of a stream that has segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stream {
    /// The engine's id of the stream, stable for its lifetime.
    pub id: u64,
    /// Longest segment ever registered: the "one segment" of the range rule.
    pub longest_segment: Micros,
}

/// What a registration did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RegisterOutcome {
    pub accepted: u32,
    pub duplicates: u32,
}

/// The answer to a request sent with a ClientToken, to be committed with
/// the records the request adds.
#[derive(Debug, Clone)]
pub struct TokenAnswer {
    /// Account, operation and token.
    pub key: Vec<u8>,
    pub record: TokenRecord,
}

/// Encodes a Register's response for an outcome.
pub type EncodeResponse = Box<dyn Fn(&RegisterOutcome) -> Vec<u8> + Send + Sync>;

/// The answer to a Register sent with a ClientToken, made inside the commit
/// from what the registration did.
pub struct RegisterAnswer {
    /// Account, operation and token.
    pub key: Vec<u8>,
    /// SHA-256 of the request without its token.
    pub fingerprint: Vec<u8>,
    pub created: Micros,
    /// Encodes the response for an outcome; an engine that retries its
    /// transaction may call it more than once.
    pub response: EncodeResponse,
}

impl RegisterAnswer {
    pub fn answer(&self, outcome: &RegisterOutcome) -> TokenAnswer {
        TokenAnswer {
            key: self.key.clone(),
            record: TokenRecord {
                fingerprint: self.fingerprint.clone(),
                created: self.created,
                response: (self.response)(outcome),
            },
        }
    }
}

/// How a write guarded by a ClientToken ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Commit<T> {
    /// Written, with the token's answer if one was given.
    Done(T),
    /// The token already had a live answer (another request with it
    /// committed first, perhaps on another replica): nothing was written,
    /// and this is that answer.
    Answered(TokenRecord),
}

/// Where a scan by end time starts, exclusive: segments are ordered by
/// (end, bucket, object), which is unique among a stream's live segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanFrom {
    /// Every segment that ends after this instant.
    EndsAfter(Micros),
    /// Every segment after this one: the last of the previous page.
    Past {
        end: Micros,
        bucket: String,
        object: String,
    },
}

impl ScanFrom {
    /// The position right after `segment`.
    pub fn past(segment: &Segment) -> ScanFrom {
        ScanFrom::Past {
            end: segment.end(),
            bucket: segment.bucket.clone(),
            object: segment.object.clone(),
        }
    }

    /// Whether `segment` comes after this position.
    pub fn precedes(&self, segment: &Segment) -> bool {
        match self {
            ScanFrom::EndsAfter(after) => segment.end() > *after,
            ScanFrom::Past {
                end,
                bucket,
                object,
            } => {
                (
                    segment.end(),
                    segment.bucket.as_str(),
                    segment.object.as_str(),
                ) > (*end, bucket.as_str(), object.as_str())
            }
        }
    }
}

/// Takes the segments of a scan one at a time: a Create's
/// selection, the spans of a listing. An engine that can hand segments
/// over as it reads them (see [`Catalog::scan_into`]) saves holding pages.
pub trait SegmentSink: Send + 'static {
    fn offer(&mut self, segment: Segment);
    /// For [`Catalog::scan_all`] to give the sink back as its own type.
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any>;
}

impl SegmentSink for Vec<Segment> {
    fn offer(&mut self, segment: Segment) {
        self.push(segment);
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

impl SegmentSink for crate::manifest::selection::Selection {
    fn offer(&mut self, segment: Segment) {
        crate::manifest::selection::Selection::offer(self, segment);
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

/// Listing order by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Ascending,
    Descending,
}

/// Which manifests of a stream to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManifestQuery {
    pub stream_id: u64,
    /// Creation times, both inclusive.
    pub from: Micros,
    pub until: Micros,
    pub order: Order,
    /// Entries passed over before the page, and the page's size.
    pub skip: usize,
    pub take: usize,
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ManifestPage {
    /// Manifests of the whole time range.
    pub total: usize,
    pub records: Vec<ManifestRecord>,
}

/// What one sweep removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SweepReport {
    pub manifests: usize,
    pub segments: usize,
    pub tokens: usize,
}

impl SweepReport {
    /// Whether a kind filled its batch, so more may be waiting.
    pub fn maybe_more(&self, batch: usize) -> bool {
        self.manifests >= batch || self.segments >= batch || self.tokens >= batch
    }
}

/// Records held, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stored {
    pub segments: u64,
    pub manifests: u64,
}

/// Whether `segment` is past its retention at `now`.
pub fn segment_expired(segment: &Segment, now: Micros) -> bool {
    segment
        .start
        .saturating_add(crate::manifest::range::SEGMENT_RETENTION)
        <= now
}

/// The semantics the service relies on. Every time is given by the caller
/// (`now`), so retention follows the service's clock, and a test's.
///
/// Writes that return `Ok` are durable: they survive a crash of the
/// process (and, for an engine across a network, of the replica).
#[async_trait]
pub trait Catalog: Send + Sync + 'static {
    /// The streams with these names, in their order; `None` for a stream
    /// no segment was ever registered for.
    async fn streams(&self, names: &[StreamName]) -> Result<Vec<Option<Stream>>, CatalogError>;

    /// For each segment, whether the stream holds a live segment of the
    /// same (bucket, object): what [`Catalog::register`] would count as a
    /// duplicate. Read-only, so a caller can skip work for those.
    async fn registered(
        &self,
        name: &StreamName,
        segments: &[Segment],
        now: Micros,
    ) -> Result<Vec<bool>, CatalogError>;

    /// Adds a batch of one stream's segments in one atomic, durable commit,
    /// with the ClientToken's answer made from the outcome when `answer`
    /// is given. A segment whose (bucket, object) the stream holds live
    /// already, or that comes twice in the batch, is a duplicate whatever
    /// its times: it is counted and the stored copy stays. A copy past its
    /// 90 days is no duplicate: the new one replaces it. A stream's
    /// `longest_segment` grows to the longest accepted segment. Concurrent
    /// registrations of one stream each see the other's segments as
    /// duplicates, never both accept one.
    async fn register(
        &self,
        name: &StreamName,
        segments: Vec<Segment>,
        now: Micros,
        answer: Option<RegisterAnswer>,
    ) -> Result<Commit<RegisterOutcome>, CatalogError>;

    /// Up to `limit` (at most [`MAX_SCAN_PAGE`]) live segments of a stream
    /// that come after `from` and end at or before `until`, in (end,
    /// bucket, object) order. A shorter page than asked means the range is
    /// done. Segments registered while a caller pages never make it see one
    /// segment twice.
    async fn scan_by_end(
        &self,
        stream_id: u64,
        from: &ScanFrom,
        until: Micros,
        now: Micros,
        limit: usize,
    ) -> Result<Vec<Segment>, CatalogError>;

    /// Offers `sink` each live segment of a stream that ends in (after,
    /// until] once, and gives it back. The order is not to be relied on
    /// (pages of [`Catalog::scan_by_end`] are ordered). By default a page at
    /// a time; an engine that reads locally may hand segments over as it
    /// decodes them.
    async fn scan_into(
        &self,
        stream_id: u64,
        after: Micros,
        until: Micros,
        now: Micros,
        mut sink: Box<dyn SegmentSink>,
    ) -> Result<Box<dyn SegmentSink>, CatalogError> {
        let mut from = ScanFrom::EndsAfter(after);
        loop {
            let page = self
                .scan_by_end(stream_id, &from, until, now, MAX_SCAN_PAGE)
                .await?;
            let done = page.len() < MAX_SCAN_PAGE;
            if let Some(last) = page.last() {
                from = ScanFrom::past(last);
            }
            page.into_iter().for_each(|segment| sink.offer(segment));
            if done {
                return Ok(sink);
            }
        }
    }

    /// Stores a manifest and, when given, its ClientToken's answer in one
    /// durable commit: both or neither, and once only: if the token has a
    /// live answer already, nothing is written.
    async fn put_manifest(
        &self,
        record: &ManifestRecord,
        answer: Option<TokenAnswer>,
    ) -> Result<Commit<()>, CatalogError>;

    /// The stream with this name, made if missing. Registering makes
    /// streams too; moving a catalog needs this for a stream whose
    /// segments have all expired while its manifests still list.
    async fn ensure_stream(&self, name: &StreamName, now: Micros) -> Result<Stream, CatalogError>;

    /// Stores a ClientToken's answer by itself, once, as
    /// [`Catalog::put_manifest`] does with a manifest: for moving a
    /// catalog, whose Register answers have no manifest.
    async fn put_token(&self, answer: TokenAnswer) -> Result<Commit<()>, CatalogError>;

    /// The live manifests with these ids, in their order (`None` for an
    /// unknown or expired id). A manifest is live while `now < expires`.
    async fn manifests(
        &self,
        ids: &[uuid::Uuid],
        now: Micros,
    ) -> Result<Vec<Option<ManifestRecord>>, CatalogError>;

    /// Removes these manifests in one durable commit; ids not stored are
    /// passed over.
    async fn delete_manifests(&self, records: &[ManifestRecord]) -> Result<(), CatalogError>;

    /// For each record, whether another live manifest names the same
    /// playlist object (endpoint, bucket, key), so that deleting the
    /// object would break it.
    async fn playlists_shared(
        &self,
        records: &[ManifestRecord],
        now: Micros,
    ) -> Result<Vec<bool>, CatalogError>;

    /// A page of a stream's live manifests created in [from, until], in
    /// creation order (ties by id), with the count of the whole range.
    /// Manifests added while a caller pages may shift later pages; none
    /// already listed is listed again in the same order.
    async fn list_manifests(
        &self,
        query: ManifestQuery,
        now: Micros,
    ) -> Result<ManifestPage, CatalogError>;

    /// The live answer stored under a token key: one committed less than
    /// [`TOKEN_RETENTION`] before `now`. Only durable answers are returned.
    async fn token(&self, key: &[u8], now: Micros) -> Result<Option<TokenRecord>, CatalogError>;

    /// Removes expired records, oldest first, in bounded steps: each kind
    /// stops once `batch` of it are removed (an engine may finish the unit
    /// of storage it is in, such as a minute of a stream's segments), so
    /// [`SweepReport::maybe_more`] tells whether to call again. Segments go
    /// 90 days after their start (an engine may keep one until every
    /// segment stored with it has expired), manifests at their `expires`,
    /// token answers 24 hours after they were made. Reads are exact at
    /// those instants whether or not a sweep has run; a sweep lost in a
    /// crash only comes again.
    async fn sweep(&self, now: Micros, batch: usize) -> Result<SweepReport, CatalogError>;

    /// Makes every write so far durable (before the process exits).
    async fn sync(&self) -> Result<(), CatalogError>;

    /// Whether the engine answers: a cheap read.
    async fn check(&self) -> Result<(), CatalogError>;

    /// Records held, expired ones included until swept. Never scans.
    fn stored(&self) -> Stored;
}

impl dyn Catalog {
    /// The stream with this name.
    pub async fn stream(&self, name: &StreamName) -> Result<Option<Stream>, CatalogError> {
        let mut found = self.streams(std::slice::from_ref(name)).await?;
        Ok(found.pop().flatten())
    }

    /// The live manifest with this id.
    pub async fn manifest(
        &self,
        id: &uuid::Uuid,
        now: Micros,
    ) -> Result<Option<ManifestRecord>, CatalogError> {
        let mut found = self.manifests(std::slice::from_ref(id), now).await?;
        Ok(found.pop().flatten())
    }

    /// [`Catalog::scan_into`] for a sink of a known type, given back as
    /// that type.
    pub async fn scan_all<S: SegmentSink>(
        &self,
        stream_id: u64,
        after: Micros,
        until: Micros,
        now: Micros,
        sink: S,
    ) -> Result<S, CatalogError> {
        let sink = self
            .scan_into(stream_id, after, until, now, Box::new(sink))
            .await?;
        match sink.into_any().downcast::<S>() {
            Ok(sink) => Ok(*sink),
            Err(_) => Err(CatalogError::Corrupt(
                "the engine gave back another sink than it was given".into(),
            )),
        }
    }
}
