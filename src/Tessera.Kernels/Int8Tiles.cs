using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Tessera.Kernels;

/// <summary>
/// Quantized weights (Q8_0, Q4_0, Q4_K) times int8-quantized activations, llama.cpp's way: each
/// activation row is rounded once per product to int8 per 32-block (<see cref="QuantActivations"/>:
/// d = max|x|/127, one fp32 scale and one code sum per block), and weights meet activation codes in integer
/// dot products (<c>vpdpbusd</c> through <see cref="AvxVnni"/> where the CPU has it, else <c>vpmaddubsw</c> +
/// <c>vpmaddwd</c>, in forms whose int16 pairs cannot saturate). Every integer sum is exact on every path, so
/// the results are bit for bit those of the scalar twin <see cref="Reference.ScalarInt8Tiles"/>.
/// <para>
/// Q8_0 and Q4_0 run on <see cref="Int8Panels"/> (8 weight rows interleaved per 4-byte k-group): each block's
/// whole integer dot lands in the row's own lane, then per (row, activation row, block) one fp32 step,
/// acc = fma(dot, scale·d_x, acc), blocks in K order. Each panel meets 4 activation rows per pass, so a panel
/// k-group is loaded (and Q4_0 unpacked) once per 4 rows.
/// </para>
/// <para>
/// Q4_K runs on its super-blocks in place: each block's 8 int32 lane sums (lane l = the 4 products 4l … 4l + 3)
/// are converted and accumulated lane-wise with one FMA by the sub-block's scale product, the lanes added in one
/// fixed order (<c>(t0 + t2) + (t1 + t3)</c>, t_l = a_l + a_{l+4}); the sub-block term is
/// (d·sc)·d_x·Σq·x − (dmin·m)·d_x·Σx, the mins kept in a second lane-wise accumulator (lane j = sub-block j)
/// that is reduced the same way and subtracted at the end. Tiles of 4 weight rows run against every activation row.
/// </para>
/// <para>
/// Each thread takes whole panels (tiles) and runs them against every activation row, so the weights cross memory
/// once per product for any number of rows, and a row's result does not depend on how many rows share the call:
/// batched, speculative and one-at-a-time decoding give identical logits.
/// </para>
/// </summary>
public static unsafe partial class Int8Tiles
{
    const int B = QuantFormat.BlockSize;
    const int Q4KBytes = 144;

    /// <summary>Whether the int8 kernels handle <paramref name="format"/> on this CPU (AVX2 + FMA; Q8_0, Q4_0, Q4_K).</summary>
    public static bool Supported(TileFormat format) => Avx2.IsSupported && Fma.IsSupported && format is TileFormat.Q8_0 or TileFormat.Q4_0 or TileFormat.Q4_K;

    /// <summary>Whether the integer dot products run as <c>vpdpbusd</c> (AVX-VNNI) rather than the AVX2 pair.</summary>
    public static bool UsesVnni => AvxVnni.IsSupported;

    /// <summary>
    /// y (n × rows) = q8(x) (n × cols) · Wᵀ for W stored as <paramref name="format"/> blocks, row-major (GGUF layout).
    /// Q8_0 and Q4_0 are repacked into <see cref="Int8Panels"/> for this one product (a matrix used more than once
    /// keeps its panels and calls <see cref="Run(Int8Panels, float*, int, float*)"/>); Q4_K runs on the blocks in place.
    /// </summary>
    public static void Run(TileFormat format, byte* blocks, int rows, int cols, float* x, int n, float* y)
    {
        if (!Supported(format)) throw new PlatformNotSupportedException($"Int8Tiles: {format} needs AVX2 + FMA and one of Q8_0, Q4_0, Q4_K.");
        int unit = format == TileFormat.Q4_K ? KQuantFormat.SuperBlock : B;
        if (rows < 0 || cols <= 0 || cols % unit != 0) throw new ArgumentException($"Int8Tiles: {format} needs rows ≥ 0 and cols a positive multiple of {unit}; got ({rows}, {cols}).");
        if (n <= 0 || rows == 0) return;
        if (format != TileFormat.Q4_K)
        {
            Run(Int8Panels.Pack(format, new ReadOnlySpan<byte>(blocks, checked((int)(rows * RowBytes(format, cols)))), rows, cols), x, n, y);
            return;
        }
        var scratch = QuantMatMul.Rent(n, cols);
        try
        {
            fixed (byte* ps = scratch)
            {
                QuantMatMul.Quantize(x, n, cols, ps, out var q, out var xs, out var sums);
                // Many small chunks, claimed by whichever thread is free (the caller starts at once): on a shared
                // machine a preempted worker then delays only the chunk it holds.
                int tiles = (rows + 3) / 4;
                var job = Tiles.ForCurrentThread;
                job.Set(blocks, rows, cols, q, xs, sums, n, y);
                var workers = WorkerPool.Shared;
                if ((long)rows * cols * n < RowParallel.MinParallelElements || workers.ThreadCount == 1) job.Run(0, tiles);
                else workers.For(tiles, 8 * workers.ThreadCount, job.Compute);
            }
        }
        finally { ArrayPool<byte>.Shared.Return(scratch); }
    }

