using Tessera.Data.NGram;
using Tessera.Inference;

namespace Tessera.Evals;

/// <summary>
/// A small learned gate for mixing the LM with the ∞-gram and, optionally, its backoff (the
/// estimate from the suffix one token shorter): the weights are softmax(0, w₁·f, …, w_C·f) over
/// (LM, ∞-gram, backoff), the LM's logit pinned at 0, so with one component it is the sigmoid
/// λ = σ(w · f). The features f of a position depend on its context only, never on the target: a
/// one-hot of the ∞-gram suffix length (buckets 0, 1, 2, 3, 4, 5–7, 8–15, 16–31, 32–63, 64+),
/// log(1 + context count) / 10, whether the longest suffix has a single continuation,
/// log(1 + distinct continuations) / 5 and the commonest continuation's share. Longer, well-attested
/// and peaked matches earn more weight (infini-gram observes that a sparse ∞-gram is usually right).
/// </summary>
/// <param name="Components">n-gram components mixed with the LM: 1 (the ∞-gram) or 2 (and its backoff).</param>
/// <param name="Weights">Row-major (component, feature) weights, <see cref="FeatureCount"/> per component.</param>
public sealed record InterpolationGate(int Components, IReadOnlyList<double> Weights)
{
    /// <summary>Lower edges of the suffix-length buckets.</summary>
    public static readonly int[] BucketEdges = [0, 1, 2, 3, 4, 5, 8, 16, 32, 64];
    /// <summary>Length of the feature vector.</summary>
    public static int FeatureCount => BucketEdges.Length + 4;

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

    /// <summary>Writes the features of a position into <paramref name="f"/> (its target counts are not read).</summary>
    public static void Features(in NGramEvidence e, Span<double> f)
    {
        f.Clear();
        int B = BucketEdges.Length;
        long context = e.Longest.ContextCount;
        f[Bucket(e.Longest.SuffixLength)] = 1;
        f[B] = Math.Log(1 + context) / 10;
        f[B + 1] = e.Distinct == 1 ? 1 : 0;
        f[B + 2] = Math.Log(1 + e.Distinct) / 5;
        f[B + 3] = context > 0 ? (double)e.TopCount / context : 0;
    }

    /// <summary>Mixture weights of a position: <paramref name="w"/>[0] for the LM, then one per component.</summary>
    public void Mix(in NGramEvidence e, Span<double> w)
    {
        int F = FeatureCount;
        Span<double> f = stackalloc double[F];
        Features(e, f);
        Softmax(Weights, Components, f, w);
    }

    /// <summary>The mixture's probability of the target: w₀·p_LM + w₁·p∞ (+ w₂·p_backoff).</summary>
    public double Probability(double lmProbability, in NGramEvidence e)
    {
        Span<double> w = stackalloc double[Components + 1];
        Mix(e, w);
        return w[0] * lmProbability + w[1] * e.Longest.Probability + (Components > 1 ? w[2] * e.Backoff.Probability : 0);
    }

    internal static void Softmax(IReadOnlyList<double> weights, int components, ReadOnlySpan<double> f, Span<double> w)
    {
        int F = f.Length;
        w[0] = 0;
        double max = 0;
        for (int c = 0; c < components; c++)
        {
            double z = 0;
            for (int j = 0; j < F; j++) z += weights[c * F + j] * f[j];
            w[c + 1] = z;
            max = Math.Max(max, z);
        }
        double sum = 0;
        for (int c = 0; c <= components; c++) { w[c] = Math.Exp(w[c] - max); sum += w[c]; }
        for (int c = 0; c <= components; c++) w[c] /= sum;
    }
}

