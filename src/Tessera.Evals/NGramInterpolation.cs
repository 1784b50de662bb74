using Tessera.Data.NGram;
using Tessera.Inference;

namespace Tessera.Evals;

/// <summary>
/// A small learned gate for mixing the ∞-gram with the LM: λ = σ(w · f), where f is a one-hot of
/// the ∞-gram suffix length used (buckets 0, 1, 2, 3, 4, 5–7, 8–15, 16–31, 32–63, 64+) plus
/// log(1 + context count) / 10. Longer matches and well-attested contexts earn more weight.
/// </summary>
public sealed record InterpolationGate(IReadOnlyList<double> Weights)
{
    /// <summary>Lower edges of the suffix-length buckets.</summary>
    public static readonly int[] BucketEdges = [0, 1, 2, 3, 4, 5, 8, 16, 32, 64];
    /// <summary>Length of the feature vector.</summary>
    public static int FeatureCount => BucketEdges.Length + 1;

    /// <summary>Bucket of a suffix length.</summary>
    public static int Bucket(int suffixLength)
    {
        int b = 0;
        while (b + 1 < BucketEdges.Length && suffixLength >= BucketEdges[b + 1]) b++;
        return b;
    }

    /// <summary>Label of bucket <paramref name="b"/>, e.g. "5-7" or "64+".</summary>
    public static string BucketLabel(int b)
        => b + 1 == BucketEdges.Length ? $"{BucketEdges[b]}+" : BucketEdges[b + 1] - 1 == BucketEdges[b] ? $"{BucketEdges[b]}" : $"{BucketEdges[b]}-{BucketEdges[b + 1] - 1}";

    /// <summary>Writes the features of a position into <paramref name="f"/>.</summary>
    public static void Features(int suffixLength, long contextCount, Span<double> f)
    {
        f.Clear();
        f[Bucket(suffixLength)] = 1;
        f[BucketEdges.Length] = Math.Log(1 + contextCount) / 10;
    }

    /// <summary>λ for a position.</summary>
    public double Lambda(int suffixLength, long contextCount)
    {
        Span<double> f = stackalloc double[FeatureCount];
        Features(suffixLength, contextCount, f);
        double z = 0;
        for (int i = 0; i < f.Length; i++) z += Weights[i] * f[i];
        return 1 / (1 + Math.Exp(-z));
    }
}

/// <summary>What interpolating the ∞-gram with the LM did to held-out bits per byte.</summary>
public sealed record InterpolationReport(string FitSplit, string EvalSplit, long Targets, long Bytes, double LmBitsPerByte,
    double Lambda, double FixedBitsPerByte, double GateBitsPerByte, IReadOnlyList<double> GateWeights,
    IReadOnlyList<SuffixLengthBucket> SuffixLengths)
{
    /// <summary>Relative change of bits per byte with the fixed λ (negative = better).</summary>
    public double FixedChange => FixedBitsPerByte / LmBitsPerByte - 1;
    /// <summary>Relative change of bits per byte with the learned gate.</summary>
    public double GateChange => GateBitsPerByte / LmBitsPerByte - 1;
}

/// <summary>One row of the suffix-length histogram: positions whose ∞-gram used a suffix length in the bucket, and how the ∞-gram did there.</summary>
public sealed record SuffixLengthBucket(string Lengths, long Positions, double Share, double NonZeroShare, double MeanInfinityProbability, double MeanLmProbability);

/// <summary>
/// Interpolation of the ∞-gram with a neural LM, p = (1 − λ)·p_LM + λ·p∞ (infini-gram, Liu et al.
/// 2024): λ fixed, or from <see cref="InterpolationGate"/>. Both are fitted on one held-out split
/// and reported on another, so the figure is not tuned on the text it is measured on.
/// </summary>
public static class NGramInterpolation
{
    /// <summary>Summed −ln p of the mixture over targets 1.. (entry t − 1 of <paramref name="lm"/> is target t).</summary>
    public static double Nats(double[] lm, InfinityProbability[] ng, Func<InfinityProbability, double> lambda)
    {
        double nats = 0;
        for (int t = 1; t < ng.Length; t++)
        {
            double l = lambda(ng[t]);
            nats -= Math.Log((1 - l) * Math.Exp(lm[t - 1]) + l * ng[t].Probability);
        }
        return nats;
    }

