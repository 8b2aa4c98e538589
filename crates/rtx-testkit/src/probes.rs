//! Waiting for the engine's readiness probe to say something: a status code, or a code and an
//! overall verdict (`healthy`, `degraded`, `unhealthy`).

use std::time::Duration;

use crate::client::{async_client, json};
use crate::engine::Engine;
use crate::http::http_get;
use crate::wait::Poll;

/// How long the readiness waits wait: checks run every few hundred milliseconds, so this is
/// only ever reached when the engine is wrong (or the machine very loaded).
const READINESS: Duration = Duration::from_secs(20);

/// Polls `/ready` until it answers `code`; returns that body.
///
/// # Panics
/// When it has not within 20 s, with the last answer.
pub fn wait_for_ready_status(engine: &Engine, code: u16) -> serde_json::Value {
    Poll::up_to(READINESS)
        .every(Duration::from_millis(100))
        .until_ok(&format!("/ready to answer {code}"), || {
            match http_get(engine.addr, "/ready") {
                Some((got, body)) if got == code => Ok(json(&body, "/ready", got)),
                Some((got, body)) => Err(format!("{got} {body}")),
                None => Err("no answer".to_owned()),
            }
        })
}

/// [`wait_for_ready_status`] for async tests.
///
/// # Panics
/// When it has not within 20 s, with the last answer.
pub async fn wait_for_ready_status_async(engine: &Engine, code: u16) -> serde_json::Value {
    wait_for_ready_async(engine, code, None).await
}

/// Polls `/ready` until it answers `code` with the overall status `verdict`; returns that body.
///
/// # Panics
/// When it has not within 20 s, with the last answer.
pub async fn wait_for_ready_verdict_async(
    engine: &Engine,
    code: u16,
    verdict: &str,
) -> serde_json::Value {
    wait_for_ready_async(engine, code, Some(verdict)).await
}

async fn wait_for_ready_async(
    engine: &Engine,
    code: u16,
    verdict: Option<&str>,
) -> serde_json::Value {
    let client = async_client();
    let url = engine.url("/ready");
    let wanted = format!("/ready to answer {code} {}", verdict.unwrap_or(""));
    Poll::up_to(READINESS)
        .every(Duration::from_millis(100))
        .until_ok_async(wanted.trim_end(), async || {
            let response = client.get(&url).send().await.map_err(|e| e.to_string())?;
            let got = response.status().as_u16();
            let text = response.text().await.map_err(|e| e.to_string())?;
            let body = json(&text, "/ready", got);
            if got == code && verdict.is_none_or(|v| body["status"] == v) {
                Ok(body)
            } else {
                Err(format!("{got} {body}"))
            }
        })
        .await
}
