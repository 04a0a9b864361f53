//! Three `record-index serve` replicas as an operator runs a fleet: one
//! PostgreSQL database for the catalog, one Redis for the rate limits, one
//! SeaweedFS for segments and playlists, and two accounts with API keys.
//! Each replica is its own process on its own port and data dir.
//!
//! Used by tests/scale_out.rs only (included there with `#[path]`), so it
//! builds on the rest of `common` without being part of it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::join_all;
use record_index::proto::record_index_client::RecordIndexClient;
use record_index::proto::{
    CreateLiveStreamRecordIndexFilesRequest, RegisterLiveStreamRecordSegmentsRequest, Segment,
};
use sha2::{Digest, Sha256};
use tonic::transport::Channel;

use crate::common::*;

pub const REPLICAS: usize = 3;
pub const APP: &str = "live";
pub const SEGMENT_SECONDS: i64 = 6;
const DATABASE_URL_ENV: &str = "SCALE_OUT_DATABASE_URL";
const REDIS_URL_ENV: &str = "SCALE_OUT_REDIS_URL";

/// Far above any load of these tests, for the tests whose subject is not
/// the limits.
pub const HIGH_LIMITS: &str = "[rate_limits]\nCreateLiveStreamRecordIndexFiles = 100000\n\
     RegisterLiveStreamRecordSegments = 100000\nDescribeLiveStreamRecordIndexFile = 100000\n\
     DescribeLiveStreamRecordIndexFiles = 100000\nDeleteLiveStreamRecordIndexFiles = 100000\n\
     DescribeLiveStreamRecordContent = 100000\n";
/// The documented defaults (45 Creates a second per account, ...).
pub const DEFAULT_LIMITS: &str = "";

/// An account of the fleet: its id, its one domain and its API key. Its
/// bucket is created in SeaweedFS per fleet.
#[derive(Clone, Copy, Debug)]
pub struct Account {
    pub id: &'static str,
    pub domain: &'static str,
    pub key: &'static str,
}

pub const ALPHA: Account = Account {
    id: "acct-alpha",
    domain: "alpha.example.com",
    key: "rik_scale-alpha-7c1e9a4b2d",
};
pub const BETA: Account = Account {
    id: "acct-beta",
    domain: "beta.example.com",
    key: "rik_scale-beta-3f8d6b0e5a",
};
const ACCOUNTS: [Account; 2] = [ALPHA, BETA];

/// One replica: the process, its log, and a channel to it.
pub struct Replica {
    pub server: Server,
    pub log: ServerLog,
    pub channel: Channel,
}

impl Replica {
    pub fn client(&self) -> RecordIndexClient<Channel> {
        RecordIndexClient::new(self.channel.clone())
    }
}

/// The shared services and the replicas on them.
pub struct Fleet {
    pub replicas: Vec<Replica>,
    /// Owned by the fleet so a test can stop it and start it again.
    pub database: PgServer,
    /// Kept for the fleet's lifetime: dropping it stops Redis.
    _redis: Redis,
    /// The OssEndpoint of SeaweedFS, as clients name it.
    pub endpoint: String,
    /// Each account's bucket, in the order of [`ACCOUNTS`].
    buckets: Vec<String>,
}

impl Fleet {
    /// Starts PostgreSQL, Redis and [`REPLICAS`] replicas at once (they
    /// apply the schema in turns), with `rate_limits` (a `[rate_limits]`
    /// table, or nothing for the defaults) in their config.
    pub async fn start(rate_limits: &str) -> Fleet {
        let seaweed = seaweedfs();
        let database = PgServer::start();
        let url = database.create_database("scale_out").await;
        let redis = Redis::start();
        let mut buckets = Vec::new();
        for _ in ACCOUNTS {
            buckets.push(seaweed.create_bucket().await);
        }
        let toml = config(
            rate_limits,
            &seaweed.endpoint_toml(Addressing::Path),
            &buckets,
        );
        let redis_url = redis.url();
        let env = [
            (DATABASE_URL_ENV, url.as_str()),
            (REDIS_URL_ENV, &redis_url),
        ];
        let started = join_all((0..REPLICAS).map(|_| Server::start_with_env(&toml, &env))).await;
        let mut replicas = Vec::new();
        for (server, log) in started {
            log.await_line(
                "ready: catalog and object storage answer",
                Duration::from_secs(30),
            )
            .await;
            let channel = Channel::from_shared(server.url())
                .unwrap()
                .connect()
                .await
                .unwrap();
            replicas.push(Replica {
                server,
                log,
                channel,
            });
        }
        Fleet {
            replicas,
            database,
            _redis: redis,
            endpoint: seaweed.endpoint_name(Addressing::Path),
            buckets,
        }
    }

