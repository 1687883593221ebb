//! A local webhook receiver on 127.0.0.1:0 that keeps every JSON body posted to it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

pub struct Receiver {
    pub url: String,
    got: Arc<Mutex<Vec<Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    pub async fn start() -> Receiver {
        let got: Arc<Mutex<Vec<Value>>> = Arc::default();
        let sink = got.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |axum::Json(v): axum::Json<Value>| {
                let sink = sink.clone();
                async move {
                    sink.lock().unwrap().push(v);
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            url: format!("http://{addr}/hook"),
            got,
            task,
        }
    }

    /// Everything received so far.
    pub fn got(&self) -> Vec<Value> {
        self.got.lock().unwrap().clone()
    }

    /// Waits up to `within` until `n` bodies have arrived; returns them.
    pub async fn wait_count(&self, n: usize, within: Duration) -> Vec<Value> {
        let started = std::time::Instant::now();
        while self.got().len() < n {
            assert!(
                started.elapsed() < within,
                "{n} alerts did not arrive: {:?}",
                self.got()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.got()
    }

    /// Waits up to `within` for a body whose `event` is `event`; returns it.
    pub async fn wait_event(&self, event: &str, within: Duration) -> Value {
        let started = std::time::Instant::now();
        loop {
            if let Some(v) = self.got().into_iter().find(|v| v["event"] == event) {
                return v;
            }
            assert!(
                started.elapsed() < within,
                "no {event} alert within {within:?}: {:?}",
                self.got()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
