//! OCI images for `custom-container` functions (spec: `../shared/spec/containers.md`).
//!
//! - `reference`: image names parsed with Docker's rules, and the operator's registry mirrors.
//! - `registry`: the distribution protocol (oci-client), credentials from a Docker `config.json`, plain HTTP
//!   only where allowed; resolves a reference to a pinned manifest digest and streams blobs to disk.
//! - `unpack`: layers applied into one flattened tree with the OCI whiteout rules, every write confined beneath
//!   the root, owners shifted into an unprivileged host range.
//! - `store`: blobs by digest and flattened trees by ChainID on local disk, shared by every image.
//! - `plan`: what runs (argv by the Kubernetes rule, env, cwd, user) from the image config and the function.
#![forbid(unsafe_code)]

mod auth;
pub mod error;
pub mod reference;
pub mod registry;
pub mod store;
pub mod unpack;
pub mod user;

pub use error::{ImageError, Limits};
pub use reference::{ImageRef, Mirrors};
pub use registry::{ImageConfigSummary, LayerDesc, Registry, RegistryConfig, ResolvedImage};
