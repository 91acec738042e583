//! `openfc async list|get|stop|redrive`: the stateful async invocation records from the shell, read and
//! changed in the database directly (so they work whether or not a server runs; a running node cancels a
//! stopped attempt at its next lease renewal).

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Subcommand;
use openfc_core::asyncq::{AsyncEvent, AsyncQueue, AsyncStatus};
use openfc_core::ports::MetaStore;
use openfc_core::stateful::{InvocationFilter, invocation_json};

use crate::config::StoreConfig;

#[derive(Subcommand)]
pub enum AsyncAction {
    /// List a function's async invocations, newest first (from the data directory: one JSON object per line;
    /// over HTTP: a table, or `-o json`).
    List {
        /// SERVICE/FUNCTION
        target: String,
        /// Only invocations in this status (Enqueued, Running, Retrying, Succeeded, Failed, Stopped, Expired).
        #[arg(long)]
        status: Option<String>,
        /// How many to print.
        #[arg(long, short = 'n', default_value_t = 20)]
        limit: usize,
    },
    /// Print one invocation, with its payload.
    Get { target: String, id: String },
    /// Stop an invocation that has not finished.
    Stop { target: String, id: String },
    /// Run a Failed, Stopped or Expired invocation again under a new id (printed).
    Redrive { target: String, id: String },
}

fn split(target: &str) -> anyhow::Result<(&str, &str)> {
    target.split_once('/').context("give the function as SERVICE/FUNCTION")
}

pub async fn run(store: StoreConfig, action: AsyncAction) -> anyhow::Result<()> {
    let meta = crate::server::open_meta(&store).await?;
    let account = meta.first_account().await?.context("no account yet: start openfc once")?.id;
    let queue: &dyn AsyncQueue = meta.as_ref();
    let result = async {
        match action {
            AsyncAction::List { target, status, limit } => {
                let (service, function) = split(&target)?;
                let status = match status {
                    Some(s) => Some(AsyncStatus::parse(&s).with_context(|| format!("unknown status '{s}'"))?),
                    None => None,
                };
                let filter = InvocationFilter {
                    account: account.clone(),
                    service: service.to_owned(),
                    function: function.to_owned(),
                    status,
                    descending: true,
                    limit: limit.max(1),
                    ..Default::default()
                };
                for ev in queue.list(&filter).await? {
                    println!("{}", invocation_json(&ev, false));
                }
            }
            AsyncAction::Get { target, id } => {
                let (service, function) = split(&target)?;
                let ev = queue.get(&account, service, function, &id).await.with_context(|| format!("invocation '{id}'"))?;
                println!("{}", serde_json::to_string_pretty(&invocation_json(&ev, true))?);
            }
            AsyncAction::Stop { target, id } => {
                let (service, function) = split(&target)?;
                let ev = queue.get(&account, service, function, &id).await.with_context(|| format!("invocation '{id}'"))?;
                let now = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
                if !queue.stop(&ev, now).await? {
                    bail!("invocation '{id}' has already finished ({})", ev.status.as_str());
                }
                println!("stopped {id}");
            }
            AsyncAction::Redrive { target, id } => {
                let (service, function) = split(&target)?;
                let ev = queue.get(&account, service, function, &id).await.with_context(|| format!("invocation '{id}'"))?;
                if !matches!(ev.status, AsyncStatus::Failed | AsyncStatus::Stopped | AsyncStatus::Expired) {
                    bail!("only a Failed, Stopped or Expired invocation can be re-driven; '{id}' is {}", ev.status.as_str());
                }
                let now = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
                let new_id = openfc_core::stateful::redrive_id(&ev.id);
                let again = AsyncEvent::new(&ev.account_id, &ev.service, &ev.function, &ev.qualifier, &new_id,
                    Bytes::from(ev.payload.to_vec()), now, "redrive");
                queue.enqueue(&again).await?;
                println!("{new_id}");
            }
        }
        Ok(())
    }
    .await;
    meta.close().await;
    result
}
