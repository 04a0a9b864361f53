//! The playback listener attacked from outside: the real binary with
//! ffmpeg-made media in SeaweedFS (or in a local directory), and clients
//! that send what no player would: hostile URLs and times, bytes on a raw
//! socket, HTTP/2 with prior knowledge, forged and replayed signatures,
//! SignPlaybackUrl fields at their edges, and clients that stop reading.
//! Every refusal must be the documented status with a JSON
//! `{Code, Message, RequestId}` of Create's codes and an `x-request-id`,
//! nothing may be read from object storage for it, and the server must
//! neither panic nor answer 500.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use md5::{Digest, Md5};
use record_index::proto::{
    DescribeLiveStreamRecordContentRequest, RegisterLiveStreamRecordSegmentsRequest, Segment,
    SignPlaybackUrlRequest,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const DOMAIN: &str = "example.com";
const APP: &str = "app";
const STREAM: &str = "stream";

// ---- HTTP on a raw socket -------------------------------------------------

/// One answer as it came over the wire.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The start of the body, for failure messages.
    fn shown(&self) -> String {
        shown(&self.body)
    }
}

/// Sends `request` as it is and reads until the server closes, within 30 s.
async fn exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        stream.write_all(request).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .expect("no answer within 30 s")
        .unwrap_or_default()
}

/// The answers in `bytes`, one per method of the requests sent, in order:
/// HEAD answers and 204/304 carry no body.
fn answers(mut bytes: &[u8], methods: &[&str]) -> Vec<Answer> {
    let mut answers = Vec::new();
    for method in methods {
        let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
            break;
        };
        let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|status| status.parse().ok())
            .unwrap_or(0);
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
            .collect();
        let rest = &bytes[end + 4..];
        let length = headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, value)| value.parse::<usize>().ok())
            .unwrap_or(rest.len());
        let length = match (*method, status) {
            ("HEAD", _) | (_, 204 | 304) => 0,
            _ => length.min(rest.len()),
        };
        answers.push(Answer {
            status,
            headers,
            body: rest[..length].to_vec(),
        });
        bytes = &rest[length..];
    }
    answers
}

/// One HTTP/1.1 request of `target` (sent byte for byte) with `headers`
/// (each line ending in CRLF) after Host, and its answer.
async fn send(addr: SocketAddr, method: &str, target: &[u8], headers: &str) -> Answer {
    let request = [
        method.as_bytes(),
        b" ",
        target,
        format!(" HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}Connection: close\r\n\r\n").as_bytes(),
    ]
    .concat();
    let bytes = exchange(addr, &request).await;
    answers(&bytes, &[method])
        .pop()
        .unwrap_or_else(|| panic!("no answer to {method} {}", shown(target)))
}

fn shown(target: &[u8]) -> String {
    let text = String::from_utf8_lossy(target);
    text.chars().take(120).collect()
}

/// `answer` is the refusal `status` `code` as docs/playback.md has it: the
/// JSON error with the request id of its header.
fn assert_refused(what: &str, answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status, status, "{what}: {}", answer.shown());
    let id = answer
        .header("x-request-id")
        .unwrap_or_else(|| panic!("{what}: no x-request-id"));
    assert!(!id.is_empty(), "{what}");
    assert_eq!(
        answer.header("content-type"),
        Some("application/json"),
        "{what}"
    );
    let body: serde_json::Value = serde_json::from_slice(&answer.body)
        .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {}", answer.shown()));
    assert_eq!(body["Code"], code, "{what}: {body}");
    assert_eq!(body["RequestId"], id, "{what}: {body}");
    let message = body["Message"].as_str().unwrap_or_default();
    assert!(
        !message.is_empty() && message.len() <= 1024,
        "{what}: {body}"
    );
}

/// GET and HEAD of `target` are both refused with `status` and `code`
/// (HEAD without a body).
async fn assert_refused_both(addr: SocketAddr, target: &[u8], status: u16, code: &str) {
    let what = shown(target);
    assert_refused(&what, &send(addr, "GET", target, "").await, status, code);
    let head = send(addr, "HEAD", target, "").await;
    assert_eq!(head.status, status, "HEAD {what}");
    assert!(head.header("x-request-id").is_some(), "HEAD {what}");
    assert!(head.body.is_empty(), "HEAD {what}");
}

/// No thread of the server panicked and no answer was a 500.
fn assert_no_panic_or_500(log: &ServerLog) {
    let bad: Vec<String> = log
        .lines()
        .into_iter()
        .filter(|line| line.contains("panicked") || line.contains("status=500"))
        .collect();
    assert!(bad.is_empty(), "{bad:#?}");
}

