//! `openfc`: a self-hosted server speaking Alibaba Cloud Function Compute 2.0's OpenAPI.
//! `openfc serve` runs it; `openfc keys ...` manages AccessKeys. This crate wires configuration, backends
//! and the HTTP API together; the logic it wires lives in the library crates and the `api` module.

#![forbid(unsafe_code)]

mod accountscli;
mod api;
mod asynccli;
mod cli;
mod config;
mod console;
mod imagescli;
mod keys;
mod logsink;
mod metrics;
mod migrate;
mod node;
mod rolescli;
mod runtimescli;
mod server;
mod sts;

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
    Serve(Box<config::ServeArgs>),
    /// Print a function's logs (the output of its instances): `openfc logs SERVICE/FUNCTION [--follow]`.
    /// With --endpoint or OPENFC_ENDPOINT over the HTTP API (GetFunctionLogs), else from the data directory.
    #[command(after_help = cli::EXIT_CODES)]
    Logs {
        #[command(flatten)]
        store: config::StoreArgs,
        #[command(flatten)]
        remote: cli::RemoteArgs,
        /// SERVICE/FUNCTION
        target: String,
        /// Keep printing new lines as they are written.
        #[arg(long, short)]
        follow: bool,
        /// How many of the last lines to print first.
        #[arg(long, short = 'n', default_value_t = 100)]
        lines: usize,
    },
    /// Async invocations from the shell: list, get, stop, redrive (`openfc async list SERVICE/FUNCTION`).
    /// With --endpoint or OPENFC_ENDPOINT over the HTTP API, else in the data directory's database.
    #[command(after_help = cli::EXIT_CODES)]
    Async {
        #[command(flatten)]
        store: config::StoreArgs,
        #[command(flatten)]
        remote: cli::RemoteArgs,
        #[command(subcommand)]
        action: asynccli::AsyncAction,
    },
    /// Container images of custom-container functions: `openfc images ls|pull REF|rm REF|gc`.
    Images {
        #[command(flatten)]
        store: config::StoreArgs,
        #[command(flatten)]
        images: config::ImageArgs,
        #[command(subcommand)]
        action: imagescli::ImagesAction,
    },
    /// Copy an embedded data directory (SQLite, local code) into PostgreSQL and an S3 bucket, for many nodes.
    Migrate(Box<migrate::MigrateArgs>),
    /// Several accounts: `openfc accounts create|list|delete ID`.
    Accounts {
        #[command(flatten)]
        store: config::StoreArgs,
        #[command(subcommand)]
        action: accountscli::AccountAction,
    },
    /// Services over the HTTP API (any node, any FC endpoint): `openfc services ls [--prefix P] | delete SVC`.
    Services(Box<cli::ServicesArgs>),
    /// Functions over the HTTP API: `openfc functions ls SVC | get SVC/FN | delete SVC/FN`.
    Functions(Box<cli::FunctionsArgs>),
    /// Zip a folder and create or update a function from it, over the HTTP API (the service too if missing).
    Deploy(Box<cli::DeployArgs>),
    /// Invoke a function over the HTTP API: its result on stdout, `--tail` its log on stderr.
    Invoke(Box<cli::InvokeArgs>),
    /// Run a command inside a running instance (InstanceExec): `openfc exec SVC/FN [INSTANCE] [-i] [-t] -- CMD`.
    Exec(Box<cli::ExecArgs>),
    /// The modules FC's Python and Node.js runtimes ship built in: `openfc runtimes install|list|prune`.
    Runtimes {
        #[command(flatten)]
        store: config::StoreArgs,
        #[command(flatten)]
        args: runtimescli::RuntimesArgs,
        #[command(subcommand)]
        action: runtimescli::RuntimesAction,
    },
    /// Roles a service's `role` names: its functions get temporary credentials limited to the role's policy.
    Roles {
        #[command(flatten)]
        store: config::StoreArgs,
        #[command(subcommand)]
        action: rolescli::RoleAction,
    },
    /// Manage AccessKeys.
    Keys {
        #[command(flatten)]
        store: config::StoreArgs,
        #[command(subcommand)]
        action: server::KeyAction,
    },
}

/// How many threads run `openfc serve`'s async work: `--worker-threads`, else tokio's default (a worker per
/// core, or `TOKIO_WORKER_THREADS`). Measured by `scripts/bench.sh warm` on two cores, same binary, only this
/// changed: one worker used ~6 % less CPU per invocation (45.5–46.4 vs 48.9–49.0 µs) for ~3 % fewer invocations
/// per second at c=16 (28.1–29.2k vs 29.5–29.9k), so the default stays; hosts that want the cores for their
/// functions can lower it.
fn server_worker_threads(command: &Command) -> Option<usize> {
    let Command::Serve(args) = command else { return None };
    args.worker_threads.map(|n| n.max(1))
}

fn main() -> anyhow::Result<()> {
    // The instance launcher must stay single-threaded (it forks), so it runs before anything else starts.
    // The spec comes on stdin, which the sandboxed user cannot read (unlike argv in /proc).
    if std::env::args().nth(1).as_deref() == Some(openfc_sandbox::COMMAND) {
        openfc_sandbox::launch();
    }
    // InstanceExec's process enters an instance's namespaces, which a multi-threaded process cannot.
    if std::env::args().nth(1).as_deref() == Some(openfc_sandbox::exec::COMMAND) {
        openfc_sandbox::exec::exec_main();
    }
    let cli = Cli::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = server_worker_threads(&cli.command) {
        builder.worker_threads(n);
    }
    let runtime = builder.enable_all().build()?;
    match cli.command {
        Command::Serve(args) => {
            let served = runtime.block_on(server::serve(config::ServeConfig::resolve(*args)?));
            logsink::flush();
            served
        }
        Command::Logs { store, remote, target, follow, lines } => match remote.http(store.data_dir.as_deref()) {
            Some(conn) => cli::exit(runtime.block_on(cli::logs(conn, &target, follow, lines, remote.output))),
            None => runtime.block_on(server::logs(config::StoreConfig::resolve(&store)?, &target, follow, lines)),
        },
        Command::Async { store, remote, action } => match remote.http(store.data_dir.as_deref()) {
            Some(conn) => cli::exit(runtime.block_on(cli::async_http(conn, action, remote.output))),
            None => runtime.block_on(asynccli::run(config::StoreConfig::resolve(&store)?, action)),
        },
        Command::Images { store, images, action } => {
            let image_cfg = config::ImageConfig::from_args(&store, &images)?;
            runtime.block_on(imagescli::run(config::StoreConfig::resolve(&store)?, image_cfg, action))
        }
        Command::Migrate(args) => runtime.block_on(migrate::run(*args)),
        Command::Accounts { store, action } => runtime.block_on(accountscli::run(config::StoreConfig::resolve(&store)?, action)),
        Command::Services(args) => cli::exit(runtime.block_on(cli::services(*args))),
        Command::Functions(args) => cli::exit(runtime.block_on(cli::functions(*args))),
        Command::Deploy(args) => cli::exit(runtime.block_on(cli::deploy(*args))),
        Command::Invoke(args) => cli::exit(runtime.block_on(cli::invoke(*args))),
        Command::Exec(args) => cli::exit_with(runtime.block_on(cli::exec(*args))),
        Command::Runtimes { store, args, action } => runtimescli::run(&store, &args, action),
        Command::Roles { store, action } => runtime.block_on(rolescli::run(config::StoreConfig::resolve(&store)?, action)),
        Command::Keys { store, action } => runtime.block_on(server::keys(config::StoreConfig::resolve(&store)?, action)),
    }
}
