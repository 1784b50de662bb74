using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
namespace Tessera.Kernels;

/// <summary>The block formats <see cref="QuantizedTiles"/> multiplies.</summary>
public enum TileFormat
{
    /// <summary>ggml Q8_0 (32-blocks, fp16 scale, int8).</summary>
    Q8_0,
    /// <summary>ggml Q4_0 (32-blocks, fp16 scale, nibbles − 8).</summary>
    Q4_0,
    /// <summary>ggml Q4_K super-blocks.</summary>
    Q4_K,
    /// <summary>ggml Q5_K super-blocks.</summary>
    Q5_K,
    /// <summary>ggml Q6_K super-blocks.</summary>
    Q6_K,
}

/// <summary>
/// Q8_0 / Q4_0 / K-quant products for several activation rows (a batched decode step, a speculative block, a
/// prompt): each thread expands a tile of 4 weight rows from their blocks into an fp32 buffer in
/// L1 and runs the fp32 register tile of <see cref="DecodeMatMul"/> over every activation row. The
/// weights still cross memory once, at their quantized size, while the arithmetic is fp32 FMA —
/// about twice the multiply-adds per instruction of the int8 dot products, which redo the sign and
/// widening work for every activation row. The expansion is exactly <c>d·q</c> (Q8_0) and
/// <c>d·(q − 8)</c> (Q4_0) in fp32 (the K-quants as <see cref="KQuantExpand"/> writes them), the values
/// the scalar dequantizers return, so the result is the fp32 product with the dequantized matrix, bit
/// for bit as <see cref="DecodeMatMul"/> computes it for the same rows — for any number of rows, so batched,
/// speculative and single-sequence decoding agree exactly, as they do in fp32. A single row skips
/// the buffer: each 16 expanded weights go straight into the FMA, in the same order as the tile
/// (K-quants through <see cref="KQuantDot"/>).
/// </summary>
public static unsafe class QuantizedTiles
{
    const long ParallelThreshold = 1L << 16;

    /// <summary>The K-quant type of a K-quant tile format; null for Q8_0/Q4_0.</summary>
    public static KQuantType? KQuant(TileFormat format) => format switch
    {
        TileFormat.Q4_K => KQuantType.Q4_K,
        TileFormat.Q5_K => KQuantType.Q5_K,
        TileFormat.Q6_K => KQuantType.Q6_K,
        _ => null,
    };

    /// <summary>
    /// y (n × rows) = x (n × cols) · dequant(W)ᵀ for W stored as <paramref name="format"/> blocks, row-major
    /// (each row cols/32 blocks, or cols/256 super-blocks). <paramref name="scales"/> holds the fp32 copy of
    /// every Q8_0/Q4_0 block scale (null for K-quants, whose scales are read from the blocks).
    /// </summary>
    public static void Run(TileFormat format, byte* blocks, float* scales, int rows, int cols, float* x, int n, float* y)
    {
        int tiles = (rows + 3) / 4;
        var job = Job.ForCurrentThread;
        job.Set(format, blocks, scales, rows, cols, x, n, y);
        var workers = WorkerPool.Shared;
        if ((long)rows * cols * n < ParallelThreshold || workers.ThreadCount == 1) job.Compute(0, tiles);
        else workers.For(tiles, 8 * workers.ThreadCount, job.Compute);
    }

    sealed class Job
    {
        [ThreadStatic] static Job? current;
        [ThreadStatic] static float[]? tileBuffer;
        public static Job ForCurrentThread => current ??= new Job();

        public readonly Action<int, int> Compute;
        TileFormat format;
        byte* blocks;
        float* scales;
        int rows, cols, n;
        float* x, y;

        Job() => Compute = Range;

