// Usage: node llama-logprobs.mjs MODEL.gguf '[ids…]' [KV_TYPE=F32] [THREADS=2]
// llama.cpp's log-probability of each next id of a fixed sequence: one JSON line
// {"logprobs": [log p(ids[1] | ids[..1]), …, log p(ids[n-1] | ids[..n-1])], "argmax": [...]} (n−1 values).
// The whole sequence is evaluated in one controlledEvaluate call, asking for the full probability
// list at every position but the last; log p comes from that list (node-llama-cpp softmaxes the
// logits at temperature 0 without truncation when asked for probabilities). The KV cache is F32
// unless KV_TYPE says otherwise (llama.cpp's default is F16, which rounds keys and values to 11 bits).
import {getLlama} from "node-llama-cpp";
const [,, modelPath, idsJson, kvS, threadsS] = process.argv;
const kv = (kvS ?? "F32").toUpperCase();
const ids = JSON.parse(idsJson);
const llama = await getLlama({gpu: false, logLevel: "error"});
const model = await llama.loadModel({modelPath});
const context = await model.createContext({contextSize: Math.max(64, ids.length + 8), threads: +(threadsS ?? 2), batchSize: Math.max(64, ids.length + 8),
  experimentalKvCacheKeyType: kv, experimentalKvCacheValueType: kv});
const seq = context.getSequence();
const input = ids.map((t, i) => i < ids.length - 1 ? [t, {generateNext: {probabilities: true}}] : t);
const out = await seq.controlledEvaluate(input);
const logprobs = [], argmax = [];
for (let i = 0; i < ids.length - 1; i++) {
  const probs = out[i]?.next?.probabilities;
  if (!probs) throw new Error(`no probabilities at position ${i}`);
  const p = probs.get(ids[i + 1]) ?? 0;
  logprobs.push(Math.log(p));
  let best = -1, bp = -1;
  for (const [tok, q] of probs) if (q > bp) { bp = q; best = tok; }
  argmax.push(best);
}
console.log(JSON.stringify({logprobs, argmax}));
process.exit(0);
