//! `cdcgan serve`: a small web server around a trained generator.
//!
//! One page (`page.html`, compiled into the binary) and the API it uses:
//!
//! ```text
//! GET /                                    the page
//! GET /api/digits?text=2026&seed=7         PNG: the digits in one row
//! GET /api/grid?seed=7                     PNG: the 10x10 class grid
//! GET /api/class?label=cat&seed=7          PNG: 10 samples of one class (a name or an index)
//! GET /api/morph?from=3&to=8&steps=16      GIF: class morph (&latent=1: walk the noise)
//! GET /api/info                            JSON: the run's config and latest evaluation
//! GET /api/live?since=N                    JSON: where training stands, metrics rows from N on (thinned)
//! GET /api/epoch-grid?epoch=N              PNG: samples/epoch_NNN.png as training wrote it
//! GET /healthz                             JSON: {"status":"ok"}
//! ```
//!
//! The server follows the run: a new checkpoint is loaded as it lands, so a
//! run that is training can be watched (`live`), from `cdcgan serve --run R`
//! beside the trainer or from `cdcgan train --serve` inside it.
//! Bad parameters get HTTP 400 with `{"error": "..."}` before any work starts.
//! Bound to a loopback address, the server answers only requests whose `Host`
//! names this machine (localhost, 127.0.0.1, `[::1]`): a web page elsewhere that
//! rebinds its own name to 127.0.0.1 (DNS rebinding) gets 421, not the API.
//! Generation runs on the blocking pool, at most `max_concurrent` requests at a
//! time; the rest wait their turn (up to `QUEUE_WAIT` (20 s), then 503).
//! Connections (`connections`): a client has `--header-timeout` seconds
//! (default 10) to send a request's headers, on a new connection or an idle
//! kept-alive one, or it is closed; at most `--max-connections` are open at
//! once (default: half the open-file limit, at most 1,024), the excess gets
//! a quick 503 and is closed; a request target over 16 KiB gets 414 and
//! headers over 32 KiB get 431, as JSON like every other error.

mod connections;
mod history;
mod live;
mod params;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{Next, from_fn};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::sync::Semaphore;

use live::Current;
use params::Params;
pub use params::{ApiError, MAX_DIGITS, MAX_STEPS};

use crate::run::RunDir;
use crate::sample::Sampler;
use crate::sample::animation::{Morph, default_morph, morph_gif, morph_images};
use crate::sample::image::grid_png;

/// The page, compiled in: no build step, no files beside the binary.
const PAGE: &str = include_str!("page.html");

/// How long a request waits for a generation slot before it gets 503.
const QUEUE_WAIT: Duration = Duration::from_secs(20);

/// What `serve` needs to start.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The run directory whose generator answers (its EMA when it has one).
    pub run: PathBuf,
    /// Address to listen on (port 0: any free port, given to `on_ready`).
    pub addr: SocketAddr,
    /// Generations running at once; further requests wait their turn.
    pub max_concurrent: usize,
    /// Seconds a client has to send a request's headers (on a new or an idle
    /// kept-alive connection), or to take any bytes of an answer, before its
    /// connection is closed.
    pub header_timeout: u64,
    /// Connections open at once; more get 503 (`None`: half the open-file
    /// limit, at most 1024).
    pub max_connections: Option<usize>,
    /// The run is trained by this process (`train --serve`): serve it before
    /// its first checkpoint, even before its folder exists.
    pub training_here: bool,
}

/// The state every request shares.
struct App {
    run: RunDir,
    current: Arc<Current>,
    slots: Arc<Semaphore>,
    max_concurrent: usize,
}

type QueryResult = Result<Query<HashMap<String, String>>, QueryRejection>;

