using System.Diagnostics;
using Tessera.Inference;
using Tessera.Kernels;
using Tessera.Model;

namespace Tessera.Bench;

/// <summary>What <see cref="DecodeBench.Run"/> measures and with which prompts.</summary>
/// <param name="PrefillTokens">Prompt length for the prefill figure.</param>
/// <param name="DecodeTokens">Tokens generated for the batch-1 decode figure.</param>
/// <param name="Concurrency">Concurrent sequence counts for the aggregate figure.</param>
/// <param name="TokensPerSequence">Tokens each concurrent sequence generates.</param>
/// <param name="SpeculationPrompts">In-domain prompts (token ids) for the speculation figure.</param>
/// <param name="SpeculationTokens">Tokens generated per speculation prompt.</param>
/// <param name="DraftTokens">Tokens the draft proposes per verification step (k).</param>
public sealed record DecodeBenchOptions(int PrefillTokens = 256, int DecodeTokens = 64, int[]? Concurrency = null, int TokensPerSequence = 32,
    IReadOnlyList<int[]>? SpeculationPrompts = null, int SpeculationTokens = 64, int DraftTokens = 4);

/// <summary>
/// One concurrency level of the aggregate figure, decode only: the window runs from the end of
/// the first engine step that carries no prompt rows (every sequence decoding) to the last step,
/// and counts the tokens of the steps inside it.
/// </summary>
public sealed record DecodeAggregateRow(int Sequences, int Tokens, double Seconds, double TokensPerSecond, double VersusBatch1);

/// <summary>The speculation figure: plain vs speculative greedy decoding of the same prompts.</summary>
public sealed record DecodeSpeculationResult(int DraftTokens, double PlainTokensPerSecond, double SpeculativeTokensPerSecond, double Speedup,
    double MeanAcceptedPerStep, double TokensPerStep, double AcceptanceRate, bool SameTokens);

/// <summary>Everything the decode benchmark prints.</summary>
public sealed record DecodeBenchReport(string Model, string Weights, long Parameters, long WeightBytes, long BytesPerToken, double BandwidthGBps,
    double PrefillTokensPerSecond, double DecodeTokensPerSecond, double RooflineTokensPerSecond, double PercentOfRoofline,
    IReadOnlyList<DecodeAggregateRow> Aggregate, DecodeSpeculationResult? Speculation, int Threads, string? Profile)
{
    /// <summary>Batch-1 masking overhead of JSON-schema constrained decoding (null when not measured).</summary>
    public ConstrainedDecodeResult? Constrained { get; init; }

    /// <summary>Prefill with images vs text in the same run (see <see cref="ImagePrefillBench"/>).</summary>
    public ImagePrefillResult? ImagePrefill { get; init; }

    /// <summary>Prefill arithmetic rate: forward FLOPs of the prompt (projections, causal attention, one head row) ÷ its time.</summary>
    public double PrefillGflops { get; init; }

    /// <summary>The fp32 GEMM peak measured in this process on all threads (<c>GemmPeak</c>), GFLOP/s.</summary>
    public double PeakGflops { get; init; }

    /// <summary>Median prefill rate over the warm runs (<see cref="PrefillTokensPerSecond"/> is their best), tokens/s.</summary>
    public double PrefillMedianTokensPerSecond { get; init; }

    /// <summary>Warm prefill runs behind the best and the median.</summary>
    public int PrefillRuns { get; init; }

    /// <summary><see cref="PrefillGflops"/> as a percentage of <see cref="PeakGflops"/>.</summary>
    public double PrefillPercentOfPeak => PeakGflops > 0 ? 100 * PrefillGflops / PeakGflops : 0;
}

