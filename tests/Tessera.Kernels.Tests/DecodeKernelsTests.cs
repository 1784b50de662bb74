using System.Runtime.InteropServices;
using Tessera.Kernels.Reference;

namespace Tessera.Kernels.Tests;

/// <summary>
/// The decode-step products (moved from Tessera.Inference): <see cref="DecodeMatMul"/> against
/// <see cref="ScalarGemm"/>, <see cref="PanelMatMul"/> bit-equal to <see cref="ScalarPanelMatMul"/>
/// and batch-invariant, and <see cref="QuantizedTiles"/> bit-equal to <see cref="DecodeMatMul"/> on the
/// dequantized matrix for every row count.
/// </summary>
public unsafe class DecodeKernelsTests
{
    const double U = Tolerance.U;

    static float[] Random(int n, int seed)
    {
        var r = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(r.NextDouble() * 2 - 1);
        return a;
    }

    /// <summary>64-byte aligned native floats (the kernels read them by pointer), freed on dispose.</summary>
    sealed class Native : IDisposable
    {
        public readonly float* P;
        public Native(long floats) { P = (float*)NativeMemory.AlignedAlloc((nuint)(Math.Max(1, floats) * sizeof(float)), 64); NativeMemory.Clear(P, (nuint)(Math.Max(1, floats) * sizeof(float))); }
        public Native(float[] data) : this(data.Length) => data.CopyTo(new Span<float>(P, data.Length));
        public void Dispose() => NativeMemory.AlignedFree(P);
    }

