//! `sundae serve`: a local web page to generate and inpaint with one generator bundle, watching the
//! denoising live. One model in memory, one worker (`jobs`), requests queued fairly; the page and its
//! script are compiled into the binary (`page.html`), and events stream over SSE.

pub mod jobs;
pub mod preview;

use crate::generate::{Generator, SamplerRequest};
use anyhow::{Context, Result};
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use jobs::{Queue, Request, Work, Worker};
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::UnboundedReceiverStream;

const PAGE: &str = include_str!("page.html");

/// What one request may ask for at most: a bound on the memory and time any one client takes.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Limits {
    pub count: usize,
    pub steps: usize,
    /// Bytes of a request body (an upload and its mask, base64).
    pub upload: usize,
    /// Pixels of an uploaded image.
    pub pixels: u64,
    /// Jobs waiting at once.
    pub queue: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            count: 64,
            steps: 500,
            upload: 8 << 20,
            pixels: 1024 * 1024,
            queue: 64,
        }
    }
}

/// Answers 413 as soon as a request's declared length is over the limit, before its body is read,
/// so the client hears why instead of a connection closed mid-upload.
async fn refuse_declared_oversize(
    State(limit): State<usize>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    match declared {
        Some(length) if length > limit => Refusal(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the request is {:.1} MiB, over the {:.0} MiB upload limit: use a smaller image",
                length as f64 / (1 << 20) as f64,
                limit as f64 / (1 << 20) as f64
            ),
        )
        .into_response(),
        _ => next.run(request).await,
    }
}

pub struct ServeOptions {
    pub model_dir: PathBuf,
    pub host: String,
    pub port: u16,
    pub device: burn::tensor::Device,
    pub limits: Limits,
}

struct AppState {
    queue: Arc<Queue>,
    model_dir: PathBuf,
    info: Info,
    limits: Limits,
}

/// What the page learns about the model first.
#[derive(Clone, Serialize)]
struct Info {
    model: String,
    resolution: usize,
    defaults: Defaults,
    labels: crate::data::labels::LabelSets,
    limits: Limits,
}

#[derive(Clone, Serialize)]
struct Defaults {
    steps: usize,
    temperature: String,
    proportion: String,
    /// Label sets whose menu starts at "(random per image)" when generating, as `sample` draws them.
    random_labels: Vec<String>,
}

/// A generate or inpaint request as the page sends it (JSON); unknown fields are refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GenerateBody {
    #[serde(default = "default_count")]
    count: usize,
    steps: Option<usize>,
    temperature: Option<String>,
    proportion: Option<String>,
    top_k: Option<usize>,
    #[serde(default)]
    seed: u64,
    #[serde(default)]
    labels: Vec<String>,
    #[serde(default)]
    random_labels: Vec<String>,
    #[serde(default)]
    guidance: f64,
    /// Inpainting only: the image and the mask (white = keep), PNG as base64 or a data URL.
    image: Option<String>,
    mask: Option<String>,
    #[serde(default = "yes")]
    paste: bool,
    #[serde(default)]
    resize: bool,
}

fn default_count() -> usize {
    4
}

fn yes() -> bool {
    true
}

