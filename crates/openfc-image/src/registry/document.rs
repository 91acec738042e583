//! Manifests, indexes and image configs as openfc reads them: only the fields it uses, tolerant of what
//! Docker and OCI writers add, strict about what later becomes a file name (digests) or a limit (sizes).

use serde::Deserialize;

use super::{ImageConfigSummary, LayerDesc};
use crate::reference::check_digest;

pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub(crate) const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// What the manifest request accepts.
pub(crate) const MANIFEST_TYPES: &[&str] = &[DOCKER_MANIFEST, DOCKER_LIST, OCI_MANIFEST, OCI_INDEX];

const CONFIG_TYPES: &[&str] = &[
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
];

/// Layer types the unpacker reads (containers.md §3): tar, gzip or zstd, OCI (incl. the deprecated
/// nondistributable ones, still pulled) and Docker.
pub const LAYER_TYPES: &[&str] = &[
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
];

/// Why a document was refused; the caller adds the image and registry.
#[derive(Debug)]
pub(crate) enum Refusal {
    MediaType(String),
    Invalid(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    schema_version: Option<i64>,
    media_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<IndexEntry>>,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    pub size: i64,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub(crate) struct IndexEntry {
    pub media_type: Option<String>,
    pub digest: String,
    pub size: i64,
    pub platform: Option<Platform>,
}

#[derive(Deserialize, Debug, Clone)]
pub(crate) struct Platform {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    fn name(&self) -> String {
        match &self.variant {
            Some(v) if !v.is_empty() => format!("{}/{}/{}", self.os, self.architecture, v),
            _ => format!("{}/{}", self.os, self.architecture),
        }
    }
}

/// A manifest document: an image manifest, or an index / manifest list to choose from.
pub(crate) enum Manifest {
    Image {
        config: Descriptor,
        layers: Vec<Descriptor>,
    },
    Index(Vec<IndexEntry>),
}

pub(crate) fn parse_manifest(body: &[u8]) -> Result<Manifest, Refusal> {
    let doc: Document = serde_json::from_slice(body)
        .map_err(|e| Refusal::Invalid(format!("manifest is not valid JSON: {e}")))?;
    if doc.schema_version != Some(2) {
        // Docker schema 1 (signed) manifests say 1; nothing else is defined.
        let kind = doc.media_type.unwrap_or_else(|| {
            format!(
                "manifest schema version {:?}",
                doc.schema_version.unwrap_or(0)
            )
        });
        return Err(Refusal::MediaType(kind));
    }
    let is_index = match doc.media_type.as_deref() {
        Some(DOCKER_LIST | OCI_INDEX) => true,
        Some(DOCKER_MANIFEST | OCI_MANIFEST) => false,
        Some(other) => return Err(Refusal::MediaType(other.to_string())),
        None => doc.manifests.is_some(),
    };
    if is_index {
        let entries = doc
            .manifests
            .ok_or_else(|| Refusal::Invalid("index has no manifests".into()))?;
        return Ok(Manifest::Index(entries));
    }
    let config = doc
        .config
        .ok_or_else(|| Refusal::Invalid("manifest has no config".into()))?;
    Ok(Manifest::Image {
        config,
        layers: doc.layers.unwrap_or_default(),
    })
}

/// The linux/amd64 image manifest of an index (variant ignored), else the platforms it has.
pub(crate) fn pick_amd64(entries: &[IndexEntry]) -> Result<&IndexEntry, String> {
    let image_manifest = |e: &&IndexEntry| {
        matches!(
            e.media_type.as_deref(),
            None | Some(DOCKER_MANIFEST | OCI_MANIFEST)
        )
    };
    let amd64 = |e: &&IndexEntry| {
        e.platform
            .as_ref()
            .is_some_and(|p| p.os == "linux" && p.architecture == "amd64")
    };
    if let Some(entry) = entries.iter().filter(image_manifest).find(amd64) {
        return Ok(entry);
    }
    // Attestation manifests (buildx) say unknown/unknown: not a platform anyone meant.
    let mut found: Vec<String> = Vec::new();
    for name in entries
        .iter()
        .filter_map(|e| e.platform.as_ref())
        .map(Platform::name)
    {
        if name != "unknown/unknown" && !found.contains(&name) {
            found.push(name);
        }
    }
    Err(if found.is_empty() {
        "an index with no platform".to_string()
    } else {
        found.join(", ")
    })
}

/// A descriptor's size as a byte count, refusing the negative sizes the JSON type allows.
pub(crate) fn size_of(digest: &str, size: i64) -> Result<u64, Refusal> {
    u64::try_from(size)
        .map_err(|_| Refusal::Invalid(format!("{digest} has a negative size ({size})")))
}

pub(crate) fn check_descriptor_digest(digest: &str) -> Result<(), Refusal> {
    check_digest(digest).map_err(Refusal::Invalid)
}

pub(crate) fn check_config_type(config: &Descriptor) -> Result<(), Refusal> {
    // Docker and OCI writers always set it; an artifact (helm chart, wasm module…) has its own type.
    if CONFIG_TYPES.contains(&config.media_type.as_str()) {
        Ok(())
    } else {
        Err(Refusal::MediaType(format!(
            "{} (image config)",
            config.media_type
        )))
    }
}

pub(crate) fn layer_desc(layer: &Descriptor) -> Result<LayerDesc, Refusal> {
    if !LAYER_TYPES.contains(&layer.media_type.as_str()) {
        return Err(Refusal::MediaType(format!(
            "{} (layer {})",
            layer.media_type, layer.digest
        )));
    }
    check_descriptor_digest(&layer.digest)?;
    Ok(LayerDesc {
        digest: layer.digest.clone(),
        media_type: layer.media_type.clone(),
        size: size_of(&layer.digest, layer.size)?,
    })
}

#[derive(Deserialize)]
struct ConfigDoc {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    variant: Option<String>,
    config: Option<ExecConfig>,
    rootfs: Option<RootFs>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ExecConfig {
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    env: Option<Vec<String>>,
    working_dir: Option<String>,
    user: Option<String>,
}

#[derive(Deserialize)]
struct RootFs {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    diff_ids: Vec<String>,
}

/// The parts of an image config openfc runs from; the platform is checked by the caller, which then
/// knows the image's name for the message.
pub(crate) fn parse_config(body: &[u8]) -> Result<(ImageConfigSummary, String), Refusal> {
    let doc: ConfigDoc = serde_json::from_slice(body)
        .map_err(|e| Refusal::Invalid(format!("image config is not valid: {e}")))?;
    let platform = Platform {
        os: doc.os.clone(),
        architecture: doc.architecture.clone(),
        variant: doc.variant,
    }
    .name();
    let rootfs = doc
        .rootfs
        .ok_or_else(|| Refusal::Invalid("image config has no rootfs".into()))?;
    if rootfs.kind != "layers" {
        return Err(Refusal::Invalid(format!(
            "image config rootfs type is '{}', not 'layers'",
            rootfs.kind
        )));
    }
    for id in &rootfs.diff_ids {
        check_digest(id).map_err(|e| Refusal::Invalid(format!("image config diff_id: {e}")))?;
    }
    let exec = doc.config.unwrap_or_default();
    let summary = ImageConfigSummary {
        os: doc.os,
        architecture: doc.architecture,
        entrypoint: exec.entrypoint.unwrap_or_default(),
        cmd: exec.cmd.unwrap_or_default(),
        env: exec.env.unwrap_or_default(),
        working_dir: exec.working_dir.unwrap_or_default(),
        user: exec.user.unwrap_or_default(),
        diff_ids: rootfs.diff_ids,
    };
    Ok((summary, platform))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_choice_ignores_variant_and_names_what_it_had() {
        let entry = |arch: &str, variant: Option<&str>| IndexEntry {
            media_type: Some(OCI_MANIFEST.into()),
            digest: format!("sha256:{arch}"),
            size: 1,
            platform: Some(Platform {
                os: "linux".into(),
                architecture: arch.into(),
                variant: variant.map(Into::into),
            }),
        };
        let all = [entry("arm64", Some("v8")), entry("amd64", Some("v3"))];
        assert_eq!(pick_amd64(&all).unwrap().digest, "sha256:amd64");
        let arm = [
            entry("arm64", Some("v8")),
            entry("arm", Some("v7")),
            entry("arm", Some("v7")),
        ];
        assert_eq!(
            pick_amd64(&arm).unwrap_err(),
            "linux/arm64/v8, linux/arm/v7"
        );
        assert_eq!(pick_amd64(&[]).unwrap_err(), "an index with no platform");
    }

    #[test]
    fn manifest_kinds() {
        assert!(matches!(
            parse_manifest(br#"{"schemaVersion":2,"manifests":[]}"#),
            Ok(Manifest::Index(_))
        ));
        let image = br#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"d","size":1}}"#;
        assert!(matches!(parse_manifest(image), Ok(Manifest::Image { .. })));
        assert!(matches!(
            parse_manifest(br#"{"schemaVersion":1,"name":"a"}"#),
            Err(Refusal::MediaType(_))
        ));
        assert!(
            matches!(parse_manifest(br#"{"schemaVersion":2,"mediaType":"text/plain"}"#), Err(Refusal::MediaType(t)) if t == "text/plain")
        );
        assert!(matches!(parse_manifest(b"[]"), Err(Refusal::Invalid(_))));
    }

    #[test]
    fn config_fields_and_nulls() {
        let d = format!("sha256:{}", "a".repeat(64));
        let body = format!(
            r#"{{"os":"linux","architecture":"arm","variant":"v7","config":{{"Entrypoint":null,"Cmd":["sh"],"Env":["A=1"],"WorkingDir":"/w","User":"app"}},"rootfs":{{"type":"layers","diff_ids":["{d}"]}}}}"#
        );
        let (c, platform) = parse_config(body.as_bytes()).unwrap();
        assert_eq!(platform, "linux/arm/v7");
        assert_eq!(
            (
                c.entrypoint.len(),
                c.cmd,
                c.working_dir.as_str(),
                c.user.as_str()
            ),
            (0, vec!["sh".to_string()], "/w", "app")
        );
        assert_eq!(c.diff_ids, vec![d]);
        assert!(parse_config(br#"{"os":"linux","architecture":"amd64","rootfs":{"type":"layers","diff_ids":["sha256:../x"]}}"#).is_err());
        assert!(parse_config(br#"{"os":"linux","architecture":"amd64"}"#).is_err());
    }
}
