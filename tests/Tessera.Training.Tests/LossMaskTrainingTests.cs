using Tessera.Data;
using Tessera.Model;
using Tessera.Tensors;

namespace Tessera.Training.Tests;

/// <summary>
/// Training with a per-token loss mask (prompt/completion data): the loss is the mean cross-entropy
/// over the masked-in targets, checked against a double-precision reference and finite differences;
/// an all-on mask changes nothing, bit for bit; resume stays exact; a tiny masked run learns.
/// </summary>
public class LossMaskTrainingTests
{
    static readonly ModelConfig Dense = new() { VocabSize = 32, Dim = 32, Layers = 2, Heads = 4, KvHeads = 2, HiddenDim = 48, ContextLength = 16 };
    static readonly TrainOptions Options = new() { Steps = 6, BatchSize = 4, SequenceLength = 16, WarmupSteps = 1, LearningRate = 1e-2f, MinLearningRate = 1e-3f, EvalEvery = 0, Seed = 11 };

    /// <summary>A copy of the learnable test shard with a mask beside it: <paramref name="on"/> decides each position.</summary>
    static TokenShard MaskedShard(TempDir dir, string name, Func<int, bool> on, int count = 3000)
    {
        string path = dir.File(name);
        TestData.Shard(path, count, Dense.VocabSize).Dispose();
        var mask = new byte[count];
        for (int i = 0; i < count; i++) mask[i] = (byte)(on(i) ? 1 : 0);
        TokenShard.WriteLossMask(path, mask);
        return TokenShard.Open(path);
    }

    [Fact]
    public void AnAllOnMaskGivesTodaysLossesAndWeightsBitForBit()
    {
        using var dir = new TempDir();
        using var plain = TestData.Shard(dir.File("plain.bin"), 3000, Dense.VocabSize);
        using var allOn = MaskedShard(dir, "on.bin", _ => true);
        Assert.True(allOn.HasLossMask);
        using var a = new Trainer(Dense, Options, new TrainData([plain], [plain]));
        using var b = new Trainer(Dense, Options, new TrainData([allOn], [allOn]));
        for (int s = 0; s < Options.Steps; s++)
        {
            var ra = a.TrainStep(); var rb = b.TrainStep();
            Assert.Equal(BitConverter.DoubleToInt64Bits(ra.Loss), BitConverter.DoubleToInt64Bits(rb.Loss));
            Assert.Equal(BitConverter.DoubleToInt64Bits(ra.GradNorm), BitConverter.DoubleToInt64Bits(rb.GradNorm));
        }
        TestData.AssertSame(TestData.Snapshot(a), TestData.Snapshot(b));
        Assert.Equal(BitConverter.DoubleToInt64Bits(a.Evaluate().Loss), BitConverter.DoubleToInt64Bits(b.Evaluate().Loss));
    }

    [Fact]
    public void APartialMaskChangesTheRun()
    {
        // The counterpart of the bit-for-bit test: the mask is really applied.
        using var dir = new TempDir();
        using var plain = TestData.Shard(dir.File("plain.bin"), 3000, Dense.VocabSize);
        using var half = MaskedShard(dir, "half.bin", i => i % 2 == 0);
        using var a = new Trainer(Dense, Options, new TrainData([plain]));
        using var b = new Trainer(Dense, Options, new TrainData([half]));
        Assert.NotEqual(a.TrainStep().Loss, b.TrainStep().Loss);
    }

    /// <summary>Mean over masked-in rows of −log softmax(logits)[target], in double, from a forward pass without targets.</summary>
    static double ReferenceLoss(Transformer model, int[] ids, int[] targets, int batch, int seq)
    {
        using var g = new Graph(recordGradients: false);
        var logits = model.Forward(g, ids, batch, seq).Logits.ToArray();
        int v = model.Config.VocabSize;
        double sum = 0;
        int count = 0;
        for (int r = 0; r < targets.Length; r++)
        {
            if (targets[r] == BatchReader.IgnoredTarget) continue;
            double max = double.NegativeInfinity, z = 0;
            for (int j = 0; j < v; j++) max = Math.Max(max, logits[r * v + j]);
            for (int j = 0; j < v; j++) z += Math.Exp(logits[r * v + j] - max);
            sum += max + Math.Log(z) - logits[r * v + targets[r]];
            count++;
        }
        return sum / count;
    }