/// Object-storage calls that read media (`get`, `head`, and `open` of a
/// local object) the server has made, from its metrics.
async fn object_reads(metrics_port: u16) -> u64 {
    let body = http_get(&format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await
        .text();
    body.lines()
        .filter(|line| {
            line.starts_with("record_index_object_store_request_duration_seconds_count{")
                && ["get", "head", "open"]
                    .iter()
                    .any(|op| line.contains(&format!("operation=\"{op}\"")))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

// ---- Servers ------------------------------------------------------------

/// The real binary with the test media in SeaweedFS, registered as
/// `example.com/app/stream`, and the playback and metrics listeners.
struct Recorded {
    server: Server,
    log: ServerLog,
    addr: SocketAddr,
    metrics_port: u16,
    /// Unix seconds selecting segments 2 to 6.
    start: i64,
    end: i64,
}

impl Recorded {
    /// With `accounts(bucket)` appended to the config and `env` set; the
    /// stream registered with the API key `key` when accounts need one.
    async fn start(
        accounts: impl Fn(&str) -> String,
        env: &[(&str, &str)],
        key: Option<&str>,
    ) -> Recorded {
        let s3 = seaweedfs();
        let bucket = s3.create_bucket().await;
        let [metrics_port] = free_ports();
        let toml = format!(
            "{}\n[playback]\nlisten = \"127.0.0.1:0\"\n\n[metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n\n\
             [rate_limits]\nPlayback = 100000\n\n{}",
            s3.endpoint_toml(Addressing::Path),
            accounts(&bucket),
        );
        let (server, log) = Server::start_with_env(&toml, env).await;
        let addr = server.playback_addr().await;
        let prefix = format!("live/{APP}/{STREAM}");
        s3.upload_media(&bucket, &prefix).await;
        let segments = recorded_segments(
            &s3.endpoint_name(Addressing::Path),
            &bucket,
            &prefix,
            recording_start(Duration::from_secs(20 * 60)),
        );
        register(&server, key, DOMAIN, STREAM, &segments).await;
        let (start, end) = range_selecting(&segments, 2, 6);
        Recorded {
            server,
            log,
            addr,
            metrics_port,
            start: parse_utc(&start).timestamp(),
            end: parse_utc(&end).timestamp(),
        }
    }

    /// `/v1/example.com/app/stream/{file}`.
    fn path(&self, file: &str) -> String {
        format!("/v1/{DOMAIN}/{APP}/{STREAM}/{file}")
    }

    /// `start=..&end=..` of the recorded range.
    fn range(&self) -> String {
        format!("start={}&end={}", self.start, self.end)
    }

    /// What the catalog holds of the stream around the range, as Describe
    /// shows it.
    async fn recorded_content(&self) -> String {
        let at = |unix| utc_seconds(chrono::DateTime::from_timestamp(unix, 0).unwrap());
        let request = DescribeLiveStreamRecordContentRequest {
            domain_name: DOMAIN.into(),
            app_name: APP.into(),
            stream_name: STREAM.into(),
            start_time: at(self.start - 600),
            end_time: at(self.end + 600),
        };
        let content = self
            .server
            .client()
            .await
            .describe_live_stream_record_content(request)
            .await
            .unwrap()
            .into_inner();
        format!("{:?}", content.record_content_info_list)
    }
}

async fn register(
    server: &Server,
    key: Option<&str>,
    domain: &str,
    stream: &str,
    segments: &[Segment],
) {
    let message = RegisterLiveStreamRecordSegmentsRequest {
        client_token: String::new(),
        domain_name: domain.into(),
        app_name: APP.into(),
        stream_name: stream.into(),
        segments: segments.to_vec(),
    };
    let request = match key {
        Some(key) => with_key(key, message),
        None => tonic::Request::new(message),
    };
    server
        .client()
        .await
        .register_live_stream_record_segments(request)
        .await
        .unwrap();
}

// ---- URLs -----------------------------------------------------------------

#[tokio::test]
async fn hostile_urls_get_their_codes_and_read_nothing() {
    let open = Recorded::start(|_| String::new(), &[], None).await;
    let (s, e) = (open.start, open.end);
    let index = open.path("index.m3u8");
    let iframes = open.path("iframes.m3u8");
    let root = format!("/v1/{DOMAIN}/{APP}");
    let params = "InvalidParams";
    let start_malformed = "InvalidStartTime.Malformed";
    let end_malformed = "InvalidEndTime.Malformed";
    let end_mismatch = "InvalidEndTime.Mismatch";
    let cases: Vec<(String, u16, &str)> = vec![
        // A parameter the route reads, given twice: a cache in front may
        // key on either, so neither is taken.
        (format!("{iframes}?{}&start={s}", open.range()), 400, params),
        (
            format!("{iframes}?{}&%65nd={}", open.range(), e + 6),
            400,
            params,
        ),
        (
            format!(
                "{index}?{}&ClipMode=KEYFRAME&ClipMode=SEGMENT",
                open.range()
            ),
            400,
            params,
        ),
        (
            format!(
                "{index}?{}&EndTimeIncluded=true&EndTimeIncluded=true",
                open.range()
            ),
            400,
            params,
        ),
        (
            format!(
                "{}?{}&Renditions=_a&Renditions=_b",
                open.path("master.m3u8"),
                open.range()
            ),
            400,
            params,
        ),
        // Names: not UTF-8 (the domain too), overlong UTF-8, NUL, an
        // encoded slash, traversal, far too long.
        (
            format!("/v1/%FF/{APP}/{STREAM}/index.m3u8?start={s}"),
            400,
            params,
        ),
        (
            format!("/v1/%C0%AE%C0%AE/{APP}/{STREAM}/index.m3u8?start={s}"),
            400,
            params,
        ),
        (
            format!("{root}/{STREAM}%FF/index.m3u8?start={s}"),
            400,
            params,
        ),
        (
            format!("{root}/{STREAM}%C0%AF/index.m3u8?start={s}"),
            400,
            params,
        ),
        (
            format!("{root}/{STREAM}%00/index.m3u8?start={s}"),
            400,
            params,
        ),
        (
            format!("{root}/..%2F{STREAM}/index.m3u8?start={s}"),
            400,
            params,
        ),
        (
            format!("/v1/{DOMAIN}/%2E%2E%2F{APP}/{STREAM}/index.m3u8?start={s}"),
            400,
            params,
        ),
        (
            format!("{root}/{}/index.m3u8?start={s}", "s".repeat(60_000)),
            400,
            params,
        ),
        // Paths that name no playlist: case, trailing and doubled slashes,
        // dot segments, other files.
        (format!("{root}/{STREAM}/INDEX.M3U8?start={s}"), 404, params),
        (format!("{root}/{STREAM}/Index.m3u8?start={s}"), 404, params),
        (format!("{index}/?start={s}"), 404, params),
        (
            format!("{root}/{STREAM}//index.m3u8?start={s}"),
            404,
            params,
        ),
        (
            format!("{root}/../{APP}/{STREAM}/index.m3u8?start={s}"),
            404,
            params,
        ),
        (
            format!("/v1/./{DOMAIN}/{APP}/{STREAM}/index.m3u8?start={s}"),
            404,
            params,
        ),
        (
            format!("{root}/{STREAM}/index.m3u8.ts?start={s}"),
            404,
            params,
        ),
        (format!("{root}/{STREAM}/ARCHIVE-{s}-30.m3u8"), 404, params),
        ("/v1/".to_string(), 404, params),
        ("/".to_string(), 404, params),
        // Times at their edges.
        (format!("{index}?start="), 400, start_malformed),
        (format!("{index}?start=-1"), 400, start_malformed),
        (format!("{index}?start={}", i64::MAX), 400, start_malformed),
        (format!("{index}?start=253402300800"), 400, start_malformed),
        (
            format!("{index}?start=253402300799"),
            400,
            "InvalidStartTime.Mismatch",
        ),
        (
            format!("{index}?start=0&end={e}"),
            400,
            "InvalidStartTime.Mismatch",
        ),
        (format!("{index}?start={s}.5&end={e}"), 400, start_malformed),
        (format!("{index}?start=+{s}&end={e}"), 400, start_malformed),
        (
            format!("{index}?start=%2B{s}&end={e}"),
            400,
            start_malformed,
        ),
        (
            format!("{index}?start=%20{s}&end={e}"),
            400,
            start_malformed,
        ),
        (
            format!("{index}?start={s}%00&end={e}"),
            400,
            start_malformed,
        ),
        (format!("{index}?start={s}&end={e}.0"), 400, end_malformed),
        (format!("{index}?start={e}&end={s}"), 400, end_mismatch),
        (format!("{index}?start={s}&end={s}"), 400, end_mismatch),
        (
            format!("{index}?start={s}&end={}", s + 5 * 86_400),
            400,
            end_mismatch,
        ),
        (
            format!("{index}?start={}", s - 5 * 86_400),
            400,
            end_mismatch,
        ),
        (
            format!("{index}?{}&EndTimeIncluded=TRUE", open.range()),
            400,
            params,
        ),
        (
            format!("{index}?{}&ClipMode=keyframe", open.range()),
            400,
            params,
        ),
        // Flussonic's forms.
        (
            format!("{root}/{STREAM}/archive-{s}-0.m3u8"),
            400,
            end_malformed,
        ),
        (
            format!("{root}/{STREAM}/archive-{s}--30.m3u8"),
            400,
            end_malformed,
        ),
        (
            format!("{root}/{STREAM}/archive-{s}-30.5.m3u8"),
            400,
            end_malformed,
        ),
        (
            format!("{root}/{STREAM}/archive-{s}-+30.m3u8"),
            400,
            end_malformed,
        ),
        (
            format!("{root}/{STREAM}/archive-{s}-{}.m3u8", i64::MAX),
            400,
            end_malformed,
        ),
        (
            format!("{root}/{STREAM}/archive-{s}-{}0.m3u8", u64::MAX),
            400,
            end_malformed,
        ),
        (
            format!("{root}/{STREAM}/archive-{s}-900000000.m3u8"),
            400,
            end_mismatch,
        ),
        (
            format!("{root}/{STREAM}/archive-{s}-NOW.m3u8"),
            400,
            end_malformed,
        ),
        (
            format!("{root}/{STREAM}/archive-x-now.m3u8"),
            400,
            start_malformed,
        ),
        (
            format!("{root}/{STREAM}/archive--1-30.m3u8"),
            400,
            start_malformed,
        ),
        (
            format!("{root}/{STREAM}/archive-253402300800-30.m3u8"),
            400,
            start_malformed,
        ),
        // A stream never registered.
        (
            format!("{root}/nobody/iframes.m3u8?{}", open.range()),
            404,
            "InvalidStream.NotFound",
        ),
    ];
    let reads = object_reads(open.metrics_port).await;
    let content = open.recorded_content().await;
    for (target, status, code) in &cases {
        assert_refused_both(open.addr, target.as_bytes(), *status, code).await;
    }
    // Raw bytes no URL parser lets through get a 4xx from the HTTP layer
    // or from the listener, never an answer.
    for target in [
        [root.as_bytes(), b"/\xff\xfe/index.m3u8?start=1"].concat(),
        [index.as_bytes(), b"?start=\xff"].concat(),
        format!("{index}?start={s}&end=\"{e}\"").into_bytes(),
    ] {
        let answer = send(open.addr, "GET", &target, "").await;
        assert!(
            (400..500).contains(&answer.status),
            "{}: {answer:?}",
            shown(&target)
        );
    }
    for method in ["POST", "PUT", "DELETE", "PATCH", "TRACE"] {
        let answer = send(open.addr, method, index.as_bytes(), "").await;
        assert_refused(method, &answer, 405, params);
        assert_eq!(answer.header("allow"), Some("GET, HEAD, OPTIONS"));
    }
    assert_eq!(
        object_reads(open.metrics_port).await,
        reads,
        "refused requests read media"
    );
    assert_eq!(open.recorded_content().await, content);

    // The table refuses what it should, not everything: the same range
    // plays, in both forms, and its I-frame playlist reads its segments.
    let good = send(
        open.addr,
        "GET",
        format!("{iframes}?{}", open.range()).as_bytes(),
        "",
    )
    .await;
    assert_eq!(good.status, 200, "{}", good.text());
    let archive = format!("{root}/{STREAM}/archive-{s}-{}.m3u8", e - s);
    let archived = send(open.addr, "GET", archive.as_bytes(), "").await;
    let indexed = send(
        open.addr,
        "GET",
        format!("{index}?{}", open.range()).as_bytes(),
        "",
    )
    .await;
    assert_eq!((archived.status, archived.text()), (200, indexed.text()));
    assert!(object_reads(open.metrics_port).await > reads);
    assert_no_panic_or_500(&open.log);
}

// ---- HTTP framing ---------------------------------------------------------

#[tokio::test]
async fn hostile_http_framing_gets_answers_or_closes() {
    let open = Recorded::start(|_| String::new(), &[], None).await;
    let target = format!("{}?{}", open.path("index.m3u8"), open.range());
    let addr = open.addr;
    let playlist = send(addr, "GET", target.as_bytes(), "").await;
    assert_eq!(playlist.status, 200, "{}", playlist.text());

    // HTTP/1.0 without a Host, and the absolute form naming another host:
    // a playlist does not depend on the host.
    let old = answers(
        &exchange(addr, format!("GET {target} HTTP/1.0\r\n\r\n").as_bytes()).await,
        &["GET"],
    );
    assert_eq!((old[0].status, old[0].text()), (200, playlist.text()));
    assert!(old[0].header("x-request-id").is_some());
    let absolute = format!("http://evil.example{target}");
    assert_eq!(send(addr, "GET", absolute.as_bytes(), "").await.status, 200);

    // An HTTP/1.1 request must name its host once, as a host (RFC 9112
    // section 3.2): a proxy in front may read two otherwise.
    for (what, request) in [
        (
            "no Host",
            format!("GET {target} HTTP/1.1\r\nConnection: close\r\n\r\n"),
        ),
        (
            "two Hosts",
            format!(
                "GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
            ),
        ),
        (
            "a Host that is no host",
            format!("GET {target} HTTP/1.1\r\nHost: a@b\r\nConnection: close\r\n\r\n"),
        ),
        (
            "a port that is no port",
            format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1:http\r\nConnection: close\r\n\r\n"),
        ),
    ] {
        let answer = answers(&exchange(addr, request.as_bytes()).await, &["GET"]).remove(0);
        assert_refused(what, &answer, 400, "InvalidParams");
    }

    // Pipelined: each answered in order, each with a request id of its own.
    let bad = format!("{}?start=yesterday", open.path("index.m3u8"));
    let pipelined = format!(
        "GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n\
         HEAD {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n\
         GET {bad} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    );
    let three = answers(
        &exchange(addr, pipelined.as_bytes()).await,
        &["GET", "HEAD", "GET"],
    );
    let statuses: Vec<u16> = three.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [200, 200, 400]);
    assert_eq!(three[0].text(), playlist.text());
    assert_refused("pipelined", &three[2], 400, "InvalidStartTime.Malformed");
    let mut ids: Vec<&str> = three
        .iter()
        .filter_map(|a| a.header("x-request-id"))
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), 3, "{ids:?}");

    // A client's sane request id comes back; another is replaced.
    for (sent, kept) in [
        ("player-42.abc", true),
        (&"x".repeat(129)[..], false),
        ("a b", false),
        ("caf\u{e9}", false),
    ] {
        let header = format!("x-request-id: {sent}\r\n");
        let answer = send(addr, "GET", target.as_bytes(), &header).await;
        let id = answer.header("x-request-id").unwrap_or_default();
        assert_eq!(id == sent, kept, "{sent:?} -> {id:?}");
        assert!(!id.is_empty() && id.len() <= 128);
    }

    // Huge request lines: a 60 KB query is read (its parameters ignored);
    // past what the HTTP layer reads, a bare 414 or 431 and the connection
    // closed (docs/playback.md), and the listener serves on.
    let long = format!("{target}&x={}", "a".repeat(60_000));
    assert_eq!(send(addr, "GET", long.as_bytes(), "").await.status, 200);
    let many = format!("{target}&{}", "p=1&".repeat(12_000));
    assert_eq!(send(addr, "GET", many.as_bytes(), "").await.status, 200);
    for (size, status) in [(300 * 1024, 414), (1024 * 1024, 431)] {
        let huge = format!("{target}&x={}", "a".repeat(size));
        let answer = send(addr, "GET", huge.as_bytes(), "").await;
        assert_eq!(answer.status, status, "{size} bytes");
        let path = format!("{}/{}/index.m3u8", open.path(""), "s".repeat(size));
        assert!(send(addr, "GET", path.as_bytes(), "").await.status >= 400);
    }
    assert_eq!(send(addr, "GET", target.as_bytes(), "").await.status, 200);

    // HTTP/2 with prior knowledge: the same answers, errors and ids.
    let h2 = hyper::Client::builder()
        .http2_only(true)
        .build_http::<hyper::Body>();
    let base = format!("http://{addr}");
    let get2 = |path: String| {
        let h2 = h2.clone();
        async move {
            let response = h2.get(path.parse().unwrap()).await?;
            let (parts, body) = response.into_parts();
            let body = hyper::body::to_bytes(body).await?;
            Ok::<_, hyper::Error>((parts, body))
        }
    };
    let (parts, body) = get2(format!("{base}{target}")).await.unwrap();
    assert_eq!(parts.version, hyper::Version::HTTP_2);
    assert_eq!(
        (parts.status.as_u16(), &body[..]),
        (200, &playlist.body[..])
    );
    assert!(parts.headers.contains_key("x-request-id"));
    let (parts, body) = get2(format!("{base}{bad}")).await.unwrap();
    let refused = Answer {
        status: parts.status.as_u16(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
            .collect(),
        body: body.to_vec(),
    };
    assert_refused("HTTP/2", &refused, 400, "InvalidStartTime.Malformed");
    let long = format!(
        "{base}/v1/{DOMAIN}/{APP}/{}/index.m3u8?start=1",
        "s".repeat(60_000)
    );
    let (parts, _) = get2(long).await.unwrap();
    assert_eq!(parts.status, 400);
    assert!(parts.headers.contains_key("x-request-id"));
    assert_no_panic_or_500(&open.log);
}

// ---- Signatures -----------------------------------------------------------

const API_KEY_A: &str = "rik_hostile-admin-a-1f2e3d4c5b6a";
const API_KEY_B: &str = "rik_hostile-admin-b-6a5b4c3d2e1f";
/// Describe only.
const API_KEY_READER: &str = "rik_hostile-reader-a-0a1b2c3d4e5f";
const KEY_A: &str = "primary-playback-key-a";
const KEY_A2: &str = "secondary-playback-key-a";
const KEY_B: &str = "primary-playback-key-b";
const OTHER_DOMAIN: &str = "other.com";
const VALIDITY: i64 = 600;

/// Account a (example.com) with two playback keys; account b (other.com)
/// with its own, and a Playback limit of 2 a second.
fn two_accounts(bucket: &str) -> String {
    let key = |key: &str, actions: &str, id: &str| {
        format!(
            "[[accounts.keys]]\nsha256 = \"{}\"\n\
             allow = [{{ actions = [\"{actions}\"], resources = [\"acs:cdn:*:{id}:domain/*\"] }}]\n",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(key.as_bytes()))
        )
    };
    format!(
        "[[accounts]]\nid = \"a\"\ndomains = [\"{DOMAIN}\"]\nbuckets = [\"{bucket}\"]\n{}{}\
         [accounts.playback]\nprimary_key_env = \"PLAY_A\"\nsecondary_key_env = \"PLAY_A2\"\n\
         validity_secs = {VALIDITY}\n\n\
         [[accounts]]\nid = \"b\"\ndomains = [\"{OTHER_DOMAIN}\"]\nbuckets = [\"{bucket}\"]\n\
         rate_limits = {{ Playback = 2 }}\n{}\
         [accounts.playback]\nprimary_key_env = \"PLAY_B\"\nvalidity_secs = {VALIDITY}\n",
        key(API_KEY_A, "live:*", "a"),
        key(API_KEY_READER, "live:Describe*", "a"),
        key(API_KEY_B, "live:*", "b"),
    )
}

async fn signed_scenario() -> Recorded {
    let env = [("PLAY_A", KEY_A), ("PLAY_A2", KEY_A2), ("PLAY_B", KEY_B)];
    Recorded::start(two_accounts, &env, Some(API_KEY_A)).await
}

/// `auth_key` by the documented formula, computed here.
fn auth_key(path: &str, key: &str, timestamp: &str, rand: &str, uid: &str) -> String {
    let digest = Md5::digest(format!("{path}-{timestamp}-{rand}-{uid}-{key}").as_bytes());
    format!("{timestamp}-{rand}-{uid}-{}", hex::encode(digest))
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test]
async fn hostile_signatures_are_refused_before_anything_is_read() {
    let signed = signed_scenario().await;
    let path = signed.path("index.m3u8");
    let range = signed.range();
    let ts = now().to_string();
    let good = auth_key(&path, KEY_A, &ts, "r4nd", "0");
    for key in [KEY_A, KEY_A2] {
        let url = format!(
            "{path}?{range}&auth_key={}",
            auth_key(&path, key, &ts, "r4nd", "0")
        );
        let answer = send(signed.addr, "GET", url.as_bytes(), "").await;
        assert_eq!(answer.status, 200, "{}", answer.text());
    }

    let digest = &good[good.len() - 32..];
    let encoded_path = format!("/v1/{DOMAIN}/{APP}/%73tream/index.m3u8");
    let hostile: Vec<(&str, String, String)> = vec![
        ("no auth_key", path.clone(), String::new()),
        ("an empty auth_key", path.clone(), "auth_key=".into()),
        ("auth_key without =", path.clone(), "auth_key".into()),
        (
            "an extra dash",
            path.clone(),
            format!("auth_key={ts}-r4-nd-0-{digest}"),
        ),
        ("a trailing dash", path.clone(), format!("auth_key={good}-")),
        (
            "an empty rand",
            path.clone(),
            format!("auth_key={ts}--0-{digest}"),
        ),
        (
            "an empty uid",
            path.clone(),
            format!("auth_key={ts}-r4nd--{digest}"),
        ),
        (
            "an empty digest",
            path.clone(),
            format!("auth_key={ts}-r4nd-0-"),
        ),
        (
            "a 10 000-character rand",
            path.clone(),
            format!(
                "auth_key={}",
                auth_key(&path, KEY_A, &ts, &"r".repeat(10_000), "0")
            ),
        ),
        (
            "a uid of odd characters",
            path.clone(),
            format!("auth_key={}", auth_key(&path, KEY_A, &ts, "r", "u%20x")),
        ),
        (
            "a timestamp past i64",
            path.clone(),
            format!(
                "auth_key={}",
                auth_key(&path, KEY_A, "99999999999999999999", "r", "0")
            ),
        ),
        (
            "a negative timestamp",
            path.clone(),
            format!("auth_key={}", auth_key(&path, KEY_A, "-5", "r", "0")),
        ),
        (
            "a timestamp with a +",
            path.clone(),
            format!(
                "auth_key={}",
                auth_key(&path, KEY_A, &format!("%2B{ts}"), "r", "0")
            ),
        ),
        (
            "an upper-case digest",
            path.clone(),
            format!("auth_key={}", good.to_uppercase()),
        ),
        (
            "a percent-encoded auth_key",
            path.clone(),
            format!("auth_key={}", good.replacen('-', "%2D", 1)),
        ),
        (
            "auth_key twice",
            path.clone(),
            format!("auth_key={good}&auth_key={good}"),
        ),
        (
            "an encoded parameter name",
            path.clone(),
            format!("auth%5Fkey={good}"),
        ),
        (
            "a signature of another stream",
            path.clone(),
            format!(
                "auth_key={}",
                auth_key(
                    &signed.path("").replace(STREAM, "other"),
                    KEY_A,
                    &ts,
                    "r",
                    "0"
                )
            ),
        ),
        (
            "the path written otherwise",
            encoded_path.clone(),
            format!("auth_key={good}"),
        ),
        (
            "the encoded path's signature on the plain path",
            path.clone(),
            format!("auth_key={}", auth_key(&encoded_path, KEY_A, &ts, "r", "0")),
        ),
        (
            "expired a second ago",
            path.clone(),
            format!(
                "auth_key={}",
                auth_key(&path, KEY_A, &(now() - VALIDITY - 1).to_string(), "r", "0")
            ),
        ),
        (
            "further ahead than the validity",
            path.clone(),
            format!(
                "auth_key={}",
                auth_key(&path, KEY_A, &(now() + VALIDITY + 60).to_string(), "r", "0")
            ),
        ),
        (
            "another account's key",
            path.clone(),
            format!("auth_key={}", auth_key(&path, KEY_B, &ts, "r", "0")),
        ),
        (
            "a key of nobody's",
            path.clone(),
            format!("auth_key={}", auth_key(&path, "guessed", &ts, "r", "0")),
        ),
    ];
    let reads = object_reads(signed.metrics_port).await;
    for (what, url_path, auth) in &hostile {
        // The I-frame playlist of a stream never registered: refused for
        // its signature before the catalog or the media are read.
        for (file, stream) in [("index.m3u8", STREAM), ("iframes.m3u8", "nobody")] {
            let target_path = url_path.replace("index.m3u8", file).replace(STREAM, stream);
            let target = format!("{target_path}?{range}&{auth}");
            let answer = send(signed.addr, "GET", target.as_bytes(), "").await;
            assert_refused(what, &answer, 403, "Forbidden.RAM");
        }
    }
    assert_eq!(object_reads(signed.metrics_port).await, reads);

    // Account b: a flood of forged URLs does not spend its limit of 2 a
    // second; its own signature plays, a's signature on b's path does not.
    let b_path = format!("/v1/{OTHER_DOMAIN}/{APP}/{STREAM}/index.m3u8");
    for _ in 0..20 {
        let forged = format!(
            "{b_path}?{range}&auth_key={}",
            auth_key(&b_path, KEY_A, &ts, "r", "0")
        );
        assert_refused(
            "a's key on b",
            &send(signed.addr, "GET", forged.as_bytes(), "").await,
            403,
            "Forbidden.RAM",
        );
    }
    let b_url = format!(
        "{b_path}?{range}&auth_key={}",
        auth_key(&b_path, KEY_B, &ts, "r", "0")
    );
    let first = send(signed.addr, "GET", b_url.as_bytes(), "").await;
    assert_refused(
        "b's stream, never registered",
        &first,
        404,
        "InvalidStream.NotFound",
    );

    // Over its limit, b is throttled with Retry-After; a is not.
    let burst =
        futures::future::join_all((0..10).map(|_| send(signed.addr, "GET", b_url.as_bytes(), "")))
            .await;
    let throttled: Vec<&Answer> = burst.iter().filter(|a| a.status == 429).collect();
    assert!(throttled.len() >= 5, "{} of 10 throttled", throttled.len());
    for answer in throttled {
        assert_refused("over b's limit", answer, 429, "Throttling.User");
        let retry: u64 = answer.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "Retry-After {retry}");
    }
    let a_url = format!("{path}?{range}&auth_key={good}");
    assert_eq!(
        send(signed.addr, "GET", a_url.as_bytes(), "").await.status,
        200
    );
    assert_no_panic_or_500(&signed.log);
}

// ---- SignPlaybackUrl --------------------------------------------------------

#[tokio::test]
async fn sign_playback_url_refuses_hostile_fields() {
    let signed = signed_scenario().await;
    let mut client = signed.server.client().await;
    let base = SignPlaybackUrlRequest {
        domain_name: DOMAIN.into(),
        app_name: APP.into(),
        stream_name: STREAM.into(),
        start_time: utc_seconds(chrono::DateTime::from_timestamp(signed.start, 0).unwrap()),
        end_time: utc_seconds(chrono::DateTime::from_timestamp(signed.end, 0).unwrap()),
        ..Default::default()
    };
    let answer = client
        .sign_playback_url(with_key(API_KEY_A, base.clone()))
        .await
        .unwrap()
        .into_inner();
    let played = send(signed.addr, "GET", answer.playback_path.as_bytes(), "").await;
    assert_eq!(played.status, 200, "{}", played.text());

    let huge = "a".repeat(1024 * 1024);
    type Spoil = Box<dyn Fn(&mut SignPlaybackUrlRequest)>;
    let params = (tonic::Code::InvalidArgument, "InvalidParams");
    let forbidden = (tonic::Code::PermissionDenied, "Forbidden.RAM");
    let cases: Vec<(&str, Spoil, (tonic::Code, &str))> = vec![
        (
            "ValiditySeconds i64::MAX",
            Box::new(|r| r.validity_seconds = i64::MAX),
            params,
        ),
        (
            "ValiditySeconds i64::MIN",
            Box::new(|r| r.validity_seconds = i64::MIN),
            params,
        ),
        (
            "ValiditySeconds past twice",
            Box::new(|r| r.validity_seconds = 2 * VALIDITY + 1),
            params,
        ),
        (
            "a 1 MiB StreamName",
            Box::new(move |r| r.stream_name = huge.clone()),
            params,
        ),
        (
            "a 1 MiB AppName",
            Box::new(|r| r.app_name = "a".repeat(1 << 20)),
            params,
        ),
        (
            "a 1 MiB DomainName",
            Box::new(|r| r.domain_name = "a".repeat(1 << 20)),
            forbidden,
        ),
        (
            "a 1 MiB EndTime",
            Box::new(|r| r.end_time = "9".repeat(1 << 20)),
            (tonic::Code::InvalidArgument, "InvalidEndTime.Malformed"),
        ),
        (
            "1000 renditions",
            Box::new(|r| r.renditions = vec!["_x".into(); 1000]),
            params,
        ),
        // Valid names, but no URL can carry them: every client removes
        // `.` and `..` segments from a path before sending it.
        (
            "StreamName ..",
            Box::new(|r| r.stream_name = "..".into()),
            params,
        ),
        (
            "StreamName .",
            Box::new(|r| r.stream_name = ".".into()),
            params,
        ),
        ("AppName ..", Box::new(|r| r.app_name = "..".into()), params),
        (
            "another tenant's domain",
            Box::new(|r| r.domain_name = OTHER_DOMAIN.into()),
            forbidden,
        ),
    ];
    for (what, spoil, (code, error_code)) in &cases {
        let mut request = base.clone();
        spoil(&mut request);
        let status = client
            .sign_playback_url(with_key(API_KEY_A, request))
            .await
            .expect_err(what);
        assert_error(&status, *code, error_code);
        assert!(status.message().len() <= 1024, "{what}");
    }
    // A master whose rendition would be named `..` is refused by the
    // listener alike: its URI would climb out of the app.
    let dots = format!(
        "/v1/{DOMAIN}/{APP}/./master.m3u8?start={}&Renditions=.",
        signed.start
    );
    let signed_dots = format!(
        "{dots}&auth_key={}",
        auth_key(
            &dots[..dots.find('?').unwrap()],
            KEY_A,
            &now().to_string(),
            "r",
            "0"
        )
    );
    let answer = send(signed.addr, "GET", signed_dots.as_bytes(), "").await;
    assert_refused("a rendition named ..", &answer, 400, "InvalidParams");
    // A key allowed only Describe may not sign; nor may b sign a's stream.
    for key in [API_KEY_READER, API_KEY_B] {
        let status = client
            .sign_playback_url(with_key(key, base.clone()))
            .await
            .unwrap_err();
        assert_error(&status, forbidden.0, forbidden.1);
    }
    assert_no_panic_or_500(&signed.log);
}

// ---- Objects in local mode ----------------------------------------------------

const BUCKET: &str = "local-bucket";
/// How long the listener waits for a client to take any byte of an answer
/// (docs/playback.md).
const STALL: Duration = Duration::from_secs(20);
/// Objects the listener sends at once in local mode (docs/playback.md).
const OBJECTS_AT_ONCE: usize = 64;

/// Local mode from a config file (no accounts), with an object of `size`
/// bytes at `big.ts` and, when `playlist_segments` is more than 0, a stream
/// `big` of that many one-second segments with keys of 1000 bytes: a
/// playlist of about a megabyte per thousand segments.
async fn local(size: usize, playlist_segments: i64) -> (Server, ServerLog, SocketAddr) {
    let toml = "[playback]\nlisten = \"127.0.0.1:0\"\n\n[rate_limits]\nPlayback = 100000\n";
    let (server, log) = Server::start_keeping_log(toml).await;
    let addr = server.playback_addr().await;
    let dir = server.data_dir.join("objects").join(BUCKET);
    std::fs::create_dir_all(&dir).unwrap();
    let bytes: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.join("big.ts"), bytes).unwrap();
    if playlist_segments > 0 {
        let prefix = format!("live/{}", "k".repeat(980));
        let start = recording_start(Duration::from_secs(playlist_segments as u64 + 600));
        let segments = plain_segments(
            ("localhost", BUCKET, &prefix),
            start,
            0..playlist_segments,
            1,
        );
        register(&server, None, DOMAIN, "big", &segments).await;
    }
    (server, log, addr)
}

