//! Signed playback URLs, by ApsaraVideo Live's "Type A" URL signing, so
//! players holding URLs made for Alibaba's CDN, or by the same signer, are
//! let in alike:
//!
//! ```text
//! https://host/path?auth_key={timestamp}-{rand}-{uid}-{md5hash}
//! md5hash = md5("{path}-{timestamp}-{rand}-{uid}-{key}"), lower-case hex
//! ```
//!
//! `path` is the URL's path as the client sends it (percent-escapes kept,
//! no query), `timestamp` Unix seconds, `rand` a random string without
//! dashes, `uid` a user id (`0` unless the signer uses one). A URL is valid
//! from its signing until `timestamp + validity_secs`, that last second
//! included, and signed by the account's primary key or its secondary one
//! (so keys can be rotated without breaking URLs already handed out).
//!
//! Pure: no clock, no environment. The keys come in as [`SigningKeys`],
//! "now" as Unix seconds.

use std::borrow::Cow;

use md5::{Digest, Md5};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use subtle::{Choice, ConstantTimeEq};

/// The query parameter that carries the signature.
pub const PARAM: &str = "auth_key";
/// The `uid` of URLs signed here: ApsaraVideo Live's documented default.
pub const DEFAULT_UID: &str = "0";
/// How long a URL stays valid when the config does not say.
pub const DEFAULT_VALIDITY_SECS: u64 = 1800;
/// The longest validity a config may set: one year.
pub const MAX_VALIDITY_SECS: u64 = 31_536_000;

/// Longest `rand` accepted when verifying (a UUID without dashes is 32).
const MAX_RAND: usize = 64;
/// Longest `uid` accepted when verifying.
const MAX_UID: usize = 32;
/// Longest timestamp accepted: 18 digits always fit an `i64`.
const MAX_TIMESTAMP_DIGITS: usize = 18;
/// Length of the lower-case hex MD5.
const HASH_LEN: usize = 32;
/// The longest well-formed `auth_key` value; anything longer is refused
/// before it is split.
const MAX_AUTH_KEY: usize = MAX_TIMESTAMP_DIGITS + 1 + MAX_RAND + 1 + MAX_UID + 1 + HASH_LEN;

/// An account's signing keys and how long its URLs stay valid. The keys
/// are secrets: `Debug` does not show them.
#[derive(Clone)]
pub struct SigningKeys {
    primary: String,
    secondary: Option<String>,
    validity_secs: u64,
}

impl SigningKeys {
    /// Keys as the config reads them (not empty, `validity_secs` in
    /// `1..=MAX_VALIDITY_SECS`: the config checks both).
    pub fn new(primary: String, secondary: Option<String>, validity_secs: u64) -> SigningKeys {
        SigningKeys {
            primary,
            secondary,
            validity_secs,
        }
    }

    /// The key new URLs are signed with.
    pub fn primary(&self) -> &str {
        &self.primary
    }

    /// Seconds a URL stays valid after its timestamp.
    pub fn validity_secs(&self) -> u64 {
        self.validity_secs
    }
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeys")
            .field("secondary", &self.secondary.is_some())
            .field("validity_secs", &self.validity_secs)
            .finish_non_exhaustive()
    }
}

/// Why a request's signature was refused. Each is answered the same way
/// (403); the variant is for the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// No `auth_key` parameter.
    #[error("the URL is not signed: no auth_key")]
    Missing,
    /// Not `{timestamp}-{rand}-{uid}-{md5hash}` in the accepted forms, or
    /// `auth_key` given more than once.
    #[error("auth_key is not {{timestamp}}-{{rand}}-{{uid}}-{{md5hash}}")]
    Malformed,
    /// The timestamp is more than `validity_secs` ahead of the clock.
    ///
    /// Not left to pass: a URL's only bound is `timestamp +
    /// validity_secs`, so without this a URL could be signed to live for
    /// years, and one leaked would keep working until the key is rotated.
    /// Refused, every URL this service accepts dies within twice
    /// `validity_secs` of now; the tolerance of one `validity_secs` covers
    /// a signer whose clock runs fast, and signers that move the timestamp
    /// ahead to lengthen a URL's life, as ApsaraVideo Live allows. Not
    /// `Malformed`: the token is well formed, and the log should point at
    /// the signer's clock, not at the URL's syntax.
    #[error("auth_key's timestamp is further ahead of the clock than the validity period")]
    TooFarAhead,
    /// Past `timestamp + validity_secs`.
    #[error("auth_key has expired")]
    Expired,
    /// Well formed and in time, but signed by neither key, or for another
    /// path.
    #[error("auth_key does not match the URL")]
    Mismatch,
}

