//! The tower plumbing the kit's layers share. Each layer is a [`Middleware`]: an async function
//! of the request and the rest of the stack, so the fault, throttle and log layers stay plain
//! code and the `Service` boilerplate exists once.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::response::Response;
use tower_layer::Layer;
use tower_service::Service;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The rest of the stack below a middleware, called at most once.
pub struct Next(Box<dyn FnOnce(Request) -> BoxFuture<Response> + Send>);

impl Next {
    /// Passes the request on and waits for the answer.
    pub async fn run(self, req: Request) -> Response {
        (self.0)(req).await
    }
}

/// Code run around each request by a [`KitLayer`].
pub trait Middleware: Clone + Send + Sync + 'static {
    /// Answers `req`, calling `next` to have the simulator serve it.
    fn run(self, req: Request, next: Next) -> impl Future<Output = Response> + Send;
}

/// A tower layer running a [`Middleware`]; add it to a `Router` with `Router::layer`.
#[derive(Clone, Debug)]
pub struct KitLayer<M>(pub(crate) M);

impl<M: Middleware> KitLayer<M> {
    /// A layer running `middleware` around each request.
    pub fn new(middleware: M) -> Self {
        KitLayer(middleware)
    }
}

impl<M: Middleware, S> Layer<S> for KitLayer<M> {
    type Service = KitService<M, S>;

    fn layer(&self, inner: S) -> Self::Service {
        KitService {
            middleware: self.0.clone(),
            inner,
        }
    }
}

/// The service a [`KitLayer`] wraps around the stack below it.
#[derive(Clone, Debug)]
pub struct KitService<M, S> {
    middleware: M,
    inner: S,
}

impl<M, S> Service<Request> for KitService<M, S>
where
    M: Middleware,
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // The instance polled ready is the one that must serve; a fresh clone stays behind.
        let fresh = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, fresh);
        let next = Next(Box::new(move |req| {
            Box::pin(async move {
                match ready.call(req).await {
                    Ok(r) => r,
                    Err(never) => match never {},
                }
            })
        }));
        let middleware = self.middleware.clone();
        Box::pin(async move { Ok(middleware.run(req, next).await) })
    }
}
