//! Static assets (the stylesheet, the upload enhancement script), compiled into the binary and
//! served under names that carry a hash of their content, so browsers may keep them for a year:
//! a changed file gets a new name. The plain names still answer, revalidated, for anything that
//! links to them directly.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::auth::policy::Access;
use crate::error::AppError;
use crate::web::route_table::Routes;

pub struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
    fingerprinted: OnceLock<String>,
}

impl Asset {
    const fn new(name: &'static str, content_type: &'static str, body: &'static str) -> Self {
        Asset { name, content_type, body, fingerprinted: OnceLock::new() }
    }

    /// The path to link to: `/static/app.1a2b3c4d5e6f.css`.
    pub fn path(&'static self) -> &'static str {
        self.fingerprinted.get_or_init(|| fingerprint(self.name, self.body))
    }
}

fn fingerprint(name: &str, body: &str) -> String {
    let hash = hex::encode(&Sha256::digest(body.as_bytes())[..6]);
    let (stem, extension) = name.rsplit_once('.').unwrap_or((name, ""));
    format!("/static/{stem}.{hash}.{extension}")
}

pub static STYLESHEET: Asset = Asset::new("app.css", "text/css; charset=utf-8", include_str!("../../static/app.css"));

pub static UPLOAD_SCRIPT: Asset =
    Asset::new("upload.js", "text/javascript; charset=utf-8", include_str!("../../static/upload.js"));

static ASSETS: [&Asset; 2] = [&STYLESHEET, &UPLOAD_SCRIPT];

pub fn router() -> Routes {
    Routes::new().get("/static/{file}", Access::Public, serve)
}

async fn serve(Path(file): Path<String>) -> Result<Response, AppError> {
    let requested = format!("/static/{file}");
    for asset in ASSETS {
        let cache = if requested == asset.path() {
            "public, max-age=31536000, immutable"
        } else if file == asset.name {
            "public, no-cache"
        } else {
            continue;
        };
        let headers = [
            (header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ];
        return Ok((headers, asset.body).into_response());
    }
    Err(AppError::NotFound("file"))
}
