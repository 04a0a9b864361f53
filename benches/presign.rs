//! What segment URLs cost a playlist made per request: the URLs of an
//! hour of 6-second segments (600), through the storage facade as the
//! playback listener asks for them, in each mode:
//! 1. presigned, as one batch (`Storage::segment_urls`, then `url` for each
//!    segment) on a day whose signing key is already derived: a playlist's
//!    usual cost, whose target is at most 1 ms;
//! 2. the same batch on a new day, which derives the day's key first;
//! 3. presigned one URL at a time (`Storage::segment_url`);
//! 4. public (plain) URLs, the floor;
//! 5. for reference, rusoto_s3's `PreSignedRequest` for the same 600, which
//!    derives the signing key for every URL (and reads the wall clock).
//!
//! No server is involved: presigning is computation only. Run with
//! `cargo bench --bench presign`; a word after `--` runs only the cases
//! whose label holds it (`-- batch`), e.g. under a profiler.

use std::time::{Duration, Instant};

use record_index::config::Config;
use record_index::storage::{SegmentUrl, Storage};
use rusoto_core::Region;
use rusoto_core::credential::AwsCredentials;
use rusoto_s3::GetObjectRequest;
use rusoto_s3::util::{PreSignedRequest, PreSignedRequestOption};

const SEGMENTS: usize = 600;
const ROUNDS: usize = 2_000;
const BUCKET: &str = "live-bucket";
/// 2026-12-01T10:00:00Z.
const NOW: i64 = 1_796_119_200 * 1_000_000;
const DAY: i64 = 86_400 * 1_000_000;

fn storage() -> Storage {
    // One thread yet: nothing else reads the environment.
    unsafe {
        std::env::set_var("BENCH_S3_KEY", "AKIAIOSFODNN7EXAMPLE");
        std::env::set_var(
            "BENCH_S3_SECRET",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        );
    }
    let endpoint = |name: &str, mode: &str| {
        format!(
            "[[endpoints]]\nname = \"{name}\"\nkind = \"s3\"\n\
             url = \"https://oss-cn-shanghai.aliyuncs.com\"\naddressing = \"virtual-hosted\"\n\
             region = \"oss-cn-shanghai\"\naccess_key_id_env = \"BENCH_S3_KEY\"\n\
             secret_access_key_env = \"BENCH_S3_SECRET\"\nsegment_urls = \"{mode}\"\n"
        )
    };
    let text = endpoint("signed.example", "presigned") + &endpoint("public.example", "public");
    let config = Config::from_toml(&text).unwrap().finish().unwrap();
    Storage::from_config(&config).unwrap()
}

/// An hour of a stream's segment keys, as recorders name them.
fn keys() -> Vec<String> {
    (0..SEGMENTS)
        .map(|i| {
            format!(
                "record/example.com/live/camera-0042/2026-12-01/10-{:02}-{:02}.ts",
                i / 10,
                (i % 10) * 6
            )
        })
        .collect()
}

/// Runs `render` ROUNDS times (round `r` given as its argument) and prints
/// the median, 99th percentile and minimum of one run.
fn measure(label: &str, mut render: impl FnMut(usize) -> usize) -> Duration {
    // cargo passes `--bench`; any other argument picks cases by label.
    let wanted = std::env::args().skip(1).find(|arg| !arg.starts_with("--"));
    if wanted.is_some_and(|word| !label.contains(&word)) {
        return Duration::ZERO;
    }
    let mut samples = Vec::with_capacity(ROUNDS);
    let mut bytes = 0;
    for round in 0..ROUNDS {
        let started = Instant::now();
        bytes = std::hint::black_box(render(round));
        samples.push(started.elapsed());
    }
    samples.sort();
    let at = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "{label:<52} median {:>7.1} µs  p99 {:>7.1} µs  min {:>7.1} µs  ({:.2} µs a URL, {} bytes of URLs)",
        us(at(0.5)),
        us(at(0.99)),
        us(samples[0]),
        us(at(0.5)) / SEGMENTS as f64,
        bytes
    );
    at(0.5)
}

fn length(url: SegmentUrl) -> usize {
    match url {
        SegmentUrl::Direct(url) | SegmentUrl::Cdn(url) => url.len(),
        SegmentUrl::Relative => 0,
    }
}

fn main() {
    let storage = storage();
    let keys = keys();
    println!("{SEGMENTS} segment URLs (an hour of 6 s segments), {ROUNDS} rounds each:");

    let batch = measure("presigned, one batch, day key derived before", |_| {
        let urls = storage.segment_urls("signed.example", NOW).unwrap();
        keys.iter().map(|key| length(urls.url(BUCKET, key))).sum()
    });
    measure("presigned, one batch, a new day (key derived)", |round| {
        let now = NOW + (round as i64 + 1) * DAY;
        let urls = storage.segment_urls("signed.example", now).unwrap();
        keys.iter().map(|key| length(urls.url(BUCKET, key))).sum()
    });
    measure("presigned, one segment_url call a URL", |_| {
        keys.iter()
            .map(|key| {
                length(
                    storage
                        .segment_url("signed.example", BUCKET, key, NOW)
                        .unwrap(),
                )
            })
            .sum()
    });
    measure("public (plain URLs)", |_| {
        let urls = storage.segment_urls("public.example", NOW).unwrap();
        keys.iter().map(|key| length(urls.url(BUCKET, key))).sum()
    });

    let region = Region::Custom {
        name: "oss-cn-shanghai".into(),
        endpoint: "https://oss-cn-shanghai.aliyuncs.com".into(),
    };
    let credentials = AwsCredentials::new(
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        None,
        None,
    );
    let option = PreSignedRequestOption {
        expires_in: Duration::from_secs(21_600),
    };
    measure("reference: rusoto_s3 PreSignedRequest, path-style", |_| {
        keys.iter()
            .map(|key| {
                let request = GetObjectRequest {
                    bucket: BUCKET.into(),
                    key: key.clone(),
                    ..Default::default()
                };
                request
                    .get_presigned_url(&region, &credentials, &option)
                    .len()
            })
            .sum()
    });

    if batch == Duration::ZERO {
        return;
    }
    let verdict = if batch <= Duration::from_millis(1) {
        "within"
    } else {
        "OVER"
    };
    println!(
        "presigning a playlist's {SEGMENTS} URLs: {:.3} ms (median), {verdict} the 1 ms budget",
        batch.as_secs_f64() * 1e3
    );
}
