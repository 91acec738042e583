//! Configuration: command-line flags, each also readable from an `OPENFC_*` environment variable, over an
//! optional TOML file (`--config`), over built-in defaults. `openfc serve --help` lists them all.

use std::net::SocketAddr;
use std::time::Duration;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use serde::Deserialize;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:9900";

/// Storage settings shared by `serve` and the `keys` commands.
#[derive(Debug, Clone, Args, Default)]
pub struct StoreArgs {
    /// TOML file with any of these settings (keys as the long flag names, `-` → `_`).
    #[arg(long, global = true, env = "OPENFC_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory: SQLite metadata, local code store, master key, credentials.
    #[arg(long, global = true, env = "OPENFC_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Metadata database: `sqlite://PATH` or `postgres://USER@HOST:PORT/DB` [default: SQLite in the data dir].
    #[arg(long, global = true, env = "OPENFC_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Master key file (sealing AccessKey secrets, signing code URLs); share it between nodes.
    /// [default: DATA_DIR/master.key, created on first start]
    #[arg(long, global = true, env = "OPENFC_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
}

/// Container-image settings shared by `serve` and `openfc images` (containers.md §2.1, §2.5).
#[derive(Debug, Clone, Args, Default)]
pub struct ImageArgs {
    /// Registry credentials, a Docker `config.json` (`auths` by registry host; read at every pull).
    #[arg(long, env = "OPENFC_REGISTRY_AUTH_FILE")]
    pub registry_auth_file: Option<PathBuf>,
    /// A registry (`HOST:PORT`, as contacted) reached over plain HTTP; repeatable, or comma-separated in the
    /// environment [default: none — HTTPS everywhere].
    #[arg(long = "insecure-registry", env = "OPENFC_INSECURE_REGISTRIES", value_delimiter = ',')]
    pub insecure_registries: Option<Vec<String>>,
    /// Reach registry host FROM at TO instead (`registry.cn-hangzhou.aliyuncs.com=registry.internal:5000`);
    /// repeatable, or comma-separated in the environment.
    #[arg(long = "registry-mirror", env = "OPENFC_REGISTRY_MIRRORS", value_delimiter = ',')]
    pub registry_mirrors: Option<Vec<String>>,
    /// Largest image accepted, uncompressed (`10G`, `500M`, bytes) [default: 10G].
    #[arg(long, env = "OPENFC_MAX_IMAGE_SIZE")]
    pub max_image_size: Option<String>,
    /// Disk budget of the image store: above it, images no function uses are removed, least recently used
    /// first [default: 50G].
    #[arg(long, env = "OPENFC_IMAGE_STORE_SIZE")]
    pub image_store_size: Option<String>,
    /// Seconds a container's server has to listen on caPort [default: 120].
    #[arg(long, env = "OPENFC_CONTAINER_START_TIMEOUT")]
    pub container_start_timeout: Option<u64>,
    /// Image uid/gid N runs as host uid/gid BASE+N, so uid 0 in an image is never root [default: 1000000000].
    #[arg(long, env = "OPENFC_IMAGE_UID_BASE")]
    pub image_uid_base: Option<u32>,
}

/// Resolved image settings.
#[derive(Debug, Clone)]
pub struct ImageConfig {
    pub store: openfc_image::store::StoreConfig,
    pub container_start_timeout: u64,
    pub owner_base: Option<u32>,
}

/// `10G`, `512M`, `64K`, or bytes (powers of 1024).
pub fn parse_size(flag: &str, text: &str) -> anyhow::Result<u64> {
    let t = text.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let mult: u64 = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => bail!("--{flag}: unknown unit in `{text}` (use K, M, G or T)"),
            };
            (&t[..i], mult)
        }
        _ => (t, 1),
    };
    let n: u64 = num.trim().parse().with_context(|| format!("--{flag}: `{text}` is not a size"))?;
    n.checked_mul(mult).with_context(|| format!("--{flag}: `{text}` is too large"))
}

