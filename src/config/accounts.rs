//! The tenants of a config: their domains, buckets, keys and limits, and
//! the checks that keep one account's streams out of another's reach.

use std::collections::{BTreeMap, HashSet};
use std::env::VarError;

use serde::Deserialize;

use super::{ConfigError, check_rate_limits};
use crate::playback::signing::{DEFAULT_VALIDITY_SECS, MAX_VALIDITY_SECS, SigningKeys};

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
    /// Keys that sign the account's playback URLs; without them its
    /// streams cannot be played over HTTP (local mode needs none).
    #[serde(default)]
    pub playback: Option<AccountPlaybackConfig>,
}

/// `[accounts.playback]`: Type A URL signing of the account's playback
/// URLs. The keys are secrets: the file names the environment variables
/// that hold them, and neither the values nor anything made from them is
/// logged.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountPlaybackConfig {
    /// Variable holding the key new URLs are signed with.
    pub primary_key_env: String,
    /// Variable holding a second key whose URLs also pass: the old key
    /// while URLs signed with it are still out, during a rotation.
    #[serde(default)]
    pub secondary_key_env: Option<String>,
    /// Seconds a URL stays valid after its timestamp.
    #[serde(default = "default_validity_secs")]
    pub validity_secs: u64,
}

fn default_validity_secs() -> u64 {
    DEFAULT_VALIDITY_SECS
}

impl AccountConfig {
    /// The account's playback signing keys, read from the environment
    /// variables `[accounts.playback]` names; `None` without the table. A
    /// variable that is not set, is empty or holds what cannot be a key is
    /// an error of one line naming the account and the variable, never
    /// the value.
    pub fn playback_keys(&self) -> Result<Option<SigningKeys>, String> {
        self.playback_keys_from(&|name| std::env::var(name))
    }

    fn playback_keys_from(
        &self,
        env: &dyn Fn(&str) -> Result<String, VarError>,
    ) -> Result<Option<SigningKeys>, String> {
        let Some(playback) = &self.playback else {
            return Ok(None);
        };
        let read = |field: &str, name: &str| {
            let problem = match env(name) {
                Ok(key) if key.is_empty() => "is empty",
                Ok(key) if key.trim() != key || key.chars().any(char::is_control) => {
                    "has leading or trailing whitespace or a control character"
                }
                Ok(key) => return Ok(key),
                Err(VarError::NotPresent) => "is not set",
                Err(VarError::NotUnicode(_)) => "is not valid UTF-8",
            };
            Err(format!(
                "account {:?}: environment variable {name} ([accounts.playback] {field}) {problem}",
                self.id
            ))
        };
        let primary = read("primary_key_env", &playback.primary_key_env)?;
        let secondary = match &playback.secondary_key_env {
            Some(name) => Some(read("secondary_key_env", name)?),
            None => None,
        };
        Ok(Some(SigningKeys::new(
            primary,
            secondary,
            playback.validity_secs,
        )))
    }
}