    /// <summary>The fixed λ in [0, 0.99] that minimises the mixture's nats: a grid, then golden-section refinement.</summary>
    public static double FitLambda(double[] lm, InfinityProbability[] ng)
    {
        double best = 0, bestNats = Nats(lm, ng, _ => 0);
        for (double l = 0.05; l < 0.99; l += 0.05)
        {
            double n = Nats(lm, ng, _ => l);
            if (n < bestNats) { best = l; bestNats = n; }
        }
        double a = Math.Max(0, best - 0.05), b = Math.Min(0.99, best + 0.05);
        const double G = 0.6180339887498949;
        for (int i = 0; i < 30; i++)
        {
            double c = b - G * (b - a), d = a + G * (b - a);
            if (Nats(lm, ng, _ => c) < Nats(lm, ng, _ => d)) b = d; else a = c;
        }
        double refined = (a + b) / 2;
        return Nats(lm, ng, _ => refined) < bestNats ? refined : best;
    }

    /// <summary>Fits the gate's weights by full-batch Adam on the mixture's mean log-likelihood.</summary>
    public static InterpolationGate FitGate(double[] lm, InfinityProbability[] ng, int iterations = 400, double learningRate = 0.1)
    {
        int F = InterpolationGate.FeatureCount, T = ng.Length - 1;
        var feats = new double[T * F];
        var pl = new double[T];
        var pn = new double[T];
        for (int t = 1; t < ng.Length; t++)
        {
            InterpolationGate.Features(ng[t].SuffixLength, ng[t].ContextCount, feats.AsSpan((t - 1) * F, F));
            pl[t - 1] = Math.Exp(lm[t - 1]);
            pn[t - 1] = ng[t].Probability;
        }
        var w = new double[F];
        for (int j = 0; j < InterpolationGate.BucketEdges.Length; j++) w[j] = -2;   // start near λ ≈ 0.12
        var m = new double[F];
        var v = new double[F];
        var grad = new double[F];
        for (int it = 1; it <= iterations; it++)
        {
            Array.Clear(grad);
            for (int t = 0; t < T; t++)
            {
                var f = feats.AsSpan(t * F, F);
                double z = 0;
                for (int j = 0; j < F; j++) z += w[j] * f[j];
                double l = 1 / (1 + Math.Exp(-z));
                double mix = (1 - l) * pl[t] + l * pn[t];
                // d(−ln mix)/dz = −(pn − pl)·λ(1 − λ) / mix
                double g = -(pn[t] - pl[t]) * l * (1 - l) / mix;
                for (int j = 0; j < F; j++) grad[j] += g * f[j];
            }
            for (int j = 0; j < F; j++)
            {
                double gj = grad[j] / T;
                m[j] = 0.9 * m[j] + 0.1 * gj;
                v[j] = 0.999 * v[j] + 0.001 * gj * gj;
                double mh = m[j] / (1 - Math.Pow(0.9, it)), vh = v[j] / (1 - Math.Pow(0.999, it));
                w[j] -= learningRate * mh / (Math.Sqrt(vh) + 1e-8);
            }
        }
        return new InterpolationGate(w);
    }