impl ImageConfig {
    pub fn resolve(data_dir: &Path, a: &ImageArgs, f: &ImageFileConfig) -> anyhow::Result<ImageConfig> {
        let max = parse_size("max-image-size", a.max_image_size.as_deref().or(f.max_image_size.as_deref()).unwrap_or("10G"))?;
        let budget = parse_size("image-store-size", a.image_store_size.as_deref().or(f.image_store_size.as_deref()).unwrap_or("50G"))?;
        let list = |v: &Option<Vec<String>>, fv: &Option<Vec<String>>| -> Vec<String> {
            v.clone().or_else(|| fv.clone()).unwrap_or_default().into_iter().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect()
        };
        let mirrors = openfc_image::Mirrors::parse(&list(&a.registry_mirrors, &f.registry_mirrors))
            .map_err(|e| anyhow::anyhow!("--registry-mirror: {e}"))?;
        // Mapping owners needs root (chown to the shifted ids); without it images run with their own ids.
        let root = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0).unwrap_or(false);
        let owner_base = root.then(|| a.image_uid_base.or(f.image_uid_base).unwrap_or(1_000_000_000));
        if let Some(base) = owner_base
            && !(65_536..=u32::MAX - 65_536).contains(&base)
        {
            // Below 65536 the range would overlap the host's own users (0 is root); above, it would not fit.
            bail!("--image-uid-base must be between 65536 and {}, not {base}", u32::MAX - 65_536);
        }
        let limits = openfc_image::Limits { max_bytes: max, ..Default::default() };
        Ok(ImageConfig {
            store: openfc_image::store::StoreConfig {
                dir: data_dir.join("images"),
                limits,
                owner_base,
                budget_bytes: budget,
                registry: openfc_image::RegistryConfig {
                    auth_file: a.registry_auth_file.clone().or_else(|| f.registry_auth_file.clone()),
                    insecure: list(&a.insecure_registries, &f.insecure_registries),
                    mirrors,
                    ..Default::default()
                },
            },
            container_start_timeout: a.container_start_timeout.or(f.container_start_timeout).unwrap_or(120).max(1),
            owner_base,
        })
    }

    pub fn from_args(store: &StoreArgs, a: &ImageArgs) -> anyhow::Result<ImageConfig> {
        let f = read_file(store.config.as_deref())?;
        let data_dir = resolve_store(store, &f).data_dir;
        ImageConfig::resolve(&data_dir, a, &f.images())
    }
}

/// The image settings in a `--config` file.
#[derive(Debug, Default, Clone)]
pub struct ImageFileConfig {
    registry_auth_file: Option<PathBuf>,
    insecure_registries: Option<Vec<String>>,
    registry_mirrors: Option<Vec<String>>,
    max_image_size: Option<String>,
    image_store_size: Option<String>,
    container_start_timeout: Option<u64>,
    image_uid_base: Option<u32>,
}

