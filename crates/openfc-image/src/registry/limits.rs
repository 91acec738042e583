//! The caps of containers.md §2.2 that a manifest and config already settle, checked before any layer is
//! fetched.

use super::document::{self, Descriptor, Refusal};
use super::{ImageConfigSummary, LayerDesc};
use crate::error::{ImageError, Limits};
use crate::reference::ImageRef;

pub(crate) fn check_document_size(
    reference: &ImageRef,
    what: &str,
    size: u64,
    limits: &Limits,
) -> Result<(), ImageError> {
    if size > limits.max_document_bytes {
        return Err(ImageError::TooLarge {
            reference: reference.written.clone(),
            limit: format!(
                "the {}-byte limit for its {what}",
                limits.max_document_bytes
            ),
            actual: format!("{size} bytes"),
        });
    }
    Ok(())
}

pub(crate) enum LayerCheck {
    Refused(Refusal),
    Image(ImageError),
}

/// Layer count, types, digests, their agreement with the config's diff_ids, and the compressed total
/// (the uncompressed total can only be counted while unpacking, but a compressed total above the cap
/// already settles it).
pub(crate) fn check_layers(
    reference: &ImageRef,
    layers: &[Descriptor],
    config: &ImageConfigSummary,
    limits: &Limits,
) -> Result<Vec<LayerDesc>, LayerCheck> {
    let too_large = |limit: String, actual: String| {
        LayerCheck::Image(ImageError::TooLarge {
            reference: reference.written.clone(),
            limit,
            actual,
        })
    };
    if layers.len() > limits.max_layers {
        return Err(too_large(
            format!("the limit of {} layers", limits.max_layers),
            format!("{} layers", layers.len()),
        ));
    }
    if layers.is_empty() {
        return Err(LayerCheck::Refused(Refusal::Invalid(
            "the image has no layers".into(),
        )));
    }
    if layers.len() != config.diff_ids.len() {
        return Err(LayerCheck::Refused(Refusal::Invalid(format!(
            "the manifest lists {} layers but the config {} diff_ids",
            layers.len(),
            config.diff_ids.len()
        ))));
    }
    let layers: Vec<LayerDesc> = layers
        .iter()
        .map(document::layer_desc)
        .collect::<Result<_, _>>()
        .map_err(LayerCheck::Refused)?;
    let total = layers
        .iter()
        .fold(0u64, |sum, l| sum.saturating_add(l.size));
    if total > limits.max_bytes {
        return Err(too_large(
            format!("the size limit of {} bytes", limits.max_bytes),
            format!("{total} bytes of compressed layers"),
        ));
    }
    Ok(layers)
}
