//! TLS on the gRPC listener, as an operator sets it up: a certificate and
//! key in PEM files named by `[tls]` in the config. A client that trusts the
//! certificate's issuer calls the service; a plaintext client, a client
//! trusting another CA, and one expecting another name get nowhere. A
//! certificate file that is missing stops `serve` with a message naming it.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{
    Server, recording_start, register_request, request_id, run, utc_millis, utc_seconds, with_key,
};
use record_index::proto::record_index_client::RecordIndexClient;
use record_index::proto::{
    CreateLiveStreamRecordIndexFilesRequest, RegisterLiveStreamRecordSegmentsRequest, Segment,
};
use sha2::{Digest, Sha256};
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

const API_KEY: &str = "rik_tls-test-key-3e8d1c0b9a7f";
const DOMAIN: &str = "example.com";
const BUCKET: &str = "tls-bucket";
/// How long a connection attempt or a call may take before the test fails
/// instead of waiting on.
const DEADLINE: Duration = Duration::from_secs(20);

/// A self-signed certificate for `localhost` and its key, as PEM.
struct Pem {
    cert: String,
    key: String,
}

fn self_signed_localhost() -> Pem {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .expect("generate a self-signed certificate");
    Pem {
        cert: certified.cert.pem(),
        key: certified.signing_key.serialize_pem(),
    }
}

/// Writes the PEM files and returns the `[tls]` table naming them.
fn tls_toml(dir: &Path, pem: &Pem) -> String {
    let cert_path = dir.join("server-cert.pem");
    let key_path = dir.join("server-key.pem");
    std::fs::write(&cert_path, &pem.cert).unwrap();
    std::fs::write(&key_path, &pem.key).unwrap();
    format!(
        "[tls]\ncert_path = \"{}\"\nkey_path = \"{}\"\n\n",
        cert_path.display(),
        key_path.display()
    )
}

fn account_toml() -> String {
    format!(
        "[[accounts]]\nid = \"42\"\ndomains = [\"{DOMAIN}\"]\nbuckets = [\"{BUCKET}\"]\n\
         [[accounts.keys]]\nsha256 = \"{}\"\n\
         allow = [{{ actions = [\"live:*\"], resources = [\"acs:cdn:*:42:domain/*\"] }}]\n",
        hex::encode(Sha256::digest(API_KEY.as_bytes()))
    )
}

/// A channel over TLS to `url` that trusts only `ca_pem` and expects the
/// server to be `domain`.
async fn tls_channel(url: String, ca_pem: &str, domain: &str) -> Result<Channel, String> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name(domain);
    let endpoint = Channel::from_shared(url)
        .map_err(|e| e.to_string())?
        .tls_config(tls)
        .map_err(|e| e.to_string())?
        .connect_timeout(DEADLINE);
    tokio::time::timeout(DEADLINE, endpoint.connect())
        .await
        .map_err(|_| "no connection within the deadline".to_string())?
        .map_err(|e| format!("{e:?}"))
}

fn segment(start: chrono::DateTime<chrono::Utc>, n: i64) -> Segment {
    Segment {
        oss_endpoint: "localhost".into(),
        oss_bucket: BUCKET.into(),
        oss_object: format!("live/s1/{n}.ts"),
        start_time: utc_millis(start + chrono::Duration::seconds(6 * n)),
        duration: 6.0,
        sequence: n,
        width: 640,
        height: 360,
        format: "ts".into(),
        size: 0,
    }
}

/// Three segments of live/s1 from `start`.
fn recording(start: chrono::DateTime<chrono::Utc>) -> RegisterLiveStreamRecordSegmentsRequest {
    register_request("s1", (0..3).map(|n| segment(start, n)).collect())
}

/// Whether a Register over `channel` (or the connection itself) fails.
async fn register_fails(channel: Result<Channel, String>) -> Result<String, String> {
    let channel = match channel {
        Err(connect_error) => return Ok(connect_error),
        Ok(channel) => channel,
    };
    let start = recording_start(Duration::from_secs(600));
    let mut client = RecordIndexClient::new(channel);
    let call = client.register_live_stream_record_segments(with_key(API_KEY, recording(start)));
    match tokio::time::timeout(DEADLINE, call).await {
        Err(_) => Err("the call hung instead of failing".into()),
        Ok(Ok(response)) => Err(format!("the call succeeded: {:?}", response.into_inner())),
        Ok(Err(status)) => Ok(format!("{status:?}")),
    }
}

