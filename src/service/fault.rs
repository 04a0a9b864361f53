//! A point where a test can stop the process as a kill -9 would, right
//! after a request's durable commit and before its answer is sent, to show
//! that the commit holds everything a retry needs. Only debug builds (the
//! ones tests run) have it; in a release build it does nothing.

/// Environment variable naming the operation to stop after:
/// `after-commit:create` or `after-commit:register`.
#[cfg(debug_assertions)]
pub const FAULT_ENV: &str = "RECORD_INDEX_FAULT";

/// Aborts the process when [`FAULT_ENV`] names `operation`.
#[cfg(debug_assertions)]
pub fn after_commit(operation: &str) {
    static FAULT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let fault = FAULT.get_or_init(|| std::env::var(FAULT_ENV).ok());
    if fault
        .as_deref()
        .and_then(|f| f.strip_prefix("after-commit:"))
        == Some(operation)
    {
        std::process::abort();
    }
}

#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn after_commit(_operation: &str) {}
