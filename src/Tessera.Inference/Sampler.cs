using System.Runtime.CompilerServices;
using Tessera.Kernels;
using Tessera.Tensors;

namespace Tessera.Inference;

/// <summary>
/// Draws token ids from logits according to <see cref="SamplingOptions"/>, deterministically for
/// a seed. Keeps its scratch between calls (one sampler per sequence).
/// </summary>
public sealed class Sampler
{
    readonly SamplingOptions options;
    readonly Rng rng;
    float[] probs = [];
    int[] order = [];
    float[] biased = [];
    readonly List<int>? history;
    readonly Dictionary<int, int>? generated;

    /// <summary>
    /// A sampler for one sequence. <paramref name="prompt"/> is needed (and only used) when the
    /// options carry a <see cref="SamplingOptions.LogitsProcessor"/>: the sampler then keeps the
    /// sequence, adding every id <see cref="Next"/> returns.
    /// </summary>
    public Sampler(SamplingOptions options, IReadOnlyList<int>? prompt = null)
    {
        this.options = options.Validate();
        rng = new Rng(options.Seed);
        if (options.LogitsProcessor is not null)
            history = [.. prompt ?? throw new ArgumentException("a logits processor needs the prompt: this decoding path (e.g. speculative decoding) does not support one.")];
        if (options.FrequencyPenalty != 0 || options.PresencePenalty != 0) generated = [];
    }

    /// <summary>True when the options carry penalties (they depend on what this sampler has drawn).</summary>
    public bool Penalised => generated is not null;

    /// <summary>The next token id for one row of logits.</summary>
    public int Next(ReadOnlySpan<float> logits)
    {
        if (logits.IsEmpty) throw new ArgumentException("Sampler.Next: empty logits.");
        logits = Bias(logits);
        if (history is not null) logits = Process(logits);
        int id = options.Temperature == 0 ? ArgMax(logits) : DrawFiltered(logits);
        history?.Add(id);
        if (generated is not null) generated[id] = generated.GetValueOrDefault(id) + 1;
        return id;
    }

    /// <summary>The logits after the processor (a copy) for the sequence so far.</summary>
    ReadOnlySpan<float> Process(ReadOnlySpan<float> logits)
    {
        if (biased.Length != logits.Length) biased = new float[logits.Length];
        if (!Unsafe.AreSame(ref System.Runtime.InteropServices.MemoryMarshal.GetReference(logits), ref biased[0])) logits.CopyTo(biased);
        options.LogitsProcessor!.Process(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(history), biased);
        return biased;
    }

    int DrawFiltered(ReadOnlySpan<float> logits)
    {
        int keep = Filter(logits);
        double total = 0;
        for (int i = 0; i < keep; i++) total += probs[order[i]];
        double u = rng.NextDouble() * total;
        for (int i = 0; i < keep; i++)
        {
            u -= probs[order[i]];
            if (u < 0) return order[i];
        }
        return order[keep - 1];
    }

    /// <summary>
    /// The distribution <see cref="Next"/> draws from, written into <paramref name="p"/> (one entry
    /// per id, summing to 1): tempered, filtered, renormalised; one-hot on the argmax when greedy.
    /// Speculative decoding needs it explicitly to accept or reject drafted tokens.
    /// </summary>
    public void Distribution(ReadOnlySpan<float> logits, Span<float> p)
    {
        if (logits.IsEmpty || p.Length != logits.Length) throw new ArgumentException($"Sampler.Distribution: {logits.Length} logits for {p.Length} probabilities.");
        p.Clear();
        logits = Bias(logits);
        if (options.Temperature == 0) { p[ArgMax(logits)] = 1f; return; }
        int keep = Filter(logits);
        double total = 0;
        for (int i = 0; i < keep; i++) total += probs[order[i]];
        for (int i = 0; i < keep; i++) p[order[i]] = (float)(probs[order[i]] / total);
    }

    /// <summary>
    /// The logits with <see cref="SamplingOptions.LogitBias"/> added and the penalties subtracted
    /// (OpenAI: logit[j] −= count[j]·frequency + (count[j] &gt; 0)·presence, counting generated tokens),
    /// as a copy; the logits themselves when neither applies.
    /// </summary>
    ReadOnlySpan<float> Bias(ReadOnlySpan<float> logits)
    {
        bool penalise = generated is { Count: > 0 };
        if (options.LogitBias is not { Count: > 0 } bias && !penalise) return logits;
        if (biased.Length != logits.Length) biased = new float[logits.Length];
        logits.CopyTo(biased);
        if (options.LogitBias is { Count: > 0 } b2)
            foreach (var (id, b) in b2)
            {
                if ((uint)id >= (uint)logits.Length) throw new ArgumentException($"logit bias: token id {id} is outside the vocabulary of {logits.Length}.");
                biased[id] += b;
            }
        if (penalise)
            foreach (var (id, count) in generated!)
                if ((uint)id < (uint)biased.Length) biased[id] -= count * options.FrequencyPenalty + options.PresencePenalty;
        return biased;
    }

    /// <summary>A uniform draw in [0, 1) from this sampler's stream.</summary>
    public double NextUniform() => rng.NextDouble();

    /// <summary>Draws an id from unnormalised non-negative weights <paramref name="w"/> (scanned in id order).</summary>
    public int Draw(ReadOnlySpan<float> w)
    {
        double total = 0;
        int last = -1;
        for (int i = 0; i < w.Length; i++) if (w[i] > 0) { total += w[i]; last = i; }
        if (last < 0) throw new ArgumentException("Sampler.Draw: every weight is zero.");
        double u = rng.NextDouble() * total;
        for (int i = 0; i < w.Length; i++)
        {
            if (w[i] <= 0) continue;
            u -= w[i];
            if (u < 0) return i;
        }
        return last;
    }

    /// <summary>
    /// Fills probs with the tempered softmax and order with ids by descending probability (ties to
    /// the lower id), then applies top-k, top-p and min-p in that order; returns how many of the
    /// ordered ids survive.
    /// </summary>
    int Filter(ReadOnlySpan<float> logits)
    {
        int n = logits.Length;
        if (probs.Length != n) { probs = new float[n]; order = new int[n]; }

        // Tempered softmax in double for the normaliser.
        float max = float.NegativeInfinity;
        foreach (float l in logits) if (l > max) max = l;
        double sum = 0;
        for (int i = 0; i < n; i++) { probs[i] = MathF.Exp((logits[i] - max) / options.Temperature); sum += probs[i]; }
        for (int i = 0; i < n; i++) { probs[i] = (float)(probs[i] / sum); order[i] = i; }

        // Sort ids by probability, descending, ties to the lower id: the filters all work on this order.
        var p = probs;
        Array.Sort(order, (a, b) => p[b] != p[a] ? p[b].CompareTo(p[a]) : a.CompareTo(b));
        int keep = n;
        if (options.TopK > 0) keep = Math.Min(keep, options.TopK);
        if (options.TopP < 1)
        {
            double acc = 0;
            for (int i = 0; i < keep; i++) { acc += probs[order[i]]; if (acc >= options.TopP) { keep = i + 1; break; } }
        }
        if (options.MinP > 0)
        {
            float floor = options.MinP * probs[order[0]];
            int k = 1;
            while (k < keep && probs[order[k]] >= floor) k++;
            keep = k;
        }
        return keep;
    }

    /// <summary>Index of the largest logit, ties to the lower index: <see cref="TopK.ArgMax"/>.</summary>
    public static int ArgMax(ReadOnlySpan<float> logits) => TopK.ArgMax(logits);
}