    [Fact]
    public void TheMaskedLossAndItsGradientMatchAReference()
    {
        using var dir = new TempDir();
        using var shard = MaskedShard(dir, "m.bin", i => i % 5 >= 3);   // 40% of targets count
        const int B = 2, T = 16;
        var reader = new BatchReader([shard], B, T, seed: 4, lossMask: true);
        var ids = new int[B * T]; var targets = new int[B * T];
        reader.Next(ids, targets);
        int kept = targets.Count(t => t != BatchReader.IgnoredTarget);
        Assert.InRange(kept, 1, targets.Length - 1);

        using var model = new Transformer(Dense, seed: 2);
        model.Parameters.ZeroGrad();
        float loss;
        using (var g = new Graph())
        {
            var output = model.Forward(g, ids, B, T, targets);
            loss = output.Loss!.Item();
            g.Backward(output.Loss!);
        }
        double reference = ReferenceLoss(model, ids, targets, B, T);
        Assert.True(Math.Abs(loss - reference) <= 1e-5 * Math.Abs(reference), $"masked loss {loss} vs reference {reference}");

        // Central differences of the reference loss on the largest-gradient entries of two weights.
        const float h = 1e-2f;
        foreach (var name in new[] { model.Parameters.All[^1].Name, model.Parameters.All[1].Name })
        {
            var p = model.Parameters[name];
            var grad = p.Grad!.ToArray();
            var order = Enumerable.Range(0, grad.Length).OrderByDescending(i => Math.Abs(grad[i])).Take(4).ToArray();
            Assert.True(Math.Abs(grad[order[0]]) > 1e-4, $"{name}: no gradient to check");
            foreach (int i in order)
            {
                var w = p.AsSpan("test");
                float keep = w[i];
                w[i] = keep + h; double up = ReferenceLoss(model, ids, targets, B, T);
                w = p.AsSpan("test"); w[i] = keep - h; double down = ReferenceLoss(model, ids, targets, B, T);
                w = p.AsSpan("test"); w[i] = keep;
                double fd = (up - down) / (2 * h);
                // fp32 forward: rounding of the loss (~1e-6) over 2h, plus O(h²) truncation.
                Assert.True(Math.Abs(fd - grad[i]) <= 2e-3 + 0.03 * Math.Abs(grad[i]), $"{name}[{i}]: analytic {grad[i]:G6}, finite difference {fd:G6}");
            }
        }
    }

    [Fact]
    public void AMaskedRunResumesBitForBit()
    {
        using var dir = new TempDir();
        using var shard = MaskedShard(dir, "m.bin", i => i % 7 < 3);
        var losses = new List<long>();
        Dictionary<string, int[]> reference;
        using (var t = new Trainer(Dense, Options, new TrainData([shard])))
        {
            t.StepCompleted = r => losses.Add(BitConverter.DoubleToInt64Bits(r.Loss));
            t.Run();
            reference = TestData.Snapshot(t);
        }
        string run = dir.File("run");
        using (var first = new Trainer(Dense, Options, new TrainData([shard]), run))
        {
            for (int s = 0; s < 3; s++) first.TrainStep();
            first.SaveCheckpoint();
        }
        using var resumed = Trainer.Resume(run, new TrainData([shard]));
        Assert.Equal(3, resumed.Step);
        resumed.StepCompleted = r => Assert.Equal(losses[(int)r.Step - 1], BitConverter.DoubleToInt64Bits(r.Loss));
        resumed.Run();
        TestData.AssertSame(reference, TestData.Snapshot(resumed));
    }

    [Fact]
    public void ATinyMaskedRunLearnsItsCompletions()
    {
        // Documents "BOS p1..p6 | c1 c2": the completion is a fixed function of the last prompt token,
        // the prompt is random. Only the completion is trained, and its loss must fall.
        using var dir = new TempDir();
        var rng = new Rng(3);
        var docs = new List<int[]>();
        var prompts = new List<int>();
        for (int d = 0; d < 400; d++)
        {
            var doc = new int[8];
            for (int i = 0; i < 6; i++) doc[i] = 1 + rng.NextInt(Dense.VocabSize - 1);
            doc[6] = (doc[5] * 7 + 3) % Dense.VocabSize;
            doc[7] = (doc[6] + 5) % Dense.VocabSize;
            docs.Add(doc);
        }
        string path = dir.File("c.bin");
        TokenShard.Write(path, docs, Dense.VocabSize, bosId: 0);
        var mask = new byte[docs.Count * 9];
        for (int d = 0; d < docs.Count; d++) { mask[d * 9 + 7] = 1; mask[d * 9 + 8] = 1; }
        TokenShard.WriteLossMask(path, mask);
        using var shard = TokenShard.Open(path);
        var o = Options with { Steps = 60, BatchSize = 8, LearningRate = 2e-2f, MinLearningRate = 2e-3f, WarmupSteps = 5 };
        using var t = new Trainer(Dense, o, new TrainData([shard]));
        var reports = new List<StepReport>();
        t.StepCompleted = reports.Add;
        t.Run();
        double first = reports.Take(5).Average(r => r.Loss), last = reports.TakeLast(5).Average(r => r.Loss);
        Assert.True(first > 2.5, $"the completion loss starts near ln 32 = 3.47, got {first:F3}");
        Assert.True(last < first - 1.0, $"masked loss did not fall: {first:F3} → {last:F3}");
    }
}
