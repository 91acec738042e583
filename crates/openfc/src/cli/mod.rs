//! The resource CLI: `openfc services|functions|deploy|invoke`, over the HTTP API and signed with the FC scheme
//! as the fc2 SDKs sign, so they work against any openfc node and any FC-compatible endpoint. (`openfc logs`,
//! `async`, `keys` read the data directory's database instead and need no server.)
//!
//! `client` resolves the endpoint and AccessKey and sends signed requests, `output` prints tables or JSON,
//! `commands` holds the listing, get, delete and invoke commands, `deploy` zips a folder and creates or
//! updates a function from it. Every command ends in [`exit`], which turns the outcome into the documented
//! exit code.

mod client;
mod commands;
mod deploy;
mod output;

use std::fmt;
use std::path::PathBuf;

use clap::{Args, Subcommand};

pub use commands::{functions, invoke, services};
pub use deploy::deploy;
use output::Output;

/// Shown under every command's `--help`; the README's "Command-line client" repeats it.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  the server answered an error (printed on stderr as `Code: message (request id: ID)`)
  2  usage error: bad arguments, or local input the command cannot use (no such folder, package too large)
  3  the endpoint cannot be reached (refused, DNS, TLS, timeout, connection lost) or no credentials were found
  4  invoke only: the function ran and failed (X-Fc-Error-Type HandledInvocationError or
     UnhandledInvocationError); its error body is still printed on stdout

Credentials: --access-key-id/--access-key-secret, else OPENFC_ACCESS_KEY_ID/OPENFC_ACCESS_KEY_SECRET, else
ALIBABA_CLOUD_ACCESS_KEY_ID/ALIBABA_CLOUD_ACCESS_KEY_SECRET, else DATA_DIR/credentials.json (written by the
first `openfc serve`). Endpoint: --endpoint, else OPENFC_ENDPOINT, else the credentials file's, else
http://127.0.0.1:9900.";

/// Where the API is and who signs: flags, each with an environment twin, over the data directory's
/// `credentials.json`.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Endpoint and credentials")]
pub struct ConnArgs {
    /// The FC endpoint, e.g. http://127.0.0.1:9900 (no scheme: http for loopback names, https otherwise).
    #[arg(long, global = true, env = "OPENFC_ENDPOINT")]
    pub endpoint: Option<String>,
    /// AccessKey id (with --access-key-secret).
    #[arg(long, global = true, env = "OPENFC_ACCESS_KEY_ID")]
    pub access_key_id: Option<String>,
    /// AccessKey secret; prefer the environment variable (arguments are visible to other local users).
    #[arg(long, global = true, env = "OPENFC_ACCESS_KEY_SECRET", hide_env_values = true)]
    pub access_key_secret: Option<String>,
    /// STS security token, for temporary AccessKeys (sent as x-fc-security-token).
    #[arg(long, global = true, env = "OPENFC_SECURITY_TOKEN", hide_env_values = true)]
    pub security_token: Option<String>,
    /// Account id, sent as x-fc-account-id (openfc takes the account from the key; FC from the host name).
    #[arg(long, global = true, env = "OPENFC_ACCOUNT_ID")]
    pub account_id: Option<String>,
    /// Data directory holding the credentials.json `openfc serve` wrote [default: openfc-data].
    #[arg(long, global = true, env = "OPENFC_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

/// `--output`: a table for people, or the API's JSON for programs.
#[derive(Debug, Clone, Copy, Args)]
pub struct OutputArgs {
    /// `table` (for people) or `json` (the API's JSON; listings gather every page into one document).
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

/// `openfc services ...`
#[derive(Args)]
#[command(after_help = EXIT_CODES)]
pub struct ServicesArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(subcommand)]
    pub action: ServicesAction,
}

#[derive(Subcommand)]
pub enum ServicesAction {
    /// List services, following every page (nextToken).
    #[command(visible_alias = "list", after_help = EXIT_CODES)]
    Ls {
        /// Only services whose names start with this.
        #[arg(long)]
        prefix: Option<String>,
        #[command(flatten)]
        page: PageArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Delete a service (FC refuses while it still has functions).
    #[command(visible_alias = "rm", after_help = EXIT_CODES)]
    Delete { service: String },
}

/// `openfc functions ...`
#[derive(Args)]
#[command(after_help = EXIT_CODES)]
pub struct FunctionsArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(subcommand)]
    pub action: FunctionsAction,
}

