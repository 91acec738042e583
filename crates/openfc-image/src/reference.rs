//! Image references parsed with Docker's rules (containers.md §2.1), and the operator's registry mirrors.
//!
//! The grammar is oci-spec's port of distribution's reference regexp; on top of it openfc accepts only
//! `sha256` digests in canonical form, because blobs and pins are stored by that name.

use serde::{Deserialize, Serialize};

use crate::error::ImageError;

/// Docker Hub as written in references, and the host openfc contacts for it.
const HUB_NAME: &str = "docker.io";
const HUB_HOST: &str = "index.docker.io";

/// An image reference: the text as the user wrote it, and what it means after Docker's defaults and the
/// mirrors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRef {
    /// As the user wrote it; the function keeps this and every message quotes it.
    pub written: String,
    /// `host[:port]` actually contacted, after mirrors; Docker Hub is `index.docker.io`.
    pub registry: String,
    /// Repository path; Docker Hub single names get `library/`.
    pub repository: String,
    /// `latest` when neither a tag nor a digest was written.
    pub tag: Option<String>,
    /// `sha256:<64 hex>` when written with `@`.
    pub digest: Option<String>,
}

/// Registry host rewrites `FROM=TO`, applied before anything else so that names such as
/// `registry.cn-hangzhou.aliyuncs.com/ns/app:1` reach a registry the operator runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mirrors(pub Vec<(String, String)>);

impl Mirrors {
    /// Parses `FROM=TO` items (`--registry-mirror`, repeatable; an item may itself be a comma-separated
    /// list, as in `OPENFC_REGISTRY_MIRRORS`).
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<Mirrors, String> {
        let mut pairs = Vec::new();
        for item in items.iter().flat_map(|s| s.as_ref().split(',')) {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let (from, to) = item
                .split_once('=')
                .ok_or_else(|| format!("registry mirror '{item}' is not FROM=TO"))?;
            let (from, to) = (from.trim(), to.trim());
            for host in [from, to] {
                if !is_host(host) {
                    return Err(format!(
                        "registry mirror '{item}': '{host}' is not a host[:port]"
                    ));
                }
                // A reference names a registry only this way (Docker's rule); `mirror/ns/app` would be a Docker
                // Hub repository, so such a mirror could never match, and as a target its images' names would
                // read back as Hub's (found by the image-reference fuzz target).
                if !(host.contains('.') || host.contains(':') || host.eq_ignore_ascii_case("localhost")) {
                    return Err(format!(
                        "registry mirror '{item}': '{host}' is no registry host name (a name without a dot or a \
                         port reads as part of a repository): write {host}:PORT or its full domain name"
                    ));
                }
            }
            pairs.push((from.to_ascii_lowercase(), to.to_ascii_lowercase()));
        }
        Ok(Mirrors(pairs))
    }

    /// The host to contact for `registry` as parsed (`docker.io` for Docker Hub).
    fn contact(&self, registry: &str) -> String {
        let registry = registry.to_ascii_lowercase();
        let default = if registry == HUB_NAME {
            HUB_HOST.to_string()
        } else {
            registry.clone()
        };
        self.0
            .iter()
            .find(|(from, _)| hub_alias(from) == registry || *from == default)
            // A mirror to Docker Hub itself must name the host oci-client contacts for it.
            .map(|(_, to)| {
                if hub_alias(to) == HUB_NAME {
                    HUB_HOST.to_string()
                } else {
                    to.clone()
                }
            })
            .unwrap_or(default)
    }
}

/// Docker's limit on a repository's length (`NameTotalLengthMax`).
const REPOSITORY_MAX: usize = 255;

/// Docker Hub is written several ways; a mirror for any of them means Docker Hub.
fn hub_alias(host: &str) -> &str {
    match host {
        "index.docker.io" | "registry-1.docker.io" => HUB_NAME,
        other => other,
    }
}

/// `host[:port]` with a DNS name or an IPv4 address: what a reference's domain can be.
fn is_host(s: &str) -> bool {
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    };
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    let label_ok = |l: &str| {
        !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    port_ok && !host.is_empty() && host.split('.').all(label_ok)
}