/// Loads the run's generator and serves until Ctrl-C; `on_ready` gets the bound
/// address (useful with port 0).
pub fn serve(options: &ServeOptions, on_ready: impl FnOnce(SocketAddr)) -> anyhow::Result<()> {
    let (listener, app, limits) = prepare(options)?;
    on_ready(listener.local_addr()?);
    run(listener, app, limits, options.addr, 2, async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

/// A server running on its own threads beside other work (`train --serve`).
pub struct Background {
    /// The address it listens on.
    pub addr: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    thread: std::thread::JoinHandle<anyhow::Result<()>>,
}

impl Background {
    /// Stops accepting, lets open requests finish, and waits for the thread.
    pub fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        self.thread
            .join()
            .map_err(|_| anyhow::anyhow!("the page's server thread panicked"))?
    }
}

/// Starts serving on a thread of its own; the address is bound (or refused)
/// before this returns.
pub fn spawn(options: &ServeOptions) -> anyhow::Result<Background> {
    let (listener, app, limits) = prepare(options)?;
    let addr = listener.local_addr()?;
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let asked = options.addr;
    let thread = std::thread::Builder::new()
        .name("cdcgan-serve".into())
        .spawn(move || {
            // One worker: the training threads keep the cores.
            run(listener, app, limits, asked, 1, async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            })
        })
        .context("cannot start the page's server thread")?;
    Ok(Background { addr, stop, thread })
}

/// Checks the options, binds the address and loads the run's generator.
fn prepare(
    options: &ServeOptions,
) -> anyhow::Result<(std::net::TcpListener, Arc<App>, connections::Limits)> {
    anyhow::ensure!(
        (1..=64).contains(&options.max_concurrent),
        "--max-concurrent must be in 1..=64 (got {})",
        options.max_concurrent
    );
    anyhow::ensure!(
        (1..=600).contains(&options.header_timeout),
        "--header-timeout must be in 1..=600 seconds (got {})",
        options.header_timeout
    );
    let max_connections = options
        .max_connections
        .unwrap_or_else(connections::default_max_connections);
    anyhow::ensure!(
        (1..=65_536).contains(&max_connections),
        "--max-connections must be in 1..=65536 (got {max_connections})"
    );
    let limits = connections::Limits {
        header_timeout: Duration::from_secs(options.header_timeout),
        max_connections,
    };
    let run = RunDir::new(&options.run);
    // A run that is training may not have its first checkpoint yet.
    let starting = options.training_here || (run.config().is_file() && run.trainer().is_some());
    if !starting {
        run.ensure_trained()?;
    }
    let current = Arc::new(Current::new(run.clone())?);
    // `train --serve ADDR` or `serve --addr ADDR`: the flag the user gave.
    let flag = match options.training_here {
        true => "--serve",
        false => "--addr",
    };
    let listener = std::net::TcpListener::bind(options.addr).with_context(|| {
        format!(
            "{flag} {}: cannot listen there; choose another address or port with {flag} ADDR",
            options.addr
        )
    })?;
    listener.set_nonblocking(true)?;
    let app = Arc::new(App {
        run,
        current,
        slots: Arc::new(Semaphore::new(options.max_concurrent)),
        max_concurrent: options.max_concurrent,
    });
    Ok((listener, app, limits))
}

/// Serves `app` on `listener` with `workers` threads until `shutdown` completes.
fn run(
    listener: std::net::TcpListener,
    app: Arc<App>,
    limits: connections::Limits,
    asked: SocketAddr,
    workers: usize,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        tokio::spawn(live::follow(app.current.clone()));
        let mut routes = router(app);
        if asked.ip().is_loopback() {
            routes = routes.layer(from_fn(only_local_hosts));
        }
        routes = routes.layer(from_fn(connections::bounded_requests));
        connections::serve_connections(listener, routes, limits, shutdown).await;
        Ok(())
    })
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/api/info", get(info))
        .route("/api/live", get(live_status))
        .route("/api/epoch-grid", get(epoch_grid))
        .route("/api/digits", get(digits))
        .route("/api/grid", get(grid))
        .route("/api/morph", get(morph))
        .route("/api/class", get(class_row))
        .fallback(|| async {
            ApiError {
                status: StatusCode::NOT_FOUND,
                message: "no such page; see /api/info, /api/digits, /api/grid, /api/morph".into(),
            }
        })
        .method_not_allowed_fallback(|| async {
            ApiError {
                status: StatusCode::METHOD_NOT_ALLOWED,
                message: "only GET is served here".into(),
            }
        })
        .with_state(app)
}

