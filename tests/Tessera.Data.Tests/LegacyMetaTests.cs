using System.Text.Json;

namespace Tessera.Data.Tests;

/// <summary>meta.json written before the snake_case policy (fixtures/legacy: PascalCase) still loads; new ones are snake_case.</summary>
public class LegacyMetaTests
{
    [Fact]
    public void OldMetaJson_Loads_AndNewOnesAreSnakeCase()
    {
        using var dir = new TempDir();
        string old = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "fixtures", "legacy", PreparedData.MetaFile));
        Assert.Contains("\"VocabSize\"", old);
        File.WriteAllText(dir.File(PreparedData.MetaFile), old);
        var d = PreparedData.Load(dir.Path);
        Assert.Equal(dir.Path, d.Directory);
        Assert.Equal(512, d.VocabSize);
        Assert.Equal(1, d.BosId);
        Assert.Equal(new SplitStats(10, 5000, 20000), d.Train);
        Assert.Equal(new SplitStats(2, 900, 3600), d.Validation);
        Assert.Equal(new SplitStats(1, 400, 1700), d.Test);

        string now = Kernels.IO.JsonNaming.Serialize(d);
        using var doc = JsonDocument.Parse(now);
        Assert.Equal(512, doc.RootElement.GetProperty("vocab_size").GetInt32());
        Assert.Equal(5000, doc.RootElement.GetProperty("train").GetProperty("tokens").GetInt64());
        Assert.False(doc.RootElement.TryGetProperty("VocabSize", out _));
    }
}
