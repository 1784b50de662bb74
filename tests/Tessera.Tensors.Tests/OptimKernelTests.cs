using Tessera.Tensors;

namespace Tessera.Tensors.Tests;

/// <summary>
/// The vectorised, chunked, parallel AdamW update and gradient clipping against plain scalar loops:
/// AdamW is elementwise and must match bit for bit at every length (all SIMD tails, chunk
/// boundaries); the clip norm is a double sum whose order may differ, so it gets a derived bound.
/// </summary>
public class OptimKernelTests
{
    static float[] RandomArray(Rng rng, int n, float scale)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
        return a;
    }

    [Fact]
    public void AdamWEqualsTheScalarUpdateBitForBitAtEveryLength()
    {
        var rng = new Rng(11);
        // 0..256 hits every vector tail; the large ones cross chunk boundaries and run on the pool.
        var lengths = new List<int>();
        for (int n = 0; n <= 256; n++) lengths.Add(n);
        lengths.AddRange([16_383, 16_384, 16_385, 70_001]);
        var ps = new List<Tensor>();
        foreach (int n in lengths)
        {
            var p = Tensor.FromArray(RandomArray(rng, n, 1f), [n], $"p{n}");
            p.RequiresGrad = true;
            ps.Add(p);
        }
        var expected = new List<float[]>();
        foreach (var p in ps) expected.Add(p.ToArray());
        var m = new List<float[]>(); var v = new List<float[]>();
        foreach (var p in ps) { m.Add(new float[p.Length]); v.Add(new float[p.Length]); }
        const float lr = 3e-3f, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f, wd = 0.1f;
        using var opt = new AdamW(ps, lr, b1, b2, eps, wd, decays: t => t.Length % 2 == 0);
        for (int step = 1; step <= 3; step++)
        {
            var grads = new List<float[]>();
            foreach (var p in ps)
            {
                var g = RandomArray(rng, p.Length, 0.1f);
                grads.Add(g);
                using (var graph = new Graph()) graph.Backward(graph.Scale(graph.Sum(p), 0f)); // allocates p.Grad
                g.CopyTo(p.Grad!.AsSpan());
            }
            opt.Step();
            // The scalar loop AdamW had before it was vectorised, constants computed the same way.
            double lrd = lr;
            float stepSize = (float)(lrd / (1 - Math.Pow(b1, step)));
            float bc2Sqrt = (float)Math.Sqrt(1 - Math.Pow(b2, step));
            float shrink = (float)(1 - lrd * wd);
            float c1 = (float)(1 - (double)b1), c2 = (float)(1 - (double)b2);
            for (int i = 0; i < ps.Count; i++)
            {
                var e = expected[i]; var g = grads[i]; var mi = m[i]; var vi = v[i];
                bool decay = ps[i].Length % 2 == 0;
                for (int j = 0; j < e.Length; j++)
                {
                    if (decay) e[j] *= shrink;
                    mi[j] = mi[j] * b1 + g[j] * c1;
                    vi[j] = vi[j] * b2 + g[j] * g[j] * c2;
                    float denom = MathF.Sqrt(vi[j]) / bc2Sqrt + eps;
                    e[j] -= stepSize * (mi[j] / denom);
                }
                Assert.Equal(e, ps[i].ToArray());
                Assert.Equal(mi, opt.FirstMoment(i).ToArray());
                Assert.Equal(vi, opt.SecondMoment(i).ToArray());
            }
        }
        foreach (var p in ps) p.Dispose();
    }

    [Fact]
    public void ClipNormMatchesAScalarDoubleSumAndScalesEveryElement()
    {
        var rng = new Rng(12);
        int[] lengths = [0, 1, 15, 16, 17, 255, 16_384, 40_000];
        var ps = new List<Tensor>();
        double sumSq = 0;
        foreach (int n in lengths)
        {
            var p = Tensor.Zeros([n], $"p{n}");
            p.RequiresGrad = true;
            using (var graph = new Graph()) graph.Backward(graph.Scale(graph.Sum(p), 0f));
            var g = RandomArray(rng, n, 3f);
            g.CopyTo(p.Grad!.AsSpan());
            foreach (float x in g) sumSq += (double)x * x;
            ps.Add(p);
        }
        var before = ps.ConvertAll(p => p.Grad!.ToArray());
        double expected = Math.Sqrt(sumSq);
        double norm = GradClip.ClipGlobalNorm(ps, 1.0);
        // Reordering a sum of n non-negative doubles changes it by at most n·ε·Σ.
        long total = 0; foreach (int n in lengths) total += n;
        Assert.True(Math.Abs(norm * norm - sumSq) <= (total + 4) * 2.3e-16 * sumSq, $"{norm} vs {expected}");
        float c = (float)(1.0 / (norm + 1e-6));
        for (int i = 0; i < ps.Count; i++)
        {
            var want = Array.ConvertAll(before[i], x => x * c);
            Assert.Equal(want, ps[i].Grad!.ToArray());
        }
        foreach (var p in ps) p.Dispose();
    }
}