/// <summary>
/// Decode throughput against the memory roofline. Batch-1 decoding streams every weight it uses
/// once per token, so its ceiling is bandwidth ÷ bytes read per token (all dense matrices, the
/// router and top-k experts of each MoE layer, the head, and the KV cache read by attention).
/// Batching shares that stream between sequences; speculation shares it between drafted positions.
/// </summary>
public static class DecodeBench
{
    /// <summary>Runs every figure; <paramref name="weightsName"/> says how the target is stored (fp32, q8_0, ...).</summary>
    public static DecodeBenchReport Run(string name, string weightsName, InferenceWeights target, InferenceWeights? draft, DecodeBenchOptions o, Action<string>? progress = null)
    {
        var c = target.Config;
        var pool = WorkerPool.Shared;
        progress?.Invoke("measuring memory bandwidth (1 GiB read, all threads)");
        double bandwidth = DecodeBandwidth.Measure(pool);

        // Prefill: one prompt, best of three (the first also compiles the prefill-sized paths).
        int prefill = Math.Min(o.PrefillTokens, c.ContextLength - o.DecodeTokens - 1);
        var prompt = Prompt(prefill, c.VocabSize, 1);
        double prefillRate = 0;
        var warmPrefill = new List<double>();
        string? prefillProfile = null;
        using (var dec = new SequenceDecoder(target))
        {
            progress?.Invoke($"prefill of {prefill} tokens");
            for (int r = 0; r < PrefillRounds; r++)
            {
                dec.Reset();
                if (DecodeProfile.Enabled && r == 1) DecodeProfile.Reset();   // profile the warm runs only
                var sw = Stopwatch.StartNew();
                dec.Feed(prompt);
                double rate = prefill / sw.Elapsed.TotalSeconds;
                if (r > 0) warmPrefill.Add(rate);
                prefillRate = Math.Max(prefillRate, rate);
            }
            if (DecodeProfile.Enabled) prefillProfile = PrefillProfile(c, prefill, PrefillRounds - 1);
        }

        // Batch-1 decode after a short prompt (the KV cache read grows with position, so count its
        // mean) and aggregate decode throughput with continuous batching (prefill excluded from the
        // window). Rounds over batch-1 and all levels, best rate of each: a burst of load from other
        // processes then cannot favour one figure over another.
        int start = 16;
        double decodeRate = 0;
        var rows = new List<DecodeAggregateRow>();
        double batch1 = 0;
        if (DecodeProfile.Enabled) DecodeProfile.Reset();
        var levels = o.Concurrency ?? [1, 8, 32];
        var best = new (int Tokens, double Seconds)[levels.Length];
        using var single = new SequenceDecoder(target);
        for (int round = 0; round < Rounds; round++)
        {
            progress?.Invoke($"round {round + 1}/{Rounds}: batch-1 decode of {o.DecodeTokens} tokens");
            single.Reset();
            single.Feed(Prompt(start, c.VocabSize, 2));
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < o.DecodeTokens; i++) single.Feed([Sampler.ArgMax(single.Logits(0))]);
            decodeRate = Math.Max(decodeRate, o.DecodeTokens / sw.Elapsed.TotalSeconds);
            for (int l = 0; l < levels.Length; l++)
            {
                int n = levels[l];
                progress?.Invoke($"round {round + 1}/{Rounds}: {n} concurrent sequences × {o.TokensPerSequence} tokens (decode-only window)");
                using var engine = new BatchingEngine(target, new BatchingOptions { MaxSequences = n });
                var requests = Enumerable.Range(0, n).Select(i => new GenerationRequest(Prompt(16, c.VocabSize, 10 + i), o.TokensPerSequence, SamplingOptions.Greedy)).ToArray();
                Drain(engine, requests.Take(1).ToArray());   // warm up (slot allocation, JIT)
                var run = Drain(engine, requests);
                if (best[l].Seconds == 0 || double.IsNaN(best[l].Seconds) || run.Tokens / run.Seconds > best[l].Tokens / best[l].Seconds) best[l] = run;
            }
        }
        // Bandwidth again after the decode runs; the larger (the harder roofline) counts.
        bandwidth = Math.Max(bandwidth, DecodeBandwidth.Measure(pool));
        long kvBytes = (long)(start + o.DecodeTokens / 2.0) * 2L * c.Layers * c.KvHeads * c.HeadDim * sizeof(float);
        long bytesPerToken = target.BytesPerToken + kvBytes;
        double roofline = bandwidth / bytesPerToken;
        for (int l = 0; l < levels.Length; l++)
        {
            double rate = best[l].Tokens / best[l].Seconds;
            if (levels[l] == 1) batch1 = rate;
            rows.Add(new DecodeAggregateRow(levels[l], best[l].Tokens, best[l].Seconds, rate, batch1 > 0 ? rate / batch1 : double.NaN));
        }
        string? profile = DecodeProfile.Enabled ? prefillProfile + "decode (batch 1 and every level, all rounds):\n" + DecodeProfile.Report() : null;

        DecodeSpeculationResult? spec = null;
        if (draft is not null)
        {
            var prompts = o.SpeculationPrompts ?? [Prompt(16, c.VocabSize, 3)];
            progress?.Invoke($"speculation over {prompts.Count} prompts × {o.SpeculationTokens} tokens, k = {o.DraftTokens}");
            if (DecodeProfile.Enabled) DecodeProfile.Reset();
            spec = Speculation(target, draft, prompts, o.SpeculationTokens, o.DraftTokens);
            if (DecodeProfile.Enabled) profile += "speculation (plain and speculative runs together):\n" + DecodeProfile.Report();
        }

