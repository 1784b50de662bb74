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

    public Sampler(SamplingOptions options)
    {
        this.options = options.Validate();
        rng = new Rng(options.Seed);
    }

    /// <summary>The next token id for one row of logits.</summary>
    public int Next(ReadOnlySpan<float> logits)
    {
        if (logits.IsEmpty) throw new ArgumentException("Sampler.Next: empty logits.");
        if (options.Temperature == 0) return ArgMax(logits);
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

    /// <summary>Index of the largest logit, ties to the lower index.</summary>
    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        int best = 0;
        for (int i = 1; i < logits.Length; i++) if (logits[i] > logits[best]) best = i;
        return best;
    }
}