/// Whether a `Host` header value names the loopback interface: `localhost`,
/// a loopback IP, either with or without a port.
fn loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        // [::1] or [::1]:8080
        Some(rest) => match rest.split_once(']') {
            Some((ip, port)) if port.is_empty() || port.starts_with(':') => ip,
            _ => return false,
        },
        None => host.split_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Refuses requests whose `Host` is not this machine (see the module doc).
async fn only_local_hosts(request: Request, next: Next) -> Response {
    let host = request.headers().get(header::HOST);
    if let Some(host) = host
        && !host.to_str().is_ok_and(loopback_host)
    {
        return ApiError {
            status: StatusCode::MISDIRECTED_REQUEST,
            message: format!(
                "Host {:?} is not this machine: a server on a loopback address answers \
                 only localhost, 127.0.0.1 or [::1] (serve --addr or train --serve \
                 0.0.0.0:PORT to answer others)",
                String::from_utf8_lossy(host.as_bytes())
                    .chars()
                    .take(80)
                    .collect::<String>()
            ),
        }
        .into_response();
    }
    next.run(request).await
}

/// The query map, or a JSON 400 when it cannot be decoded.
fn query(q: QueryResult) -> Result<HashMap<String, String>, ApiError> {
    q.map(|Query(q)| q)
        .map_err(|e| ApiError::bad_request(format!("unreadable query: {e}")))
}

/// Runs one generation job with `sampler` on the blocking pool once a slot is free.
async fn generate(
    app: &App,
    sampler: Arc<Sampler>,
    what: String,
    job: impl FnOnce(&Sampler) -> anyhow::Result<Vec<u8>> + Send + 'static,
) -> Result<Vec<u8>, ApiError> {
    let started = Instant::now();
    let slot = tokio::time::timeout(QUEUE_WAIT, app.slots.clone().acquire_owned())
        .await
        .map_err(|_| ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "busy: too many generations queued; try again shortly".into(),
        })?
        .expect("the semaphore is never closed");
    // The slot travels with the job: a client that hangs up frees it only
    // when the generation it started has finished.
    let bytes = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        job(&sampler)
    })
    .await
    .map_err(|e| internal(anyhow::anyhow!("generation task failed: {e}")))?
    .map_err(internal)?;
    tracing::info!(%what, ms = started.elapsed().as_millis() as u64, "generated");
    Ok(bytes)
}

fn internal(e: anyhow::Error) -> ApiError {
    tracing::error!("{e:#}");
    ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: format!("{e:#}"),
    }
}

fn image(content_type: &'static str, bytes: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store"),
        ],
        bytes,
    )
        .into_response()
}

async fn digits(State(app): State<Arc<App>>, q: QueryResult) -> Result<Response, ApiError> {
    let q = query(q)?;
    let p = Params::new(&q);
    let sampler = app.current.sampler()?;
    let labels = p.digits(sampler.class_names())?;
    let seed = p.seed()?;
    let what = format!("digits {} (seed {seed})", labels.len());
    let png = generate(&app, sampler, what, move |s| {
        grid_png(&s.digits(&labels, seed)?, s.image(), 1, labels.len())
    })
    .await?;
    Ok(image("image/png", png))
}

/// Samples of one class in a row.
const CLASS_ROW: usize = 10;

async fn class_row(State(app): State<Arc<App>>, q: QueryResult) -> Result<Response, ApiError> {
    let q = query(q)?;
    let p = Params::new(&q);
    let name = q
        .get("label")
        .ok_or_else(|| ApiError::bad_request("label: missing; ask for a class like ?label=7"))?;
    if name.len() > 1024 {
        return Err(ApiError::bad_request("label: longer than any class name"));
    }
    let sampler = app.current.sampler()?;
    let label = sampler
        .resolve_class(name, "label:")
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let seed = p.seed()?;
    let what = format!("class {label} (seed {seed})");
    let png = generate(&app, sampler, what, move |s| {
        grid_png(
            &s.digits(&[label; CLASS_ROW], seed)?,
            s.image(),
            1,
            CLASS_ROW,
        )
    })
    .await?;
    Ok(image("image/png", png))
}

