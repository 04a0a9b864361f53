//! Tests of catalog behaviour run once per catalog engine: each is written
//! once, as `async fn name(engine: Engine)`, and [`on_both_engines!`]
//! makes it two tests, `on_sled::name` and `on_postgres::name` (so
//! `cargo test on_sled` runs one engine's share).

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
