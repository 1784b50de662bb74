using Tessera.Model;
using Tessera.Tensors;

namespace Tessera.Training.Tests;

/// <summary>Sparse upcycling and branch-train-mix merging: what the new model starts as, and what is refused.</summary>
public sealed class GrowthTests(Xunit.Abstractions.ITestOutputHelper output)
{
    static readonly ModelConfig Dense = new() { VocabSize = 53, Dim = 32, Layers = 2, Heads = 4, KvHeads = 2, HiddenDim = 48, ContextLength = 32 };

    static float[] Logits(Transformer m, int[] ids, int batch, int seq)
    {
        using var g = new Graph(recordGradients: false);
        return m.Forward(g, ids, batch, seq).Logits.ToArray();
    }

    static int[] Ids(int n, int vocab, ulong seed)
    {
        var rng = new Rng(seed);
        var ids = new int[n];
        for (int i = 0; i < n; i++) ids[i] = rng.NextInt(vocab);
        return ids;
    }

    /// <summary>
    /// Σ gᵢ·MLP(x) with Σ gᵢ = 1: the upcycled model computes the dense model's function whatever
    /// the router says. The routers here are drawn at the default std (0.02) and at 2.0, where
    /// the gates are far from uniform and the top-k sets differ from token to token.
    /// Tolerance: the gate sum is 1 to ≈ k ulps and the weighted sum rounds once per expert, so
    /// each FFN output carries a relative error of a few float32 epsilons (1.2e-7), which the
    /// later layers carry to the logits; 1e-6 relative to the largest logit is ≈ 8 ε (measured:
    /// at most 7.4e-8, under one ulp) and would still catch a single wrong gate (an error of order
    /// the FFN output itself).
    /// </summary>
    [Theory]
    [InlineData(4, 2, 0.02f, 1UL)]
    [InlineData(4, 2, 2.0f, 2UL)]
    [InlineData(8, 3, 2.0f, 3UL)]
    [InlineData(2, 2, 1.0f, 4UL)]
    public void UpcycledModelStartsAsTheDenseModelForAnyRouter(int experts, int topK, float routerStd, ulong seed)
    {
        using var dense = new Transformer(Dense, seed: 11);
        using var moe = Upcycling.Upcycle(dense, experts, topK, seed);
        var rng = new Rng(seed * 31);
        for (int l = 0; l < Dense.Layers; l++) rng.FillNormal(moe.Parameters[$"model.layers.{l}.block_sparse_moe.gate.weight"].AsSpan("test"), 0f, routerStd);
        var ids = Ids(3 * 16, Dense.VocabSize, seed);
        var a = Logits(dense, ids, 3, 16);
        var b = Logits(moe, ids, 3, 16);
        Assert.Equal(a.Length, b.Length);
        float scale = a.Max(MathF.Abs), worst = 0;
        for (int i = 0; i < a.Length; i++) worst = MathF.Max(worst, MathF.Abs(a[i] - b[i]));
        output.WriteLine($"E={experts} k={topK} router std {routerStd}: max |Δlogit| {worst:E2}, max |logit| {scale:F3}, ratio {worst / scale:E2}");
        Assert.True(worst <= 1e-6f * scale, $"max |Δlogit| {worst:E2} exceeds 1e-6 × {scale:F3}");
        // The routers really were uneven: some token's chosen experts differ from another's.
        Assert.True(moe.LastExpertLoads.Count == Dense.Layers);
        Assert.Contains(moe.LastExpertLoads, load => load.Assigned.Distinct().Count() > 1 || experts == topK);
    }

    [Fact]
    public void UpcyclingCopiesEveryDenseWeightAndRefusesWhatWouldNotStartEqual()
    {
        using var dense = new Transformer(Dense, seed: 5);
        using var moe = Upcycling.Upcycle(dense, 4, 2, 9);
        Assert.Equal(dense.Parameters["model.layers.1.mlp.down_proj.weight"].ToArray(), moe.Parameters["model.layers.1.block_sparse_moe.experts.3.w2.weight"].ToArray());
        Assert.Equal(dense.Parameters["model.layers.0.self_attn.q_proj.weight"].ToArray(), moe.Parameters["model.layers.0.self_attn.q_proj.weight"].ToArray());
        Assert.Contains("k = 1", Assert.Throws<ArgumentException>(() => Upcycling.Upcycle(dense, 4, 1, 9)).Message);
        Assert.Contains("at least 2 experts", Assert.Throws<ArgumentException>(() => Upcycling.Config(Dense, 1, 1)).Message);
        Assert.Contains("already has 4 experts", Assert.Throws<ArgumentException>(() => Upcycling.Config(moe.Config, 8, 2)).Message);
    }

