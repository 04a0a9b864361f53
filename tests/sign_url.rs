//! `record-index sign-url` as an operator runs it: the real binary, a
//! config file and the key in an environment variable; what it prints is
//! checked by the verifier the playback listener uses. And the refusals:
//! one line, exit status 2, naming the variable and never a key.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use record_index::playback::signing::{self, KeySlot, SigningKeys, VerifyError};

const ACCOUNT: &str = "1234567890";
const PRIMARY_ENV: &str = "SIGN_URL_TEST_PRIMARY_KEY";
const SECONDARY_ENV: &str = "SIGN_URL_TEST_SECONDARY_KEY";
const PRIMARY: &str = "Prim4ryPlaybackKeyValue";
const SECONDARY: &str = "S3condaryPlaybackKeyValue";
const VALIDITY: u64 = 600;

/// A config of one account with `playback` as its `[accounts.playback]`
/// (none when empty), and a second account without one.
fn config(dir: &Path, playback: &str) -> PathBuf {
    let table = if playback.is_empty() {
        String::new()
    } else {
        format!("[accounts.playback]\n{playback}")
    };
    let text = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = {data_dir:?}\n\n\
         [[accounts]]\nid = \"{ACCOUNT}\"\ndomains = [\"example.com\"]\n{table}\n\
         [[accounts]]\nid = \"555\"\ndomains = [\"other.example\"]\n",
        data_dir = dir.join("data"),
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn both_keys() -> String {
    format!(
        "primary_key_env = \"{PRIMARY_ENV}\"\nsecondary_key_env = \"{SECONDARY_ENV}\"\n\
         validity_secs = {VALIDITY}\n"
    )
}

fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_record-index"));
    command
        .args(args)
        .env_remove(PRIMARY_ENV)
        .env_remove(SECONDARY_ENV)
        .env_remove("RECORD_INDEX_CONFIG")
        .env_remove("RECORD_INDEX_LISTEN")
        .env_remove("RECORD_INDEX_DATA_DIR")
        .envs(env.iter().copied());
    command
}

fn sign_url(config: &Path, extra: &[&str], url: &str, env: &[(&str, &str)]) -> Output {
    let mut args = vec![
        "sign-url",
        "--config",
        config.to_str().unwrap(),
        "--account",
        ACCOUNT,
    ];
    args.extend_from_slice(extra);
    args.push(url);
    command(&args, env).output().unwrap()
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The one line `output` printed on stdout.
fn printed(output: &Output) -> String {
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    stdout.trim_end().to_string()
}

/// The one line `output` said on stderr when it exited with status 2.
fn refusal(output: &Output) -> String {
    let stderr = String::from_utf8(output.stderr.clone()).unwrap();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(output.stdout.is_empty(), "{:?}", output.stdout);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        !stderr.contains(PRIMARY) && !stderr.contains(SECONDARY),
        "{stderr}"
    );
    stderr
}

/// The path and query of a printed URL, as a client sends them.
fn path_and_query(url: &str) -> (&str, Option<&str>) {
    let (_, rest) = url.split_once("://").unwrap();
    let rest = &rest[rest.find('/').unwrap()..];
    match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    }
}

#[test]
fn the_printed_url_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &both_keys());
    let env = [(PRIMARY_ENV, PRIMARY), (SECONDARY_ENV, SECONDARY)];
    let base = "https://play.example.com/v1/example.com/live/cam%201/index.m3u8";
    let url = format!(
        "{base}?start=2024-01-01T00:00:00Z&auth_key=1700000000-0-0-00000000000000000000000000000000&end=1704067260"
    );
    let before = now();
    let signed = printed(&sign_url(&config, &[], &url, &env));
    let after = now();
    let prefix = format!("{base}?start=2024-01-01T00:00:00Z&end=1704067260&auth_key=");
    assert!(signed.starts_with(&prefix), "{signed}");

    let (path, query) = path_and_query(&signed);
    assert_eq!(path, "/v1/example.com/live/cam%201/index.m3u8");
    let keys = SigningKeys::new(PRIMARY.into(), Some(SECONDARY.into()), VALIDITY);
    let verified = signing::verify_query(path, query, &keys, after).unwrap();
    assert_eq!(verified.key, KeySlot::Primary);
    assert_eq!(verified.uid, "0");
    assert!(
        (before..=after).contains(&verified.timestamp),
        "{verified:?}"
    );
    assert_eq!(verified.expires_at, verified.timestamp + VALIDITY as i64);
    assert_eq!(
        signing::verify_query(path, query, &keys, verified.expires_at + 1),
        Err(VerifyError::Expired)
    );
    // Signed by the primary key only: the secondary alone does not pass it.
    let secondary_only = SigningKeys::new(SECONDARY.into(), None, VALIDITY);
    assert_eq!(
        signing::verify_query(path, query, &secondary_only, after),
        Err(VerifyError::Mismatch)
    );
    // Each URL gets its own rand.
    let again = printed(&sign_url(&config, &[], &url, &env));
    assert_ne!(again, signed);
    let (_, again_query) = path_and_query(&again);
    assert!(signing::verify_query(path, again_query, &keys, now()).is_ok());
}

