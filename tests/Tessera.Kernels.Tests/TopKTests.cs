using FsCheck;
using FsCheck.Fluent;
using Tessera.Kernels.Reference;

namespace Tessera.Kernels.Tests;

/// <summary>
/// Fast top-k vs <see cref="ScalarTopK"/>. Selection only compares and copies, so the results must
/// be bitwise equal (indices and values), including the lower-index tie rule.
/// </summary>
public class TopKTests
{
    static float[] Row(TestRandom r, int n, int mode) => mode switch
    {
        0 => r.Array(n),
        1 => Discrete(r, n),            // many ties
        _ => Ascending(n),              // worst case for the insertion: every column enters
    };

    static float[] Discrete(TestRandom r, int n)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = r.Next(5) - 2 + (r.Next(9) == 0 ? float.NegativeInfinity : 0);
        return a;
    }

    static float[] Ascending(int n)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = i * 0.5f - 7;
        return a;
    }

    static void Compare(float[] x, int rows, int cols, int k, string what)
    {
        var iE = new int[rows * k]; var vE = new float[rows * k];
        var iA = new int[rows * k]; var vA = new float[rows * k];
        ScalarTopK.Select(x, rows, cols, k, iE, vE);
        TopK.Select(x, rows, cols, k, iA, vA);
        Assert.True(iE.AsSpan().SequenceEqual(iA), $"{what}: indices differ");
        Assert.True(vE.AsSpan().SequenceEqual(vA), $"{what}: values differ");
    }

    [Fact]
    public void MatchesTwinForEveryColsAndSeveralK()
    {
        var r = new TestRandom(61);
        for (int cols = 1; cols <= 256; cols++)
            foreach (int rows in new[] { 1, 3, 7 })
            {
                int mode = (cols + rows) % 3;
                foreach (int k in new[] { 1, 2, Math.Min(8, cols), cols })
                    if (k <= cols) Compare(Row(r, rows * cols, mode), rows, cols, k, $"({rows},{cols}) k={k} mode {mode}");
            }
        Compare(Row(r, 1000 * 37, 1), 1000, 37, 4, "(1000,37) k=4");
        Compare(Row(r, 5 * 4099, 0), 5, 4099, 50, "(5,4099) k=50");
        Compare(Row(r, 4000 * 64, 0), 4000, 64, 2, "(4000,64) k=2");   // ≥ 64K elements: parallel path
    }

    [Fact]
    public void ResultIsSortedAndIsTheTrueTopKProperty()
    {
        // Oracle independent of the twin: sort the column indices by (value desc, index asc).
        var gen = Gen.Choose(1, 200).SelectMany(n =>
            Gen.Zip(Gen.Choose(-50, 50).Select(v => v / 4f).ArrayOf(n), Gen.Choose(1, n)));
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(300), Prop.ForAll(gen.ToArbitrary(), ((float[] X, int K) c) =>
        {
            var (x, k) = c;
            var idx = new int[k]; var val = new float[k];
            TopK.Select(x, 1, x.Length, k, idx, val);
            var order = new int[x.Length];
            for (int i = 0; i < order.Length; i++) order[i] = i;
            Array.Sort(order, (a, b) => x[a] != x[b] ? x[b].CompareTo(x[a]) : a.CompareTo(b));
            for (int j = 0; j < k; j++)
                if (idx[j] != order[j] || val[j] != x[order[j]] || (j > 0 && val[j] > val[j - 1])) return false;
            return true;
        }));
    }

    [Fact]
    public void BadInputsThrowClearly()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => TopK.Select(new float[6], 2, 3, 4, new int[8], new float[8]));
        Assert.Contains("k must be in [1, 3]", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => TopK.Select(new float[6], 2, 3, 0, new int[0], new float[0]));
        var a = Assert.Throws<ArgumentException>(() => TopK.Select(new float[6], 2, 3, 2, new int[3], new float[4]));
        Assert.Contains("indices", a.Message);
        Assert.Contains("(2, 2)", a.Message);
        a = Assert.Throws<ArgumentException>(() => TopK.Select(new float[5], 2, 3, 2, new int[4], new float[4]));
        Assert.Contains("TopK.Select", a.Message);
    }
}
