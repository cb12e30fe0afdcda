//! The server's work: a fair queue of generation jobs and the one worker thread that owns the model
//! and runs them in turn, streaming each job's events to whoever listens. A job whose listener has
//! gone (the page closed, the client disconnected) is cancelled at its next event.

use super::preview::{Patches, data_url};
use crate::generate::{
    Cancelled, Generation, Generator, InpaintInput, Job as GenerateJob, Outputs, SamplerRequest,
    StepView,
};
use crate::sundae::sample::SampleSettings;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// The batch `sundae sample` denoises at once: the same batch gives the same images for a seed.
pub const BATCH: usize = 16;
/// Finished jobs kept for downloads; older ones are forgotten, so memory stays flat.
const KEPT: usize = 32;

/// What a job makes.
pub enum Work {
    Sample,
    /// An inpainting of an uploaded image (PNG bytes) under a mask of the same size.
    Inpaint {
        image: Vec<u8>,
        mask: Vec<u8>,
        paste: bool,
        resize: bool,
    },
}

/// One request, checked: the images to make, how, and the sampler settings it resolved to.
pub struct Request {
    pub work: Work,
    pub count: usize,
    pub sampler: SamplerRequest,
    pub settings: SampleSettings,
}

/// What the page hears about a job, in order.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Waiting: this many jobs are ahead (0 = next).
    Queued {
        position: usize,
    },
    Started {
        count: usize,
        steps: usize,
    },
    /// After a sampler step of the batch starting at image `first`: its images' current state
    /// (tiled from each code's patch) and which have stopped changing.
    Step {
        step: usize,
        steps: usize,
        first: usize,
        images: Vec<String>,
        frozen: Vec<bool>,
    },
    /// The decoded images, the time taken, and the command line that makes the same pixels.
    Done {
        images: Vec<String>,
        seconds: f64,
        command: String,
        tokens: String,
    },
    Error {
        message: String,
    },
    Cancelled,
}

/// A finished job's downloads.
pub struct Finished {
    pub pngs: Vec<Vec<u8>>,
    pub tokens_npy: Vec<u8>,
}

pub struct Job {
    pub id: u64,
    request: Request,
    sender: UnboundedSender<Event>,
    /// Taken by the one event stream that listens.
    pub receiver: Mutex<Option<UnboundedReceiver<Event>>>,
    cancelled: AtomicBool,
    pub finished: Mutex<Option<Finished>>,
}

impl Job {
    /// Sends an event; a listener that has gone cancels the job.
    fn send(&self, event: Event) -> bool {
        let delivered = self.sender.send(event).is_ok();
        if !delivered {
            self.cancelled.store(true, Ordering::Relaxed);
        }
        delivered
    }

    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }
}

#[derive(Default)]
pub struct Queue {
    waiting: Mutex<VecDeque<Arc<Job>>>,
    ready: Condvar,
    jobs: Mutex<HashMap<u64, Arc<Job>>>,
    /// Finished job ids, oldest first.
    done: Mutex<VecDeque<u64>>,
    next_id: AtomicU64,
}

impl Queue {
    /// Queues a request at the back; its first event says how many wait before it.
    pub fn submit(&self, request: Request) -> (Arc<Job>, usize) {
        let (sender, receiver) = unbounded_channel();
        let job = Arc::new(Job {
            id: self.next_id.fetch_add(1, Ordering::Relaxed) + 1,
            request,
            sender,
            receiver: Mutex::new(Some(receiver)),
            cancelled: AtomicBool::new(false),
            finished: Mutex::new(None),
        });
        self.jobs.lock().unwrap().insert(job.id, job.clone());
        let mut waiting = self.waiting.lock().unwrap();
        let position = waiting.len();
        job.send(Event::Queued { position });
        waiting.push_back(job.clone());
        self.ready.notify_one();
        (job, position)
    }

    pub fn get(&self, id: u64) -> Option<Arc<Job>> {
        self.jobs.lock().unwrap().get(&id).cloned()
    }

    /// Jobs waiting now.
    pub fn waiting(&self) -> usize {
        self.waiting.lock().unwrap().len()
    }

    /// The next job, once there is one; every job still waiting hears its new position.
    fn next(&self) -> Arc<Job> {
        let mut waiting = self.waiting.lock().unwrap();
        loop {
            if let Some(job) = waiting.pop_front() {
                for (position, other) in waiting.iter().enumerate() {
                    other.send(Event::Queued { position });
                }
                return job;
            }
            waiting = self.ready.wait(waiting).unwrap();
        }
    }

    /// Records a job as finished and forgets the oldest beyond `KEPT`.
    fn retire(&self, id: u64) {
        let mut done = self.done.lock().unwrap();
        done.push_back(id);
        while done.len() > KEPT {
            if let Some(old) = done.pop_front() {
                self.jobs.lock().unwrap().remove(&old);
            }
        }
    }
}

/// What the worker needs: the model in memory, where it came from, and how to draw previews.
pub struct Worker {
    pub model_dir: PathBuf,
    pub generator: Generator,
    pub patches: Patches,
    pub device: burn::tensor::Device,
}

impl Worker {
    /// Runs jobs one at a time, for ever.
    pub fn run(self, queue: Arc<Queue>) {
        loop {
            let job = queue.next();
            if !job.is_cancelled() {
                let started = Instant::now();
                let event = match self.run_job(&job) {
                    Ok(Some(finished)) => {
                        let done = Event::Done {
                            images: finished.0,
                            seconds: started.elapsed().as_secs_f64(),
                            command: command_line(&self.model_dir, &job.request),
                            tokens: format!("/api/jobs/{}/tokens.npy", job.id),
                        };
                        *job.finished.lock().unwrap() = Some(finished.1);
                        done
                    }
                    Ok(None) => Event::Cancelled,
                    Err(error) => Event::Error {
                        message: format!("{error:#}"),
                    },
                };
                job.send(event);
            } else {
                job.send(Event::Cancelled);
            }
            queue.retire(job.id);
        }
    }

