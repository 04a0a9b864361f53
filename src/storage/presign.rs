//! SigV4 query signing of GET requests: the presigned URLs that let a
//! player read an object of a private bucket for a while, as AWS S3 and
//! S3-compatible servers (Alibaba OSS, MinIO, SeaweedFS) check them.
//!
//! Pure: no I/O, and "now" comes from the caller. What URLs of one instant
//! share is computed once ([`PresignScope`]): the signing key of the day
//! and region (kept by the [`Presigner`] until the date changes), the query
//! string, and the head of the string to sign. Each URL then costs one
//! SHA-256 of its canonical request and one HMAC of the string to sign.
//!
//! The URL carries the access key id (in `X-Amz-Credential`) and the
//! signature, never the secret.

use std::ops::Range;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::presigned_reuse::Kept;

use crate::manifest::Micros;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const SERVICE: &str = "s3";
/// The body is not part of a GET's signature.
const PAYLOAD: &str = "UNSIGNED-PAYLOAD";
const BLOCK: usize = 64;

/// HMAC-SHA256 (RFC 2104) keyed once: the hash states after the inner and
/// outer pads, so each message costs only its own blocks.
#[derive(Clone)]
struct HmacKey {
    inner: Sha256,
    outer: Sha256,
}

impl HmacKey {
    fn new(key: &[u8]) -> HmacKey {
        let mut block = [0u8; BLOCK];
        if key.len() > BLOCK {
            block[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let pad = |byte: u8| {
            let mut hasher = Sha256::new();
            hasher.update(block.map(|b| b ^ byte));
            hasher
        };
        HmacKey {
            inner: pad(0x36),
            outer: pad(0x5c),
        }
    }

    fn mac(&self, message: &[u8]) -> [u8; 32] {
        let mut inner = self.inner.clone();
        inner.update(message);
        self.finish(inner)
    }

    /// The MAC of what `inner` (a clone of this key's inner state) has
    /// absorbed.
    fn finish(&self, inner: Sha256) -> [u8; 32] {
        let mut outer = self.outer.clone();
        outer.update(inner.finalize());
        outer.finalize().into()
    }
}

fn hmac(key: &[u8], message: &str) -> [u8; 32] {
    HmacKey::new(key).mac(message.as_bytes())
}

/// The SigV4 signing key of a day (`yyyymmdd`) and region, for S3.
fn signing_key(secret: &str, date: &str, region: &str) -> [u8; 32] {
    let day = hmac(format!("AWS4{secret}").as_bytes(), date);
    let region = hmac(&day, region);
    let service = hmac(&region, SERVICE);
    hmac(&service, "aws4_request")
}

/// `X-Amz-Date` (`yyyymmddThhmmssZ`) of an instant, or why it has none.
fn amz_date(now: Micros) -> Result<String, String> {
    use chrono::{Datelike, Timelike};
    let time = chrono::DateTime::from_timestamp_micros(now)
        .filter(|time| (1970..=9999).contains(&time.year()))
        .ok_or_else(|| format!("cannot presign at {now} µs since the epoch"))?;
    Ok(format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        time.year(),
        time.month(),
        time.day(),
        time.hour(),
        time.minute(),
        time.second()
    ))
}

/// Lower-case hex of a SHA-256 or HMAC output, without allocating.
fn hex32(bytes: &[u8; 32]) -> [u8; 64] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 64];
    for (i, byte) in bytes.iter().enumerate() {
        out[2 * i] = DIGITS[usize::from(byte >> 4)];
        out[2 * i + 1] = DIGITS[usize::from(byte & 0xf)];
    }
    out
}

/// SigV4's URI encoding of a query value: everything but unreserved
/// characters, `/` included.
fn encode_query_value(value: &str) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    const VALUE: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    utf8_percent_encode(value, VALUE).to_string()
}

/// The canonical query string of a presigned request before its
/// signature: its parameters in byte order, values encoded.
fn canonical_query(credential: &str, amz_date: &str, expires_secs: u32) -> String {
    format!(
        "X-Amz-Algorithm={ALGORITHM}&X-Amz-Credential={}&X-Amz-Date={amz_date}\
         &X-Amz-Expires={expires_secs}&X-Amz-SignedHeaders=host",
        encode_query_value(credential)
    )
}

