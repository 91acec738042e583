//! What the invoker tells the operator: isolation the host provides, interpreters, waiting sandboxes and
//! runtimes, instance counts, the paths instances use, and the functions' logs.

use super::*;

impl Invoker {
    /// What the host provides for isolation, for logs and `/health`.
    pub fn isolation(&self) -> serde_json::Value {
        serde_json::json!({
            "namespaces": "pid, mount, network, ipc, uts",
            "cgroups": self.shared.cgroups.describe(),
            "seccomp": "allow-list",
            "network": match &self.shared.config.slirp4netns {
                Some(p) => format!("loopback; outbound for internetAccess=true through {} (host loopback unreachable)", p.display()),
                None => "loopback only: slirp4netns not found, so internetAccess=true gets no outbound network".into(),
            },
        })
    }

    /// The interpreters shims run under, each with its path and whether it is installed (for `/health`).
    pub fn interpreters(&self) -> serde_json::Value {
        self.shared.config.interpreters.describe()
    }

    /// Sandbox launchers waiting for a cold start.
    /// Pre-started runtimes waiting now, per language, with their resident memory.
    pub fn prestarted_health(&self) -> serde_json::Value {
        let p = &self.shared.prestarted;
        let mut out = serde_json::json!({ "target": p.target() });
        for (interpreter, waiting, rss) in p.counts() {
            let name = match interpreter {
                runtime::Interpreter::Python => "python",
                runtime::Interpreter::Node => "nodejs",
                runtime::Interpreter::Php => "php",
                runtime::Interpreter::Java => "java",
            };
            metrics::gauge!("openfc_prestarted_runtimes", "runtime" => name).set(waiting as f64);
            metrics::gauge!("openfc_prestarted_runtime_rss_bytes", "runtime" => name).set(rss as f64);
            out[name] = serde_json::json!({ "waiting": waiting, "rss_bytes": rss });
        }
        out
    }

    pub fn warm_sandboxes(&self) -> usize {
        self.shared.launchers.warm()
    }

    pub fn instance_counts(&self) -> (usize, usize) {
        let pools = self.pools.lock().expect("pools");
        let mut alive = 0;
        let mut busy = 0;
        for p in pools.values() {
            for i in p.instances.lock().expect("instances").iter() {
                alive += 1;
                if i.permits.available_permits() == 0 {
                    busy += 1;
                }
            }
        }
        (alive, busy)
    }

    /// Host directories live instances show (packages, merged layers, image trees): never removed under them.
    pub fn paths_in_use(&self) -> std::collections::HashSet<PathBuf> {
        self.pools
            .lock()
            .expect("pools")
            .values()
            .flat_map(|p| p.instances.lock().expect("instances").iter().flat_map(|i| i.uses.clone()).collect::<Vec<_>>())
            .collect()
    }

    /// The last `limit` log lines of a function (read on the blocking pool: the files reach 16 MB).
    pub async fn function_logs(&self, account: &str, service: &str, function: &str, limit: usize) -> Vec<String> {
        let path = logstore::log_path(&self.shared.logs_dir, account, service, function);
        tokio::task::spawn_blocking(move || logstore::read_tail(&path, limit)).await.unwrap_or_default()
    }

    /// Where a function's log file is (for `openfc logs --follow`).
    pub fn log_file(data_dir: &std::path::Path, account: &str, service: &str, function: &str) -> PathBuf {
        logstore::log_path(&data_dir.join("logs"), account, service, function)
    }
}
