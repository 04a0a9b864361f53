//! Per-account rate limits through the real `record-index` binary: floods of
//! concurrent calls, counted against what a GCRA limit with one second of
//! burst can let through in the time the flood actually took. Every refusal
//! is RESOURCE_EXHAUSTED Throttling.User with a RetryInfo saying when to come
//! back, and coming back then works; other accounts never notice.

mod common;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::{Server, assert_error, recording_start, utc_millis, utc_seconds};
use record_index::proto::record_index_client::RecordIndexClient;
use record_index::proto::{
    CreateLiveStreamRecordIndexFilesRequest, RegisterLiveStreamRecordSegmentsRequest, Segment,
};
use sha2::{Digest, Sha256};
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// The local directory store's endpoint.
const ENDPOINT: &str = "localhost";
const APP: &str = "live";

/// An account of the test config: its id, domain, bucket and API key.
#[derive(Clone, Copy)]
struct Account {
    id: &'static str,
    domain: &'static str,
    bucket: &'static str,
    key: &'static str,
}

/// Limited to 20 Registers a second by its own `rate_limits`.
const A: Account = Account {
    id: "acct-a",
    domain: "a.example.com",
    bucket: "a-bucket",
    key: "rik_rate-limits-a-2f9c7e1d",
};
/// B and C have no limits of their own: the service-wide table applies.
const B: Account = Account {
    id: "acct-b",
    domain: "b.example.com",
    bucket: "b-bucket",
    key: "rik_rate-limits-b-8a3b5c0e",
};
const C: Account = Account {
    id: "acct-c",
    domain: "c.example.com",
    bucket: "c-bucket",
    key: "rik_rate-limits-c-4d6e1f7a",
};

/// A's own Register limit, requests per second.
const A_REGISTER_RATE: u32 = 20;
/// The service-wide Register limit, for accounts without their own.
const SERVICE_REGISTER_RATE: u32 = 40;
/// Create's limit per account per second, from the API pages.
const DEFAULT_CREATE_RATE: u32 = 45;

fn config() -> String {
    let account = |account: Account, own_limits: &str| {
        format!(
            "[[accounts]]\nid = \"{}\"\ndomains = [\"{}\"]\nbuckets = [\"{}\"]\n{own_limits}\
             [[accounts.keys]]\nsha256 = \"{}\"\n\
             allow = [{{ actions = [\"live:*\"], resources = [\"acs:cdn:*:{}:domain/*\"] }}]\n\n",
            account.id,
            account.domain,
            account.bucket,
            hex::encode(Sha256::digest(account.key.as_bytes())),
            account.id
        )
    };
    format!(
        "[rate_limits]\nRegisterLiveStreamRecordSegments = {SERVICE_REGISTER_RATE}\n\n{}{}{}",
        account(
            A,
            &format!("rate_limits = {{ RegisterLiveStreamRecordSegments = {A_REGISTER_RATE} }}\n")
        ),
        account(B, ""),
        account(C, ""),
    )
}

/// One segment of its own per call: `{tag}/{n}.ts`, one second long, `n`
/// seconds after `t0`.
fn register_request(
    account: Option<Account>,
    domain: &str,
    bucket: &str,
    t0: DateTime<Utc>,
    tag: &str,
    n: usize,
) -> tonic::Request<RegisterLiveStreamRecordSegmentsRequest> {
    let segment = Segment {
        oss_endpoint: ENDPOINT.into(),
        oss_bucket: bucket.into(),
        oss_object: format!("{tag}/{n:04}.ts"),
        start_time: utc_millis(t0 + chrono::Duration::seconds(n as i64)),
        duration: 1.0,
        sequence: n as i64,
        width: 0,
        height: 0,
        format: "ts".into(),
        size: 0,
    };
    let mut request = tonic::Request::new(RegisterLiveStreamRecordSegmentsRequest {
        client_token: String::new(),
        domain_name: domain.into(),
        app_name: APP.into(),
        stream_name: tag.into(),
        segments: vec![segment],
    });
    if let Some(account) = account {
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", account.key).parse().unwrap(),
        );
    }
    request
}

fn account_register(
    account: Account,
    t0: DateTime<Utc>,
    tag: &str,
    n: usize,
) -> tonic::Request<RegisterLiveStreamRecordSegmentsRequest> {
    register_request(Some(account), account.domain, account.bucket, t0, tag, n)
}

