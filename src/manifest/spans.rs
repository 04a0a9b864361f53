//! Continuous recordings: segments back to back in one endpoint and bucket,
//! as DescribeLiveStreamRecordContent reports them.

use super::{MICROS_PER_SECOND, Micros, Segment};

/// Default longest hole inside one span.
pub const DEFAULT_SPAN_GAP: Micros = 500_000;

/// One continuous recording.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub start: Micros,
    pub end: Micros,
    /// Sum of the segments' durations.
    pub media: Micros,
    pub endpoint: String,
    pub bucket: String,
    /// The longest `/`-ended prefix of every object key in the span.
    pub object_prefix: String,
}

impl Span {
    pub fn duration_seconds(&self) -> f64 {
        self.media as f64 / MICROS_PER_SECOND as f64
    }
}

/// The longest prefix of `a` and `b` that ends at a `/`.
fn shared_directory<'a>(a: &'a str, b: &str) -> &'a str {
    let common = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    match a[..common].rfind('/') {
        Some(slash) => &a[..=slash],
        None => "",
    }
}

fn directory(key: &str) -> &str {
    key.rfind('/').map_or("", |slash| &key[..=slash])
}

/// Groups start-sorted segments into spans: a hole longer than `max_gap`,
/// or another endpoint or bucket, starts a new span. Overlapping segments
/// (two recorders) stay in one span.
pub fn spans(segments: &[Segment], max_gap: Micros) -> Vec<Span> {
    let mut spans: Vec<Span> = Vec::new();
    for segment in segments {
        if let Some(span) = spans.last_mut() {
            let joins = segment.start.saturating_sub(span.end) <= max_gap
                && segment.endpoint == span.endpoint
                && segment.bucket == span.bucket;
            if joins {
                span.end = span.end.max(segment.end());
                span.media = span.media.saturating_add(segment.duration);
                let prefix = shared_directory(&span.object_prefix, &segment.object).len();
                span.object_prefix.truncate(prefix);
                continue;
            }
        }
        spans.push(Span {
            start: segment.start,
            end: segment.end(),
            media: segment.duration,
            endpoint: segment.endpoint.clone(),
            bucket: segment.bucket.clone(),
            object_prefix: directory(&segment.object).to_string(),
        });
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Format;

    fn seg(object: &str, start_ms: i64, duration_ms: i64) -> Segment {
        Segment {
            endpoint: "e".into(),
            bucket: "b".into(),
            object: object.into(),
            start: start_ms * 1000,
            duration: duration_ms * 1000,
            sequence: 0,
            width: 0,
            height: 0,
            format: Format::Ts,
            size: 0,
            media: None,
        }
    }

    #[test]
    fn holes_over_the_gap_split_spans() {
        let segments = vec![
            seg("live/a/1.ts", 0, 6000),
            seg("live/a/2.ts", 6500, 6000),   // 0.5 s hole: same span
            seg("live/a/3.ts", 13_001, 6000), // 0.501 s hole: new span
        ];
        let spans = spans(&segments, DEFAULT_SPAN_GAP);
        assert_eq!(spans.len(), 2);
        assert_eq!(
            (spans[0].start, spans[0].end, spans[0].media),
            (0, 12_500_000, 12_000_000)
        );
        assert_eq!(spans[0].object_prefix, "live/a/");
        assert_eq!(spans[1].start, 13_001_000);
        assert_eq!(spans[1].duration_seconds(), 6.0);
    }

    #[test]
    fn a_bucket_change_splits_and_prefixes_shrink_to_directories() {
        let mut moved = seg("live/a/3.ts", 12_000, 6000);
        moved.bucket = "other".into();
        let segments = vec![
            seg("live/a/x/1.ts", 0, 6000),
            seg("live/a/y/2.ts", 6000, 6000),
            moved,
        ];
        let found = spans(&segments, DEFAULT_SPAN_GAP);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].object_prefix, "live/a/");
        assert_eq!(found[1].bucket, "other");
        assert_eq!(
            spans(&[seg("a.ts", 0, 1), seg("b.ts", 1, 1)], 0)[0].object_prefix,
            ""
        );
        assert!(spans(&[], DEFAULT_SPAN_GAP).is_empty());
    }

    #[test]
    fn overlapping_segments_stay_in_one_span() {
        let segments = vec![
            seg("a/1.ts", 0, 10_000),
            seg("a/2.ts", 2000, 3000),
            seg("a/3.ts", 10_200, 1000),
        ];
        let spans = spans(&segments, DEFAULT_SPAN_GAP);
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].end, 11_200_000);
    }

    #[test]
    fn extreme_times_saturate_instead_of_overflowing() {
        let mut late = seg("a/1.ts", 0, 10);
        late.start = Micros::MAX - 5;
        late.duration = Micros::MAX;
        let mut early = seg("a/0.ts", 0, 10);
        early.start = Micros::MIN;
        let found = spans(&[early, late.clone()], DEFAULT_SPAN_GAP);
        assert_eq!(found.len(), 2);
        assert_eq!(found[1].end, Micros::MAX);
        let joined = spans(&[late.clone(), late], DEFAULT_SPAN_GAP);
        assert_eq!(joined.len(), 1);
        assert_eq!(joined[0].media, Micros::MAX);
    }
}
