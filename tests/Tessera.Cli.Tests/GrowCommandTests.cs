using Tessera.Training;

namespace Tessera.Cli.Tests;

/// <summary>
/// <c>tessera train --init-from</c>, <c>tessera upcycle</c> and <c>tessera btm merge</c> as a user
/// runs them: separate processes, tiny dense models on the byte tokenizer.
/// </summary>
[Collection(CliCollection.Name)]
public sealed class GrowCommandTests
{
    static readonly string[] Model = ["--layers", "1", "--dim", "32", "--heads", "2", "--kv-heads", "1", "--hidden", "64", "--experts", "1", "--top-k", "1",
        "--context", "64"];
    static readonly string[] Short = ["--seq", "32", "--batch", "2", "--eval-every", "0", "--checkpoint-every", "0", "--eval-batches", "1"];

    static string Prepare(string dir)
    {
        CliProcess.WriteCorpus(dir);
        CliProcess.Run(dir, "data", "prepare", "--input", "corpus.txt", "--tokenizer", "bytes", "--out", "data", "--json").Json();
        return "data";
    }

    static Dictionary<string, float[]> Weights(string run)
    {
        using var m = Checkpoint.LoadModel(run);
        return m.Parameters.All.ToDictionary(p => p.Name, p => p.ToArray());
    }