/// The playback signing keys of every account that has them, by account
/// id: the first variable that is not set or empty is the error, as in
/// [`AccountConfig::playback_keys`].
pub fn playback_keys(accounts: &[AccountConfig]) -> Result<BTreeMap<String, SigningKeys>, String> {
    let mut keys = BTreeMap::new();
    for account in accounts {
        if let Some(found) = account.playback_keys()? {
            keys.insert(account.id.clone(), found);
        }
    }
    Ok(keys)
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
        if let Some(playback) = &account.playback {
            check_playback(&account.id, playback)?;
        }
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

/// Variable names a shell can set, and a validity the verifier can use.
fn check_playback(account: &str, playback: &AccountPlaybackConfig) -> Result<(), ConfigError> {
    let names = [
        ("primary_key_env", Some(&playback.primary_key_env)),
        ("secondary_key_env", playback.secondary_key_env.as_ref()),
    ];
    for (field, name) in names {
        let Some(name) = name else { continue };
        let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(ConfigError::Invalid(format!(
                "account {account:?}: [accounts.playback] {field} = {name:?} is not an environment \
                 variable name (letters, digits and _, not starting with a digit)"
            )));
        }
    }
    if playback.secondary_key_env.as_ref() == Some(&playback.primary_key_env) {
        return Err(ConfigError::Invalid(format!(
            "account {account:?}: [accounts.playback] secondary_key_env names the same variable \
             as primary_key_env"
        )));
    }
    if !(1..=MAX_VALIDITY_SECS).contains(&playback.validity_secs) {
        return Err(ConfigError::Invalid(format!(
            "account {account:?}: [accounts.playback] validity_secs = {} must be 1 to \
             {MAX_VALIDITY_SECS} (a year)",
            playback.validity_secs
        )));
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn account(playback: &str) -> Result<Config, ConfigError> {
        let text = format!("[[accounts]]\nid = \"1234\"\n[accounts.playback]\n{playback}");
        Config::from_toml(&text)?.finish()
    }

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Result<String, VarError> {
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        move |name| vars.get(name).cloned().ok_or(VarError::NotPresent)
    }

    #[test]
    fn the_playback_table_is_optional_and_has_defaults() {
        let none = Config::from_toml("[[accounts]]\nid = \"1234\"\n")
            .unwrap()
            .finish()
            .unwrap();
        assert!(none.accounts[0].playback.is_none());
        assert!(matches!(none.accounts[0].playback_keys(), Ok(None)));
        let config = account("primary_key_env = \"PLAY_KEY\"\n").unwrap();
        let playback = config.accounts[0].playback.as_ref().unwrap();
        assert_eq!(playback.primary_key_env, "PLAY_KEY");
        assert_eq!(playback.secondary_key_env, None);
        assert_eq!(playback.validity_secs, 1800);
    }

    #[test]
    fn bad_playback_tables_are_refused_in_one_line() {
        for (table, said) in [
            ("", "primary_key_env"),
            ("secondary_key_env = \"B\"\n", "primary_key_env"),
            ("primary_key_env = \"A\"\nkey = \"x\"\n", "unknown field"),
            ("primary_key_env = \"\"\n", "primary_key_env = \"\""),
            (
                "primary_key_env = \"1A\"\n",
                "not an environment variable name",
            ),
            (
                "primary_key_env = \"A=B\"\n",
                "not an environment variable name",
            ),
            (
                "primary_key_env = \"A\"\nsecondary_key_env = \"\"\n",
                "secondary_key_env = \"\"",
            ),
            (
                "primary_key_env = \"A\"\nsecondary_key_env = \"A\"\n",
                "the same variable",
            ),
            (
                "primary_key_env = \"A\"\nvalidity_secs = 0\n",
                "validity_secs = 0",
            ),
            (
                "primary_key_env = \"A\"\nvalidity_secs = 31536001\n",
                "must be 1 to 31536000",
            ),
            (
                "primary_key_env = \"A\"\nvalidity_secs = -1\n",
                "validity_secs",
            ),
        ] {
            let err = account(table).unwrap_err().to_string();
            assert!(err.contains(said), "{table:?}: {err}");
        }
        for table in [
            "primary_key_env = \"A\"\nvalidity_secs = 1\n",
            "primary_key_env = \"_A_1\"\nsecondary_key_env = \"b2\"\nvalidity_secs = 31536000\n",
        ] {
            assert!(account(table).is_ok(), "{table:?}");
        }
        let err = account("primary_key_env = \"A\"\nvalidity_secs = 0\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"1234\"") && !err.contains('\n'), "{err}");
    }

    #[test]
    fn keys_come_from_the_named_variables() {
        let config =
            account("primary_key_env = \"P\"\nsecondary_key_env = \"S\"\nvalidity_secs = 60\n")
                .unwrap();
        let account = &config.accounts[0];
        let keys = account
            .playback_keys_from(&env(&[("P", "primary value"), ("S", "second value")]))
            .unwrap()
            .unwrap();
        assert_eq!(keys.primary(), "primary value");
        assert_eq!(keys.validity_secs(), 60);
        let auth_key = crate::playback::signing::sign("/p", "second value", 100, "r", "0");
        let by_secondary = crate::playback::signing::verify("/p", Some(&auth_key), &keys, 100);
        assert!(by_secondary.is_ok());
    }

    #[test]
    fn a_missing_or_empty_variable_is_named_without_values() {
        let config = account("primary_key_env = \"P\"\nsecondary_key_env = \"S\"\n").unwrap();
        let account = &config.accounts[0];
        for (vars, named, problem) in [
            (vec![("S", "s3cret-two")], "P", "is not set"),
            (vec![("P", ""), ("S", "s3cret-two")], "P", "is empty"),
            (vec![("P", "s3cret-one")], "S", "is not set"),
            (vec![("P", "s3cret-one"), ("S", "")], "S", "is empty"),
            (
                vec![("P", "s3cret-one\n"), ("S", "s3cret-two")],
                "P",
                "whitespace",
            ),
            (
                vec![("P", " s3cret-one"), ("S", "s3cret-two")],
                "P",
                "whitespace",
            ),
        ] {
            let err = account.playback_keys_from(&env(&vars)).unwrap_err();
            assert!(
                err.contains("\"1234\"")
                    && err.contains(&format!("environment variable {named} "))
                    && err.contains(problem)
                    && !err.contains("s3cret")
                    && !err.contains('\n'),
                "{vars:?}: {err}"
            );
        }
        let not_utf8 = |_: &str| Err(VarError::NotUnicode(std::ffi::OsString::from("x")));
        let err = account.playback_keys_from(&not_utf8).unwrap_err();
        assert!(err.contains("not valid UTF-8"), "{err}");
    }
}