#[derive(Debug, Clone, Args, Default)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub images: ImageArgs,
    /// Address to listen on [default: 127.0.0.1:9900].
    #[arg(long, env = "OPENFC_LISTEN")]
    pub listen: Option<String>,
    /// Base URL clients reach openfc at, used in code download URLs [default: http://LISTEN].
    #[arg(long, env = "OPENFC_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Where code packages live: `local` (DATA_DIR/code) or `s3://BUCKET` [default: local].
    #[arg(long, env = "OPENFC_CODE_STORE")]
    pub code_store: Option<String>,
    /// S3-compatible endpoint for `s3://` code stores (e.g. http://127.0.0.1:9000).
    #[arg(long, env = "OPENFC_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    #[arg(long, env = "OPENFC_S3_REGION")]
    pub s3_region: Option<String>,
    #[arg(long, env = "OPENFC_S3_ACCESS_KEY_ID")]
    pub s3_access_key_id: Option<String>,
    #[arg(long, env = "OPENFC_S3_SECRET_ACCESS_KEY")]
    pub s3_secret_access_key: Option<String>,
    /// Largest code package accepted, in bytes (decoded zip) [default: 104857600].
    #[arg(long, env = "OPENFC_MAX_CODE_SIZE")]
    pub max_code_size: Option<u64>,
    /// Most entries a code package may hold [default: 65536].
    #[arg(long, env = "OPENFC_MAX_CODE_ENTRIES")]
    pub max_code_entries: Option<usize>,
    /// Most bytes a code package may unpack to [default: 2147483648].
    #[arg(long, env = "OPENFC_MAX_UNZIPPED_SIZE")]
    pub max_unzipped_size: Option<u64>,
    /// Lifetime of GetFunctionCode URLs, in seconds [default: 600].
    #[arg(long, env = "OPENFC_CODE_URL_TTL")]
    pub code_url_ttl: Option<u64>,
    /// Seconds between garbage collections of unreferenced packages [default: 300].
    #[arg(long, env = "OPENFC_GC_INTERVAL")]
    pub gc_interval: Option<u64>,
    /// Seconds an unreferenced package is kept before it may be collected [default: 600].
    #[arg(long, env = "OPENFC_GC_GRACE")]
    pub gc_grace: Option<u64>,
    /// Seconds an AccessKey lookup is cached (a key disabled by `openfc keys` is dropped by every node at once
    /// on PostgreSQL; this bounds it if the notification is lost) [default: 1].
    #[arg(long, env = "OPENFC_KEY_CACHE_TTL")]
    pub key_cache_ttl: Option<u64>,
    /// A bearer token `/metrics` requires (its series name every function); unset: only clients on this host
    /// (loopback) may read it.
    #[arg(long, env = "OPENFC_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Threads running openfc's own async work (HTTP, invocations' I/O) [default: one per core]; fewer leave
    /// more of the cores to the functions' instances.
    #[arg(long, env = "OPENFC_WORKER_THREADS")]
    pub worker_threads: Option<usize>,
    /// MiB of function responses openfc holds at once (outside any instance's cgroup): reading a response
    /// waits while they are spent [default: 1024; at least 64].
    #[arg(long, env = "OPENFC_RESPONSE_MEMORY_MB")]
    pub response_memory_mb: Option<usize>,
    /// Milliseconds a function read may be served from this node's cache. This node's writes show at once,
    /// other nodes' within milliseconds on PostgreSQL (they notify), or after at most this long if a
    /// notification is lost. 0 disables the cache [default: 1000].
    #[arg(long, env = "OPENFC_META_CACHE_TTL_MS")]
    pub meta_cache_ttl_ms: Option<u64>,
    /// Most instances per function version [default: 10].
    #[arg(long, env = "OPENFC_MAX_INSTANCES")]
    pub max_instances: Option<u32>,
    /// Milliseconds a request waits for a free instance before it is throttled (429) [default: 10000].
    #[arg(long, env = "OPENFC_QUEUE_TIMEOUT_MS")]
    pub queue_timeout_ms: Option<u64>,
    /// Seconds an idle instance is kept before it is stopped (scale to zero) [default: 300].
    #[arg(long, env = "OPENFC_INSTANCE_IDLE_TIMEOUT")]
    pub instance_idle_timeout: Option<u64>,
    /// Seconds a runtime has to start listening on its port [default: 30].
    #[arg(long, env = "OPENFC_INSTANCE_START_TIMEOUT")]
    pub instance_start_timeout: Option<u64>,
    /// Sandbox launchers kept started, already in their cgroups, for the next cold starts; each is an idle
    /// process of a few MB. 0 starts every sandbox on demand (slower cold starts) [default: 2].
    #[arg(long, env = "OPENFC_WARM_SANDBOXES")]
    pub warm_sandboxes: Option<usize>,
    /// Python and Node.js runtimes kept started per language, each in its own sandbox with the interpreter and
    /// openfc's shim loaded, waiting for a function: a cold start then skips the interpreter's start. Each waits
    /// as an idle process (~10 MB for Python, ~40 MB for Node.js). 0 turns it off [default: 2].
    #[arg(long, env = "OPENFC_PRESTARTED_RUNTIMES")]
    pub prestarted_runtimes: Option<usize>,
    /// Networks functions with internetAccess may reach although they are blocked by default (private
    /// ranges 10/8, 172.16/12, 192.168/16, 100.64/10, link-local 169.254/16 with the cloud metadata
    /// addresses, and this host's own addresses), comma-separated: `10.20.0.0/16,192.168.1.5` [default: none].
    #[arg(long, env = "OPENFC_OUTBOUND_ALLOW", value_delimiter = ',')]
    pub outbound_allow: Option<Vec<String>>,
    /// Asynchronous invocations this node runs at once (async invokes, timer fires, destinations) [default: 16].
    #[arg(long, env = "OPENFC_ASYNC_WORKERS")]
    pub async_workers: Option<usize>,
    /// Milliseconds before the first retry of a failed async invocation, doubled per retry up to 5 minutes
    /// [default: 1000].
    #[arg(long, env = "OPENFC_ASYNC_RETRY_BASE_MS")]
    pub async_retry_base_ms: Option<u64>,
    /// Hours finished async invocations are kept before they are removed [default: 168].
    #[arg(long, env = "OPENFC_ASYNC_RETENTION_HOURS")]
    pub async_retention_hours: Option<u64>,
    /// Seconds a node holds a running async invocation without renewing its claim; when a node dies, its
    /// running invocations are run again by another node (or this one restarted) after this [default: 30].
    #[arg(long, env = "OPENFC_ASYNC_LEASE")]
    pub async_lease: Option<u64>,
    /// Shortest `@every` timer interval accepted, in seconds; FC's is 60. Lower it for tests [default: 60].
    #[arg(long, env = "OPENFC_TIMER_MIN_INTERVAL")]
    pub timer_min_interval: Option<u64>,
    /// Python interpreter for python3.x runtimes [default: /usr/bin/python3].
    #[arg(long, env = "OPENFC_PYTHON")]
    pub python: Option<std::path::PathBuf>,
    /// Node.js interpreter for nodejs runtimes [default: /usr/bin/node].
    #[arg(long, env = "OPENFC_NODE")]
    pub node: Option<std::path::PathBuf>,
    /// PHP interpreter for the php7.2 runtime (Debian's php8.2-cli) [default: /usr/bin/php8.2].
    #[arg(long, env = "OPENFC_PHP")]
    pub php: Option<std::path::PathBuf>,
    /// Java runtime for java8/java11 (Debian's openjdk-17-jdk-headless; its javac builds the shim)
    /// [default: /usr/lib/jvm/java-17-openjdk-amd64/bin/java].
    #[arg(long, env = "OPENFC_JAVA")]
    pub java: Option<std::path::PathBuf>,
    /// Region reported in ARNs and account settings [default: cn-hangzhou].
    #[arg(long, env = "OPENFC_REGION")]
    pub region: Option<String>,
    /// Seconds a web console sign-in lasts (its session cookie expires then) [default: 28800].
    #[arg(long, env = "OPENFC_CONSOLE_SESSION_TTL")]
    pub console_session_ttl: Option<u64>,
    /// The runtime built-ins (`openfc runtimes install`), shown read-only to Python and Node.js instances; a
    /// directory several data directories may share [default: DATA_DIR/builtins].
    #[arg(long, env = "OPENFC_BUILTINS_DIR")]
    pub builtins_dir: Option<PathBuf>,
    /// Log format: `text` or `json` [default: text].
    #[arg(long, env = "OPENFC_LOG_FORMAT")]
    pub log_format: Option<String>,
}

