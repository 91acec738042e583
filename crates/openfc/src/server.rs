//! Wiring: open the stores, bootstrap the account, start the HTTP server and the package collector,
//! shut down gracefully; and the `keys` subcommands.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::serve::ListenerExt;
use clap::Subcommand;
use openfc_blob::{ObjectCodeStore, S3Settings};
use openfc_core::cache::HotCache;
use openfc_core::code::PackageLimits;
use openfc_core::ports::{CodeStore, KeyStatus, MetaStore, SystemClock};
use openfc_core::usecase::Fc;
use openfc_invoker::runtime::Interpreters;
use openfc_invoker::{Invoker, InvokerConfig};
use openfc_meta::SqlMeta;
use serde_json::json;

use crate::api::{self, App};
use crate::config::{CodeStoreKind, ServeConfig, StoreConfig};
use crate::keys::{self, Keyring, MasterKey};

/// Log lines go to stderr through `logsink` (buffered up to 50 ms, warnings and errors at once): a writer thread
/// woken per line (tracing-appender) was measured to cost 2–6 µs of CPU per request at c=16, and a `write(2)`
/// per line ~4 % of a warm invocation.
fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("OPENFC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(crate::logsink::Buffered).with_ansi(ansi);
    crate::logsink::flush_on_panic();
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

pub(crate) fn timestamp() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// After a change to keys, accounts or roles from the shell: running nodes drop their cached keys and role
/// policies now rather than after the key cache's TTL (on PostgreSQL; SQLite has one process, which the TTL
/// covers).
pub(crate) async fn tell_nodes_keys_changed(meta: &SqlMeta, who: &str) {
    if let Err(e) = openfc_core::cluster::ClusterStore::publish(meta, who, &openfc_core::cluster::Change::Keys).await {
        eprintln!("warning: running nodes were not told ({e}); they see the change within --key-cache-ttl");
    }
}

pub(crate) async fn open_meta(store: &StoreConfig) -> anyhow::Result<Arc<SqlMeta>> {
    if !store.data_dir.exists() {
        std::fs::create_dir_all(&store.data_dir)
            .with_context(|| format!("creating data directory {}", store.data_dir.display()))?;
    }
    // The data directory holds the master key, credentials and every function's code: owner only, whoever
    // created it (a directory made beforehand by an operator or a deployment tool is tightened too).
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&store.data_dir)?.permissions()) & 0o777;
    if mode != 0o700 {
        std::fs::set_permissions(&store.data_dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .with_context(|| format!("restricting data directory {} to its owner", store.data_dir.display()))?;
        tracing::warn!(dir = %store.data_dir.display(), was = format!("{mode:o}"), "data directory was not owner-only; set to 0700");
    }
    SqlMeta::connect(&store.database_url).await.with_context(|| format!("opening database {}", redact(&store.database_url)))
}

/// A database URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => match url[s + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
            None => url.to_owned(),
        },
        _ => url.to_owned(),
    }
}

fn open_code_store(cfg: &ServeConfig) -> anyhow::Result<Arc<dyn CodeStore>> {
    let data = &cfg.store.data_dir;
    let store = match &cfg.code_store {
        CodeStoreKind::Local => ObjectCodeStore::local(data.join("code"), data.join("oss"))?,
        CodeStoreKind::S3 { bucket } => ObjectCodeStore::s3(
            bucket,
            S3Settings {
                endpoint: cfg.s3_endpoint.clone(),
                region: cfg.s3_region.clone(),
                access_key_id: cfg.s3_access_key_id.clone(),
                secret_access_key: cfg.s3_secret_access_key.clone(),
            },
        )?,
    };
    Ok(Arc::new(store))
}