/// Which of the account's keys signed a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySlot {
    Primary,
    Secondary,
}

/// What a valid signature says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified<'a> {
    /// The signed timestamp (Unix seconds).
    pub timestamp: i64,
    /// The last Unix second the URL is valid in.
    pub expires_at: i64,
    pub uid: &'a str,
    /// Which key signed it: once no URL is signed by the secondary key,
    /// it can be dropped.
    pub key: KeySlot,
}

/// The `auth_key` value for `path` (as the client will send it: see the
/// module's doc), signed with `key`.
pub fn sign(path: &str, key: &str, timestamp: i64, rand: &str, uid: &str) -> String {
    let hash = md5_hex(path, timestamp, rand, uid, key);
    format!("{timestamp}-{rand}-{uid}-{hash}")
}

/// A fresh `rand`: a random UUID without its dashes.
pub fn new_rand() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// How long the URLs a playlist signs stay the same: a tenth of their
/// validity.
pub fn step_secs(validity_secs: u64) -> u64 {
    (validity_secs / 10).max(1)
}

/// The timestamp and `rand` of the URLs a playlist made at `now` (Unix
/// seconds) signs: the same for a step ([`step_secs`]), so the playlists
/// of one step are the same text (their ETag holds) and a cache keeping
/// one for the step still hands out URLs with nine tenths of their
/// validity left. The `rand` comes from the step: a nonce for the CDN's
/// logs, not a secret.
pub fn stepped(now: i64, validity_secs: u64) -> (i64, String) {
    let step = i64::try_from(step_secs(validity_secs)).unwrap_or(i64::MAX);
    let timestamp = now - now.rem_euclid(step);
    let rand = xxhash_rust::xxh3::xxh3_128(&timestamp.to_le_bytes());
    (timestamp, format!("{rand:032x}"))
}

/// The timestamp that makes a URL expire `expires_in` seconds after `now`
/// for a verifier with `validity_secs`: `now` itself when `expires_in` is
/// `validity_secs`. `None` when `expires_in` is 0 or more than twice
/// `validity_secs`: that would need a timestamp more than `validity_secs`
/// ahead, which [`verify`] refuses.
pub fn timestamp_expiring_in(now: i64, expires_in: u64, validity_secs: u64) -> Option<i64> {
    if expires_in == 0 || expires_in > validity_secs.checked_mul(2)? {
        return None;
    }
    let shift = i64::try_from(expires_in).ok()? - i64::try_from(validity_secs).ok()?;
    now.checked_add(shift)
}