/// The same settings as read from `--config`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    master_key_file: Option<PathBuf>,
    listen: Option<String>,
    public_url: Option<String>,
    code_store: Option<String>,
    s3_endpoint: Option<String>,
    s3_region: Option<String>,
    s3_access_key_id: Option<String>,
    s3_secret_access_key: Option<String>,
    max_code_size: Option<u64>,
    max_code_entries: Option<usize>,
    max_unzipped_size: Option<u64>,
    code_url_ttl: Option<u64>,
    gc_interval: Option<u64>,
    gc_grace: Option<u64>,
    key_cache_ttl: Option<u64>,
    metrics_token: Option<String>,
    response_memory_mb: Option<usize>,
    meta_cache_ttl_ms: Option<u64>,
    max_instances: Option<u32>,
    queue_timeout_ms: Option<u64>,
    instance_idle_timeout: Option<u64>,
    instance_start_timeout: Option<u64>,
    warm_sandboxes: Option<usize>,
    prestarted_runtimes: Option<usize>,
    outbound_allow: Option<Vec<String>>,
    async_workers: Option<usize>,
    async_retry_base_ms: Option<u64>,
    async_retention_hours: Option<u64>,
    async_lease: Option<u64>,
    timer_min_interval: Option<u64>,
    python: Option<std::path::PathBuf>,
    node: Option<std::path::PathBuf>,
    php: Option<std::path::PathBuf>,
    java: Option<std::path::PathBuf>,
    region: Option<String>,
    console_session_ttl: Option<u64>,
    log_format: Option<String>,
    builtins_dir: Option<PathBuf>,
    registry_auth_file: Option<PathBuf>,
    insecure_registries: Option<Vec<String>>,
    registry_mirrors: Option<Vec<String>>,
    max_image_size: Option<String>,
    image_store_size: Option<String>,
    container_start_timeout: Option<u64>,
    image_uid_base: Option<u32>,
}

impl FileConfig {
    fn images(&self) -> ImageFileConfig {
        ImageFileConfig {
            registry_auth_file: self.registry_auth_file.clone(),
            insecure_registries: self.insecure_registries.clone(),
            registry_mirrors: self.registry_mirrors.clone(),
            max_image_size: self.max_image_size.clone(),
            image_store_size: self.image_store_size.clone(),
            container_start_timeout: self.container_start_timeout,
            image_uid_base: self.image_uid_base,
        }
    }
}