#[test]
fn expires_in_sets_the_end_of_validity() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &both_keys());
    let env = [(PRIMARY_ENV, PRIMARY), (SECONDARY_ENV, SECONDARY)];
    let url = "http://127.0.0.1:8080/v1/example.com/live/cam1/index.m3u8";
    let keys = SigningKeys::new(PRIMARY.into(), None, VALIDITY);
    for expires_in in [60, 1200] {
        let before = now();
        let signed = printed(&sign_url(
            &config,
            &["--expires-in", &expires_in.to_string()],
            url,
            &env,
        ));
        let after = now();
        let (path, query) = path_and_query(&signed);
        let verified = signing::verify_query(path, query, &keys, after).unwrap();
        let expires_in = expires_in as i64;
        assert!(
            (before + expires_in..=after + expires_in).contains(&verified.expires_at),
            "{verified:?}"
        );
        assert_eq!(
            signing::verify_query(path, query, &keys, after + expires_in + 1),
            Err(VerifyError::Expired)
        );
    }
    for bad in ["0", "1201"] {
        let err = refusal(&sign_url(&config, &["--expires-in", bad], url, &env));
        assert!(err.contains("--expires-in must be 1 to 1200"), "{err}");
    }
}

#[test]
fn a_missing_or_empty_variable_is_named_not_shown() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &both_keys());
    let url = "https://play.example.com/v1/example.com/live/cam1/index.m3u8";
    for (env, named, problem) in [
        (vec![(SECONDARY_ENV, SECONDARY)], PRIMARY_ENV, "is not set"),
        (
            vec![(PRIMARY_ENV, ""), (SECONDARY_ENV, SECONDARY)],
            PRIMARY_ENV,
            "is empty",
        ),
        (vec![(PRIMARY_ENV, PRIMARY)], SECONDARY_ENV, "is not set"),
    ] {
        let err = refusal(&sign_url(&config, &[], url, &env));
        assert!(
            err.contains(named) && err.contains(ACCOUNT) && err.contains(problem),
            "{env:?}: {err}"
        );
    }
}

#[test]
fn no_keys_or_no_http_url_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let env = [(PRIMARY_ENV, PRIMARY)];
    let url = "https://play.example.com/v1/example.com/live/cam1/index.m3u8";
    let without = config(dir.path(), "");
    let err = refusal(&sign_url(&without, &[], url, &env));
    assert!(
        err.contains(ACCOUNT) && err.contains("no playback keys"),
        "{err}"
    );

    let with = config(
        dir.path(),
        &format!("primary_key_env = \"{PRIMARY_ENV}\"\n"),
    );
    for not_http in [
        "rtmp://push.example.com/live/cam1",
        "ftp://example.com/a",
        "play.example.com/v1/example.com/live/cam1/index.m3u8",
    ] {
        let err = refusal(&sign_url(&with, &[], not_http, &env));
        assert!(err.contains("not an http:// or https:// URL"), "{err}");
    }

    let other = command(
        &[
            "sign-url",
            "--config",
            with.to_str().unwrap(),
            "--account",
            "999",
            url,
        ],
        &env,
    )
    .output()
    .unwrap();
    assert!(refusal(&other).contains("no account \"999\""));
}

#[test]
fn serve_stops_before_listening_without_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &both_keys());
    let mut child = command(
        &["serve", "--config", config.to_str().unwrap()],
        &[(PRIMARY_ENV, PRIMARY)],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // It must exit on its own; a server that started is stopped here.
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if child.try_wait().unwrap().is_none() {
        child.kill().unwrap();
    }
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stdout.contains("listening"), "{stdout}");
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(ACCOUNT) && stderr.contains(SECONDARY_ENV) && !stderr.contains(PRIMARY),
        "{stderr}"
    );
}
