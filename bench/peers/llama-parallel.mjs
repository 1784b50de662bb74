// Usage: node llama-parallel.mjs MODEL.gguf SEQUENCES [N_GEN=32] [THREADS=2] [ROUNDS=2]
// Aggregate greedy decode throughput of llama.cpp with SEQUENCES concurrent sequences of one
// context (node-llama-cpp evaluates concurrent sequences together in one batch), decode only: the
// window opens when every sequence has produced its first token (prompts done) and closes with the
// last token. Best of ROUNDS, one JSON line.
import {getLlama} from "node-llama-cpp";
const [,, modelPath, seqS, nGenS, threadsS, roundsS] = process.argv;
const nSeq = +seqS, nGen = +(nGenS ?? 32), threads = +(threadsS ?? 2), rounds = +(roundsS ?? 2);
const llama = await getLlama({gpu: false, logLevel: "error"});
const model = await llama.loadModel({modelPath});
const context = await model.createContext({contextSize: nSeq * 128, sequences: nSeq, threads, batchSize: Math.max(512, nSeq * 16)});
const seqs = Array.from({length: nSeq}, () => context.getSequence());
let best = 0;
for (let round = 0; round < rounds; round++) {
  let started = 0, t0 = 0, tokens = 0, t1 = 0;
  await Promise.all(seqs.map(async (seq, i) => {
    await seq.clearHistory();
    const prompt = Array.from({length: 16}, (_, j) => (j * 7919 + i * 104729 + 1) % 250 + 1);   // ids in every test vocabulary
    let n = 0;
    for await (const tok of seq.evaluate(prompt, {temperature: 0})) {
      n++;
      if (n === 1) { if (++started === nSeq) t0 = performance.now(); }
      else if (t0 > 0) { tokens++; t1 = performance.now(); }
      if (n >= nGen) break;
    }
  }));
  if (t0 > 0 && t1 > t0) best = Math.max(best, tokens / ((t1 - t0) / 1000));
}
console.log(JSON.stringify({engine: "llama.cpp (node-llama-cpp 3.22.1)", sequences: nSeq, threads, aggregate_tok_s: +best.toFixed(1)}));
process.exit(0);
