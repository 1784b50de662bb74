using Tessera.Kernels.Reference;

namespace Tessera.Kernels.Tests;

/// <summary>
/// Fast embedding vs <see cref="ScalarEmbedding"/>. Gather copies; scatter-add gives each dTable
/// element the same fp32 additions in the same order (by position) as the twin. Neither rounds
/// differently, so the derived bound is zero: bitwise equality.
/// </summary>
public class EmbeddingTests
{
    [Fact]
    public void GatherAndScatterAddMatchTwinBitwise()
    {
        var r = new TestRandom(51);
        var shapes = new List<(int Rows, int Count, int Dim)>();
        for (int dim = 1; dim <= 256; dim++) shapes.Add((dim % 5 + 1, dim % 7 + 1, dim));
        shapes.Add((50, 1000, 37));
        shapes.Add((3, 5, 4099));
        shapes.Add((100, 300, 257));   // ≥ 64K elements: parallel path
        foreach (var (rows, count, dim) in shapes)
        {
            var table = r.Array(rows * dim);
            var ids = new int[count];
            for (int i = 0; i < count; i++) ids[i] = r.Next(rows);   // repeats are likely: order matters
            var e = new float[count * dim]; var a = new float[count * dim];
            ScalarEmbedding.Gather(table, ids, e, dim);
            Embedding.Gather(table, ids, a, dim);
            Assert.Equal(e, a);

            var dOut = r.Array(count * dim, -1f, 1f);
            var dE = r.Array(rows * dim); var dA = (float[])dE.Clone();
            ScalarEmbedding.ScatterAdd(dOut, ids, dE, dim);
            Embedding.ScatterAdd(dOut, ids, dA, dim);
            Assert.Equal(dE, dA);
        }
    }

    [Fact]
    public void OutOfRangeIdThrowsBeforeWriting()
    {
        var table = new float[4 * 3];
        var output = new float[3 * 3];
        output.AsSpan().Fill(7f);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Embedding.Gather(table, [0, 1, 4], output, 3));
        Assert.Contains("id 4 at position 2", e.Message);
        Assert.All(output, v => Assert.Equal(7f, v));
        var dTable = new float[12];
        e = Assert.Throws<ArgumentOutOfRangeException>(() => Embedding.ScatterAdd(new float[9], [-1, 0, 0], dTable, 3));
        Assert.Contains("id -1 at position 0", e.Message);
    }

    [Fact]
    public void TooShortSpansThrowNamingTheShape()
    {
        var e = Assert.Throws<ArgumentException>(() => Embedding.Gather(new float[12], [0, 1], new float[5], 3));
        Assert.Contains("Embedding.Gather", e.Message);
        Assert.Contains("(2, 3)", e.Message);
        e = Assert.Throws<ArgumentException>(() => Embedding.ScatterAdd(new float[5], [0, 1], new float[12], 3));
        Assert.Contains("dOutput", e.Message);
    }
}