#[tokio::test]
async fn clients_trusting_the_certificate_call_the_service_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pem = self_signed_localhost();
    let server = Server::start(&format!("{}{}", tls_toml(dir.path(), &pem), account_toml())).await;
    let port = server.addr.port();

    for url in [
        format!("https://127.0.0.1:{port}"),
        format!("https://localhost:{port}"),
    ] {
        let channel = tls_channel(url.clone(), &pem.cert, "localhost")
            .await
            .unwrap_or_else(|e| panic!("TLS connection to {url}: {e}"));
        let mut client = RecordIndexClient::new(channel);
        let start = recording_start(Duration::from_secs(600));
        let registered = tokio::time::timeout(
            DEADLINE,
            client.register_live_stream_record_segments(with_key(API_KEY, recording(start))),
        )
        .await
        .expect("Register answered")
        .unwrap_or_else(|status| panic!("Register over TLS at {url}: {status:?}"));
        request_id(registered.metadata());
        let registered = registered.into_inner();
        assert_eq!(registered.accepted + registered.duplicates, 3);

        let created = tokio::time::timeout(
            DEADLINE,
            client.create_live_stream_record_index_files(with_key(
                API_KEY,
                CreateLiveStreamRecordIndexFilesRequest {
                    renditions: Vec::new(),
                    clip_mode: String::new(),
                    client_token: String::new(),
                    domain_name: DOMAIN.into(),
                    app_name: "live".into(),
                    stream_name: "s1".into(),
                    oss_endpoint: "localhost".into(),
                    oss_bucket: BUCKET.into(),
                    oss_object: "index/{RecordId}.m3u8".into(),
                    start_time: utc_seconds(start - chrono::Duration::seconds(1)),
                    end_time: utc_seconds(start + chrono::Duration::seconds(20)),
                    end_time_included: false,
                },
            )),
        )
        .await
        .expect("Create answered")
        .unwrap_or_else(|status| panic!("Create over TLS at {url}: {status:?}"));
        let info = created.into_inner().record_info.unwrap();
        let playlist = server
            .data_dir
            .join("objects")
            .join(&info.oss_bucket)
            .join(&info.oss_object);
        let text = std::fs::read_to_string(&playlist)
            .unwrap_or_else(|e| panic!("playlist {}: {e}", playlist.display()));
        assert_eq!(text.matches("#EXTINF:6.000,").count(), 3, "{text}");
    }

    // Plaintext to the TLS port: refused, whichever step notices.
    let plaintext = match tokio::time::timeout(
        DEADLINE,
        Channel::from_shared(format!("http://127.0.0.1:{port}"))
            .unwrap()
            .connect(),
    )
    .await
    {
        Err(_) => Err("no plaintext connection within the deadline".to_string()),
        Ok(result) => result.map_err(|e| format!("{e:?}")),
    };
    register_fails(plaintext)
        .await
        .expect("a plaintext client must not reach a TLS listener");

    // A client trusting another CA, though it names the right host.
    let other = self_signed_localhost();
    let untrusted = register_fails(
        tls_channel(
            format!("https://127.0.0.1:{port}"),
            &other.cert,
            "localhost",
        )
        .await,
    )
    .await
    .expect("a client trusting another CA must not connect");
    assert!(
        untrusted.contains("InvalidCertificate"),
        "the client should refuse the server's certificate: {untrusted}"
    );

    // The right CA, but the client expects another host name.
    let misnamed = register_fails(
        tls_channel(
            format!("https://127.0.0.1:{port}"),
            &pem.cert,
            "record-index.example.com",
        )
        .await,
    )
    .await
    .expect("a certificate for localhost must not pass for another name");
    assert!(
        misnamed.contains("InvalidCertificate"),
        "the client should refuse the server's certificate: {misnamed}"
    );

    // None of the refused clients got anything in: the stream still holds
    // its three segments, and the service still serves.
    let channel = tls_channel(format!("https://127.0.0.1:{port}"), &pem.cert, "localhost")
        .await
        .expect("TLS still works");
    let again = RecordIndexClient::new(channel)
        .register_live_stream_record_segments(with_key(
            API_KEY,
            recording(recording_start(Duration::from_secs(600))),
        ))
        .await
        .expect("Register over TLS")
        .into_inner();
    assert_eq!(again.accepted, 0, "{again:?}");
}