impl ImageRef {
    /// Parses `written` with Docker's rules: default registry Docker Hub, `library/` for single names, tag
    /// `latest` when neither a tag nor a digest is given, `name@sha256:<64 hex>`; then applies the mirrors.
    pub fn parse(written: &str, mirrors: &Mirrors) -> Result<ImageRef, ImageError> {
        let invalid = |cause: &str| ImageError::Reference {
            reference: written.to_string(),
            cause: cause.to_string(),
        };
        if written.is_empty() {
            return Err(invalid("the image reference is empty"));
        }
        let parsed = written
            .parse::<oci_spec::distribution::Reference>()
            .map_err(|e| {
                // The grammar has no separate rule for case, so an upper-case path only shows as a bad format;
                // Docker's message is clearer.
                if written
                    .to_ascii_lowercase()
                    .parse::<oci_spec::distribution::Reference>()
                    .is_ok()
                {
                    invalid("repository name must be lowercase")
                } else {
                    invalid(&e.to_string())
                }
            })?;
        if let Some(digest) = parsed.digest() {
            check_digest(digest).map_err(|cause| invalid(&cause))?;
        }
        // `UPPER/app` passes the grammar with `UPPER` as a path component of Docker Hub, but its own canonical
        // form would then be refused (and Docker takes an upper-case first component for a registry host):
        // refused here, as Docker Hub refuses it (found by the image-reference fuzz target).
        if parsed.repository().bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(invalid("repository name must be lowercase"));
        }
        // Docker Hub's official images live under `library/`; the grammar adds it only for the host spelled in
        // lower case, so `docker.Io/alpine` would otherwise name another repository than `docker.io/alpine`
        // (found by the image-reference fuzz target: its canonical form did not read back the same).
        let hub = [HUB_NAME, HUB_HOST].contains(&parsed.registry().to_ascii_lowercase().as_str());
        let repository = match parsed.repository() {
            r if hub && !r.contains('/') => format!("library/{r}"),
            r => r.to_string(),
        };
        // The grammar limits the repository as written; `library/` can take it past the limit, and then the
        // canonical form would not read back (found by the image-reference fuzz target).
        if repository.len() > REPOSITORY_MAX {
            return Err(invalid(&format!("repository name must not be more than {REPOSITORY_MAX} characters")));
        }
        Ok(ImageRef {
            written: written.to_string(),
            registry: mirrors.contact(parsed.registry()),
            repository,
            tag: parsed.tag().map(str::to_string),
            digest: parsed.digest().map(str::to_string),
        })
    }

    /// `registry/repository[:tag][@digest]` as contacted: for logs and the image store's listing.
    pub fn canonical(&self) -> String {
        let mut s = format!("{}/{}", self.registry, self.repository);
        if let Some(tag) = &self.tag {
            s.push(':');
            s.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            s.push('@');
            s.push_str(digest);
        }
        s
    }

    /// The same image pinned to `digest` (the tag is kept for display; the digest decides what is fetched).
    pub fn pinned(&self, digest: &str) -> ImageRef {
        ImageRef {
            digest: Some(digest.to_string()),
            ..self.clone()
        }
    }

    /// oci-client's view: the contacted host as registry, so no further Docker Hub rewrite or `?ns=` applies.
    pub(crate) fn to_oci(&self) -> oci_client::Reference {
        let (registry, repository) = (self.registry.clone(), self.repository.clone());
        match (&self.tag, &self.digest) {
            (Some(tag), Some(digest)) => oci_client::Reference::with_tag_and_digest(
                registry,
                repository,
                tag.clone(),
                digest.clone(),
            ),
            (None, Some(digest)) => {
                oci_client::Reference::with_digest(registry, repository, digest.clone())
            }
            (tag, None) => oci_client::Reference::with_tag(
                registry,
                repository,
                tag.clone().unwrap_or_else(|| "latest".into()),
            ),
        }
    }
}

