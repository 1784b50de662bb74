// Same-run speed peers for `tessera bench tokenizer`: encodes one UTF-8 text file with the
// cl100k_base encoders of gpt-tokenizer and js-tiktoken (single-threaded JavaScript) and
// prints one JSON line: { "<peer>": { "seconds": best-of-N, "tokens": count }, ... }.
// Usage: node bench/node/bench.mjs TEXT_FILE [REPEATS]
import { readFileSync } from "node:fs";

const [file, repeatsArg] = process.argv.slice(2);
const text = readFileSync(file, "utf8");
const repeats = Number(repeatsArg ?? 3);

function best(encode) {
  let tokens = 0, seconds = Infinity;
  encode(text.slice(0, 100000)); // warm up the JIT
  for (let r = 0; r < repeats; r++) {
    const t0 = process.hrtime.bigint();
    tokens = encode(text).length;
    seconds = Math.min(seconds, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return { seconds, tokens };
}

const result = {};
try {
  const { encode } = await import("gpt-tokenizer/encoding/cl100k_base");
  result["gpt-tokenizer"] = best((s) => encode(s));
} catch (e) { result["gpt-tokenizer"] = { error: String(e.message ?? e) }; }
try {
  const { getEncoding } = await import("js-tiktoken");
  const enc = getEncoding("cl100k_base");
  result["js-tiktoken"] = best((s) => enc.encode(s));
} catch (e) { result["js-tiktoken"] = { error: String(e.message ?? e) }; }
console.log(JSON.stringify(result));
