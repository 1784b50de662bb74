// Same-run speed peer for `tessera bench tokenizer`: HF tokenizers (the Rust library, npm
// tokenizers 0.23.2) encoding one UTF-8 text file with a tokenizer.json, single-threaded
// (TOKENIZERS_PARALLELISM=false, RAYON_NUM_THREADS=1 are set by the caller).
// Usage: node bench/peers/hf-bench.mjs PEERS_DIR TOKENIZER_JSON TEXT_FILE [REPEATS]
//   -> {"seconds": best-of-N, "tokens": count}
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';

const [peers, tokPath, textPath, repeatsArg] = process.argv.slice(2);
const require = createRequire(path.join(peers, 'package.json'));
const { Tokenizer } = require('tokenizers');
const tok = Tokenizer.fromFile(tokPath);
const text = fs.readFileSync(textPath, 'utf8');
const repeats = Number(repeatsArg ?? 3);
await tok.encode(text.slice(0, 100000), null, { addSpecialTokens: false }); // warm up
let seconds = Infinity, tokens = 0;
for (let r = 0; r < repeats; r++) {
  const t0 = process.hrtime.bigint();
  const enc = await tok.encode(text, null, { addSpecialTokens: false });
  seconds = Math.min(seconds, Number(process.hrtime.bigint() - t0) / 1e9);
  tokens = enc.getIds().length;
}
console.log(JSON.stringify({ seconds, tokens }));