    /// <summary>
    /// Fits λ and the gate on (<paramref name="fitLm"/>, <paramref name="fitNg"/>) and reports bits per
    /// byte of the LM alone, the fixed mixture and the gated mixture on the evaluation split
    /// (<paramref name="evalBytes"/> = its UTF-8 size, as in <see cref="BitsPerByte"/>).
    /// </summary>
    public static InterpolationReport Report(string fitSplit, double[] fitLm, InfinityProbability[] fitNg,
        string evalSplit, double[] evalLm, InfinityProbability[] evalNg, long evalBytes)
    {
        if (fitLm.Length + 1 != fitNg.Length || evalLm.Length + 1 != evalNg.Length)
            throw new ArgumentException("interpolation: the LM scores one target fewer than the ∞-gram has positions (position 0 has no target).");
        double lambda = FitLambda(fitLm, fitNg);
        var gate = FitGate(fitLm, fitNg);
        double toBits = 1 / (Math.Log(2) * evalBytes);
        double lmNats = 0;
        foreach (double lp in evalLm) lmNats -= lp;
        double fixedNats = Nats(evalLm, evalNg, _ => lambda);
        double gateNats = Nats(evalLm, evalNg, q => gate.Lambda(q.SuffixLength, q.ContextCount));
        return new InterpolationReport(fitSplit, evalSplit, evalLm.Length, evalBytes, lmNats * toBits, lambda, fixedNats * toBits, gateNats * toBits,
            gate.Weights, Histogram(evalLm, evalNg));
    }

    /// <summary>Positions per suffix-length bucket, with the share where the ∞-gram gave the target any mass.</summary>
    public static IReadOnlyList<SuffixLengthBucket> Histogram(double[] lm, InfinityProbability[] ng)
    {
        int B = InterpolationGate.BucketEdges.Length;
        var n = new long[B];
        var nonZero = new long[B];
        var sumNg = new double[B];
        var sumLm = new double[B];
        for (int t = 1; t < ng.Length; t++)
        {
            int b = InterpolationGate.Bucket(ng[t].SuffixLength);
            n[b]++;
            if (ng[t].TargetCount > 0) nonZero[b]++;
            sumNg[b] += ng[t].Probability;
            sumLm[b] += Math.Exp(lm[t - 1]);
        }
        long total = Math.Max(1, ng.Length - 1);
        var rows = new List<SuffixLengthBucket>(B);
        for (int b = 0; b < B; b++)
            rows.Add(new SuffixLengthBucket(InterpolationGate.BucketLabel(b), n[b], (double)n[b] / total,
                n[b] > 0 ? (double)nonZero[b] / n[b] : double.NaN, n[b] > 0 ? sumNg[b] / n[b] : double.NaN, n[b] > 0 ? sumLm[b] / n[b] : double.NaN));
        return rows;
    }
}

/// <summary>
/// The ∞-gram as a generation option: replaces the model's logits with
/// log((1 − λ)·softmax(logits) + λ·p∞(· | longest matching suffix of the sequence)), λ fixed or
/// from a gate. Temperature and filters then apply to the mixture.
/// </summary>
public sealed class NGramLogitsProcessor(NGramStore store, double lambda, InterpolationGate? gate = null) : ILogitsProcessor
{
    double[] p = [];

    /// <inheritdoc/>
    public void Process(ReadOnlySpan<int> history, Span<float> logits)
    {
        if (logits.Length != store.VocabSize)
            throw new ArgumentException($"n-gram mixing: the model has {logits.Length} logits but the index {store.Directory} has a vocabulary of {store.VocabSize}.");
        var dist = store.InfinityNextTokens(history);
        double l = gate?.Lambda(dist.SuffixLength, dist.Total) ?? lambda;
        if (dist.Total == 0 || l <= 0) return;
        if (p.Length != logits.Length) p = new double[logits.Length];
        float max = float.NegativeInfinity;
        foreach (float x in logits) max = Math.Max(max, x);
        double sum = 0;
        for (int i = 0; i < logits.Length; i++) { p[i] = Math.Exp(logits[i] - max); sum += p[i]; }
        for (int i = 0; i < logits.Length; i++) p[i] *= (1 - l) / sum;
        foreach (var tc in dist.Tokens) p[tc.Token] += l * tc.Count / dist.Total;
        for (int i = 0; i < logits.Length; i++) logits[i] = (float)Math.Log(p[i]);
    }
}
