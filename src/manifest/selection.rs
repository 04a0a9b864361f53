//! Which segments a manifest holds, and the checks on that set (rule 7 of
//! the design's validation list).

use std::cmp::Ordering;

use super::time::format_request_time;
use super::{Format, Micros, Segment};
use crate::error::{ApiError, ApiResult, quote};

/// The selection rule: a segment belongs to the range when it ends inside
/// `(start, end]`; with `end_time_included` the segment still running at
/// `end` belongs too, so the playlist covers the whole range.
pub fn is_selected(
    seg_start: Micros,
    seg_end: Micros,
    start: Micros,
    end: Micros,
    end_time_included: bool,
) -> bool {
    let ended_inside = start < seg_end && seg_end <= end;
    let running_at_end = end_time_included && seg_start < end && end < seg_end;
    ended_inside || running_at_end
}

/// Collects the selected segments of a catalog scan with bounded memory.
///
/// Every candidate must be offered, even past the cap: the error a request
/// gets depends on facts (a non-TS segment, a second bucket) that a later
/// segment may reveal, and those errors come before RecordContentExceed.
/// The catalog holds each (bucket, object) of a stream once, so candidates
/// are distinct.
#[derive(Debug)]
pub struct Selection {
    start: Micros,
    end: Micros,
    end_time_included: bool,
    /// Most segments one manifest may hold.
    cap: usize,
    /// Selected segments while at most `cap`; emptied once the cap is
    /// exceeded, since the request then fails anyway.
    kept: Vec<Segment>,
    /// Every selected segment offered.
    selected: usize,
    /// The first selected segment that cannot go in a playlist.
    not_ts: Option<(String, Format)>,
    /// Endpoint and bucket of the first selected segment.
    location: Option<(String, String)>,
    /// The first endpoint and bucket seen that differ from `location`.
    other_location: Option<(String, String)>,
}

impl Selection {
    pub fn new(start: Micros, end: Micros, end_time_included: bool, cap: usize) -> Self {
        Selection {
            start,
            end,
            end_time_included,
            cap,
            kept: Vec::new(),
            selected: 0,
            not_ts: None,
            location: None,
            other_location: None,
        }
    }

    /// Takes one candidate from the scan; segments outside the range are
    /// ignored.
    pub fn offer(&mut self, seg: Segment) {
        let seg_end = seg.start.saturating_add(seg.duration);
        if !is_selected(
            seg.start,
            seg_end,
            self.start,
            self.end,
            self.end_time_included,
        ) {
            return;
        }
        self.selected += 1;
        if seg.format != Format::Ts && self.not_ts.is_none() {
            self.not_ts = Some((seg.object.clone(), seg.format));
        }
        match &self.location {
            None => self.location = Some((seg.endpoint.clone(), seg.bucket.clone())),
            Some((endpoint, bucket)) => {
                if self.other_location.is_none()
                    && (*endpoint != seg.endpoint || *bucket != seg.bucket)
                {
                    self.other_location = Some((seg.endpoint.clone(), seg.bucket.clone()));
                }
            }
        }
        if self.selected <= self.cap {
            self.kept.push(seg);
        } else if !self.kept.is_empty() {
            self.kept = Vec::new();
        }
    }

    /// The selected segments sorted by (start, end, object), or the error
    /// the set earns, checked in the design's order.
    pub fn finish(mut self) -> ApiResult<Vec<Segment>> {
        if self.selected == 0 {
            let rule = if self.end_time_included {
                "ends after StartTime or is running at EndTime"
            } else {
                "ends after StartTime and by EndTime"
            };
            return Err(ApiError::NoRecordContent(format!(
                "no recorded segment {rule} ({} to {})",
                format_request_time(self.start),
                format_request_time(self.end)
            )));
        }
        if let Some((object, format)) = &self.not_ts {
            return Err(ApiError::OperationNotSupport(format!(
                "segment {} is {}; only ts segments can be indexed",
                quote(object),
                format.name()
            )));
        }
        if let (Some((endpoint, bucket)), Some((other_endpoint, other_bucket))) =
            (&self.location, &self.other_location)
        {
            return Err(ApiError::ConfigChanged(format!(
                "the range holds segments in bucket {} at {} and in bucket {} at {}; \
                 one manifest can index only one",
                quote(bucket),
                quote(endpoint),
                quote(other_bucket),
                quote(other_endpoint)
            )));
        }
        if self.selected > self.cap {
            return Err(ApiError::RecordContentExceed(format!(
                "the range selects {} segments, more than the limit of {} per manifest",
                self.selected, self.cap
            )));
        }
        self.kept.sort_by(playlist_order);
        Ok(self.kept)
    }
}