    /// One job; None when it was cancelled on the way.
    fn run_job(&self, job: &Job) -> anyhow::Result<Option<(Vec<String>, Finished)>> {
        let r = &job.request;
        if !job.send(Event::Started {
            count: r.count,
            steps: r.settings.steps,
        }) {
            return Ok(None);
        }
        let spec = GenerateJob {
            model_dir: &self.model_dir,
            preloaded: Some(&self.generator),
            count: r.count,
            settings: r.settings.clone(),
            batch_size: BATCH,
            size: (None, None),
            render_size: None,
            outputs: Outputs::in_memory(),
        };
        let mut previous: HashMap<usize, Vec<i64>> = HashMap::new();
        let settings = &r.settings;
        let mut observe = |view: StepView| {
            if job.is_cancelled() {
                return ControlFlow::Break(());
            }
            let grids = view.grids;
            let n = grids.per_grid();
            let frozen = (0..grids.batch())
                .map(|i| {
                    let now = &grids.values[i * n..(i + 1) * n];
                    let same = previous.get(&(view.first + i)).is_some_and(|p| p == now);
                    previous.insert(view.first + i, now.to_vec());
                    settings.early_stop && view.step >= settings.min_steps && same
                })
                .collect();
            let images = (0..grids.batch())
                .map(|i| data_url(&self.patches.draw(grids, i)))
                .collect();
            let sent = job.send(Event::Step {
                step: view.step,
                steps: view.steps,
                first: view.first,
                images,
                frozen,
            });
            if sent {
                ControlFlow::Continue(())
            } else {
                ControlFlow::Break(())
            }
        };
        let generated = match &r.work {
            Work::Sample => crate::generate::sample_live(&spec, &mut observe, &self.device),
            Work::Inpaint {
                image,
                mask,
                paste,
                resize,
            } => {
                let folder = tempfile::tempdir()?;
                let (image_path, mask_path) = (
                    folder.path().join("image.png"),
                    folder.path().join("mask.png"),
                );
                std::fs::write(&image_path, image)?;
                std::fs::write(&mask_path, mask)?;
                let input = InpaintInput {
                    image: &image_path,
                    mask: &mask_path,
                    resize: *resize,
                    paste: *paste,
                    show_input: false,
                };
                crate::generate::inpaint_live(&spec, &input, &mut observe, &self.device)
            }
        };
        let generation: Generation = match generated {
            Ok(generation) => generation,
            Err(error) if error.is::<Cancelled>() => return Ok(None),
            Err(error) => return Err(error),
        };
        let images = generation.tiles.iter().map(data_url).collect();
        let pngs = generation
            .tiles
            .iter()
            .map(|tile| {
                let mut png = Vec::new();
                image::DynamicImage::ImageRgb8(tile.clone())
                    .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
                    .map(|_| png)
            })
            .collect::<Result<_, _>>()?;
        let tokens_npy = crate::tokens::npy_bytes(&generation.tokens)?;
        Ok(Some((images, Finished { pngs, tokens_npy })))
    }
}

/// The `sundae` command that makes the same pixels: every resolved setting spelled out.
pub fn command_line(model_dir: &std::path::Path, request: &Request) -> String {
    let s = &request.settings;
    let schedule = |x: &crate::sundae::sample::Schedule| {
        if x.start == x.end {
            format!("{}", x.start)
        } else {
            format!("{}:{}", x.start, x.end)
        }
    };
    let mut parts = vec![match request.work {
        Work::Sample => "sundae sample".to_string(),
        Work::Inpaint { .. } => "sundae inpaint --image image.png --mask mask.png".to_string(),
    }];
    let same = |a: &std::path::Path, b: &std::path::Path| {
        a.canonicalize()
            .ok()
            .is_some_and(|a| b.canonicalize().ok() == Some(a))
    };
    if !same(model_dir, &crate::bundle::default_model_dir()) {
        parts.push(format!("--model {}", model_dir.display()));
    }
    parts.push(format!("-n {}", request.count));
    parts.push(format!("--steps {}", s.steps));
    parts.push(format!("--temperature {}", schedule(&s.temperature)));
    parts.push(format!("--proportion {}", schedule(&s.proportion)));
    if s.top_k > 0 {
        parts.push(format!("--top-k {}", s.top_k));
    }
    parts.push(format!("--seed {}", s.seed));
    for label in &request.sampler.labels {
        parts.push(format!("--label {label}"));
    }
    for set in &request.sampler.random_labels {
        parts.push(format!("--random-label {set}"));
    }
    let bundle_draws = crate::bundle::read_sampling_defaults(model_dir)
        .ok()
        .and_then(|d| d.random_labels)
        .is_some_and(|sets| !sets.is_empty());
    if matches!(request.work, Work::Sample)
        && request.sampler.random_labels.is_empty()
        && bundle_draws
    {
        // `sample` would otherwise draw the bundle's default label sets at random.
        parts.push("--no-random-labels".to_string());
    }
    if s.guidance != 0.0 {
        parts.push(format!("--guidance {}", s.guidance));
    }
    if let Work::Inpaint { paste, resize, .. } = request.work {
        if paste {
            parts.push("--paste".to_string());
        }
        if resize {
            parts.push("--resize".to_string());
        }
        parts.push("--out inpainted.png".to_string());
    } else {
        parts.push("--out samples.png".to_string());
    }
    parts.join(" ")
}
