#!/usr/bin/env bash
# Fetches the emoji styles that the second-generation built-in model learns from, beside the built-in
# Twemoji set, as Iconify JSON packages from the npm registry (pinned versions, `npm pack`: nothing is
# installed into the project), and unpacks each into DIR/<name>/ for `--data iconify:DIR`.
#   Google Noto Emoji          @iconify-json/noto               Apache-2.0     (c) Google Inc
#   Microsoft Fluent Emoji     @iconify-json/fluent-emoji-flat  MIT            (c) Microsoft Corporation
#   OpenMoji                   @iconify-json/openmoji           CC-BY-SA-4.0   (c) OpenMoji / HfG Schwaebisch Gmuend
# Usage: scripts/fetch-emoji-styles.sh [DIR]   (default ~/.cache/sundae/emoji-styles)
set -euo pipefail
dir=${1:-$HOME/.cache/sundae/emoji-styles}
packages=(
  "@iconify-json/noto@1.2.9"
  "@iconify-json/fluent-emoji-flat@1.2.6"
  "@iconify-json/openmoji@1.2.29"
)
mkdir -p "$dir"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for spec in "${packages[@]}"; do
  name=${spec#@iconify-json/}
  name=${name%@*}
  if [ -f "$dir/$name/icons.json" ]; then
    echo "$name: already in $dir/$name"
    continue
  fi
  (cd "$scratch" && npm pack --silent "$spec" >/dev/null)
  tarball=$(ls "$scratch"/*.tgz)
  mkdir -p "$scratch/unpack"
  tar xzf "$tarball" -C "$scratch/unpack"
  rm -rf "$dir/$name.partial"
  mv "$scratch/unpack/package" "$dir/$name.partial"
  mv "$dir/$name.partial" "$dir/$name"
  rm -rf "$tarball" "$scratch/unpack"
  echo "$name: $(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["icons"]))' "$dir/$name/icons.json" 2>/dev/null || echo '?') icons in $dir/$name"
done
echo "use: --data emoji,iconify:$dir"
