//! GCRA budgets kept in Redis, so every replica takes from the same budget
//! per (account, RPC). One script call decides a request: it reads the
//! budget, refills it by Redis's own clock (replica clocks never matter)
//! and takes a cell, all in one round trip.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::Throttle;
use super::rates::Rates;
use crate::config::Config;
use crate::operations::Operation;

/// The longest one decision may wait for Redis. A request's admission must
/// never stall on a hung Redis: past this the caller decides locally.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(100);

/// The longest `serve` waits at start for Redis to be connected and to
/// hold the script, before it serves; past this it starts limiting on its
/// own, as while Redis is away later.
pub const START_TIMEOUT: Duration = Duration::from_secs(3);

/// The longest one connection attempt (name lookup, TCP, handshake) may
/// take. Longer than a decision: connecting runs at start, before any
/// request waits, and later in the background, while each decision waiting
/// on it still gives up after [`CALL_TIMEOUT`].
const CONNECT_TIMEOUT: Duration = START_TIMEOUT;

/// The pause between two attempts to connect at start.
const START_RETRY_PAUSE: Duration = Duration::from_millis(100);

/// The shortest wait a refusal asks for, as the in-process limiter's.
const MIN_RETRY_AFTER: Duration = Duration::from_millis(1);

/// Key prefix of the budgets, so the service can share a Redis with others.
const KEY_PREFIX: &str = "record-index:limit";

/// Why Redis gave no decision. The URL is never part of it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct Unreachable(String);

pub struct RedisLimiter {
    /// Reconnects by itself after Redis went away; cloned per call, as its
    /// multiplexed connection is meant to be.
    connection: ConnectionManager,
    script: redis::Script,
    rates: Rates,
}

impl RedisLimiter {
    /// A limiter for `config`'s limits on the Redis at `url`. Nothing is
    /// dialled yet: [`RedisLimiter::connect`] does, or else the first
    /// decision, so a Redis that is down at start does not stop the
    /// service. Must be called inside a Tokio runtime.
    pub fn new(config: &Config, account_ids: &[String], url: &str) -> Result<Self, String> {
        let is_redis = ["redis://", "redis+unix://", "unix://"]
            .iter()
            .any(|scheme| url.starts_with(scheme));
        let client = is_redis
            .then(|| redis::Client::open(url).ok())
            .flatten()
            .ok_or("is not a Redis URL (redis://[:password@]host:port[/db])")?;
        // One attempt per call, no retries: a decision that cannot be had
        // within CALL_TIMEOUT is made locally anyway, and a retry loop would
        // only keep a dead connection's callers waiting.
        let settings = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(CALL_TIMEOUT))
            .set_number_of_retries(0);
        let connection = ConnectionManager::new_lazy_with_config(client, settings)
            .map_err(|err| format!("cannot set up the Redis connection: {:?}", err.kind()))?;
        Ok(RedisLimiter {
            connection,
            script: redis::Script::new(include_str!("gcra.lua")),
            rates: Rates::new(config, account_ids),
        })
    }

    /// Connects to Redis and loads the script into it, trying again until
    /// `within` has passed: done before serving, so that the first
    /// decisions, made within [`CALL_TIMEOUT`], find the connection made
    /// and the script there, rather than paying for both. `Err` says why
    /// Redis could not be used within `within`.
    pub async fn connect(&self, within: Duration) -> Result<(), Unreachable> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let mut connection = self.connection.clone();
            let load = self.script.load_async(&mut connection);
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let answer = tokio::time::timeout(left, load).await;
            let out_of_time = tokio::time::Instant::now() + START_RETRY_PAUSE >= deadline;
            let err = match answer {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(err)) if !(out_of_time && err.is_timeout()) => describe(&err),
                // Out of time waiting, whichever timeout said so first.
                _ => format!("no answer within {} ms", within.as_millis()),
            };
            if out_of_time {
                return Err(Unreachable(err));
            }
            tokio::time::sleep(START_RETRY_PAUSE).await;
        }
    }

    /// Takes one request of `operation` from `account`'s fleet-wide budget,
    /// or says how long until one is available; `Err` when Redis did not
    /// answer within [`CALL_TIMEOUT`].
    pub async fn admit(
        &self,
        account: &str,
        operation: Operation,
    ) -> Result<Result<(), Throttle>, Unreachable> {
        let rate = self.rates.of(account, operation);
        let interval = (1_000_000 / u64::from(rate)).max(1);
        // The burst is one second's worth, as in the in-process limiter:
        // `rate` requests pass at once.
        let tolerance = interval * u64::from(rate - 1);
        let key = format!("{KEY_PREFIX}:{}:{account}", operation.name());
        let mut connection = self.connection.clone();
        let mut invocation = self.script.key(key);
        invocation.arg(interval).arg(tolerance);
        let call = invocation.invoke_async::<(u8, u64)>(&mut connection);
        let (allowed, wait_micros) = match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(err)) => return Err(Unreachable(describe(&err))),
            Err(_) => {
                return Err(Unreachable(format!(
                    "no answer within {} ms",
                    CALL_TIMEOUT.as_millis()
                )));
            }
        };
        if allowed == 1 {
            return Ok(Ok(()));
        }
        Ok(Err(Throttle {
            rate,
            retry_after: Duration::from_micros(wait_micros).max(MIN_RETRY_AFTER),
        }))
    }
}

/// What went wrong, in words that never hold the URL or its password.
fn describe(err: &redis::RedisError) -> String {
    if err.is_timeout() {
        format!("no answer within {} ms", CALL_TIMEOUT.as_millis())
    } else if err.is_io_error() {
        "cannot connect or the connection dropped".to_string()
    } else {
        format!("{:?} error", err.kind())
    }
}