/// Runs `record-index serve --config <file>` expecting it to refuse to
/// start; returns its exit status and stderr.
async fn serve_refuses(config: &Path) -> (std::process::ExitStatus, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let output = run(
        tokio::process::Command::new(env!("CARGO_BIN_EXE_record-index"))
            .arg("serve")
            .arg("--config")
            .arg(config)
            .current_dir(dir.path())
            .env_remove("RECORD_INDEX_CONFIG")
            .env_remove("RECORD_INDEX_LISTEN")
            .env_remove("RECORD_INDEX_DATA_DIR"),
        Duration::from_secs(30),
    )
    .await;
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_missing_certificate_or_key_file_stops_serve_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let pem = self_signed_localhost();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, &pem.cert).unwrap();
    std::fs::write(&key, &pem.key).unwrap();
    let missing_cert = dir.path().join("no-such-cert.pem");
    let missing_key = dir.path().join("no-such-key.pem");

    let cases: [(&str, &PathBuf, &PathBuf, &PathBuf); 2] = [
        ("certificate", &missing_cert, &key, &missing_cert),
        ("key", &cert, &missing_key, &missing_key),
    ];
    for (what, cert_path, key_path, named) in cases {
        let config = dir.path().join(format!("missing-{what}.toml"));
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n\n[tls]\ncert_path = \"{}\"\nkey_path = \"{}\"\n",
                dir.path().join("data").display(),
                cert_path.display(),
                key_path.display()
            ),
        )
        .unwrap();
        let (status, stdout, stderr) = serve_refuses(&config).await;
        assert!(
            !status.success(),
            "serve with a missing {what} file exited with {status}; stderr:\n{stderr}"
        );
        assert!(
            stderr.contains(&named.display().to_string()),
            "the error does not name the missing {what} file {}:\n{stderr}",
            named.display()
        );
        assert!(
            !stdout.contains("listening"),
            "serve claimed to listen without its {what}: {stdout}"
        );
    }
}

#[tokio::test]
async fn an_unusable_certificate_or_key_stops_serve_before_it_listens() {
    let dir = tempfile::tempdir().unwrap();
    let pem = self_signed_localhost();
    let another = self_signed_localhost();
    let not_pem = dir.path().join("not-a-certificate.pem");
    std::fs::write(&not_pem, "this is not a PEM certificate\n").unwrap();
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, &pem.cert).unwrap();
    let foreign_key = dir.path().join("key-of-another-certificate.pem");
    std::fs::write(&foreign_key, &another.key).unwrap();
    let key = dir.path().join("key.pem");
    std::fs::write(&key, &pem.key).unwrap();

    let cases: [(&str, &PathBuf, &PathBuf, &PathBuf); 2] = [
        (
            "a certificate file that holds no certificate",
            &not_pem,
            &key,
            &not_pem,
        ),
        (
            "a key that is not the certificate's",
            &cert,
            &foreign_key,
            &foreign_key,
        ),
    ];
    for (what, cert_path, key_path, named) in cases {
        let config = dir.path().join("unusable.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n\n[tls]\ncert_path = \"{}\"\nkey_path = \"{}\"\n",
                dir.path().join("data").display(),
                cert_path.display(),
                key_path.display()
            ),
        )
        .unwrap();
        let (status, stdout, stderr) = serve_refuses(&config).await;
        assert!(!status.success(), "{what}: serve exited with {status}");
        assert!(
            !stdout.contains("listening"),
            "{what}: serve announced {stdout:?} before failing with {stderr:?}"
        );
        assert!(
            stderr.contains(&named.display().to_string()),
            "{what}: the error does not name {}:\n{stderr}",
            named.display()
        );
    }
}