fn read_file(path: Option<&Path>) -> anyhow::Result<FileConfig> {
    let Some(path) = path else { return Ok(FileConfig::default()) };
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

#[derive(Debug, Clone)]
pub enum CodeStoreKind {
    Local,
    S3 { bucket: String },
}

/// Resolved storage settings.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub data_dir: PathBuf,
    pub database_url: String,
    pub master_key_file: PathBuf,
}

/// Resolved server settings.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub store: StoreConfig,
    pub listen: String,
    pub public_url: Option<String>,
    pub code_store: CodeStoreKind,
    pub s3_endpoint: Option<String>,
    pub s3_region: String,
    pub s3_access_key_id: Option<String>,
    pub s3_secret_access_key: Option<String>,
    pub max_code_size: u64,
    pub max_code_entries: usize,
    pub max_unzipped_size: u64,
    pub code_url_ttl: u64,
    pub gc_interval: u64,
    pub gc_grace: u64,
    pub key_cache_ttl: u64,
    pub metrics_token: Option<String>,
    pub response_memory_mb: usize,
    pub meta_cache_ttl_ms: u64,
    pub max_instances: u32,
    pub queue_timeout_ms: u64,
    pub instance_idle_timeout: u64,
    pub instance_start_timeout: u64,
    pub warm_sandboxes: usize,
    pub prestarted_runtimes: usize,
    pub outbound_allow: Vec<openfc_sandbox::Net>,
    pub async_settings: openfc_core::asyncq::AsyncSettings,
    pub python: std::path::PathBuf,
    pub node: std::path::PathBuf,
    pub php: std::path::PathBuf,
    pub java: std::path::PathBuf,
    pub region: String,
    pub console_session_ttl: u64,
    pub log_json: bool,
    pub images: ImageConfig,
    pub builtins_dir: PathBuf,
}

fn resolve_store(a: &StoreArgs, f: &FileConfig) -> StoreConfig {
    let data_dir = a.data_dir.clone().or_else(|| f.data_dir.clone()).unwrap_or_else(|| PathBuf::from("openfc-data"));
    let database_url = a
        .database_url
        .clone()
        .or_else(|| f.database_url.clone())
        .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("meta.db").display()));
    let master_key_file =
        a.master_key_file.clone().or_else(|| f.master_key_file.clone()).unwrap_or_else(|| data_dir.join("master.key"));
    StoreConfig { data_dir, database_url, master_key_file }
}

impl StoreConfig {
    pub fn resolve(a: &StoreArgs) -> anyhow::Result<Self> {
        Ok(resolve_store(a, &read_file(a.config.as_deref())?))
    }
}

/// The runtime built-ins directory: the flag (or `OPENFC_BUILTINS_DIR`), the config file's, or DATA_DIR/builtins.
pub fn resolve_builtins_dir(store: &StoreArgs, flag: Option<&Path>) -> anyhow::Result<PathBuf> {
    let f = read_file(store.config.as_deref())?;
    Ok(flag.map(Path::to_path_buf).or(f.builtins_dir.clone()).unwrap_or_else(|| resolve_store(store, &f).data_dir.join("builtins")))
}

