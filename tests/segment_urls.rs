//! Segment URLs as players meet them: each endpoint's mode, built through
//! the real config and storage, fetched from a real S3 server (SeaweedFS)
//! with a plain HTTP client. Presigned URLs read a private bucket that
//! refuses anonymous reads, carry the configured expiry and no secret, and
//! stop working once expired or altered; public URLs read an open bucket.

mod common;

use std::sync::Once;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use record_index::config::Config;
use record_index::storage::{SegmentUrl, Storage};
use rusoto_core::{HttpClient, Region};
use rusoto_credential::StaticProvider;
use rusoto_s3::{CreateBucketRequest, S3, S3Client};

/// The credentials every endpoint of these tests names (through
/// `TEST_S3_KEY` and `TEST_S3_SECRET`); the shared SeaweedFS takes any.
const KEY_ID: &str = "RECORDINDEXTESTKEY";
/// `/` and `+` are encoded in a URL: the secret must appear in neither form.
const SECRET: &str = "presign/SecretCore+xyz";
const SECRET_CORE: &str = "SecretCore";
const EXPIRY_SECS: u32 = 900;

/// Sets the credential variables once for the whole binary, before any
/// storage reads them.
fn credentials_in_env() {
    static SET: Once = Once::new();
    SET.call_once(|| unsafe {
        std::env::set_var("TEST_S3_KEY", KEY_ID);
        std::env::set_var("TEST_S3_SECRET", SECRET);
    });
}

/// The storage of a config holding `endpoints`, through the service's own
/// parsing and checks.
fn storage(endpoints: &str) -> Storage {
    credentials_in_env();
    let config = Config::from_toml(&format!("data_dir = \"/nonexistent\"\n{endpoints}"))
        .unwrap()
        .finish()
        .unwrap();
    Storage::from_config(&config).unwrap()
}

fn direct(url: SegmentUrl) -> String {
    match url {
        SegmentUrl::Direct(url) => url,
        other => panic!("expected a URL to fetch as it is, got {other:?}"),
    }
}

/// GETs `url` as a player would; a `{bucket}.localhost` host is dialled at
/// 127.0.0.1 with its name in `Host`, since it does not resolve here.
async fn fetch(url: &str) -> HttpResponse {
    let rest = url.strip_prefix("http://").expect("an http URL");
    let authority = rest.split('/').next().unwrap();
    match authority.split_once(".localhost:") {
        Some((_, port)) => {
            let dialled = url.replacen(authority, &format!("127.0.0.1:{port}"), 1);
            http_request("GET", &dialled, Some(authority), None, Bytes::new()).await
        }
        None => http_get(url).await,
    }
}

/// The value of query parameter `name` in `url`.
fn query_value<'a>(url: &'a str, name: &str) -> Option<&'a str> {
    let query = url.split_once('?')?.1;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

