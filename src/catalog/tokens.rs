//! Answers to requests sent with a ClientToken, kept 24 hours so a retry
//! gets the first answer instead of doing the work again.

use prost::Message;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

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
        let by_expiry = expiry_key(record.created + TOKEN_RETENTION, token_key);
        (&self.tokens, &self.token_expiry)
            .transaction(|(tokens, expiry)| {
                tokens.insert(token_key, record.encode_to_vec())?;
                expiry.insert(by_expiry.as_slice(), &[])?;
                Ok::<_, ConflictableTransactionError<CatalogError>>(())
            })
            .map_err(|err| match err {
                TransactionError::Abort(err) => err,
                TransactionError::Storage(err) => CatalogError::Storage(err),
            })
    }
}
