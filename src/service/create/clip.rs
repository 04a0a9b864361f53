//! Clipping, the step of a Create that reads media: a KEYFRAME clip trims
//! its end segments to keyframes, and a master playlist needs each
//! rendition's codec from a probe of its first segment.

use super::super::IndexService;
use super::super::probing::probe_object;
use super::super::window::{ClipMode, Window};
use crate::manifest::clip::{self, Cut};
use crate::manifest::playlist::Part;
use crate::manifest::{Micros, Segment};
use crate::media;

/// The playlist entries of one media playlist and what trimming did.
pub(in crate::service) struct Clip<'a> {
    pub parts: Vec<Part<'a>>,
    /// Whether any end was trimmed to a keyframe.
    pub trimmed: bool,
    /// Why an end kept its whole segment.
    pub note: String,
}

impl<'a> Clip<'a> {
    /// Every segment whole, as a SEGMENT clip has them.
    pub fn whole(segments: &'a [Segment]) -> Clip<'a> {
        Clip {
            parts: segments.iter().map(Part::whole).collect(),
            trimmed: false,
            note: String::new(),
        }
    }
}

/// What a probe of a rendition's first segment found, with the object's
/// size; `None` when it could not be read.
pub(in crate::service) type FirstProbe = Option<(media::Summary, u64)>;

impl IndexService {
    /// One clip per selected stream, in order.
    pub(in crate::service) async fn clip_all<'a>(
        &self,
        window: &Window,
        selected: &'a [Vec<Segment>],
    ) -> Vec<Clip<'a>> {
        let mut clips = Vec::with_capacity(selected.len());
        for segments in selected {
            clips.push(match window.clip_mode {
                ClipMode::Keyframe => {
                    self.keyframe_parts(segments, window.start, window.end)
                        .await
                }
                ClipMode::Segment => Clip::whole(segments),
            });
        }
        clips
    }

    /// What a master playlist says of each rendition beyond its segments:
    /// a probe of its first segment.
    pub(in crate::service) async fn probe_firsts(&self, clips: &[Clip<'_>]) -> Vec<FirstProbe> {
        let mut probes = Vec::with_capacity(clips.len());
        for clip in clips {
            let first = clip.parts[0].segment;
            let probed =
                probe_object(&self.storage, &first.endpoint, &first.bucket, &first.object).await;
            probes.push(probed.ok());
        }
        probes
    }

    /// The parts of a KEYFRAME clip: the first and last segments trimmed to
    /// the keyframes around the range, from their keyframe tables; an end
    /// that cannot be trimmed keeps its whole segment.
    async fn keyframe_parts<'a>(
        &self,
        segments: &'a [Segment],
        start: Micros,
        end: Micros,
    ) -> Clip<'a> {
        let mut clip = Clip::whole(segments);
        let last = segments.len() - 1;
        let cut_in = (segments[0].start < start).then_some(start);
        let cut_out = (segments[last].end() > end).then_some(end);
        let mut notes = Vec::new();
        let ends: Vec<(usize, Option<Micros>, Option<Micros>)> = if last == 0 {
            vec![(0, cut_in, cut_out)]
        } else {
            vec![(0, cut_in, None), (last, None, cut_out)]
        };
        for (index, cut_in, cut_out) in ends {
            if cut_in.is_none() && cut_out.is_none() {
                continue;
            }
            let segment = &segments[index];
            match self.cut_segment(segment, cut_in, cut_out).await {
                Ok(cut) => {
                    clip.parts[index] = Part {
                        segment,
                        start: cut.start,
                        duration: cut.duration,
                        byte_range: cut.byte_range,
                    };
                    clip.trimmed |= cut.byte_range.is_some();
                }
                Err(reason) => {
                    notes.push(format!("{}: whole segment kept: {reason}", segment.object))
                }
            }
        }
        clip.note = notes.join("; ");
        clip
    }

    /// Trims `segment` to its keyframes around the cuts, from its keyframe
    /// table (see [`super::super::keyframes`]).
    async fn cut_segment(
        &self,
        segment: &Segment,
        cut_in: Option<Micros>,
        cut_out: Option<Micros>,
    ) -> Result<Cut, String> {
        let table = self
            .keyframe_table(segment)
            .await
            .map_err(|err| err.to_string())?;
        clip::cut(segment, &table.probe, table.total_len, cut_in, cut_out)
    }
}
