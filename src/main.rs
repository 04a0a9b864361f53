//! The `record-index` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use record_index::config::{CatalogEngine, Config};
use record_index::server::Server;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "record-index",
    version,
    about = "Writes M3U8 VOD playlists for time ranges of recorded live streams"
)]
struct Cli {
    /// `human` (default) or `json` (one JSON object per line, for log
    /// collectors).
    #[arg(
        long,
        global = true,
        env = "RECORD_INDEX_LOG_FORMAT",
        default_value = "human"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

fn init_logs(format: LogFormat) {
    // hyper warns once per HTTP connection closed for sending no request
    // head in time: a flood of silent sockets would be a line each, while
    // the side listeners already say when their cap refuses connections.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(
            "info,rusoto_core=warn,hyper=warn,hyper::proto::h1::io=error,h2=warn,\
             mpeg2ts_reader=error",
        )
    });
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        // Each line carries its request's span: rpc, request id, account.
        LogFormat::Json => logs
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
        LogFormat::Human => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
}

#[derive(Subcommand)]
enum Command {
    /// Runs the gRPC service.
    Serve {
        /// TOML config file; without one the service runs in local mode
        /// (loopback only, local directory store, no keys).
        #[arg(long, env = "RECORD_INDEX_CONFIG")]
        config: Option<PathBuf>,
        /// Overrides `listen` of the config.
        #[arg(long, env = "RECORD_INDEX_LISTEN")]
        listen: Option<std::net::SocketAddr>,
        /// Overrides `data_dir` of the config.
        #[arg(long, env = "RECORD_INDEX_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Overrides `[playback] listen` of the config (without a config
        /// file, 127.0.0.1:8080).
        #[arg(long, env = "RECORD_INDEX_PLAYBACK_LISTEN")]
        playback_listen: Option<std::net::SocketAddr>,
    },
    /// Registers an existing recording with a running service: the segments
    /// its recorder's HLS playlist lists. Safe to run again: segments
    /// already registered are counted, not duplicated.
    Import {
        /// Config file naming the object-storage endpoints to read from
        /// (the service's own config works); local mode's without one.
        #[arg(long, env = "RECORD_INDEX_CONFIG")]
        config: Option<PathBuf>,
        /// gRPC address of the service.
        #[arg(long, default_value = "http://127.0.0.1:50051")]
        server: String,
        /// API key of the account (not needed in local mode).
        #[arg(long, env = "RECORD_INDEX_API_KEY", hide_env_values = true)]
        api_key: Option<String>,
        #[arg(long)]
        domain: String,
        #[arg(long)]
        app: String,
        #[arg(long)]
        stream: String,
        /// Endpoint and bucket holding the recording.
        #[arg(long)]
        endpoint: String,
        #[arg(long)]
        bucket: String,
        /// Key of the recorder's playlist (live or VOD) in that bucket.
        #[arg(long, conflicts_with = "prefix", required_unless_present = "prefix")]
        playlist: Option<String>,
        /// Or: a key prefix; every `.ts` object under it is probed and dated
        /// by its Last-Modified minus its duration.
        #[arg(long)]
        prefix: Option<String>,
        /// Object-storage requests in flight at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
    /// Manages API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Writes every collection of the catalog (`{data_dir}/catalog`) to one
    /// file. The service must be stopped: the catalog is locked while it runs.
    Backup {
        /// Config file whose `data_dir` holds the catalog.
        #[arg(long, env = "RECORD_INDEX_CONFIG")]
        config: Option<PathBuf>,
        /// Overrides `data_dir` of the config.
        #[arg(long, env = "RECORD_INDEX_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// The backup file (written as FILE.tmp, then renamed).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Applies the catalog's schema migrations to the configured PostgreSQL
    /// database and exits, without serving: run it before rolling out a
    /// release, so replicas start on a schema that is ready. Safe to run
    /// again, and alongside starting replicas. With the sled engine there
    /// is nothing to migrate: it says so and exits 0.
    Migrate {
        /// Config file whose `[catalog]` names the database.
        #[arg(long, env = "RECORD_INDEX_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Restores a backup into a new catalog in `{data_dir}/catalog`; refuses
    /// a data directory that already holds one.
    Restore {
        /// The backup file.
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
        /// Data directory of the service to start on the restored catalog.
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Copies a single node's sled catalog into the catalog the config
    /// names (`[catalog] engine = "postgres"`): streams, and the segments,
    /// manifests and ClientToken answers still live. Safe to run again.
    /// The single node must be stopped: its catalog is locked while it runs.
    MigrateCatalog {
        /// Config file of the service that will run on the new catalog.
        #[arg(long, env = "RECORD_INDEX_CONFIG")]
        config: PathBuf,
        /// The single node's data directory (or its `catalog` directory).
        #[arg(long, value_name = "DIR")]
        from_sled: PathBuf,
    },
    /// Prints a URL signed for playback with the account's primary key.
    ///
    /// The signature is ApsaraVideo Live's Type A `auth_key` (timestamp
    /// now, a random rand, uid 0). An `auth_key` already in the URL is
    /// replaced; other query parameters stay.
    SignUrl {
        /// Config file whose `[accounts.playback]` names the key's
        /// environment variable.
        #[arg(long, env = "RECORD_INDEX_CONFIG")]
        config: PathBuf,
        /// Id of the account (`[[accounts]] id`) whose key signs.
        #[arg(long)]
        account: String,
        /// Seconds until the URL expires: the account's `validity_secs`
        /// by default, at most twice it (the timestamp is moved
        /// accordingly).
        #[arg(long, value_name = "SECS")]
        expires_in: Option<u64>,
        /// The http:// or https:// URL to sign.
        url: String,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Prints a new random API key once, with the config block that
    /// registers its SHA-256 under the account.
    New {
        /// Id of the account (`[[accounts]] id`) the key belongs to.
        #[arg(long)]
        account: String,
    },
}

async fn import(config: Option<PathBuf>, job: record_index::import::runner::ImportJob) -> ExitCode {
    let storage = load_config(config, Overrides::default())
        .and_then(|config| record_index::storage::Storage::from_config(&config));
    let storage = match storage {
        Ok(storage) => storage,
        Err(message) => return refused(message),
    };
    match record_index::import::runner::run(&storage, &job).await {
        Ok(_) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("record-index: import failed: {message}");
            ExitCode::FAILURE
        }
    }
}

/// `record-index migrate-catalog`: a sled catalog into the configured one.
async fn migrate_catalog(config: PathBuf, from_sled: &std::path::Path) -> ExitCode {
    use record_index::catalog::sled_engine::{SledCatalog, backup::catalog_dir};
    let config = match load_config(Some(config), Overrides::default()) {
        Ok(config) if config.catalog.engine == CatalogEngine::Sled => {
            return refused(
                "the config's catalog is sled; set [catalog] engine = \"postgres\" to move a catalog into PostgreSQL",
            );
        }
        Ok(config) => config,
        Err(message) => return refused(message),
    };
    let dir = match catalog_dir(from_sled) {
        dir if dir.join("db").exists() => dir,
        _ => from_sled.to_path_buf(),
    };
    if !dir.join("db").exists() {
        return refused(format!("no sled catalog in {}", from_sled.display()));
    }
    let source = match SledCatalog::open(&dir, config.cache_capacity_bytes) {
        Ok(source) => std::sync::Arc::new(source),
        Err(err) => {
            return refused(format!(
                "cannot open the sled catalog in {} (stop the service that uses it): {err}",
                dir.display()
            ));
        }
    };
    let target = match record_index::server::open_catalog(&config).await {
        Ok(target) => target,
        Err(err) => return refused(err),
    };
    let now = chrono::Utc::now().timestamp_micros();
    match record_index::catalog::transfer::from_sled(source, &*target, now).await {
        Ok(moved) => {
            println!(
                "moved {} streams, {} segments ({} already there), {} manifests ({} already there), {} ClientToken answers ({} already there)",
                moved.streams,
                moved.segments,
                moved.segments_present,
                moved.manifests,
                moved.manifests_present,
                moved.tokens,
                moved.tokens_present
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("record-index: migrate-catalog failed (safe to run again): {err}");
            ExitCode::FAILURE
        }
    }
}

fn new_key(account: &str) -> ExitCode {
    let key = match record_index::auth::keys::generate() {
        Ok(key) => key,
        Err(err) => {
            eprintln!("record-index: no randomness from the operating system: {err}");
            return ExitCode::FAILURE;
        }
    };
    println!("API key of account {account} (shown only now; the service keeps only its SHA-256):");
    println!();
    println!("    {key}");
    println!();
    println!(
        "Paste under the [[accounts]] entry with id = {account:?}, and narrow `allow` as needed:"
    );
    println!();
    print!("{}", record_index::auth::keys::config_block(account, &key));
    ExitCode::SUCCESS
}

/// `record-index sign-url`: `url` signed with the account's primary
/// playback key, on stdout.
fn sign_url(config: PathBuf, account: &str, expires_in: Option<u64>, url: &str) -> ExitCode {
    use record_index::playback::signing;
    let config = match load_config(Some(config), Overrides::default()) {
        Ok(config) => config,
        Err(message) => return refused(message),
    };
    let Some(found) = config.accounts.iter().find(|found| found.id == account) else {
        return refused(format!("the config has no account {account:?}"));
    };
    let keys = match found.playback_keys() {
        Ok(Some(keys)) => keys,
        Ok(None) => {
            return refused(format!(
                "account {account:?} has no playback keys: add [accounts.playback] to it"
            ));
        }
        Err(message) => return refused(message),
    };
    let validity = keys.validity_secs();
    let now = chrono::Utc::now().timestamp();
    let expires_in = expires_in.unwrap_or(validity);
    let Some(timestamp) = signing::timestamp_expiring_in(now, expires_in, validity) else {
        return refused(format!(
            "--expires-in must be 1 to {} (twice account {account:?}'s validity_secs)",
            validity.saturating_mul(2)
        ));
    };
    let rand = signing::new_rand();
    match signing::sign_url(url, keys.primary(), timestamp, &rand, signing::DEFAULT_UID) {
        Ok(signed) => {
            println!("{signed}");
            ExitCode::SUCCESS
        }
        Err(err) => refused(format!("cannot sign the URL: {err}")),
    }
}

/// Resolves at the first SIGTERM or SIGINT. The handlers are installed
/// when this is called, not when it is first awaited, so a signal that
/// comes right after the listening line still stops the service gracefully.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    let mut interrupt = signal(SignalKind::interrupt()).expect("installing a SIGINT handler");
    async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = interrupt.recv() => {}
        }
        tracing::info!("shutting down");
    }
}

/// Says why a command cannot run as asked (a bad config, a missing
/// setting): exit code 2, as for a bad flag.
fn refused(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("record-index: {message}");
    ExitCode::from(2)
}

/// What `serve`'s flags set over the config file.
#[derive(Default)]
struct Overrides {
    listen: Option<std::net::SocketAddr>,
    data_dir: Option<PathBuf>,
    playback_listen: Option<std::net::SocketAddr>,
}

fn load_config(path: Option<PathBuf>, overrides: Overrides) -> Result<Config, String> {
    let mut config = match path {
        Some(path) => Config::from_file(&path).map_err(|err| err.to_string())?,
        None => Config {
            playback: record_index::config::PlaybackConfig {
                listen: Some(
                    record_index::config::LOCAL_PLAYBACK
                        .parse()
                        .expect("a socket address"),
                ),
                ..Default::default()
            },
            ..Config::default()
        },
    };
    if let Some(listen) = overrides.listen {
        config.listen = listen;
    }
    if let Some(data_dir) = overrides.data_dir {
        config.data_dir = data_dir;
    }
    if let Some(listen) = overrides.playback_listen {
        config.playback.listen = Some(listen);
    }
    config.finish().map_err(|err| err.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(cli.log_format);
    match cli.command {
        Command::Keys {
            command: KeysCommand::New { account },
        } => new_key(&account),
        Command::Backup {
            config,
            data_dir,
            out,
        } => backup(config, data_dir, &out),
        Command::Restore { from, data_dir } => restore(&from, &data_dir),
        Command::Migrate { config } => migrate(config).await,
        Command::MigrateCatalog { config, from_sled } => migrate_catalog(config, &from_sled).await,
        Command::SignUrl {
            config,
            account,
            expires_in,
            url,
        } => sign_url(config, &account, expires_in, &url),
        Command::Import {
            config,
            server,
            api_key,
            domain,
            app,
            stream,
            endpoint,
            bucket,
            playlist,
            prefix,
            concurrency,
        } => {
            use record_index::import::runner::ImportSource;
            let source = match (playlist, prefix) {
                (Some(playlist), _) => ImportSource::Playlist(playlist),
                (None, Some(prefix)) => ImportSource::Prefix(prefix),
                (None, None) => return refused("import needs --playlist or --prefix"),
            };
            let job = record_index::import::runner::ImportJob {
                server,
                api_key,
                domain,
                app,
                stream,
                endpoint,
                bucket,
                source,
                concurrency,
            };
            import(config, job).await
        }
        Command::Serve {
            config,
            listen,
            data_dir,
            playback_listen,
        } => {
            let overrides = Overrides {
                listen,
                data_dir,
                playback_listen,
            };
            serve(config, overrides).await
        }
    }
}

/// `record-index backup`: the catalog of the config's data directory into
/// one file.
fn backup(config: Option<PathBuf>, data_dir: Option<PathBuf>, out: &std::path::Path) -> ExitCode {
    let config = match load_config(
        config,
        Overrides {
            data_dir,
            ..Overrides::default()
        },
    ) {
        Ok(config) => config,
        Err(message) => return refused(message),
    };
    let catalog = record_index::catalog::sled_engine::backup::catalog_dir(&config.data_dir);
    match record_index::catalog::sled_engine::backup::backup(
        &config.data_dir,
        out,
        config.cache_capacity_bytes,
    ) {
        Ok(summary) => {
            println!(
                "record-index: backed up {} to {}: {summary}",
                catalog.display(),
                out.display()
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("record-index: backup failed: {err}");
            ExitCode::FAILURE
        }
    }
}

/// `record-index migrate`: the configured PostgreSQL catalog's schema up
/// to date.
async fn migrate(config: Option<PathBuf>) -> ExitCode {
    use record_index::catalog::postgres::{PgCatalog, PgOptions};
    use record_index::config::CatalogEngine;
    let config = match load_config(config, Overrides::default()) {
        Ok(config) => config,
        Err(message) => return refused(message),
    };
    if config.catalog.engine == CatalogEngine::Sled {
        println!("record-index: the sled catalog has no schema to migrate; nothing to do");
        return ExitCode::SUCCESS;
    }
    let options = match PgOptions::from_config(&config.catalog) {
        Ok(options) => options,
        Err(message) => return refused(format!("catalog: {message}")),
    };
    match PgCatalog::migrate(&options).await {
        Ok(migrated) if migrated.applied.is_empty() => {
            println!(
                "record-index: the catalog schema is up to date (version {})",
                migrated.latest
            );
            ExitCode::SUCCESS
        }
        Ok(migrated) => {
            let versions: Vec<String> = migrated.applied.iter().map(i32::to_string).collect();
            println!(
                "record-index: applied catalog migrations {}; the schema is at version {}",
                versions.join(", "),
                migrated.latest
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("record-index: migrate failed: {err}");
            ExitCode::FAILURE
        }
    }
}

/// `record-index restore`: a backup file into an empty data directory.
fn restore(from: &std::path::Path, data_dir: &std::path::Path) -> ExitCode {
    let catalog = record_index::catalog::sled_engine::backup::catalog_dir(data_dir);
    match record_index::catalog::sled_engine::backup::restore(from, data_dir) {
        Ok(summary) => {
            println!(
                "record-index: restored {} into {}: {summary}",
                from.display(),
                catalog.display()
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("record-index: restore failed: {err}");
            ExitCode::FAILURE
        }
    }
}

/// `record-index serve`: binds every listener, says where, and serves until
/// SIGTERM or SIGINT.
async fn serve(config: Option<PathBuf>, overrides: Overrides) -> ExitCode {
    let config = match load_config(config, overrides) {
        Ok(config) => config,
        Err(message) => return refused(message),
    };
    let shutdown = shutdown_signal();
    let server = match Server::bind(&config).await {
        Ok(server) => server,
        Err(err) => {
            eprintln!("record-index: {err}");
            return ExitCode::FAILURE;
        }
    };
    let address = server
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    // Tests and scripts read this line to learn the port of `:0`.
    println!("record-index listening on {address}");
    if let Some(webhook) = server.webhook_addr() {
        println!("record-index SRS webhook listening on {webhook}");
    }
    if let Some(metrics) = server.metrics_addr() {
        println!("record-index metrics listening on {metrics}");
    }
    if let Some(playback) = server.playback_addr() {
        println!("record-index playback listening on {playback}");
    }
    tracing::info!(%address, local_mode = config.is_local_mode(), data_dir = %config.data_dir.display(), "serving");
    if let Err(err) = server.run(shutdown).await {
        eprintln!("record-index: {err}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
