//! Bad input, as an adversarial user types it: every case is one clear `error:` line and a failure
//! status, checked before any work, and nothing that existed is replaced unasked.

mod common;

use common::{fails, generator, ok, root, s};
use std::path::{Path, PathBuf};

/// A scratch folder with a tiny generator, an existing output file and bundle, and a plain file.
struct Scene {
    _temp: tempfile::TempDir,
    dir: PathBuf,
    model: PathBuf,
}

impl Scene {
    fn new() -> Self {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().to_path_buf();
        let model = generator(&dir);
        std::fs::write(dir.join("existing.png"), b"keep me").unwrap();
        std::fs::write(dir.join("existing.npy"), b"keep me").unwrap();
        std::fs::write(dir.join("plain-file"), b"keep me").unwrap();
        std::fs::create_dir_all(dir.join("a-folder")).unwrap();
        Self {
            _temp: temp,
            dir,
            model,
        }
    }

    fn path(&self, name: &str) -> String {
        s(&self.dir.join(name)).to_string()
    }
}

fn run_case(args: &[String], expected: &str) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let error = fails(&args);
    assert!(
        error.contains(expected),
        "{args:?}: expected '{expected}' in: {error}"
    );
}

#[test]
fn bad_requests_are_refused_in_one_line_each() {
    let t = Scene::new();
    let model = s(&t.model).to_string();
    let vqgan = s(&root("tests/fixtures/tiny-bundle")).to_string();
    let out = t.path("new.png");
    let sample = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = ["sample", "--model", &model].map(String::from).to_vec();
        args.extend(extra.iter().map(|a| a.to_string()));
        args
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (sample(&["-n", "1000000000", "--out", &out]), "needs about"),
        (sample(&["--width", "80000", "--out", &out]), "needs about"),
        (
            sample(&["--temperature", "nan", "--out", &out]),
            "'nan' is not a finite number",
        ),
        (
            sample(&["--temperature", "inf", "--out", &out]),
            "'inf' is not a finite number",
        ),
        (
            sample(&["--temperature", "-1", "--out", &out]),
            "--temperature must be positive",
        ),
        (
            sample(&["--temperature", "1:-0.5", "--out", &out]),
            "--temperature must be positive",
        ),
        (
            sample(&["--proportion", "0", "--out", &out]),
            "--proportion 0 updates no token",
        ),
        (
            sample(&["--proportion", "1.5", "--out", &out]),
            "--proportion must lie in [0, 1]",
        ),
        (
            sample(&["--batch-size", "0", "--out", &out]),
            "'0' is not a whole number from 1 up",
        ),
        (
            sample(&["--steps", "0", "--out", &out]),
            "--steps must be at least 1",
        ),
        (sample(&["-n", "0", "--out", &out]), "-n must be at least 1"),
        (
            sample(&["--guidance", "inf", "--out", &out]),
            "--guidance must be a finite number",
        ),
        (
            sample(&["--out", &t.path("a-folder")]),
            "is a folder, not a file to write",
        ),
        (sample(&["--out", &t.path("missing/x.png")]), "the folder"),
        (sample(&["--out", &t.path("x.jpg")]), "must end in .png"),
        (
            sample(&["--out", &t.path("existing.png")]),
            "existing.png exists; pass --force",
        ),
        (
            sample(&["--out", &out, "--out-dir", &t.path("plain-file")]),
            "exists and is not a folder",
        ),
        (
            sample(&["--out", &out, "--tokens", &t.path("existing.npy")]),
            "existing.npy exists",
        ),
        (
            sample(&["--out", &out, "--save-steps", &t.path("steps.gif")]),
            "must end in .png",
        ),
        (
            sample(&["--label", "style=noto", "--out", &out]),
            "has no label sets",
        ),
        (
            [
                "inpaint",
                "--model",
                &model,
                "--image",
                &t.path("a-folder"),
                "--mask",
                &t.path("a-folder"),
                "--out",
                &out,
            ]
            .map(String::from)
            .to_vec(),
            "is a folder, not an image",
        ),
        (
            ["bench", "generator", "--config", "tiny", "--batch", "0"]
                .map(String::from)
                .to_vec(),
            "from 1 up",
        ),
        (
            ["bench", "vqgan", "--config", "tiny", "--batch", "0"]
                .map(String::from)
                .to_vec(),
            "from 1 up",
        ),
        (
            ["bench", "train", "--config", "no-such-config"]
                .map(String::from)
                .to_vec(),
            "is neither emoji, ffhq1024, tiny nor a readable prior config",
        ),
        (
            [
                "bench",
                "train",
                "--config",
                s(&root("configs/prior-emoji-styles.toml")),
            ]
            .map(String::from)
            .to_vec(),
            "label set 'style' has no size",
        ),
        (
            [
                "bench",
                "generator",
                "--config",
                "tiny",
                "--timed-steps",
                "0",
            ]
            .map(String::from)
            .to_vec(),
            "from 1 up",
        ),
        (
            [
                "bundle",
                "--vqgan",
                &vqgan,
                "--prior",
                &t.path("prior-run"),
                "--out",
                &model,
            ]
            .map(String::from)
            .to_vec(),
            "already exists and is not empty; pass --force",
        ),
        (
            ["vqgan", "init", "--config", "tiny", "--out", &model]
                .map(String::from)
                .to_vec(),
            "already exists and is not empty; pass --force",
        ),
        (
            [
                "vqgan",
                "encode",
                "--vqgan",
                &vqgan,
                "--out",
                &t.path("existing.npy"),
                &t.path("existing.png"),
            ]
            .map(String::from)
            .to_vec(),
            "existing.npy exists; pass --force",
        ),
        (
            [
                "vqgan",
                "reconstruct",
                "--vqgan",
                &vqgan,
                "--out",
                &t.path("existing.png"),
                "--emoji",
                "1",
            ]
            .map(String::from)
            .to_vec(),
            "existing.png exists; pass --force",
        ),
        (
            [
                "vqgan",
                "train",
                "--data",
                "emoji",
                "--config",
                s(&root("configs/vqgan-tiny.toml")),
                "--run",
                &t.path("vq-run"),
                "--bundle",
                &model,
            ]
            .map(String::from)
            .to_vec(),
            "already exists and is not empty; pass --force",
        ),
        (
            ["sample", "--bogus"].map(String::from).to_vec(),
            "unexpected argument '--bogus'",
        ),
    ];
    for (args, expected) in &cases {
        run_case(args, expected);
    }
    // Nothing that existed was touched, and no refused output was made.
    for name in ["existing.png", "existing.npy", "plain-file"] {
        assert_eq!(
            std::fs::read(t.dir.join(name)).unwrap(),
            b"keep me",
            "{name}"
        );
    }
    assert!(!t.dir.join("new.png").exists());
    assert!(
        t.model.join("prior.safetensors").is_file(),
        "the bundle is whole"
    );
    assert!(
        !t.dir.join("vq-run/checkpoint/latest").exists(),
        "no training before the refusal"
    );
}

