//! This node's side of image pulls: starting them, waiting for them, running them under a renewed lease and
//! taking over pulls whose node died.

use std::sync::Arc;
use std::time::Duration;

use super::{ImageMeta, ImagePullRecord, ImagePuller, PullFailure, PullStatus, PulledImage, now_ms};
use crate::error::{CoreError, CoreResult};
use crate::ports::MetaError;

/// Longest reason kept for a failed pull.
const MAX_REASON: usize = 1024;

/// Settings of this node's pulls.
#[derive(Debug, Clone)]
pub struct ImageSettings {
    /// A pull's lease; renewed every third of it while the pull runs.
    pub lease: Duration,
    /// Back-off before each retry of a transient failure (containers.md §2.4 step 6: 1 s, 4 s, 16 s).
    pub retry_backoff: Vec<Duration>,
    /// How often a node looks for pulls whose node died.
    pub reconcile_every: Duration,
}

impl Default for ImageSettings {
    fn default() -> Self {
        ImageSettings {
            lease: Duration::from_secs(30),
            retry_backoff: vec![Duration::from_secs(1), Duration::from_secs(4), Duration::from_secs(16)],
            reconcile_every: Duration::from_secs(2),
        }
    }
}

/// This node's side of image pulls.
pub struct Images {
    pub meta: Arc<dyn ImageMeta>,
    pub puller: Arc<dyn ImagePuller>,
    pub settings: ImageSettings,
    /// This node's name in leases (unique per process).
    pub node: String,
    /// Settled pulls never change: kept once read.
    settled: std::sync::Mutex<std::collections::HashMap<String, Arc<ImagePullRecord>>>,
    /// Rung when a pull this node runs settles, so waiting invocations look again at once.
    changed: tokio::sync::Notify,
    in_flight: std::sync::atomic::AtomicUsize,
}

impl Images {
    pub fn new(meta: Arc<dyn ImageMeta>, puller: Arc<dyn ImagePuller>, settings: ImageSettings, node: String) -> Images {
        Images {
            meta,
            puller,
            settings,
            node,
            settled: Default::default(),
            changed: tokio::sync::Notify::new(),
            in_flight: Default::default(),
        }
    }

    /// Pulls this node runs now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Records a new pull of `reference`, held by this node; `launch` starts it once the function that names
    /// it is written (`abandon` if that write fails).
    pub async fn create(&self, account: &str, reference: &str, has_command: bool) -> CoreResult<ImagePullRecord> {
        let now = now_ms();
        let rec = ImagePullRecord {
            id: uuid::Uuid::new_v4().simple().to_string(),
            account_id: account.to_owned(),
            reference: reference.to_owned(),
            has_command,
            named: false,
            status: PullStatus::Preparing,
            reason: String::new(),
            image: None,
            owner: self.node.clone(),
            lease_until_ms: now + self.settings.lease.as_millis() as i64,
            created_ms: now,
            updated_ms: now,
        };
        self.meta.create_image_pull(&rec).await?;
        Ok(rec)
    }

    pub async fn launch(self: &Arc<Self>, rec: ImagePullRecord) {
        if let Err(e) = self.meta.mark_image_pull_named(&rec.id).await {
            // Only garbage collection reads it: an unmarked pull is merely kept longer.
            tracing::warn!(pull = %rec.id, error = %e, "could not mark an image pull as named");
        }
        tokio::spawn(self.clone().run(rec));
    }

    pub async fn abandon(&self, rec: &ImagePullRecord) {
        if let Err(e) = self.meta.delete_image_pulls(std::slice::from_ref(&rec.id)).await {
            tracing::warn!(pull = %rec.id, error = %e, "could not remove an unused image pull");
        }
    }

    /// The pull's state: settled pulls from memory, `Preparing` ones from the database.
    pub async fn get(&self, id: &str) -> CoreResult<Arc<ImagePullRecord>> {
        if let Some(rec) = self.settled.lock().expect("settled pulls").get(id) {
            return Ok(rec.clone());
        }
        let rec = Arc::new(self.meta.get_image_pull(id).await.map_err(|e| match e {
            MetaError::NotFound => CoreError::Internal(format!("image pull {id} is missing")),
            other => other.into(),
        })?);
        // A Failed pull may be retried by the operator (`openfc images pull`): only Ready is final.
        if rec.status == PullStatus::Ready {
            let mut settled = self.settled.lock().expect("settled pulls");
            // Bounded: past this many, start over (each miss is one read).
            if settled.len() >= 10_000 {
                settled.clear();
            }
            settled.insert(id.to_owned(), rec.clone());
        }
        Ok(rec)
    }

