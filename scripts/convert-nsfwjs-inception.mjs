// Converts the Inception-v3 of the nsfwjs npm package (a Keras InceptionV3, ImageNet weights with its
// upper half fine-tuned to tell five kinds of picture apart, stored by TensorFlow.js as uint8 with a
// scale and offset per tensor) into a safetensors file with pytorch-fid's tensor names, for
// `sundae score --features`. Keras' layers are numbered in the order its InceptionV3 builds them,
// which is torchvision's order, so the k-th convolution and batch norm map to the k-th BasicConv2d of
// pytorch-fid's state dict (tests/fixtures/inception_keys.txt); every shape is checked on the way.
// The metadata says how this network differs from the FID one: inputs in [0, 1] (nsfwjs divides
// by 255) and an average pool in the last block (Keras' mixed10).
//
// Usage: node scripts/convert-nsfwjs-inception.mjs NSFWJS_PACKAGE_DIR OUT.safetensors
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const [packageDir, out] = process.argv.slice(2);
if (!packageDir || !out) {
  console.error("usage: node scripts/convert-nsfwjs-inception.mjs NSFWJS_PACKAGE_DIR OUT.safetensors");
  process.exit(2);
}
const require = createRequire(import.meta.url);
const modelDir = path.resolve(packageDir, "dist/models/inception_v3");
const model = require(path.join(modelDir, "model.min.js"));
const manifest = model.weightsManifest[0];
const buffer = Buffer.concat(
  manifest.paths.map((p) => Buffer.from(require(path.join(modelDir, `${p}.min.js`)), "base64")),
);

// Dequantise every tensor of the manifest, in its byte order.
const tensors = new Map();
let offset = 0;
for (const w of manifest.weights) {
  const count = w.shape.reduce((a, b) => a * b, 1);
  const q = w.quantization;
  if (!q || q.dtype !== "uint8") throw new Error(`${w.name}: expected uint8 quantisation`);
  const values = new Float32Array(count);
  for (let i = 0; i < count; i++) values[i] = q.min + q.scale * buffer[offset + i];
  offset += count;
  tensors.set(w.name, { shape: w.shape, values });
}
if (offset !== buffer.length) throw new Error(`weights cover ${offset} of ${buffer.length} bytes`);

// pytorch-fid's BasicConv2d names and shapes, in state-dict order.
const here = path.dirname(fileURLToPath(import.meta.url));
const keys = fs
  .readFileSync(path.join(here, "../tests/fixtures/inception_keys.txt"), "utf8")
  .trim()
  .split("\n")
  .map((line) => line.split(" "))
  .map(([name, shape]) => ({ name, shape: shape ? shape.split(",").map(Number) : [] }));
const convs = keys.filter((k) => k.name.endsWith(".conv.weight"));
if (convs.length !== 94) throw new Error(`expected 94 convolutions, found ${convs.length}`);

const output = [];
convs.forEach(({ name, shape }, k) => {
  const stem = name.slice(0, -".conv.weight".length);
  const kernel = tensors.get(`conv2d_${k + 1}/kernel`); // [kh, kw, cin, cout]
  const [kh, kw, cin, cout] = kernel.shape;
  const want = [cout, cin, kh, kw];
  if (want.join() !== shape.join()) throw new Error(`${name}: Keras conv2d_${k + 1} is ${want}, expected ${shape}`);
  const oihw = new Float32Array(kernel.values.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < cin; i++)
        for (let o = 0; o < cout; o++)
          oihw[((o * cin + i) * kh + y) * kw + x] = kernel.values[((y * kw + x) * cin + i) * cout + o];
  output.push([name, want, oihw]);
  const bn = (suffix) => tensors.get(`batch_normalization_${k + 1}/${suffix}`).values;
  const ones = new Float32Array(cout).fill(1); // Keras' InceptionV3 norms have no scale
  output.push([`${stem}.bn.weight`, [cout], ones]);
  output.push([`${stem}.bn.bias`, [cout], bn("beta")]);
  output.push([`${stem}.bn.running_mean`, [cout], bn("moving_mean")]);
  output.push([`${stem}.bn.running_var`, [cout], bn("moving_variance")]);
});

// safetensors: little-endian header length, JSON header (padded to 8 bytes), then the data.
const header = {
  __metadata__: {
    "sundae.name": "nsfwjs-inception-v3",
    "sundae.source": "nsfwjs@4.4.0 dist/models/inception_v3 (MIT), converted by scripts/convert-nsfwjs-inception.mjs",
    "sundae.input": "unit",
    "sundae.last_pool": "avg",
  },
};
let at = 0;
for (const [name, shape, values] of output) {
  header[name] = { dtype: "F32", shape, data_offsets: [at, at + values.byteLength] };
  at += values.byteLength;
}
let json = JSON.stringify(header);
json += " ".repeat((8 - (json.length % 8)) % 8);
const length = Buffer.alloc(8);
length.writeBigUInt64LE(BigInt(json.length));
const tmp = `${out}.tmp`;
const fd = fs.openSync(tmp, "w");
fs.writeSync(fd, length);
fs.writeSync(fd, Buffer.from(json));
for (const [, , values] of output) fs.writeSync(fd, Buffer.from(values.buffer, values.byteOffset, values.byteLength));
fs.closeSync(fd);
fs.renameSync(tmp, out);
console.log(`${output.length} tensors (${(at / 4 / 1e6).toFixed(1)}M values) -> ${out}`);
