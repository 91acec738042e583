//! `openfc`: a self-hosted server speaking Alibaba Cloud Function Compute 2.0's OpenAPI.
//! `openfc serve` runs it; `openfc keys ...` manages AccessKeys. This crate wires configuration, backends
//! and the HTTP API together; the logic it wires lives in the library crates and the `api` module.

mod api;
mod config;
mod keys;
mod metrics;
mod server;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "openfc", version, about = "Self-hosted Function Compute 2.0 API server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the server (embedded SQLite and local code store by default).
    Serve(config::ServeArgs),
    /// Manage AccessKeys.
    Keys {
        #[command(flatten)]
        store: config::StoreArgs,
        #[command(subcommand)]
        action: server::KeyAction,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(server::serve(config::ServeConfig::resolve(args)?)),
        Command::Keys { store, action } => runtime.block_on(server::keys(config::StoreConfig::resolve(&store)?, action)),
    }
}
