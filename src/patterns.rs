//! `*`-wildcard patterns, as accounts name their domains and buckets and as
//! RAM statements name actions and resources: whether a pattern matches a
//! name, and whether two patterns can match one name. Pure, no I/O.

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
}
