using System.Numerics.Tensors;
using Tessera.Kernels;

namespace Tessera.Tensors;

/// <summary>Fused knowledge-distillation loss against a teacher's top-k logits.</summary>
public sealed partial class Graph
{
    /// <summary>
    /// T²·mean over rows of KL(p ‖ q), a rank-0 tensor. q = softmax(z/T) is the student's
    /// distribution over its whole vocabulary (logits z, (N, V)). The teacher gives, per row r, its
    /// k largest logits <paramref name="teacherLogits"/>[r·k ..] at vocabulary ids
    /// <paramref name="teacherIds"/>[r·k ..] (distinct within a row) and, optionally, the
    /// probability mass P it puts on all other tokens at temperature T
    /// (<paramref name="teacherTailMass"/>[r]). The teacher distribution is then
    /// p_S = (1 − P)·softmax(v/T) on the k ids plus one lumped "rest" bin of mass P, compared with
    /// the student's mass on the same k ids and on the rest (Q = Σ_{j∉S} q_j):
    /// KL = Σ_S p (log p − log q) + P (log P − log Q). Without tail masses P = 0: the teacher's
    /// top-k renormalised, which over-sharpens a high-entropy teacher (the student learns to give
    /// the rest nothing). The T² factor keeps gradient scale independent of T (Hinton et al.).
    /// Backward: dz_j = T·(q_j − p_j) on the k ids and T·q_j·(1 − P/Q) elsewhere, times dLoss/N.
    /// Saves per row the log-sum-exp of z/T, Q and p; never stores q.
    /// </summary>
    public Tensor DistillationKL(Tensor logits, ReadOnlySpan<int> teacherIds, ReadOnlySpan<float> teacherLogits, int k, float temperature,
        ReadOnlySpan<float> teacherTailMass = default)
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
        if (!teacherTailMass.IsEmpty && teacherTailMass.Length != n)
            throw new ArgumentException($"{op}: {teacherTailMass.Length} teacher tail masses for {n} rows.");
        for (int i = 0; i < teacherIds.Length; i++)
            if ((uint)teacherIds[i] >= (uint)v)
                throw new ArgumentException($"{op}: teacher id {teacherIds[i]} (row {i / k}) is outside the student's vocabulary of {v}.");
        for (int i = 0; i < teacherTailMass.Length; i++)
            if (!(teacherTailMass[i] is >= 0f and < 1f))
                throw new ArgumentException($"{op}: teacher tail mass {teacherTailMass[i]} (row {i}) must be in [0, 1).");

        var ids = teacherIds.ToArray();
        var tail = teacherTailMass.IsEmpty ? new float[n] : teacherTailMass.ToArray();
        var p = NewSaved(op, [n, k]);
        var lse = NewSaved(op, [n]);
        var studentTail = NewSaved(op, [n]);
        float invT = 1f / temperature;
        TeacherProbabilities(teacherLogits, tail, p.AsSpan(op), n, k, invT);
        StudentLogSumExp(logits, ids, lse, studentTail, n, v, k, invT, op);
        var z = logits.AsSpan(op);
        var ps = p.AsSpan(op);
        var ls = lse.AsSpan(op);
        var qt = studentTail.AsSpan(op);
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
            if (tail[r] > 0) sum += tail[r] * (Math.Log(tail[r]) - Math.Log(Math.Max(qt[r], float.Epsilon)));
            total += sum;
        }
        var y = NewOutput(op, [], false, logits);
        y.AsSpan(op)[0] = n == 0 ? 0f : (float)((double)temperature * temperature * total / n);
        Record(op, y, [logits], () =>
        {
            var dl = BeginGrad(logits, out bool scratch);
            float scale = n == 0 ? 0f : temperature * y.Grad!.AsSpan(op)[0] / n;
            StudentGradient(logits, lse, studentTail, p, ids, tail, dl, n, v, k, invT, scale, op);
            EndGrad(logits, dl, scratch);
        });
        return y;
    }

    /// <summary>p = (1 − P)·softmax(v/T) over each row's k teacher logits, in double for the normaliser.</summary>
    static void TeacherProbabilities(ReadOnlySpan<float> values, float[] tail, Span<float> p, int n, int k, float invT)
    {
        for (int r = 0; r < n; r++)
        {
            var row = values.Slice(r * k, k);
            float max = TensorPrimitives.Max(row);
            double sum = 0;
            for (int j = 0; j < k; j++) sum += Math.Exp(((double)row[j] - max) * invT);
            double mass = 1.0 - tail[r];
            for (int j = 0; j < k; j++) p[r * k + j] = (float)(mass * Math.Exp(((double)row[j] - max) * invT) / sum);
        }
    }

    /// <summary>
    /// lse[r] = log Σ_j exp(z[r, j]/T) and Q[r] = the student's mass off the teacher's ids, summed
    /// directly over those columns (not 1 − Σ_S q, which cancels when the student is sure), rows
    /// split over the worker pool.
    /// </summary>
    static void StudentLogSumExp(Tensor logits, int[] ids, Tensor lse, Tensor studentTail, int n, int v, int k, float invT, string op)
    {
        int threads = WorkerPool.Shared.ThreadCount;
        var scratch = new float[threads * v];
        WorkerPool.Shared.For(n, (worker, start, end) =>
        {
            var z = logits.AsSpan(op);
            var l = lse.AsSpan(op);
            var qt = studentTail.AsSpan(op);
            var tmp = scratch.AsSpan(worker * v, v);
            for (int r = start; r < end; r++)
            {
                var row = z.Slice(r * v, v);
                float max = TensorPrimitives.Max(row);
                TensorPrimitives.Subtract(row, max, tmp);
                TensorPrimitives.Multiply(tmp, invT, tmp);
                TensorPrimitives.Exp(tmp, tmp);
                double all = TensorPrimitives.Sum(tmp);
                l[r] = (float)((double)max * invT + Math.Log(all));
                for (int j = 0; j < k; j++) tmp[ids[r * k + j]] = 0f;
                qt[r] = (float)(TensorPrimitives.Sum(tmp) / all);
            }
        });
    }

    /// <summary>dz[r, j] = scale·(q_j − p_j) on the teacher ids and scale·q_j·(1 − P/Q) elsewhere.</summary>
    static void StudentGradient(Tensor logits, Tensor lse, Tensor studentTail, Tensor p, int[] ids, float[] tail, Tensor dl,
        int n, int v, int k, float invT, float scale, string op)
    {
        WorkerPool.Shared.For(n, (_, start, end) =>
        {
            var z = logits.AsSpan(op);
            var l = lse.AsSpan(op);
            var qt = studentTail.AsSpan(op);
            var ps = p.AsSpan(op);
            var d = dl.AsSpan(op);
            for (int r = start; r < end; r++)
            {
                var dr = d.Slice(r * v, v);
                var zr = z.Slice(r * v, v);
                float rest = tail[r] == 0 ? 1f : (float)(1.0 - tail[r] / Math.Max(qt[r], float.Epsilon));
                TensorPrimitives.Multiply(zr, invT, dr);
                TensorPrimitives.Subtract(dr, l[r], dr);
                TensorPrimitives.Exp(dr, dr);
                TensorPrimitives.Multiply(dr, rest * scale, dr);
                for (int j = 0; j < k; j++)
                {
                    int c = ids[r * k + j];
                    dr[c] = (float)((Math.Exp((double)zr[c] * invT - l[r]) - ps[r * k + j]) * scale);
                }
            }
        });
    }
}