        // Forward FLOPs of the prompt per token: a third of the training count (forward 2 of 6 per
        // parameter, attention likewise), less the head for every row but the last (Feed computes
        // the last row's logits only).
        double prefillFlopsPerToken = c.TrainingFlopsPerToken(prefill) / 3 - 2.0 * c.VocabSize * c.Dim * (prefill - 1) / prefill;
        return new DecodeBenchReport(name, weightsName, c.ParameterCount, target.TotalBytes, bytesPerToken, bandwidth / 1e9, prefillRate, decodeRate, roofline,
            100 * decodeRate / roofline, rows, spec, pool.ThreadCount, profile)
        {
            PrefillGflops = prefillRate * prefillFlopsPerToken / 1e9,
            PrefillMedianTokensPerSecond = Median(warmPrefill),
            PrefillRuns = PrefillRounds - 1,
            PeakGflops = GemmPeak.PeakFlops(pool.ThreadCount) / 1e9,
        };
    }

    /// <summary>
    /// Prefill repetitions: the first also compiles the prefill-sized paths, the best of the other five counts (as the
    /// decode figures take the best of their rounds), and their median is reported beside it. Until the thirteenth
    /// session this was the best of two warm runs, which on this shared VM often missed a quiet moment.
    /// </summary>
    const int PrefillRounds = 6;

    static double Median(List<double> xs)
    {
        if (xs.Count == 0) return 0;
        var s = xs.OrderBy(x => x).ToList();
        return s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2;
    }

    /// <summary>
    /// The prefill breakdown of <see cref="DecodeProfile"/> over <paramref name="runs"/> warm runs of a
    /// <paramref name="tokens"/>-token prompt: per phase milliseconds per run, share, and GFLOP/s for the
    /// phases that multiply (dense layers only; the attention count is the causal one: q·k and p·v over
    /// the keys each row sees, i.e. (t + 1) keys for row t).
    /// </summary>
    static string PrefillProfile(ModelConfig c, int tokens, int runs)
    {
        long T = tokens, d = c.Dim, q = (long)c.Heads * c.HeadDim, kv = (long)c.KvHeads * c.HeadDim, f = c.HiddenDim, L = c.Layers;
        double keys = T * (T + 1) / 2.0;
        var flops = new Dictionary<DecodePhase, double>
        {
            [DecodePhase.Qkv] = 2.0 * T * d * (q + 2 * kv) * L,
            [DecodePhase.Attention] = 4.0 * q * keys * L,
            [DecodePhase.OutProj] = 2.0 * T * q * d * L,
            [DecodePhase.GateUp] = c.IsMoe ? 0 : 2.0 * T * d * 2 * f * L,
            [DecodePhase.Down] = c.IsMoe ? 0 : 2.0 * T * f * d * L,
            [DecodePhase.Head] = 2.0 * c.VocabSize * d,   // the last row's logits only
        };
        double total = 0;
        for (var p = (DecodePhase)0; p < DecodePhase.Count; p++) total += DecodeProfile.Milliseconds(p);
        var sb = new System.Text.StringBuilder($"prefill of {tokens} tokens, per run (mean of {runs} warm runs), {total / runs:F1} ms:\n");
        for (var p = (DecodePhase)0; p < DecodePhase.Count; p++)
        {
            double ms = DecodeProfile.Milliseconds(p) / runs;
            if (ms == 0) continue;
            string rate = flops.TryGetValue(p, out double fl) && fl > 0 ? $"{fl / (ms * 1e6),7:F0} GFLOP/s" : "";
            sb.AppendLine($"  {p,-10} {ms,9:F2} ms {100 * ms * runs / total,5:F1}%  {rate}");
        }
        return sb.ToString();
    }

    /// <summary>Timed repetitions of batch-1 decode, each aggregate level and each speculation prompt (the best counts).</summary>
    const int Rounds = 4;

    static DecodeSpeculationResult Speculation(InferenceWeights target, InferenceWeights draft, IReadOnlyList<int[]> prompts, int tokens, int k)
    {
        var c = target.Config;
        using var plain = new SequenceDecoder(target);
        using var spec = new SpeculativeDecoder(target, draft, k);
        long accepted = 0, drafted = 0, steps = 0, generated = 0;
        // Warm-up of both paths (JIT), then timed runs.
        Plain(plain, prompts[0], Math.Min(8, tokens));
        spec.Generate(new GenerationRequest(prompts[0], Math.Min(8, tokens), SamplingOptions.Greedy)).ToList();
        spec.ResetStats();

        // Interleaved per prompt and repeated (best time per prompt and path), so load from other
        // processes on a shared machine hits both paths alike.
        int plainCount = 0, specCount = 0;
        double plainSeconds = 0, specSeconds = 0;
        bool same = true;
        for (int i = 0; i < prompts.Count; i++)
        {
            double bestPlain = double.MaxValue, bestSpec = double.MaxValue;
            List<int> plainIds = [], specIds = [];
            for (int round = 0; round < Rounds; round++)
            {
                var sw = Stopwatch.StartNew();
                plainIds = Plain(plain, prompts[i], Budget(prompts[i]));
                bestPlain = Math.Min(bestPlain, sw.Elapsed.TotalSeconds);
                if (round == 0) spec.ResetStats();
                sw.Restart();
                specIds = spec.Generate(new GenerationRequest(prompts[i], Budget(prompts[i]), SamplingOptions.Greedy)).Select(e => e.Id).ToList();
                bestSpec = Math.Min(bestSpec, sw.Elapsed.TotalSeconds);
                if (round == 0) { accepted += spec.Accepted; drafted += spec.Drafted; steps += spec.Steps; generated += spec.Generated; }
            }
            plainCount += plainIds.Count; specCount += specIds.Count;
            plainSeconds += bestPlain; specSeconds += bestSpec;
            same &= specIds.SequenceEqual(plainIds);
        }
        double plainRate = plainCount / plainSeconds, specRate = specCount / specSeconds;
        return new DecodeSpeculationResult(k, plainRate, specRate, specRate / plainRate, (double)accepted / Math.Max(1, steps), (double)generated / Math.Max(1, steps),
            (double)accepted / Math.Max(1, drafted), same);

        int Budget(int[] p) => Math.Min(tokens, c.ContextLength - p.Length);
    }

    static List<int> Plain(SequenceDecoder dec, int[] prompt, int count)
    {
        dec.Reset();
        dec.Feed(prompt);
        var output = new List<int>(count);
        for (int i = 0; i < count; i++)
        {
            int next = Sampler.ArgMax(dec.Logits(0));
            output.Add(next);
            if (i + 1 < count) dec.Feed([next]);
        }
        return output;
    }

    /// <summary>
    /// Runs the requests concurrently. The decode-only window is timed by the engine's own steps:
    /// it opens when the first step without prompt rows ends and closes with the last such step;
    /// the tokens are those of the steps inside it. (Reader-side timestamps would measure when the
    /// consumer tasks got scheduled, not when the engine produced the tokens.)
    /// </summary>
    public static (int Tokens, double Seconds) Drain(BatchingEngine engine, GenerationRequest[] requests)
    {
        var steps = new List<EngineStep>();
        void Record(EngineStep s) => steps.Add(s);
        engine.StepCompleted += Record;
        try
        {
            var tasks = requests.Select(r => Task.Run(async () => { await foreach (var _ in engine.GenerateAsync(r)) { } })).ToArray();
            Task.WaitAll(tasks);
        }
        finally { engine.StepCompleted -= Record; }
        int first = steps.FindIndex(s => s.PromptRows == 0 && s.Rows == requests.Length);
        if (first < 0) first = steps.FindIndex(s => s.PromptRows == 0);
        int last = steps.FindLastIndex(s => s.PromptRows == 0);
        if (first < 0 || last <= first) return (0, double.NaN);
        int tokens = 0;
        for (int i = first + 1; i <= last; i++) tokens += steps[i].Tokens;
        return (tokens, (double)(steps[last].Timestamp - steps[first].Timestamp) / Stopwatch.Frequency);
    }

    /// <summary>A deterministic prompt of token ids (speed does not depend on content).</summary>
    public static int[] Prompt(int length, int vocab, int salt)
    {
        var p = new int[length];
        for (int i = 0; i < length; i++) p[i] = (int)((i * 2654435761L + salt * 40503L + 1) % vocab);
        return p;
    }

    /// <summary>
    /// The randomly initialised dense model used when no checkpoint is given: ≈29M parameters,
    /// ≈118 MB of fp32 weights, so batch-1 decode is firmly memory-bound (weights ≫ L2/L3).
    /// </summary>
    public static ModelConfig RandomModelConfig { get; } = new()
    {
        VocabSize = 8192, Dim = 512, Layers = 8, Heads = 8, KvHeads = 4, HiddenDim = 1536, ContextLength = 512,
    };
}
