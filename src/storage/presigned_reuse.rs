//! Presigned URLs reused for a while. A URL signed at an instant rounded
//! down to a step (and valid that much longer) is the same for every
//! playlist of that step: kept per object, it is signed once per step
//! rather than once per request, and the playlists holding it are the same
//! text, so their ETags match and caches answer 304.

use std::collections::HashMap;
use std::sync::Mutex;

use xxhash_rust::xxh3::Xxh3;

use crate::config::MAX_PRESIGN_EXPIRY_SECS;
use crate::manifest::{MICROS_PER_SECOND, Micros};

/// Longest step: a URL is signed at most this long before it is given.
const MAX_STEP_SECS: u32 = 300;
/// Objects whose signature is kept: about 100 bytes each, so some 20 MB
/// at most; beyond it, the signatures of past steps go first.
const MAX_KEPT: usize = 200_000;

/// When URLs given at an instant are signed, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signing {
    /// The instant signed at: the request's, rounded down to the step.
    pub at: Micros,
    /// `X-Amz-Expires`: the configured expiry plus the step, so a URL is
    /// valid at least the configured expiry after it is given.
    pub expires_secs: u32,
    /// The step: how long one URL is given out.
    pub step_secs: u32,
}

/// The step of an endpoint whose URLs are valid `expiry_secs`: a tenth of
/// it, at most [`MAX_STEP_SECS`], and short enough that the expiry plus
/// the step stays within what S3 accepts.
fn step_secs(expiry_secs: u32) -> u32 {
    (expiry_secs / 10)
        .min(MAX_STEP_SECS)
        .min(MAX_PRESIGN_EXPIRY_SECS.saturating_sub(expiry_secs))
}

/// How URLs of an endpoint valid `expiry_secs` are signed at `now`.
pub fn signing(now: Micros, expiry_secs: u32) -> Signing {
    let step_secs = step_secs(expiry_secs).max(1);
    let step = i64::from(step_secs) * MICROS_PER_SECOND;
    Signing {
        at: now - now.rem_euclid(step),
        expires_secs: (expiry_secs + step_secs).min(MAX_PRESIGN_EXPIRY_SECS),
        step_secs,
    }
}

/// The signatures made in the current step, by object: a signature is
/// 64 hex digits, so a URL is rebuilt around it for the cost of copying
/// its text.
#[derive(Default)]
pub struct Kept {
    /// By a 128-bit hash of the request's host and path (what, beside the
    /// instant, a signature of one endpoint depends on): no allocation per
    /// entry, and a collision as likely as a guessed signature.
    signatures: Mutex<HashMap<u128, (Micros, [u8; 64])>>,
}

impl Kept {
    /// The signature of a GET of `path` on `host` signed at `at`, made by
    /// `sign` if not kept yet.
    pub fn signature(
        &self,
        at: Micros,
        host: &str,
        path: &str,
        sign: impl FnOnce() -> [u8; 64],
    ) -> [u8; 64] {
        let mut hasher = Xxh3::new();
        hasher.update(host.as_bytes());
        // Not in a host: the two parts cannot run into each other.
        hasher.update(b" ");
        hasher.update(path.as_bytes());
        let object = hasher.digest128();
        let mut signatures = self
            .signatures
            .lock()
            .unwrap_or_else(|err| err.into_inner());
        if let Some((signed_at, signature)) = signatures.get(&object)
            && *signed_at == at
        {
            return *signature;
        }
        let signature = sign();
        if signatures.len() >= MAX_KEPT {
            signatures.retain(|_, (signed_at, _)| *signed_at == at);
            if signatures.len() >= MAX_KEPT {
                signatures.clear();
            }
        }
        signatures.insert(object, (at, signature));
        signature
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Micros = MICROS_PER_SECOND;

    #[test]
    fn a_url_is_valid_the_expiry_after_it_is_given_and_at_most_a_step_longer() {
        for expiry in [60, 3_600, 21_600, 604_000, 604_800] {
            for now in [0, 1, 299 * SECOND + 7, 1_800_000_000 * SECOND + 123_456] {
                let signing = signing(now, expiry);
                let valid_until = signing.at + i64::from(signing.expires_secs) * SECOND;
                assert!(signing.at <= now, "{expiry} {now}");
                assert!(valid_until >= now + i64::from(expiry) * SECOND - SECOND);
                assert!(signing.expires_secs <= MAX_PRESIGN_EXPIRY_SECS);
                assert!(now - signing.at <= i64::from(MAX_STEP_SECS) * SECOND);
            }
        }
        assert_eq!(signing(1_000 * SECOND + 5, 21_600).at, 900 * SECOND);
        assert_eq!(signing(1_000 * SECOND + 5, 21_600).expires_secs, 21_900);
        assert_eq!(signing(1_000 * SECOND + 5, 60).at, 996 * SECOND);
        assert_eq!(signing(1_000 * SECOND + 5, 604_800).expires_secs, 604_800);
    }

    #[test]
    fn a_signature_is_made_once_a_step() {
        let kept = Kept::default();
        let signed = std::cell::Cell::new(0u8);
        let sign = || {
            signed.set(signed.get() + 1);
            [signed.get(); 64]
        };
        assert_eq!(kept.signature(0, "h", "/b/k", sign), [1; 64]);
        assert_eq!(kept.signature(0, "h", "/b/k", sign), [1; 64]);
        assert_eq!(kept.signature(0, "h", "/b/k2", sign), [2; 64]);
        assert_eq!(kept.signature(0, "h2", "/b/k", sign), [3; 64]);
        assert_eq!(kept.signature(0, "h /b", "/k", sign), [4; 64]);
        assert_eq!(kept.signature(SECOND, "h", "/b/k", sign), [5; 64]);
        assert_eq!(signed.get(), 5);
    }

    #[test]
    fn the_keeper_is_bounded() {
        let kept = Kept::default();
        for i in 0..MAX_KEPT + 10 {
            kept.signature(0, "h", &i.to_string(), || [0; 64]);
        }
        assert!(kept.signatures.lock().unwrap().len() <= MAX_KEPT);
    }
}
