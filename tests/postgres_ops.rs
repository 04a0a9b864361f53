//! The PostgreSQL catalog as an operator runs it, through the
//! `record-index` binary against a real PostgreSQL 15: `migrate` before a
//! rollout.

mod common;

use std::process::Command;

use common::*;

const URL_ENV: &str = "PG_OPS_TEST_DATABASE_URL";

fn catalog_toml(engine: &str) -> String {
    format!(
        "[catalog]\nengine = \"{engine}\"\nurl_env = \"{URL_ENV}\"\npool_size = 4\n\
         statement_timeout_ms = 2000\n"
    )
}

/// Runs `record-index migrate` on a config holding `toml`: exit code,
/// stdout, stderr.
fn migrate(toml: &str, url: Option<&str>) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("record-index.toml");
    std::fs::write(&config, toml).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_record-index"));
    command
        .arg("migrate")
        .arg("--config")
        .arg(&config)
        .current_dir(dir.path())
        .env_remove("RECORD_INDEX_CONFIG")
        .env_remove(URL_ENV);
    if let Some(url) = url {
        command.env(URL_ENV, url);
    }
    let output = command.output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn migrate_applies_the_schema_once_and_exits() {
    let url = shared_database("migrate").await;
    let (code, stdout, stderr) = migrate(&catalog_toml("postgres"), Some(&url));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("applied catalog migrations 1;"), "{stdout}");
    let client = connect_url(&url).await;
    let tables: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE tablename IN
                 ('streams', 'segments', 'segment_keys', 'manifests', 'tokens', 'record_counts')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 6);

    let (code, stdout, stderr) = migrate(&catalog_toml("postgres"), Some(&url));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("schema is up to date (version 1)"),
        "{stdout}"
    );
    let applied: i64 = client
        .query_one("SELECT count(*) FROM schema_migrations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(applied, 1);
}

#[test]
fn migrate_refuses_what_it_cannot_reach_and_passes_over_sled() {
    let (code, stdout, stderr) = migrate(&catalog_toml("sled"), None);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("nothing to do"), "{stdout}");

    let (code, _, stderr) = migrate(&catalog_toml("postgres"), None);
    assert_eq!(code, 2);
    assert!(
        stderr.contains(&format!("{URL_ENV} is not set")),
        "{stderr}"
    );

    let closed = format!("host=127.0.0.1 port={} user=postgres", free_port());
    let (code, _, stderr) = migrate(&catalog_toml("postgres"), Some(&closed));
    assert_eq!(code, 1);
    assert!(
        stderr.contains("migrate failed: catalog unavailable"),
        "{stderr}"
    );
}