/// Checks the `auth_key` value of a request for `path` (the request's path
/// exactly as received: not decoded, not normalized) at `now` (Unix
/// seconds). The checks run in this order, and the first that fails is the
/// answer: missing, malformed, too far ahead, expired, mismatch. Both keys
/// are always compared, each in constant time.
pub fn verify<'a>(
    path: &str,
    auth_key: Option<&'a str>,
    keys: &SigningKeys,
    now: i64,
) -> Result<Verified<'a>, VerifyError> {
    let parts = Parts::parse(auth_key.ok_or(VerifyError::Missing)?)?;
    let validity = i64::try_from(keys.validity_secs).unwrap_or(i64::MAX);
    if parts.timestamp > now.saturating_add(validity) {
        return Err(VerifyError::TooFarAhead);
    }
    let expires_at = parts.timestamp.saturating_add(validity);
    if now > expires_at {
        return Err(VerifyError::Expired);
    }
    let matches = |key: &str| -> Choice {
        let expected = md5_hex(path, parts.timestamp, parts.rand, parts.uid, key);
        expected.as_bytes().ct_eq(parts.hash.as_bytes())
    };
    let primary = matches(&keys.primary);
    let secondary = match &keys.secondary {
        Some(key) => matches(key),
        None => Choice::from(0),
    };
    let key = if bool::from(primary) {
        KeySlot::Primary
    } else if bool::from(secondary) {
        KeySlot::Secondary
    } else {
        return Err(VerifyError::Mismatch);
    };
    Ok(Verified {
        timestamp: parts.timestamp,
        expires_at,
        uid: parts.uid,
        key,
    })
}

/// [`verify`] of the `auth_key` in `query` (the raw query string, without
/// `?`).
pub fn verify_query<'a>(
    path: &str,
    query: Option<&'a str>,
    keys: &SigningKeys,
    now: i64,
) -> Result<Verified<'a>, VerifyError> {
    verify(path, find_auth_key(query)?, keys, now)
}

/// The value of the one `auth_key` parameter of a raw query string. Taken
/// as it stands: a well-formed value has nothing to percent-decode. Two
/// are `Malformed`: which one a cache or proxy in front would honour is
/// anyone's guess.
pub fn find_auth_key(query: Option<&str>) -> Result<Option<&str>, VerifyError> {
    let mut found = None;
    for pair in query.unwrap_or_default().split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if name == PARAM && found.replace(value).is_some() {
            return Err(VerifyError::Malformed);
        }
    }
    Ok(found)
}

/// Why a URL cannot be signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("not an http:// or https:// URL")]
    NotHttp,
    #[error("the URL has no host")]
    NoHost,
    #[error("the URL holds a space or a control character")]
    Unprintable,
    /// Clients resolve `.` and `..` segments (and their escapes) before
    /// they send a path, so a signature of the path as written would
    /// never match.
    #[error("the URL's path has a . or .. segment, which clients remove before sending it")]
    DotSegment,
}

/// Whether a path segment is one a client resolves away: `.` or `..`,
/// either dot possibly written `%2e` (as the WHATWG URL standard reads it).
pub fn is_dot_segment(segment: &str) -> bool {
    let lower = segment.to_ascii_lowercase();
    let dots = lower.replace("%2e", ".");
    dots == "." || dots == ".."
}

/// Characters of a path a client sends percent-encoded: everything but
/// RFC 3986's `pchar`s, `/` and `%` (escapes already there stay as they
/// are).
const PATH_ESCAPED: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'<')
    .add(b'>')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}')
    .add(b'[')
    .add(b']');

/// `url` (http or https) with `auth_key` for it, signed with `key`: other
/// query parameters keep their order, any `auth_key` already there is
/// dropped, and the new one comes last. A path with characters a client
/// would escape (non-ASCII, `{`, ...) is written escaped, as it will be
/// sent and so signed; an empty path is `/`. A fragment stays at the end.
pub fn sign_url(
    url: &str,
    key: &str,
    timestamp: i64,
    rand: &str,
    uid: &str,
) -> Result<String, UrlError> {
    let (scheme, rest) = url.split_once("://").ok_or(UrlError::NotHttp)?;
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        return Err(UrlError::NotHttp);
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(UrlError::Unprintable);
    }
    let (rest, fragment) = match rest.split_once('#') {
        Some((rest, fragment)) => (rest, Some(fragment)),
        None => (rest, None),
    };
    let (authority, rest) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    if authority.is_empty() || authority.ends_with('@') {
        return Err(UrlError::NoHost);
    }
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.split('/').any(is_dot_segment) {
        return Err(UrlError::DotSegment);
    }
    let path: Cow<str> = match path {
        "" => Cow::Borrowed("/"),
        path => utf8_percent_encode(path, PATH_ESCAPED).into(),
    };
    let signed = format!("{PARAM}={}", sign(&path, key, timestamp, rand, uid));
    let mut params: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.is_empty() && pair.split('=').next() != Some(PARAM))
        .collect();
    params.push(&signed);
    let mut out = format!("{scheme}://{authority}{path}?{}", params.join("&"));
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    Ok(out)
}

