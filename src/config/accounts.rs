//! The tenants of a config: their domains, buckets, keys and limits, and
//! the checks that keep one account's streams out of another's reach.

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;

use super::{ConfigError, check_rate_limits};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    pub id: String,
    /// Streaming domains of the account; `*` matches any.
    #[serde(default)]
    pub domains: Vec<String>,
    /// Buckets the account owns; manifests may only be written there.
    #[serde(default)]
    pub buckets: Vec<String>,
    #[serde(default)]
    pub keys: Vec<KeyConfig>,
    /// This account's own limits, over the service-wide `rate_limits`.
    #[serde(default)]
    pub rate_limits: BTreeMap<String, u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// SHA-256 of the API key, lower-case hex; the key itself is not kept.
    pub sha256: String,
    /// RAM-style statements of what the key may do.
    #[serde(default)]
    pub allow: Vec<StatementConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementConfig {
    pub actions: Vec<String>,
    pub resources: Vec<String>,
}

/// Ids and key digests are unique, limits name real operations, and no
/// host belongs to two accounts.
pub(super) fn check(accounts: &[AccountConfig]) -> Result<(), ConfigError> {
    let mut account_ids = HashSet::new();
    let mut key_digests = HashSet::new();
    for account in accounts {
        if account.id.is_empty() || !account_ids.insert(account.id.as_str()) {
            return Err(ConfigError::Invalid(format!(
                "account id {:?} is empty or listed twice",
                account.id
            )));
        }
        check_rate_limits(
            &format!("account {:?} rate_limits", account.id),
            &account.rate_limits,
        )?;
        for key in &account.keys {
            if !key_digests.insert(key.sha256.to_ascii_lowercase()) {
                return Err(ConfigError::Invalid(format!(
                    "account {:?}: a key sha256 is listed twice; each key belongs to one account",
                    account.id
                )));
            }
            let valid = key.sha256.len() == 64 && key.sha256.bytes().all(|b| b.is_ascii_hexdigit());
            if !valid {
                return Err(ConfigError::Invalid(format!(
                    "account {:?}: key sha256 must be 64 hex characters",
                    account.id
                )));
            }
        }
    }
    check_domain_owners(accounts)
}

/// Every host belongs to at most one account: a host that two accounts'
/// domain patterns match would let either account read and index the
/// other's recordings.
fn check_domain_owners(accounts: &[AccountConfig]) -> Result<(), ConfigError> {
    match first_shared(accounts, |account| &account.domains) {
        None => Ok(()),
        Some(((first, a), (second, b))) => {
            let (first, second) = (&accounts[first], &accounts[second]);
            Err(ConfigError::Invalid(format!(
                "accounts {:?} and {:?} both own a host: their domain patterns {:?} and {:?} \
                 can match the same name; each host must belong to one account",
                first.id, second.id, first.domains[a], second.domains[b]
            )))
        }
    }
}

/// Two patterns of different accounts that can match one name, as
/// (account, pattern) indexes, compared without regard to case (host
/// names are case-insensitive: `A.example.com` is `a.example.com`).
fn first_shared(
    accounts: &[AccountConfig],
    patterns_of: impl Fn(&AccountConfig) -> &[String],
) -> Option<((usize, usize), (usize, usize))> {
    let patterns: Vec<(String, (usize, usize))> = accounts
        .iter()
        .enumerate()
        .flat_map(|(account, config)| {
            patterns_of(config)
                .iter()
                .enumerate()
                .map(move |(index, pattern)| (pattern.to_ascii_lowercase(), (account, index)))
        })
        .collect();
    crate::patterns::PatternSet::first_overlap(&patterns, |(a, _), (b, _)| a != b)
}

/// A warning when two accounts' bucket patterns can name one bucket:
/// each could then write playlists into, and index the media of, the
/// other's bucket. Allowed, for platforms that record every tenant into
/// one bucket and trust them alike, but said at start.
pub fn shared_bucket_warning(accounts: &[AccountConfig]) -> Option<String> {
    let ((first, a), (second, b)) = first_shared(accounts, |account| &account.buckets)?;
    let (first, second) = (&accounts[first], &accounts[second]);
    Some(format!(
        "accounts {:?} and {:?} share buckets: their bucket patterns {:?} and {:?} can \
         name the same bucket, so each may write playlists into it and index its objects",
        first.id, second.id, first.buckets[a], second.buckets[b]
    ))
}