pub async fn serve(cfg: ServeConfig) -> anyhow::Result<()> {
    init_logging(cfg.log_json);
    let meta = open_meta(&cfg.store).await?;
    let master = Arc::new(MasterKey::load_or_create(&cfg.store.master_key_file)?);
    let code = open_code_store(&cfg)?;
    let listener = tokio::net::TcpListener::bind(&cfg.listen).await.with_context(|| format!("binding {}", cfg.listen))?;
    // Where this process's API is reached from its own host (instances with a role are forwarded to it).
    let api_addr = listener.local_addr().map(|a| match a.ip().is_unspecified() {
        true => std::net::SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), a.port()),
        false => a,
    })?;
    let bound: SocketAddr = listener.local_addr()?;
    let public_url = cfg.public_url_for(bound);

    let (account, created) = keys::ensure_account(meta.as_ref(), &master, &timestamp()).await?;
    if let Some(b) = created {
        let creds = json!({
            "accountId": b.account_id, "accessKeyId": b.access_key_id, "accessKeySecret": b.secret,
            "region": cfg.region, "endpoint": public_url,
        });
        let path = cfg.store.data_dir.join("credentials.json");
        keys::write_credentials(&path, &creds)?;
        println!("openfc: created account {} with root AccessKey (shown once; also in {}):", b.account_id, path.display());
        println!("  AccessKeyId:     {}", b.access_key_id);
        println!("  AccessKeySecret: {}", b.secret);
    }

    let meta_dyn: Arc<dyn MetaStore> = meta.clone();
    let mut image_store = openfc_image::store::ImageStore::open(cfg.images.store.clone())
        .map_err(|e| anyhow::anyhow!("opening the image store in {}: {e}", cfg.images.store.dir.display()))?;
    if let CodeStoreKind::S3 { .. } = cfg.code_store {
        // Nodes share image blobs through the bucket: only the first node of a pull contacts the registry.
        image_store = image_store.with_shared(code.clone());
    }
    image_store.sweep_tmp();
    let image_store = Arc::new(image_store);
    let limits = PackageLimits {
        max_size: cfg.max_code_size,
        max_entries: cfg.max_code_entries,
        max_unzipped: cfg.max_unzipped_size,
    };
    // This node's name in leases (async events, image pulls): unique per process, so a restarted node never
    // settles what its previous life claimed (those run again when their leases end).
    // It is also this node's id in the node table (see openfc-core::cluster).
    let node = format!("{}-{}", std::process::id(), &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let cluster = openfc_core::cluster::Cluster::new(node.clone(), Some(meta.clone()));
    let images = Arc::new(openfc_core::images::Images::new(
        meta.clone(),
        image_store.clone(),
        openfc_core::images::ImageSettings::default(),
        node.clone(),
    ));
    // Temporary credentials of roles: minted for functions, accepted by the API (`sts`).
    let sts = Arc::new(crate::sts::Sts::new(&master, crate::sts::DEFAULT_TTL_SECS));
    let invoker = Invoker::new(
        InvokerConfig {
            data_dir: cfg.store.data_dir.clone(),
            interpreters: Interpreters { python: cfg.python.clone(), node: cfg.node.clone(), php: cfg.php.clone(), java: cfg.java.clone() },
            max_instances: cfg.max_instances,
            queue_timeout: Duration::from_millis(cfg.queue_timeout_ms),
            idle_timeout: Duration::from_secs(cfg.instance_idle_timeout),
            start_timeout_secs: cfg.instance_start_timeout,
            warm_sandboxes: cfg.warm_sandboxes,
            prestarted_runtimes: cfg.prestarted_runtimes,
            tmp_mib: 512,
            pids_limit: 1024,
            nofile: 65_536,
            uid: 65_534,
            gid: 65_534,
            log_ring_bytes: 1 << 20,
            max_unzipped: cfg.max_unzipped_size,
            slirp4netns: ["/usr/bin/slirp4netns", "/usr/local/bin/slirp4netns"]
                .iter()
                .map(std::path::PathBuf::from)
                .find(|p| p.exists()),
            outbound_allow: cfg.outbound_allow.clone(),
            images: Some(image_store.clone()),
            image_owner_base: cfg.images.owner_base,
            container_start_timeout_secs: cfg.images.container_start_timeout,
            cluster: cluster.clone(),
            builtins_dir: Some(cfg.builtins_dir.clone()),
            response_memory_mb: cfg.response_memory_mb,
            credentials: Some(sts.clone()),
            api_addr: Some(api_addr),
        },
        code.clone(),
    )
    .context("starting the invoker")?;
    let fc = Arc::new(Fc {
        meta: meta_dyn.clone(),
        code,
        clock: Arc::new(SystemClock),
        limits,
        gc_grace: Duration::from_secs(cfg.gc_grace),
        region: cfg.region.clone(),
        hot: HotCache::new(Duration::from_millis(cfg.meta_cache_ttl_ms)),
        invoker: invoker.clone(),
        events: Some(Arc::new(openfc_core::asyncq::Events::new(meta.clone(), cfg.async_settings.clone()))),
        images: Some(images.clone()),
        cluster: cluster.clone(),
    });
    openfc_core::triggers::set_min_timer_interval(cfg.async_settings.min_timer_interval.as_secs());
    let isolation = invoker.isolation();
    tracing::info!(cgroups = %isolation["cgroups"], network = %isolation["network"], "function isolation");
    if !isolation["cgroups"].as_str().unwrap_or("").starts_with("cgroup") {
        tracing::warn!("memory, process and CPU limits are NOT enforced: {}", isolation["cgroups"]);
    }
    let app = Arc::new(App {
        fc,
        invoker: invoker.clone(),
        default_account: account.clone(),
        keyring: {
            let keyring = Keyring::new(meta_dyn, master.clone(), Duration::from_secs(cfg.key_cache_ttl)).with_sts(sts.clone());
            // One process owns a SQLite file: its own memory of signatures is enough there.
            if meta.dialect() == "postgres" { keyring.with_ledger(meta.clone()) } else { keyring }
        },
        region: cfg.region.clone(),
        public_url: public_url.clone(),
        url_key: master.derive("openfc code url v1"),
        code_url_ttl: cfg.code_url_ttl,
        // A base64 package at the size limit, or a 32 MB invocation payload, plus room for the rest.
        max_body: ((cfg.max_code_size as usize / 3 + 1) * 4).max(32 * 1024 * 1024) + 1024 * 1024,
        metrics: crate::metrics::handle(),
        metrics_token: cfg.metrics_token.clone(),
        console: crate::console::Settings {
            session_key: master.derive("openfc console session v1"),
            session_ttl_secs: cfg.console_session_ttl,
        },
        health: json!({
            "status": "ok",
            "version": env!("CARGO_PKG_VERSION"),
            "database": meta.dialect(),
            "codeStore": match &cfg.code_store { CodeStoreKind::Local => "local".to_owned(), CodeStoreKind::S3 { bucket } => format!("s3://{bucket}") },
            "interpreters": invoker.interpreters(),
        }),
    });

    let gc = tokio::spawn(collect_garbage(app.clone(), Duration::from_secs(cfg.gc_interval.max(1))));
    {
        let fc = app.fc.clone();
        tokio::spawn(async move {
            let accounts = match fc.meta.list_accounts().await {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "could not list accounts to look for configs of deleted functions");
                    return;
                }
            };
            for account in accounts {
                match fc.remove_orphan_configs(&account.id).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(removed = n, account = %account.id, "removed configs of functions that no longer exist"),
                    Err(e) => tracing::warn!(error = %e, "could not look for configs of deleted functions"),
                }
            }
        });
    }
    let heartbeat = {
        let invoker = invoker.clone();
        let instances = move || openfc_core::invocation::Invoker::instances(invoker.as_ref());
        tokio::spawn(cluster.clone().run(public_url.clone(), env!("CARGO_PKG_VERSION").to_owned(), openfc_core::images::now_ms, instances))
    };
    let changes = {
        let app = app.clone();
        let apply = move |change: openfc_core::cluster::Change| {
            use openfc_core::cluster::Change;
            if matches!(change, Change::Keys | Change::All) {
                app.keyring.forget_all();
            }
            app.fc.hot.apply(&change);
        };
        tokio::spawn(meta.clone().listen(node.clone(), Arc::new(apply)))
    };
    let provision = tokio::spawn(app.fc.clone().keep_provisioned());
    let image_pulls = tokio::spawn(images.clone().reconcile());
    let async_workers = tokio::spawn(app.fc.clone().run_async_workers(node));
    let timers = tokio::spawn(app.fc.clone().run_timers());
    println!("openfc listening on {public_url} (account {account}, database {}, data dir {})",
        meta.dialect(), cfg.store.data_dir.display());
    println!("  try: curl {public_url}/health");
    tracing::info!(listen = %bound, public_url = %public_url, database = meta.dialect(), "openfc started");

    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    // The peer's address reaches handlers (`/metrics` serves loopback clients only unless it has a token).
    axum::serve(listener, api::router(app).into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    gc.abort();
    heartbeat.abort();
    changes.abort();
    cluster.leave(openfc_core::images::now_ms()).await;
    provision.abort();
    async_workers.abort();
    image_pulls.abort();
    timers.abort();
    invoker.stop_all();
    meta.close().await;
    tracing::info!("openfc stopped");
    crate::logsink::flush();
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}

