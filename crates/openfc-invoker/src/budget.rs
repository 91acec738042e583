//! openfc's own memory for function responses. A response (up to 32 MB) is held in openfc's memory, outside
//! any instance's cgroup, from the runtime's first byte until the client has it; many at once would add up
//! without bound. Every response body is therefore read against one node-wide budget (`--response-memory-mb`):
//! reading reserves its size as it arrives, waiting while the budget is spent (the runtime's writes then wait
//! on TCP; the invocation's time limit bounds the wait), and the reservation travels with the bytes and is
//! given back when the last reference to them is dropped — after the response was written to the client.

use std::sync::{Arc, OnceLock};

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Reservations are made in steps of this many bytes (a permit each).
const UNIT: usize = 64 * 1024;
/// The budget when none is configured.
pub const DEFAULT_MB: usize = 1024;

static BUDGET: OnceLock<Arc<Semaphore>> = OnceLock::new();

/// Sets the node's budget (once; later calls, e.g. a second invoker in a test process, keep the first). At
/// least twice the largest response, so one always fits.
pub fn configure(mb: usize) {
    let units = (mb.max(2 * crate::instance::MAX_RESPONSE / (1024 * 1024)) * 1024 * 1024) / UNIT;
    let _ = BUDGET.set(Arc::new(Semaphore::new(units)));
}

fn budget() -> &'static Arc<Semaphore> {
    BUDGET.get_or_init(|| Arc::new(Semaphore::new(DEFAULT_MB * 1024 * 1024 / UNIT)))
}

/// Bytes with their reservation: the reservation ends when they are dropped.
struct Held {
    bytes: Bytes,
    _permit: OwnedSemaphorePermit,
}

impl AsRef<[u8]> for Held {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        metrics::gauge!("openfc_response_memory_bytes").decrement(self._permit.num_permits() as f64 * UNIT as f64);
    }
}

/// Reads a whole body of at most `limit` bytes within the budget. `Err`: the reason it could not be read.
pub async fn collect<B>(body: B, limit: usize) -> Result<Bytes, String>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let mut body = std::pin::pin!(body);
    let mut buf = BytesMut::new();
    let mut held: Option<OwnedSemaphorePermit> = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| e.to_string())?;
        let Ok(data) = frame.into_data() else { continue };
        if buf.len() + data.len() > limit {
            return Err(format!("the response is larger than {limit} bytes"));
        }
        let have = held.as_ref().map_or(0, |p| p.num_permits());
        let need = (buf.len() + data.len()).div_ceil(UNIT);
        if need > have {
            let more = budget().clone().acquire_many_owned((need - have) as u32).await.map_err(|e| e.to_string())?;
            metrics::gauge!("openfc_response_memory_bytes").increment(more.num_permits() as f64 * UNIT as f64);
            match held.as_mut() {
                Some(p) => p.merge(more),
                None => held = Some(more),
            }
        }
        buf.extend_from_slice(&data);
    }
    Ok(match held {
        Some(permit) => Bytes::from_owner(Held { bytes: buf.freeze(), _permit: permit }),
        None => Bytes::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_reservation_lasts_as_long_as_the_bytes() {
        let before = budget().available_permits();
        let body = http_body_util::Full::new(Bytes::from(vec![7u8; 3 * UNIT + 1]));
        let got = collect(body, 1 << 20).await.unwrap();
        assert_eq!(got.len(), 3 * UNIT + 1);
        assert_eq!(before - budget().available_permits(), 4);
        let clone = got.slice(10..20);
        drop(got);
        assert_eq!(before - budget().available_permits(), 4, "a slice keeps the reservation");
        drop(clone);
        assert_eq!(budget().available_permits(), before);
        let too_big = http_body_util::Full::new(Bytes::from(vec![0u8; 100]));
        assert!(collect(too_big, 10).await.is_err());
        assert_eq!(budget().available_permits(), before);
    }
}