        public void Set(TileFormat format, byte* blocks, float* scales, int rows, int cols, float* x, int n, float* y)
        {
            this.format = format; this.blocks = blocks; this.scales = scales; this.rows = rows; this.cols = cols; this.x = x; this.n = n; this.y = y;
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        void Range(int start, int end)
        {
            var buffer = tileBuffer is { } b && b.Length >= 4 * cols ? b : tileBuffer = GC.AllocateUninitializedArray<float>(4 * cols, pinned: true);
            if (KQuant(format) is KQuantType k)
            {
                // K-quants: expand each 4-row tile into the buffer, then the same fp32 tile as every other path.
                int sb = cols / KQuantFormat.SuperBlock;
                long kRowBytes = (long)sb * KQuantFormat.BlockBytes(k);
                if (n == 1 && KQuantDot.Supported(k))
                {
                    // One row: dequantize in registers straight into the FMAs (same values, same order as the tile).
                    for (int t = start; t < end; t++)
                    {
                        int r0 = t * 4, count = Math.Min(4, rows - r0);
                        byte* w0 = blocks + r0 * kRowBytes;
                        byte* w1 = count > 1 ? w0 + kRowBytes : w0, w2 = count > 2 ? w0 + 2 * kRowBytes : w0, w3 = count > 3 ? w0 + 3 * kRowBytes : w0;
                        byte* ahead = t + 1 < (rows + 3) / 4 ? w0 + 4 * kRowBytes : null;
                        var sums = KQuantDot.Dot4(k, w0, w1, w2, w3, x, sb, ahead, 4 * KQuantFormat.BlockBytes(k));
                        for (int r = 0; r < count; r++) y[r0 + r] = sums[r];
                    }
                    return;
                }
                fixed (float* w = buffer)
                    for (int t = start; t < end; t++)
                    {
                        int r0 = t * 4, count = Math.Min(4, rows - r0);
                        for (int r = 0; r < count; r++) KQuantExpand.Row(k, blocks + (r0 + r) * kRowBytes, sb, w + (long)r * cols);
                        for (int i = 0; i < n; i += 4)
                            DecodeMatMul.Tile(w, count, x + (long)i * cols, Math.Min(4, n - i), cols, y + (long)i * rows + r0, rows);
                    }
                return;
            }
            int nb = cols / QuantFormat.BlockSize;
            int rowBytes = nb * (format == TileFormat.Q8_0 ? QuantFormat.Q8_0BlockBytes : QuantFormat.Q4_0BlockBytes);
            if (n == 1 && Avx512F.IsSupported)
            {
                for (int t = start; t < end; t++)
                {
                    int r0 = t * 4, count = Math.Min(4, rows - r0);
                    byte* w0 = blocks + (long)r0 * rowBytes;
                    byte* w1 = count > 1 ? w0 + rowBytes : w0, w2 = count > 2 ? w0 + 2L * rowBytes : w0, w3 = count > 3 ? w0 + 3L * rowBytes : w0;
                    float* s0 = scales + (long)r0 * nb;
                    float* s1 = count > 1 ? s0 + nb : s0, s2 = count > 2 ? s0 + 2L * nb : s0, s3 = count > 3 ? s0 + 3L * nb : s0;
                    var sums = format == TileFormat.Q8_0 ? DotQ8_0(w0, w1, w2, w3, s0, s1, s2, s3, x, nb) : DotQ4_0(w0, w1, w2, w3, s0, s1, s2, s3, x, nb);
                    for (int r = 0; r < count; r++) y[r0 + r] = sums[r];
                }
                return;
            }
            fixed (float* w = buffer)
                for (int t = start; t < end; t++)
                {
                    int r0 = t * 4, count = Math.Min(4, rows - r0);
                    for (int r = 0; r < count; r++)
                    {
                        byte* src = blocks + (long)(r0 + r) * rowBytes;
                        float* sc = scales + (long)(r0 + r) * nb;
                        if (format == TileFormat.Q8_0) ExpandQ8_0(src, sc, nb, w + (long)r * cols);
                        else ExpandQ4_0(src, sc, nb, w + (long)r * cols);
                    }
                    for (int i = 0; i < n; i += 4)
                        DecodeMatMul.Tile(w, count, x + (long)i * cols, Math.Min(4, n - i), cols, y + (long)i * rows + r0, rows);
                }
        }
    }