/// The canonical request of a presigned GET of `path` (URI-encoded, from
/// the leading `/`) on `host`, in the parts it is hashed in; joined, they
/// are the text AWS documents.
fn canonical_request<'a>(host: &'a str, path: &'a str, query: &'a str) -> [&'a str; 8] {
    [
        "GET\n",
        path,
        "\n",
        query,
        "\nhost:",
        host,
        "\n\nhost\n",
        PAYLOAD,
    ]
}

/// The string to sign's first three lines, the same for every request of
/// one instant: the algorithm, `X-Amz-Date` and the credential scope.
fn string_to_sign_head(amz_date: &str, scope: &str) -> String {
    format!("{ALGORITHM}\n{amz_date}\n{scope}\n")
}

/// Signs GET requests with one endpoint's credentials and region. The
/// secret stays here: it is only ever an HMAC key.
pub struct Presigner {
    access_key_id: String,
    secret_access_key: String,
    region: String,
    /// The signing key of the last day signed for, with that day
    /// (`yyyymmdd`): deriving it takes four HMACs, so it is done once a
    /// day rather than once a URL.
    day_key: Mutex<Option<(String, HmacKey)>>,
}

impl std::fmt::Debug for Presigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presigner")
            .field("access_key_id", &self.access_key_id)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl Presigner {
    pub fn new(access_key_id: String, secret_access_key: String, region: String) -> Presigner {
        Presigner {
            access_key_id,
            secret_access_key,
            region,
            day_key: Mutex::new(None),
        }
    }

    /// What every URL presigned at `now`, valid `expires_secs`, shares.
    pub fn scope(&self, now: Micros, expires_secs: u32) -> Result<PresignScope, String> {
        let amz_date = amz_date(now)?;
        let date = &amz_date[..8];
        let key = self.day_key(date);
        let scope = format!("{date}/{}/{SERVICE}/aws4_request", self.region);
        let credential = format!("{}/{scope}", self.access_key_id);
        let mut head = key.inner.clone();
        head.update(string_to_sign_head(&amz_date, &scope));
        Ok(PresignScope {
            at: now,
            query: canonical_query(&credential, &amz_date, expires_secs),
            head,
            key,
        })
    }

    /// The signing key of `date`, derived only when the date changed.
    fn day_key(&self, date: &str) -> HmacKey {
        let mut cached = self.day_key.lock().unwrap_or_else(|err| err.into_inner());
        match cached.as_ref() {
            Some((day, key)) if day == date => key.clone(),
            _ => {
                let key = HmacKey::new(&signing_key(&self.secret_access_key, date, &self.region));
                *cached = Some((date.to_string(), key.clone()));
                key
            }
        }
    }
}

/// The part of presigned URLs that one instant and expiry fix: reused for
/// every segment of a playlist.
pub struct PresignScope {
    /// The instant signed at.
    at: Micros,
    /// The canonical query string without the signature; the URL's query
    /// is the same text, with the signature appended.
    query: String,
    /// The HMAC's inner state with the string to sign's first three lines
    /// absorbed: a request adds the hash of its canonical request.
    head: Sha256,
    key: HmacKey,
}

impl PresignScope {
    /// The signature (hex) of a GET of `path` (URI-encoded) on `host`.
    #[cfg(test)]
    pub fn signature(&self, host: &str, path: &str) -> String {
        String::from_utf8_lossy(&self.signature_hex(host, path)).into_owned()
    }

    fn signature_hex(&self, host: &str, path: &str) -> [u8; 64] {
        let mut request = Sha256::new();
        for part in canonical_request(host, path, &self.query) {
            request.update(part);
        }
        let mut string_to_sign = self.head.clone();
        string_to_sign.update(hex32(&request.finalize().into()));
        hex32(&self.key.finish(string_to_sign))
    }