    /// <summary>Bytes of one weight row.</summary>
    internal static long RowBytes(TileFormat format, int cols) => format switch
    {
        TileFormat.Q8_0 => (long)(cols / B) * QuantFormat.Q8_0BlockBytes,
        TileFormat.Q4_0 => (long)(cols / B) * QuantFormat.Q4_0BlockBytes,
        _ => (long)(cols / KQuantFormat.SuperBlock) * Q4KBytes,
    };

    /// <summary>Q4_K: tiles of 4 weight rows, each run against every activation row in turn.</summary>
    sealed class Tiles
    {
        [ThreadStatic] static float[]? kScales;
        [ThreadStatic] static Tiles? current;
        public static Tiles ForCurrentThread => current ??= new Tiles();

        public readonly Action<int, int> Compute;
        byte* blocks;
        float* xs, y;
        sbyte* q;
        int* sums;
        int rows, cols, n;

        Tiles() => Compute = Run;

        public void Set(byte* blocks, int rows, int cols, sbyte* q, float* xs, int* sums, int n, float* y)
        {
            this.blocks = blocks; this.rows = rows; this.cols = cols;
            this.q = q; this.xs = xs; this.sums = sums; this.n = n; this.y = y;
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run(int start, int end)
        {
            int nb = cols / B, tiles = (rows + 3) / 4, sb = cols / KQuantFormat.SuperBlock;
            long rowBytes = RowBytes(TileFormat.Q4_K, cols);
            var f = kScales is { } k && k.Length >= 64 * sb ? k : kScales = GC.AllocateUninitializedArray<float>(64 * sb, pinned: true);
            fixed (float* pf = f)
                for (int t = start; t < end; t++)
                {
                    int r0 = t * 4, count = Math.Min(4, rows - r0);
                    byte* w0 = blocks + r0 * rowBytes;
                    byte* w1 = count > 1 ? w0 + rowBytes : w0, w2 = count > 2 ? w0 + 2 * rowBytes : w0, w3 = count > 3 ? w0 + 3 * rowBytes : w0;
                    // The next tile (4 rows, contiguous) is prefetched while this one is summed against the first row:
                    // rows are short, too short for the hardware prefetcher to find four streams.
                    byte* ahead = t + 1 < tiles ? w0 + 4 * rowBytes : null;
                    // (d·sc, dmin·m) of every super-block of the 4 rows, once per tile for all activation rows.
                    for (int s = 0; s < sb; s++)
                    {
                        long o = (long)s * Q4KBytes;
                        ScaleMins(w0 + o, pf + (0 * sb + s) * 16); ScaleMins(w1 + o, pf + (1 * sb + s) * 16);
                        ScaleMins(w2 + o, pf + (2 * sb + s) * 16); ScaleMins(w3 + o, pf + (3 * sb + s) * 16);
                    }
                    int i = 0;
                    if (Batched)
                        for (; i + 4 <= n; i += 4, ahead = null)
                            Q4Kx4(w0, w1, w2, w3, pf, q + (long)i * cols, xs + (long)i * nb, sums + (long)i * nb, cols, nb, sb, y + (long)i * rows + r0, rows, count, ahead);
                    for (; i < n; i++, ahead = null)
                    {
                        var v = DotQ4K(w0, w1, w2, w3, pf, q + (long)i * cols, xs + (long)i * nb, sums + (long)i * nb, sb, ahead);
                        float* yi = y + (long)i * rows + r0;
                        for (int r = 0; r < count; r++) yi[r] = v[r];
                    }
                }
        }
    }

