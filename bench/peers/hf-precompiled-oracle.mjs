// Regenerates tests/Tessera.Text.Tests/Fixtures/hf/precompiled.json.gz: a T5-style tokenizer.json
// (Precompiled normalizer + Replace, Metaspace, Unigram) converted from a SentencePiece model that
// Debian's spm_train built with its default nmt_nfkc rule, so the precompiled charsmap is a real
// one; then the ids and decoded text HF tokenizers (npm `tokenizers` 0.23.2) gives for the stress
// corpus and for extra normalization cases.
//   apt-get install sentencepiece
//   spm_train --input=INPUT --model_prefix=/tmp/t5like --vocab_size=2000 --model_type=unigram --character_coverage=1.0
//   node bench/peers/hf-precompiled-oracle.mjs /tmp/t5like.model [PEERS_DIR]
// INPUT used for the committed fixture: the first 400,000 bytes of the embedded corpus
// (zcat data/corpus/*.gz) followed by the stress corpus, one case per line.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { stressCorpus } from './stress-corpus.mjs';

const modelFile = process.argv[2];
const peers = process.argv[3] ?? process.env.TESSERA_HF_PEERS ?? path.join(os.homedir(), '.cache/tessera/hf-peers');
const require = createRequire(path.join(peers, 'package.json'));
const { Tokenizer } = require('tokenizers');
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const out = path.join(repo, 'tests/Tessera.Text.Tests/Fixtures/hf/precompiled.json.gz');

// Protocol-buffer wire format, just what sentencepiece_model.proto's ModelProto needs:
// pieces = 1 (piece = 1, score = 2 (float), type = 3), normalizer_spec = 3 (precompiled_charsmap = 2).
function* fields(buf) {
  let i = 0;
  const varint = () => { let v = 0n, s = 0n; for (;;) { const b = buf[i++]; v |= BigInt(b & 0x7f) << s; s += 7n; if (!(b & 0x80)) return v; } };
  while (i < buf.length) {
    const key = Number(varint()), field = key >> 3, wire = key & 7;
    if (wire === 0) yield [field, varint()];
    else if (wire === 1) { yield [field, buf.subarray(i, i + 8)]; i += 8; }
    else if (wire === 2) { const n = Number(varint()); yield [field, buf.subarray(i, i + n)]; i += n; }
    else if (wire === 5) { yield [field, buf.subarray(i, i + 4)]; i += 4; }
    else throw new Error(`wire type ${wire}`);
  }
}
const model = fs.readFileSync(modelFile);
const vocab = [];
let unkId = null, charsmap = null;
for (const [f, v] of fields(model)) {
  if (f === 1) {
    let piece = '', score = 0, type = 1;
    for (const [g, w] of fields(v)) {
      if (g === 1) piece = Buffer.from(w).toString('utf8');
      else if (g === 2) score = Buffer.from(w).readFloatLE(0);
      else if (g === 3) type = Number(w);
    }
    if (type === 2) unkId = vocab.length;
    vocab.push([piece, score]);
  } else if (f === 3) {
    for (const [g, w] of fields(v)) if (g === 2) charsmap = Buffer.from(w).toString('base64');
  }
}
if (charsmap === null) throw new Error('the model has no precompiled charsmap');
const json = {
  version: '1.0', truncation: null, padding: null, added_tokens: [],
  normalizer: { type: 'Sequence', normalizers: [{ type: 'Precompiled', precompiled_charsmap: charsmap }, { type: 'Replace', pattern: { Regex: ' {2,}' }, content: ' ' }] },
  pre_tokenizer: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'always', split: true },
  post_processor: null,
  decoder: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'always', split: true },
  model: { type: 'Unigram', unk_id: unkId, vocab, byte_fallback: false },
};
const extra = [
  ['fullwidth', 'ＡＢＣ１２３ａｂｃ！？'], ['ligatures', 'ﬁne ﬂow ﬀ ǆ'], ['circled', '①②③ ⑴ ㈠'], ['compat-jamo', 'ㄱㄴㄷ 한국어'],
  ['superscripts', 'x² y³ H₂O'], ['roman', 'Ⅻ ⅻ'], ['nbsp-and-spaces', 'a\u00A0b\u2003c\u3000d   e'], ['zero-width', 'a\u200Bb\u200Dc\uFEFFd'],
  ['decomposed', 'e\u0301 a\u0308 Å'], ['halfwidth-kana', 'ｶﾀｶﾅ ﾊﾟ'], ['control-chars', 'a\u0001b\u007Fc\tc\nd'], ['math-letters', '𝐀𝐁𝐂 𝔸'],
  ['tilde-dash', 'a～b—c–d'], ['emoji-vs', '☺︎ ☺️ 👍🏽'], ['grapheme-long', 'a\u0301\u0302\u0303\u0304\u0305 x'],
];
const cases = [...stressCorpus().map(c => ({ name: c.name, text: c.text.toWellFormed() })), ...extra.map(([name, text]) => ({ name: 'extra/' + name, text }))];
const tok = Tokenizer.fromString(JSON.stringify(json));
const rows = [];
for (const c of cases) {
  const e = await tok.encode(c.text, null, { addSpecialTokens: false });
  const ids = e.getIds();
  rows.push({ name: c.name, text: c.text, ids, decoded: await tok.decode(ids, false) });
}
const tmp = out + '.tmp';
fs.writeFileSync(tmp, zlib.gzipSync(JSON.stringify({ oracle: 'tokenizers@0.23.2', source: 'spm_train (Debian sentencepiece), nmt_nfkc, unigram, vocab 2000', tokenizer: json, cases: rows }) + '\n', { level: 9 }));
fs.renameSync(tmp, out);
console.log(rows.length, 'cases,', vocab.length, 'pieces, charsmap', Buffer.from(charsmap, 'base64').length, 'bytes');