    pub fn bucket(&self, account: Account) -> &str {
        let index = ACCOUNTS.iter().position(|a| a.id == account.id).unwrap();
        &self.buckets[index]
    }

    /// Where `account`'s segments and playlists of a test live.
    pub fn place(&self, account: Account, stream: &str, start: DateTime<Utc>) -> Place {
        Place {
            account,
            endpoint: self.endpoint.clone(),
            bucket: self.bucket(account).to_string(),
            stream: stream.to_string(),
            start,
        }
    }
}

fn config(rate_limits: &str, endpoint: &str, buckets: &[String]) -> String {
    let accounts: String = ACCOUNTS
        .iter()
        .zip(buckets)
        .map(|(account, bucket)| account_toml(account, bucket))
        .collect();
    format!(
        "[catalog]\nengine = \"postgres\"\nurl_env = \"{DATABASE_URL_ENV}\"\npool_size = 4\n\
         statement_timeout_ms = 2000\n\n\
         [limits]\nbackend = \"redis\"\nurl_env = \"{REDIS_URL_ENV}\"\n\
         expected_replicas = {REPLICAS}\n\n\
         {rate_limits}\n{endpoint}\n{accounts}"
    )
}

fn account_toml(account: &Account, bucket: &str) -> String {
    format!(
        "[[accounts]]\nid = \"{}\"\ndomains = [\"{}\"]\nbuckets = [\"{bucket}\"]\n\
         [[accounts.keys]]\nsha256 = \"{}\"\n\
         allow = [{{ actions = [\"live:*\"], resources = [\"acs:cdn:*:{}:domain/*\"] }}]\n\n",
        account.id,
        account.domain,
        hex::encode(Sha256::digest(account.key.as_bytes())),
        account.id,
    )
}

/// One stream of an account: segment `i` is 6 s long, starts `6 * i` s
/// after `start`, and lies at `rec/{stream}/NNNNN.ts` in the account's
/// bucket, where its playlists go too.
#[derive(Clone, Debug)]
pub struct Place {
    pub account: Account,
    pub endpoint: String,
    pub bucket: String,
    pub stream: String,
    pub start: DateTime<Utc>,
}

impl Place {
    pub fn at(&self, i: usize) -> DateTime<Utc> {
        self.start + chrono::Duration::seconds(SEGMENT_SECONDS * i as i64)
    }

    pub fn object(&self, i: usize) -> String {
        format!("rec/{}/{i:05}.ts", self.stream)
    }

    pub fn segments(&self, numbers: std::ops::Range<usize>) -> Vec<Segment> {
        numbers
            .map(|i| Segment {
                oss_endpoint: self.endpoint.clone(),
                oss_bucket: self.bucket.clone(),
                oss_object: self.object(i),
                start_time: utc_millis(self.at(i)),
                duration: SEGMENT_SECONDS as f64,
                sequence: i as i64,
                width: MEDIA_WIDTH,
                height: MEDIA_HEIGHT,
                format: "ts".into(),
                size: 1000,
            })
            .collect()
    }

    /// A Register of segments `numbers`, with the account's key.
    pub fn register(
        &self,
        numbers: std::ops::Range<usize>,
    ) -> tonic::Request<RegisterLiveStreamRecordSegmentsRequest> {
        self.signed(RegisterLiveStreamRecordSegmentsRequest {
            domain_name: self.account.domain.into(),
            app_name: APP.into(),
            stream_name: self.stream.clone(),
            segments: self.segments(numbers),
            client_token: String::new(),
        })
    }

    /// A Create of a playlist of segments `numbers`, at a key holding its
    /// RecordId, in the account's bucket.
    pub fn create(
        &self,
        numbers: std::ops::Range<usize>,
    ) -> tonic::Request<CreateLiveStreamRecordIndexFilesRequest> {
        self.signed(CreateLiveStreamRecordIndexFilesRequest {
            domain_name: self.account.domain.into(),
            app_name: APP.into(),
            stream_name: self.stream.clone(),
            oss_endpoint: self.endpoint.clone(),
            oss_bucket: self.bucket.clone(),
            oss_object: "vod/{StreamName}/{RecordId}.m3u8".into(),
            start_time: utc_seconds(self.at(numbers.start)),
            end_time: utc_seconds(self.at(numbers.end)),
            ..Default::default()
        })
    }

    /// `message` with the account's key, as every request of a
    /// multi-tenant fleet carries it.
    pub fn signed<T>(&self, message: T) -> tonic::Request<T> {
        with_key(self.account.key, message)
    }
}

/// `request` with a client deadline (`grpc-timeout`).
pub fn within<T>(mut request: tonic::Request<T>, deadline: Duration) -> tonic::Request<T> {
    request.set_timeout(deadline);
    request
}