    /// <summary>The 16 fp32 factors of a Q4_K super-block: d·sc_j (j = 0..7), then dmin·m_j.</summary>
    static void ScaleMins(byte* b, float* f)
    {
        if (Avx512F.IsSupported) KQuantDot.ScalesMins(b, f);
        else KQuantDot.ScalesMinsSlow(b, f);
    }

    /// <summary>
    /// The 8 int32 lane sums of 32 unsigned × 32 signed bytes (lane l: bytes 4l … 4l + 3), exact:
    /// <c>vpdpbusd</c>, or <c>vpmaddubsw</c> then <c>vpmaddwd</c> by ones (no pair reaches int16 range here).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<int> Dp(Vector256<byte> u, Vector256<sbyte> s) => AvxVnni.IsSupported
        ? AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, u, s)
        : Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(u, s), Vector256<short>.One);

    /// <summary>The fixed lane order of the final sum: t_l = a_l + a_{l+4}, then (t0 + t2) + (t1 + t3).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float Reduce8(Vector256<float> a)
    {
        var t = a.GetLower() + a.GetUpper();
        return (t.GetElement(0) + t.GetElement(2)) + (t.GetElement(1) + t.GetElement(3));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Prefetch(byte* p, int bytes)
    {
        if (p == null) return;
        for (int line = 0; line < bytes; line += 64) Sse.Prefetch0(p + line);
    }

    /// <summary>
    /// One Q4_K row's share of a super-block: 4 runs of 64 weights (32 code bytes: low nibbles = sub-block 2c,
    /// high = 2c + 1); <paramref name="sc"/> holds the 8 products (d·sc_j)·d_x,j.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Q4KSuper(byte* codes, float* sc, sbyte* q, Vector256<float> acc)
    {
        var mask = Vector256.Create((byte)0x0F);
        for (int c = 0; c < 4; c++)
        {
            var v = Vector256.Load(codes + 32 * c);
            var lo = v & mask;
            var hi = Avx2.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & mask;
            acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Dp(lo, Vector256.Load(q + 64 * c))), Vector256.Create(sc[2 * c]), acc);
            acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Dp(hi, Vector256.Load(q + 64 * c + 32))), Vector256.Create(sc[2 * c + 1]), acc);
        }
        return acc;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static Vector128<float> DotQ4K(byte* w0, byte* w1, byte* w2, byte* w3, float* f, sbyte* q, float* xs, int* sums, int sb, byte* ahead)
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        Vector256<float> m0 = default, m1 = default, m2 = default, m3 = default;
        float* sc = stackalloc float[32];
        for (int s = 0; s < sb; s++)
        {
            long o = (long)s * Q4KBytes;
            if (ahead != null) Prefetch(ahead + 4 * o, 4 * Q4KBytes);
            var dx = Vector256.Load(xs + 8 * s);
            var sx = Avx.ConvertToVector256Single(Vector256.Load(sums + 8 * s));
            float* f0 = f + s * 16, f1 = f + (sb + s) * 16, f2 = f + (2 * sb + s) * 16, f3 = f + (3 * sb + s) * 16;
            (Vector256.Load(f0) * dx).Store(sc); (Vector256.Load(f1) * dx).Store(sc + 8);
            (Vector256.Load(f2) * dx).Store(sc + 16); (Vector256.Load(f3) * dx).Store(sc + 24);
            m0 = Fma.MultiplyAdd(Vector256.Load(f0 + 8) * dx, sx, m0); m1 = Fma.MultiplyAdd(Vector256.Load(f1 + 8) * dx, sx, m1);
            m2 = Fma.MultiplyAdd(Vector256.Load(f2 + 8) * dx, sx, m2); m3 = Fma.MultiplyAdd(Vector256.Load(f3 + 8) * dx, sx, m3);
            sbyte* qs = q + s * KQuantFormat.SuperBlock;
            a0 = Q4KSuper(w0 + o + 16, sc, qs, a0); a1 = Q4KSuper(w1 + o + 16, sc + 8, qs, a1);
            a2 = Q4KSuper(w2 + o + 16, sc + 16, qs, a2); a3 = Q4KSuper(w3 + o + 16, sc + 24, qs, a3);
        }
        return Vector128.Create(Reduce8(a0) - Reduce8(m0), Reduce8(a1) - Reduce8(m1), Reduce8(a2) - Reduce8(m2), Reduce8(a3) - Reduce8(m3));
    }
}
