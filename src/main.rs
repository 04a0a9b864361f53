//! The `record-index` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use record_index::config::Config;
use record_index::server::Server;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "record-index",
    version,
    about = "Writes M3U8 VOD playlists for time ranges of recorded live streams"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
    },
    /// Manages API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
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

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
}

fn load_config(
    path: Option<PathBuf>,
    listen: Option<std::net::SocketAddr>,
    data_dir: Option<PathBuf>,
) -> Result<Config, String> {
    let mut config = match path {
        Some(path) => Config::from_file(&path).map_err(|err| err.to_string())?,
        None => Config::default(),
    };
    if let Some(listen) = listen {
        config.listen = listen;
    }
    if let Some(data_dir) = data_dir {
        config.data_dir = data_dir;
    }
    config.finish().map_err(|err| err.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,rusoto_core=warn,hyper=warn,h2=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Keys {
            command: KeysCommand::New { account },
        } => new_key(&account),
        Command::Serve {
            config,
            listen,
            data_dir,
        } => {
            let config = match load_config(config, listen, data_dir) {
                Ok(config) => config,
                Err(message) => {
                    eprintln!("record-index: {message}");
                    return ExitCode::from(2);
                }
            };
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
            tracing::info!(%address, local_mode = config.is_local_mode(), data_dir = %config.data_dir.display(), "serving");
            if let Err(err) = server.run(shutdown_signal()).await {
                eprintln!("record-index: {err}");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
    }
}