    /// <summary>Both are K-term dot products in different orders: each within γ_K·Σ|x·w| of the exact value.</summary>
    static void WithinDotBound(float[] x, float[] w, int n, int rows, int k, float[] got, float[] want, string what)
    {
        double gamma = k * U / (1 - k * U);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < rows; j++)
            {
                double mag = 0;
                for (int p = 0; p < k; p++) mag += Math.Abs((double)x[i * k + p] * w[j * k + p]);
                Assert.True(Math.Abs(got[i * rows + j] - want[i * rows + j]) <= 2 * gamma * mag, $"{what} n={n} ({i},{j}): {got[i * rows + j]} vs {want[i * rows + j]}");
            }
    }

    [Theory]
    [InlineData(1, 3)]      // fewer rows than a tile, K below one vector
    [InlineData(5, 16)]
    [InlineData(7, 33)]     // ragged tiles and a K tail
    [InlineData(13, 100)]
    [InlineData(64, 256)]
    public void DecodeMatMulOfStackedPartsMatchesTheScalarTwinForEveryRowCount(int rows, int k)
    {
        // Three stacked parts of different heights, as fused q/k/v are.
        int[] parts = [rows, Math.Max(1, rows / 2), 3];
        int total = parts.Sum();
        var w = Random(total * k, rows * 31 + k);
        var buffers = new Native[parts.Length];
        var pointers = new float*[parts.Length];
        int at = 0;
        for (int s = 0; s < parts.Length; s++) { buffers[s] = new Native(w[(at * k)..((at + parts[s]) * k)]); pointers[s] = buffers[s].P; at += parts[s]; }
        try
        {
            foreach (int n in new[] { 0, 1, 2, 3, 4, 5, 8, 17, 32, 63, 64 })
            {
                var x = Random(n * k, n + 7);
                var want = new float[n * total];
                ScalarGemm.Sgemm(false, true, n, total, k, x, k, w, k, want, total);
                var got = new float[n * total];
                fixed (float* px = x, py = got) DecodeMatMul.Run(pointers, parts, k, px, n, py, total);
                WithinDotBound(x, w, n, total, k, got, want, "DecodeMatMul");
            }
        }
        finally { foreach (var b in buffers) b.Dispose(); }
    }

    static readonly int[] RowCounts = [0, 1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 13, 17, 32, 37, 65];

    [Theory]
    [InlineData(1, 1)]       // a one-element matrix: one panel, 63 padding rows
    [InlineData(5, 3)]
    [InlineData(63, 16)]
    [InlineData(64, 33)]     // exactly one panel
    [InlineData(65, 100)]    // a full panel and a one-row panel
    [InlineData(200, 64)]
    [InlineData(130, 257)]
    public void PanelMatMulMatchesTheScalarTwinBitForBitAndTheReferenceWithinTheBound(int rows, int k)
    {
        var w = Random(rows * k, rows * 7 + k);
        using var panels = new Native(PanelMatMul.PackedFloats(rows, k));
        PanelMatMul.Pack(w, rows, k, panels.P);
        var back = new float[k];
        for (int r = 0; r < rows; r++) { PanelMatMul.UnpackRow(panels.P, k, r, back); Assert.Equal(w[(r * k)..((r + 1) * k)], back); }
        foreach (int n in RowCounts)
        {
            var x = Random(n * k, n + 3);
            var got = new float[n * rows];
            var twin = new float[n * rows];
            var want = new float[n * rows];
            fixed (float* px = x, pg = got, pt = twin)
            {
                if (n > 0) PanelMatMul.Run(panels.P, rows, k, px, n, pg, rows);
                ScalarPanelMatMul.Run(panels.P, rows, k, px, n, pt, rows);
            }
            Assert.Equal(twin, got);
            ScalarGemm.Sgemm(false, true, n, rows, k, x, k, w, k, want, rows);
            WithinDotBound(x, w, n, rows, k, got, want, "PanelMatMul");
        }
    }

    [Theory]
    [InlineData(130, 513)]   // K odd, longer than one k slice (128 + 128 + 128 + 128 + 1); rows not a multiple of 64
    [InlineData(64, 129)]    // one full panel, a one-step last slice
    [InlineData(257, 384)]   // slices of equal length, a one-row last panel
    public void PanelMatMulOverKSlicesMatchesTheScalarTwinForEveryRowCountAndLeavesTheStrideAlone(int rows, int k)
    {
        // Row counts 1..40 cover every row-block split (one block up to 6 rows, then 2..7 blocks of
        // uneven sizes); the outputs are written with a stride past the row count, the gap holding
        // NaN, so a slice that read back anything but its own earlier partial sums would show.
        int ldy = rows + 5;
        var w = Random(rows * k, rows + 11 * k);
        using var panels = new Native(PanelMatMul.PackedFloats(rows, k));
        PanelMatMul.Pack(w, rows, k, panels.P);
        var x = Random(40 * k, k);
        bool slices = PanelMatMul.DecodeSlices;
        try
        {
            foreach (bool sliced in new[] { true, false })   // decode-sized calls in k slices (the Intel default) and over the whole k
                for (int n = 1; n <= 40; n++)
                {
                    PanelMatMul.DecodeSlices = sliced;
                    var got = new float[n * ldy];
                    var twin = new float[n * ldy];
                    Array.Fill(got, float.NaN);
                    Array.Fill(twin, float.NaN);
                    fixed (float* px = x, pg = got, pt = twin)
                    {
                        PanelMatMul.Run(panels.P, rows, k, px, n, pg, ldy);
                        ScalarPanelMatMul.Run(panels.P, rows, k, px, n, pt, ldy);
                    }
                    for (int i = 0; i < n; i++)
                    {
                        for (int j = 0; j < rows; j++)
                            Assert.True(got[i * ldy + j].Equals(twin[i * ldy + j]), $"sliced={sliced} n={n} ({i},{j}): {got[i * ldy + j]} vs twin {twin[i * ldy + j]}");
                        for (int j = rows; j < ldy; j++) Assert.True(float.IsNaN(got[i * ldy + j]), $"sliced={sliced} n={n}: column {j} past the rows was written");
                    }
                }
        }
        finally { PanelMatMul.DecodeSlices = slices; }
    }

    [Theory]
    [InlineData(61, 513)]    // 11 row blocks: 128-step slices (five, the last of one step)
    [InlineData(100, 1100)]  // 17 row blocks: 512-step slices (512, 512, 76)
    public void PanelMatMulSliceOuterOrderGivesTheSameBitsAsPanelOuter(int n, int k)
    {
        // A prefill-sized call with the threshold forced down, so every thread's range of panels is walked
        // slices outer; rows = 200 leaves a narrow last panel (8 columns) that takes its whole k at the first
        // slice. Each output must be the bits of the panel-outer order and of the scalar twin, and the stride gap
        // must stay untouched. The shared pool splits the 4 panels into one range per thread (2 on CI).
        int rows = 200, ldy = rows + 3;
        var w = Random(rows * k, 77);
        using var panels = new Native(PanelMatMul.PackedFloats(rows, k));
        PanelMatMul.Pack(w, rows, k, panels.P);
        var x = Random(n * k, 78);
        var sliced = new float[n * ldy];
        var whole = new float[n * ldy];
        var twin = new float[n * ldy];
        Array.Fill(sliced, float.NaN); Array.Fill(whole, float.NaN); Array.Fill(twin, float.NaN);
        long threshold = PanelMatMul.SliceOuterActivations;
        bool on = PanelMatMul.SliceOuter;
        try
        {
            fixed (float* px = x, ps = sliced, pw = whole, pt = twin)
            {
                PanelMatMul.SliceOuterActivations = 1;
                PanelMatMul.SliceOuter = true;
                PanelMatMul.Run(panels.P, rows, k, px, n, ps, ldy);
                PanelMatMul.SliceOuter = false;
                PanelMatMul.Run(panels.P, rows, k, px, n, pw, ldy);
                ScalarPanelMatMul.Run(panels.P, rows, k, px, n, pt, ldy);
            }
        }
        finally
        {
            PanelMatMul.SliceOuterActivations = threshold;
            PanelMatMul.SliceOuter = on;
        }
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < rows; j++)
            {
                Assert.True(sliced[i * ldy + j].Equals(whole[i * ldy + j]), $"({i},{j}): slice-outer {sliced[i * ldy + j]} vs panel-outer {whole[i * ldy + j]}");
                Assert.True(sliced[i * ldy + j].Equals(twin[i * ldy + j]), $"({i},{j}): slice-outer {sliced[i * ldy + j]} vs twin {twin[i * ldy + j]}");
            }
            for (int j = rows; j < ldy; j++) Assert.True(float.IsNaN(sliced[i * ldy + j]), $"row {i}: column {j} past the rows was written");
        }
    }

    [Fact]
    public void PanelMatMulGivesEachRowTheSameWhateverElseSharesTheCall()
    {
        int rows = 300, k = 384;
        using var panels = new Native(PanelMatMul.PackedFloats(rows, k));
        PanelMatMul.Pack(Random(rows * k, 5), rows, k, panels.P);
        var x = Random(40 * k, 6);
        var all = new float[40 * rows];
        var one = new float[rows];
        var seven = new float[7 * rows];
        fixed (float* px = x, pa = all, po = one, ps = seven)
        {
            PanelMatMul.Run(panels.P, rows, k, px, 40, pa, rows);
            for (int i = 0; i < 40; i++)
            {
                PanelMatMul.Run(panels.P, rows, k, px + i * k, 1, po, rows);
                Assert.Equal(all.AsSpan(i * rows, rows).ToArray(), one);
            }
            // A block of 7 starting at row 9 (row blocks 4+3 instead of the 6-row blocks of the 40-row call).
            PanelMatMul.Run(panels.P, rows, k, px + 9 * k, 7, ps, rows);
        }
        Assert.Equal(all.AsSpan(9 * rows, 7 * rows).ToArray(), seven);
        Assert.Throws<ArgumentException>(() => PanelMatMul.Pack(new float[6], 2, 4, panels.P));
    }

    public static TheoryData<TileFormat> Formats => new() { TileFormat.Q8_0, TileFormat.Q4_0, TileFormat.Q4_K, TileFormat.Q5_K, TileFormat.Q6_K };

    /// <summary>Quantizes a (rows, cols) matrix with the scalar quantizers; returns the blocks, the fp32 block scales (Q8_0/Q4_0) and the dequantized values.</summary>
    static (byte[] Blocks, float[] Scales, float[] Values) Quantize(TileFormat f, float[] w, int rows, int cols)
    {
        var values = new float[w.Length];
        if (QuantizedTiles.KQuant(f) is KQuantType k)
        {
            var kb = new byte[KQuantFormat.Bytes(k, w.Length)];
            ScalarKQuant.Quantize(k, w, kb);
            ScalarKQuant.Dequantize(k, kb, values);
            return (kb, [], values);
        }
        int blockBytes = f == TileFormat.Q8_0 ? QuantFormat.Q8_0BlockBytes : QuantFormat.Q4_0BlockBytes;
        var b = new byte[QuantFormat.CheckedBlocks(w.Length) * blockBytes];
        if (f == TileFormat.Q8_0) { ScalarQuant.QuantizeQ8_0(w, b); ScalarQuant.DequantizeQ8_0(b, values); }
        else { ScalarQuant.QuantizeQ4_0(w, b); ScalarQuant.DequantizeQ4_0(b, values); }
        var scales = new float[b.Length / blockBytes];
        for (int i = 0; i < scales.Length; i++) scales[i] = QuantFormat.FromHalf(BitConverter.ToUInt16(b, i * blockBytes));
        return (b, scales, values);
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void QuantizedTilesAreDecodeMatMulOnTheDequantizedMatrixForEveryRowCount(TileFormat format)
    {
        int rows = 45, cols = 512;   // a ragged last tile; 512 = 2 super-blocks = 16 blocks
        var (blocks, scales, values) = Quantize(format, Random(rows * cols, 4), rows, cols);
        using var dense = new Native(values);
        var x = Random(70 * cols, 9);
        var single = new float[70 * rows];
        fixed (byte* pb = blocks)
        fixed (float* ps = scales, px = x, p1 = single)
        {
            float* sc = scales.Length == 0 ? null : ps;
            for (int i = 0; i < 70; i++) QuantizedTiles.Run(format, pb, sc, rows, cols, px + i * cols, 1, p1 + i * rows);
            foreach (int n in new[] { 1, 2, 3, 4, 7, 32, 64, 70 })
            {
                var got = new float[n * rows];
                fixed (float* pg = got) QuantizedTiles.Run(format, pb, sc, rows, cols, px, n, pg);
                Assert.Equal(single.AsSpan(0, n * rows).ToArray(), got);   // a row's result never depends on the others
                if (n > DecodeMatMul.MaxRows) continue;
                var want = new float[n * rows];
                fixed (float* pw = want) DecodeMatMul.Run([dense.P], [rows], cols, px, n, pw, rows);
                Assert.Equal(want, got);   // the same fp32 values through the same register tile
            }
        }
    }
}
