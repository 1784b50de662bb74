using System.Text.Json;
using Tessera.Data;
using Tessera.Model;
using Tessera.Tensors;

namespace Tessera.Training.Tests;

/// <summary>
/// Distillation: window ids from the reader, the trainer's objective hook, the teacher-logit cache,
/// the objective, and the whole experiment at test scale (with its bad-input errors).
/// </summary>
public class DistillTests(Xunit.Abstractions.ITestOutputHelper output)
{
    const int Vocab = 32;
    static readonly ModelConfig TeacherConfig = new() { VocabSize = Vocab, Dim = 48, Layers = 2, Heads = 4, KvHeads = 2, HiddenDim = 96, ContextLength = 32 };
    static readonly ModelConfig StudentConfig = new() { VocabSize = Vocab, Dim = 16, Layers = 1, Heads = 2, KvHeads = 1, HiddenDim = 32, ContextLength = 32 };
    static readonly TrainOptions Small = new() { Steps = 20, BatchSize = 4, SequenceLength = 16, LearningRate = 1e-2f, MinLearningRate = 1e-3f, WarmupSteps = 2, EvalEvery = 0 };

    [Fact]
    public void Reader_reports_the_window_behind_each_row_without_changing_the_batches()
    {
        using var dir = new TempDir();
        using var a = TestData.Shard(dir.File("a.bin"), 300, Vocab, seed: 1);
        using var b = TestData.Shard(dir.File("b.bin"), 200, Vocab, seed: 2);
        TokenShard[] shards = [a, b];
        const int T = 16, B = 3;
        var plain = new BatchReader(shards, B, T, seed: 9);
        var tagged = new BatchReader(shards, B, T, seed: 9);
        var x1 = new int[B * T]; var y1 = new int[B * T]; var x2 = new int[B * T]; var y2 = new int[B * T];
        var w = new long[B];
        var window = new int[T + 1];
        var seen = new HashSet<long>();
        for (int step = 0; step < 2 * tagged.WindowCount / B + 1; step++)
        {
            plain.Next(x1, y1);
            tagged.Next(x2, y2, w);
            Assert.Equal(x1, x2);
            Assert.Equal(y1, y2);
            for (int r = 0; r < B; r++)
            {
                // The window id locates the row's tokens in file order: shard a holds the first 299/16 windows.
                long aw = (a.TokenCount - 1) / T;
                if (w[r] < aw) a.Read(w[r] * T, window); else b.Read((w[r] - aw) * T, window);
                Assert.Equal(window.AsSpan(0, T).ToArray(), x2.AsSpan(r * T, T).ToArray());
                seen.Add(w[r]);
            }
        }
        Assert.Equal(tagged.WindowCount, seen.Count);
        Assert.Throws<ArgumentException>(() => tagged.Next(x2, y2, new long[B - 1]));
    }

    [Fact]
    public void An_objective_returning_the_model_loss_is_bit_identical_to_no_objective()
    {
        using var dir = new TempDir();
        using var shard = TestData.Shard(dir.File("s.bin"), 2000, Vocab);
        var moe = StudentConfig with { Experts = 2, TopK = 1 };
        var o = Small with { Steps = 4 };
        using var plain = new Trainer(moe, o, new TrainData([shard]));
        using var hooked = new Trainer(moe, o, new TrainData([shard]));
        var windows = new List<long>();
        hooked.Objective = (g, output, batch) => { windows.AddRange(batch.Windows); return output.Loss!; };
        for (int i = 0; i < 4; i++)
        {
            var p = plain.TrainStep(); var h = hooked.TrainStep();
            Assert.Equal(p.Loss, h.Loss);
            Assert.Equal(p.TotalLoss, h.TotalLoss);
        }
        TestData.AssertSame(TestData.Snapshot(plain), TestData.Snapshot(hooked));
        Assert.Equal(DistillCache.PlannedWindows([shard], o), windows.Distinct().ToList());
    }

    static Transformer TrainedTeacher(TokenShard shard, int steps = 60)
    {
        var teacher = new Transformer(TeacherConfig, seed: 11);
        using var t = new Trainer(teacher, Small with { Steps = steps, Seed = 11 }, new TrainData([shard]));
        t.Run();
        return teacher;
    }

