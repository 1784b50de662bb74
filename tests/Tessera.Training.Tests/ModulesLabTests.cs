using Tessera.Training.Labs;

namespace Tessera.Training.Tests;

public class ModulesLabTests
{
    /// <summary>The "no forgetting" lab at --quick size on a synthetic base corpus and a few C# files: routed off is bit-identical, routed on learns the new domain.</summary>
    [Fact]
    public void QuickLabRoutedOffIsBitIdenticalAndModulesLearnTheNewDomain()
    {
        using var dir = new TempDir();
        using var train = TestData.Shard(dir.File("train.bin"), 20_000, 256, seed: 5);
        using var val = TestData.Shard(dir.File("val.bin"), 4_000, 256, seed: 6);
        using var english = new LabCorpus(train, val, 4_000, "synthetic");
        string code = dir.File("code");
        Directory.CreateDirectory(code);
        for (int i = 0; i < 30; i++)
            File.WriteAllText(Path.Combine(code, $"F{i}.cs"), string.Concat(Enumerable.Repeat($"    public static int F{i}(int x) => x * {i} + 1;\n", 40)));
        var r = ModulesLab.Run(ModulesPlan.Quick, english, code, dir.File("lab"), _ => { });
        var a = r.Rows[0];
        foreach (var off in r.Rows.Where(x => x.Model.Contains("routed off")))
        {
            Assert.True(off.BitIdenticalToBase, off.Model);
            Assert.Equal(a.EnglishBpb, off.EnglishBpb);
            Assert.Equal(a.CodeBpb, off.CodeBpb);
        }
        Assert.Equal(2, r.Rows.Count(x => x.Model.Contains("routed off")));
        foreach (var on in r.Rows.Where(x => x.Model.Contains(", on") || x.Model.StartsWith("(d)", StringComparison.Ordinal)))
            Assert.True(on.CodeBpb < a.CodeBpb, $"{on.Model}: C# {a.CodeBpb:F4} → {on.CodeBpb:F4} bpb");
        Assert.True(File.Exists(dir.File("lab/modules-forgetting.svg")));
        Assert.Contains("(d) full fine-tune", File.ReadAllText(dir.File("lab/report.md")));
    }
}