#[derive(Subcommand)]
pub enum FunctionsAction {
    /// List a service's functions, following every page (nextToken).
    #[command(visible_alias = "list", after_help = EXIT_CODES)]
    Ls {
        service: String,
        /// Only functions whose names start with this.
        #[arg(long)]
        prefix: Option<String>,
        /// A version or alias of the service.
        #[arg(long, short)]
        qualifier: Option<String>,
        #[command(flatten)]
        page: PageArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Show a function's configuration.
    #[command(after_help = EXIT_CODES)]
    Get {
        /// SERVICE/FUNCTION
        target: String,
        /// A version or alias of the service.
        #[arg(long, short)]
        qualifier: Option<String>,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Delete a function (FC refuses while it still has triggers).
    #[command(visible_alias = "rm", after_help = EXIT_CODES)]
    Delete {
        /// SERVICE/FUNCTION
        target: String,
    },
}

#[derive(Debug, Clone, Copy, Args)]
pub struct PageArgs {
    /// Items asked for per request (FC allows 1 to 100).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub page_size: u32,
}

/// `openfc deploy DIR --service S --function F ...`
#[derive(Args)]
#[command(after_help = EXIT_CODES)]
pub struct DeployArgs {
    /// The folder to zip: its contents become the package root (/code).
    pub dir: PathBuf,
    /// The service (created if missing).
    #[arg(long, short)]
    pub service: String,
    /// The function (created, or updated if it exists).
    #[arg(long, short)]
    pub function: String,
    /// e.g. python3.10, nodejs18, custom (needed to create the function; kept on update if not given).
    #[arg(long)]
    pub runtime: Option<String>,
    /// e.g. index.handler (needed to create the function; kept on update if not given).
    #[arg(long)]
    pub handler: Option<String>,
    /// Memory in MB.
    #[arg(long)]
    pub memory: Option<u32>,
    /// Timeout in seconds.
    #[arg(long)]
    pub timeout: Option<u32>,
    /// An environment variable, KEY=VALUE; repeat for more. Given, they replace the function's whole set.
    #[arg(long = "env", short = 'e', value_name = "KEY=VALUE", value_parser = deploy::parse_env_pair)]
    pub env: Vec<(String, String)>,
    /// Largest zip to upload, in MB (FC's limit for a package sent in the request is 100 MB).
    #[arg(long, default_value_t = 100)]
    pub max_code_size: u64,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub conn: ConnArgs,
}

/// `openfc invoke SERVICE/FUNCTION ...`
#[derive(Args)]
#[command(after_help = EXIT_CODES)]
pub struct InvokeArgs {
    /// SERVICE/FUNCTION
    pub target: String,
    /// A version or alias of the service [default: LATEST].
    #[arg(long, short)]
    pub qualifier: Option<String>,
    /// The event, as given.
    #[arg(long, short, conflicts_with = "file")]
    pub payload: Option<String>,
    /// Read the event from a file (`-`: standard input).
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Queue the invocation and print its id (for `openfc async get`) instead of waiting for the result.
    #[arg(long = "async")]
    pub is_async: bool,
    /// Name the async invocation (X-Fc-Stateful-Async-Invocation-Id) instead of using the request id.
    #[arg(long, requires = "is_async")]
    pub invocation_id: Option<String>,
    /// Print the invocation's log tail (X-Fc-Log-Result, decoded) on stderr.
    #[arg(long, conflicts_with = "is_async")]
    pub tail: bool,
    #[command(flatten)]
    pub conn: ConnArgs,
}

/// Why a command failed; each kind has its exit code ([`EXIT_CODES`]).
#[derive(Debug)]
pub enum CliError {
    /// The server answered an error status (FC's JSON error, or whatever a non-FC hop answered).
    Server { status: u16, code: String, message: String, request_id: String },
    /// Bad arguments or local input the command cannot use.
    Usage(String),
    /// No answer from the endpoint, or nothing to sign with.
    Unreachable(String),
    /// The function ran and reported or suffered an error (its body went to stdout).
    Function { error_type: String, request_id: String },
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Server { .. } => 1,
            CliError::Usage(_) => 2,
            CliError::Unreachable(_) => 3,
            CliError::Function { .. } => 4,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Server { status, code, message, request_id } => {
                let code = if code.is_empty() { format!("HTTP {status}") } else { code.clone() };
                write!(f, "{code}: {message} (request id: {request_id})")
            }
            CliError::Usage(m) | CliError::Unreachable(m) => write!(f, "{m}"),
            CliError::Function { error_type, request_id } => {
                write!(f, "the function failed: {error_type} (request id: {request_id})")
            }
        }
    }
}

/// Prints the error (if any) on stderr and ends the process with its exit code.
pub fn exit(result: Result<(), CliError>) -> ! {
    match result {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(e.exit_code())
        }
    }
}

/// `SERVICE/FUNCTION` → its two names.
fn split_target(target: &str) -> Result<(&str, &str), CliError> {
    match target.split_once('/') {
        Some((s, f)) if !s.is_empty() && !f.is_empty() && !f.contains('/') => Ok((s, f)),
        _ => Err(CliError::Usage(format!("'{target}': give the function as SERVICE/FUNCTION"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_need_exactly_one_slash_between_two_names() {
        assert_eq!(split_target("svc/fn").unwrap(), ("svc", "fn"));
        for bad in ["svc", "svc/", "/fn", "a/b/c", ""] {
            assert_eq!(split_target(bad).unwrap_err().exit_code(), 2, "{bad}");
        }
    }

    #[test]
    fn server_errors_print_code_message_and_request_id() {
        let e = CliError::Server {
            status: 404,
            code: "FunctionNotFound".into(),
            message: "function 'f' does not exist".into(),
            request_id: "r-1".into(),
        };
        assert_eq!(e.to_string(), "FunctionNotFound: function 'f' does not exist (request id: r-1)");
        assert_eq!(e.exit_code(), 1);
        let bare = CliError::Server {
            status: 502,
            code: String::new(),
            message: "bad gateway".into(),
            request_id: "-".into(),
        };
        assert_eq!(bare.to_string(), "HTTP 502: bad gateway (request id: -)");
    }
}
