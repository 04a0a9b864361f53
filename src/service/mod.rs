//! The operations of the service, free of gRPC: each takes the caller and a
//! request, applies the design's rules in order and returns a result or an
//! [`ApiError`](crate::error::ApiError).

mod create;
mod register;

use std::sync::Arc;

use crate::catalog::Catalog;
use crate::clock::Clock;
use crate::storage::Storage;

pub struct IndexService {
    pub catalog: Arc<Catalog>,
    pub storage: Storage,
    pub clock: Arc<dyn Clock>,
    /// Cap on the segments of one manifest.
    pub max_segments_per_manifest: usize,
}

/// Runs catalog work off the async runtime: sled reads may hit the disk.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> crate::error::ApiResult<T> + Send + 'static,
) -> crate::error::ApiResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| crate::error::ApiError::internal(format!("catalog task failed: {err}")))?
}