/// A connection that asked for `target` with a receive window of a few
/// kilobytes and reads nothing past the head of the answer.
async fn stalled(addr: SocketAddr, target: &str) -> (TcpStream, Answer) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    let request = format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut byte))
            .await
            .expect("a head within 10 s")
            .unwrap();
        assert_eq!(
            read,
            1,
            "closed before the head: {}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    let answer = answers(&head, &["HEAD"]).remove(0);
    (stream, answer)
}

/// Descriptors the server process holds open.
fn open_files(server: &Server) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", server.pid()))
        .expect("read /proc/PID/fd")
        .count()
}

#[tokio::test]
async fn clients_that_stop_reading_lose_their_answers_and_hold_no_files() {
    let (server, log, addr) = local(32 << 20, 10_000).await;
    let object = format!("/objects/localhost/{BUCKET}/big.ts");
    let before = open_files(&server);

    // Each object being sent holds a file: at most 64 at once, so clients
    // that read nothing cannot take the descriptors the service needs.
    let mut readers = Vec::new();
    for _ in 0..OBJECTS_AT_ONCE {
        let (stream, answer) = stalled(addr, &object).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        readers.push(stream);
    }
    let refused = send(addr, "GET", object.as_bytes(), "").await;
    assert_refused("one object more", &refused, 503, "InternalError");
    let held = open_files(&server);
    assert!(
        held <= before + 2 * OBJECTS_AT_ONCE + 4,
        "{before} descriptors before, {held} with {OBJECTS_AT_ONCE} stalled readers"
    );

    // A playlist of ten megabytes to a client that reads nothing.
    let now = now();
    let playlist = format!(
        "/v1/{DOMAIN}/{APP}/big/index.m3u8?start={}&end={now}",
        now - 20_000
    );
    let (mut playlist_reader, answer) = stalled(addr, &playlist).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let length: usize = answer.header("content-length").unwrap().parse().unwrap();
    assert!(length > 8 << 20, "a playlist of {length} bytes");

    // After the stall time, the server has given up on all of them: their
    // files and connections are closed, and the next client is served.
    tokio::time::sleep(STALL + Duration::from_secs(4)).await;
    let after = open_files(&server);
    assert!(
        after <= before + 4,
        "{before} descriptors before, {after} after the stall"
    );
    let range = send(addr, "GET", object.as_bytes(), "Range: bytes=0-187\r\n").await;
    assert_eq!((range.status, range.body.len()), (206, 188));
    let mut rest = Vec::new();
    let read = tokio::time::timeout(
        Duration::from_secs(30),
        playlist_reader.read_to_end(&mut rest),
    )
    .await
    .expect("the server closed the stalled connection");
    assert!(
        read.is_err() || rest.len() < length,
        "the stalled client got the whole answer ({} of {length} bytes)",
        rest.len()
    );
    drop(readers);
    assert_no_panic_or_500(&log);
}

