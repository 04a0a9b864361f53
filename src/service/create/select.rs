//! The catalog reads of a Create: the streams a plan names, and rule 7's
//! selection of their segments.

use super::super::window::Window;
use super::super::{IndexService, stream_name};
use crate::catalog::Stream;
use crate::error::ApiResult;
use crate::manifest::selection::Selection;
use crate::manifest::{Micros, Segment};

impl IndexService {
    /// What the catalog holds of each of `streams`, in their order.
    pub(in crate::service) async fn find_streams(
        &self,
        domain: &str,
        app: &str,
        streams: &[String],
    ) -> ApiResult<Vec<Option<Stream>>> {
        let names: Vec<_> = streams
            .iter()
            .map(|name| stream_name(domain, app, name))
            .collect();
        Ok(self.catalog.streams(&names).await?)
    }

    /// Rule 7 for each stream: its segments of the range, bounded by the
    /// cap.
    pub(in crate::service) async fn select_all(
        &self,
        window: &Window,
        streams: &[Stream],
        now: Micros,
    ) -> ApiResult<Vec<Vec<Segment>>> {
        let mut selected = Vec::with_capacity(streams.len());
        for stream in streams {
            selected.push(self.select(window, stream, now).await?);
        }
        Ok(selected)
    }

    async fn select(
        &self,
        window: &Window,
        stream: &Stream,
        now: Micros,
    ) -> ApiResult<Vec<Segment>> {
        let (start, end) = (window.start, window.end);
        let included = window.takes_segment_at_end();
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
