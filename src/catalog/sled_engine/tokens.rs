//! Answers to requests sent with a ClientToken, kept 24 hours so a retry
//! gets the first answer instead of doing the work again.

use prost::Message;
use sled::Transactional;
use sled::transaction::{
    ConflictableTransactionError, TransactionalTree, UnabortableTransactionError,
};

use super::super::{CatalogError, Commit, TOKEN_RETENTION, TokenAnswer, TokenRecord};
use super::{SledCatalog, abort};
use crate::manifest::Micros;

pub(super) fn expiry_key(expires: Micros, token_key: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + token_key.len());
    key.extend_from_slice(&(expires.max(0) as u64).to_be_bytes());
    key.extend_from_slice(token_key);
    key
}

/// Inserts `answer` and its expiry entry inside a transaction over the
/// token trees.
pub(super) fn insert_answer(
    tokens: &TransactionalTree,
    expiry: &TransactionalTree,
    answer: &TokenAnswer,
) -> Result<(), UnabortableTransactionError> {
    let by_expiry = expiry_key(answer.record.created + TOKEN_RETENTION, &answer.key);
    tokens.insert(answer.key.as_slice(), answer.record.encode_to_vec())?;
    expiry.insert(by_expiry.as_slice(), &[])?;
    Ok(())
}

fn live(record: TokenRecord, now: Micros) -> Option<TokenRecord> {
    (record.created + TOKEN_RETENTION > now).then_some(record)
}

/// The live answer under `key`, as a transaction sees it: a request that
/// finds one must write nothing.
pub(super) fn live_answer(
    tokens: &TransactionalTree,
    key: &[u8],
    now: Micros,
) -> Result<Option<TokenRecord>, ConflictableTransactionError<CatalogError>> {
    match tokens.get(key)? {
        Some(bytes) => Ok(live(TokenRecord::decode(&*bytes).map_err(abort)?, now)),
        None => Ok(None),
    }
}

impl SledCatalog {
    /// The live answer stored under `token_key`.
    pub fn token(
        &self,
        token_key: &[u8],
        now: Micros,
    ) -> Result<Option<TokenRecord>, CatalogError> {
        let Some(bytes) = self.tokens.get(token_key)? else {
            return Ok(None);
        };
        let record =
            TokenRecord::decode(&*bytes).map_err(|err| CatalogError::Corrupt(err.to_string()))?;
        Ok(live(record, now))
    }

    /// Stores a token's answer unless the key has a live one, which is
    /// returned instead. Not durable until [`SledCatalog::flush`].
    pub fn put_token(&self, answer: &TokenAnswer) -> Result<Commit<()>, CatalogError> {
        (&self.tokens, &self.token_expiry)
            .transaction(|(tokens, expiry)| {
                if let Some(first) = live_answer(tokens, &answer.key, answer.record.created)? {
                    return Ok(Commit::Answered(first));
                }
                insert_answer(tokens, expiry, answer)?;
                Ok::<_, ConflictableTransactionError<CatalogError>>(Commit::Done(()))
            })
            .map_err(CatalogError::from)
    }
}
