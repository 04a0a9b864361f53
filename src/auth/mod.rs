//! Who is calling and what they may do: API keys identify an account, the
//! account owns domains and buckets, and each key carries RAM-style
//! statements that limit it to some actions on some domains.

pub mod keys;
pub mod ram;

use std::collections::HashMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{Config, LOCAL_ACCOUNT};
use crate::error::{ApiError, ApiResult, quote};
use crate::operations::Operation;
use crate::patterns::{self, PatternSet};
use ram::Statement;

/// A tenant of the service.
#[derive(Debug)]
pub struct Account {
    pub id: String,
    /// Streaming domains (`*` patterns allowed); `None` means every domain
    /// (the local account).
    domains: Option<Vec<String>>,
    /// Buckets manifests may be written to and segments may be read from;
    /// `None` means every bucket (the local account).
    buckets: Option<Vec<String>>,
}

impl Account {
    pub fn owns_bucket(&self, bucket: &str) -> bool {
        match &self.buckets {
            None => true,
            Some(buckets) => buckets.iter().any(|owned| patterns::matches(owned, bucket)),
        }
    }
}

/// Every account's domain patterns, indexed to find the accounts that own
/// a domain without trying every pattern of every account.
#[derive(Debug)]
struct DomainOwners {
    accounts: Vec<Arc<Account>>,
    patterns: PatternSet<usize>,
}

impl DomainOwners {
    fn new(accounts: Vec<Arc<Account>>) -> DomainOwners {
        let patterns = accounts
            .iter()
            .enumerate()
            .flat_map(|(index, account)| {
                let domains = account.domains.as_deref().unwrap_or(&[]);
                // The local account owns every domain.
                let all = account.domains.is_none().then(|| ("*".to_string(), index));
                domains
                    .iter()
                    .map(move |domain| (domain.clone(), index))
                    .chain(all)
            })
            .collect::<Vec<_>>();
        DomainOwners {
            patterns: PatternSet::new(patterns),
            accounts,
        }
    }

    /// The account whose patterns match `domain`, when exactly one does.
    /// A config in which two accounts' patterns overlap is refused at
    /// start; should two match all the same, the domain is neither's.
    fn sole_owner(&self, domain: &str) -> Option<&Account> {
        let mut owners = self.patterns.matching(domain);
        owners.sort_unstable();
        owners.dedup();
        match owners.as_slice() {
            [owner] => Some(&self.accounts[*owner]),
            _ => None,
        }
    }
}

/// The authenticated caller of one request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub account: Arc<Account>,
    /// What the key may do; `None` for the local account, which may do
    /// everything.
    statements: Option<Arc<[Statement]>>,
    /// Every account, so a domain is checked to be this account's alone.
    owners: Arc<DomainOwners>,
}

impl Caller {
    /// Checks that the caller may perform `operation` on `domain`: the
    /// domain is the account's and no other's, and a statement of the key
    /// allows it.
    pub fn authorize(&self, operation: Operation, domain: &str) -> ApiResult<()> {
        self.check_owns_domain(domain)?;
        let Some(statements) = &self.statements else {
            return Ok(());
        };
        let action = operation.action();
        let resource = ram::domain_resource(&self.account.id, domain);
        if ram::allows(statements, &action, &resource) {
            Ok(())
        } else {
            Err(ApiError::ForbiddenRam(format!(
                "the API key may not perform {action} on {}",
                quote(&resource)
            )))
        }
    }

    pub fn owns_bucket(&self, bucket: &str) -> bool {
        self.account.owns_bucket(bucket)
    }

    /// Checks that the caller's account is `domain`'s sole owner: what
    /// playback needs, where no API key (and so no statement) applies.
    pub fn check_owns_domain(&self, domain: &str) -> ApiResult<()> {
        let owned = self
            .owners
            .sole_owner(domain)
            .is_some_and(|owner| owner.id == self.account.id);
        if owned {
            Ok(())
        } else {
            Err(ApiError::ForbiddenRam(format!(
                "domain {} does not belong to account {}",
                quote(domain),
                self.account.id
            )))
        }
    }
}

