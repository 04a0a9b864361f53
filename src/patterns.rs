//! `*`-wildcard patterns, as accounts name their domains and buckets and as
//! RAM statements name actions and resources: whether a pattern matches a
//! name, whether two patterns can match one name, and a set of patterns
//! indexed for both questions. Pure, no I/O.

use std::collections::HashMap;

/// Whether `pattern` matches `text`; `*` matches any run of characters,
/// the empty run included. A `*` in `text` is an ordinary character, so a
/// request cannot widen its own scope.
pub fn matches(pattern: &str, text: &str) -> bool {
    let (pattern, text) = (pattern.as_bytes(), text.as_bytes());
    let (mut p, mut t) = (0, 0);
    // Position after the last `*` seen, and the text position it matched to.
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            backtrack = Some((p + 1, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((star_next, star_text)) = backtrack {
            p = star_next;
            t = star_text + 1;
            backtrack = Some((star_next, star_text + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// Whether some name matches both patterns, letters compared without
/// regard to case (host names are case-insensitive, so `A.example.com`
/// and `*.EXAMPLE.COM` name the same hosts).
///
/// Dynamic programming over the two patterns: `both[i][j]` says whether
/// the rests `a[i..]` and `b[j..]` have a common match. A `*` on either
/// side either matches nothing more, or swallows the other side's next
/// item (a letter, or everything the other side's `*` could produce).
pub fn overlap(a: &str, b: &str) -> bool {
    let a = a.to_ascii_lowercase().into_bytes();
    let b = b.to_ascii_lowercase().into_bytes();
    let (n, m) = (a.len(), b.len());
    let mut both = vec![vec![false; m + 1]; n + 1];
    both[n][m] = true;
    for i in (0..=n).rev() {
        for j in (0..=m).rev() {
            if i == n && j == m {
                continue;
            }
            let star_a = i < n && a[i] == b'*';
            let star_b = j < m && b[j] == b'*';
            both[i][j] = if star_a || star_b {
                (star_a && (both[i + 1][j] || (j < m && both[i][j + 1])))
                    || (star_b && (both[i][j + 1] || (i < n && both[i + 1][j])))
            } else {
                i < n && j < m && a[i] == b[j] && both[i + 1][j + 1]
            };
        }
    }
    both[0][0]
}

/// The shapes of pattern a set indexes by hash: the shapes domains take.
enum Shape<'a> {
    /// No `*`: one name.
    Exact(&'a str),
    /// One `*`, in front: every name ending in the rest (`*.example.com`).
    Suffix(&'a str),
    Other,
}

fn shape(pattern: &str) -> Shape<'_> {
    match pattern.strip_prefix('*') {
        _ if !pattern.contains('*') => Shape::Exact(pattern),
        Some(rest) if !rest.contains('*') => Shape::Suffix(rest),
        _ => Shape::Other,
    }
}

/// Patterns, each with a tag (who owns it), indexed so that the patterns
/// matching a name are found without trying every one: exact names and
/// `*suffix` patterns by hash, patterns of any other shape one by one.
#[derive(Debug)]
pub struct PatternSet<T> {
    exact: HashMap<String, Vec<T>>,
    /// `*suffix` patterns by their suffix.
    suffixes: HashMap<String, Vec<T>>,
    /// The lengths of those suffixes, so a name is looked up at those
    /// lengths only.
    suffix_lens: Vec<usize>,
    other: Vec<(String, T)>,
}

impl<T: Copy> PatternSet<T> {
    pub fn new(patterns: impl IntoIterator<Item = (String, T)>) -> PatternSet<T> {
        let mut set = PatternSet {
            exact: HashMap::new(),
            suffixes: HashMap::new(),
            suffix_lens: Vec::new(),
            other: Vec::new(),
        };
        for (pattern, tag) in patterns {
            match shape(&pattern) {
                Shape::Exact(name) => set.exact.entry(name.to_string()).or_default().push(tag),
                Shape::Suffix(suffix) => {
                    set.suffix_lens.push(suffix.len());
                    set.suffixes
                        .entry(suffix.to_string())
                        .or_default()
                        .push(tag);
                }
                Shape::Other => set.other.push((pattern, tag)),
            }
        }
        set.suffix_lens.sort_unstable();
        set.suffix_lens.dedup();
        set
    }

    /// The tags of every pattern that matches `name`.
    pub fn matching(&self, name: &str) -> Vec<T> {
        let mut tags: Vec<T> = self.exact.get(name).cloned().unwrap_or_default();
        tags.extend(self.with_suffix_of(name));
        tags.extend(
            self.other
                .iter()
                .filter(|(pattern, _)| matches(pattern, name))
                .map(|(_, tag)| *tag),
        );
        tags
    }

    /// The tags of the `*suffix` patterns whose suffix ends `name`.
    fn with_suffix_of<'s>(&'s self, name: &'s str) -> impl Iterator<Item = T> + 's {
        self.suffix_lens
            .iter()
            .take_while(move |len| **len <= name.len())
            .filter_map(move |len| name.get(name.len() - len..))
            .filter_map(|suffix| self.suffixes.get(suffix))
            .flatten()
            .copied()
    }

    /// A pair of patterns, given as (pattern, tag), that can match one name
    /// and whose tags `differ` says are in conflict: the first such pair
    /// found. Each pattern is compared through the index where its shape
    /// allows, so a set of exact names and `*suffix` patterns is checked in
    /// about linear time.
    pub fn first_overlap(
        patterns: &[(String, T)],
        differ: impl Fn(T, T) -> bool,
    ) -> Option<(T, T)> {
        let set = PatternSet::new(patterns.iter().cloned());
        for (pattern, tag) in patterns {
            let candidates: Vec<T> = match shape(pattern) {
                Shape::Exact(name) => set.matching(name),
                // `*x` and `*y` overlap when one ends the other; the longer
                // of the two finds the shorter here.
                Shape::Suffix(suffix) => set.with_suffix_of(suffix).collect(),
                Shape::Other => patterns
                    .iter()
                    .filter(|(other, _)| overlap(pattern, other))
                    .map(|(_, other_tag)| *other_tag)
                    .collect(),
            };
            if let Some(other) = candidates.into_iter().find(|other| differ(*tag, *other)) {
                return Some((*tag, other));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_like_ram() {
        assert!(matches("*", ""));
        assert!(matches("live:*", "live:CreateLiveStreamRecordIndexFiles"));
        assert!(matches(
            "live:Describe*",
            "live:DescribeLiveStreamRecordContent"
        ));
        assert!(!matches(
            "live:Describe*",
            "live:DeleteLiveStreamRecordIndexFiles"
        ));
        assert!(matches(
            "acs:cdn:*:42:domain/*",
            "acs:cdn:*:42:domain/example.com"
        ));
        assert!(!matches(
            "acs:cdn:*:42:domain/*",
            "acs:cdn:*:43:domain/example.com"
        ));
        assert!(matches("a*b*c", "axxbyyc"));
        assert!(!matches("a*b*c", "axxbyy"));
        assert!(matches("*.example.com", "live.example.com"));
        assert!(!matches("example.com", "example.com.evil"));
        assert!(!matches(
            "acs:cdn:*:42:domain/a.com",
            "acs:cdn:*:42:domain/*"
        ));
    }

    #[test]
    fn overlapping_shapes() {
        // exact vs exact
        assert!(overlap("a.example.com", "a.example.com"));
        assert!(overlap("a.example.com", "A.Example.COM"));
        assert!(!overlap("a.example.com", "b.example.com"));
        // exact vs wildcard
        assert!(overlap("a.example.com", "*.example.com"));
        assert!(overlap("*.example.com", "a.example.com"));
        assert!(overlap("a.example.com", "*"));
        assert!(overlap("a.example.com", "a.*.com"));
        assert!(!overlap("example.com", "*.example.com"));
        assert!(!overlap("a.example.org", "*.example.com"));
        // wildcard vs wildcard
        assert!(overlap("*.example.com", "*.com"));
        assert!(overlap("*.example.com", "live.*"));
        assert!(overlap("a*", "*b"));
        assert!(overlap("*.a.com", "*.A.COM"));
        assert!(overlap("x*y*z", "*y*"));
        assert!(!overlap("*.example.com", "*.example.org"));
        assert!(!overlap("a*", "b*"));
        assert!(!overlap("*a", "*b"));
        assert!(!overlap("live.*.com", "*.example.org"));
    }

    #[test]
    fn overlap_agrees_with_matching_on_small_alphabets() {
        // Every pattern of up to 4 items over {a, b, *}: two patterns
        // overlap exactly when some name matches both.
        let alphabet = [b'a', b'b', b'*'];
        let mut patterns = vec![String::new()];
        for len in 1..=4 {
            let mut index = vec![0; len];
            loop {
                patterns.push(index.iter().map(|&i| alphabet[i] as char).collect());
                let mut k = 0;
                while k < len && index[k] == 2 {
                    index[k] = 0;
                    k += 1;
                }
                if k == len {
                    break;
                }
                index[k] += 1;
            }
        }
        // Every name of up to 8 letters: a common match needs at most the
        // letters of both patterns.
        let names: Vec<String> = (0..=8u32)
            .flat_map(|len| {
                (0..1u32 << len).map(move |bits| {
                    (0..len)
                        .map(|k| if bits >> k & 1 == 1 { 'b' } else { 'a' })
                        .collect()
                })
            })
            .collect();
        for a in &patterns {
            for b in &patterns {
                let witness = names.iter().any(|n| matches(a, n) && matches(b, n));
                assert_eq!(overlap(a, b), witness, "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn a_set_finds_what_matching_finds() {
        let patterns = [
            "a.example.com",
            "*.example.com",
            "*example.com",
            "*",
            "live.*.com",
            "*.b.example.com",
            "",
        ];
        let set = PatternSet::new(patterns.iter().enumerate().map(|(i, p)| (p.to_string(), i)));
        for name in [
            "a.example.com",
            "x.b.example.com",
            "example.com",
            "myexample.com",
            "live.x.com",
            "",
            "com",
        ] {
            let mut found = set.matching(name);
            found.sort_unstable();
            let expected: Vec<usize> = (0..patterns.len())
                .filter(|i| matches(patterns[*i], name))
                .collect();
            assert_eq!(found, expected, "{name:?}");
        }
    }

    #[test]
    fn first_overlap_agrees_with_pairwise_overlap() {
        let pool = [
            "a.example.com",
            "b.example.com",
            "*.example.com",
            "*.example.org",
            "*.b.example.com",
            "example.com",
            "*ample.com",
            "live.*",
            "x*y",
            "*.net",
            "a.example.net",
        ];
        // Every pair of the pool given to two owners, each with a third
        // pattern of its own that overlaps nothing of the other.
        for a in pool {
            for b in pool {
                let patterns = vec![
                    (a.to_string(), 1),
                    ("own-one.test".to_string(), 1),
                    (b.to_string(), 2),
                    ("own-two.test".to_string(), 2),
                ];
                let found = PatternSet::first_overlap(&patterns, |x, y| x != y);
                assert_eq!(found.is_some(), overlap(a, b), "{a} vs {b}: {found:?}");
            }
        }
        let many: Vec<(String, usize)> = (0..20_000)
            .flat_map(|i| {
                [
                    (format!("tenant{i}.example.com"), i),
                    (format!("*.tenant{i}.example.com"), i),
                ]
            })
            .collect();
        assert_eq!(PatternSet::first_overlap(&many, |x, y| x != y), None);
    }
}
