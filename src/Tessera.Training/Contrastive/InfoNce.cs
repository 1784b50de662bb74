using Tessera.Tensors;

namespace Tessera.Training.Contrastive;

/// <summary>
/// The contrastive loss of a bi-encoder with in-batch negatives (InfoNCE), as one op on the tape.
/// Each sequence's embedding is the sum over its real positions of the final normalised hidden
/// state, L2-normalised (the same vector the inference engine's <c>Embed</c> returns, so a model
/// trained here is used unchanged by the retrieval index). With unit query vectors qᵢ and positive
/// vectors dⱼ of B pairs, sᵢⱼ = qᵢ·dⱼ / τ and
/// L = (1/B) Σᵢ [log Σⱼ exp sᵢⱼ − sᵢᵢ]: every other pair's positive is a negative. Symmetric adds
/// the document-to-query direction (columns) and averages the two.
/// </summary>
public static class InfoNce
{
    /// <summary>
    /// The loss (a scalar tensor) from query hidden states <paramref name="queries"/> (B·Tq, D) and
    /// positive hidden states <paramref name="positives"/> (B·Td, D), each row b holding
    /// <paramref name="queryLengths"/>[b] / <paramref name="positiveLengths"/>[b] real positions from
    /// its start (the rest is padding and is ignored).
    /// </summary>
    public static Tensor Loss(Graph g, Tensor queries, ReadOnlySpan<int> queryLengths, Tensor positives, ReadOnlySpan<int> positiveLengths,
        float temperature, bool symmetric = true)
    {
        int b = queryLengths.Length;
        if (b < 2) throw new ArgumentException($"InfoNCE: in-batch negatives need at least 2 pairs, got {b}.");
        if (positiveLengths.Length != b) throw new ArgumentException($"InfoNCE: {b} queries but {positiveLengths.Length} positives.");
        if (!(temperature > 0)) throw new ArgumentOutOfRangeException(nameof(temperature), temperature, "InfoNCE: the temperature must be > 0.");
        int d = queries.Dim(1);
        if (positives.Dim(1) != d) throw new ArgumentException($"InfoNCE: queries are {d} wide, positives {positives.Dim(1)}.");
        var q = new Pooled(queries.AsSpan("InfoNCE"), queryLengths, b, d, "queries");
        var p = new Pooled(positives.AsSpan("InfoNCE"), positiveLengths, b, d, "positives");
        var grad = new double[b * b];   // dL/ds, filled by the forward for the backward
        double loss = Forward(q.Unit, p.Unit, b, d, temperature, symmetric, grad);
        int[] ql = queryLengths.ToArray(), pl = positiveLengths.ToArray();
        return g.Custom("InfoNCE", [], [queries, positives], y => y[0] = (float)loss, (dy, dx) =>
        {
            double up = dy[0] / temperature;
            // dL/dq̂ᵢ = Σⱼ Gᵢⱼ d̂ⱼ / τ and dL/dd̂ⱼ = Σᵢ Gᵢⱼ q̂ᵢ / τ, then through the normalisation and the sum.
            var gq = new double[b * d];
            var gp = new double[b * d];
            for (int i = 0; i < b; i++)
                for (int j = 0; j < b; j++)
                {
                    double gij = grad[i * b + j] * up;
                    if (gij == 0) continue;
                    for (int k = 0; k < d; k++)
                    {
                        gq[i * d + k] += gij * p.Unit[j * d + k];
                        gp[j * d + k] += gij * q.Unit[i * d + k];
                    }
                }
            q.Backward(gq, dx(0), ql, queries.Dim(0) / b);
            p.Backward(gp, dx(1), pl, positives.Dim(0) / b);
        });
    }

    /// <summary>The loss of unit vectors <paramref name="q"/> and <paramref name="p"/> (B × D each); writes dL/ds into <paramref name="grad"/> (B × B).</summary>
    internal static double Forward(double[] q, double[] p, int b, int d, double temperature, bool symmetric, double[] grad)
    {
        var s = new double[b * b];
        for (int i = 0; i < b; i++)
            for (int j = 0; j < b; j++)
            {
                double dot = 0;
                for (int k = 0; k < d; k++) dot += q[i * d + k] * p[j * d + k];
                s[i * b + j] = dot / temperature;
            }
        double w = symmetric ? 0.5 / b : 1.0 / b, loss = 0;
        Array.Clear(grad);
        // Rows: each query against every positive; with symmetric, also columns: each positive against every query.
        foreach (bool columns in symmetric ? new[] { false, true } : [false])
            for (int a = 0; a < b; a++)
            {
                int At(int k) => columns ? k * b + a : a * b + k;   // the k-th logit of softmax a
                double max = double.NegativeInfinity;
                for (int k = 0; k < b; k++) max = Math.Max(max, s[At(k)]);
                double z = 0;
                for (int k = 0; k < b; k++) z += Math.Exp(s[At(k)] - max);
                loss += w * (max + Math.Log(z) - s[a * b + a]);
                for (int k = 0; k < b; k++) grad[At(k)] += w * (Math.Exp(s[At(k)] - max) / z - (k == a ? 1 : 0));
            }
        return loss;
    }

    /// <summary>Sum-pooled rows and their unit vectors (double precision).</summary>
    sealed class Pooled
    {
        public readonly double[] Unit;
        readonly double[] norm;
        readonly int d;

        public Pooled(ReadOnlySpan<float> h, ReadOnlySpan<int> lengths, int b, int d, string what)
        {
            this.d = d;
            if (h.Length % (b * d) != 0) throw new ArgumentException($"InfoNCE: {what} hold {h.Length} values, not B={b} rows of T×{d}.");
            int t = h.Length / (b * d);
            Unit = new double[b * d];
            norm = new double[b];
            for (int i = 0; i < b; i++)
            {
                if (lengths[i] < 1 || lengths[i] > t) throw new ArgumentException($"InfoNCE: {what} row {i} has length {lengths[i]}, expected 1..{t}.");
                for (int pos = 0; pos < lengths[i]; pos++)
                    for (int k = 0; k < d; k++) Unit[i * d + k] += h[(i * t + pos) * d + k];
                double n = 0;
                for (int k = 0; k < d; k++) n += Unit[i * d + k] * Unit[i * d + k];
                n = Math.Sqrt(n);
                if (n == 0) throw new ArgumentException($"InfoNCE: {what} row {i} pools to a zero vector.");
                norm[i] = n;
                for (int k = 0; k < d; k++) Unit[i * d + k] /= n;
            }
        }

        /// <summary>Adds the gradient of the unit vectors (<paramref name="gUnit"/>) into the hidden states' gradient.</summary>
        public void Backward(double[] gUnit, Span<float> gh, int[] lengths, int t)
        {
            if (gh.IsEmpty) return;
            int b = norm.Length;
            var gu = new double[d];
            for (int i = 0; i < b; i++)
            {
                double dot = 0;
                for (int k = 0; k < d; k++) dot += Unit[i * d + k] * gUnit[i * d + k];
                for (int k = 0; k < d; k++) gu[k] = (gUnit[i * d + k] - Unit[i * d + k] * dot) / norm[i];
                for (int pos = 0; pos < lengths[i]; pos++)
                    for (int k = 0; k < d; k++) gh[(i * t + pos) * d + k] += (float)gu[k];
            }
        }
    }
}
