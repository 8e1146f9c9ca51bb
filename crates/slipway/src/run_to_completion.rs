//! A request that changes state runs to its end even when its client goes away.
//!
//! hyper drops a request's future when the connection closes. For a write that is a
//! cancellation at any await: after the payment provider took a charge and before the
//! database recorded it; with an Idempotency-Key claimed and never answered, so the
//! client's retry is refused as "in progress"; or between a transaction's `BEGIN` reaching
//! PostgreSQL and the driver counting it, which hands the connection back to the pool
//! inside a transaction (seen in the checkout benchmark: "there is already a transaction in
//! progress", then a checkout failing). Running the handler in a task of its own makes a
//! write finish, or fail, as it would have with the client still there; reads are left
//! cancellable, as they change nothing.

use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub(crate) async fn run_writes_to_completion(request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(request).await;
    }
    match tokio::spawn(next.run(request)).await {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(error = %e, "a request's task ended without an answer");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use axum::Router;
    use axum::routing::post;
    use tokio::io::AsyncWriteExt;

    /// A client that sends a write and hangs up at once: the handler still runs to its end.
    #[tokio::test]
    async fn a_write_finishes_after_its_client_hangs_up() {
        let finished = Arc::new(AtomicBool::new(false));
        let done = finished.clone();
        let app = Router::new()
            .route(
                "/write",
                post(move || async move {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    done.store(true, Ordering::SeqCst);
                }),
            )
            .layer(axum::middleware::from_fn(super::run_writes_to_completion));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app).await });

        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        client.write_all(b"POST /write HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n").await.unwrap();
        // Long enough for the server to start the handler, far shorter than it takes.
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(client);

        let waited = async {
            while !finished.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), waited).await.expect("the handler ran to its end");
        server.abort();
    }
}
