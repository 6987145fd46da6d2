//! Every route is declared with the access rule it promises (`policy::Access`). The router is
//! built only from this table, so no route exists without a rule, and the authorisation matrix
//! test walks the same table to check every route for every role against its rule.
//!
//! API routes are registered with `Routes::api`, from a handler annotated with
//! `#[utoipa::path]`: method and path are written once, in the annotation, and the operation
//! joins the OpenAPI document the table builds (`web::openapi`), so the document cannot miss a
//! route or disagree with it.

use axum::Router;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, patch, post};

use utoipa::openapi::OpenApi;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa_axum::router::UtoipaMethodRouter;

use crate::AppState;
use crate::auth::policy::Access;

/// One route: method, path (axum syntax) and the access rule its handler enforces.
#[derive(Debug, Clone)]
pub struct RouteSpec {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
}

#[derive(Default)]
pub struct Routes {
    router: Router<AppState>,
    specs: Vec<RouteSpec>,
    /// The operations and schemas of the API routes registered so far.
    openapi: OpenApi,
}

impl Routes {
    pub fn new() -> Self {
        Routes::default()
    }

    /// Adds a route whose method router was built by hand (for a layer on one route).
    pub fn add(mut self, method: Method, path: &'static str, access: Access, route: MethodRouter<AppState>) -> Self {
        self.specs.push(RouteSpec { method, path, access });
        self.router = self.router.route(path, route);
        self
    }

    pub fn get<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, access: Access, handler: H) -> Self {
        self.add(Method::GET, path, access, get(handler))
    }

    pub fn post<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, access: Access, handler: H) -> Self {
        self.add(Method::POST, path, access, post(handler))
    }

    /// A POST that streams its body (uploads) and enforces its own limits instead of the
    /// default body limit.
    pub fn post_upload<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        access: Access,
        handler: H,
    ) -> Self {
        self.add(Method::POST, path, access, post(handler).layer(axum::extract::DefaultBodyLimit::disable()))
    }

    pub fn patch<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, access: Access, handler: H) -> Self {
        self.add(Method::PATCH, path, access, patch(handler))
    }

    pub fn delete<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, access: Access, handler: H) -> Self {
        self.add(Method::DELETE, path, access, delete(handler))
    }

    /// An API route from a handler annotated with `#[utoipa::path]`, given as
    /// `utoipa_axum::routes!(handler)`: method and path come from the annotation, and its
    /// operation joins the OpenAPI document with what `access` answers (sign-in, refusals).
    pub fn api(self, access: Access, route: UtoipaMethodRouter<AppState>) -> Self {
        self.add_api(access, route, false)
    }

    /// An API route that streams its body (uploads): as `api`, without the default body limit.
    pub fn api_upload(self, access: Access, route: UtoipaMethodRouter<AppState>) -> Self {
        self.add_api(access, route, true)
    }

    fn add_api(
        mut self,
        access: Access,
        (schemas, paths, method_router): UtoipaMethodRouter<AppState>,
        upload: bool,
    ) -> Self {
        let method_router =
            if upload { method_router.layer(axum::extract::DefaultBodyLimit::disable()) } else { method_router };
        for (path, mut item) in paths.paths {
            for (method, operation) in operations(&mut item) {
                crate::web::openapi::document_access(operation, access, &path, &method, upload);
                self.specs.push(RouteSpec { method, path: intern(&path), access });
            }
            self.router = self.router.route(&path, method_router.clone());
            match self.openapi.paths.paths.get_mut(&path) {
                Some(existing) => existing.merge_operations(item),
                None => {
                    self.openapi.paths.paths.insert(path, item);
                }
            }
        }
        self.openapi.components.get_or_insert_with(Default::default).schemas.extend(schemas);
        self
    }

    pub fn merge(mut self, other: Routes) -> Self {
        self.specs.extend(other.specs);
        self.router = self.router.merge(other.router);
        self.openapi.merge(other.openapi);
        self
    }

    pub fn specs(&self) -> &[RouteSpec] {
        &self.specs
    }

    /// The API routes' operations and schemas, before `web::openapi::document` completes them.
    pub fn openapi(&self) -> &OpenApi {
        &self.openapi
    }

    /// The router, serving the finished OpenAPI document to `web::openapi`'s handler.
    pub fn into_router(self) -> Router<AppState> {
        let document = crate::web::openapi::document(self.openapi);
        self.router.layer(axum::Extension(document))
    }
}

/// The operations of one path item with their methods.
fn operations(item: &mut PathItem) -> Vec<(Method, &mut Operation)> {
    [
        (Method::GET, item.get.as_mut()),
        (Method::PUT, item.put.as_mut()),
        (Method::POST, item.post.as_mut()),
        (Method::DELETE, item.delete.as_mut()),
        (Method::OPTIONS, item.options.as_mut()),
        (Method::HEAD, item.head.as_mut()),
        (Method::PATCH, item.patch.as_mut()),
        (Method::TRACE, item.trace.as_mut()),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.map(|operation| (method, operation)))
    .collect()
}

/// A path from an annotation as `&'static str`, as every other route's is: each distinct path
/// is leaked once, however many times the table is built (every test builds it).
fn intern(path: &str) -> &'static str {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static PATHS: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut paths = PATHS.get_or_init(Default::default).lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    match paths.get(path) {
        Some(known) => known,
        None => {
            let leaked: &'static str = Box::leak(path.to_owned().into_boxed_str());
            paths.insert(leaked);
            leaked
        }
    }
}
