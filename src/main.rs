//! The `dicomwebserver` binary: parse configuration, initialise logging, bind, serve.

use dicomwebserver::config::{Command, LogFormat};
use dicomwebserver::{reindex, server, upload, Config};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = match Config::load() {
        // The uploader is a client: the server's settings do not concern it.
        Ok(Config {
            command: Some(Command::Stow(args)),
            ..
        }) => return upload::run(args).await,
        Ok(config) => config.validate(),
        Err(message) => Err(message),
    };
    let config = match config {
        Ok(config) => config,
        Err(message) => {
            eprintln!("dicomwebserver: {message}");
            return std::process::ExitCode::from(2);
        }
    };
    // The stack dump is written to stderr as one block already; its tracing event is for log
    // collectors that enable the `dicomwebserver::diag::dump` target.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,dicomwebserver::diag::dump=off"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }

    if config.command == Some(Command::Reindex) {
        let root = config.storage_root();
        return match reindex::reindex(&root, config.max_depth).await {
            Ok(summary) => {
                println!(
                    "reindexed {} instances ({} bytes) in {}; {} files could not be read",
                    summary.indexed,
                    summary.bytes,
                    root.display(),
                    summary.failed
                );
                std::process::ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("dicomwebserver reindex: {error}");
                std::process::ExitCode::from(1)
            }
        };
    }
    let listener = match tokio::net::TcpListener::bind((config.host, config.port)).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!(
                "dicomwebserver: cannot listen on {}:{}: {error}",
                config.host, config.port
            );
            return std::process::ExitCode::from(1);
        }
    };
    match server::run(listener, config, server::shutdown_signal()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("dicomwebserver: {error}");
            std::process::ExitCode::from(1)
        }
    }
}
