//! A function version's pool of instances: finding one with a free slot (or starting one, or waiting for
//! one within the queue timeout), the provisioned instances kept warm, and the reaper of idle ones.

use super::*;
use crate::port::fixed_headers;

/// Holds one count of a pool's `starting` or `waiting` and gives it back when dropped, so a request
/// cancelled meanwhile (its client went away) cannot leave the pool thinking an instance is starting or a
/// request waiting.
pub(crate) struct Lowers<'a>(&'a Pool, bool);

impl<'a> Lowers<'a> {
    /// `starting` was raised by the caller, under the lock it decided under.
    pub(crate) fn starting(pool: &'a Pool) -> Self {
        Lowers(pool, true)
    }

    pub(crate) fn waiting(pool: &'a Pool) -> Self {
        pool.waiting.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Lowers(pool, false)
    }
}

impl Drop for Lowers<'_> {
    fn drop(&mut self) {
        if self.1 {
            *self.0.starting.lock().expect("starting") -= 1;
        } else {
            self.0.waiting.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// Returns its slot to the instance and wakes one waiting request.
pub(crate) struct Slot {
    _permit: OwnedSemaphorePermit,
    pool: Arc<Pool>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.pool.capacity_freed.notify_one();
    }
}

impl Invoker {
    pub(crate) fn pool(&self, spec: &FunctionSpec) -> Arc<Pool> {
        let mut pools = self.pools.lock().expect("pools");
        if let Some(p) = pools.get(&spec.key) {
            return p.clone();
        }
        pools
            .entry(spec.key.clone())
            .or_insert_with(|| {
                Arc::new(Pool {
                    log: self.shared_log_file(spec),
                    provisioned: std::sync::atomic::AtomicUsize::new(0),
                    waiting: std::sync::atomic::AtomicUsize::new(0),
                    instances: Mutex::new(Vec::new()),
                    starting: Mutex::new(0),
                    capacity_freed: Notify::new(),
                    one_shots: std::sync::atomic::AtomicUsize::new(0),
                    pre_stop: (!spec.pre_stop_handler.is_empty()).then_some(spec.pre_stop_timeout_secs),
                    fixed_headers: ControlHeaders::new(fixed_headers(spec)),
                    concurrency: runtime::lookup(&spec.runtime)
                        .map_or(1, |r| spec.instance_concurrency.max(1).min(r.max_concurrency.unwrap_or(u32::MAX)))
                        as usize,
                    invocations: Default::default(),
                    account: spec.account_id.clone(),
                    service: spec.service.clone(),
                    function: spec.function.clone(),
                    version: if spec.version_id.is_empty() { "LATEST".to_owned() } else { spec.version_id.clone() },
                })
            })
            .clone()
    }

    /// An instance with a free slot: an existing one, a new one when under the limit, or one that frees
    /// up within the queue timeout.
    pub(crate) async fn acquire(&self, spec: &FunctionSpec, pool: &Arc<Pool>) -> Result<(Arc<Instance>, Slot), InvokeError> {
        let deadline = tokio::time::Instant::now() + self.shared.config.queue_timeout;
        let max = self.shared.instance_cap(spec);
        if max == 0 {
            return Err(InvokeError::Throttled(format!(
                "function '{}' may run no instances (its maximumInstanceCount is 0)",
                spec.function
            )));
        }
        let concurrency = pool.concurrency;
        loop {
            let notified = pool.capacity_freed.notified();
            let start_new = {
                let mut instances = pool.instances.lock().expect("instances");
                for inst in instances.iter() {
                    if let Ok(permit) = inst.permits.clone().try_acquire_owned() {
                        // A crashed, timed-out or OOM-killed instance never takes another request.
                        if inst.exited() {
                            continue;
                        }
                        return Ok((inst.clone(), Slot { _permit: permit, pool: pool.clone() }));
                    }
                }
                instances.retain(|i| !i.exited());
                let mut starting = pool.starting.lock().expect("starting");
                // Start another instance only when the demand (the waiting requests and this one) exceeds what
                // the instances already starting will serve.
                let demand = pool.waiting.load(std::sync::atomic::Ordering::Relaxed) + 1;
                if instances.len() + *starting < max && *starting * concurrency < demand {
                    *starting += 1;
                    true
                } else {
                    false
                }
            };
            if start_new {
                let starting = Lowers::starting(pool);
                let started = self.start_instance(spec, pool).await;
                drop(starting);
                let inst = match started {
                    Ok(i) => i,
                    Err(e) => {
                        pool.capacity_freed.notify_waiters();
                        return Err(e);
                    }
                };
                let permit = inst.permits.clone().try_acquire_owned().map_err(|_| InvokeError::internal("new instance has no slot"))?;
                pool.instances.lock().expect("instances").push(inst.clone());
                // Its other slots are free for the requests waiting on it.
                pool.capacity_freed.notify_waiters();
                return Ok((inst, Slot { _permit: permit, pool: pool.clone() }));
            }
            let waiting = Lowers::waiting(pool);
            let waited = tokio::time::timeout_at(deadline, notified).await;
            drop(waiting);
            if waited.is_err() {
                return Err(InvokeError::Throttled(format!(
                    "Reserve resource exhausted: function '{}' has {max} instance(s) busy and no capacity freed within {} ms",
                    spec.function,
                    self.shared.config.queue_timeout.as_millis()
                )));
            }
        }
    }

    /// Keeps `target` instances of `spec` running (capped by the instance limit); returns how many run.
    pub async fn ensure_warm(&self, spec: &FunctionSpec, target: usize) -> Result<usize, InvokeError> {
        // A non-web image runs per event: there is nothing to keep warm.
        if spec.container.as_ref().is_some_and(|c| !c.web_server_mode) {
            return Ok(0);
        }
        let pool = self.pool(spec);
        let target = target.min(self.shared.config.max_instances as usize);
        pool.provisioned.store(target, std::sync::atomic::Ordering::Relaxed);
        loop {
            let alive = {
                let mut instances = pool.instances.lock().expect("instances");
                instances.retain(|i| !i.exited());
                instances.len() + *pool.starting.lock().expect("starting")
            };
            if alive >= target {
                return Ok(alive);
            }
            *pool.starting.lock().expect("starting") += 1;
            let starting = Lowers::starting(&pool);
            let started = self.start_instance(spec, &pool).await;
            drop(starting);
            let inst = started?;
            pool.instances.lock().expect("instances").push(inst);
            pool.capacity_freed.notify_one();
        }
    }

    /// Instances of a function version that are alive now.
    pub fn alive(&self, key: &SpecKey) -> usize {
        self.pools.lock().expect("pools").get(key).map_or(0, |p| p.instances.lock().expect("instances").iter().filter(|i| !i.exited()).count())
    }

    /// Forgets pools with nothing in them and nobody using them (every update of a function makes a new one).
    pub(crate) fn drop_empty_pools(&self) {
        self.pools.lock().expect("pools").retain(|_, p| {
            Arc::strong_count(p) > 1
                || p.provisioned.load(std::sync::atomic::Ordering::Relaxed) > 0
                || p.waiting.load(std::sync::atomic::Ordering::Relaxed) > 0
                || *p.starting.lock().expect("starting") > 0
                || !p.instances.lock().expect("instances").is_empty()
        });
    }

    pub(crate) async fn reap_idle(&self) {
        self.drop_empty_pools();
        let idle_after = self.shared.config.idle_timeout;
        let pools: Vec<Arc<Pool>> = self.pools.lock().expect("pools").values().cloned().collect();
        for pool in pools {
            let victims: Vec<(Arc<Instance>, OwnedSemaphorePermit)> = {
                let mut instances = pool.instances.lock().expect("instances");
                instances.retain(|i| !i.exited());
                let mut keep = pool.provisioned.load(std::sync::atomic::Ordering::Relaxed);
                let mut out = Vec::new();
                instances.retain(|i| {
                    if keep > 0 {
                        keep -= 1;
                        return true;
                    }
                    if i.idle_for() < idle_after {
                        return true;
                    }
                    // Take every slot: if any is in use, the instance is busy and stays.
                    match i.permits.clone().try_acquire_many_owned(i.concurrency) {
                        Ok(p) => {
                            out.push((i.clone(), p));
                            false
                        }
                        Err(_) => true,
                    }
                });
                out
            };
            for (inst, _permits) in victims {
                if let Some(timeout) = pool.pre_stop {
                    let req = Control {
                        hook: Hook::PreStop,
                        request_id: uuid::Uuid::new_v4().to_string(),
                        // A pool serves one version under any qualifier: a stopping instance has none of its own.
                        qualifier: String::new(),
                        body: Bytes::new(),
                        http: None,
                        credentials: None,
                    };
                    let _ = inst.call(&self.shared, &pool.fixed_headers, req, Duration::from_secs(timeout.max(1))).await;
                }
                tracing::info!(instance = %inst.id, idle_secs = inst.idle_for().as_secs(), "stopping idle instance");
                inst.kill();
            }
        }
    }
}
