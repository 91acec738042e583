//! Non-web container images (`webServerMode: false`, containers.md §4.6): each event runs in a fresh sandbox
//! as one process with the event in `FC_CUSTOM_CONTAINER_EVENT`; exit 0 is success (empty body), anything else
//! an unhandled error with openfc's process-exit body. No hooks, no reuse: the instance is never pooled.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use openfc_core::images::ContainerPlan;

use crate::instance::{Instance, InstanceRoot};
use crate::{FunctionError, FunctionSpec, InvokeError, InvokeOutcome, InvokeRequest, Invoker, error_body, launchers, runtime};

/// Holds one of a function version's instance slots while a one-shot instance runs.
pub(crate) struct OneShotSlot(Arc<crate::Pool>);

impl Drop for OneShotSlot {
    fn drop(&mut self) {
        self.0.one_shots.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        self.0.capacity_freed.notify_one();
    }
}

impl Invoker {
    /// Every event is its own instance, so the instance limit (maximumInstanceCount, --max-instances) caps the
    /// events running at once; more wait up to the queue timeout, then are throttled.
    async fn one_shot_slot(&self, spec: &FunctionSpec, pool: &Arc<crate::Pool>) -> Result<OneShotSlot, InvokeError> {
        use std::sync::atomic::Ordering;
        let max = self.shared.instance_cap(spec);
        let deadline = tokio::time::Instant::now() + self.shared.config.queue_timeout;
        loop {
            let freed = pool.capacity_freed.notified();
            let now = pool.one_shots.load(Ordering::Acquire);
            if now < max && pool.one_shots.compare_exchange(now, now + 1, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                return Ok(OneShotSlot(pool.clone()));
            }
            if now < max {
                continue;
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return Err(InvokeError::Throttled(format!(
                    "function '{}' already runs {max} events at once (its instance limit)",
                    spec.function
                )));
            }
        }
    }

    pub(crate) async fn invoke_once(&self, spec: &FunctionSpec, plan: &Arc<ContainerPlan>, req: InvokeRequest) -> Result<InvokeOutcome, InvokeError> {
        if req.http.is_some() {
            return Err(InvokeError::NotStarted("a custom-container function with webServerMode false takes no HTTP requests".into()));
        }
        let pool = self.pool(spec);
        let t0 = Instant::now();
        let _slot = self.one_shot_slot(spec, &pool).await?;
        let tree = self.image_tree(plan, spec.timeout_secs).await?;
        metrics::histogram!("openfc_cold_start_seconds", "phase" => "image").record(t0.elapsed().as_secs_f64());
        let python_bytecode = false;
        let launch = runtime::command(spec, &self.shared.config.interpreters, python_bytecode)?;
        let (start_marker, end_marker) =
            (format!("FC Invoke Start RequestId: {}", req.request_id), format!("FC Invoke End RequestId: {}", req.request_id));
        pool.log.append("-", &start_marker);
        let root = InstanceRoot::Image { tree, plan: plan.clone(), event: Some(req.event.clone()) };
        let started = Instance::start(&self.shared, spec, launch, root, pool.log.clone()).await;
        launchers::Launchers::refill(&self.shared);
        let inst = started?;
        let began = Instant::now();
        let limit = Duration::from_secs(spec.timeout_secs.max(1));
        let ended = inst.wait_exit(limit).await;
        let duration = began.elapsed();
        let oom = inst.cgroup.as_ref().is_some_and(|c| c.oom_kills() > 0);
        let max_memory_mb = inst.cgroup.as_ref().and_then(|c| c.memory_peak()).map_or(0, |b| b.div_ceil(1024 * 1024));
        // The output readers may trail the exit by a moment.
        inst.logs.wait_quiet(Duration::from_millis(2), Duration::from_millis(20)).await;
        let failure = match ended {
            Some(Some(0)) => None,
            None => Some(("FunctionTimeoutError", format!("Function timed out after {} seconds (maxMemoryUsage: {max_memory_mb}MB)", spec.timeout_secs))),
            Some(_) if oom => Some((
                "FunctionOOMError",
                format!("Function ran out of memory: the instance exceeded its memory size of {} MB and was stopped", spec.memory_mb),
            )),
            Some(code) => Some((
                "FunctionExitedError",
                format!(
                    "Process exited unexpectedly before completing request (exit code {}). Last output:\n{}",
                    code.map_or_else(|| "unknown: killed by a signal".to_owned(), |c| c.to_string()),
                    inst.logs.tail(10).join("\n")
                ),
            )),
        };
        inst.kill();
        let mut lines = inst.logs.tail(usize::MAX);
        lines.insert(0, start_marker);
        let end = match &failure {
            Some((_, msg)) => format!("{end_marker}, Error: {msg}"),
            None => end_marker,
        };
        pool.log.append(&inst.id, &end);
        lines.push(end);
        let log = if req.want_log {
            lines.push(crate::report_line(duration, spec.memory_mb, max_memory_mb));
            lines.join("\n")
        } else {
            String::new()
        };
        let outcome = if failure.is_some() { "unhandled_error" } else { "success" };
        metrics::counter!("openfc_invocations_total", "account" => spec.account_id.clone(), "service" => spec.service.clone(),
            "function" => spec.function.clone(), "outcome" => outcome)
        .increment(1);
        let (body, content_type, error) = match failure {
            None => (Bytes::new(), None, None),
            Some((kind, msg)) => (error_body(kind, &msg), Some("application/json".to_owned()), Some(FunctionError::Unhandled)),
        };
        Ok(InvokeOutcome {
            status: 200,
            headers: http::HeaderMap::new(),
            body,
            content_type,
            error,
            duration,
            max_memory_mb,
            log,
            instance_id: inst.id.clone(),
        })
    }
}
