using Tessera.Tensors;

namespace Tessera.Tensors.Tests;

/// <summary>
/// <see cref="Graph.SplitHeads"/> and <see cref="Graph.MergeHeads"/>: finite differences, and
/// bit-equality with the Reshape + Rope + Permute chain they replace in the attention block.
/// </summary>
public class HeadLayoutTests
{
    const int B = 2, T = 5, H = 3, D = 4;

    [Theory]
    [InlineData(false, 0)]
    [InlineData(true, 0)]
    [InlineData(true, 3)]
    public void SplitHeadsGradientsMatchFiniteDifferences(bool rotate, int offset)
    {
        var rng = new Rng(50);
        var table = new RopeTable(16, D, 10000f);
        var x = GradCheck.Random(rng, [B * T, H * D], "x");
        try { GradCheck.Check("SplitHeads", [x], (g, a) => g.SplitHeads(a[0], B, T, H, rotate ? table : null, offset)); }
        finally { x.Dispose(); }
    }

    [Fact]
    public void MergeHeadsGradientsMatchFiniteDifferences()
    {
        var rng = new Rng(51);
        var o = GradCheck.Random(rng, [B, H, T, D], "o");
        try { GradCheck.Check("MergeHeads", [o], (g, a) => g.MergeHeads(a[0])); }
        finally { o.Dispose(); }
    }

    /// <summary>
    /// Both gradient paths of SplitHeads (a fresh dx, and adding into an existing one) must equal
    /// the old chain bit for bit; the head tensor has two consumers, so MergeHeads adds too.
    /// </summary>
    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public void EqualsReshapeRopePermuteBitForBit(bool rotate, bool existingGrad)
    {
        var rng = new Rng(52);
        var table = new RopeTable(16, D, 10000f);
        var data = new float[B * T * H * D];
        rng.FillUniform(data, -1f, 1f);
        using var seed1 = GradCheck.Random(rng, [B * T, H * D], "seed1");
        using var seed2 = GradCheck.Random(rng, [B, H, T, D], "seed2");

        (float[] Y, float[] Dx) Run(bool fused)
        {
            using var x = Tensor.FromArray(data, [B * T, H * D], "x");
            x.RequiresGrad = true;
            if (existingGrad)
                using (var pre = new Graph()) pre.Backward(pre.Sum(pre.Mul(x, x))); // dx = 2x already there
            using var g = new Graph();
            Tensor heads;
            if (fused) heads = g.SplitHeads(x, B, T, H, rotate ? table : null, 2);
            else
            {
                var r = g.Reshape(x, [B, T, H, D]);
                if (rotate) r = g.Rope(r, table, 2);
                heads = g.Permute(r, [0, 2, 1, 3]);
            }
            var merged = fused ? g.MergeHeads(heads) : g.Reshape(g.Permute(heads, [0, 2, 1, 3]), [B * T, H * D]);
            var loss = g.Add(g.Sum(g.Mul(merged, seed1)), g.Sum(g.Mul(heads, seed2)));
            var y = merged.ToArray();
            g.Backward(loss);
            return (y, x.Grad!.ToArray());
        }

        var slow = Run(false);
        var fast = Run(true);
        Assert.Equal(slow.Y, fast.Y);
        Assert.Equal(slow.Dx, fast.Dx);
    }
}
