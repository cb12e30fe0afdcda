// Checks scripts/convert-nsfwjs-inception.mjs against TensorFlow.js itself: runs nsfwjs' own Inception-v3
// model (@tensorflow/tfjs, CPU) on the same 299x299 PNGs and compares its flattened last pool (2048 values)
// with the JSON lines that `cargo run --release --example inception_features` printed for them.
// Usage: node check-nsfwjs-conversion.mjs NSFWJS_PACKAGE_DIR FEATURES.jsonl   (run where @tensorflow/tfjs
// and pngjs are installed; scripts/check-nsfwjs-conversion.sh sets that up)
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";

const require = createRequire(path.join(process.cwd(), "index.js"));
const tf = require("@tensorflow/tfjs");
const { PNG } = require("pngjs");
const [packageDir, featuresFile] = process.argv.slice(2);
const modelDir = path.resolve(packageDir, "dist/models/inception_v3");
const json = require(path.join(modelDir, "model.min.js"));
const manifest = json.weightsManifest[0];
const data = Buffer.concat(manifest.paths.map((p) => Buffer.from(require(path.join(modelDir, `${p}.min.js`)), "base64")));
const weightData = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength);

await tf.setBackend("cpu");
const model = await tf.loadLayersModel(tf.io.fromMemory(json.modelTopology, manifest.weights, weightData));
const pooled = tf.model({ inputs: model.inputs, outputs: model.getLayer("flatten_1").output });

let worst = 0;
for (const line of fs.readFileSync(featuresFile, "utf8").trim().split("\n")) {
  const { image, features } = JSON.parse(line);
  const png = PNG.sync.read(fs.readFileSync(image));
  if (png.width !== 299 || png.height !== 299) throw new Error(`${image}: expected 299x299`);
  const rgb = new Float32Array(299 * 299 * 3);
  for (let i = 0; i < 299 * 299; i++) for (let c = 0; c < 3; c++) rgb[i * 3 + c] = png.data[i * 4 + c] / 255;
  const theirs = pooled.predict(tf.tensor4d(rgb, [1, 299, 299, 3])).dataSync();
  let diff = 0, norm = 0;
  for (let i = 0; i < theirs.length; i++) {
    diff = Math.max(diff, Math.abs(theirs[i] - features[i]));
    norm = Math.max(norm, Math.abs(theirs[i]));
  }
  worst = Math.max(worst, diff / norm);
  console.log(`${image}: max |diff| ${diff.toExponential(2)} (largest feature ${norm.toFixed(3)})`);
}
console.log(`worst relative difference ${worst.toExponential(2)}`);
process.exit(worst < 1e-4 ? 0 : 1);
