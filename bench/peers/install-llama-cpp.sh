#!/usr/bin/env bash
# Installs the llama.cpp peer (npm node-llama-cpp 3.22.1: prebuilt llama.cpp CPU backends + a Node
# binding) into a cache folder outside the repository, and copies our peer scripts beside it
# (ESM resolves imports next to the script). Nothing is committed; tests and `tessera bench decode
# --peer llama.cpp` find the folder through $TESSERA_PEERS (default ~/.cache/tessera-peers).
#   bench/peers/install-llama-cpp.sh            # install (idempotent)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
peers="${TESSERA_PEERS:-$HOME/.cache/tessera-peers}"
dest="$peers/llama-cpp"
shared="$repo/../shared/peers"
mkdir -p "$dest"
cd "$dest"
[ -f package.json ] || echo '{"name":"tessera-llama-cpp-peer","private":true,"type":"module"}' > package.json
if [ ! -d node_modules/node-llama-cpp ] || ! grep -q '"version": "3.22.1"' node_modules/node-llama-cpp/package.json; then
  npm install --no-audit --no-fund node-llama-cpp@3.22.1
fi
# The shared helpers (llama-decode/greedy/quantize) and ours (llama-logprobs) sit next to node_modules.
if [ -d "$shared" ]; then cp "$shared"/llama-*.mjs "$shared"/llama-quantize.py .; fi
cp "$here"/llama-*.mjs .
node -e 'import("node-llama-cpp").then(() => console.log("node-llama-cpp ok"))'
echo "llama.cpp peer installed in $dest"
