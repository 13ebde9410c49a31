//! The stall bound: a registry request may take as long as it keeps moving, but gives up
//! after [`super::RegistryOptions::read_timeout`] without progress.
//!
//! Downloads get it from reqwest's read timeout (reset by every body read). Uploads cannot:
//! reqwest's read timeout runs from the start of the request until the response headers, so
//! a large blob upload would be cut off after one bound however fast it moved. Uploads use a
//! client without it instead, a body that records when it hands each chunk to the
//! connection ([`tracked_body`]), and a watchdog around the request ([`guard`]).

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;
use tokio::io::AsyncReadExt as _;

/// The environment variable that sets the stall bound, in seconds (`30`, `2.5`, `30s`,
/// `500ms`).
pub const STALL_TIMEOUT_ENV: &str = "CNB_REGISTRY_STALL_TIMEOUT";

/// The stall bound when [`STALL_TIMEOUT_ENV`] is unset.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// `30`, `2.5`, `30s`, `500ms`, `1m` → a positive duration.
pub fn parse_stall_timeout(value: &str) -> Option<Duration> {
    let value = value.trim();
    let (number, unit) = match value.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(at) => value.split_at(at),
        None => (value, "s"),
    };
    let number: f64 = number.parse().ok()?;
    let seconds = match unit {
        "s" => number,
        "ms" => number / 1000.0,
        "m" => number * 60.0,
        _ => return None,
    };
    (seconds.is_finite() && seconds > 0.0 && seconds < 86_400.0)
        .then(|| Duration::from_secs_f64(seconds))
}

/// The stall bound from [`STALL_TIMEOUT_ENV`]: `Ok(None)` when unset, `Err` with a one-line
/// reason when set to something that is not a duration.
pub fn stall_timeout_from_env() -> Result<Option<Duration>, String> {
    match std::env::var(STALL_TIMEOUT_ENV) {
        Err(_) => Ok(None),
        Ok(value) => parse_stall_timeout(&value).map(Some).ok_or_else(|| {
            format!("{STALL_TIMEOUT_ENV}={value:?} is not a duration (e.g. 30, 30s, 500ms)")
        }),
    }
}

/// When a request last made progress.
#[derive(Clone, Debug)]
pub(crate) struct Progress {
    start: Instant,
    /// Milliseconds after `start`.
    last: Arc<AtomicU64>,
}

impl Progress {
    pub(crate) fn new() -> Self {
        Self {
            start: Instant::now(),
            last: Arc::new(AtomicU64::new(0)),
        }
    }

    pub(crate) fn touch(&self) {
        let now = self.start.elapsed().as_millis() as u64;
        self.last.fetch_max(now, Ordering::Relaxed);
    }

    fn idle(&self) -> Duration {
        let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }
}

/// Run `request`, giving up with `Err(())` once `progress` has not moved for `stall`.
pub(crate) async fn guard<F: Future>(
    request: F,
    progress: &Progress,
    stall: Duration,
) -> Result<F::Output, ()> {
    let mut request = std::pin::pin!(request);
    loop {
        let wait = stall.saturating_sub(progress.idle());
        if wait.is_zero() {
            return Err(());
        }
        if let Ok(output) = tokio::time::timeout(wait, &mut request).await {
            return Ok(output);
        }
    }
}

/// A request body streaming `path` that touches `progress` each time the connection takes
/// the next chunk (it asks for one only once the previous one is written).
pub(crate) fn tracked_body(path: &Path, progress: Progress) -> std::io::Result<reqwest::Body> {
    const CHUNK: usize = 64 * 1024;
    let file = tokio::fs::File::from_std(std::fs::File::open(path)?);
    let stream =
        futures_util::stream::try_unfold((file, progress), |(mut file, progress)| async move {
            progress.touch();
            let mut buf = vec![0u8; CHUNK];
            let n = file.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(None);
            }
            buf.truncate(n);
            Ok(Some((Bytes::from(buf), (file, progress))))
        });
    Ok(reqwest::Body::wrap_stream(stream))
}

/// A request body of bytes in memory that touches `progress` when taken.
pub(crate) fn tracked_bytes(bytes: Vec<u8>, progress: Progress) -> reqwest::Body {
    let stream = futures_util::stream::once(async move {
        progress.touch();
        Ok::<_, std::io::Error>(Bytes::from(bytes))
    });
    reqwest::Body::wrap_stream(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stall_timeouts_parse() {
        assert_eq!(parse_stall_timeout("30"), Some(Duration::from_secs(30)));
        assert_eq!(parse_stall_timeout("2s"), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_stall_timeout("2.5"),
            Some(Duration::from_millis(2500))
        );
        assert_eq!(
            parse_stall_timeout("500ms"),
            Some(Duration::from_millis(500))
        );
        assert_eq!(parse_stall_timeout("1m"), Some(Duration::from_secs(60)));
        for bad in ["", "0", "-1", "abc", "5h", "1e9"] {
            assert_eq!(parse_stall_timeout(bad), None, "{bad}");
        }
    }

    #[test]
    fn guard_gives_up_only_without_progress() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let stall = Duration::from_millis(300);
        let progress = Progress::new();
        let moving = {
            let progress = progress.clone();
            async move {
                for _ in 0..8 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    progress.touch();
                }
            }
        };
        assert!(runtime.block_on(guard(moving, &progress, stall)).is_ok());
        let stuck = async { tokio::time::sleep(Duration::from_secs(60)).await };
        let started = std::time::Instant::now();
        assert!(
            runtime
                .block_on(guard(stuck, &Progress::new(), stall))
                .is_err()
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
