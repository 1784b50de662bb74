using System.Text.Json;
using Tessera.Data;
using Tessera.Training.Labs;

namespace Tessera.Training.Tests;

/// <summary>
/// Files written before the snake_case policy (committed under fixtures/legacy, made by the
/// previous writers: PascalCase names) still load; files written now use snake_case names.
/// </summary>
public class LegacyJsonTests
{
    static string Fixture(string name) => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "fixtures", "legacy", name));

    static void AssertSnakeCaseKeys(JsonElement e, string where)
    {
        if (e.ValueKind == JsonValueKind.Object)
            foreach (var p in e.EnumerateObject())
            {
                Assert.True(p.Name == JsonNamingPolicy.SnakeCaseLower.ConvertName(p.Name), $"{where}: key '{p.Name}' is not snake_case");
                AssertSnakeCaseKeys(p.Value, where);
            }
        else if (e.ValueKind == JsonValueKind.Array)
            foreach (var x in e.EnumerateArray()) AssertSnakeCaseKeys(x, where);
    }

    [Fact]
    public void OldTrainerState_Loads_AndNewOnesAreSnakeCase()
    {
        string old = Fixture("trainer_state.json");
        Assert.Contains("\"TokensSeen\"", old);
        var s = TrainerState.FromJson(old, "trainer_state.json");
        Assert.Equal(37, s.Step);
        Assert.Equal(37 * 4096, s.TokensSeen);
        Assert.Equal(37, s.OptimizerStep);
        Assert.Equal(new DataCursor(1, 12), s.Cursor);
        Assert.Equal(0.0025f, s.LearningRate);
        Assert.Equal(12.5, s.ElapsedSeconds);
        Assert.Equal(new TrainOptions
        {
            Steps = 60, BatchSize = 4, SequenceLength = 128, GradAccumulation = 2, LearningRate = 3e-3f, MinLearningRate = 3e-4f, WarmupSteps = 5,
            EvalEvery = 20, EvalBatches = 3, CheckpointEvery = 30, KeepCheckpoints = 3, Seed = 7, ShuffleData = false, PeakFlops = 1.5e11,
        }, s.Options);

        string now = s.ToJson();
        using var doc = JsonDocument.Parse(now);
        AssertSnakeCaseKeys(doc.RootElement, "trainer_state.json");
        Assert.Equal(37 * 4096, doc.RootElement.GetProperty("tokens_seen").GetInt64());
        Assert.Equal(s, TrainerState.FromJson(now, "trainer_state.json"));
    }

    [Fact]
    public void OldLabRunCache_Loads_AndNewOnesAreSnakeCase()
    {
        string old = Fixture("lab-run.json");
        Assert.Contains("\"NonEmbeddingParameters\"", old);
        var r = LabRunner.FromCache(old, "key-of-the-run");
        Assert.Equal(new LabRunResult("d2-w64", 2, 64, 4, 2, 0.1f, 120000, 80000, 60000, 100, 409600, 0, 1.5, 1.2e6, 4.9e11, 4.25, 4.5, 33.5, 12222.5), r);
        Assert.Null(LabRunner.FromCache(old, "another key"));

        string now = Kernels.IO.JsonNaming.Serialize(new LabRunner.CachedRun("k", r!));
        using var doc = JsonDocument.Parse(now);
        AssertSnakeCaseKeys(doc.RootElement, "runs/NAME.json");
        Assert.Equal(60000, doc.RootElement.GetProperty("result").GetProperty("non_embedding_parameters").GetInt64());
        Assert.Equal(r, LabRunner.FromCache(now, "k"));
    }
}
