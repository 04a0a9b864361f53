//! Answers to requests sent with a ClientToken, kept 24 hours so a retry
//! gets the first answer instead of doing the work again.

use prost::Message;
use sled::Transactional;
use sled::transaction::{
    ConflictableTransactionError, TransactionError, TransactionalTree, UnabortableTransactionError,
};

use super::{Catalog, CatalogError, TokenRecord};
use crate::manifest::{MICROS_PER_DAY, Micros};

/// How long a token's answer is kept.
pub const TOKEN_RETENTION: Micros = MICROS_PER_DAY;

pub(super) fn expiry_key(expires: Micros, token_key: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + token_key.len());
    key.extend_from_slice(&(expires.max(0) as u64).to_be_bytes());
    key.extend_from_slice(token_key);
    key
}

/// The answer to a request sent with a ClientToken, committed in the same
/// transaction as the records the request adds: a crash keeps both or
/// neither, so a retry never does the work twice.
#[derive(Debug, Clone)]
pub struct TokenAnswer {
    /// Account, operation and token.
    pub key: Vec<u8>,
    pub record: TokenRecord,
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

impl Catalog {
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
        Ok((record.created + TOKEN_RETENTION > now).then_some(record))
    }

    /// Stores the answer to a token's first request. Not durable until
    /// [`Catalog::flush`].
    pub fn put_token(&self, token_key: &[u8], record: &TokenRecord) -> Result<(), CatalogError> {
        let answer = TokenAnswer {
            key: token_key.to_vec(),
            record: record.clone(),
        };
        (&self.tokens, &self.token_expiry)
            .transaction(|(tokens, expiry)| {
                insert_answer(tokens, expiry, &answer)?;
                Ok::<_, ConflictableTransactionError<CatalogError>>(())
            })
            .map_err(|err| match err {
                TransactionError::Abort(err) => err,
                TransactionError::Storage(err) => CatalogError::Storage(err),
            })
    }
}
