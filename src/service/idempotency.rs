//! ClientToken: a request retried with the same token gets the first
//! answer, and concurrent copies do the work once. In this process the
//! copies wait for each other on a lock; across processes the catalog's
//! commit decides, and the copy that loses replays the winner's answer.

use std::future::Future;

use prost::Message;
use sha2::{Digest, Sha256};

use super::IndexService;
use crate::auth::Caller;
use crate::catalog::{Commit, RegisterAnswer, RegisterOutcome, TokenAnswer, TokenRecord};
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
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut hasher);
        let stripe = hasher.finish() as usize % self.stripes.len();
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
    token: String,
    key: Vec<u8>,
    fingerprint: Vec<u8>,
    created: Micros,
}

/// The first answer given with `token`, for a request with this
/// fingerprint; a different request is refused.
fn replay<R: Message + Default>(
    token: &str,
    fingerprint: &[u8],
    first: &TokenRecord,
) -> ApiResult<R> {
    if first.fingerprint != fingerprint {
        return Err(ApiError::InvalidParams(format!(
            "ClientToken {} was used within the last 24 hours for a different request",
            quote(token)
        )));
    }
    R::decode(&*first.response).map_err(|err| ApiError::internal(format!("stored answer: {err}")))
}

/// The answer of a commit: its own, or, when a copy of the request with
/// the same token committed first (in another process, say), that copy's.
/// What this one wrote before its commit (a playlist) stays unreferenced,
/// as after a crash before the commit.
pub(super) fn settle<T, R: Message + Default>(
    commit: Commit<T>,
    token: Option<&PendingToken>,
    done: impl FnOnce(T) -> R,
) -> ApiResult<R> {
    match (commit, token) {
        (Commit::Done(value), _) => Ok(done(value)),
        (Commit::Answered(first), Some(token)) => replay(&token.token, &token.fingerprint, &first),
        (Commit::Answered(_), None) => Err(ApiError::internal(
            "the catalog answered for a ClientToken the request did not carry",
        )),
    }
}

impl PendingToken {
    /// A Register's answer, made from its outcome inside the commit.
    pub(super) fn register_answer<R: Message>(
        &self,
        response: impl Fn(&RegisterOutcome) -> R + Send + Sync + 'static,
    ) -> RegisterAnswer {
        RegisterAnswer {
            key: self.key.clone(),
            fingerprint: self.fingerprint.clone(),
            created: self.created,
            response: Box::new(move |outcome| response(outcome).encode_to_vec()),
        }
    }

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
        if let Some(first) = self.catalog.token(&key, self.clock.now()).await? {
            return replay(token, &request_fingerprint, &first);
        }
        work(Some(PendingToken {
            token: token.to_string(),
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
