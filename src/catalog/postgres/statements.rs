//! Statements sent prepared: each SQL text is parsed once per connection
//! (deadpool-postgres caches the prepared statement on the connection),
//! so a call is one round trip where a text query would be two (prepare,
//! then execute). Every statement of the request paths goes through here.
//!
//! Statements that must run in order but do not need each other's
//! results are prepared first ([`prepare`]) and then polled together: the
//! connection pipelines them, sending each in the order first polled
//! (`futures::try_join!` polls its arguments in order), and the server
//! runs them in that order.

use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};

use super::storage;
use crate::catalog::CatalogError;

pub(crate) type Params<'a> = [&'a (dyn ToSql + Sync)];

/// `sql` prepared on this connection, from its cache after the first time.
pub(crate) async fn prepare(
    client: &impl GenericClient,
    sql: &str,
) -> Result<Statement, CatalogError> {
    client.prepare_cached(sql).await.map_err(storage)
}

pub(crate) async fn query(
    client: &impl GenericClient,
    sql: &str,
    params: &Params<'_>,
) -> Result<Vec<Row>, CatalogError> {
    let statement = prepare(client, sql).await?;
    client.query(&statement, params).await.map_err(storage)
}

pub(crate) async fn query_one(
    client: &impl GenericClient,
    sql: &str,
    params: &Params<'_>,
) -> Result<Row, CatalogError> {
    let statement = prepare(client, sql).await?;
    client.query_one(&statement, params).await.map_err(storage)
}

pub(crate) async fn query_opt(
    client: &impl GenericClient,
    sql: &str,
    params: &Params<'_>,
) -> Result<Option<Row>, CatalogError> {
    let statement = prepare(client, sql).await?;
    client.query_opt(&statement, params).await.map_err(storage)
}

/// The number of rows the statement changed.
pub(crate) async fn execute(
    client: &impl GenericClient,
    sql: &str,
    params: &Params<'_>,
) -> Result<u64, CatalogError> {
    let statement = prepare(client, sql).await?;
    client.execute(&statement, params).await.map_err(storage)
}