    /// Waits until the pull is Ready (bounded by `wait`): the pulled image, or the FC error to answer.
    pub async fn ready(&self, id: &str, reference: &str, wait: Duration) -> CoreResult<Arc<PulledImage>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let changed = self.changed.notified();
            let rec = self.get(id).await?;
            match rec.status {
                PullStatus::Ready => {
                    return rec
                        .image
                        .clone()
                        .map(Arc::new)
                        .ok_or_else(|| CoreError::Internal(format!("image pull {id} is Ready without an image")));
                }
                PullStatus::Failed => return Err(CoreError::PullImageFailed(rec.reason.clone())),
                PullStatus::Preparing => {}
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(CoreError::FunctionNotStarted(format!(
                    "the image '{reference}' is still being pulled (accelerationInfo.status Preparing); try again when GetFunction shows Ready"
                )));
            }
            // Another node may run the pull: look again at least every 250 ms.
            let _ = tokio::time::timeout((deadline - now).min(Duration::from_millis(250)), changed).await;
        }
    }

    /// Runs one pull this node holds, renewing its lease, retrying transient failures, and settles it.
    async fn run(self: Arc<Self>, rec: ImagePullRecord) {
        use std::sync::atomic::Ordering::Relaxed;
        self.in_flight.fetch_add(1, Relaxed);
        let started = std::time::Instant::now();
        let outcome = {
            let work = self.pull_with_retries(&rec.reference);
            tokio::pin!(work);
            let mut renew = tokio::time::interval(self.settings.lease / 3);
            renew.tick().await;
            loop {
                tokio::select! {
                    out = &mut work => break Some(out),
                    _ = renew.tick() => {
                        let until = now_ms() + self.settings.lease.as_millis() as i64;
                        match self.meta.renew_image_pull(&rec.id, &self.node, until).await {
                            Ok(true) => {}
                            // Another node took it over (this one was too slow to renew): let it finish.
                            Ok(false) => break None,
                            Err(e) => tracing::warn!(pull = %rec.id, error = %e, "could not renew an image pull's lease"),
                        }
                    }
                }
            }
        };
        self.in_flight.fetch_sub(1, Relaxed);
        let Some(outcome) = outcome else {
            tracing::warn!(pull = %rec.id, image = %rec.reference, "image pull lost its lease to another node");
            return;
        };
        let outcome = outcome.map_err(|mut f| {
            // Reasons reach clients: a registry's own error text is kept short.
            if f.reason.len() > MAX_REASON {
                let mut end = MAX_REASON;
                while !f.reason.is_char_boundary(end) {
                    end -= 1;
                }
                f.reason.truncate(end);
                f.reason.push('…');
            }
            f
        });
        let (status, reason, image) = match outcome {
            // Nothing to run is known now, not at the first invocation (containers.md §4.2).
            Ok(image) if !rec.has_command && image.entrypoint.is_empty() && image.cmd.is_empty() => (
                PullStatus::Failed,
                format!("image '{}' has no ENTRYPOINT or CMD and the function sets no command", rec.reference),
                None,
            ),
            Ok(image) => (PullStatus::Ready, String::new(), Some(image)),
            Err(f) => (PullStatus::Failed, f.reason, None),
        };
        metrics::histogram!("openfc_image_pull_seconds", "status" => status.as_str()).record(started.elapsed().as_secs_f64());
        match self.meta.settle_image_pull(&rec.id, &self.node, status, &reason, image.as_ref(), now_ms()).await {
            Ok(true) => {
                if status == PullStatus::Ready {
                    tracing::info!(pull = %rec.id, image = %rec.reference, secs = started.elapsed().as_secs_f64(), "image ready");
                } else {
                    tracing::warn!(pull = %rec.id, image = %rec.reference, %reason, "image pull failed");
                }
            }
            Ok(false) => tracing::warn!(pull = %rec.id, "image pull settled by another node"),
            Err(e) => tracing::warn!(pull = %rec.id, error = %e, "could not record an image pull's result"),
        }
        self.changed.notify_waiters();
    }

    async fn pull_with_retries(&self, reference: &str) -> Result<PulledImage, PullFailure> {
        let mut backoff = self.settings.retry_backoff.iter();
        loop {
            match self.puller.pull(reference).await {
                Ok(image) => return Ok(image),
                Err(f) if f.transient => match backoff.next() {
                    Some(wait) => {
                        tracing::info!(image = %reference, reason = %f.reason, retry_in_ms = wait.as_millis() as u64, "image pull failed; retrying");
                        tokio::time::sleep(*wait).await;
                    }
                    None => return Err(f),
                },
                Err(f) => return Err(f),
            }
        }
    }

    /// Takes over pulls whose node died, every `reconcile_every`, forever.
    pub async fn reconcile(self: Arc<Self>) {
        loop {
            let now = now_ms();
            match self.meta.claim_image_pulls(&self.node, now, now + self.settings.lease.as_millis() as i64, 4).await {
                Ok(claimed) => {
                    for rec in claimed {
                        tracing::info!(pull = %rec.id, image = %rec.reference, "taking over an image pull");
                        tokio::spawn(self.clone().run(rec));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not look for abandoned image pulls"),
            }
            tokio::time::sleep(self.settings.reconcile_every).await;
        }
    }
}
