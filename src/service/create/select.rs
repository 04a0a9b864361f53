//! The catalog reads of a Create: the streams a plan names, and rule 7's
//! selection of their segments.

use super::super::{IndexService, stream_name};
use super::plan::Plan;
use crate::catalog::Stream;
use crate::error::ApiResult;
use crate::manifest::selection::Selection;
use crate::manifest::{Micros, Segment};

impl IndexService {
    /// What the catalog holds of each stream of `plan`, in its order.
    pub(super) async fn find_streams(&self, plan: &Plan) -> ApiResult<Vec<Option<Stream>>> {
        let names: Vec<_> = plan
            .streams
            .iter()
            .map(|name| stream_name(&plan.domain_name, &plan.app_name, name))
            .collect();
        Ok(self.catalog.streams(&names).await?)
    }

    /// Rule 7 for each stream: its segments of the range, bounded by the
    /// cap.
    pub(super) async fn select_all(
        &self,
        plan: &Plan,
        streams: &[Stream],
        now: Micros,
    ) -> ApiResult<Vec<Vec<Segment>>> {
        let mut selected = Vec::with_capacity(streams.len());
        for stream in streams {
            selected.push(self.select(plan, stream, now).await?);
        }
        Ok(selected)
    }

    async fn select(&self, plan: &Plan, stream: &Stream, now: Micros) -> ApiResult<Vec<Segment>> {
        let (start, end) = (plan.start, plan.end);
        let included = plan.takes_segment_at_end();
        // The segment running at EndTime ends at most one segment later.
        let scan_until = if included {
            end.saturating_add(stream.longest_segment)
        } else {
            end
        };
        // Pages come from the engine off the runtime; offering one page's
        // segments is short, so a long range yields between pages.
        let selection = Selection::new(start, end, included, self.max_segments_per_manifest);
        let selection = self
            .catalog
            .scan_all(stream.id, start, scan_until, now, selection)
            .await?;
        selection.finish()
    }
}