    /// <summary>
    /// One step from --init-from moves every weight by at most the step's learning rate (AdamW's first
    /// update is lr·m̂/(√v̂+ε), |m̂/√v̂| ≤ 1, plus lr·wd·|w|), so the new run started from exactly the
    /// base's weights; a fresh init (std 0.02) would be ~100× further away. The step count restarts.
    /// </summary>
    [Fact]
    public void InitFrom_StartsFromTheCheckpointsWeightsWithAFreshStepCount()
    {
        string dir = CliProcess.TempDir();
        try
        {
            string data = Prepare(dir);
            CliProcess.Run(dir, ["train", "--data", data, "--out", "base", "--steps", "3", .. Model, .. Short, "--json"]).Json();
            const float lr = 1e-4f;
            var next = CliProcess.Run(dir, ["train", "--data", data, "--init-from", "base", "--out", "next", "--steps", "1", "--lr", "1e-4", "--min-lr", "1e-4",
                "--warmup", "0", "--weight-decay", "0", "--seed", "99", .. Short, "--json"]).Json();
            Assert.Equal(1, next.GetProperty("steps").GetInt32());
            Assert.True(Directory.Exists(Path.Combine(dir, "next", Checkpoint.FolderName(1))), "the new run's first checkpoint is step 1");
            var before = Weights(Path.Combine(dir, "base"));
            var after = Weights(Path.Combine(dir, "next"));
            Assert.Equal(before.Keys.Order(), after.Keys.Order());
            float worst = 0;
            foreach (var (name, w) in before)
                for (int i = 0; i < w.Length; i++) worst = MathF.Max(worst, MathF.Abs(after[name][i] - w[i]));
            Assert.InRange(worst, 1e-7f, lr * 1.001f);
            Assert.Equal("init-from", Lineage.Read(Checkpoint.Resolve(Path.Combine(dir, "next")))!.How);

            var clash = CliProcess.Run(dir, ["train", "--data", data, "--init-from", "base", "--out", "bad", "--dim", "64", "--steps", "1", .. Short]);
            Assert.NotEqual(0, clash.ExitCode);
            Assert.Contains("--dim 64 contradicts the checkpoint's 32", clash.Stderr);
            var both = CliProcess.Run(dir, ["train", "--data", data, "--init-from", "base", "--out", "next", "--resume", "--steps", "2", .. Short]);
            Assert.NotEqual(0, both.ExitCode);
            Assert.Contains("Choose one", both.Stderr);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void UpcycleThenContinue_AndBtmMergeRefusesBranchesOfAnotherBase()
    {
        string dir = CliProcess.TempDir();
        try
        {
            string data = Prepare(dir);
            CliProcess.Run(dir, ["train", "--data", data, "--out", "base", "--steps", "2", .. Model, .. Short, "--json"]).Json();
            var up = CliProcess.Run(dir, "upcycle", "--from", "base", "--experts", "4", "--top-k", "2", "--out", "up", "--json").Json();
            Assert.Equal(4, up.GetProperty("experts").GetInt32());
            var cont = CliProcess.Run(dir, ["train", "--data", data, "--init-from", "up", "--out", "up-run", "--steps", "1", .. Short, "--json"]).Json();
            Assert.True(double.IsFinite(cont.GetProperty("final_loss").GetDouble()));
            var k1 = CliProcess.Run(dir, "upcycle", "--from", "base", "--experts", "4", "--top-k", "1", "--out", "up1");
            Assert.NotEqual(0, k1.ExitCode);
            Assert.False(Directory.Exists(Path.Combine(dir, "up1")), "a refused upcycle writes nothing");

            CliProcess.Run(dir, ["train", "--data", data, "--init-from", "base", "--out", "a", "--steps", "1", "--seed", "1", .. Short, "--json"]).Json();
            CliProcess.Run(dir, ["train", "--data", data, "--init-from", "base", "--out", "b", "--steps", "1", "--seed", "2", .. Short, "--json"]).Json();
            var merged = CliProcess.Run(dir, "btm", "merge", "--branches", "a,b", "--out", "mix", "--json").Json();
            Assert.Equal(2, merged.GetProperty("experts").GetInt32());
            // The joint fine-tune reads a mixture of two prepared folders (--data a,b), here English and C#.
            Directory.CreateDirectory(Path.Combine(dir, "cs"));
            var source = string.Concat(Enumerable.Range(0, 40).Select(i => $"public static int F{i}(int x) => x * {i} + 1;\n"));
            for (int f = 0; f < 100; f++) File.WriteAllText(Path.Combine(dir, "cs", $"F{f}.cs"), $"namespace N{f};\npublic static class C{f}\n{{\n{source}}}\n");
            CliProcess.Run(dir, "data", "prepare", "--input", "cs", "--include", "*.cs", "--tokenizer", "bytes", "--out", "code", "--json").Json();
            var mix = CliProcess.Run(dir, ["train", "--data", $"{data},code", "--init-from", "mix", "--out", "mix-run", "--steps", "1", .. Short, "--json"]).Json();
            Assert.True(double.IsFinite(mix.GetProperty("val_bits_per_byte").GetDouble()));
            var notPrepared = CliProcess.Run(dir, ["train", "--data", $"{data},cs", "--init-from", "mix", "--out", "bad", "--steps", "1", .. Short]);
            Assert.Contains("cs is not a prepared data folder", notPrepared.Stderr);

            CliProcess.Run(dir, ["train", "--data", data, "--out", "base2", "--steps", "2", "--seed", "7", .. Model, .. Short, "--json"]).Json();
            CliProcess.Run(dir, ["train", "--data", data, "--init-from", "base2", "--out", "c", "--steps", "1", .. Short, "--json"]).Json();
            var other = CliProcess.Run(dir, "btm", "merge", "--branches", "a,c", "--out", "bad");
            Assert.NotEqual(0, other.ExitCode);
            Assert.Contains("another base", other.Stderr);
            var one = CliProcess.Run(dir, "btm", "merge", "--branches", "a", "--out", "bad");
            Assert.Contains("at least 2 branches", one.Stderr);
            var noLineage = CliProcess.Run(dir, "btm", "merge", "--branches", "a,base", "--out", "bad");
            Assert.Contains("no lineage.json", noLineage.Stderr);
            CliProcess.Run(dir, ["train", "--data", data, "--out", "wide", "--steps", "1", .. Model[..8], "--hidden", "96", .. Model[10..], .. Short, "--json"]).Json();
            var shapes = CliProcess.Run(dir, "btm", "merge", "--branches", "a,wide", "--out", "bad");
            Assert.Contains("hidden dim 96, expected 64", shapes.Stderr);
            Assert.False(Directory.Exists(Path.Combine(dir, "bad")), "a refused merge writes nothing");
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