/// Collects unreferenced packages off the request path, forever.
async fn collect_garbage(app: Arc<App>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        match app.fc.collect_garbage().await {
            Ok(0) => {}
            Ok(n) => {
                crate::metrics::record_gc(n);
                tracing::info!(deleted = n, "garbage-collected unreferenced code packages");
            }
            Err(e) => tracing::warn!(error = %e, "code package collection failed; will retry"),
        }
        if let Some(ledger) = app.keyring.ledger()
            && let Err(e) = ledger.prune(openfc_core::images::now_ms()).await
        {
            tracing::warn!(error = %e, "pruning expired signatures failed; will retry");
        }
        // Images no function uses stay cached until the store is over its budget (least recently used first).
        if let (Some(images), Some(store)) = (&app.fc.images, app.invoker.image_store()) {
            match openfc_core::images::PullInventory::read(images.meta.as_ref()).await {
                Ok(inv) => {
                    // Pulls nothing names any more (functions updated or deleted) go; their images become cache.
                    let unused = inv.unused(openfc_core::images::now_ms());
                    if !unused.is_empty() {
                        match images.meta.delete_image_pulls(&unused).await {
                            Ok(()) => tracing::info!(removed = unused.len(), "removed image pulls no function uses"),
                            Err(e) => tracing::warn!(error = %e, "could not remove unused image pulls"),
                        }
                    }
                    let (store, keep, in_use) = (store.clone(), inv.in_use(), app.invoker.paths_in_use());
                    let freed = tokio::task::spawn_blocking(move || store.collect(&keep, &in_use, false, openfc_image::store::GRACE)).await;
                    if let Ok(Ok(n)) = freed
                        && n > 0
                    {
                        tracing::info!(freed_bytes = n, "removed unused images over the image store's budget");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not read image pulls for the store's budget"),
            }
        }
    }
}

/// `openfc logs`: the function's log file, then (with `--follow`) whatever is appended to it.
pub async fn logs(store: StoreConfig, target: &str, follow: bool, lines: usize) -> anyhow::Result<()> {
    let (service, function) = target.split_once('/').context("give the function as SERVICE/FUNCTION")?;
    let meta = open_meta(&store).await?;
    let account = meta.first_account().await?.context("no account yet: start openfc once")?.id;
    meta.close().await;
    let path = Invoker::log_file(&store.data_dir, &account, service, function);
    for line in openfc_invoker::logstore::read_tail(&path, lines) {
        println!("{line}");
    }
    if !follow {
        return Ok(());
    }
    let mut offset = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if len < offset {
            offset = 0; // rotated
        }
        if len > offset {
            let mut f = std::fs::File::open(&path)?;
            std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(offset))?;
            let mut text = String::new();
            std::io::Read::read_to_string(&mut f, &mut text)?;
            print!("{text}");
            offset = len;
        }
    }
}