    [Fact]
    public void Cache_holds_the_teachers_top_k_and_is_reused_only_for_the_same_teacher_and_data()
    {
        using var dir = new TempDir();
        using var shard = TestData.Shard(dir.File("s.bin"), 1200, Vocab);
        using var teacher = TrainedTeacher(shard, steps: 10);
        const int T = 16, k = 5;
        string path = dir.File("cache.bin");
        long[] some = [3, 0, 7];
        long calls = 0, firstBytes;
        const long record = T * k * (2 + 2) + 4 * T;                // fp16 logits, uint16 ids, fp32 rest mass
        using (var cache = DistillCache.Build(path, teacher, [shard], T, k, 2f, some, batch: 2, progress: (_, _) => calls++))
        {
            Assert.Equal(3, cache.FilledWindows);
            firstBytes = new FileInfo(path).Length;
            Assert.Equal(cache.FileBytes, firstBytes);
            Assert.Equal(2, calls);                                  // 3 windows in batches of 2
            Assert.True(cache.Contains(7) && !cache.Contains(1));
            var ids = new int[2 * T * k]; var values = new float[ids.Length]; var tails = new float[2 * T];
            cache.Read([7, 0], ids, values, tails);
            // The same windows through the teacher directly, top-k by the kernel.
            var x = new int[2 * T]; var window = new int[T + 1];
            shard.Read(7 * T, window); window.AsSpan(0, T).CopyTo(x);
            shard.Read(0, window); window.AsSpan(0, T).CopyTo(x.AsSpan(T));
            using var g = new Graph(recordGradients: false);
            var logits = teacher.Forward(g, x, 2, T).Logits.ToArray();
            for (int row = 0; row < 2 * T; row++)
            {
                var top = logits.AsSpan(row * Vocab, Vocab).ToArray().Select((v, i) => (v, i)).OrderByDescending(p => p.v).ThenBy(p => p.i).Take(k).ToArray();
                // Tail mass at T = 2 from the full row, in double.
                double max = top[0].v, all = 0, rest = 0;
                for (int c = 0; c < Vocab; c++)
                {
                    double e = Math.Exp((logits[row * Vocab + c] - max) / 2);
                    all += e;
                    if (!top.Any(p => p.i == c)) rest += e;
                }
                Assert.True(Math.Abs(tails[row] - rest / all) <= (8 + Vocab) * Math.Pow(2, -24), $"row {row} tail {tails[row]} vs {rest / all}");
                for (int j = 0; j < k; j++)
                {
                    Assert.Equal(top[j].i, ids[row * k + j]);
                    // fp16 storage: round-to-nearest with an 11-bit significand.
                    Assert.True(Math.Abs(values[row * k + j] - top[j].v) <= Math.Abs(top[j].v) * Math.Pow(2, -11) + 1e-7, $"row {row} #{j}");
                }
            }
            Assert.Throws<InvalidOperationException>(() => cache.Read([1], new int[T * k], new float[T * k], new float[T]));
        }
        calls = 0;
        using (var again = DistillCache.Build(path, teacher, [shard], T, k, 2f, [0, 3, 7, 8], batch: 2, progress: (done, total) => { calls++; Assert.Equal(1, total); }))
        {
            Assert.Equal(1, calls);                                  // only window 8 was missing
            Assert.Equal(4, again.FilledWindows);
            Assert.Equal(firstBytes + record, new FileInfo(path).Length);   // grows by the one new window only
        }
        using var other = new Transformer(TeacherConfig, seed: 99);
        using (var rebuilt = DistillCache.Build(path, other, [shard], T, k, 2f, [0], batch: 2))
            Assert.Equal(1, rebuilt.FilledWindows);                  // a different teacher starts a fresh file
    }

    [Fact]
    public void Alpha_zero_distillation_trains_exactly_like_cross_entropy()
    {
        using var dir = new TempDir();
        using var shard = TestData.Shard(dir.File("s.bin"), 1500, Vocab);
        using var teacher = TrainedTeacher(shard, steps: 5);
        var o = Small with { Steps = 3 };
        using var cache = DistillCache.Build(dir.File("c.bin"), teacher, [shard], o.SequenceLength, 8, 2f, DistillCache.PlannedWindows([shard], o));
        using var plain = new Trainer(StudentConfig, o, new TrainData([shard]));
        using var distilled = new Trainer(StudentConfig, o, new TrainData([shard]));
        var objective = new DistillObjective(cache, new DistillOptions { Alpha = 0, TopK = 8, Temperature = 2 }, StudentConfig);
        Assert.Contains("temperature", Assert.Throws<ArgumentException>(() => new DistillObjective(cache, new DistillOptions { TopK = 8, Temperature = 1 }, StudentConfig)).Message);
        distilled.Objective = objective.Loss;
        for (int i = 0; i < 3; i++) { plain.TrainStep(); distilled.TrainStep(); Assert.True(objective.LastKL > 0); }
        TestData.AssertSame(TestData.Snapshot(plain), TestData.Snapshot(distilled));
    }