    /// Appends the presigned query of a GET to `url`, which holds the
    /// request's address up to its `?`; `host` and `path` (URI-encoded)
    /// are where in `url` the request's host and path are. A signature
    /// `kept` for this scope's instant is reused.
    pub fn sign_into(
        &self,
        url: &mut String,
        host: Range<usize>,
        path: Range<usize>,
        kept: Option<&Kept>,
    ) {
        let (host, path) = (&url[host], &url[path]);
        let signature = match kept {
            Some(kept) => kept.signature(self.at, host, path, || self.signature_hex(host, path)),
            None => self.signature_hex(host, path),
        };
        url.push_str(&self.query);
        url.push_str("&X-Amz-Signature=");
        // Hex digits: ASCII.
        url.extend(signature.iter().map(|&digit| char::from(digit)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of AWS's "Authenticating Requests: Using Query
    /// Parameters (AWS Signature Version 4)".
    const KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const HOST: &str = "examplebucket.s3.amazonaws.com";
    /// 2013-05-24T00:00:00Z.
    const THEN: Micros = 1_369_353_600 * 1_000_000;

    fn aws_example() -> PresignScope {
        Presigner::new(KEY_ID.into(), SECRET.into(), "us-east-1".into())
            .scope(THEN, 86_400)
            .unwrap()
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2: a short key; test case 6: a key longer than a block.
        assert_eq!(
            hex::encode(hmac(b"Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex::encode(hmac(
                &[0xaa; 131],
                "Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn canonical_request_and_string_to_sign_are_the_documented_ones() {
        let scope = aws_example();
        let request = canonical_request(HOST, "/test.txt", &scope.query).concat();
        assert_eq!(
            request,
            "GET\n/test.txt\nX-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=\
             AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=\
             20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\nhost:\
             examplebucket.s3.amazonaws.com\n\nhost\nUNSIGNED-PAYLOAD"
        );
        let string_to_sign =
            string_to_sign_head("20130524T000000Z", "20130524/us-east-1/s3/aws4_request")
                + &hex::encode(Sha256::digest(&request));
        assert_eq!(
            string_to_sign,
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n\
             3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04"
        );
    }

    #[test]
    fn signature_is_the_documented_one() {
        assert_eq!(
            aws_example().signature(HOST, "/test.txt"),
            "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
        );
        let mut url = format!("https://{HOST}/test.txt?");
        let (host, path) = (8..8 + HOST.len(), 8 + HOST.len()..url.len() - 1);
        aws_example().sign_into(&mut url, host, path, None);
        let query = url.split_once('?').unwrap().1;
        assert!(query.starts_with("X-Amz-Algorithm=AWS4-HMAC-SHA256&"));
        assert!(query.ends_with(
            "&X-Amz-SignedHeaders=host&X-Amz-Signature=\
             aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
        ));
        assert!(!query.contains(SECRET) && !query.contains("wJalrXUtnFEMI"));
    }

    #[test]
    fn the_day_key_is_kept_until_the_date_changes() {
        let presigner = Presigner::new(KEY_ID.into(), SECRET.into(), "us-east-1".into());
        let later_that_day = presigner.scope(THEN + 3_600_000_000, 86_400).unwrap();
        let first = presigner.scope(THEN, 86_400).unwrap();
        assert_eq!(
            first.signature(HOST, "/test.txt"),
            "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
        );
        assert!(later_that_day.query.contains("X-Amz-Date=20130524T010000Z"));
        let next_day = presigner.scope(THEN + 86_400_000_000, 60).unwrap();
        assert!(next_day.query.contains("%2F20130525%2Fus-east-1%2F"));
        assert!(next_day.query.contains("X-Amz-Expires=60&"));
        assert_eq!(
            presigner.day_key.lock().unwrap().as_ref().unwrap().0,
            "20130525"
        );
        // Signing a day again derives its key again, to the same signature.
        let again = presigner.scope(THEN, 86_400).unwrap();
        assert_eq!(
            again.signature(HOST, "/test.txt"),
            first.signature(HOST, "/test.txt")
        );
    }

    #[test]
    fn instants_outside_sigv4_dates_are_refused() {
        let presigner = Presigner::new(KEY_ID.into(), SECRET.into(), "us-east-1".into());
        assert!(presigner.scope(-1, 60).is_err());
        assert!(presigner.scope(i64::MAX, 60).is_err());
        assert!(presigner.scope(0, 60).is_ok());
    }

    #[test]
    fn dates_and_hex_are_written_as_sigv4_wants() {
        assert_eq!(amz_date(THEN + 3_723_000_999).unwrap(), "20130524T010203Z");
        assert_eq!(amz_date(0).unwrap(), "19700101T000000Z");
        let bytes: [u8; 32] = std::array::from_fn(|i| (i * 8 + 7) as u8);
        assert_eq!(hex32(&bytes).as_slice(), hex::encode(bytes).as_bytes());
    }

    #[test]
    fn debug_shows_no_secret() {
        let presigner = Presigner::new(KEY_ID.into(), SECRET.into(), "us-east-1".into());
        let shown = format!("{presigner:?}");
        assert!(shown.contains(KEY_ID) && !shown.contains(SECRET), "{shown}");
    }
}
