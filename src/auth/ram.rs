//! RAM-style policy statements: which actions a key may perform on which
//! resources. Pure matching, no I/O.

use crate::patterns::matches as glob;

/// One `{actions, resources}` statement of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// Patterns like `live:CreateLiveStreamRecordIndexFiles`, `live:Describe*`
    /// or `live:*`; matched without regard to case, as RAM does.
    pub actions: Vec<String>,
    /// Patterns like `acs:cdn:*:1234567890:domain/example.com`; `*` matches
    /// any run of characters.
    pub resources: Vec<String>,
}

/// The resource name of a streaming domain of an account.
pub fn domain_resource(account_id: &str, domain: &str) -> String {
    format!("acs:cdn:*:{account_id}:domain/{domain}")
}

/// Whether any statement allows `action` on `resource`.
pub fn allows(statements: &[Statement], action: &str, resource: &str) -> bool {
    statements.iter().any(|statement| {
        statement
            .actions
            .iter()
            .any(|pattern| glob(&pattern.to_ascii_lowercase(), &action.to_ascii_lowercase()))
            && statement
                .resources
                .iter()
                .any(|pattern| glob(pattern, resource))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(actions: &[&str], resources: &[&str]) -> Statement {
        Statement {
            actions: actions.iter().map(|s| s.to_string()).collect(),
            resources: resources.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_statement_needs_both_the_action_and_the_resource() {
        let statements = vec![
            statement(
                &["live:CreateLiveStreamRecordIndexFiles"],
                &["acs:cdn:*:42:domain/a.com"],
            ),
            statement(&["live:Describe*"], &["acs:cdn:*:42:domain/*"]),
        ];
        let a = domain_resource("42", "a.com");
        let b = domain_resource("42", "b.com");
        assert!(allows(
            &statements,
            "live:CreateLiveStreamRecordIndexFiles",
            &a
        ));
        assert!(allows(
            &statements,
            "LIVE:createlivestreamrecordindexfiles",
            &a
        ));
        assert!(!allows(
            &statements,
            "live:CreateLiveStreamRecordIndexFiles",
            &b
        ));
        assert!(allows(
            &statements,
            "live:DescribeLiveStreamRecordIndexFile",
            &b
        ));
        assert!(!allows(
            &statements,
            "live:RegisterLiveStreamRecordSegments",
            &a
        ));
        assert!(!allows(&[], "live:CreateLiveStreamRecordIndexFiles", &a));
        // A signed playback URL hands out media: reading metadata does not
        // grant it, `live:*` does.
        assert!(!allows(&statements, "live:SignPlaybackUrl", &b));
        let all = vec![statement(&["live:*"], &["acs:cdn:*:42:domain/*"])];
        assert!(allows(&all, "live:SignPlaybackUrl", &b));
    }
}