/// <summary>What interpolating the ∞-gram with the LM did to held-out bits per byte.</summary>
/// <param name="FitSplit">Split λ and the gates were fitted on.</param>
/// <param name="EvalSplit">Split the figures are measured on.</param>
/// <param name="Targets">Targets scored on the evaluation split.</param>
/// <param name="Bytes">UTF-8 bytes of the evaluation split.</param>
/// <param name="LmBitsPerByte">The LM alone.</param>
/// <param name="Lambda">The fitted fixed λ.</param>
/// <param name="FixedBitsPerByte">LM + ∞-gram with the fixed λ.</param>
/// <param name="GateBitsPerByte">LM + ∞-gram with the learned gate.</param>
/// <param name="GateWeights">That gate's weights.</param>
/// <param name="BackoffGateBitsPerByte">LM + ∞-gram + its one-shorter backoff, with a learned gate.</param>
/// <param name="BackoffGateWeights">That gate's weights (∞-gram row, then backoff row).</param>
/// <param name="SuffixLengths">The suffix-length histogram on the evaluation split.</param>
public sealed record InterpolationReport(string FitSplit, string EvalSplit, long Targets, long Bytes, double LmBitsPerByte,
    double Lambda, double FixedBitsPerByte, double GateBitsPerByte, IReadOnlyList<double> GateWeights,
    double BackoffGateBitsPerByte, IReadOnlyList<double> BackoffGateWeights, IReadOnlyList<SuffixLengthBucket> SuffixLengths)
{
    /// <summary>Relative change of bits per byte with the fixed λ (negative = better).</summary>
    public double FixedChange => FixedBitsPerByte / LmBitsPerByte - 1;
    /// <summary>Relative change of bits per byte with the learned gate.</summary>
    public double GateChange => GateBitsPerByte / LmBitsPerByte - 1;
    /// <summary>Relative change of bits per byte with the learned gate over the ∞-gram and its backoff.</summary>
    public double BackoffGateChange => BackoffGateBitsPerByte / LmBitsPerByte - 1;
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

    /// <summary>Summed −ln p of the gated mixture over targets 1.. (entry t − 1 of <paramref name="lm"/> is target t).</summary>
    public static double Nats(double[] lm, NGramEvidence[] ng, InterpolationGate gate)
    {
        double nats = 0;
        for (int t = 1; t < ng.Length; t++) nats -= Math.Log(gate.Probability(Math.Exp(lm[t - 1]), ng[t]));
        return nats;
    }

    /// <summary>
    /// Fits a gate over <paramref name="components"/> n-gram components (1: the ∞-gram; 2: and its
    /// backoff) by full-batch Adam on the mixture's mean log-likelihood.
    /// </summary>
    public static InterpolationGate FitGate(double[] lm, NGramEvidence[] ng, int components = 1, int iterations = 600, double learningRate = 0.1)
    {
        if (components is < 1 or > 2) throw new ArgumentOutOfRangeException(nameof(components), components, "interpolation gate: 1 (∞-gram) or 2 (∞-gram and backoff) components.");
        int F = InterpolationGate.FeatureCount, C = components, T = ng.Length - 1;
        var feats = new double[T * F];
        var p = new double[T * (C + 1)];   // (LM, ∞-gram, backoff) probability of each target
        for (int t = 1; t < ng.Length; t++)
        {
            InterpolationGate.Features(ng[t], feats.AsSpan((t - 1) * F, F));
            p[(t - 1) * (C + 1)] = Math.Exp(lm[t - 1]);
            p[(t - 1) * (C + 1) + 1] = ng[t].Longest.Probability;
            if (C > 1) p[(t - 1) * (C + 1) + 2] = ng[t].Backoff.Probability;
        }
        var w = new double[C * F];
        for (int c = 0; c < C; c++)
            for (int j = 0; j < InterpolationGate.BucketEdges.Length; j++) w[c * F + j] = -2;   // start near a weight of 0.12 each
        var m = new double[w.Length];
        var v = new double[w.Length];
        var grad = new double[w.Length];
        var mix = new double[C + 1];
        for (int it = 1; it <= iterations; it++)
        {
            Array.Clear(grad);
            for (int t = 0; t < T; t++)
            {
                var f = feats.AsSpan(t * F, F);
                var pt = p.AsSpan(t * (C + 1), C + 1);
                InterpolationGate.Softmax(w, C, f, mix);
                double q = 0;
                for (int c = 0; c <= C; c++) q += mix[c] * pt[c];
                // d(−ln q)/dz_c = −w_c·(p_c − q)/q for the logit z_c of component c ≥ 1.
                for (int c = 1; c <= C; c++)
                {
                    double g = -mix[c] * (pt[c] - q) / q;
                    for (int j = 0; j < F; j++) grad[(c - 1) * F + j] += g * f[j];
                }
            }
            for (int j = 0; j < w.Length; j++)
            {
                double gj = grad[j] / T;
                m[j] = 0.9 * m[j] + 0.1 * gj;
                v[j] = 0.999 * v[j] + 0.001 * gj * gj;
                double mh = m[j] / (1 - Math.Pow(0.9, it)), vh = v[j] / (1 - Math.Pow(0.999, it));
                w[j] -= learningRate * mh / (Math.Sqrt(vh) + 1e-8);
            }
        }
        return new InterpolationGate(C, w);
    }

    /// <summary>
    /// Fits λ and the two gates on (<paramref name="fitLm"/>, <paramref name="fitNg"/>) and reports
    /// bits per byte of the LM alone, the fixed mixture, the gated mixture and the gated mixture with
    /// the backoff on the evaluation split (<paramref name="evalBytes"/> = its UTF-8 size, as in
    /// <see cref="BitsPerByte"/>).
    /// </summary>
    public static InterpolationReport Report(string fitSplit, double[] fitLm, NGramEvidence[] fitNg,
        string evalSplit, double[] evalLm, NGramEvidence[] evalNg, long evalBytes)
    {
        if (fitLm.Length + 1 != fitNg.Length || evalLm.Length + 1 != evalNg.Length)
            throw new ArgumentException("interpolation: the LM scores one target fewer than the ∞-gram has positions (position 0 has no target).");
        var fitLongest = Array.ConvertAll(fitNg, e => e.Longest);
        var evalLongest = Array.ConvertAll(evalNg, e => e.Longest);
        double lambda = FitLambda(fitLm, fitLongest);
        var gate = FitGate(fitLm, fitNg, components: 1);
        var backoff = FitGate(fitLm, fitNg, components: 2);
        double toBits = 1 / (Math.Log(2) * evalBytes);
        double lmNats = 0;
        foreach (double lp in evalLm) lmNats -= lp;
        double fixedNats = Nats(evalLm, evalLongest, _ => lambda);
        return new InterpolationReport(fitSplit, evalSplit, evalLm.Length, evalBytes, lmNats * toBits, lambda, fixedNats * toBits,
            Nats(evalLm, evalNg, gate) * toBits, gate.Weights, Nats(evalLm, evalNg, backoff) * toBits, backoff.Weights,
            Histogram(evalLm, evalLongest));
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
/// log((1 − λ)·softmax(logits) + λ·p∞(· | longest matching suffix of the sequence)), λ fixed, or the
/// mixture a gate gives (with the backoff distribution of the suffix one token shorter when the gate
/// has two components). Temperature and filters then apply to the mixture.
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
        if (dist.Total == 0) return;
        Span<double> w = stackalloc double[3];
        w.Clear();
        NextTokenDistribution? backoff = null;
        if (gate is null) { w[0] = 1 - lambda; w[1] = lambda; }
        else
        {
            var longest = new InfinityProbability(dist.SuffixLength, dist.Total, 0);
            gate.Mix(new NGramEvidence(longest, default, dist.Tokens.Count, dist.Tokens.Count > 0 ? dist.Tokens[0].Count : 0), w);
            if (gate.Components > 1 && dist.SuffixLength > 0) backoff = store.NextTokens(history[^(dist.SuffixLength - 1)..]);
        }
        if (w[0] >= 1) return;
        if (p.Length != logits.Length) p = new double[logits.Length];
        float max = float.NegativeInfinity;
        foreach (float x in logits) max = Math.Max(max, x);
        double sum = 0;
        for (int i = 0; i < logits.Length; i++) { p[i] = Math.Exp(logits[i] - max); sum += p[i]; }
        for (int i = 0; i < logits.Length; i++) p[i] *= w[0] / sum;
        foreach (var tc in dist.Tokens) p[tc.Token] += w[1] * tc.Count / dist.Total;
        if (backoff is { Total: > 0 }) foreach (var tc in backoff.Tokens) p[tc.Token] += w[2] * tc.Count / backoff.Total;
        for (int i = 0; i < logits.Length; i++) logits[i] = (float)Math.Log(p[i]);
    }
}
