using System.Numerics.Tensors;
using Tessera.Kernels;

namespace Tessera.Tensors;

/// <summary>Fused knowledge-distillation loss against a teacher's top-k logits.</summary>
public sealed partial class Graph
{
    /// <summary>
    /// T²·mean over rows of KL(p ‖ q), a rank-0 tensor, where q = softmax(z/T) is the student's
    /// distribution over its whole vocabulary (logits z, (N, V)) and p = softmax(v/T) is the
    /// teacher's distribution renormalised over its top-k support: row r's k logits
    /// <paramref name="teacherLogits"/>[r·k ..] at vocabulary ids <paramref name="teacherIds"/>[r·k ..]
    /// (distinct within a row). Because p is zero off that support, KL(p ‖ q) = Σ_S p (log p − log q)
    /// exactly; the student is still normalised over all V, so mass it puts outside the teacher's
    /// top-k is penalised through log q. The T² factor keeps gradient scale independent of T
    /// (Hinton et al.). Backward: dz = T·(q − p)·dLoss / N, with p scattered onto its ids.
    /// Saves each row's log-sum-exp of z/T and p; never stores q.
    /// </summary>
    public Tensor DistillationKL(Tensor logits, ReadOnlySpan<int> teacherIds, ReadOnlySpan<float> teacherLogits, int k, float temperature)
    {
        const string op = "DistillationKL";
        Usable(op, logits);
        if (logits.Rank != 2)
            throw new ArgumentException($"{op}: logits {Describe(logits)} must be (N, V).");
        int n = logits.Dim(0), v = logits.Dim(1);
        if (k < 1 || k > v)
            throw new ArgumentException($"{op}: top-k {k} must be in [1, V = {v}].");
        if (!(temperature > 0) || !float.IsFinite(temperature))
            throw new ArgumentException($"{op}: temperature {temperature} must be positive and finite.");
        if (teacherIds.Length != (long)n * k || teacherLogits.Length != (long)n * k)
            throw new ArgumentException($"{op}: teacher ids ({teacherIds.Length}) and logits ({teacherLogits.Length}) must both hold N·k = {n}·{k} entries.");
        for (int i = 0; i < teacherIds.Length; i++)
            if ((uint)teacherIds[i] >= (uint)v)
                throw new ArgumentException($"{op}: teacher id {teacherIds[i]} (row {i / k}) is outside the student's vocabulary of {v}.");

        var ids = teacherIds.ToArray();
        var p = NewSaved(op, [n, k]);
        var lse = NewSaved(op, [n]);
        var kl = new double[n];
        float invT = 1f / temperature;
        TeacherProbabilities(teacherLogits, p.AsSpan(op), n, k, invT);
        StudentLogSumExp(logits, lse, n, v, invT, op);
        var z = logits.AsSpan(op);
        var ps = p.AsSpan(op);
        var ls = lse.AsSpan(op);
        // Row terms are summed serially in row order, in double: identical for any thread count.
        double total = 0;
        for (int r = 0; r < n; r++)
        {
            double sum = 0;
            for (int j = 0; j < k; j++)
            {
                double pj = ps[r * k + j];
                if (pj == 0) continue;                                   // 0·log 0 = 0
                double logQ = (double)z[r * v + ids[r * k + j]] * invT - ls[r];
                sum += pj * (Math.Log(pj) - logQ);
            }
            total += sum;
        }
        var y = NewOutput(op, [], false, logits);
        y.AsSpan(op)[0] = n == 0 ? 0f : (float)((double)temperature * temperature * total / n);
        Record(op, y, [logits], () =>
        {
            var dl = BeginGrad(logits, out bool scratch);
            float scale = n == 0 ? 0f : temperature * y.Grad!.AsSpan(op)[0] / n;
            StudentGradient(logits, lse, p, ids, dl, n, v, k, invT, scale, op);
            EndGrad(logits, dl, scratch);
        });
        return y;
    }

    /// <summary>p = softmax(v/T) over each row's k teacher logits, in double for the normaliser.</summary>
    static void TeacherProbabilities(ReadOnlySpan<float> values, Span<float> p, int n, int k, float invT)
    {
        for (int r = 0; r < n; r++)
        {
            var row = values.Slice(r * k, k);
            float max = TensorPrimitives.Max(row);
            double sum = 0;
            for (int j = 0; j < k; j++) sum += Math.Exp(((double)row[j] - max) * invT);
            for (int j = 0; j < k; j++) p[r * k + j] = (float)(Math.Exp(((double)row[j] - max) * invT) / sum);
        }
    }

    /// <summary>lse[r] = log Σ_j exp(z[r, j]/T), rows split over the worker pool.</summary>
    static void StudentLogSumExp(Tensor logits, Tensor lse, int n, int v, float invT, string op)
    {
        int threads = WorkerPool.Shared.ThreadCount;
        var scratch = new float[threads * v];
        WorkerPool.Shared.For(n, (worker, start, end) =>
        {
            var z = logits.AsSpan(op);
            var l = lse.AsSpan(op);
            var tmp = scratch.AsSpan(worker * v, v);
            for (int r = start; r < end; r++)
            {
                var row = z.Slice(r * v, v);
                float max = TensorPrimitives.Max(row);
                TensorPrimitives.Subtract(row, max, tmp);
                TensorPrimitives.Multiply(tmp, invT, tmp);
                TensorPrimitives.Exp(tmp, tmp);
                l[r] = (float)((double)max * invT + Math.Log(TensorPrimitives.Sum(tmp)));
            }
        });
    }

    /// <summary>dz[r, :] = scale·(exp(z/T − lse) − p scattered onto the teacher ids).</summary>
    static void StudentGradient(Tensor logits, Tensor lse, Tensor p, int[] ids, Tensor dl, int n, int v, int k, float invT, float scale, string op)
    {
        WorkerPool.Shared.For(n, (_, start, end) =>
        {
            var z = logits.AsSpan(op);
            var l = lse.AsSpan(op);
            var ps = p.AsSpan(op);
            var d = dl.AsSpan(op);
            for (int r = start; r < end; r++)
            {
                var dr = d.Slice(r * v, v);
                TensorPrimitives.Multiply(z.Slice(r * v, v), invT, dr);
                TensorPrimitives.Subtract(dr, l[r], dr);
                TensorPrimitives.Exp(dr, dr);
                for (int j = 0; j < k; j++) dr[ids[r * k + j]] -= ps[r * k + j];
                TensorPrimitives.Multiply(dr, scale, dr);
            }
        });
    }
}
