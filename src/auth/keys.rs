//! New API keys: random, shown once, stored only as their SHA-256.

use sha2::{Digest, Sha256};

/// Prefix that makes keys recognizable in secret scanners and config diffs.
const KEY_PREFIX: &str = "rik_";

/// A fresh key: 256 random bits from the operating system.
pub fn generate() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes)?;
    Ok(format!("{KEY_PREFIX}{}", hex::encode(bytes)))
}

pub fn digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The `[[accounts.keys]]` block to paste under the account's entry.
pub fn config_block(account_id: &str, key: &str) -> String {
    format!(
        "[[accounts.keys]]\n\
         sha256 = \"{}\"\n\
         allow = [{{ actions = [\"live:*\"], resources = [\"acs:cdn:*:{account_id}:domain/*\"] }}]\n",
        digest(key)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_long_random_and_pasteable() {
        let (a, b) = (generate().unwrap(), generate().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), KEY_PREFIX.len() + 64);
        let block = config_block("42", &a);
        let text = format!("[[accounts]]\nid = \"42\"\n{block}");
        let config = crate::config::Config::from_toml(&text)
            .unwrap()
            .finish()
            .unwrap();
        assert_eq!(config.accounts[0].keys[0].sha256, digest(&a));
        assert!(!block.contains(&a));
    }
}