/// A refusal: the status and one line saying why (the page shows it).
struct Refusal(StatusCode, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

fn bad(message: impl Into<String>) -> Refusal {
    Refusal(StatusCode::BAD_REQUEST, message.into())
}

/// Loads the bundle, draws its code patches, starts the worker and serves until Ctrl-C.
pub fn serve(options: ServeOptions) -> Result<()> {
    let generator = Generator::load(&options.model_dir, &options.device)?;
    let defaults = crate::bundle::read_sampling_defaults(&options.model_dir)?;
    let info = Info {
        model: options.model_dir.display().to_string(),
        resolution: generator.vq_config.resolution,
        defaults: Defaults {
            steps: defaults
                .steps
                .unwrap_or(crate::sundae::sample::DEFAULT_STEPS),
            temperature: defaults.temperature.unwrap_or_else(|| {
                let t = crate::sundae::sample::DEFAULT_TEMPERATURE;
                format!("{}:{}", t.start, t.end)
            }),
            proportion: defaults
                .proportion
                .unwrap_or_else(|| format!("{}", crate::sundae::sample::DEFAULT_PROPORTION.start)),
            random_labels: defaults.random_labels.unwrap_or_default(),
        },
        labels: crate::data::labels::LabelSets::read(&options.model_dir)?,
        limits: options.limits,
    };
    let patches = preview::Patches::new(&generator, &options.device);
    let queue = Arc::new(Queue::default());
    let worker = Worker {
        model_dir: options.model_dir.clone(),
        generator,
        patches,
        device: options.device.clone(),
    };
    let worker_queue = queue.clone();
    std::thread::Builder::new()
        .name("sundae-worker".into())
        .spawn(move || worker.run(worker_queue))
        .context("cannot start the worker thread")?;
    let state = Arc::new(AppState {
        queue,
        model_dir: options.model_dir.clone(),
        info,
        limits: options.limits,
    });
    let app = Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/api/info", get(info_route))
        .route("/api/generate", post(generate_route))
        .route("/api/inpaint", post(inpaint_route))
        .route("/api/jobs/{id}/events", get(events_route))
        .route("/api/jobs/{id}/cancel", post(cancel_route))
        .route("/api/jobs/{id}/tokens.npy", get(tokens_route))
        .route("/api/jobs/{id}/images/{index}", get(image_route))
        .layer(DefaultBodyLimit::max(options.limits.upload))
        .layer(axum::middleware::from_fn_with_state(
            options.limits.upload,
            refuse_declared_oversize,
        ))
        .with_state(state);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let address = format!("{}:{}", options.host, options.port);
        let listener = tokio::net::TcpListener::bind(&address)
            .await
            .with_context(|| format!("cannot listen on {address}"))?;
        let bound = listener.local_addr()?;
        println!(
            "sundae serve: http://{bound}/  (model {}; Ctrl-C stops)",
            options.model_dir.display()
        );
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
                eprintln!("stopping");
            })
            .await
            .context("the server stopped")
    })
}

async fn info_route(State(state): State<Arc<AppState>>) -> Json<Info> {
    Json(state.info.clone())
}

/// Checks a body against the limits and resolves its sampler settings against the bundle.
fn request_from(state: &AppState, body: &GenerateBody, work: Work) -> Result<Request, Refusal> {
    let limits = &state.limits;
    if body.count == 0 || body.count > limits.count {
        return Err(bad(format!("count must be 1 to {}", limits.count)));
    }
    if body.steps.is_some_and(|s| s > limits.steps) {
        return Err(bad(format!("steps must be at most {}", limits.steps)));
    }
    if state.queue.waiting() >= limits.queue {
        return Err(Refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{} jobs are waiting already; try again soon", limits.queue),
        ));
    }
    let sampler = SamplerRequest {
        steps: body.steps,
        temperature: body.temperature.clone(),
        proportion: body.proportion.clone(),
        top_k: body.top_k,
        min_steps: crate::sundae::sample::DEFAULT_MIN_STEPS,
        early_stop: true,
        exclude_noise: true,
        seed: body.seed,
        labels: body.labels.clone(),
        random_labels: body.random_labels.clone(),
        // The page's selects say what to draw at random; its command line says so too.
        bundle_random_labels: false,
        guidance: body.guidance,
    };
    let settings = sampler
        .resolve(&state.model_dir)
        .map_err(|e| bad(format!("{e:#}")))?;
    Ok(Request {
        work,
        count: body.count,
        sampler,
        settings,
    })
}

#[derive(Serialize)]
struct Submitted {
    job: u64,
    position: usize,
    events: String,
}

fn submit(state: &AppState, request: Request) -> Json<Submitted> {
    let (job, position) = state.queue.submit(request);
    Json(Submitted {
        job: job.id,
        position,
        events: format!("/api/jobs/{}/events", job.id),
    })
}

async fn generate_route(
    State(state): State<Arc<AppState>>,
    Json(body): Json<GenerateBody>,
) -> Result<Json<Submitted>, Refusal> {
    if body.image.is_some() || body.mask.is_some() {
        return Err(bad("an image or mask belongs to /api/inpaint"));
    }
    let request = request_from(&state, &body, Work::Sample)?;
    Ok(submit(&state, request))
}

