using System.Runtime.InteropServices;
using Tessera.Data;
using Tessera.Tensors;

// Tests share the process-wide worker pool and spawn worker processes; run classes one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace Tessera.Training.Tests;

/// <summary>A scratch folder removed when the test ends.</summary>
public sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("tessera-train-").FullName;
    public string File(string name) => System.IO.Path.Combine(Path, name);
    public void Dispose() { try { Directory.Delete(Path, recursive: true); } catch (IOException) { } }
}

/// <summary>Small shared pieces: synthetic shards and bitwise snapshots of a trainer.</summary>
public static class TestData
{
    /// <summary>A shard of <paramref name="count"/> tokens below <paramref name="vocab"/> with a learnable pattern.</summary>
    public static TokenShard Shard(string path, int count, int vocab, ulong seed = 5)
    {
        var rng = new Rng(seed);
        var tokens = new int[count];
        for (int i = 0; i < count; i++) tokens[i] = i % 5 == 0 ? rng.NextInt(vocab) : (tokens[i - 1] * 3 + 1) % vocab;
        TokenShard.Write(path, [tokens], vocab);
        return TokenShard.Open(path);
    }

    /// <summary>Every parameter and both AdamW moments as raw bits, by name.</summary>
    public static Dictionary<string, int[]> Snapshot(Trainer t)
    {
        var s = new Dictionary<string, int[]>();
        var opt = t.Optimizer;
        for (int i = 0; i < opt.Parameters.Count; i++)
        {
            string n = opt.Parameters[i].Name;
            s[n] = Bits(opt.Parameters[i].ToArray());
            s[n + ".m"] = Bits(opt.FirstMoment(i).ToArray());
            s[n + ".v"] = Bits(opt.SecondMoment(i).ToArray());
        }
        return s;
    }

    static int[] Bits(float[] x) => MemoryMarshal.Cast<float, int>(x).ToArray();

    /// <summary>Asserts two snapshots are bit-identical, naming the first tensor that is not.</summary>
    public static void AssertSame(Dictionary<string, int[]> expected, Dictionary<string, int[]> actual)
    {
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (k, v) in expected)
            Assert.True(v.AsSpan().SequenceEqual(actual[k]), $"{k} is not bit-identical");
    }
}