#[tokio::test]
async fn hostile_ranges_and_heads_on_objects() {
    let (server, log, addr) = local(1000, 0).await;
    let object = format!("/objects/localhost/{BUCKET}/big.ts");
    let get = |headers: String| {
        let object = object.clone();
        async move { send(addr, "GET", object.as_bytes(), &headers).await }
    };
    let whole = get(String::new()).await;
    assert_eq!((whole.status, whole.body.len()), (200, 1000));
    // Numbers past u64 are past the end of any object.
    let past = get("Range: bytes=18446744073709551616-\r\n".into()).await;
    assert_refused("a range past u64", &past, 416, "InvalidParams");
    assert_eq!(past.header("content-range"), Some("bytes */1000"));
    for (range, status, len) in [
        ("bytes=0-99999999999999999999999", 206, 1000),
        ("bytes=-99999999999999999999999", 206, 1000),
        ("bytes=999-", 206, 1),
        // Several ranges, in one field or in two, get the whole object.
        (&format!("bytes=0-0,{}", "1-1,".repeat(4000))[..], 200, 1000),
        ("bytes=0-0\r\nRange: bytes=5-9", 200, 1000),
        ("bytes=5-1", 200, 1000),
        ("items=0-1", 200, 1000),
    ] {
        let answer = get(format!("Range: {range}\r\n")).await;
        let shown: String = range.chars().take(40).collect();
        assert_eq!((answer.status, answer.body.len()), (status, len), "{shown}");
    }
    // HEAD answers the headers of everything, a body of nothing.
    for (target, status) in [
        (object.clone(), 200),
        (format!("/objects/localhost/{BUCKET}/missing.ts"), 404),
        (format!("/objects/localhost/{BUCKET}/../../x"), 400),
        (format!("/objects/localhost/{BUCKET}/a%2Fb.ts"), 400),
        (format!("/objects/LOCALHOST/{BUCKET}/big.ts"), 400),
    ] {
        let head = send(addr, "HEAD", target.as_bytes(), "Range: bytes=0-1\r\n").await;
        assert_eq!(head.status, status, "{target}");
        assert!(
            head.body.is_empty() && head.header("x-request-id").is_some(),
            "{target}"
        );
    }
    drop(server);
    assert_no_panic_or_500(&log);
}