#[derive(Subcommand)]
pub enum KeyAction {
    /// Create an AccessKey for the account; prints it (the secret is shown only here). With `--policy FILE`
    /// (a RAM-style policy document) the key may do only what the policy allows; without, it is a root key.
    Create {
        #[arg(long)]
        policy: Option<std::path::PathBuf>,
        /// The account the key belongs to (`openfc accounts list`) [default: the first account].
        #[arg(long)]
        account: Option<String>,
    },
    /// List AccessKeys (never their secrets).
    List,
    /// Disable an AccessKey: requests signed with it get AccessDenied.
    Disable { access_key_id: String },
    /// Enable a disabled AccessKey.
    Enable { access_key_id: String },
    /// Delete an AccessKey.
    Delete { access_key_id: String },
}

pub async fn keys(store: StoreConfig, action: KeyAction) -> anyhow::Result<()> {
    let meta = open_meta(&store).await?;
    let master = MasterKey::load_or_create(&store.master_key_file)?;
    let result = async {
        match action {
            KeyAction::Create { policy, account: chosen } => {
                let policy = match policy {
                    Some(path) => {
                        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
                        openfc_core::policy::Policy::parse(&text).with_context(|| format!("the policy in {}", path.display()))?;
                        Some(text)
                    }
                    None => None,
                };
                let account = match chosen {
                    Some(id) => {
                        let known = meta.list_accounts().await?;
                        anyhow::ensure!(known.iter().any(|a| a.id == id), "no account {id} (openfc accounts list)");
                        id
                    }
                    None => keys::ensure_account(meta.as_ref(), &master, &timestamp()).await?.0,
                };
                let (mut rec, secret) = keys::new_access_key(&master, &account, &timestamp());
                rec.policy = policy;
                meta.put_access_key(&rec).await?;
                println!("{}", json!({"accountId": account, "accessKeyId": rec.id, "accessKeySecret": secret}));
            }
            KeyAction::List => {
                for k in meta.list_access_keys().await? {
                    println!("{}", json!({"accessKeyId": k.id, "accountId": k.account_id, "status": k.status.as_str(),
                        "createdTime": k.created_time, "policy": k.policy.as_deref().and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())}));
                }
            }
            KeyAction::Disable { access_key_id } => {
                meta.set_access_key_status(&access_key_id, KeyStatus::Inactive).await.with_context(|| format!("disabling {access_key_id}"))?;
                println!("disabled {access_key_id}");
            }
            KeyAction::Enable { access_key_id } => {
                meta.set_access_key_status(&access_key_id, KeyStatus::Active).await.with_context(|| format!("enabling {access_key_id}"))?;
                println!("enabled {access_key_id}");
            }
            KeyAction::Delete { access_key_id } => {
                meta.delete_access_key(&access_key_id).await.with_context(|| format!("deleting {access_key_id}"))?;
                println!("deleted {access_key_id}");
            }
        }
        tell_nodes_keys_changed(meta.as_ref(), "openfc keys").await;
        anyhow::Ok(())
    }
    .await;
    meta.close().await;
    result
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted() {
        assert_eq!(super::redact("postgres://u:pw@h:1/db"), "postgres://u:***@h:1/db");
        assert_eq!(super::redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(super::redact("sqlite://x"), "sqlite://x");
    }
}
