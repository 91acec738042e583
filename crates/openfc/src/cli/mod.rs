//! The resource CLI: `openfc services|functions|deploy|invoke|exec`, over the HTTP API and signed with the FC
//! scheme as the fc2 SDKs sign, so they work against any openfc node and any FC-compatible endpoint.
//! `openfc logs` and `async` use the API too when given an endpoint (`--endpoint` or `OPENFC_ENDPOINT`) and
//! otherwise read the data directory directly, needing no server; `keys` always reads it directly.
//!
//! `client` resolves the endpoint and AccessKey and sends signed requests, `output` prints tables or JSON,
//! `commands` holds the listing, get, delete and invoke commands, `deploy` zips a folder and creates or
//! updates a function from it, `exec` runs a command in an instance over InstanceExec's websocket, `logs` and
//! `asyncs` are the HTTP modes of `openfc logs` and `openfc async`. Every command ends in [`exit`] (or
//! [`exit_with`]), which turns the outcome into the documented exit code.

mod asyncs;
mod client;
mod commands;
mod deploy;
mod exec;
mod logs;
mod output;
mod terminal;

use std::fmt;
use std::path::PathBuf;

use clap::{Args, Subcommand};

pub use asyncs::run as async_http;
pub use commands::{functions, invoke, services};
pub use deploy::deploy;
pub use exec::exec;
pub use logs::logs;
use output::Output;

/// Shown under every command's `--help`; the README's "Command-line client" repeats it.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  the server answered an error (printed on stderr as `Code: message (request id: ID)`), or there is
     nothing to act on (exec: no running instance, or the session ended without an exit code)
  2  usage error: bad arguments, or local input the command cannot use (no such folder, package too large)
  3  the endpoint cannot be reached (refused, DNS, TLS, timeout, connection lost) or no credentials were found
  4  invoke only: the function ran and failed (X-Fc-Error-Type HandledInvocationError or
     UnhandledInvocationError); its error body is still printed on stdout
  N  exec only: the command's own exit code, once the session is open

Credentials: --access-key-id/--access-key-secret, else OPENFC_ACCESS_KEY_ID/OPENFC_ACCESS_KEY_SECRET, else
ALIBABA_CLOUD_ACCESS_KEY_ID/ALIBABA_CLOUD_ACCESS_KEY_SECRET, else DATA_DIR/credentials.json (written by the
first `openfc serve`). Endpoint: --endpoint, else OPENFC_ENDPOINT, else the credentials file's, else
http://127.0.0.1:9900.";

/// Who signs: the AccessKey flags every API command shares (`ConnArgs`, `RemoteArgs`), each with an
/// environment twin. No heading of its own: the flags show under the heading of the struct that flattens them.
#[derive(Debug, Clone, Default, Args)]
pub struct KeyArgs {
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
}

/// Where the API is and who signs: flags, each with an environment twin, over the data directory's
/// `credentials.json`.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Endpoint and credentials")]
pub struct ConnArgs {
    /// The FC endpoint, e.g. http://127.0.0.1:9900 (no scheme: http for loopback names, https otherwise).
    #[arg(long, global = true, env = "OPENFC_ENDPOINT")]
    pub endpoint: Option<String>,
    #[command(flatten)]
    pub keys: KeyArgs,
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

/// `openfc exec SERVICE/FUNCTION [INSTANCE] -- CMD [ARGS...]`
#[derive(Args)]
#[command(after_help = format!("{EXEC_HELP}\n{EXIT_CODES}"))]
pub struct ExecArgs {
    /// SERVICE/FUNCTION
    pub target: String,
    /// The instance (as ListInstances names it) [default: the first running one, named on stderr].
    pub instance: Option<String>,
    /// A version or alias of the service [default: LATEST].
    #[arg(long, short)]
    pub qualifier: Option<String>,
    /// Send this terminal's standard input to the command.
    #[arg(long = "stdin", short = 'i')]
    pub stdin: bool,
    /// Run the command in a terminal (stdout and stderr merged); this terminal goes raw and sends its size.
    #[arg(long, short)]
    pub tty: bool,
    /// End the session after this many seconds with nothing sent or received (1 to 86400) [server default: 600].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub idle_timeout: Option<u64>,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
    #[command(flatten)]
    pub conn: ConnArgs,
}

const EXEC_HELP: &str = "\
The command runs inside the instance (its namespaces, cgroup, user and syscall filter) through InstanceExec's
websocket. Its exit code becomes this command's. The end of standard input is not passed on (FC's frames have
no way to say it): a command reading its input to the end must be ended by other means (Ctrl-C with -t).
";

/// The HTTP mode of `openfc logs` and `openfc async`: chosen by an endpoint (`--endpoint` or
/// `OPENFC_ENDPOINT`); the key comes as for the other commands, the data directory being the command's own
/// `--data-dir`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Over the HTTP API (when --endpoint or OPENFC_ENDPOINT is given)")]
pub struct RemoteArgs {
    /// Use this FC endpoint's API instead of reading the data directory, e.g. http://127.0.0.1:9900.
    #[arg(long, global = true, env = "OPENFC_ENDPOINT")]
    pub endpoint: Option<String>,
    #[command(flatten)]
    pub keys: KeyArgs,
    /// `table` or `json` (over HTTP; reading the data directory prints as it always has).
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

impl RemoteArgs {
    /// The connection to use when an endpoint is given (HTTP mode); `None` keeps the direct mode.
    pub fn http(&self, data_dir: Option<&std::path::Path>) -> Option<ConnArgs> {
        let endpoint = self.endpoint.clone().filter(|e| !e.trim().is_empty())?;
        Some(ConnArgs { endpoint: Some(endpoint), keys: self.keys.clone(), data_dir: data_dir.map(PathBuf::from) })
    }
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
    /// Nothing to act on, found out without a server error (no running instance to exec into).
    Nothing(String),
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Server { .. } => 1,
            CliError::Usage(_) => 2,
            CliError::Unreachable(_) => 3,
            CliError::Function { .. } => 4,
            CliError::Nothing(_) => 1,
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
            CliError::Usage(m) | CliError::Unreachable(m) | CliError::Nothing(m) => write!(f, "{m}"),
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

/// As [`exit`], for a command that ends with an exit code of its own (`openfc exec`: the remote command's).
pub fn exit_with(result: Result<i32, CliError>) -> ! {
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => exit(Err(e)),
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