// ---- sign-url -----------------------------------------------------------------

#[test]
fn sign_url_refuses_paths_clients_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\n\n[[accounts]]\nid = \"a\"\n\
             domains = [\"{DOMAIN}\"]\n[accounts.playback]\nprimary_key_env = \"PLAY_A\"\n",
            dir.path().join("data")
        ),
    )
    .unwrap();
    let sign = |url: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_record-index"))
            .args(["sign-url", "--config"])
            .arg(&config)
            .args(["--account", "a", url])
            .env("PLAY_A", KEY_A)
            .env_remove("RECORD_INDEX_CONFIG")
            .output()
            .unwrap()
    };
    let good = sign("https://play.example.com/v1/example.com/app/stream/index.m3u8?start=1");
    assert!(good.status.success(), "{good:?}");
    for url in [
        "https://play.example.com/v1/example.com/app/../stream/index.m3u8",
        "https://play.example.com/v1/example.com/app/./stream/index.m3u8",
        "https://play.example.com/v1/example.com/app/%2e%2E/index.m3u8",
    ] {
        let refused = sign(url);
        assert_eq!(refused.status.code(), Some(2), "{url}: {refused:?}");
        assert!(refused.stdout.is_empty(), "{url}");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(stderr.contains(". or .."), "{url}: {stderr}");
        assert!(!stderr.contains(KEY_A), "{stderr}");
    }
}