/// Playlist order: by start, then end, then key, so the order does not
/// depend on the order of the scan.
fn playlist_order(a: &Segment, b: &Segment) -> Ordering {
    a.start
        .cmp(&b.start)
        .then_with(|| {
            a.start
                .saturating_add(a.duration)
                .cmp(&b.start.saturating_add(b.duration))
        })
        .then_with(|| a.object.cmp(&b.object))
        .then_with(|| a.endpoint.cmp(&b.endpoint))
        .then_with(|| a.bucket.cmp(&b.bucket))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Micros = 1_000_000;
    const START: Micros = 1_000 * SECOND;
    const END: Micros = 1_060 * SECOND;

    fn seg(object: &str, start: Micros, duration: Micros) -> Segment {
        Segment {
            endpoint: "oss-cn-shanghai.aliyuncs.com".into(),
            bucket: "live-bucket".into(),
            object: object.into(),
            start,
            duration,
            sequence: 0,
            width: 0,
            height: 0,
            format: Format::Ts,
            size: 0,
            media: None,
        }
    }

    fn select(end_time_included: bool, cap: usize, segs: Vec<Segment>) -> ApiResult<Vec<Segment>> {
        let mut selection = Selection::new(START, END, end_time_included, cap);
        for s in segs {
            selection.offer(s);
        }
        selection.finish()
    }

    fn objects(segs: &[Segment]) -> Vec<&str> {
        segs.iter().map(|s| s.object.as_str()).collect()
    }

    #[test]
    fn selection_boundaries() {
        for included in [false, true] {
            // Ends exactly at StartTime: it holds nothing of the range.
            assert!(!is_selected(
                START - 6 * SECOND,
                START,
                START,
                END,
                included
            ));
            assert!(is_selected(
                START - 6 * SECOND,
                START + 1,
                START,
                END,
                included
            ));
            // Ends exactly at EndTime.
            assert!(is_selected(END - 6 * SECOND, END, START, END, included));
            // Starts exactly at EndTime: it holds nothing of the range.
            assert!(!is_selected(END, END + 6 * SECOND, START, END, included));
            assert!(!is_selected(
                END + SECOND,
                END + 7 * SECOND,
                START,
                END,
                included
            ));
            assert!(!is_selected(
                START - 12 * SECOND,
                START - 6 * SECOND,
                START,
                END,
                included
            ));
        }
        // The segment running at EndTime is selected only on request.
        assert!(!is_selected(END - 1, END + 6 * SECOND, START, END, false));
        assert!(is_selected(END - 1, END + 6 * SECOND, START, END, true));
        assert!(is_selected(
            END - 3 * SECOND,
            END + 3 * SECOND,
            START,
            END,
            true
        ));
        // A segment spanning the whole range is the running one.
        assert!(!is_selected(START - 1, END + 1, START, END, false));
        assert!(is_selected(START - 1, END + 1, START, END, true));
    }

    #[test]
    fn selects_sorted() {
        let segs = vec![
            seg("c.ts", START + 12 * SECOND, 6 * SECOND),
            seg("before.ts", START - 6 * SECOND, 6 * SECOND),
            seg("a.ts", START, 6 * SECOND),
            seg("after.ts", END, 6 * SECOND),
            seg("running.ts", END - SECOND, 6 * SECOND),
            seg("b.ts", START + 6 * SECOND, 6 * SECOND),
        ];
        let selected = select(false, 100, segs.clone()).unwrap();
        assert_eq!(objects(&selected), ["a.ts", "b.ts", "c.ts"]);
        let selected = select(true, 100, segs).unwrap();
        assert_eq!(objects(&selected), ["a.ts", "b.ts", "c.ts", "running.ts"]);
    }

    #[test]
    fn ties_sort_by_end_then_object() {
        let segs = vec![
            seg("z.ts", START, 6 * SECOND),
            seg("y.ts", START, 4 * SECOND),
            seg("x.ts", START, 6 * SECOND),
        ];
        assert_eq!(
            objects(&select(false, 10, segs).unwrap()),
            ["y.ts", "x.ts", "z.ts"]
        );
    }

    #[test]
    fn nothing_selected() {
        match select(false, 10, vec![seg("after.ts", END, 6 * SECOND)]) {
            Err(ApiError::NoRecordContent(message)) => {
                assert!(message.contains("1970-01-01T00:16:40Z"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            select(true, 10, vec![]),
            Err(ApiError::NoRecordContent(_))
        ));
    }

    #[test]
    fn a_non_ts_segment_is_not_supported() {
        let mut flv = seg("b.flv", START + 6 * SECOND, 6 * SECOND);
        flv.format = Format::Flv;
        match select(false, 10, vec![seg("a.ts", START, 6 * SECOND), flv.clone()]) {
            Err(ApiError::OperationNotSupport(message)) => {
                assert!(
                    message.contains("b.flv") && message.contains("flv"),
                    "{message}"
                )
            }
            other => panic!("{other:?}"),
        }
        // An unselected non-TS segment does not matter.
        flv.start = END;
        assert!(select(false, 10, vec![seg("a.ts", START, 6 * SECOND), flv]).is_ok());
    }

    #[test]
    fn a_second_bucket_or_endpoint_is_a_changed_config() {
        let mut other_bucket = seg("b.ts", START + 6 * SECOND, 6 * SECOND);
        other_bucket.bucket = "other-bucket".into();
        match select(
            false,
            10,
            vec![seg("a.ts", START, 6 * SECOND), other_bucket],
        ) {
            Err(ApiError::ConfigChanged(message)) => {
                assert!(
                    message.contains("live-bucket") && message.contains("other-bucket"),
                    "{message}"
                )
            }
            other => panic!("{other:?}"),
        }
        let mut other_endpoint = seg("b.ts", START + 6 * SECOND, 6 * SECOND);
        other_endpoint.endpoint = "localhost:8333".into();
        assert!(matches!(
            select(
                false,
                10,
                vec![seg("a.ts", START, 6 * SECOND), other_endpoint]
            ),
            Err(ApiError::ConfigChanged(_))
        ));
    }

    #[test]
    fn too_many_segments() {
        let segs: Vec<Segment> = (0..11)
            .map(|i| seg(&format!("{i}.ts"), START + i * SECOND, SECOND))
            .collect();
        assert_eq!(select(false, 11, segs.clone()).unwrap().len(), 11);
        match select(false, 10, segs) {
            Err(ApiError::RecordContentExceed(message)) => {
                assert!(
                    message.contains("11 segments") && message.contains("limit of 10"),
                    "{message}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_come_in_the_documented_order() {
        let many = |n: i64| -> Vec<Segment> {
            (0..n)
                .map(|i| seg(&format!("{i}.ts"), START + i * SECOND, SECOND))
                .collect()
        };
        // Past the cap, then a non-TS and a second bucket: not-supported wins.
        let mut segs = many(20);
        let mut flv = seg("x.flv", START + 30 * SECOND, SECOND);
        flv.format = Format::Mp4;
        flv.bucket = "other-bucket".into();
        segs.push(flv);
        assert!(matches!(
            select(false, 5, segs),
            Err(ApiError::OperationNotSupport(_))
        ));
        // A second bucket found late, past the cap, still wins over the cap.
        let mut segs = many(200);
        let mut moved = seg("moved.ts", START + 59 * SECOND, SECOND);
        moved.bucket = "other-bucket".into();
        segs.push(moved);
        assert!(matches!(
            select(false, 5, segs),
            Err(ApiError::ConfigChanged(_))
        ));
    }

    #[test]
    fn memory_stays_bounded_past_the_cap() {
        let cap = 100;
        let mut selection = Selection::new(0, i64::MAX, false, cap);
        for i in 0..10_000 {
            selection.offer(seg(&format!("{i}.ts"), i * SECOND, SECOND));
            assert!(selection.kept.len() <= cap);
        }
        assert!(selection.kept.capacity() == 0);
        match selection.finish() {
            Err(ApiError::RecordContentExceed(message)) => {
                assert!(message.contains("10000 segments"), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_zero_cap_refuses_any_content() {
        assert!(matches!(
            select(false, 0, vec![seg("a.ts", START, SECOND)]),
            Err(ApiError::RecordContentExceed(_))
        ));
        assert!(matches!(
            select(false, 0, vec![]),
            Err(ApiError::NoRecordContent(_))
        ));
    }

    #[test]
    fn extreme_times_do_not_overflow() {
        let mut selection = Selection::new(i64::MAX - 10, i64::MAX, true, 10);
        selection.offer(seg("a.ts", i64::MAX - 5, i64::MAX));
        selection.offer(seg("b.ts", i64::MAX - 8, 3));
        assert_eq!(objects(&selection.finish().unwrap()), ["b.ts", "a.ts"]);
    }
}
