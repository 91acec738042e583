//! What the in-process core tests share: a real `Fc` on SQLite and a local code store, with a fake
//! `Invoker` that records what it was asked to run.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use openfc_blob::ObjectCodeStore;
use openfc_core::code::PackageLimits;
use openfc_core::invocation::{FunctionSpec, InvokeError, InvokeOutcome, InvokeRequest, Invoker, SpecKey};
use openfc_core::ports::{AccessKeyRecord, AccountRecord, CodeStore, KeyStatus, MetaStore, SystemClock};
use openfc_core::usecase::Fc;
use openfc_meta::SqlMeta;

/// Runs nothing: answers each event with itself, and keeps every spec and event it saw. It cannot run
/// `java11` (a runtime FC has and the control plane accepts).
#[derive(Default)]
pub struct FakeInvoker {
    pub calls: Mutex<Vec<(Arc<FunctionSpec>, bytes::Bytes)>>,
    pub warm: Mutex<Vec<(SpecKey, usize)>>,
}

#[async_trait]
impl Invoker for FakeInvoker {
    fn check_runtime(&self, runtime: &str) -> Result<(), InvokeError> {
        if runtime == "java11" { Err(InvokeError::UnsupportedRuntime(format!("runtime '{runtime}' cannot run"))) } else { Ok(()) }
    }

    async fn invoke(&self, spec: &FunctionSpec, req: InvokeRequest) -> Result<InvokeOutcome, InvokeError> {
        self.calls.lock().unwrap().push((Arc::new(spec.clone()), req.event.clone()));
        Ok(InvokeOutcome {
            status: 200,
            headers: http::HeaderMap::new(),
            body: req.event,
            content_type: None,
            error: None,
            duration: Duration::from_millis(1),
            max_memory_mb: 1,
            log: String::new(),
            instance_id: "fake".into(),
        })
    }

    async fn ensure_warm(&self, spec: &FunctionSpec, target: usize) -> Result<usize, InvokeError> {
        self.warm.lock().unwrap().push((spec.key.clone(), target));
        Ok(target)
    }

    fn alive(&self, key: &SpecKey) -> usize {
        self.warm.lock().unwrap().iter().rev().find(|(k, _)| k == key).map_or(0, |(_, n)| *n)
    }
}

/// A core on a fresh SQLite database in `dir`, with account "1", the given GC grace and invoker.
pub async fn core(dir: &std::path::Path, gc_grace: Duration, invoker: Arc<dyn Invoker>) -> (Arc<Fc>, Arc<dyn CodeStore>) {
    let meta = SqlMeta::connect(&format!("sqlite://{}", dir.join("m.db").display())).await.unwrap();
    let account = AccountRecord { id: "1".into(), created_time: "t".into() };
    let key = AccessKeyRecord {
        id: "K".into(),
        account_id: "1".into(),
        sealed_secret: "x".into(),
        status: KeyStatus::Active,
        created_time: "t".into(),
        policy: None,
    };
    meta.create_first_account(&account, &key).await.unwrap();
    let code: Arc<dyn CodeStore> = Arc::new(ObjectCodeStore::local(dir.join("code"), dir.join("oss")).unwrap());
    let fc = Arc::new(Fc {
        meta: meta.clone() as Arc<dyn MetaStore>,
        code: code.clone(),
        clock: Arc::new(SystemClock),
        limits: PackageLimits::default(),
        gc_grace,
        region: "cn-hangzhou".into(),
        hot: openfc_core::cache::HotCache::new(Duration::from_secs(1)),
        invoker,
        events: Some(Arc::new(openfc_core::asyncq::Events::new(meta.clone(), Default::default()))),
        images: None,
        cluster: openfc_core::cluster::Cluster::single(),
    });
    (fc, code)
}
