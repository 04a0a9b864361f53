//! Who is calling: the account an API key belongs to, and what it owns.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{Config, LOCAL_ACCOUNT};
use crate::error::{ApiError, ApiResult};

/// A tenant of the service.
#[derive(Debug)]
pub struct Account {
    pub id: String,
    /// Buckets manifests may be written to; `None` means every bucket
    /// (the local account).
    buckets: Option<Vec<String>>,
}

impl Account {
    pub fn owns_bucket(&self, bucket: &str) -> bool {
        match &self.buckets {
            None => true,
            Some(buckets) => buckets.iter().any(|owned| owned == bucket || owned == "*"),
        }
    }
}

/// The configured accounts, and the key digests that identify them.
pub struct Accounts {
    /// Set in local mode: every request acts as this account, without a key.
    local: Option<Arc<Account>>,
    /// SHA-256 of each key with its account.
    keys: Vec<([u8; 32], Arc<Account>)>,
}

impl Accounts {
    pub fn from_config(config: &Config) -> Accounts {
        if config.is_local_mode() {
            let local = Account {
                id: LOCAL_ACCOUNT.to_string(),
                buckets: None,
            };
            return Accounts {
                local: Some(Arc::new(local)),
                keys: Vec::new(),
            };
        }
        let mut keys = Vec::new();
        for configured in &config.accounts {
            let account = Arc::new(Account {
                id: configured.id.clone(),
                buckets: Some(configured.buckets.clone()),
            });
            for key in &configured.keys {
                let mut digest = [0u8; 32];
                if hex::decode_to_slice(&key.sha256, &mut digest).is_ok() {
                    keys.push((digest, account.clone()));
                }
            }
        }
        Accounts { local: None, keys }
    }

    /// The account of the `authorization: Bearer <key>` value.
    pub fn authenticate(&self, authorization: Option<&str>) -> ApiResult<Arc<Account>> {
        if let Some(local) = &self.local {
            return Ok(local.clone());
        }
        let key = authorization
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|key| !key.is_empty())
            .ok_or_else(|| {
                ApiError::InvalidAccessKeyId("send `authorization: Bearer <api key>`".into())
            })?;
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        // Compare against every key so the time taken says nothing about
        // which digest matched.
        let mut found = None;
        for (stored, account) in &self.keys {
            if bool::from(stored.ct_eq(&digest)) {
                found = Some(account.clone());
            }
        }
        found.ok_or_else(|| ApiError::InvalidAccessKeyId("the API key is not known".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_identify_their_account() {
        let digest = hex::encode(Sha256::digest(b"secret-key"));
        let text = format!(
            "[[accounts]]\nid = \"42\"\nbuckets = [\"b1\"]\n[[accounts.keys]]\nsha256 = \"{digest}\"\n"
        );
        let config = Config::from_toml(&text).unwrap().finish().unwrap();
        let accounts = Accounts::from_config(&config);
        let account = accounts.authenticate(Some("Bearer secret-key")).unwrap();
        assert_eq!(account.id, "42");
        assert!(account.owns_bucket("b1") && !account.owns_bucket("b2"));
        for bad in [
            None,
            Some("Bearer other"),
            Some("secret-key"),
            Some("Bearer "),
        ] {
            assert_eq!(
                accounts.authenticate(bad).unwrap_err().code(),
                "InvalidAccessKeyId"
            );
        }
    }

    #[test]
    fn local_mode_needs_no_key_and_owns_every_bucket() {
        let accounts = Accounts::from_config(&Config::default().finish().unwrap());
        let account = accounts.authenticate(None).unwrap();
        assert_eq!(account.id, LOCAL_ACCOUNT);
        assert!(account.owns_bucket("anything"));
    }
}
