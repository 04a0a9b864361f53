//! Tests of catalog behaviour run once per catalog engine: each is written
//! once, as `async fn name(engine: Engine)`, and [`on_both_engines!`]
//! makes it two tests, `on_sled::name` and `on_postgres::name` (so
//! `cargo test on_sled` runs one engine's share).

use super::pg_server::shared_database;

/// The variable a `record-index` process on PostgreSQL reads its
/// catalog's connection string from.
const CATALOG_URL_ENV: &str = "RECORD_INDEX_TEST_CATALOG_URL";

/// Which engine keeps the catalog of a server a test starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sled,
    Postgres,
}

/// What a `record-index` process needs for its catalog to be on `engine`:
/// a `[catalog]` table to append to its config file, and the variables to
/// set for it. On PostgreSQL, a fresh database of the server this test
/// binary shares.
pub async fn catalog_on(engine: Engine) -> (String, Vec<(String, String)>) {
    match engine {
        Engine::Sled => (String::new(), Vec::new()),
        Engine::Postgres => (
            format!("\n[catalog]\nengine = \"postgres\"\nurl_env = \"{CATALOG_URL_ENV}\"\n"),
            vec![(CATALOG_URL_ENV.into(), shared_database("server").await)],
        ),
    }
}

/// Runs each listed `async fn name(engine: Engine)` as a test on sled and
/// one on PostgreSQL. A name may be followed by the arguments of its
/// `#[tokio::test]` in parentheses: `name(flavor = "multi_thread")`.
#[macro_export]
macro_rules! on_both_engines {
    ($($name:ident $(($($args:tt)*))?),+ $(,)?) => {
        $crate::on_both_engines!(@engine on_sled Sled; $($name $(($($args)*))?),+);
        $crate::on_both_engines!(@engine on_postgres Postgres; $($name $(($($args)*))?),+);
    };
    (@engine $module:ident $engine:ident; $($name:ident $(($($args:tt)*))?),+) => {
        mod $module {
            $(
                #[tokio::test $(($($args)*))?]
                async fn $name() {
                    super::$name($crate::common::Engine::$engine).await
                }
            )+
        }
    };
}
