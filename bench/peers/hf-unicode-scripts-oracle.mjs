// Regenerates tests/Tessera.Text.Tests/Fixtures/hf/unicode-scripts.json: a tokenizer.json whose
// pre-tokenizer is HF's UnicodeScripts and whose model is a WordPiece vocabulary of every
// character of the cases (plain and "##"-continued), so each pre-token boundary shows in the ids;
// then the ids HF tokenizers (npm `tokenizers` 0.23.2) gives for the stress corpus and for extra
// cases at script boundaries.
//   node bench/peers/hf-unicode-scripts-oracle.mjs [PEERS_DIR]
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { stressCorpus } from './stress-corpus.mjs';

const peers = process.argv[2] ?? process.env.TESSERA_HF_PEERS ?? path.join(os.homedir(), '.cache/tessera/hf-peers');
const require = createRequire(path.join(peers, 'package.json'));
const { Tokenizer } = require('tokenizers');
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const out = path.join(repo, 'tests/Tessera.Text.Tests/Fixtures/hf/unicode-scripts.json');

const extra = [
  ['kana-han', 'どこで生れ。Yes'], ['spaces-kept-inside', 'Apples are りんご 林檎'], ['leading-spaces', '   Yes it is'],
  ['only-spaces', '     '], ['chouon', 'ラーメン ーabc'], ['digits-between', 'abc123def 4.5 ٣٤ x'],
  ['inherited-mark', 'e\u0301 \u0301a Ж\u0301'], ['tabs-newlines', 'a\tb\nβ\u00A0γ'], ['post-unicode-9', 'a\u{1F970}b \u{1FAE0}c'],
  ['unassigned', 'x\u{E0080}y\u0378z'], ['mixed-scripts', 'Hello мир 世界 שלום مرحبا नमस्ते ไทย 한국어'],
  ['emoji-seq', '👩‍👩‍👧 🇯🇵 x'], ['fullwidth', 'ＡＢＣ１２３ａｂｃ'], ['private-use', '\uE000a\uF8FF'],
];
const cases = [...stressCorpus().map(c => ({ name: c.name, text: c.text.toWellFormed() })), ...extra.map(([name, text]) => ({ name: 'extra/' + name, text }))];
const vocab = { '[UNK]': 0 };
let next = 1;
for (const c of cases) for (const ch of c.text) {
  if (!(ch in vocab)) vocab[ch] = next++;
  if (!(('##' + ch) in vocab)) vocab['##' + ch] = next++;
}
const json = {
  version: '1.0', truncation: null, padding: null, added_tokens: [], normalizer: null,
  pre_tokenizer: { type: 'UnicodeScripts' }, post_processor: null, decoder: null,
  model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 1000000, vocab },
};
const tok = Tokenizer.fromString(JSON.stringify(json));
const rows = [];
for (const c of cases) {
  const e = await tok.encode(c.text, null, { addSpecialTokens: false });
  rows.push({ name: c.name, text: c.text, ids: e.getIds() });
}
const tmp = out + '.tmp';
fs.writeFileSync(tmp, JSON.stringify({ oracle: 'tokenizers@0.23.2', tokenizer: json, cases: rows }) + '\n');
fs.renameSync(tmp, out);
console.log(rows.length, 'cases,', Object.keys(vocab).length, 'vocabulary entries');
