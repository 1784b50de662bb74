using Tessera.Kernels.IO;

namespace Tessera.Kernels.Tests;

/// <summary>The one JSON naming policy: snake_case out; snake, Pascal and camel names in.</summary>
public class JsonNamingTests
{
    public sealed record Stats(int Documents, long TokenCount);
    public readonly record struct Cursor(long Epoch, long Position);
    public sealed record Settings
    {
        public long MaxSteps { get; init; } = 10;
        public double PeakFlops { get; init; } = 1;
        public Cursor Cursor { get; init; }
        public Stats? Train { get; init; }
        public Dictionary<string, double> PerTask { get; init; } = [];
        public long Derived => MaxSteps * 2;
    }

    static readonly Settings Sample = new()
    {
        MaxSteps = 7, PeakFlops = double.NaN, Cursor = new Cursor(2, 9), Train = new Stats(3, 1234),
        PerTask = new() { ["MinimalPairs"] = 0.5 },
    };

    [Fact]
    public void WritesSnakeCaseNamesAndKeepsDictionaryKeys()
    {
        string json = JsonNaming.Serialize(Sample, indented: false);
        Assert.Equal("""{"max_steps":7,"peak_flops":"NaN","cursor":{"epoch":2,"position":9},"train":{"documents":3,"token_count":1234},"per_task":{"MinimalPairs":0.5},"derived":14}""", json);
    }

    [Fact]
    public void AnonymousSnakeNamesPassThroughUnchanged()
        => Assert.Equal("""{"tokens_per_step":1,"sha256":"x","p50_ms":2}""", JsonNaming.SerializeObject(new { tokens_per_step = 1, sha256 = "x", p50_ms = 2 }, indented: false));

    [Theory]
    [InlineData("""{"max_steps":7,"peak_flops":"NaN","cursor":{"epoch":2,"position":9},"train":{"documents":3,"token_count":1234},"per_task":{"MinimalPairs":0.5}}""")]
    [InlineData("""{"MaxSteps":7,"PeakFlops":"NaN","Cursor":{"Epoch":2,"Position":9},"Train":{"Documents":3,"TokenCount":1234},"PerTask":{"MinimalPairs":0.5},"Derived":14}""")]
    [InlineData("""{"maxSteps":7,"peakFlops":"NaN","cursor":{"epoch":2,"position":9},"train":{"documents":3,"tokenCount":1234},"perTask":{"MinimalPairs":0.5}}""")]
    public void ReadsNewAndLegacyNames(string json)
    {
        var s = JsonNaming.Deserialize<Settings>(json)!;
        Assert.Equal(7, s.MaxSteps);
        Assert.True(double.IsNaN(s.PeakFlops));
        Assert.Equal(new Cursor(2, 9), s.Cursor);
        Assert.Equal(new Stats(3, 1234), s.Train);
        Assert.Equal(0.5, s.PerTask["MinimalPairs"]);
    }

    [Fact]
    public void RoundTrips()
    {
        var back = JsonNaming.Deserialize<Settings>(JsonNaming.Serialize(Sample))!;
        Assert.Equal(JsonNaming.Serialize(Sample), JsonNaming.Serialize(back));
    }
}
