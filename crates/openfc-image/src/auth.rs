//! Registry credentials from the operator's `--registry-auth-file` (Docker `config.json` format,
//! containers.md §2.1), looked up by the host actually contacted.

use std::path::Path;

use docker_credential::{CredentialRetrievalError, DockerCredential};
use oci_client::secrets::RegistryAuth;

use crate::error::ImageError;

/// Docker Hub's key in `config.json`, whatever name the reference used.
const HUB_KEY: &str = "https://index.docker.io/v1/";

/// What to send to one registry, and how messages describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub auth: RegistryAuth,
    /// `none` or `from <auth file>`: the `credentials` of `ImageError::Denied`.
    pub source: String,
}

impl Credentials {
    pub fn anonymous() -> Credentials {
        Credentials {
            auth: RegistryAuth::Anonymous,
            source: "none".into(),
        }
    }
}

/// The key `host` has in a Docker `config.json`.
fn config_key(host: &str) -> &str {
    match host {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => HUB_KEY,
        other => other,
    }
}

/// Reads `auth_file` (again on every call: the operator may edit it while openfc runs) and returns the
/// credentials for `host`. No file or no entry means anonymous; an identity token is refused because
/// oci-client has no OAuth refresh-token flow to spend it on.
pub(crate) fn lookup(auth_file: Option<&Path>, host: &str) -> Result<Credentials, ImageError> {
    let Some(path) = auth_file else {
        return Ok(Credentials::anonymous());
    };
    let unusable = |cause: String| ImageError::Credentials {
        registry: host.to_string(),
        cause,
    };
    let file = std::fs::File::open(path).map_err(|e| {
        unusable(format!(
            "cannot read --registry-auth-file {}: {e}",
            path.display()
        ))
    })?;
    match docker_credential::get_credential_from_reader(
        std::io::BufReader::new(file),
        config_key(host),
    ) {
        Ok(DockerCredential::UsernamePassword(user, password)) => Ok(Credentials {
            auth: RegistryAuth::Basic(user, password),
            source: format!("from {}", path.display()),
        }),
        Ok(DockerCredential::IdentityToken(_)) => Err(unusable(format!(
            "{} holds an identity token for it; identity tokens are not supported; use username/password",
            path.display()
        ))),
        Err(CredentialRetrievalError::NoCredentialConfigured) => Ok(Credentials::anonymous()),
        Err(CredentialRetrievalError::ConfigReadError) => Err(unusable(format!(
            "--registry-auth-file {} is not a Docker config.json",
            path.display()
        ))),
        // A helper's output may hold secrets and reaches clients in the reason: it goes to openfc's log only.
        Err(CredentialRetrievalError::HelperFailure { helper, stdout, stderr }) => {
            tracing::warn!(%helper, %stdout, %stderr, "a registry credential helper failed");
            Err(unusable(format!("{} entry: the credential helper {helper} failed (its output is in openfc's log)", path.display())))
        }
        Err(e) => Err(unusable(format!("{} entry: {e}", path.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(json: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), json).unwrap();
        f
    }

    #[test]
    fn basic_from_auth_or_username_password() {
        let f = file(
            r#"{"auths":{"127.0.0.1:5001":{"auth":"ZmN1c2VyOmZjcGFzcw=="},"b.io":{"username":"u","password":"p:q"}}}"#,
        );
        let c = lookup(Some(f.path()), "127.0.0.1:5001").unwrap();
        assert_eq!(
            c.auth,
            RegistryAuth::Basic("fcuser".into(), "fcpass".into())
        );
        assert_eq!(c.source, format!("from {}", f.path().display()));
        assert_eq!(
            lookup(Some(f.path()), "b.io").unwrap().auth,
            RegistryAuth::Basic("u".into(), "p:q".into())
        );
        assert_eq!(
            lookup(Some(f.path()), "c.io").unwrap(),
            Credentials::anonymous()
        );
        assert_eq!(lookup(None, "b.io").unwrap(), Credentials::anonymous());
    }

    #[test]
    fn docker_hub_key() {
        let f = file(r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"}}}"#);
        assert_eq!(
            lookup(Some(f.path()), "index.docker.io").unwrap().auth,
            RegistryAuth::Basic("u".into(), "p".into())
        );
        assert_eq!(
            lookup(Some(f.path()), "registry-1.docker.io").unwrap().auth,
            RegistryAuth::Basic("u".into(), "p".into())
        );
    }

    #[test]
    fn refused_files() {
        let f = file(r#"{"auths":{"a.io":{"identitytoken":"tok"}}}"#);
        let e = lookup(Some(f.path()), "a.io").unwrap_err().to_string();
        assert!(
            e.contains("identity tokens are not supported; use username/password")
                && e.contains("a.io"),
            "{e}"
        );
        let f = file("not json");
        assert!(
            lookup(Some(f.path()), "a.io")
                .unwrap_err()
                .to_string()
                .contains("not a Docker config.json")
        );
        let e = lookup(Some(Path::new("/nonexistent/auth.json")), "a.io").unwrap_err();
        assert!(
            !e.transient() && e.to_string().contains("/nonexistent/auth.json"),
            "{e}"
        );
    }
}
