//! The catalog reads of a Create: the streams a plan names, and rule 7's
//! selection of their segments.

use super::super::{IndexService, blocking, stream_name};
use super::plan::Plan;
use crate::catalog::StreamRecord;
use crate::error::ApiResult;
use crate::manifest::selection::Selection;
use crate::manifest::{Micros, Segment};

impl IndexService {
    /// What the catalog holds of each stream of `plan`, in its order.
    pub(super) fn find_streams(&self, plan: &Plan) -> ApiResult<Vec<Option<StreamRecord>>> {
        plan.streams
            .iter()
            .map(|name| {
                let name = stream_name(&plan.domain_name, &plan.app_name, name);
                Ok(self.catalog.stream(&name)?)
            })
            .collect()
    }

    /// Rule 7 for each stream: its segments of the range, bounded by the
    /// cap.
    pub(super) async fn select_all(
        &self,
        plan: &Plan,
        streams: &[StreamRecord],
        now: Micros,
    ) -> ApiResult<Vec<Vec<Segment>>> {
        let mut selected = Vec::with_capacity(streams.len());
        for stream in streams {
            selected.push(self.select(plan, stream, now).await?);
        }
        Ok(selected)
    }

    async fn select(
        &self,
        plan: &Plan,
        stream: &StreamRecord,
        now: Micros,
    ) -> ApiResult<Vec<Segment>> {
        let catalog = self.catalog.clone();
        let cap = self.max_segments_per_manifest;
        let (stream_id, start, end) = (stream.id, plan.start, plan.end);
        let included = plan.takes_segment_at_end();
        // The segment running at EndTime ends at most one segment later.
        let scan_until = if included {
            end.saturating_add(stream.longest_segment)
        } else {
            end
        };
        let select = move || {
            let mut selection = Selection::new(start, end, included, cap);
            catalog.scan_by_end(stream_id, start, scan_until, now, |segment| {
                selection.offer(segment)
            })?;
            selection.finish()
        };
        // Off the runtime whatever the range: a stream may hold any number
        // of segments in an hour.
        blocking(select).await
    }
}
