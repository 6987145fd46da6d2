//! The ceiling for the page benchmarks (benches/pages.sh): a bare axum handler answering "ok"
//! on the same machine, runtime and HTTP stack as the product, with no database, session or
//! template. Usage: `cargo run --release --example bare -- 127.0.0.1:PORT`.

use axum::Router;
use axum::routing::get;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let address = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8089".into());
    let app = Router::new().route("/", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(&address).await?;
    axum::serve(listener, app).await
}
