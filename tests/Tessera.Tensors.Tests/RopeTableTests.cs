using Tessera.Kernels;
using Tessera.Tensors;

namespace Tessera.Tensors.Tests;

/// <summary><see cref="RopeTable"/> with a <see cref="RopeScaling"/>: the tables are the kernel's for the scaled frequencies.</summary>
public class RopeTableTests
{
    [Theory]
    [InlineData("linear", RopeScalingKind.Linear)]
    [InlineData("llama3", RopeScalingKind.Llama3)]
    public void ScaledTableEqualsKernelTablesOfScaledFrequencies(string type, RopeScalingKind kind)
    {
        const int Positions = 40, D = 64;
        var scaling = new RopeScaling(type, 8f, 1f, 4f, 8192);
        var table = new RopeTable(Positions, D, 500000f, scaling);
        var inv = new double[D / 2];
        Rope.InverseFrequencies(D, 500000f, inv, kind, 8f, 1f, 4f, 8192);
        var cos = new float[Positions * D / 2]; var sin = new float[cos.Length];
        Rope.BuildTables(Positions, inv, cos, sin);
        Assert.Equal(cos, table.Cos);
        Assert.Equal(sin, table.Sin);
        // And the scaling changed something: an unscaled table differs.
        Assert.NotEqual(new RopeTable(Positions, D, 500000f).Cos, table.Cos);
    }

    [Fact]
    public void UnknownScalingTypeNamesTheAcceptedOnes()
    {
        var e = Assert.Throws<ArgumentException>(() => new RopeTable(4, 8, 10000f, new RopeScaling("yarn", 4f)));
        Assert.Contains("yarn", e.Message);
        Assert.Contains("llama3", e.Message);
    }
}
