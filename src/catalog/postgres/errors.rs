//! PostgreSQL's errors as the contract reports them: `Unavailable` when
//! the same request may succeed later (the server or the network is
//! down, no connection came in time, a statement ran past its timeout,
//! the database gave up a transaction to a conflict), `Storage` when the
//! work itself was refused. Clients retry the first and not the second.

use std::error::Error;

use tokio_postgres::error::SqlState;

use crate::catalog::CatalogError;

/// A database or pool error, with its causes (the socket's error, the
/// server's message): the top-level text alone is often just "db error".
/// None of them holds the connection string.
pub(crate) fn storage(err: impl Error + 'static) -> CatalogError {
    let mut message = format!("postgres: {err}");
    let mut cause = err.source();
    while let Some(inner) = cause {
        let text = inner.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        cause = inner.source();
    }
    if transient(&err) {
        CatalogError::Unavailable(message)
    } else {
        CatalogError::Storage(message)
    }
}

fn transient(err: &(dyn Error + 'static)) -> bool {
    if let Some(pool) = err.downcast_ref::<deadpool_postgres::PoolError>() {
        return match pool {
            deadpool_postgres::PoolError::Backend(db) => transient(db),
            deadpool_postgres::PoolError::PostCreateHook(_)
            | deadpool_postgres::PoolError::NoRuntimeSpecified => false,
            // No connection within the wait, or the pool is shutting down.
            deadpool_postgres::PoolError::Timeout(_) | deadpool_postgres::PoolError::Closed => true,
        };
    }
    if let Some(db) = err.downcast_ref::<tokio_postgres::Error>() {
        if db.is_closed() {
            return true;
        }
        if let Some(code) = db.code() {
            return transient_state(code);
        }
    }
    // Without a server's answer: a socket that failed or timed out.
    let mut cause: Option<&(dyn Error + 'static)> = Some(err);
    while let Some(inner) = cause {
        if inner.is::<std::io::Error>() {
            return true;
        }
        cause = inner.source();
    }
    false
}

/// SQLSTATEs of a server that is going away, overloaded or out of time,
/// or of a transaction that lost a conflict.
fn transient_state(code: &SqlState) -> bool {
    let class = &code.code()[..2];
    // 08: connection exception; 53: insufficient resources (too many
    // connections, disk full); 57: operator intervention (shutdown,
    // statement timeout, cancel); 40: a serialization failure or deadlock.
    matches!(class, "08" | "53" | "57" | "40")
        || *code == SqlState::LOCK_NOT_AVAILABLE
        || *code == SqlState::READ_ONLY_SQL_TRANSACTION
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_a_retry_can_help() {
        for code in [
            SqlState::QUERY_CANCELED,
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::CONNECTION_FAILURE,
            SqlState::TOO_MANY_CONNECTIONS,
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
        ] {
            assert!(transient_state(&code), "{code:?}");
        }
        for code in [
            SqlState::UNIQUE_VIOLATION,
            SqlState::SYNTAX_ERROR,
            SqlState::UNDEFINED_TABLE,
            SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
        ] {
            assert!(!transient_state(&code), "{code:?}");
        }
    }

    #[test]
    fn a_pool_timeout_is_unavailable() {
        let err = deadpool_postgres::PoolError::Timeout(deadpool_postgres::TimeoutType::Wait);
        assert!(matches!(storage(err), CatalogError::Unavailable(_)));
    }
}