    [Fact]
    public void MergeTakesEachBranchsMlpAsAnExpertAndAveragesTheRest()
    {
        using var a = new Transformer(Dense, seed: 1);
        using var b = new Transformer(Dense, seed: 2);
        using var moe = BranchMerge.Merge([a, b], ["a", "b"], 2, 7);
        Assert.Equal(2, moe.Config.Experts);
        Assert.Equal(a.Parameters["model.layers.0.mlp.gate_proj.weight"].ToArray(), moe.Parameters["model.layers.0.block_sparse_moe.experts.0.w1.weight"].ToArray());
        Assert.Equal(b.Parameters["model.layers.1.mlp.up_proj.weight"].ToArray(), moe.Parameters["model.layers.1.block_sparse_moe.experts.1.w3.weight"].ToArray());
        var qa = a.Parameters["model.layers.1.self_attn.v_proj.weight"].ToArray();
        var qb = b.Parameters["model.layers.1.self_attn.v_proj.weight"].ToArray();
        var qm = moe.Parameters["model.layers.1.self_attn.v_proj.weight"].ToArray();
        for (int i = 0; i < qm.Length; i++) Assert.Equal((qa[i] + qb[i]) * 0.5f, qm[i]);
        // Two copies of one branch merge into that branch's function (averages of equal weights are exact).
        using var same = BranchMerge.Merge([a, a], ["a", "a"], 2, 7);
        var ids = Ids(2 * 8, Dense.VocabSize, 3);
        var la = Logits(a, ids, 2, 8);
        var ls = Logits(same, ids, 2, 8);
        float scale = la.Max(MathF.Abs);
        for (int i = 0; i < la.Length; i++) Assert.True(MathF.Abs(la[i] - ls[i]) <= 1e-5f * scale, $"logit {i}: {la[i]} vs {ls[i]}");
    }

    [Fact]
    public void MergeRefusesFewerThanTwoBranchesOtherShapesMixedFamiliesAndMixtures()
    {
        using var a = new Transformer(Dense, seed: 1);
        using var wide = new Transformer(Dense with { HiddenDim = 64 }, seed: 2);
        using var qwen = new Transformer(Tessera.Model.Architectures.ArchitectureRegistry.Get("qwen2").Apply(Dense), seed: 3);
        using var moe = new Transformer(Dense with { Experts = 2, TopK = 2 }, seed: 4);
        Assert.Contains("at least 2 branches", Assert.Throws<ArgumentException>(() => BranchMerge.Merge([a], ["a"], 1, 1)).Message);
        Assert.Contains("hidden dim 64, expected 48", Assert.Throws<ArgumentException>(() => BranchMerge.Merge([a, wide], ["a", "wide"], 2, 1)).Message);
        Assert.Contains("one family", Assert.Throws<ArgumentException>(() => BranchMerge.Merge([a, qwen], ["a", "qwen"], 2, 1)).Message);
        Assert.Contains("merges dense branches", Assert.Throws<ArgumentException>(() => BranchMerge.Merge([a, moe], ["a", "moe"], 2, 1)).Message);
    }
}

/// <summary>The growth labs end to end at the quick scale on synthetic shards: files, finite curves, equal-compute accounting.</summary>
public sealed class GrowthLabTests : IDisposable
{
    const int Vocab = 61;
    readonly TempDir dir = new();
    readonly Tessera.Data.TokenShard trainA, valA, trainB, valB;
    readonly Labs.LabCorpus a, b;

    public GrowthLabTests()
    {
        trainA = TestData.Shard(dir.File("a.bin"), 30_000, Vocab);
        valA = TestData.Shard(dir.File("va.bin"), 4_000, Vocab, seed: 9);
        trainB = TestData.Shard(dir.File("b.bin"), 20_000, Vocab, seed: 21);
        valB = TestData.Shard(dir.File("vb.bin"), 4_000, Vocab, seed: 22);
        a = new Labs.LabCorpus(trainA, valA, validationBytes: 8_000);
        b = new Labs.LabCorpus(trainB, valB, validationBytes: 4_000);
    }

    public void Dispose()
    {
        a.Dispose(); b.Dispose();
        trainA.Dispose(); valA.Dispose(); trainB.Dispose(); valB.Dispose();
        dir.Dispose();
    }

