//! Prints the pooled Inception-v3 features `sundae score` computes for each image, one JSON line per
//! image (scripts/check-nsfwjs-conversion.sh compares them with TensorFlow.js). An argument
//! `emoji:CODE:OUT.png` first renders that Twemoji at 299x299 on white into OUT.png.
//!     cargo run --release --example inception_features -- WEIGHTS DIMS IMAGE...

use anyhow::{Context, Result};
use std::path::Path;
use sundae::data::{emoji, images};
use sundae::score::inception::{FeatureNet, INPUT_SIDE};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [weights, dims, inputs @ ..] = args.as_slice() else {
        anyhow::bail!("usage: inception_features WEIGHTS DIMS IMAGE...");
    };
    let device = sundae::device::cpu();
    let net = FeatureNet::load(Path::new(weights), &device)?;
    let dims: usize = dims.parse().context("DIMS is a number")?;
    for input in inputs {
        let path = match input.strip_prefix("emoji:").and_then(|r| r.split_once(':')) {
            Some((code, out)) => {
                let rgba =
                    emoji::render(code, INPUT_SIDE).with_context(|| format!("no emoji {code}"))?;
                images::save(&images::on_white(&rgba), Path::new(out))?;
                out.to_string()
            }
            None => input.clone(),
        };
        let image = image::open(&path)
            .with_context(|| format!("cannot read {path}"))?
            .to_rgb8();
        let features = net.features(&[image], dims, &device);
        println!(
            "{}",
            serde_json::json!({ "image": path, "features": features })
        );
    }
    Ok(())
}
