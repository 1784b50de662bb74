namespace Tessera.Data.Tests;

public class BatchReaderTests
{
    static TokenShard MakeShard(TempDir dir, string name, int tokens, int offset)
    {
        var path = dir.File(name);
        TokenShard.Write(path, [Enumerable.Range(offset, tokens).ToArray()], 100_000);
        return TokenShard.Open(path);
    }

    [Fact]
    public void EachEpochVisitsEveryWindowOnceAndTargetsAreShifted()
    {
        using var dir = new TempDir();
        using var a = MakeShard(dir, "a.bin", 101, 0);        // (101-1)/10 = 10 windows
        using var b = MakeShard(dir, "b.bin", 45, 1000);      // 4 windows
        const int B = 2, T = 10;
        var reader = new BatchReader([a, b], B, T, seed: 3);
        Assert.Equal(14, reader.WindowCount);
        var seen = new HashSet<int>();
        var x = new int[B * T]; var y = new int[B * T];
        for (int step = 0; step < 7; step++)
        {
            reader.Next(x, y);
            for (int r = 0; r < B; r++)
            {
                for (int t = 0; t < T; t++) Assert.Equal(x[r * T + t] + 1, y[r * T + t]);
                Assert.True(seen.Add(x[r * T]), $"window starting at {x[r * T]} visited twice in one epoch");
            }
        }
        Assert.Equal(14, seen.Count);
        Assert.Equal(new DataCursor(0, 14), reader.Cursor);
        reader.Next(x, y);
        Assert.Equal(new DataCursor(1, 2), reader.Cursor);
    }

    [Fact]
    public void ResumingFromACursorContinuesExactly()
    {
        using var dir = new TempDir();
        using var a = MakeShard(dir, "a.bin", 997, 0);
        var full = new BatchReader([a], 3, 8, seed: 11);
        var x = new int[24]; var y = new int[24];
        var expected = new List<int[]>();
        DataCursor mid = default;
        for (int step = 0; step < 90; step++)      // crosses two epoch boundaries (124 windows)
        {
            if (step == 50) mid = full.Cursor;
            full.Next(x, y);
            if (step >= 50) expected.Add((int[])x.Clone());
        }
        var resumed = new BatchReader([a], 3, 8, seed: 11, cursor: mid);
        for (int i = 0; i < expected.Count; i++)
        {
            resumed.Next(x, y);
            Assert.Equal(expected[i], x);
        }
    }

    [Fact]
    public void ContextLongerThanTheDataFailsBeforeWork()
    {
        using var dir = new TempDir();
        using var a = MakeShard(dir, "a.bin", 16, 0);
        var e = Assert.Throws<ArgumentException>(() => new BatchReader([a], 1, 16, seed: 0));
        Assert.Contains("Context length 16", e.Message);
    }
}
