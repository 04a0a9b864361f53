//! Each account's limit per operation, looked up without scanning the
//! config on every request.

use std::collections::HashMap;

use crate::config::Config;
use crate::operations::Operation;

pub struct Rates {
    /// (operation, account) → requests per second, for configured accounts.
    by_account: HashMap<(Operation, String), u32>,
    /// Each operation's service-wide limit, for accounts not listed.
    defaults: HashMap<Operation, u32>,
}

impl Rates {
    pub fn new(config: &Config, account_ids: &[String]) -> Self {
        let mut by_account = HashMap::new();
        let mut defaults = HashMap::new();
        for operation in Operation::ALL {
            let default_rate = config
                .rate_limits
                .get(operation.name())
                .copied()
                .unwrap_or_else(|| operation.default_rate_limit());
            defaults.insert(operation, default_rate);
            for account in account_ids {
                let rate = config.rate_limit(account, operation);
                by_account.insert((operation, account.clone()), rate);
            }
        }
        Rates {
            by_account,
            defaults,
        }
    }

    /// Requests per second `account` may make of `operation`, at least 1.
    pub fn of(&self, account: &str, operation: Operation) -> u32 {
        self.by_account
            .get(&(operation, account.to_string()))
            .unwrap_or(&self.defaults[&operation])
            .to_owned()
            .max(1)
    }

    /// Every limit: each operation's default (no account) and each
    /// configured account's own.
    pub fn each(&self) -> impl Iterator<Item = (Operation, Option<&str>, u32)> {
        let defaults = self
            .defaults
            .iter()
            .map(|(operation, rate)| (*operation, None, *rate));
        let accounts = self
            .by_account
            .iter()
            .map(|((operation, account), rate)| (*operation, Some(account.as_str()), *rate));
        defaults.chain(accounts)
    }
}