    [Fact]
    public void Experiment_writes_finite_results_and_the_distilled_student_beats_scratch()
    {
        using var dir = new TempDir();
        using var train = TestData.Shard(dir.File("train.bin"), 6000, Vocab, seed: 5);
        using var val = TestData.Shard(dir.File("val.bin"), 1500, Vocab, seed: 6);
        var data = new TrainData([train], [val], ValidationBytes: 1500 * 3);
        using var teacher = TrainedTeacher(train, steps: 150);
        var options = Small with { Steps = 40, EvalEvery = 10, EvalBatches = 8, Seed = 3 };
        var r = DistillExperiment.Run(teacher, StudentConfig, options, new DistillOptions { Alpha = 0.9f, Temperature = 1f, TopK = 8 }, data, dir.File("run"));
        output.WriteLine($"teacher {r.TeacherBitsPerByte:F4} | scratch {r.Scratch.BitsPerByte:F4} | distilled {r.Distilled.BitsPerByte:F4} bits/byte");
        var report = DistillReport.Write(dir.File("run"), r);
        foreach (var f in report) Assert.True(new FileInfo(f).Length > 0, f);
        Assert.True(File.Exists(Path.Combine(r.Scratch.Checkpoint!, Checkpoint.ModelFile)) && File.Exists(Path.Combine(r.Distilled.Checkpoint!, Checkpoint.ModelFile)));
        foreach (double x in new[] { r.TeacherBitsPerByte, r.Scratch.BitsPerByte, r.Distilled.BitsPerByte })
            Assert.True(double.IsFinite(x) && x > 0, $"bpb {x}");
        Assert.Equal(5, r.Scratch.Curve.Count);                    // step 0 + every 10 steps
        Assert.Equal(r.Scratch.Curve[0], r.Distilled.Curve[0]);     // same initial weights, same windows
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir.File("run"), "results.json")));
        Assert.Equal(r.Distilled.BitsPerByte, json.RootElement.GetProperty("distilled").GetProperty("bits_per_byte").GetDouble());
        Assert.True(r.TeacherBitsPerByte < r.Scratch.BitsPerByte, $"teacher {r.TeacherBitsPerByte:F4} vs scratch {r.Scratch.BitsPerByte:F4}");
        Assert.True(r.Distilled.BitsPerByte < r.Scratch.BitsPerByte, $"distilled {r.Distilled.BitsPerByte:F4} vs scratch {r.Scratch.BitsPerByte:F4}");
    }

    [Fact]
    public void Bad_input_fails_before_any_work()
    {
        using var dir = new TempDir();
        using var train = TestData.Shard(dir.File("train.bin"), 2000, Vocab);
        using var val = TestData.Shard(dir.File("val.bin"), 500, Vocab);
        var data = new TrainData([train], [val], 1500);
        using var teacher = new Transformer(TeacherConfig, seed: 1);
        string run = dir.File("run");
        var d = new DistillOptions { TopK = 8 };
        string Fails(ModelConfig student, TrainOptions o, DistillOptions dopt, TrainData td)
            => Assert.Throws<ArgumentException>(() => DistillExperiment.Run(teacher, student, o, dopt, td, run)).Message;
        Assert.Contains("vocabulary mismatch", Fails(StudentConfig with { VocabSize = 64 }, Small, d, data));
        Assert.Contains("too small to train", Fails(StudentConfig, Small with { Steps = 3 }, d, data));
        Assert.Contains("too small to train", Fails(StudentConfig, Small with { Steps = 12, WarmupSteps = 12 }, d, data));
        Assert.Contains("validation", Fails(StudentConfig, Small, d, new TrainData([train])));
        Assert.Contains("alpha", Fails(StudentConfig, Small, d with { Alpha = 1.5f }, data));
        Assert.Contains("top-k", Fails(StudentConfig, Small, d with { TopK = 33 }, data));
        Assert.Contains("context length", Fails(StudentConfig, Small with { SequenceLength = 64 }, d, data));
        Assert.False(Directory.Exists(run));
    }
}