impl ServeConfig {
    pub fn resolve(a: ServeArgs) -> anyhow::Result<Self> {
        let f = read_file(a.store.config.as_deref())?;
        let code_store = match a.code_store.or(f.code_store.clone()).as_deref() {
            None | Some("local") => CodeStoreKind::Local,
            Some(s) => match s.strip_prefix("s3://") {
                Some(bucket) if !bucket.is_empty() => CodeStoreKind::S3 { bucket: bucket.trim_end_matches('/').into() },
                _ => bail!("--code-store must be `local` or `s3://BUCKET`, not `{s}`"),
            },
        };
        let log_format = a.log_format.or(f.log_format.clone()).unwrap_or_else(|| "text".into());
        if log_format != "text" && log_format != "json" {
            bail!("--log-format must be `text` or `json`, not `{log_format}`");
        }
        let store = resolve_store(&a.store, &f);
        let images = ImageConfig::resolve(&store.data_dir, &a.images, &f.images())?;
        let builtins_dir = a.builtins_dir.or(f.builtins_dir.clone()).unwrap_or_else(|| store.data_dir.join("builtins"));
        // Bound into instances by their launcher: made absolute once, whatever the launcher's directory.
        let builtins_dir = std::path::absolute(&builtins_dir).with_context(|| format!("--builtins-dir {}", builtins_dir.display()))?;
        let outbound_allow = a
            .outbound_allow
            .or(f.outbound_allow.clone())
            .unwrap_or_default()
            .iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.parse::<openfc_sandbox::Net>().map_err(|e| anyhow::anyhow!("--outbound-allow: {e}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(ServeConfig {
            store,
            listen: a.listen.or(f.listen).unwrap_or_else(|| DEFAULT_LISTEN.into()),
            public_url: a.public_url.or(f.public_url).map(|u| u.trim_end_matches('/').to_owned()),
            code_store,
            s3_endpoint: a.s3_endpoint.or(f.s3_endpoint),
            s3_region: a.s3_region.or(f.s3_region).unwrap_or_else(|| "us-east-1".into()),
            s3_access_key_id: a.s3_access_key_id.or(f.s3_access_key_id),
            s3_secret_access_key: a.s3_secret_access_key.or(f.s3_secret_access_key),
            max_code_size: a.max_code_size.or(f.max_code_size).unwrap_or(100 * 1024 * 1024),
            max_code_entries: a.max_code_entries.or(f.max_code_entries).unwrap_or(65_536),
            max_unzipped_size: a.max_unzipped_size.or(f.max_unzipped_size).unwrap_or(2 * 1024 * 1024 * 1024),
            code_url_ttl: a.code_url_ttl.or(f.code_url_ttl).unwrap_or(600),
            gc_interval: a.gc_interval.or(f.gc_interval).unwrap_or(300),
            gc_grace: a.gc_grace.or(f.gc_grace).unwrap_or(600),
            key_cache_ttl: a.key_cache_ttl.or(f.key_cache_ttl).unwrap_or(1),
            metrics_token: a.metrics_token.or(f.metrics_token.clone()).filter(|t| !t.is_empty()),
            response_memory_mb: a.response_memory_mb.or(f.response_memory_mb).unwrap_or(openfc_invoker::budget::DEFAULT_MB),
            meta_cache_ttl_ms: a.meta_cache_ttl_ms.or(f.meta_cache_ttl_ms).unwrap_or(1000),
            max_instances: a.max_instances.or(f.max_instances).unwrap_or(10),
            queue_timeout_ms: a.queue_timeout_ms.or(f.queue_timeout_ms).unwrap_or(10_000),
            instance_idle_timeout: a.instance_idle_timeout.or(f.instance_idle_timeout).unwrap_or(300),
            instance_start_timeout: a.instance_start_timeout.or(f.instance_start_timeout).unwrap_or(30),
            warm_sandboxes: a.warm_sandboxes.or(f.warm_sandboxes).unwrap_or(2),
            prestarted_runtimes: a.prestarted_runtimes.or(f.prestarted_runtimes).unwrap_or(2),
            outbound_allow,
            async_settings: openfc_core::asyncq::AsyncSettings {
                workers: a.async_workers.or(f.async_workers).unwrap_or(16).max(1),
                retry_base: Duration::from_millis(a.async_retry_base_ms.or(f.async_retry_base_ms).unwrap_or(1000).max(1)),
                retention: Duration::from_secs(3600u64.saturating_mul(a.async_retention_hours.or(f.async_retention_hours).unwrap_or(168))),
                poll: Duration::from_millis(250),
                min_timer_interval: Duration::from_secs(a.timer_min_interval.or(f.timer_min_interval).unwrap_or(60).max(1)),
                lease: Duration::from_secs(a.async_lease.or(f.async_lease).unwrap_or(30).max(1)),
            },
            python: a.python.or(f.python).unwrap_or_else(|| "/usr/bin/python3".into()),
            node: a.node.or(f.node).unwrap_or_else(|| "/usr/bin/node".into()),
            php: a.php.or(f.php).unwrap_or_else(|| "/usr/bin/php8.2".into()),
            java: a.java.or(f.java).unwrap_or_else(|| "/usr/lib/jvm/java-17-openjdk-amd64/bin/java".into()),
            region: a.region.or(f.region).unwrap_or_else(|| "cn-hangzhou".into()),
            console_session_ttl: a.console_session_ttl.or(f.console_session_ttl).unwrap_or(8 * 3600).max(1),
            log_json: log_format == "json",
            images,
            builtins_dir,
        })
    }

    /// The public base URL: configured, or the address actually bound.
    pub fn public_url_for(&self, bound: SocketAddr) -> String {
        self.public_url.clone().unwrap_or_else(|| format!("http://{bound}"))
    }
}
