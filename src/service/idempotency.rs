//! ClientToken: a request retried with the same token gets the first
//! answer, and concurrent copies do the work once.

use std::future::Future;

use prost::Message;
use sha2::{Digest, Sha256};

use super::IndexService;
use crate::auth::Caller;
use crate::catalog::codec::fnv1a64;
use crate::catalog::{TokenAnswer, TokenRecord};
use crate::error::{ApiError, ApiResult, quote};
use crate::manifest::Micros;
use crate::operations::Operation;

const MAX_TOKEN_LEN: usize = 64;
const LOCK_STRIPES: usize = 64;

/// Locks striped by token, so requests with one token run one at a time
/// while other tokens go on.
pub struct TokenLocks {
    stripes: Vec<tokio::sync::Mutex<()>>,
}

impl Default for TokenLocks {
    fn default() -> Self {
        TokenLocks {
            stripes: (0..LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }
}

impl TokenLocks {
    async fn lock(&self, key: &[u8]) -> tokio::sync::MutexGuard<'_, ()> {
        let stripe = fnv1a64(&[key]) as usize % self.stripes.len();
        self.stripes[stripe].lock().await
    }
}

fn check_token(token: &str) -> ApiResult<()> {
    let valid = token.len() <= MAX_TOKEN_LEN
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(ApiError::InvalidParams(format!(
            "ClientToken must be at most {MAX_TOKEN_LEN} characters of [A-Za-z0-9._-]"
        )))
    }
}

/// Tokens are per account and operation: two tenants never collide.
fn token_key(account: &str, operation: Operation, token: &str) -> Vec<u8> {
    [
        account.as_bytes(),
        operation.name().as_bytes(),
        token.as_bytes(),
    ]
    .join(&0u8)
}

/// What makes two requests "the same": their encoding without the token.
pub fn fingerprint(request_without_token: &impl Message) -> Vec<u8> {
    Sha256::digest(request_without_token.encode_to_vec()).to_vec()
}

/// The ClientToken of a request that has no answer yet: the work it
/// guards commits the answer together with its own records.
pub(super) struct PendingToken {
    key: Vec<u8>,
    fingerprint: Vec<u8>,
    created: Micros,
}

impl PendingToken {
    /// The stored form of `response` as this token's answer.
    pub(super) fn answer(&self, response: &impl Message) -> TokenAnswer {
        TokenAnswer {
            key: self.key.clone(),
            record: TokenRecord {
                fingerprint: self.fingerprint.clone(),
                created: self.created,
                response: response.encode_to_vec(),
            },
        }
    }
}

impl IndexService {
    /// Runs `work` unless this token already has an answer for the same
    /// request, in which case that answer is returned unchanged. `work` is
    /// given the token when there is one, and must commit its answer in
    /// the same durable step as the records it adds.
    pub(super) async fn once<R, F, W>(
        &self,
        caller: &Caller,
        operation: Operation,
        token: &str,
        request_fingerprint: Vec<u8>,
        work: W,
    ) -> ApiResult<R>
    where
        R: Message + Default,
        W: FnOnce(Option<PendingToken>) -> F,
        F: Future<Output = ApiResult<R>>,
    {
        if token.is_empty() {
            return work(None).await;
        }
        check_token(token)?;
        let key = token_key(&caller.account.id, operation, token);
        let _one_at_a_time = self.token_locks.lock(&key).await;
        if let Some(record) = self.catalog.token(&key, self.clock.now())? {
            if record.fingerprint != request_fingerprint {
                return Err(ApiError::InvalidParams(format!(
                    "ClientToken {} was used within the last 24 hours for a different request",
                    quote(token)
                )));
            }
            // The answer may be the work of a request still waiting for its
            // flush (abandoned at its deadline, say): it is repeated only
            // once it is durable.
            self.catalog.flush().await?;
            return R::decode(&*record.response)
                .map_err(|err| ApiError::internal(format!("stored answer: {err}")));
        }
        work(Some(PendingToken {
            key,
            fingerprint: request_fingerprint,
            created: self.clock.now(),
        }))
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_short_and_plain() {
        assert!(check_token("retry-1_a.b").is_ok());
        assert!(check_token(&"a".repeat(64)).is_ok());
        assert!(check_token(&"a".repeat(65)).is_err());
        assert!(check_token("a b").is_err());
        assert_ne!(
            token_key("1", Operation::CreateLiveStreamRecordIndexFiles, "t"),
            token_key("2", Operation::CreateLiveStreamRecordIndexFiles, "t")
        );
    }
}