    [Fact]
    public void UpcycleLabQuick_SpendsEqualAddedFlopsOnBothArms()
    {
        string outDir = Path.Combine(dir.Path, "up");
        var r = Labs.UpcycleLab.Run(Labs.UpcyclePlan.Quick, a, outDir);
        Assert.Equal(r.Dense.Curve[0].BitsPerByte[0], r.Upcycled.Curve[0].BitsPerByte[0]);   // both start at the base
        Assert.True(r.Dense.Steps > r.Upcycled.Steps, "the dense arm is cheaper per token, so it trains more steps");
        // Equal added compute to within one dense step.
        Assert.InRange(Math.Abs(r.Dense.AddedFlops - r.Upcycled.AddedFlops), 0, r.Dense.FlopsPerToken * Labs.UpcyclePlan.Quick.Training.TokensPerStep);
        Assert.All(r.Dense.Curve.Concat(r.Upcycled.Curve), c => Assert.True(double.IsFinite(c.BitsPerByte[0])));
        Assert.True(r.Upcycled.Curve[^1].BitsPerByte[0] < r.Upcycled.Curve[0].BitsPerByte[0], "continued training lowers held-out bpb");
        Assert.True(File.Exists(Path.Combine(outDir, "upcycle.svg")));
        Assert.True(File.Exists(Path.Combine(outDir, Experiments.ExperimentReport.MarkdownFile)));
        // The base is cached: a second run trains no base and starts from the same point.
        var again = Labs.UpcycleLab.Run(Labs.UpcyclePlan.Quick, a, outDir);
        Assert.Equal(r.BaseBitsPerByte, again.BaseBitsPerByte);
    }

    [Fact]
    public void UpcycleSeedsQuick_SummarisesEverySeedAndReusesMeasuredSeeds()
    {
        string outDir = Path.Combine(dir.Path, "seeds");
        var plan = Labs.UpcyclePlan.Quick;
        var (s, runs) = Labs.UpcycleSeeds.Run(plan, [5, 6], a, outDir);
        Assert.Equal([5UL, 6UL], s.Seeds.Select(x => x.Seed));
        Assert.NotEqual(runs[0].BaseBitsPerByte, runs[1].BaseBitsPerByte);           // each seed trains its own base
        for (int i = 0; i < 2; i++)
        {
            Assert.Equal(runs[i].Upcycled.FinalBitsPerByte - runs[i].Dense.FinalBitsPerByte, s.Seeds[i].Difference);
            Assert.True(File.Exists(Path.Combine(outDir, $"seed-{s.Seeds[i].Seed}", "upcycle.svg")));
        }
        double mean = (s.Seeds[0].Difference + s.Seeds[1].Difference) / 2;
        Assert.Equal(mean, s.MeanDifference, 1e-12);
        Assert.Equal(Math.Abs(s.Seeds[0].Difference - s.Seeds[1].Difference) / Math.Sqrt(2), s.StdDifference, 1e-12);
        Assert.Equal(s.Seeds.All(x => x.Difference < 0), s.UpcyclingWinsEverySeed);
        Assert.True(File.Exists(Path.Combine(outDir, "upcycle-seeds.svg")));
        // A seed measured with the same plan is read back, not retrained; another plan is not reused.
        string results = Path.Combine(outDir, "seed-5", Experiments.ExperimentReport.ResultsFile);
        var written = File.GetLastWriteTimeUtc(results);
        var (again, _) = Labs.UpcycleSeeds.Run(plan, [5], a, outDir);
        Assert.Equal(s.Seeds[0], again.Seeds[0]);
        Assert.Equal(written, File.GetLastWriteTimeUtc(results));
        Assert.Null(Labs.UpcycleSeeds.Cached(Path.Combine(outDir, "seed-5"), plan with { Training = plan.Training with { Seed = 5 }, MoeSteps = plan.MoeSteps + 1 }, a.Description));
        Assert.Throws<ArgumentException>(() => Labs.UpcycleSeeds.Run(plan, [5, 5], a, outDir));
    }

    [Fact]
    public void BtmLabQuick_ComparesAtEqualTotalAddedFlops()
    {
        string outDir = Path.Combine(dir.Path, "btm");
        var plan = Labs.BtmPlan.Quick;
        var r = Labs.BtmLab.Run(plan, a, b, "A", "B", outDir);
        double step = plan.Training.TokensPerStep;
        double btm = 2 * plan.BranchSteps * step * r.DenseFlopsPerToken + plan.MixSteps * step * r.MoeFlopsPerToken;
        Assert.Equal(btm, r.BtmCurve[^1].AddedFlops, 1e-9 * btm);
        Assert.InRange(Math.Abs(r.BaselineCurve[^1].AddedFlops - btm), 0, step * r.DenseFlopsPerToken);
        Assert.Equal(6, r.Table.Count);
        Assert.All(r.Table, x => Assert.True(double.IsFinite(x.UnionBitsPerByte)));
        // Each branch learns its own domain: B's branch beats the base on B.
        Assert.True(r.Table[2].BitsPerByteB < r.Table[0].BitsPerByteB, $"branch B {r.Table[2].BitsPerByteB} vs base {r.Table[0].BitsPerByteB} on B");
        Assert.True(File.Exists(Path.Combine(outDir, "btm.svg")) && File.Exists(Path.Combine(outDir, "btm-domains.svg")));
    }
}
