//! The command line as an operator meets it: refusals that must be clear
//! and immediate.

use std::process::Command;

fn serve(args: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_record-index"))
        .arg("serve")
        .args(args)
        .current_dir(dir.path())
        .env_remove("RECORD_INDEX_CONFIG")
        .env_remove("RECORD_INDEX_LISTEN")
        .env_remove("RECORD_INDEX_DATA_DIR")
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn local_mode_refuses_a_non_loopback_address() {
    let (code, stderr) = serve(&["--listen", "0.0.0.0:0"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("not a loopback address"), "{stderr}");
}

#[test]
fn a_missing_or_broken_config_is_named() {
    let (code, stderr) = serve(&["--config", "/nonexistent/record-index.toml"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("/nonexistent/record-index.toml"),
        "{stderr}"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "listen = \"127.0.0.1:0\"\nmax_segments = 5\n").unwrap();
    let (code, stderr) = serve(&["--config", path.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(stderr.contains("max_segments"), "{stderr}");
}

#[test]
fn missing_credentials_are_named_not_guessed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s3.toml");
    std::fs::write(
        &path,
        "listen = \"127.0.0.1:0\"\n[[endpoints]]\nname = \"s3.test\"\nkind = \"s3\"\nurl = \"http://127.0.0.1:1\"\n\
         access_key_id_env = \"CLI_TEST_UNSET_KEY\"\nsecret_access_key_env = \"CLI_TEST_UNSET_SECRET\"\n",
    )
    .unwrap();
    let (code, stderr) = serve(&[
        "--config",
        path.to_str().unwrap(),
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    assert!(stderr.contains("CLI_TEST_UNSET_KEY"), "{stderr}");
}

#[test]
fn bad_segment_url_settings_stop_serve_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = "[[endpoints]]\nname = \"s3.test\"\nkind = \"s3\"\nurl = \"http://127.0.0.1:1\"\n";
    let local = "[[endpoints]]\nname = \"localhost\"\nkind = \"local\"\n";
    for (endpoint, said) in [
        (
            format!("{s3}segment_urls = \"signed\"\n"),
            "endpoint \"s3.test\": segment_urls = \"signed\" is not \"relative\", \"public\", \"presigned\" or \"cdn\"",
        ),
        (
            format!("{local}segment_urls = \"presigned\"\n"),
            "endpoint \"localhost\": segment_urls = \"presigned\" needs kind = \"s3\"",
        ),
        (
            format!("{s3}segment_urls = \"cdn\"\n"),
            "endpoint \"s3.test\": segment_urls = \"cdn\" needs cdn_base_url",
        ),
        (
            format!("{s3}segment_urls = \"presigned\"\npresign_expiry_secs = 604801\n"),
            "presign_expiry_secs = 604801 must be whole seconds from 60 to 604800",
        ),
        (
            format!("{s3}presign_expiry_secs = 30\n"),
            "presign_expiry_secs = 30 must be whole seconds from 60 to 604800",
        ),
        (
            format!(
                "{s3}segment_urls = \"cdn\"\ncdn_base_url = \"https://cdn.example.com/?token=1\"\n"
            ),
            "cdn_base_url = \"https://cdn.example.com/?token=1\" must be an http(s) URL",
        ),
    ] {
        let path = dir.path().join("segment-urls.toml");
        std::fs::write(&path, format!("listen = \"127.0.0.1:0\"\n{endpoint}")).unwrap();
        // Checked before the credentials are looked for: none are set.
        let (code, stderr) = serve(&[
            "--config",
            path.to_str().unwrap(),
            "--data-dir",
            dir.path().to_str().unwrap(),
        ]);
        assert_eq!(code, 2, "{endpoint}: {stderr}");
        assert!(stderr.contains(said), "{endpoint}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{endpoint}: {stderr}");
    }
}
