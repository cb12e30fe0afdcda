//! The `sundae` command line: argument parsing and nothing else.

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use sundae::device::Precision;
use sundae::generate::{self, Outputs};
use sundae::sundae::sample::DEFAULT_MIN_STEPS;
use sundae::{bundle, commands, data, device};

#[derive(Parser)]
#[command(
    name = "sundae",
    version,
    about = "Megapixel image generation with Step-Unrolled Denoising Autoencoders",
    long_about = "Megapixel image generation with Step-Unrolled Denoising Autoencoders.\n\n\
        A VQ-GAN turns images into grids of discrete tokens and back; a SUNDAE prior over those grids\n\
        generates and inpaints. Every stage is a subcommand; `sundae <command> --help` explains each."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The first stage: import, encode, decode and reconstruct with a VQ-GAN.
    #[command(subcommand)]
    Vqgan(VqganCommand),
    /// Encode a data set into a latent data set (token-grid shards + manifest) for prior training.
    Encode {
        /// VQ-GAN bundle directory.
        #[arg(long)]
        vqgan: PathBuf,
        /// An image folder or `emoji`.
        #[arg(long)]
        data: String,
        /// Latent data set directory (created; a rerun skips finished shards).
        #[arg(long)]
        out: PathBuf,
        /// Also encode each image's mirror image.
        #[arg(long)]
        flip: bool,
        /// Also encode this many copies of each image zoomed out to 60-95 % of its size at a random
        /// place on white (the same on every run), to stretch a small set.
        #[arg(long, default_value_t = 0)]
        zooms: usize,
        /// Also encode this many copies of each image moved by up to 1/16 of its side (4 pixels at
        /// 64) along each axis, white where the move uncovers the canvas: new token grids of the same
        /// picture, since the VQ-GAN's token blocks fall elsewhere on it.
        #[arg(long, default_value_t = 0)]
        shifts: usize,
        /// Encode only every N-th shard, starting at I (I/N), to share the work between machines.
        #[arg(long)]
        shard: Option<String>,
        /// Part of the emoji sets (folders are always whole).
        #[arg(long, value_enum, default_value_t = data::Split::Train)]
        split: data::Split,
        #[command(flatten)]
        device: DeviceArg,
    },
    /// Train a SUNDAE prior on a latent data set into a run directory.
    Train {
        /// Latent data set made by `sundae encode`.
        #[arg(long)]
        latents: PathBuf,
        #[command(flatten)]
        run: RunArgs,
        /// Start a new run from this bundle's prior instead of random weights (e.g. to fine-tune it on
        /// more data); the optimiser and the learning-rate schedule start fresh.
        #[arg(long, conflicts_with = "resume")]
        init: Option<PathBuf>,
        /// The VQ-GAN that made the latents: sample grids are decoded into samples/ with it.
        #[arg(long)]
        vqgan: Option<PathBuf>,
        /// Compute device.
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Held-out figures of a generator's prior on a latent set (e.g. the validation split): the training
    /// loss per unroll step, token accuracy, and the share of the codebook the grids use.
    Evaluate {
        /// Generator bundle; the built-in emoji model when omitted.
        #[arg(long)]
        model: Option<PathBuf>,
        /// Latent data set made by `sundae encode` with the bundle's VQ-GAN.
        #[arg(long)]
        latents: PathBuf,
        /// Denoising passes scored per grid, as in training.
        #[arg(long, default_value_t = 2)]
        unroll_steps: usize,
        /// Share of grids corrupted in a random rectangle instead of scattered tokens (1 = all: a
        /// figure for inpainting, a region filled from its context)
        #[arg(long, default_value_t = 0.0)]
        block_share: f64,
        /// Also score one pass with a random rectangle of each grid replaced, as an inpainting starts:
        /// accuracy inside the blocks and on the context around them
        #[arg(long)]
        blocks: bool,
        /// Also score one pass at these fixed corruption rates (e.g. 0.1,0.5,1): accuracy on untouched
        /// and on replaced tokens, and how often the model keeps a replaced (random) token
        #[arg(long, value_delimiter = ',')]
        rates: Vec<f64>,
        #[command(flatten)]
        device: DeviceArg,
    },
    /// Generate images with a generator bundle (the built-in emoji model by default).
    Sample {
        #[command(flatten)]
        sampling: SamplingArgs,
        /// Images to generate.
        #[arg(short = 'n', default_value_t = 16)]
        count: usize,
    },
    /// Regenerate the masked region of an image, with full context from the rest.
    Inpaint {
        /// The image to complete.
        #[arg(long)]
        image: PathBuf,
        /// Same size as the image: white (255) = keep, any other colour = regenerate.
        #[arg(long)]
        mask: PathBuf,
        /// Scale an image (and mask) of another size to the canvas instead of refusing it.
        #[arg(long)]
        resize: bool,
        /// Put the original pixels back outside the mask.
        #[arg(long)]
        paste: bool,
        /// Write the grid as one row: the image, the image with the masked region grey, the variations.
        #[arg(long)]
        show_input: bool,
        #[command(flatten)]
        sampling: SamplingArgs,
        /// Variations to generate.
        #[arg(short = 'n', default_value_t = 4)]
        count: usize,
    },
    /// Join a VQ-GAN bundle and a trained prior run into one generator bundle.
    Bundle {
        /// VQ-GAN bundle directory.
        #[arg(long)]
        vqgan: PathBuf,
        /// Prior run directory (its latest checkpoint is used).
        #[arg(long)]
        prior: PathBuf,
        /// Generator bundle directory to write.
        #[arg(long)]
        out: PathBuf,
        /// Store the weights as f16 (half the size; loading converts them back to f32).
        #[arg(long)]
        half: bool,
        /// Replace outputs that exist (they are refused otherwise).
        #[arg(long)]
        force: bool,
    },
    /// Find each image's nearest data image (or mirror image of one) by PSNR: whether generated
    /// images copy their training set. A copy scores about as high as the VQ-GAN's
    /// reconstructions do (`sundae vqgan reconstruct`); a new image well below.
    Nearest {
        /// Images to look up, or folders of them (e.g. `sample --out-dir`).
        images: Vec<PathBuf>,
        /// Also look up the first N validation emoji, held out of training: the PSNR at which an
        /// emoji that is new, but drawn in the same style, meets its nearest training image.
        #[arg(long, default_value_t = 0)]
        emoji: usize,
        /// The data set to search: an image folder or `emoji`.
        #[arg(long, default_value = "emoji")]
        data: String,
        /// Part of the emoji set to search.
        #[arg(long, value_enum, default_value_t = data::Split::Train)]
        split: data::Split,
        /// Side in pixels that every image is compared at (the model's resolution).
        #[arg(long, default_value_t = 64)]
        resolution: usize,
        /// Also write a grid PNG: each image beside its nearest data image, two pairs a row.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace outputs that exist (they are refused otherwise).
        #[arg(long)]
        force: bool,
    },
    /// Compare two image sets: Frechet distance of Inception-v3 features (FID with pytorch-fid's
    /// weights) and k-NN precision and recall. SET_B is the reference: precision is the share of
    /// SET_A's images that look like SET_B's, recall the share of SET_B's variety that SET_A covers.
    #[command(
        after_help = "A set is a folder of images (recursive), a data set such as emoji:train or \
        emoji,iconify:DIR:validation, or a generator bundle with --generate N (samples drawn with the \
        sampler flags). Features of sets on disk are cached (~/.cache/sundae/features).\n\n\
        The standard FID needs pytorch-fid's weights (pt_inception-2015-12-05-6726825d.pth, which you \
        supply); scripts/fetch-feature-net.sh fetches and converts the project's own network (the \
        Inception-v3 of the nsfwjs npm package), whose figures are FID-like, not FID.\n\n\
        Example: sundae score models/emoji emoji:train --generate 1000"
    )]
    Score {
        /// The set scored: a folder, a data set (emoji:validation), or a generator bundle.
        set_a: String,
        /// The reference set, in the same forms (e.g. emoji:train).
        set_b: String,
        /// Inception-v3 weights: pytorch-fid's .pth for the standard FID, or a converted .safetensors
        /// [default: ~/.cache/sundae/nsfwjs-inception-v3.safetensors, from scripts/fetch-feature-net.sh].
        #[arg(long)]
        features: Option<PathBuf>,
        /// Feature width: 2048 (the standard), or 768, 192, 64 (earlier blocks; for sets of fewer images).
        #[arg(long, default_value_t = 2048)]
        dims: usize,
        /// Neighbours that set each image's k-NN radius for precision and recall.
        #[arg(short = 'k', default_value_t = 3)]
        k: usize,
        /// Prepare every image at this side first (shorter side resized, centre crop); folders are
        /// taken as they are and data sets rendered at 64 otherwise.
        #[arg(long)]
        resolution: Option<usize>,
        /// Score at most N images of SET_A (on disk), evenly spread through it, e.g. to compare at the
        /// count of a smaller set; SET_B is always whole.
        #[arg(long)]
        max: Option<usize>,
        /// Draw this many images from the generator bundle among the sets.
        #[arg(long)]
        generate: Option<usize>,
        /// Print the figures as one JSON line instead.
        #[arg(long)]
        json: bool,
        /// Neither read nor write the feature cache.
        #[arg(long)]
        no_cache: bool,
        #[command(flatten)]
        sampler: SamplerFlags,
        #[command(flatten)]
        device: DeviceArg,
    },
    /// Held-out (name, style) pairs of a labelled model: each held-out drawing generated from its
    /// name and style labels and compared by PSNR with the true drawing, beside the same emoji as the
    /// other styles draw it (the bar a model that learnt the name but not the style would reach).
    #[command(
        after_help = "Every pair is drawn with the same sampler flags and seed. Example: sundae pairs \
        --model runs/emoji-styles/model --data emoji,iconify:DIR --guidance 3 --out pairs.png"
    )]
    Pairs {
        /// Generator bundle with `name` and `style` label sets; the built-in emoji model when omitted.
        #[arg(long)]
        model: Option<PathBuf>,
        /// Data source whose held-out drawings make the pairs (emoji, iconify:DIR, or both joined by
        /// a comma, as the model was encoded from).
        #[arg(long, default_value = "emoji")]
        data: String,
        /// Score at most N pairs, evenly spread through them.
        #[arg(long)]
        max: Option<usize>,
        /// Also write a sheet PNG of 16 pairs: the true drawing, the generated one, then up to four
        /// other styles, one pair a row.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace the sheet if it exists (it is refused otherwise).
        #[arg(long)]
        force: bool,
        /// Print the figures as one JSON line instead.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        sampler: SamplerFlags,
        /// Compute device.
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Serve a local web page to generate and inpaint, watching the denoising live (one model in
    /// memory, requests queued; binds to localhost unless --host says otherwise).
    Serve {
        /// Generator bundle; the built-in emoji model when omitted.
        #[arg(long)]
        model: Option<PathBuf>,
        /// Port to listen on (0: any free one; the address is printed).
        #[arg(long, default_value_t = 7860)]
        port: u16,
        /// Address to bind (0.0.0.0 serves other machines too).
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Compute device.
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// List the label sets a generator knows and their values (for `--label SET=VALUE`).
    Labels {
        /// Generator bundle; the built-in emoji model when omitted.
        #[arg(long)]
        model: Option<PathBuf>,
        /// Print every value of this set, one per line.
        #[arg(long)]
        set: Option<String>,
    },
    /// Print speed and memory figures.
    #[command(subcommand)]
    Bench(BenchCommand),
}

/// Where a trainer runs and with which configuration (both trainers).
#[derive(Args)]
struct RunArgs {
    /// Training configuration: [model] and [train] (see configs/vqgan-*.toml, configs/prior-*.toml).
    #[arg(long, required_unless_present = "resume")]
    config: Option<PathBuf>,
    /// Run directory: config.toml, checkpoint/, metrics.jsonl, samples/ (held by one trainer at a time).
    #[arg(long)]
    run: PathBuf,
    /// Continue from the run directory's latest checkpoint, with the configuration it started with;
    /// with --config, one that differs only in steps, decay_steps or how often it logs, samples and
    /// checkpoints (to extend a finished run).
    #[arg(long)]
    resume: bool,
}

#[derive(Args)]
struct DeviceArg {
    /// Compute device: cpu (default), or vulkan, wgpu, cuda, metal when the build has them.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Images per forward pass (lower it if memory runs out).
    #[arg(long, default_value_t = 8, value_parser = at_least_one())]
    batch_size: usize,
}

/// How the sampler runs: shared by `sample`, `inpaint` and `score --generate`.
#[derive(Args)]
struct SamplerFlags {
    /// Denoising steps [default: the bundle's sampling.toml, else 100].
    #[arg(long, allow_negative_numbers = true)]
    steps: Option<usize>,
    /// Sampling temperature: a number, or A:B to anneal linearly from A to B [default: the bundle's
    /// sampling.toml, else 1.0:0.7].
    #[arg(long, allow_hyphen_values = true)]
    temperature: Option<String>,
    /// Share of tokens updated per step: a number, or A:B [default: the bundle's sampling.toml, else 0.5].
    #[arg(long, allow_hyphen_values = true)]
    proportion: Option<String>,
    /// Draw each token from the K most likely codes only (0 = all) [default: the bundle's
    /// sampling.toml, else 0]: cuts the long tail of unlikely codes a weak model spreads its mass over.
    #[arg(long)]
    top_k: Option<usize>,
    /// No sample freezes before this step.
    #[arg(long, default_value_t = DEFAULT_MIN_STEPS)]
    min_steps: usize,
    /// Run every step even when all samples have stopped changing.
    #[arg(long)]
    no_early_stop: bool,
    /// Let a token that still holds its random start keep that value, as the reference sampler does
    /// (by default the sampler knows it is noise and never proposes it until the token is first redrawn)
    #[arg(long)]
    keep_start_noise: bool,
    /// Random seed: the same seed gives the same images on the same device.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    seed: u64,
    /// Draw with this label, as SET=VALUE (repeatable: --label style=noto --label name=red-heart);
    /// sets not named are left out. `sundae labels` lists what a model knows.
    #[arg(long = "label", value_name = "SET=VALUE")]
    labels: Vec<String>,
    /// Draw this label set's value at random for each image, uniformly from the values the model
    /// knows, each set on its own (repeatable: --random-label style --random-label name gives a
    /// sheet of varied emoji in varied styles, now and then a pair no style's training drawing has;
    /// with --label style=noto, varied Noto emoji).
    #[arg(long = "random-label", value_name = "SET")]
    random_labels: Vec<String>,
    /// `sample`, `score --generate`: draw no label at random. Without it, a bundle whose
    /// sampling.toml lists `random_labels` (the built-in model: style and name) draws those sets per
    /// image when neither --label nor --random-label names them; with it, sets not given by --label
    /// are left out (unconditional samples).
    #[arg(long, conflicts_with = "random_labels")]
    no_random_labels: bool,
    /// Classifier-free guidance weight W with --label: logits = cond + W (cond - uncond)
    /// (0 = the plain conditional model; 1-3 follows the labels more closely, less varied).
    #[arg(long, default_value_t = 0.0)]
    guidance: f64,
}

/// `--render-size`'s help, naming the sizes the built-in model has.
fn render_size_help() -> String {
    let sizes = bundle::render_sizes(&bundle::default_model_dir())
        .map(|s| bundle::describe_sizes(&s))
        .unwrap_or_else(|_| "unknown (the built-in model is missing)".into());
    format!(
        "Draw the tokens with the bundle's decoder for this output size (per model-size canvas: with \
         --width/--height the output grows in proportion); inpainting then takes its image and mask, \
         and pastes back, at that size. The built-in model renders at {sizes}"
    )
}

/// Flags shared by `sample` and `inpaint`.
#[derive(Args)]
struct SamplingArgs {
    /// Generator bundle (VQ-GAN + prior); the built-in emoji model when omitted.
    #[arg(long)]
    model: Option<PathBuf>,
    #[command(flatten)]
    sampler: SamplerFlags,
    /// Images denoised at once (lower it if memory runs out).
    #[arg(long, default_value_t = 16, value_parser = at_least_one())]
    batch_size: usize,
    /// Canvas width in pixels (a multiple of the model's token block); the model's size by default.
    #[arg(long)]
    width: Option<usize>,
    /// Canvas height in pixels.
    #[arg(long)]
    height: Option<usize>,
    #[arg(long, value_name = "PIXELS", value_parser = at_least_one(), help = render_size_help())]
    render_size: Option<usize>,
    /// Compute device.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Output grid PNG.
    #[arg(long)]
    out: PathBuf,
    /// Also write one PNG per image into this folder.
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Write the decoded intermediate states of the first image as a strip (the paper's Figure 2).
    #[arg(long)]
    save_steps: Option<PathBuf>,
    /// Replace output files that exist (they are refused otherwise, before any work).
    #[arg(long)]
    force: bool,
    /// Also write the final token grids as an int64 .npy [B, h, w] (for `sundae vqgan decode`).
    #[arg(long)]
    tokens: Option<PathBuf>,
    /// Float precision of the prior and decoder (f16/bf16 halve memory; the sampler's draws stay f32).
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    precision: Precision,
    /// Where the built-in model lives (not a flag).
    #[arg(skip = bundle::default_model_dir())]
    default_model: PathBuf,
}

impl SamplingArgs {
    fn model_dir(&self) -> &std::path::Path {
        self.model.as_deref().unwrap_or(&self.default_model)
    }

    /// The generation job these flags describe, for `count` images; `inpainting` draws no label the
    /// flags do not ask for (the picture's context says what it is).
    fn job(&self, count: usize, inpainting: bool) -> Result<generate::Job<'_>> {
        let request = self.sampler.request(!inpainting);
        Ok(generate::Job {
            model_dir: self.model_dir(),
            preloaded: None,
            count,
            settings: request.resolve(self.model_dir())?,
            batch_size: self.batch_size,
            size: (self.width, self.height),
            render_size: self.render_size,
            outputs: Outputs {
                grid: self.out.clone(),
                dir: self.out_dir.clone(),
                steps_strip: self.save_steps.clone(),
                tokens: self.tokens.clone(),
                force: self.force,
            },
        })
    }
}

impl SamplerFlags {
    /// The sampler as these flags ask for it (resolved against a bundle's defaults by the library);
    /// `bundle_labels`: whether the bundle's default random label sets apply (see --no-random-labels).
    fn request(&self, bundle_labels: bool) -> generate::SamplerRequest {
        generate::SamplerRequest {
            steps: self.steps,
            temperature: self.temperature.clone(),
            proportion: self.proportion.clone(),
            top_k: self.top_k,
            min_steps: self.min_steps,
            early_stop: !self.no_early_stop,
            exclude_noise: !self.keep_start_noise,
            seed: self.seed,
            labels: self.labels.clone(),
            random_labels: self.random_labels.clone(),
            bundle_random_labels: bundle_labels && !self.no_random_labels,
            guidance: self.guidance,
        }
    }
}

#[derive(Subcommand)]
enum VqganCommand {
    /// Convert a taming-transformers VQ-GAN (YAML config + Lightning .ckpt) into a sundae bundle.
    Import {
        /// taming YAML: a VQModel, or a Net2NetTransformer whose first stage is a VQModel.
        #[arg(long)]
        config: PathBuf,
        /// Lightning checkpoint whose `state_dict` holds the weights.
        #[arg(long)]
        ckpt: PathBuf,
        /// Bundle directory to write (vqgan.toml + vqgan.safetensors).
        #[arg(long)]
        out: PathBuf,
        /// Replace outputs that exist (they are refused otherwise).
        #[arg(long)]
        force: bool,
    },
    /// Encode images into token grids, written as an int64 .npy [B, h, w].
    Encode {
        /// VQ-GAN bundle directory.
        #[arg(long)]
        vqgan: PathBuf,
        /// Output .npy file.
        #[arg(long)]
        out: PathBuf,
        /// Replace outputs that exist (they are refused otherwise).
        #[arg(long)]
        force: bool,
        /// Images to encode (resized on the shorter side and center-cropped to the model's resolution).
        #[arg(required = true)]
        images: Vec<PathBuf>,
        #[command(flatten)]
        device: DeviceArg,
    },
    /// Decode token grids (.npy [B, h, w]) into .png images or a float32 .npy [B, 3, H, W] in [-1, 1].
    Decode {
        /// VQ-GAN bundle directory.
        #[arg(long)]
        vqgan: PathBuf,
        /// Token grids, an integer .npy [B, h, w].
        #[arg(long)]
        tokens: PathBuf,
        /// OUT.png (one file per image: OUT-0.png, OUT-1.png, ... when B > 1) or OUT.npy.
        #[arg(long)]
        out: PathBuf,
        /// Accept grids of another size than the model's training grid.
        #[arg(long)]
        any_size: bool,
        /// Draw with the bundle's decoder for this size (decoders/<size>/); its own decoder by default.
        #[arg(long, value_name = "PIXELS", value_parser = at_least_one())]
        render_size: Option<usize>,
        /// Replace outputs that exist (they are refused otherwise).
        #[arg(long)]
        force: bool,

        #[command(flatten)]
        device: DeviceArg,
    },
    /// Encode and decode images; write a grid with one row per image: input | reconstruction.
    Reconstruct {
        /// VQ-GAN bundle directory.
        #[arg(long)]
        vqgan: PathBuf,
        /// Output .png grid.
        #[arg(long)]
        out: PathBuf,
        /// Also reconstruct the first N validation images of the built-in emoji set.
        #[arg(long, default_value_t = 0)]
        emoji: usize,
        /// Also reconstruct a data set's images: a source as `--data` takes it, with an optional
        /// `:train`, `:validation` (the default) or `:all` (e.g. `iconify:DIR/noto:validation`).
        #[arg(long)]
        data: Option<String>,
        /// With --data: at most N of its images, evenly spread through it.
        #[arg(long)]
        max: Option<usize>,
        /// With --data (vector drawings): decode with the bundle's decoder for this size and compare
        /// with the drawings rendered at that size, beside the bicubic enlargement of the native
        /// decode; the grid shows truth | decoder | enlargement.
        #[arg(long, value_name = "PIXELS", value_parser = at_least_one(), requires = "data", conflicts_with_all = ["images", "out_dir", "emoji"])]
        render_size: Option<usize>,
        /// Also write each reconstruction as its own PNG here, named after its input (e.g. for
        /// `sundae score`).
        #[arg(long)]
        out_dir: Option<PathBuf>,
        /// Replace outputs that exist (they are refused otherwise).
        #[arg(long)]
        force: bool,

        /// Images to reconstruct.
        images: Vec<PathBuf>,
        #[command(flatten)]
        device: DeviceArg,
    },
    /// Train a VQ-GAN on an image folder or the built-in emoji set into a run directory.
    Train {
        /// An image folder (png, jpg, webp; recursive) or `emoji`.
        #[arg(long)]
        data: String,
        #[command(flatten)]
        run: RunArgs,
        /// Compute device.
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Write the trained model as a bundle here when training ends (checked before training starts).
        #[arg(long)]
        bundle: Option<PathBuf>,
        /// Replace the --bundle folder if it exists.
        #[arg(long)]
        force: bool,
        /// Start a new run from this VQ-GAN bundle's weights instead of random ones (e.g. to sharpen
        /// its decoder with `decoder_only`); the discriminator and optimiser start fresh.
        #[arg(long, conflicts_with = "resume")]
        init: Option<PathBuf>,
    },
    /// Train a render decoder: a second decoder for a bundle's tokens that draws them at a larger size
    /// (e.g. 8x8 tokens -> 256x256), learnt from vector drawings rendered at that size. The encoder and
    /// codebook stay fixed, so a prior trained on the bundle's tokens works with it unchanged.
    TrainDecoder {
        /// Vector drawings: `emoji`, `iconify:DIR`, or both joined by a comma.
        #[arg(long)]
        data: String,
        /// The bundle whose tokens the decoder reads (its VQ-GAN is the tokenizer).
        #[arg(long)]
        vqgan: PathBuf,
        #[command(flatten)]
        run: RunArgs,
        /// Start a new run from this decoder folder (e.g. BUNDLE/decoders/256 for a 1024 decoder)
        /// instead of the bundle's own decoder; levels are matched from the top, and blocks a deeper
        /// config adds (a higher num_res_blocks) start as identities.
        #[arg(long, conflicts_with = "resume")]
        init: Option<PathBuf>,
        /// Add the trained decoder to the --vqgan bundle when training ends.
        #[arg(long)]
        attach: bool,
        /// With --attach: replace a decoder of the same size.
        #[arg(long)]
        force: bool,
        /// With --attach: store the weights as f16 (half the size).
        #[arg(long)]
        half: bool,
        /// Compute device.
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Add the latest decoder of a `train-decoder` run to a bundle (decoders/<size>/, listed in
    /// decoders.toml), checked to read the bundle's tokens.
    AddDecoder {
        /// The render decoder's run directory.
        #[arg(long)]
        run: PathBuf,
        /// The bundle to add it to.
        #[arg(long)]
        bundle: PathBuf,
        /// Replace a decoder of the same size.
        #[arg(long)]
        force: bool,
        /// Store the weights as f16 (half the size; loading converts them back).
        #[arg(long)]
        half: bool,
    },
    /// Write a randomly initialised VQ-GAN bundle from a preset or a TOML config (for tests and benchmarks).
    Init {
        /// Preset name (tiny, emoji64, f16, ffhq1024) or a vqgan.toml path.
        #[arg(long)]
        config: String,
        /// Bundle directory to write.
        #[arg(long)]
        out: PathBuf,
        /// Replace outputs that exist (they are refused otherwise).
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// The whole generator: prior seconds per sampler step, decoder seconds per image, end to end, peak memory.
    Generator {
        /// emoji (the built-in model, or random weights in its shape), ffhq256, ffhq1024, tiny, or a bundle directory.
        #[arg(long, default_value = "emoji")]
        config: String,
        /// Comma-separated batch sizes.
        #[arg(long, default_value = "1,8")]
        batch: String,
        /// Sampler steps timed (after one untimed step).
        #[arg(long, default_value_t = 2, value_parser = at_least_one())]
        timed_steps: usize,
        /// Compute device.
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Float precision of the prior and decoder.
        #[arg(long, value_enum, default_value_t = Precision::F32)]
        precision: Precision,
    },
    /// The prior's forward pass alone: seconds per pass of one batch (for comparing implementations;
    /// scripts/bench-vs-torch.sh), and its logits when asked.
    Prior {
        /// emoji (the built-in model), ffhq256, ffhq1024, tiny (random weights), or a bundle directory.
        #[arg(long, default_value = "emoji")]
        config: String,
        /// Random grids per pass (ignored with --tokens).
        #[arg(long, default_value_t = 16, value_parser = at_least_one())]
        batch: usize,
        /// Timed passes after one untimed pass.
        #[arg(long, default_value_t = 5, value_parser = at_least_one())]
        repeats: usize,
        /// Token grids to run on (int64 .npy [B, h, w]) instead of random ones.
        #[arg(long)]
        tokens: Option<PathBuf>,
        /// Write the first pass's logits here (float32 .npy [B, h*w, V]; replaced if it exists).
        #[arg(long)]
        logits: Option<PathBuf>,
        /// Also write the weights timed here (the prior and the VQ-GAN of its configuration, f32) as a
        /// bundle into this new folder, so that another implementation can run the same weights
        /// (scripts/bench-vs-torch.sh does so for the random ffhq1024 model).
        #[arg(long)]
        save_bundle: Option<PathBuf>,
        /// Compute device.
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// SUNDAE training steps alone: seconds per step (corruption, the unrolled passes, backward, AdamW)
    /// on random grids and labels, and peak memory (for comparing implementations and devices).
    Train {
        /// emoji, ffhq1024, tiny (the shipped configs/prior-*.toml, built in) or a prior training
        /// config; a grid or vocabulary left to the latents is the emoji model's 8x8 of 512.
        #[arg(long, default_value = "emoji")]
        config: String,
        /// Grids per step [default: the configuration's batch_size].
        #[arg(long, value_parser = at_least_one())]
        batch: Option<usize>,
        /// Timed steps after one untimed step.
        #[arg(long, default_value_t = 3, value_parser = at_least_one())]
        steps: usize,
        /// Compute device.
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// VQ-GAN training steps alone: seconds per step (encode, quantise, decode, the losses on at step 0,
    /// backward, Adam) on random images, and peak memory (scripts/bench-vs-torch.sh).
    VqganTrain {
        /// emoji (the shipped configs/vqgan-emoji.toml, built in) or a VQ-GAN training config.
        #[arg(long, default_value = "emoji")]
        config: String,
        /// Images per step [default: the configuration's batch_size].
        #[arg(long, value_parser = at_least_one())]
        batch: Option<usize>,
        /// Timed steps after one untimed step.
        #[arg(long, default_value_t = 3, value_parser = at_least_one())]
        steps: usize,
        /// Compute device.
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Share of positions where two token-grid .npy files agree (e.g. a GPU and a CPU sample, same seed).
    Agreement {
        /// First token grids.
        a: PathBuf,
        /// Second token grids, of the same shape.
        b: PathBuf,
    },
    /// VQ-GAN encode/decode time and peak memory with random weights.
    Vqgan {
        /// Comma-separated presets or vqgan.toml paths (random weights, encode and decode), or bundle
        /// directories (their decoder at every render size they have, e.g. models/emoji).
        #[arg(long, default_value = "f16,ffhq1024")]
        config: String,
        /// Images per pass.
        #[arg(long, default_value_t = 1, value_parser = at_least_one())]
        batch: usize,
        /// Timed passes after one warm-up pass (the best is reported).
        #[arg(long, default_value_t = 2)]
        repeats: usize,
        /// Compute device.
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Float precision.
        #[arg(long, value_enum, default_value_t = Precision::F32)]
        precision: Precision,
    },
}

/// Whole numbers from 1 up (a batch of 0 images is no request).
fn at_least_one() -> impl clap::builder::TypedValueParser<Value = usize> {
    |text: &str| match text.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("'{text}' is not a whole number from 1 up")),
    }
}

fn main() -> ExitCode {
    sundae::memory::keep_freed_memory();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if !error.use_stderr() => error.exit(), // --help, --version
        Err(error) => {
            // clap's message, on one line like every other error, with the way to the help.
            // Its first paragraph (the message and, for missing arguments, their names).
            let text = error.to_string();
            let first: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            eprintln!("{} (see --help)", first.join(" ").trim_end_matches('.'));
            return ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", one_line(&error));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, so scripts and people see the whole reason (a cause that
/// only repeats the message before it, as some libraries' errors do, is said once).
fn one_line(error: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in error.chain() {
        let text = cause.to_string().replace('\n', " ");
        let text = text.trim().trim_end_matches('.').to_string();
        if parts.last().is_none_or(|last| !last.ends_with(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

fn run(cli: Cli) -> Result<()> {
    let report: Box<dyn std::fmt::Display> = match cli.command {
        Command::Vqgan(command) => run_vqgan(command)?,
        Command::Evaluate {
            model,
            latents,
            unroll_steps,
            block_share,
            blocks,
            rates,
            device: d,
        } => Box::new(commands::prior::evaluate_latents(
            &commands::prior::EvaluateRequest {
                model: &model.unwrap_or_else(bundle::default_model_dir),
                latents: &latents,
                unroll_steps,
                block_share,
                blocks,
                rates: &rates,
                batch_size: d.batch_size,
            },
            &device::parse(&d.device)?,
        )?),
        Command::Sample { sampling, count } => {
            let device = device::parse_with_precision(&sampling.device, sampling.precision)?;
            Box::new(commands::generate::sample(
                &sampling.job(count, false)?,
                &device,
            )?)
        }
        Command::Inpaint {
            image,
            mask,
            resize,
            paste,
            show_input,
            sampling,
            count,
        } => {
            let device = device::parse_with_precision(&sampling.device, sampling.precision)?;
            let input = generate::InpaintInput {
                image: &image,
                mask: &mask,
                resize,
                paste,
                show_input,
            };
            Box::new(commands::generate::inpaint(
                &sampling.job(count, true)?,
                &input,
                &device,
            )?)
        }
        Command::Bundle {
            vqgan,
            prior,
            out,
            half,
            force,
        } => Box::new(commands::prior::join(&vqgan, &prior, &out, half, force)?),
        Command::Encode {
            vqgan,
            data,
            out,
            flip,
            zooms,
            shifts,
            shard,
            split,
            device: d,
        } => Box::new(commands::data::encode(
            &vqgan,
            &data,
            split,
            &out,
            data::augment::Augment {
                flip,
                zooms,
                shifts,
            },
            shard.as_deref(),
            d.batch_size,
            &device::parse(&d.device)?,
        )?),
        Command::Train {
            latents,
            run,
            init,
            vqgan,
            device: d,
        } => Box::new(commands::prior::train(
            &latents,
            run.config.as_deref(),
            &run.run,
            run.resume,
            init.as_deref(),
            vqgan.as_deref(),
            &device::parse(&d)?,
        )?),
        Command::Nearest {
            images,
            emoji,
            data: source,
            split,
            resolution,
            out,
            force,
        } => Box::new(commands::nearest::nearest(
            &commands::nearest::NearestRequest {
                images: &images,
                emoji,
                data: &source,
                split,
                resolution,
                out: out.as_deref(),
                force,
            },
        )?),
        Command::Pairs {
            model,
            data: source,
            max,
            out,
            force,
            json,
            sampler,
            device: d,
        } => Box::new(commands::pairs::pairs(
            &commands::pairs::PairsRequest {
                model: &model.unwrap_or_else(bundle::default_model_dir),
                data: &source,
                max,
                sampler: sampler.request(false),
                out: out.as_deref(),
                force,
                json,
            },
            &device::parse(&d)?,
        )?),
        Command::Score {
            set_a,
            set_b,
            features,
            dims,
            k,
            resolution,
            max,
            generate: count,
            json,
            no_cache,
            sampler,
            device: d,
        } => Box::new(commands::score::score(
            &commands::score::ScoreRequest {
                set_a: &set_a,
                set_b: &set_b,
                features,
                dims,
                k,
                resolution,
                max,
                generate: count,
                sampler: sampler.request(true),
                json,
                no_cache,
                batch_size: d.batch_size,
            },
            &device::parse(&d.device)?,
        )?),
        Command::Serve {
            model,
            port,
            host,
            device: d,
        } => {
            sundae::serve::serve(sundae::serve::ServeOptions {
                model_dir: model.unwrap_or_else(bundle::default_model_dir),
                host,
                port,
                device: device::parse(&d)?,
                limits: Default::default(),
            })?;
            Box::new(commands::Done("stopped".to_string()))
        }
        Command::Labels { model, set } => Box::new(commands::labels::labels(
            &model.unwrap_or_else(bundle::default_model_dir),
            set.as_deref(),
        )?),
        Command::Bench(BenchCommand::Generator {
            config,
            batch,
            timed_steps,
            device: d,
            precision,
        }) => Box::new(commands::bench::bench_generator(
            &config,
            &batch,
            timed_steps,
            &device::parse_with_precision(&d, precision)?,
        )?),
        Command::Bench(BenchCommand::Prior {
            config,
            batch,
            repeats,
            tokens,
            logits,
            save_bundle,
            device: d,
        }) => Box::new(commands::bench::bench_prior(
            &config,
            batch,
            repeats,
            tokens.as_deref(),
            logits.as_deref(),
            save_bundle.as_deref(),
            &device::parse(&d)?,
        )?),
        Command::Bench(BenchCommand::Train {
            config,
            batch,
            steps,
            device: d,
        }) => Box::new(commands::bench::bench_train(
            &config,
            batch,
            steps,
            &device::parse(&d)?,
        )?),
        Command::Bench(BenchCommand::VqganTrain {
            config,
            batch,
            steps,
            device: d,
        }) => Box::new(commands::bench::bench_vqgan_train(
            &config,
            batch,
            steps,
            &device::parse(&d)?,
        )?),
        Command::Bench(BenchCommand::Agreement { a, b }) => {
            Box::new(commands::bench::agreement(&a, &b)?)
        }
        Command::Bench(BenchCommand::Vqgan {
            config,
            batch,
            repeats,
            device: d,
            precision,
        }) => Box::new(commands::bench::bench_vqgan(
            &config,
            batch,
            repeats,
            &device::parse_with_precision(&d, precision)?,
        )?),
    };
    println!("{report}");
    Ok(())
}

fn storage(half: bool) -> bundle::Storage {
    if half {
        bundle::Storage::F16
    } else {
        bundle::Storage::F32
    }
}

fn run_vqgan(command: VqganCommand) -> Result<Box<dyn std::fmt::Display>> {
    use commands::vqgan;
    Ok(match command {
        VqganCommand::Import {
            config,
            ckpt,
            out,
            force,
        } => Box::new(vqgan::import(&config, &ckpt, &out, force, &device::cpu())?),
        VqganCommand::Encode {
            vqgan: bundle,
            out,
            force,
            images,
            device: d,
        } => Box::new(vqgan::encode(
            &bundle,
            &images,
            &out,
            force,
            d.batch_size,
            &device::parse(&d.device)?,
        )?),
        VqganCommand::Decode {
            vqgan: bundle,
            tokens,
            out,
            any_size,
            render_size,
            force,
            device: d,
        } => Box::new(vqgan::decode(
            &bundle,
            &tokens,
            &out,
            any_size,
            render_size,
            force,
            d.batch_size,
            &device::parse(&d.device)?,
        )?),
        VqganCommand::Reconstruct {
            vqgan: bundle,
            out,
            data: source,
            max,
            render_size: Some(size),
            out_dir: _,
            force,
            images: _,
            emoji: _,
            device: d,
        } => {
            let (source, split) = data::source_and_split(
                source.as_deref().expect("clap requires --data"),
                data::Split::Validation,
            );
            Box::new(vqgan::compare_decoder(
                &bundle,
                (source, split, max),
                size,
                &out,
                force,
                &device::parse(&d.device)?,
            )?)
        }
        VqganCommand::Reconstruct {
            vqgan: bundle,
            out,
            emoji,
            data: source,
            max,
            render_size: None,
            out_dir,
            force,
            images,
            device: d,
        } => Box::new(vqgan::reconstruct(
            &bundle,
            &vqgan::ReconstructInputs {
                files: &images,
                emoji,
                data: source
                    .as_deref()
                    .map(|spec| data::source_and_split(spec, data::Split::Validation))
                    .map(|(source, split)| (source, split, max)),
            },
            &out,
            out_dir.as_deref(),
            force,
            d.batch_size,
            &device::parse(&d.device)?,
        )?),
        VqganCommand::Train {
            data,
            run,
            device: d,
            bundle: out,
            force,
            init,
        } => Box::new(vqgan::train(
            &vqgan::TrainRequest {
                data: &data,
                config: run.config.as_deref(),
                run: &run.run,
                resume: run.resume,
                init: init.as_deref(),
                bundle: out.as_deref(),
                force,
            },
            &device::parse(&d)?,
        )?),
        VqganCommand::TrainDecoder {
            data,
            vqgan: bundle,
            run,
            init,
            attach,
            force,
            half,
            device: d,
        } => Box::new(vqgan::train_decoder(
            &sundae::vqgan::render_train::RenderTrainRequest {
                data: &data,
                tokenizer: &bundle,
                config: run.config.as_deref(),
                run: &run.run,
                resume: run.resume,
                init: init.as_deref(),
            },
            attach,
            force,
            storage(half),
            &device::parse(&d)?,
        )?),
        VqganCommand::AddDecoder {
            run,
            bundle,
            force,
            half,
        } => {
            let size = vqgan::add_decoder(&run, &bundle, force, storage(half), &device::cpu())?;
            Box::new(commands::Done(format!(
                "added the {size}-pixel decoder of {} to {}",
                run.display(),
                bundle.display()
            )))
        }
        VqganCommand::Init { config, out, force } => Box::new(vqgan::init(&config, &out, force)?),
    })
}
