//! The console's pages, scripts and styles, embedded in the binary: plain JavaScript modules, HTML and CSS
//! with no build step and no third-party code, so nothing is fetched at run time and nothing needs a lock
//! file or a bundler.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

pub struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

macro_rules! asset {
    ($path:literal, $file:literal, $ty:expr) => {
        Asset { path: $path, content_type: $ty, body: include_str!(concat!("../../console/", $file)) }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

static ASSETS: &[Asset] = &[
    asset!("/console/", "index.html", "text/html; charset=utf-8"),
    asset!("/console/style.css", "style.css", "text/css; charset=utf-8"),
    asset!("/console/favicon.svg", "favicon.svg", "image/svg+xml"),
    asset!("/console/js/app.js", "js/app.js", JS),
    asset!("/console/js/api.js", "js/api.js", JS),
    asset!("/console/js/ui.js", "js/ui.js", JS),
    asset!("/console/js/zip.js", "js/zip.js", JS),
    asset!("/console/js/chart.js", "js/chart.js", JS),
    asset!("/console/js/services.js", "js/services.js", JS),
    asset!("/console/js/function.js", "js/function.js", JS),
    asset!("/console/js/activity.js", "js/activity.js", JS),
    asset!("/console/js/invoke.js", "js/invoke.js", JS),
];

pub fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// The asset with a validator: its CRC-64 as an ETag, so a reload costs a 304.
pub fn serve(asset: &'static Asset, headers: &HeaderMap) -> Response {
    let etag = format!("\"{:016x}\"", openfc_core::code::crc64(asset.body.as_bytes()));
    let fresh = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains(&etag));
    let mut resp = if fresh {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        Response::new(Body::from(asset.body))
    };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    super::harden(h);
    resp
}
