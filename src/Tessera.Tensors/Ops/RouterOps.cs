namespace Tessera.Tensors;

/// <summary>
/// Mixture-of-experts routing: the (non-differentiable) top-k choice and the two auxiliary router
/// losses. Convention (Mixtral / Hugging Face): probabilities p = softmax(router logits) over all
/// experts; the top-k of p are chosen; gates = the chosen p renormalised to sum to 1 (which equals a
/// softmax over the chosen logits). Gates are built with <see cref="GatherColumns"/> and
/// <see cref="NormalizeRows"/>; tokens move with <see cref="GatherRows"/> and <see cref="ScatterRowsWeighted"/>.
/// </summary>
public sealed partial class Graph
{
    /// <summary>
    /// Column ids of the k largest values of each row of x (N, C), descending, ties to the lower id:
    /// an int array of N·k. Not differentiable (the gradient flows through the gathered values instead).
    /// </summary>
    public int[] TopK(Tensor x, int k)
    {
        const string op = "TopK";
        Usable(op, x);
        if (x.Rank != 2) throw new ArgumentException($"{op}: input {Describe(x)} must be 2-D (N, C).");
        int n = x.Dim(0), c = x.Dim(1);
        var idx = new int[n * k];
        var values = new float[n * k];
        if (n > 0) Kernels.TopK.Select(x.AsSpan(op), n, c, k, idx, values);
        return idx;
    }

    /// <summary>
    /// Switch/Mixtral load-balancing loss E·Σₑ fₑ·Pₑ for router probabilities (N, E) and the chosen
    /// ids (N·k): fₑ = (assignments to e)/N (a constant; sums to k), Pₑ = mean over tokens of p[:, e].
    /// Equals k when routing is perfectly uniform. Backward: dp[t, e] = dLoss·E·fₑ/N.
    /// </summary>
    public Tensor LoadBalanceLoss(Tensor probs, ReadOnlySpan<int> topIds)
    {
        const string op = "LoadBalanceLoss";
        Usable(op, probs);
        if (probs.Rank != 2 || probs.Dim(0) == 0 || topIds.Length % probs.Dim(0) != 0)
            throw new ArgumentException($"{op}: probabilities {Describe(probs)} must be (N > 0, E) with N·k = {topIds.Length} expert ids.");
        int n = probs.Dim(0), e = probs.Dim(1);
        var f = new double[e];
        foreach (int id in topIds)
        {
            if ((uint)id >= (uint)e) throw new ArgumentOutOfRangeException(nameof(topIds), id, $"{op}: expert id {id} is outside [0, {e}).");
            f[id] += 1.0 / n;
        }
        var p = probs.AsSpan(op);
        double loss = 0;
        for (int j = 0; j < e; j++)
        {
            double mean = 0;
            for (int t = 0; t < n; t++) mean += p[t * e + j];
            loss += f[j] * mean / n;
        }
        var y = NewOutput(op, [], false, probs);
        y.AsSpan(op)[0] = (float)(e * loss);
        Record(op, y, [probs], () =>
        {
            var dp = GradSpan(probs);
            double g = y.Grad!.AsSpan(op)[0];
            for (int t = 0; t < n; t++)
                for (int j = 0; j < e; j++) dp[t * e + j] += (float)(g * e * f[j] / n);
        });
        return y;
    }

    /// <summary>
    /// Router z-loss (ST-MoE): mean over tokens of logsumexp(logits[t, :])², which keeps router
    /// logits small. Backward: dlogits[t, e] = dLoss·2·lseₜ·softmax(logits[t])ₑ / N.
    /// </summary>
    public Tensor RouterZLoss(Tensor logits)
    {
        const string op = "RouterZLoss";
        Usable(op, logits);
        if (logits.Rank != 2 || logits.Dim(0) == 0 || logits.Dim(1) == 0)
            throw new ArgumentException($"{op}: logits {Describe(logits)} must be (N > 0, E > 0).");
        int n = logits.Dim(0), e = logits.Dim(1);
        var lse = new double[n];
        var x = logits.AsSpan(op);
        double loss = 0;
        for (int t = 0; t < n; t++)
        {
            double max = double.NegativeInfinity, sum = 0;
            for (int j = 0; j < e; j++) max = Math.Max(max, x[t * e + j]);
            for (int j = 0; j < e; j++) sum += Math.Exp(x[t * e + j] - max);
            lse[t] = max + Math.Log(sum);
            loss += lse[t] * lse[t];
        }
        var y = NewOutput(op, [], false, logits);
        y.AsSpan(op)[0] = (float)(loss / n);
        Record(op, y, [logits], () =>
        {
            var dx = GradSpan(logits); var xs = logits.AsSpan(op);
            double g = y.Grad!.AsSpan(op)[0];
            for (int t = 0; t < n; t++)
                for (int j = 0; j < e; j++)
                    dx[t * e + j] += (float)(g * 2 * lse[t] * Math.Exp(xs[t * e + j] - lse[t]) / n);
        });
        return y;
    }
}