/// The configured accounts, and the key digests that identify them.
pub struct Accounts {
    /// Set in local mode: every request acts as this caller, without a key.
    local: Option<Caller>,
    /// SHA-256 of each key (all the config keeps of it) → its caller.
    keys: HashMap<[u8; 32], Caller>,
    /// Every configured account by id.
    by_id: HashMap<String, Arc<Account>>,
    owners: Arc<DomainOwners>,
}

impl Accounts {
    pub fn from_config(config: &Config) -> Accounts {
        if config.is_local_mode() {
            let account = Account {
                id: LOCAL_ACCOUNT.to_string(),
                domains: None,
                buckets: None,
            };
            let account = Arc::new(account);
            let owners = Arc::new(DomainOwners::new(vec![account.clone()]));
            let local = Caller {
                account,
                statements: None,
                owners: owners.clone(),
            };
            return Accounts {
                local: Some(local),
                keys: HashMap::new(),
                by_id: HashMap::new(),
                owners,
            };
        }
        let accounts: Vec<Arc<Account>> = config
            .accounts
            .iter()
            .map(|configured| {
                Arc::new(Account {
                    id: configured.id.clone(),
                    domains: Some(configured.domains.clone()),
                    buckets: Some(configured.buckets.clone()),
                })
            })
            .collect();
        let owners = Arc::new(DomainOwners::new(accounts.clone()));
        let mut keys = HashMap::new();
        let mut by_id = HashMap::new();
        for (configured, account) in config.accounts.iter().zip(accounts) {
            by_id.insert(configured.id.clone(), account.clone());
            for key in &configured.keys {
                let mut sha256 = [0u8; 32];
                // Config::finish has checked the digests' form.
                if hex::decode_to_slice(&key.sha256, &mut sha256).is_err() {
                    continue;
                }
                let statements: Arc<[Statement]> = key
                    .allow
                    .iter()
                    .map(|s| Statement {
                        actions: s.actions.clone(),
                        resources: s.resources.clone(),
                    })
                    .collect();
                keys.insert(
                    sha256,
                    Caller {
                        account: account.clone(),
                        statements: Some(statements),
                        owners: owners.clone(),
                    },
                );
            }
        }
        Accounts {
            local: None,
            keys,
            by_id,
            owners,
        }
    }

    /// A caller acting for `account_id` with every right its account has:
    /// for ingest paths authenticated by other means (webhook secrets).
    pub fn caller_of(&self, account_id: &str) -> Option<Caller> {
        if let Some(local) = &self.local {
            return (local.account.id == account_id).then(|| local.clone());
        }
        self.by_id.get(account_id).map(|account| Caller {
            account: account.clone(),
            statements: None,
            owners: self.owners.clone(),
        })
    }

    /// The caller that plays `domain`'s recordings: the domain's sole
    /// owner with every right its account has (the local caller in local
    /// mode). Playback is authenticated by signed URLs, not API keys.
    pub fn owner_of(&self, domain: &str) -> Option<Caller> {
        if let Some(local) = &self.local {
            return Some(local.clone());
        }
        let owner = self.owners.sole_owner(domain)?;
        self.caller_of(&owner.id)
    }

