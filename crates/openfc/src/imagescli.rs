//! `openfc images ls|pull|rm|gc`: the custom-container image store from the shell (containers.md §6). It reads
//! the pulls in the database and this node's store directly, so it works whether or not a server runs.

use anyhow::bail;
use clap::Subcommand;
use openfc_core::images::{ImageMeta, PullInventory, PullStatus, now_ms};
use openfc_image::store::{ImageStore, Progress};

use crate::config::{ImageConfig, StoreConfig};

#[derive(Subcommand)]
pub enum ImagesAction {
    /// List the images functions use or this node caches (one line each).
    Ls,
    /// Pull an image into this node's store now, with progress; functions whose pull of it failed are tried
    /// again by the server.
    Pull { reference: String },
    /// Remove an image's pulls and its files from this node's store (refused while a function uses it).
    Rm { reference: String },
    /// Remove every image no function or version uses, at once.
    Gc,
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

pub async fn run(store_cfg: StoreConfig, images: ImageConfig, action: ImagesAction) -> anyhow::Result<()> {
    let meta = crate::server::open_meta(&store_cfg).await?;
    let store = ImageStore::open(images.store.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
    match action {
        ImagesAction::Ls => {
            let inv = PullInventory::read(meta.as_ref()).await?;
            println!("{:<48} {:<71} {:<9} {:>11} {:>11} {:<5} USED BY", "REFERENCE", "DIGEST", "STATUS", "COMPRESSED", "UNPACKED", "LOCAL");
            for (p, users) in &inv.pulls {
                let digest = p.image.as_ref().map_or("-".to_owned(), |i| i.digest.clone());
                let (compressed, unpacked) = p.image.as_ref().map_or(("-".into(), "-".into()), |i| (mib(i.compressed_bytes), mib(i.unpacked_bytes)));
                let local = p.image.as_ref().and_then(|i| store.tree_path(&i.chain_id).ok()).is_some_and(|t| t.exists());
                let used: Vec<String> = users
                    .iter()
                    .map(|u| format!("{}/{}@{}", u.service, u.function, u.version.map_or("LATEST".into(), |v| v.to_string())))
                    .collect();
                let status = if p.status == PullStatus::Failed { format!("Failed: {}", p.reason) } else { p.status.as_str().to_owned() };
                println!(
                    "{:<48} {:<71} {:<9} {:>11} {:>11} {:<5} {}",
                    p.reference,
                    digest,
                    status.split(':').next().unwrap_or(""),
                    compressed,
                    unpacked,
                    if local { "yes" } else { "no" },
                    if used.is_empty() { "-".to_owned() } else { used.join(",") }
                );
                if p.status == PullStatus::Failed {
                    println!("    reason: {}", p.reason);
                }
            }
            // Trees this node holds that no pull names (pulled with `openfc images pull`, or left by deleted
            // functions until the store needs their space).
            let known: Vec<&str> = inv.pulls.iter().filter_map(|(p, _)| p.image.as_ref().map(|i| i.chain_id.as_str())).collect();
            for (chain, reference, digest, bytes) in store.cached() {
                if !known.contains(&chain.as_str()) {
                    println!("{:<48} {:<71} {:<9} {:>11} {:>11} {:<5} -", reference, digest, "Cached", "-", mib(bytes), "yes");
                }
            }
            let u = store.usage();
            println!("store {}: {} images ({}), {} blobs ({})", store.dir().display(), u.trees, mib(u.tree_bytes), u.blobs, mib(u.blob_bytes));
        }
        ImagesAction::Pull { reference } => {
            let started = std::time::Instant::now();
            let progress = |p: Progress| match p {
                Progress::Resolved { digest, layers, compressed_bytes } => {
                    println!("{reference}: {digest}, {layers} layers, {}", mib(compressed_bytes))
                }
                Progress::Blob { digest, done, total, cached } if cached || done == total => {
                    println!("  {} {}{}", &digest[..digest.len().min(19)], mib(total), if cached { " (cached)" } else { "" })
                }
                Progress::Blob { .. } => {}
                Progress::Unpacking { chain_id } => println!("  unpacking into {}", &chain_id[..chain_id.len().min(19)]),
                Progress::Ready { bytes } => println!("  ready: {} unpacked", mib(bytes)),
            };
            match store.pull(&reference, &progress).await {
                Ok(_) => {
                    let retried = meta.retry_failed_image_pulls(&reference, now_ms()).await?;
                    println!("pulled {reference} in {:.1} s", started.elapsed().as_secs_f64());
                    if retried > 0 {
                        println!("{retried} failed pull(s) of it will be tried again by the server");
                    }
                }
                Err(e) => bail!("Failed to pull image. {e}"),
            }
        }
        ImagesAction::Rm { reference } => {
            let inv = PullInventory::read(meta.as_ref()).await?;
            let mine: Vec<_> = inv.pulls.iter().filter(|(p, _)| p.reference == reference).collect();
            let cached = store.cached().into_iter().any(|(_, r, _, _)| r == reference);
            if mine.is_empty() && !cached {
                bail!("no image '{reference}' is known");
            }
            if let Some((_, users)) = mine.iter().find(|(_, u)| !u.is_empty()) {
                let u = &users[0];
                bail!("image '{reference}' is used by {}/{} (and {} more): delete or update those functions first", u.service, u.function, users.len() - 1);
            }
            let ids: Vec<String> = mine.iter().map(|(p, _)| p.id.clone()).collect();
            meta.delete_image_pulls(&ids).await?;
            let freed = store.remove_reference(&reference, &keep_after(&inv, &ids)).map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("removed {reference} ({} freed)", mib(freed));
        }
        ImagesAction::Gc => {
            let inv = PullInventory::read(meta.as_ref()).await?;
            let unused = inv.unused(now_ms());
            meta.delete_image_pulls(&unused).await?;
            // Nothing pulling anywhere: nothing is half-stored, so everything unused goes now.
            let pulling = inv.pulls.iter().any(|(p, _)| p.status == PullStatus::Preparing);
            let grace = if pulling { openfc_image::store::GRACE } else { std::time::Duration::ZERO };
            let freed = store.collect(&keep_after(&inv, &unused), &Default::default(), true, grace).map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("removed {} unused pull(s); {} freed", unused.len(), mib(freed));
        }
    }
    Ok(())
}

/// The images still named by some pull once `removed` are gone (a pull still preparing keeps nothing yet).
fn keep_after(inv: &PullInventory, removed: &[String]) -> Vec<openfc_core::images::PulledImage> {
    inv.pulls.iter().filter(|(p, _)| !removed.contains(&p.id)).filter_map(|(p, _)| p.image.clone()).collect()
}