async fn grid(State(app): State<Arc<App>>, q: QueryResult) -> Result<Response, ApiError> {
    let q = query(q)?;
    let seed = Params::new(&q).seed()?;
    let sampler = app.current.sampler()?;
    let (rows, columns) = sampler.grid_shape();
    let png = generate(&app, sampler, format!("grid (seed {seed})"), move |s| {
        grid_png(&s.seeded_grid(seed)?, s.image(), rows, columns)
    })
    .await?;
    Ok(image("image/png", png))
}

async fn morph(State(app): State<Arc<App>>, q: QueryResult) -> Result<Response, ApiError> {
    let q = query(q)?;
    let p = Params::new(&q);
    let sampler = app.current.sampler()?;
    let names = sampler.class_names();
    let (from, to) = default_morph(names.len());
    let (from, to) = (p.class("from", from, names)?, p.class("to", to, names)?);
    let (steps, seed) = (p.steps()?, p.seed()?);
    let morph = match p.switch("latent")? {
        true => Morph::Latent { class: from },
        false => Morph::Class { from, to },
    };
    let what = format!("morph {morph:?}, {steps} steps (seed {seed})");
    let gif = generate(&app, sampler, what, move |s| {
        morph_gif(&morph_images(s, morph, steps, seed)?, s.image())
    })
    .await?;
    Ok(image("image/gif", gif))
}

/// The run's config, its latest full evaluation (eval.json) and the API's limits.
async fn info(State(app): State<Arc<App>>) -> Result<Json<serde_json::Value>, ApiError> {
    let read = |path: PathBuf| -> Option<serde_json::Value> {
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    };
    let generator = app.run.sampling_generator();
    let sampler = app.current.sampler().ok();
    let sampler = sampler.as_deref();
    Ok(Json(serde_json::json!({
        "run": app.run.root.display().to_string(),
        "generator": generator.file_name().map(|n| n.to_string_lossy().to_string()),
        "classes": sampler.map(Sampler::num_classes),
        "class_names": sampler.map(Sampler::class_names),
        "latent_dim": sampler.map(Sampler::latent_dim),
        "config": read(app.run.config()),
        "evaluation": read(app.run.root.join("eval.json")),
        "limits": {
            "max_digits": MAX_DIGITS,
            "max_steps": MAX_STEPS,
            "max_concurrent": app.max_concurrent,
        },
    })))
}

/// Where training stands, with the metrics rows from `since` on.
async fn live_status(State(app): State<Arc<App>>, q: QueryResult) -> Result<Response, ApiError> {
    let q = query(q)?;
    let since = Params::new(&q).count("since", usize::MAX)?;
    let app = app.clone();
    let body = tokio::task::spawn_blocking(move || live::live(&app.run, &app.current, since))
        .await
        .map_err(|e| internal(anyhow::anyhow!("reading the run failed: {e}")))?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

/// An epoch's class grid as training wrote it.
async fn epoch_grid(State(app): State<Arc<App>>, q: QueryResult) -> Result<Response, ApiError> {
    let q = query(q)?;
    let epoch = Params::new(&q).count("epoch", 1_000_000)?;
    let path = app.run.epoch_grid(epoch);
    // A grid as training wrote it: a PNG file, never what a link points at.
    let read = tokio::task::spawn_blocking(move || {
        live::regular_file(&path)
            .then(|| std::fs::read(&path).ok())
            .flatten()
            .filter(|png| png.starts_with(b"\x89PNG\r\n\x1a\n"))
    })
    .await;
    match read {
        Ok(Some(png)) => Ok(image("image/png", png)),
        _ => Err(ApiError {
            status: StatusCode::NOT_FOUND,
            message: format!("epoch: no grid for epoch {epoch} (yet)"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::loopback_host;

    #[test]
    fn only_loopback_names_pass_the_host_check() {
        for ok in [
            "localhost",
            "LOCALHOST:8080",
            "127.0.0.1",
            "127.0.0.1:8080",
            "127.8.9.1:1",
            "[::1]",
            "[::1]:8080",
        ] {
            assert!(loopback_host(ok), "{ok} should pass");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "10.0.0.1:8080",
            "[::2]:8080",
            "[::1]x",
            "",
        ] {
            assert!(!loopback_host(bad), "{bad} should be refused");
        }
    }
}