    /// <summary>
    /// Four Q8_0 rows · x with each weight expanded to d·q in fp32 on the fly; lane-wise FMAs in K
    /// order and the same final reduction as <see cref="DecodeMatMul.Tile"/>, so the sums are identical.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static Vector128<float> DotQ8_0(byte* w0, byte* w1, byte* w2, byte* w3, float* s0, float* s1, float* s2, float* s3, float* x, int nb)
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        for (int b = 0; b < nb; b++)
        {
            long o = (long)b * QuantFormat.Q8_0BlockBytes;
            // The next tile (the 4 rows after w3) is read while this one is summed: rows are short
            // (a few hundred bytes), too short for the hardware prefetcher to find four streams.
            byte* ahead = w0 + 4L * (w1 - w0 == 0 ? 0 : w1 - w0) + 4 * o;
            Sse.Prefetch0(ahead); Sse.Prefetch0(ahead + 64); Sse.Prefetch0(ahead + 128);
            var x0 = Vector512.Load(x + b * 32); var x1 = Vector512.Load(x + b * 32 + 16);
            a0 = Q8Half(w0 + o, s0[b], x0, x1, a0); a1 = Q8Half(w1 + o, s1[b], x0, x1, a1);
            a2 = Q8Half(w2 + o, s2[b], x0, x1, a2); a3 = Q8Half(w3 + o, s3[b], x0, x1, a3);
        }
        return DecodeMatMul.Sum4(a0, a1, a2, a3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> Q8Half(byte* block, float scale, Vector512<float> x0, Vector512<float> x1, Vector512<float> acc)
    {
        var d = Vector512.Create(scale);
        acc = Vector512.FusedMultiplyAdd(x0, Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.Load((sbyte*)block + 2))) * d, acc);
        return Vector512.FusedMultiplyAdd(x1, Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.Load((sbyte*)block + 18))) * d, acc);
    }

    /// <summary>Four Q4_0 rows · x, weights expanded to d·(q − 8) on the fly (see <see cref="DotQ8_0"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static Vector128<float> DotQ4_0(byte* w0, byte* w1, byte* w2, byte* w3, float* s0, float* s1, float* s2, float* s3, float* x, int nb)
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        for (int b = 0; b < nb; b++)
        {
            long o = (long)b * QuantFormat.Q4_0BlockBytes;
            // The next tile (the 4 rows after w3) is read while this one is summed: rows are short
            // (a few hundred bytes), too short for the hardware prefetcher to find four streams.
            byte* ahead = w0 + 4L * (w1 - w0 == 0 ? 0 : w1 - w0) + 4 * o;
            Sse.Prefetch0(ahead); Sse.Prefetch0(ahead + 64); Sse.Prefetch0(ahead + 128);
            var x0 = Vector512.Load(x + b * 32); var x1 = Vector512.Load(x + b * 32 + 16);
            a0 = Q4Half(w0 + o, s0[b], x0, x1, a0); a1 = Q4Half(w1 + o, s1[b], x0, x1, a1);
            a2 = Q4Half(w2 + o, s2[b], x0, x1, a2); a3 = Q4Half(w3 + o, s3[b], x0, x1, a3);
        }
        return DecodeMatMul.Sum4(a0, a1, a2, a3);
    }

    /// <summary>
    /// One Q4_0 block (32 weights, 16 bytes of nibbles) into <paramref name="acc"/>: the 16 values d·(q − 8) are
    /// made once (one multiply, the product the expansion computes) and each 16 codes pick theirs with one
    /// permute (<c>vpermps</c> reads only the low 4 index bits), instead of a subtract, a convert and a multiply per 16.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> Q4Half(byte* block, float scale, Vector512<float> x0, Vector512<float> x1, Vector512<float> acc)
    {
        var table = Vector512.Create(scale) * Vector512.Create(-8f, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7);
        var v = Avx512F.ConvertToVector512Int32(Vector128.Load(block + 2));   // bytes zero-extended: low nibble = element j, high = j + 16
        acc = Vector512.FusedMultiplyAdd(x0, Avx512F.PermuteVar16x32(table, v), acc);
        return Vector512.FusedMultiplyAdd(x1, Avx512F.PermuteVar16x32(table, Avx512F.ShiftRightLogical(v, 4)), acc);
    }

    /// <summary>One Q8_0 row (nb blocks) → fp32: d·q.</summary>
    static void ExpandQ8_0(byte* src, float* scales, int nb, float* dst)
    {
        for (int b = 0; b < nb; b++, src += QuantFormat.Q8_0BlockBytes, dst += QuantFormat.BlockSize)
        {
            float d = scales[b];
            if (Avx512F.IsSupported)
            {
                var vd = Vector512.Create(d);
                Vector512.Store(Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.Load((sbyte*)src + 2))) * vd, dst);
                Vector512.Store(Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.Load((sbyte*)src + 18))) * vd, dst + 16);
            }
            else
                for (int j = 0; j < QuantFormat.BlockSize; j++) dst[j] = d * ((sbyte*)src)[2 + j];
        }
    }

    /// <summary>One Q4_0 row → fp32: d·(q − 8), low nibbles are elements 0..15, high nibbles 16..31.</summary>
    static void ExpandQ4_0(byte* src, float* scales, int nb, float* dst)
    {
        for (int b = 0; b < nb; b++, src += QuantFormat.Q4_0BlockBytes, dst += QuantFormat.BlockSize)
        {
            float d = scales[b];
            if (Avx512F.IsSupported)
            {
                var v = Vector128.Load(src + 2);
                var mask = Vector128.Create((byte)0x0F);
                var eight = Vector512.Create(8);
                var vd = Vector512.Create(d);
                Vector512.Store(Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(v & mask) - eight) * vd, dst);
                Vector512.Store(Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.ShiftRightLogical(v, 4)) - eight) * vd, dst + 16);
            }
            else
                for (int j = 0; j < QuantFormat.BlockSize / 2; j++)
                {
                    dst[j] = d * ((src[2 + j] & 0x0F) - 8);
                    dst[j + 16] = d * ((src[2 + j] >> 4) - 8);
                }
        }
    }
}