#[test]
fn outputs_are_checked_before_the_model_is_even_read() {
    let t = Scene::new();
    // The model does not exist, and the output is refused: the output's error comes first.
    let error = fails(&[
        "sample",
        "--model",
        "/nonexistent/model",
        "--out",
        &t.path("existing.png"),
    ]);
    assert!(error.contains("existing.png exists"), "{error}");
    let error = fails(&[
        "vqgan",
        "decode",
        "--vqgan",
        "/nonexistent/vqgan",
        "--tokens",
        "/nonexistent/t.npy",
        "--out",
        &t.path("x.gif"),
    ]);
    assert!(error.contains("must end in .png or .npy"), "{error}");
}

#[test]
fn force_replaces_an_output_and_a_bundle_whole() {
    let t = Scene::new();
    let out = t.path("existing.png");
    ok(&[
        "sample",
        "--model",
        s(&t.model),
        "-n",
        "1",
        "--steps",
        "2",
        "--out",
        &out,
        "--force",
    ]);
    assert!(image::open(&out).is_ok(), "replaced by a real image");
    // A bundle replaced with --force is whole afterwards and leaves no temporary folder beside it.
    let vqgan = root("tests/fixtures/tiny-bundle");
    ok(&[
        "bundle",
        "--vqgan",
        s(&vqgan),
        "--prior",
        &t.path("prior-run"),
        "--out",
        s(&t.model),
        "--force",
    ]);
    assert!(t.model.join("prior.safetensors").is_file());
    let leftovers: Vec<_> = std::fs::read_dir(&t.dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".model."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Copies a bundle and sets every value of its first prior tensor to NaN.
fn poison(model: &Path, out: &Path) {
    std::fs::create_dir_all(out).unwrap();
    for entry in std::fs::read_dir(model).unwrap().flatten() {
        std::fs::copy(entry.path(), out.join(entry.file_name())).unwrap();
    }
    let bytes = std::fs::read(model.join("prior.safetensors")).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut owned: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = tensors
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            (
                name,
                view.dtype(),
                view.shape().to_vec(),
                view.data().to_vec(),
            )
        })
        .collect();
    owned.sort_by(|a, b| a.0.cmp(&b.0));
    let first = &mut owned[0];
    first.3 = first
        .3
        .chunks(4)
        .flat_map(|_| f32::NAN.to_le_bytes())
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = owned
        .iter()
        .map(|(name, dtype, shape, data)| {
            (
                name.clone(),
                safetensors::tensor::TensorView::new(*dtype, shape.clone(), data).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, &out.join("prior.safetensors")).unwrap();
}

#[test]
fn weights_holding_nan_are_refused_naming_the_tensor() {
    let t = Scene::new();
    let poisoned = t.dir.join("poisoned");
    poison(&t.model, &poisoned);
    let error = fails(&[
        "sample",
        "--model",
        s(&poisoned),
        "--out",
        &t.path("new.png"),
    ]);
    assert!(error.contains("holds NaN or infinite values"), "{error}");
    assert!(error.contains("tensor '"), "{error}");
}