/// The answer to one call of a flood.
struct Reply {
    /// Whose call it was.
    who: &'static str,
    result: Result<(), Status>,
    /// When the call was sent and when its answer arrived.
    sent: Instant,
    answered: Instant,
}

/// What a flood of calls got.
struct Flood {
    replies: Vec<Reply>,
    /// From the first call sent to the last answer received: every
    /// admission decision of the flood fell inside it.
    elapsed: Duration,
}

impl Flood {
    /// The calls of `who`, over the whole flood's time.
    fn of(&self, who: &str) -> Flood {
        Flood {
            replies: self
                .replies
                .iter()
                .filter(|r| r.who == who)
                .map(|r| Reply {
                    who: r.who,
                    result: r.result.clone(),
                    sent: r.sent,
                    answered: r.answered,
                })
                .collect(),
            elapsed: self.elapsed,
        }
    }

    fn passed(&self) -> usize {
        self.replies.iter().filter(|r| r.result.is_ok()).count()
    }

    fn refusals(&self) -> impl Iterator<Item = &Status> {
        self.replies.iter().filter_map(|r| r.result.as_ref().err())
    }

    /// The most a limit of `rate` per second with a burst of one second's
    /// worth can admit in the flood's time.
    fn allowance(&self, rate: u32) -> usize {
        let rate = f64::from(rate);
        (rate + rate * self.elapsed.as_secs_f64()).ceil() as usize
    }

    /// The count is within what the limit allows, and not below its burst:
    /// a fresh budget of `rate` requests was there to take. Every refusal
    /// is a throttle.
    fn assert_limited_to(&self, rate: u32, who: &str) {
        let passed = self.passed();
        let allowance = self.allowance(rate);
        assert!(
            passed <= allowance,
            "{who}: {passed} of {} calls passed in {:?}; a limit of {rate}/s with one second \
             of burst allows at most {allowance}",
            self.replies.len(),
            self.elapsed
        );
        assert!(
            passed >= rate as usize,
            "{who}: only {passed} of {} calls passed; a fresh burst of {rate} was available",
            self.replies.len()
        );
        for status in self.refusals() {
            assert_throttled(status, who);
        }
    }

    fn last_answered(&self) -> Instant {
        self.replies.iter().map(|r| r.answered).max().unwrap()
    }
}

