#!/usr/bin/env bash
# Copies llama.cpp's vocabulary test files (models/ggml-vocab-*.gguf, .inp, .out) from a llama.cpp
# checkout into the cache the tests read ($TESSERA_LLAMA_VOCAB, default ~/.cache/tessera/llama-vocab).
#   bench/peers/install-llama-vocab.sh /path/to/llama.cpp
set -euo pipefail
SRC="${1:?usage: install-llama-vocab.sh LLAMA_CPP_CHECKOUT}"
DIR="${TESSERA_LLAMA_VOCAB:-$HOME/.cache/tessera/llama-vocab}"
mkdir -p "$DIR"
cp -v "$SRC"/models/ggml-vocab-*.gguf* "$DIR"/