/// A digest openfc can store and pin: `sha256:` and 64 lower-case hex digits. Everything named by a digest
/// becomes a file name, so nothing else gets through.
pub fn check_digest(digest: &str) -> Result<(), String> {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err(format!("digest '{digest}' has no algorithm"));
    };
    if algorithm != "sha256" {
        return Err(format!(
            "digest algorithm '{algorithm}' is not supported (only sha256)"
        ));
    }
    if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(format!(
            "digest '{digest}' is not sha256 followed by 64 lower-case hex digits"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn parse(s: &str) -> ImageRef {
        ImageRef::parse(s, &Mirrors::default()).unwrap()
    }

    fn cause(s: &str) -> String {
        match ImageRef::parse(s, &Mirrors::default()) {
            Err(ImageError::Reference { reference, cause }) => {
                assert_eq!(reference, s);
                cause
            }
            other => panic!("{s}: expected a Reference error, got {other:?}"),
        }
    }

    #[test]
    fn single_name_is_docker_hub_library_latest() {
        let r = parse("busybox");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("index.docker.io", "library/busybox")
        );
        assert_eq!(
            (r.tag.as_deref(), r.digest.as_deref()),
            (Some("latest"), None)
        );
        assert_eq!(r.written, "busybox");
        assert_eq!(
            parse("docker.io/library/busybox:latest").canonical(),
            r.canonical()
        );
        assert_eq!(
            parse("index.docker.io/busybox").repository,
            "library/busybox"
        );
    }

    #[test]
    fn user_repositories_and_registries() {
        assert_eq!(parse("fc/app:1").repository, "fc/app");
        assert_eq!(parse("fc/app:1").registry, "index.docker.io");
        let r = parse("localhost:5000/a/b");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("localhost:5000", "a/b", Some("latest"))
        );
        assert_eq!(parse("localhost/a").registry, "localhost");
        let r = parse("registry.cn-hangzhou.aliyuncs.com/ns/app:v1.2");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("registry.cn-hangzhou.aliyuncs.com", "ns/app", Some("v1.2"))
        );
    }

    #[test]
    fn digests() {
        let r = parse(&format!("localhost:5000/a@sha256:{HEX}"));
        assert_eq!(
            (r.tag.as_deref(), r.digest.as_deref()),
            (None, Some(format!("sha256:{HEX}").as_str()))
        );
        let r = parse(&format!("a:v1@sha256:{HEX}"));
        assert_eq!((r.tag.as_deref(), r.digest.is_some()), (Some("v1"), true));
        assert!(cause(&format!("a@sha256:{}", &HEX[1..])).contains("length"));
        assert!(cause(&format!("a@sha256:{}", HEX.to_uppercase())).contains("lower-case"));
        assert!(cause(&format!("a@sha512:{HEX}{HEX}")).contains("only sha256"));
        assert!(cause("a@md5:0123456789abcdef0123456789abcdef").contains("unsupported"));
    }

    #[test]
    fn bad_references() {
        assert!(cause("Busybox").contains("lowercase"));
        assert!(cause("UPPER/case").contains("lowercase"));
        let mixed = parse("docker.Io/alpine");
        assert_eq!(mixed.canonical(), parse("docker.io/alpine").canonical());
        assert!(cause("localhost:5000/Fc/App:v1").contains("lowercase"));
        assert!(cause("").contains("empty"));
        assert!(!cause("a b").is_empty());
        assert!(!cause("a:").is_empty());
        assert!(!cause("/a").is_empty());
        assert!(!cause(&format!("a/{}", "b".repeat(300))).is_empty());
        // 250 characters pass the grammar; with `library/` they do not fit Docker's 255.
        let long = "b".repeat(250);
        assert!(cause(&format!("docker.Io/{long}")).contains("255 characters"));
        assert!(cause(&long).contains("255 characters"));
        assert_eq!(parse(&"b".repeat(247)).repository.len(), 255);
    }

    #[test]
    fn mirrors_rewrite_the_contacted_host_only() {
        let m = Mirrors::parse(&[
            "registry.cn-hangzhou.aliyuncs.com=127.0.0.1:5001",
            "docker.io=hub.local:443",
        ])
        .unwrap();
        let r = ImageRef::parse("registry.cn-hangzhou.aliyuncs.com/fc/hello:v1", &m).unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("127.0.0.1:5001", "fc/hello")
        );
        assert_eq!(r.written, "registry.cn-hangzhou.aliyuncs.com/fc/hello:v1");
        let r = ImageRef::parse("busybox", &m).unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("hub.local:443", "library/busybox")
        );
        let m = Mirrors::parse(&["index.docker.io=hub.local,quay.io=q.local"]).unwrap();
        assert_eq!(ImageRef::parse("alpine", &m).unwrap().registry, "hub.local");
        assert_eq!(
            ImageRef::parse("quay.io/a/b", &m).unwrap().registry,
            "q.local"
        );
        assert_eq!(
            ImageRef::parse("ghcr.io/a/b", &m).unwrap().registry,
            "ghcr.io"
        );
        let m = Mirrors::parse(&["mirror.local=docker.io"]).unwrap();
        assert_eq!(
            ImageRef::parse("mirror.local/a/b", &m).unwrap().registry,
            "index.docker.io"
        );
    }

    #[test]
    fn mirror_syntax() {
        assert!(Mirrors::parse(&["a.io"]).is_err());
        assert!(Mirrors::parse(&["a.io=http://b"]).is_err());
        assert!(Mirrors::parse(&["a.io=b:port"]).is_err());
        assert!(Mirrors::parse(&["=b"]).is_err());
        // A name Docker reads as a repository part, not a host: refused, with the way out.
        let e = Mirrors::parse(&["registry.example.com=000"]).unwrap_err();
        assert!(e.contains("000:PORT"), "{e}");
        assert!(Mirrors::parse(&["mirror=a.io"]).is_err());
        assert!(Mirrors::parse(&["docker.io=mirror:5000", "a.io=localhost"]).is_ok());
        assert_eq!(
            Mirrors::parse(&["", " A.io = b:1 "]).unwrap().0,
            vec![("a.io".to_string(), "b:1".to_string())]
        );
    }
}