/// Sends every request at once, each on its own task; `who` labels whose
/// call each is. Fails if any call is still unanswered after
/// [`ANSWER_WITHIN`].
async fn flood<T, F, Fut>(requests: Vec<(&'static str, T)>, call: F) -> Flood
where
    T: Send + 'static,
    F: Fn(T) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<(), Status>> + Send,
{
    let total = requests.len();
    let start = Instant::now();
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|(who, request)| {
            let call = call.clone();
            tokio::spawn(async move {
                let sent = Instant::now();
                let result = call(request).await;
                Reply {
                    who,
                    result,
                    sent,
                    answered: Instant::now(),
                }
            })
        })
        .collect();
    let deadline = tokio::time::Instant::now() + ANSWER_WITHIN;
    let mut replies = Vec::new();
    let mut unanswered = 0;
    for task in tasks {
        match tokio::time::timeout_at(deadline, task).await {
            Ok(Ok(reply)) => replies.push(reply),
            Ok(Err(err)) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Ok(Err(err)) => panic!("flood task: {err}"),
            Err(_) => unanswered += 1,
        }
    }
    let passed = replies.iter().filter(|r| r.result.is_ok()).count();
    assert_eq!(
        unanswered,
        0,
        "record-index left {unanswered} of {total} concurrent calls unanswered for \
         {ANSWER_WITHIN:?} ({passed} passed, {} were refused): it hangs",
        replies.len() - passed
    );
    let last = replies.iter().map(|r| r.answered).max().unwrap_or(start);
    Flood {
        replies,
        elapsed: last - start,
    }
}

/// How long one call may take. Every call here is small, so a call still
/// unanswered by then means the server hangs; the test fails saying so
/// instead of waiting forever.
const ANSWER_WITHIN: Duration = Duration::from_secs(15);

async fn answered<T>(
    what: &str,
    call: impl std::future::Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    match tokio::time::timeout(ANSWER_WITHIN, call).await {
        Ok(result) => result,
        Err(_) => panic!("record-index did not answer {what} within {ANSWER_WITHIN:?}"),
    }
}

/// The refusal a client matches on, and the delay it is told to wait.
fn assert_throttled(status: &Status, who: &str) -> Duration {
    assert_error(status, Code::ResourceExhausted, "Throttling.User");
    let retry = status
        .get_details_retry_info()
        .unwrap_or_else(|| panic!("{who}: no google.rpc.RetryInfo in {status:?}"));
    let delay = retry
        .retry_delay
        .unwrap_or_else(|| panic!("{who}: RetryInfo without a delay: {status:?}"));
    assert!(
        delay > Duration::ZERO && delay <= Duration::from_secs(1),
        "{who}: retry delay {delay:?} is not in (0, 1 s]"
    );
    delay
}

async fn connect(server: &Server) -> Channel {
    Channel::from_shared(server.url())
        .unwrap()
        .connect()
        .await
        .expect("connect to record-index")
}

async fn call_register(
    channel: Channel,
    request: tonic::Request<RegisterLiveStreamRecordSegmentsRequest>,
) -> Result<(), Status> {
    let reply = RecordIndexClient::new(channel)
        .register_live_stream_record_segments(request)
        .await?
        .into_inner();
    assert_eq!((reply.accepted, reply.duplicates), (1, 0));
    Ok(())
}

/// Writes the playlist of everything account `account` registered for
/// stream `tag` and returns its segment lines.
async fn indexed_segments(
    channel: Channel,
    server: &Server,
    account: Account,
    t0: DateTime<Utc>,
    count: usize,
    tag: &str,
) -> Vec<String> {
    let mut request = tonic::Request::new(CreateLiveStreamRecordIndexFilesRequest {
        renditions: Vec::new(),
        clip_mode: String::new(),
        client_token: String::new(),
        domain_name: account.domain.into(),
        app_name: APP.into(),
        stream_name: tag.into(),
        oss_endpoint: ENDPOINT.into(),
        oss_bucket: account.bucket.into(),
        oss_object: format!("index/{tag}.m3u8"),
        start_time: utc_seconds(t0 - chrono::Duration::seconds(1)),
        end_time: utc_seconds(t0 + chrono::Duration::seconds(count as i64 + 1)),
        end_time_included: false,
    });
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", account.key).parse().unwrap(),
    );
    let info = answered(
        "a CreateLiveStreamRecordIndexFiles call",
        RecordIndexClient::new(channel).create_live_stream_record_index_files(request),
    )
    .await
    .expect("index the stream")
    .into_inner()
    .record_info
    .unwrap();
    let path = server
        .data_dir
        .join("objects")
        .join(&info.oss_bucket)
        .join(&info.oss_object);
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn an_account_over_its_own_limit_is_throttled_while_another_is_not() {
    let server = Server::start(&config()).await;
    let channel = connect(&server).await;
    let t0 = recording_start(Duration::from_secs(20 * 60));
    // One call of B opens the connection before anything is timed; A's
    // budget stays untouched until the flood.
    answered(
        "B's first call",
        call_register(channel.clone(), account_register(B, t0, "b-warm", 0)),
    )
    .await
    .expect("B's first call");

    const FLOOD: usize = 10 * A_REGISTER_RATE as usize;
    let requests: Vec<_> = (0..FLOOD)
        .map(|n| (A.id, account_register(A, t0, "a-flood", n)))
        .collect();
    // B calls ten times, every 10 ms, while A floods.
    let b_channel = channel.clone();
    let b_calls = tokio::spawn(async move {
        let mut results = Vec::new();
        let start = tokio::time::Instant::now();
        for n in 0..10 {
            tokio::time::sleep_until(start + Duration::from_millis(10 * n as u64)).await;
            let sent = Instant::now();
            let call = call_register(b_channel.clone(), account_register(B, t0, "b", n));
            let result = answered("a call of B", call).await;
            results.push((sent, result));
        }
        results
    });
    let a_channel = channel.clone();
    let a = flood(requests, move |request| {
        call_register(a_channel.clone(), request)
    })
    .await;
    let b = match b_calls.await {
        Ok(b) => b,
        Err(err) => std::panic::resume_unwind(err.into_panic()),
    };

    a.assert_limited_to(A_REGISTER_RATE, "account A");
    assert!(
        a.passed() < FLOOD,
        "all {FLOOD} calls of A passed in {:?}",
        a.elapsed
    );
    assert!(
        b[0].0 < a.last_answered(),
        "B called only after A's flood was over"
    );
    for (n, (_, result)) in b.iter().enumerate() {
        if let Err(status) = result {
            panic!("B's call {n} failed during A's flood: {status:?}");
        }
    }
    // A refused call stored nothing: the stream holds exactly the segments
    // of the calls that passed.
    let indexed = indexed_segments(channel.clone(), &server, A, t0, FLOOD, "a-flood").await;
    assert_eq!(indexed.len(), a.passed(), "segments stored by A's flood");

    // Spend what A earned since, until a call is refused; after the delay
    // that refusal names, A passes again.
    let mut refused = None;
    for n in 0..3 * A_REGISTER_RATE as usize {
        let request = account_register(A, t0, "a-after", n);
        if let Err(status) = answered("a call of A", call_register(channel.clone(), request)).await
        {
            refused = Some(status);
            break;
        }
    }
    let status = refused.expect("A is refused again once its budget is spent");
    let delay = assert_throttled(&status, "account A after the flood");
    tokio::time::sleep(delay).await;
    let retry = call_register(channel.clone(), account_register(A, t0, "a-retry", 0));
    answered("A's retry", retry)
        .await
        .expect("A passes after waiting the retry delay");
}

#[tokio::test]
async fn accounts_without_their_own_limit_each_get_the_service_wide_one() {
    let server = Server::start(&config()).await;
    let channel = connect(&server).await;
    let t0 = recording_start(Duration::from_secs(20 * 60));
    const FLOOD: usize = 3 * SERVICE_REGISTER_RATE as usize;
    // B and C flood side by side. Each must get the service-wide rate (not
    // A's, not the built-in 500), and a budget of its own: were the two
    // sharing one, together they could not both get a full burst.
    let requests: Vec<_> = (0..FLOOD)
        .flat_map(|n| {
            [
                (B.id, account_register(B, t0, "flood", n)),
                (C.id, account_register(C, t0, "flood", n)),
            ]
        })
        .collect();
    let flood_channel = channel.clone();
    let both = flood(requests, move |request| {
        call_register(flood_channel.clone(), request)
    })
    .await;
    for account in [B, C] {
        let own = both.of(account.id);
        assert_eq!(own.replies.len(), FLOOD);
        own.assert_limited_to(SERVICE_REGISTER_RATE, account.id);
        let indexed = indexed_segments(channel.clone(), &server, account, t0, FLOOD, "flood").await;
        assert_eq!(
            indexed.len(),
            own.passed(),
            "segments stored by {}",
            account.id
        );
    }
}

#[tokio::test]
async fn local_mode_allows_45_creates_a_second() {
    let server = Server::start_local_mode().await;
    let channel = connect(&server).await;
    let t0 = recording_start(Duration::from_secs(20 * 60));
    let bucket = "local-bucket";
    let registered = answered(
        "a RegisterLiveStreamRecordSegments call",
        RecordIndexClient::new(channel.clone()).register_live_stream_record_segments(
            register_request(None, "example.com", bucket, t0, "s1", 0),
        ),
    )
    .await
    .expect("register in local mode, without a key");
    assert_eq!(registered.into_inner().accepted, 1);

    const CREATES: usize = 60;
    let requests: Vec<_> = (0..CREATES)
        .map(|n| {
            let request = CreateLiveStreamRecordIndexFilesRequest {
                renditions: Vec::new(),
                clip_mode: String::new(),
                client_token: String::new(),
                domain_name: "example.com".into(),
                app_name: APP.into(),
                stream_name: "s1".into(),
                oss_endpoint: ENDPOINT.into(),
                oss_bucket: bucket.into(),
                oss_object: format!("index/{n:02}.m3u8"),
                start_time: utc_seconds(t0 - chrono::Duration::seconds(1)),
                end_time: utc_seconds(t0 + chrono::Duration::seconds(30)),
                end_time_included: false,
            };
            ("local", request)
        })
        .collect();
    let create_channel = channel.clone();
    let creates = flood(requests, move |request| {
        let channel = create_channel.clone();
        async move {
            RecordIndexClient::new(channel)
                .create_live_stream_record_index_files(request)
                .await
                .map(drop)
        }
    })
    .await;
    creates.assert_limited_to(DEFAULT_CREATE_RATE, "the local account's Creates");
    assert!(
        creates.passed() < CREATES,
        "all {CREATES} Creates passed in {:?}",
        creates.elapsed
    );
    // A throttled Create wrote nothing.
    let written = std::fs::read_dir(server.data_dir.join("objects").join(bucket).join("index"))
        .expect("the playlists' directory")
        .count();
    assert_eq!(written, creates.passed(), "playlists written");
}