/// A bucket created with the owner's credentials, on a server that refuses
/// anonymous requests.
async fn create_private_bucket(s3_url: &str) -> String {
    let bucket = unique_name("t");
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .https_or_http()
        .enable_http1()
        .build();
    let client = S3Client::new_with(
        HttpClient::from_connector(connector),
        StaticProvider::new_minimal(KEY_ID.into(), SECRET.into()),
        Region::Custom {
            name: "us-east-1".into(),
            endpoint: s3_url.into(),
        },
    );
    client
        .create_bucket(CreateBucketRequest {
            bucket: bucket.clone(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|err| panic!("create bucket {bucket}: {err}"));
    bucket
}

#[tokio::test]
async fn presigned_urls_read_a_private_bucket_until_they_expire() {
    let weed =
        tokio::task::spawn_blocking(|| start_private_seaweedfs_with_identity(KEY_ID, SECRET))
            .await
            .unwrap();
    let presigned = format!("segment_urls = \"presigned\"\npresign_expiry_secs = {EXPIRY_SECS}\n");
    let storage = storage(&format!(
        "{}{presigned}{}{presigned}",
        weed.endpoint_toml(Addressing::Path),
        weed.endpoint_toml(Addressing::VirtualHosted)
    ));
    let bucket = create_private_bucket(&weed.url()).await;
    let keys = ["live/cam 1/000+a.ts", "live/cam 1/001.ts", "live/é/002.ts"];
    let path_style = weed.endpoint_name(Addressing::Path);
    for (i, key) in keys.iter().enumerate() {
        let body = Bytes::from(format!("segment {i} of {bucket}").repeat(1000));
        storage
            .put(&path_style, &bucket, key, body, "video/mp2t")
            .await
            .unwrap();
    }
    let now = chrono::Utc::now().timestamp_micros();

    // Anonymous reads are refused: what follows is the signature's doing.
    let plain = fetch(&storage.url(&path_style, &bucket, keys[0])).await;
    assert_eq!(plain.status, 403, "{}", plain.text());

    for addressing in [Addressing::Path, Addressing::VirtualHosted] {
        let endpoint = weed.endpoint_name(addressing);
        let urls = storage.segment_urls(&endpoint, now).unwrap();
        for (i, key) in keys.iter().enumerate() {
            let url = direct(urls.url(&bucket, key));
            let expected_start = match addressing {
                Addressing::Path => format!("{}/{bucket}/", weed.url()),
                Addressing::VirtualHosted => format!("http://{bucket}.localhost:{}/", weed.s3_port),
            };
            assert!(url.starts_with(&expected_start), "{url}");
            // Signed at the start of a 90 s step (a tenth of the expiry),
            // valid that much longer: the expiry counts from the request.
            assert_eq!(
                query_value(&url, "X-Amz-Expires"),
                Some((EXPIRY_SECS + 90).to_string().as_str()),
                "{url}"
            );
            let date = query_value(&url, "X-Amz-Date").unwrap();
            let signed_at = chrono::NaiveDateTime::parse_from_str(date, "%Y%m%dT%H%M%SZ")
                .unwrap()
                .and_utc()
                .timestamp_micros();
            assert!(signed_at <= now && now - signed_at < 90_000_000, "{url}");
            // Made again within the step: the same URL, so playlists
            // holding it are the same text with the same ETag.
            let later = storage
                .segment_urls(&endpoint, signed_at + 89_000_000)
                .unwrap();
            assert_eq!(direct(later.url(&bucket, key)), url);
            let credential = query_value(&url, "X-Amz-Credential").unwrap();
            assert!(credential.starts_with(&format!("{KEY_ID}%2F")), "{url}");
            assert!(!url.contains(SECRET_CORE), "the secret is in {url}");

            let response = fetch(&url).await;
            assert_eq!(response.status, 200, "{url}: {}", response.text());
            let expected = format!("segment {i} of {bucket}").repeat(1000);
            assert_eq!(response.body, Bytes::from(expected), "{url}");
        }

        // An altered signature, and a URL made longer ago than its expiry.
        let url = direct(urls.url(&bucket, keys[1]));
        let flipped = if url.ends_with('0') { '1' } else { '0' };
        let altered = format!("{}{flipped}", &url[..url.len() - 1]);
        let response = fetch(&altered).await;
        assert_eq!(response.status, 403, "{altered}: {}", response.text());
        // Longer ago than the expiry and the step it is signed ahead by.
        let made = now - (i64::from(EXPIRY_SECS) + 90 + 60) * 1_000_000;
        let expired = direct(
            storage
                .segment_url(&endpoint, &bucket, keys[1], made)
                .unwrap(),
        );
        let response = fetch(&expired).await;
        assert_eq!(response.status, 403, "{expired}: {}", response.text());
        assert!(response.text().contains("expired"), "{}", response.text());
    }
}

#[tokio::test]
async fn public_urls_read_an_open_bucket() {
    let weed = seaweedfs();
    let storage = storage(&format!(
        "{}{}segment_urls = \"public\"\n",
        weed.endpoint_toml(Addressing::Path),
        weed.endpoint_toml(Addressing::VirtualHosted)
    ));
    let bucket = weed.create_bucket().await;
    let key = "live/cam 1/000+a.ts";
    let body = Bytes::from_static(b"\x47 an MPEG-TS packet or so");
    let path_style = weed.endpoint_name(Addressing::Path);
    storage
        .put(&path_style, &bucket, key, body.clone(), "video/mp2t")
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp_micros();
    // Path-style by default, virtual-hosted as configured.
    for addressing in [Addressing::Path, Addressing::VirtualHosted] {
        let endpoint = weed.endpoint_name(addressing);
        let url = direct(storage.segment_url(&endpoint, &bucket, key, now).unwrap());
        assert_eq!(url, storage.url(&endpoint, &bucket, key));
        assert!(!url.contains('?'), "{url}");
        let response = fetch(&url).await;
        assert_eq!(response.status, 200, "{url}: {}", response.text());
        assert_eq!(response.body, body);
    }
}

#[tokio::test]
async fn an_unused_cdn_base_url_is_named_at_startup() {
    let (_server, log) = Server::start_keeping_log(
        "[[endpoints]]\nname = \"localhost\"\nkind = \"local\"\n\
         cdn_base_url = \"https://cdn.example.com\"\n",
    )
    .await;
    let line = log
        .await_line("cdn_base_url is set", Duration::from_secs(10))
        .await;
    assert!(line.contains("localhost"), "{line}");
}