fn md5_hex(path: &str, timestamp: i64, rand: &str, uid: &str, key: &str) -> String {
    let signed = format!("{path}-{timestamp}-{rand}-{uid}-{key}");
    hex::encode(Md5::digest(signed.as_bytes()))
}

/// The four fields of a well-formed `auth_key`.
struct Parts<'a> {
    timestamp: i64,
    rand: &'a str,
    uid: &'a str,
    hash: &'a str,
}

impl<'a> Parts<'a> {
    fn parse(value: &'a str) -> Result<Parts<'a>, VerifyError> {
        if value.len() > MAX_AUTH_KEY {
            return Err(VerifyError::Malformed);
        }
        let mut fields = value.split('-');
        let (Some(timestamp), Some(rand), Some(uid), Some(hash), None) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return Err(VerifyError::Malformed);
        };
        let alphanumeric = |field: &str, max: usize| {
            (1..=max).contains(&field.len()) && field.bytes().all(|b| b.is_ascii_alphanumeric())
        };
        let well_formed = (1..=MAX_TIMESTAMP_DIGITS).contains(&timestamp.len())
            && timestamp.bytes().all(|b| b.is_ascii_digit())
            && alphanumeric(rand, MAX_RAND)
            && alphanumeric(uid, MAX_UID)
            && hash.len() == HASH_LEN
            && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !well_formed {
            return Err(VerifyError::Malformed);
        }
        let timestamp = timestamp.parse().map_err(|_| VerifyError::Malformed)?;
        Ok(Parts {
            timestamp,
            rand,
            uid,
            hash,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "k3y-primary";
    const PATH: &str = "/v1/example.com/live/cam1/index.m3u8";
    const NOW: i64 = 1_700_000_000;

    fn keys() -> SigningKeys {
        SigningKeys::new(KEY.into(), None, 1800)
    }

    fn md5_of(text: &str) -> String {
        hex::encode(Md5::digest(text.as_bytes()))
    }

    #[test]
    fn urls_signed_in_one_step_are_the_same_and_valid_nine_tenths_on() {
        let (first, rand) = stepped(1_800_000_123, 1800);
        assert_eq!(first, 1_800_000_000);
        assert_eq!(stepped(1_800_000_179, 1800), (first, rand.clone()));
        assert_ne!(stepped(1_800_000_180, 1800).1, rand);
        assert!(rand.len() == 32 && rand.bytes().all(|b| b.is_ascii_hexdigit()));
        for now in [0, 7, 1_800_000_123] {
            for validity in [1, 9, 10, 1800, 86_400] {
                let (timestamp, _) = stepped(now, validity);
                let valid_until = timestamp + validity as i64;
                assert!(timestamp <= now && valid_until >= now + (validity as i64) * 9 / 10);
            }
        }
    }

    #[test]
    fn signs_by_the_formula() {
        let expected =
            md5_of("/v1/example.com/live/cam1/index.m3u8-1700000000-abc123-0-k3y-primary");
        assert_eq!(
            sign(PATH, KEY, NOW, "abc123", "0"),
            format!("1700000000-abc123-0-{expected}")
        );
    }

    #[test]
    fn md5_is_the_known_digest() {
        // RFC 1321's test suite, so the formula above rests on real MD5.
        assert_eq!(md5_of(""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_of("abc"), "900150983cd24fb0d6963f7d28e17f72");
    }

    #[test]
    fn alibabas_documented_example() {
        // Alibaba Cloud CDN's "Type A signing" page: PrivateKey
        // aliyuncdnexp1234, path /video/standard/1K.html, timestamp
        // 1444435200, rand 0, uid 0.
        let auth_key = sign(
            "/video/standard/1K.html",
            "aliyuncdnexp1234",
            1_444_435_200,
            "0",
            "0",
        );
        assert_eq!(auth_key, "1444435200-0-0-80cd3862d699b7118eed99103f2a3a4f");
        let keys = SigningKeys::new("aliyuncdnexp1234".into(), None, 1800);
        let url = sign_url(
            "http://cdn.example.com/video/standard/1K.html",
            "aliyuncdnexp1234",
            1_444_435_200,
            "0",
            "0",
        )
        .unwrap();
        assert_eq!(
            url,
            "http://cdn.example.com/video/standard/1K.html?auth_key=1444435200-0-0-80cd3862d699b7118eed99103f2a3a4f"
        );
        let verified = verify(
            "/video/standard/1K.html",
            Some(&auth_key),
            &keys,
            1_444_435_200,
        )
        .unwrap();
        assert_eq!(verified.key, KeySlot::Primary);
        assert_eq!(verified.uid, "0");
    }

    #[test]
    fn a_signature_verifies_until_its_last_second() {
        let auth_key = sign(PATH, KEY, NOW, &new_rand(), DEFAULT_UID);
        let ok = verify(PATH, Some(&auth_key), &keys(), NOW).unwrap();
        assert_eq!(ok.timestamp, NOW);
        assert_eq!(ok.expires_at, NOW + 1800);
        // Valid at timestamp + validity_secs, expired one second later.
        assert!(verify(PATH, Some(&auth_key), &keys(), NOW + 1800).is_ok());
        assert_eq!(
            verify(PATH, Some(&auth_key), &keys(), NOW + 1801),
            Err(VerifyError::Expired)
        );
        // Signed before the clock: fine up to validity_secs ahead.
        assert!(verify(PATH, Some(&auth_key), &keys(), NOW - 1800).is_ok());
        assert_eq!(
            verify(PATH, Some(&auth_key), &keys(), NOW - 1801),
            Err(VerifyError::TooFarAhead)
        );
    }

    #[test]
    fn every_refusal_says_which() {
        let keys = keys();
        let good = sign(PATH, KEY, NOW, "r4nd", "0");
        assert_eq!(verify(PATH, None, &keys, NOW), Err(VerifyError::Missing));
        for bad in [
            "",
            "1700000000",
            "1700000000-r4nd-0",
            "x1700000000-r4nd-0-00000000000000000000000000000000",
            "1700000000--0-00000000000000000000000000000000",
            "1700000000-r4nd--00000000000000000000000000000000",
            "1700000000-r4nd-0-0000000000000000000000000000000",
            "1700000000-r4nd-0-000000000000000000000000000000000",
            "+1700000000-r4nd-0-00000000000000000000000000000000",
            "1700000000-r_nd-0-00000000000000000000000000000000",
            &good.to_uppercase(),
            &format!("{good}-"),
            &format!("-{good}"),
        ] {
            assert_eq!(
                verify(PATH, Some(bad), &keys, NOW),
                Err(VerifyError::Malformed),
                "{bad:?}"
            );
        }
        let old = sign(PATH, KEY, NOW - 1801, "r4nd", "0");
        assert_eq!(
            verify(PATH, Some(&old), &keys, NOW),
            Err(VerifyError::Expired)
        );
        let ahead = sign(PATH, KEY, NOW + 1801, "r4nd", "0");
        assert_eq!(
            verify(PATH, Some(&ahead), &keys, NOW),
            Err(VerifyError::TooFarAhead)
        );
        for mismatched in [
            sign(PATH, "another key", NOW, "r4nd", "0"),
            sign(
                "/v1/example.com/live/cam2/index.m3u8",
                KEY,
                NOW,
                "r4nd",
                "0",
            ),
            good.replacen("-r4nd-0-", "-r4nd-1-", 1),
            good.replacen("-r4nd-", "-r4nD-", 1),
            sign(PATH, KEY, NOW - 1, "r4nd", "0").replacen(
                &(NOW - 1).to_string(),
                &NOW.to_string(),
                1,
            ),
        ] {
            assert_eq!(
                verify(PATH, Some(&mismatched), &keys, NOW),
                Err(VerifyError::Mismatch),
                "{mismatched}"
            );
        }
        assert!(verify(PATH, Some(&good), &keys, NOW).is_ok());
    }

    #[test]
    fn the_bounds_of_each_field() {
        let keys = keys();
        let rand64 = "r".repeat(64);
        let uid32 = "9".repeat(32);
        let longest = sign(PATH, KEY, NOW, &rand64, &uid32);
        assert!(verify(PATH, Some(&longest), &keys, NOW).is_ok());
        let rand65 = sign(PATH, KEY, NOW, &"r".repeat(65), "0");
        let uid33 = sign(PATH, KEY, NOW, "r", &"9".repeat(33));
        for bad in [rand65, uid33] {
            assert_eq!(
                verify(PATH, Some(&bad), &keys, NOW),
                Err(VerifyError::Malformed)
            );
        }
        // A uid of letters is accepted, as a signer may use one.
        let lettered = sign(PATH, KEY, NOW, "r", "user42");
        assert_eq!(
            verify(PATH, Some(&lettered), &keys, NOW).unwrap().uid,
            "user42"
        );
        // Timestamps too long to be real, or 0.
        let huge = format!("{}-r-0-{}", "9".repeat(19), "0".repeat(32));
        assert_eq!(
            verify(PATH, Some(&huge), &keys, NOW),
            Err(VerifyError::Malformed)
        );
        let far = format!("{}-r-0-{}", "9".repeat(18), "0".repeat(32));
        assert_eq!(
            verify(PATH, Some(&far), &keys, NOW),
            Err(VerifyError::TooFarAhead)
        );
        let zero = sign(PATH, KEY, 0, "r", "0");
        assert_eq!(
            verify(PATH, Some(&zero), &keys, NOW),
            Err(VerifyError::Expired)
        );
        // The largest validity and timestamp do not overflow.
        let year = SigningKeys::new(KEY.into(), None, MAX_VALIDITY_SECS);
        let latest = 999_999_999_999_999_999;
        let max = sign(PATH, KEY, latest, "r", "0");
        let verified = verify(PATH, Some(&max), &year, latest).unwrap();
        assert_eq!(verified.expires_at, latest + MAX_VALIDITY_SECS as i64);
        for now in [i64::MAX, i64::MIN] {
            assert!(verify(PATH, Some(&max), &year, now).is_err());
        }
    }

    #[test]
    fn either_key_verifies() {
        let keys = SigningKeys::new("new key".into(), Some("old key".into()), 1800);
        let by_old = sign(PATH, "old key", NOW, "r", "0");
        let by_new = sign(PATH, "new key", NOW, "r", "0");
        assert_eq!(
            verify(PATH, Some(&by_old), &keys, NOW).unwrap().key,
            KeySlot::Secondary
        );
        assert_eq!(
            verify(PATH, Some(&by_new), &keys, NOW).unwrap().key,
            KeySlot::Primary
        );
        let by_neither = sign(PATH, "older key", NOW, "r", "0");
        assert_eq!(
            verify(PATH, Some(&by_neither), &keys, NOW),
            Err(VerifyError::Mismatch)
        );
        // Without the secondary, its URLs no longer pass.
        let rotated = SigningKeys::new("new key".into(), None, 1800);
        assert_eq!(
            verify(PATH, Some(&by_old), &rotated, NOW),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn the_path_is_signed_as_sent() {
        let escaped = "/v1/example.com/live/caf%C3%A9%20cam/index.m3u8";
        let auth_key = sign(escaped, KEY, NOW, "r", "0");
        assert!(verify(escaped, Some(&auth_key), &keys(), NOW).is_ok());
        // The decoded path, or other escapes of the same bytes, are other paths.
        for other in [
            "/v1/example.com/live/café cam/index.m3u8",
            "/v1/example.com/live/caf%c3%a9%20cam/index.m3u8",
            "/v1/example.com/live/caf%C3%A9+cam/index.m3u8",
        ] {
            assert_eq!(
                verify(other, Some(&auth_key), &keys(), NOW),
                Err(VerifyError::Mismatch),
                "{other}"
            );
        }
        // sign_url escapes what a client would, and signs that.
        let url = sign_url(
            "https://play.example.com/v1/example.com/live/café cam/index.m3u8?start=1",
            KEY,
            NOW,
            "r",
            "0",
        );
        assert_eq!(url, Err(UrlError::Unprintable));
        let url = sign_url(
            "https://play.example.com/v1/example.com/live/café%20cam/index.m3u8?start=1",
            KEY,
            NOW,
            "r",
            "0",
        )
        .unwrap();
        assert_eq!(
            url,
            format!("https://play.example.com{escaped}?start=1&auth_key={auth_key}")
        );
    }

    #[test]
    fn hostile_auth_keys_are_malformed() {
        let keys = keys();
        let good = sign(PATH, KEY, NOW, "r4nd", "0");
        let long = format!("{good}{}", "0".repeat(10 * 1024));
        let dashes = "-".repeat(10 * 1024);
        let many_fields = format!("{NOW}-a-b-c-d-{}", "0".repeat(32));
        let extra_dash = good.replacen("-r4nd-", "-r4-nd-", 1);
        let non_ascii = good.replacen("r4nd", "r4ñd", 1);
        let non_ascii_hash = format!("{}é", &good[..good.len() - 2]);
        let digits = format!("{}-r-0-{}", "٣".repeat(5), "0".repeat(32));
        for bad in [
            long.as_str(),
            &dashes,
            &many_fields,
            &extra_dash,
            &non_ascii,
            &non_ascii_hash,
            &digits,
            "\0",
            "1700000000-r4nd-0-0000000000000000000000000000000\n",
        ] {
            assert_eq!(
                verify(PATH, Some(bad), &keys, NOW),
                Err(VerifyError::Malformed),
                "{}",
                bad.chars().take(80).collect::<String>()
            );
        }
    }

    #[test]
    fn the_auth_key_is_found_in_the_query() {
        let good = sign(PATH, KEY, NOW, "r", "0");
        let query = format!("start=2024-01-01T00:00:00Z&auth_key={good}&end=x");
        assert_eq!(find_auth_key(Some(&query)), Ok(Some(good.as_str())));
        assert!(verify_query(PATH, Some(&query), &keys(), NOW).is_ok());
        assert_eq!(find_auth_key(None), Ok(None));
        assert_eq!(find_auth_key(Some("")), Ok(None));
        assert_eq!(find_auth_key(Some("auth_keys=1&xauth_key=2")), Ok(None));
        assert_eq!(find_auth_key(Some("auth_key")), Ok(Some("")));
        assert_eq!(
            verify_query(PATH, Some("start=1"), &keys(), NOW),
            Err(VerifyError::Missing)
        );
        assert_eq!(
            verify_query(PATH, Some("auth_key="), &keys(), NOW),
            Err(VerifyError::Malformed)
        );
        let twice = format!("auth_key={good}&auth_key={good}");
        assert_eq!(
            verify_query(PATH, Some(&twice), &keys(), NOW),
            Err(VerifyError::Malformed)
        );
    }

    #[test]
    fn sign_url_replaces_an_old_auth_key_and_keeps_the_rest() {
        let fresh = sign(PATH, KEY, NOW, "r", "0");
        let signed = |url: &str| sign_url(url, KEY, NOW, "r", "0");
        let base = "https://play.example.com/v1/example.com/live/cam1/index.m3u8";
        assert_eq!(signed(base).unwrap(), format!("{base}?auth_key={fresh}"));
        assert_eq!(
            signed(&format!("{base}?start=1&auth_key=old&end=2&auth_key")).unwrap(),
            format!("{base}?start=1&end=2&auth_key={fresh}")
        );
        assert_eq!(
            signed(&format!("{base}?&start=1&&#t=10")).unwrap(),
            format!("{base}?start=1&auth_key={fresh}#t=10")
        );
        let http = "HTTP://user@127.0.0.1:8080/v1/example.com/live/cam1/index.m3u8?x=1";
        assert_eq!(signed(http).unwrap(), format!("{http}&auth_key={fresh}"));
        // Without a path the client asks for `/`.
        assert_eq!(
            signed("http://play.example.com?a=1").unwrap(),
            format!(
                "http://play.example.com/?a=1&auth_key={}",
                sign("/", KEY, NOW, "r", "0")
            )
        );
        // What sign_url writes, verify_query accepts.
        let url = signed(&format!("{base}?start=1&auth_key=old")).unwrap();
        let (_, rest) = url.split_once("play.example.com").unwrap();
        let (path, query) = rest.split_once('?').unwrap();
        assert!(verify_query(path, Some(query), &keys(), NOW).is_ok());
    }

    #[test]
    fn sign_url_refuses_what_is_not_http() {
        for (url, err) in [
            ("ftp://example.com/a", UrlError::NotHttp),
            ("rtmp://example.com/live/cam1", UrlError::NotHttp),
            ("example.com/a", UrlError::NotHttp),
            ("/v1/a/b/c/index.m3u8", UrlError::NotHttp),
            ("", UrlError::NotHttp),
            ("https:///path", UrlError::NoHost),
            ("https://?a=1", UrlError::NoHost),
            ("https://user@/path", UrlError::NoHost),
            ("https://example.com/a b", UrlError::Unprintable),
            ("https://example.com/a\nb", UrlError::Unprintable),
            (
                "https://example.com/v1/a/../b/index.m3u8",
                UrlError::DotSegment,
            ),
            (
                "https://example.com/v1/a/./b/index.m3u8",
                UrlError::DotSegment,
            ),
            (
                "https://example.com/v1/a/%2E%2e/index.m3u8",
                UrlError::DotSegment,
            ),
            (
                "https://example.com/v1/a/.%2E/index.m3u8",
                UrlError::DotSegment,
            ),
            ("https://example.com/v1/a/..", UrlError::DotSegment),
        ] {
            assert_eq!(sign_url(url, KEY, NOW, "r", "0"), Err(err), "{url:?}");
        }
        // Names that only hold dots are names.
        assert!(sign_url("https://example.com/v1/.../a..b/.x", KEY, NOW, "r", "0").is_ok());
    }

    #[test]
    fn expiring_in_moves_the_timestamp() {
        assert_eq!(timestamp_expiring_in(NOW, 1800, 1800), Some(NOW));
        assert_eq!(timestamp_expiring_in(NOW, 60, 1800), Some(NOW - 1740));
        assert_eq!(timestamp_expiring_in(NOW, 3600, 1800), Some(NOW + 1800));
        assert_eq!(timestamp_expiring_in(NOW, 3601, 1800), None);
        assert_eq!(timestamp_expiring_in(NOW, 0, 1800), None);
        // Each verifies now and expires exactly when asked.
        for expires_in in [1, 60, 1800, 3600] {
            let timestamp = timestamp_expiring_in(NOW, expires_in, 1800).unwrap();
            let auth_key = sign(PATH, KEY, timestamp, "r", "0");
            let verified = verify(PATH, Some(&auth_key), &keys(), NOW).unwrap();
            assert_eq!(verified.expires_at, NOW + expires_in as i64);
            let after = NOW + expires_in as i64 + 1;
            assert_eq!(
                verify(PATH, Some(&auth_key), &keys(), after),
                Err(VerifyError::Expired)
            );
        }
    }

    #[test]
    fn new_rands_are_uuids_without_dashes() {
        let (a, b) = (new_rand(), new_rand());
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn debug_does_not_show_the_keys() {
        let keys = SigningKeys::new("s3cret-primary".into(), Some("s3cret-second".into()), 60);
        let shown = format!("{keys:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
    }
}