    /// Every account requests can act as, for the rate limiter.
    pub fn account_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .local
            .iter()
            .map(|caller| caller.account.id.clone())
            .chain(self.by_id.keys().cloned())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// The caller of the `authorization: Bearer <key>` value.
    pub fn authenticate(&self, authorization: Option<&str>) -> ApiResult<Caller> {
        if let Some(local) = &self.local {
            return Ok(local.clone());
        }
        let key = authorization
            // The scheme is case-insensitive, as everywhere in HTTP.
            .and_then(|value| {
                value
                    .split_once(' ')
                    .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            })
            .map(|(_, key)| key)
            .map(str::trim)
            .filter(|key| !key.is_empty())
            .ok_or_else(|| {
                ApiError::InvalidAccessKeyId("send `authorization: Bearer <api key>`".into())
            })?;
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        // The lookup is by the digest of the presented key, which tells an
        // attacker nothing about stored keys; the final comparison is in
        // constant time all the same.
        let found = self
            .keys
            .get_key_value(&digest)
            .filter(|(stored, _)| bool::from(stored.ct_eq(&digest)))
            .map(|(_, caller)| caller.clone());
        found.ok_or_else(|| ApiError::InvalidAccessKeyId("the API key is not known".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts() -> Accounts {
        let digest = hex::encode(Sha256::digest(b"secret-key"));
        let other = hex::encode(Sha256::digest(b"ingest-key"));
        let text = format!(
            "[[accounts]]\nid = \"42\"\ndomains = [\"a.com\", \"*.a.com\"]\nbuckets = [\"b1\"]\n\
             [[accounts.keys]]\nsha256 = \"{digest}\"\n\
             allow = [{{ actions = [\"live:*\"], resources = [\"acs:cdn:*:42:domain/*\"] }}]\n\
             [[accounts.keys]]\nsha256 = \"{other}\"\n\
             allow = [{{ actions = [\"live:RegisterLiveStreamRecordSegments\"], resources = [\"acs:cdn:*:42:domain/a.com\"] }}]\n"
        );
        Accounts::from_config(&Config::from_toml(&text).unwrap().finish().unwrap())
    }

    #[test]
    fn keys_identify_their_account() {
        let accounts = accounts();
        let caller = accounts.authenticate(Some("Bearer secret-key")).unwrap();
        assert_eq!(caller.account.id, "42");
        assert!(caller.owns_bucket("b1") && !caller.owns_bucket("b2"));
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
        assert_eq!(accounts.account_ids(), vec!["42".to_string()]);
    }

    #[test]
    fn statements_and_domains_limit_a_key() {
        let accounts = accounts();
        let admin = accounts.authenticate(Some("Bearer secret-key")).unwrap();
        let ingest = accounts.authenticate(Some("Bearer ingest-key")).unwrap();
        let create = Operation::CreateLiveStreamRecordIndexFiles;
        let register = Operation::RegisterLiveStreamRecordSegments;
        assert!(admin.authorize(create, "a.com").is_ok());
        assert!(admin.authorize(create, "live.a.com").is_ok());
        assert_eq!(
            admin.authorize(create, "b.com").unwrap_err().code(),
            "Forbidden.RAM"
        );
        assert!(ingest.authorize(register, "a.com").is_ok());
        assert_eq!(
            ingest.authorize(create, "a.com").unwrap_err().code(),
            "Forbidden.RAM"
        );
        assert_eq!(
            ingest.authorize(register, "live.a.com").unwrap_err().code(),
            "Forbidden.RAM"
        );
    }

    #[test]
    fn a_domain_two_accounts_match_is_neither_accounts() {
        // A config `finish` would refuse, to check the second line of
        // defence on its own.
        let key = |secret: &str| hex::encode(Sha256::digest(secret.as_bytes()));
        let text = format!(
            "[[accounts]]\nid = \"1000000001\"\ndomains = [\"a.example.com\", \"own.example.org\"]\n\
             [[accounts.keys]]\nsha256 = \"{}\"\n\
             allow = [{{ actions = [\"live:*\"], resources = [\"*\"] }}]\n\
             [[accounts]]\nid = \"3000000003\"\ndomains = [\"*.example.com\"]\n\
             [[accounts.keys]]\nsha256 = \"{}\"\n\
             allow = [{{ actions = [\"live:*\"], resources = [\"*\"] }}]\n",
            key("first"),
            key("second")
        );
        let accounts = Accounts::from_config(&Config::from_toml(&text).unwrap());
        let first = accounts.authenticate(Some("Bearer first")).unwrap();
        let second = accounts.authenticate(Some("Bearer second")).unwrap();
        let describe = Operation::DescribeLiveStreamRecordIndexFile;
        for caller in [&first, &second] {
            let err = caller.authorize(describe, "a.example.com").unwrap_err();
            assert_eq!(err.code(), "Forbidden.RAM");
        }
        assert!(first.authorize(describe, "own.example.org").is_ok());
        assert!(second.authorize(describe, "b.example.com").is_ok());
        let hook = accounts.caller_of("3000000003").unwrap();
        assert!(hook.authorize(describe, "a.example.com").is_err());
    }

    #[test]
    fn local_mode_needs_no_key_and_may_do_everything() {
        let accounts = Accounts::from_config(&Config::default().finish().unwrap());
        let caller = accounts.authenticate(None).unwrap();
        assert_eq!(caller.account.id, LOCAL_ACCOUNT);
        assert!(caller.owns_bucket("anything"));
        assert!(
            caller
                .authorize(Operation::CreateLiveStreamRecordIndexFiles, "x.com")
                .is_ok()
        );
    }
}
