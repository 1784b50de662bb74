using Tessera.Tensors;

namespace Tessera.Tensors.Tests;

/// <summary>The chunked parallel add and copy equal the single-threaded loops bit for bit, in place too.</summary>
public class ParallelSpansTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(255)]
    [InlineData(65_535)]
    [InlineData(65_536)]
    [InlineData(200_003)]
    public void AddAndCopyMatchTheSerialLoops(int n)
    {
        var rng = new Rng(70);
        var a = new float[n]; var b = new float[n];
        rng.FillUniform(a, -1f, 1f); rng.FillUniform(b, -1f, 1f);
        var expected = new float[n];
        for (int i = 0; i < n; i++) expected[i] = a[i] + b[i];
        var y = new float[n];
        ParallelSpans.Add(a, b, y);
        Assert.Equal(expected, y);
        var inPlace = (float[])a.Clone();
        ParallelSpans.Add(inPlace, b, inPlace);
        Assert.Equal(expected, inPlace);
        var copy = new float[n];
        ParallelSpans.Copy(b, copy);
        Assert.Equal(b, copy);
        Assert.Throws<ArgumentException>(() => ParallelSpans.Add(a, b, new float[n + 1]));
    }
}