/// PNG bytes from base64 (a data URL's prefix allowed), checked to be an image within the limits.
fn png_from(text: &str, what: &str, limits: &Limits) -> Result<(Vec<u8>, (u32, u32)), Refusal> {
    let payload = text.split_once("base64,").map_or(text, |(_, rest)| rest);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(payload.trim())
        .map_err(|_| bad(format!("the {what} is not base64")))?;
    let image = image::load_from_memory(&bytes)
        .map_err(|e| bad(format!("the {what} is not a readable image: {e}")))?;
    let (w, h) = (image.width(), image.height());
    if w as u64 * h as u64 > limits.pixels {
        return Err(bad(format!(
            "the {what} is {w}x{h}; at most {} pixels are accepted",
            limits.pixels
        )));
    }
    Ok((bytes, (w, h)))
}

async fn inpaint_route(
    State(state): State<Arc<AppState>>,
    Json(body): Json<GenerateBody>,
) -> Result<Json<Submitted>, Refusal> {
    let (Some(image), Some(mask)) = (&body.image, &body.mask) else {
        return Err(bad("an inpainting needs an image and a mask"));
    };
    let (image, size) = png_from(image, "image", &state.limits)?;
    let (mask, mask_size) = png_from(mask, "mask", &state.limits)?;
    if size != mask_size && !body.resize {
        return Err(bad(format!(
            "the mask is {}x{} but the image is {}x{}",
            mask_size.0, mask_size.1, size.0, size.1
        )));
    }
    let work = Work::Inpaint {
        image,
        mask,
        paste: body.paste,
        resize: body.resize,
    };
    let request = request_from(&state, &body, work)?;
    Ok(submit(&state, request))
}

fn job_of(state: &AppState, id: u64) -> Result<Arc<jobs::Job>, Refusal> {
    state
        .queue
        .get(id)
        .ok_or_else(|| Refusal(StatusCode::NOT_FOUND, format!("no job {id}")))
}

async fn events_route(
    State(state): State<Arc<AppState>>,
    UrlPath(id): UrlPath<u64>,
) -> Result<impl IntoResponse, Refusal> {
    let job = job_of(&state, id)?;
    let receiver = job.receiver.lock().unwrap().take().ok_or_else(|| {
        Refusal(
            StatusCode::CONFLICT,
            format!("job {id}'s events are already being read"),
        )
    })?;
    let stream = UnboundedReceiverStream::new(receiver).map(|event| {
        let name = serde_json::to_value(&event)
            .ok()
            .and_then(|v| v["event"].as_str().map(str::to_string))
            .unwrap_or_default();
        Ok::<_, Infallible>(
            SseEvent::default()
                .event(name)
                .json_data(&event)
                .unwrap_or_default(),
        )
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

async fn cancel_route(
    State(state): State<Arc<AppState>>,
    UrlPath(id): UrlPath<u64>,
) -> Result<Json<serde_json::Value>, Refusal> {
    job_of(&state, id)?.cancel();
    Ok(Json(serde_json::json!({ "cancelled": id })))
}

async fn tokens_route(
    State(state): State<Arc<AppState>>,
    UrlPath(id): UrlPath<u64>,
) -> Result<Response, Refusal> {
    let job = job_of(&state, id)?;
    let finished = job.finished.lock().unwrap();
    let finished = finished
        .as_ref()
        .ok_or_else(|| Refusal(StatusCode::NOT_FOUND, format!("job {id} has not finished")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"sundae-{id}-tokens.npy\""),
            ),
        ],
        finished.tokens_npy.clone(),
    )
        .into_response())
}

async fn image_route(
    State(state): State<Arc<AppState>>,
    UrlPath((id, index)): UrlPath<(u64, String)>,
) -> Result<Response, Refusal> {
    let job = job_of(&state, id)?;
    let finished = job.finished.lock().unwrap();
    let finished = finished
        .as_ref()
        .ok_or_else(|| Refusal(StatusCode::NOT_FOUND, format!("job {id} has not finished")))?;
    let i: usize = index
        .trim_end_matches(".png")
        .parse()
        .map_err(|_| bad(format!("'{index}' is no image number")))?;
    let png = finished
        .pngs
        .get(i)
        .ok_or_else(|| Refusal(StatusCode::NOT_FOUND, format!("job {id} has no image {i}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/png".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"sundae-{id}-{i}.png\""),
            ),
        ],
        png.clone(),
    )
        .into_response())
}
