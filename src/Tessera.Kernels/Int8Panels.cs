using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Tessera.Kernels;

/// <summary>
/// A Q8_0, Q4_0 or Q4_K matrix repacked once for <see cref="Int8Tiles"/>: panels of 8 weight rows in which, per
/// 32-block, the 4 codes of k-group g (elements 4g … 4g + 3) of the 8 rows lie side by side, row j's 4 bytes in
/// int32 lane j. One <c>vpdpbusd</c> of a panel k-group with an activation's 4 codes broadcast to every lane then
/// adds each row's 4 products into its own lane, so 8 of them leave in lane j the whole block's integer dot of
/// row j: no horizontal sum, and one convert and one FMA per 8 rows × 32 weights.
/// <para>
/// Codes are stored unsigned (the <c>vpdpbusd</c> operand that must be): Q8_0 as w + 128 (bytes 0 … 255, 32 per k-group
/// vector), Q4_0 as its nibbles q (0 … 15, i.e. w + 8), two k-groups per byte exactly as a Q4_0 block stores them
/// (low nibble g, high nibble g + 4; a Q4_0 block's byte 4c + k already holds elements 4c + k and 16 + 4c + k, so
/// the repack moves whole bytes). The offset comes back as −offset·Σx per activation block. Scales are the blocks'
/// fp16 bits, 8 per panel block, widened exactly (<see cref="Halves"/>) into an L1 buffer per panel pair as a product
/// reaches it. A last panel of fewer than 8 rows is padded with zero weights and zero scales.
/// </para>
/// <para>
/// Q4_K: per 256-weight super-block and panel, the codes as 4 runs of 8 k-group vectors exactly as the super-block stores
/// them (run c, byte e: low nibble = element e of sub-block 2c, high nibble = of sub-block 2c + 1; so the repack moves
/// whole 4-byte groups), the 8 rows' fp16 d and dmin, and their 6-bit scales and mins unpacked to one byte each
/// (sub-block j, row l at j·8 + l, mins after the scales). Per (row, activation row, sub-block) the float side is
/// acc = fma(dot, (d·sc)·d_x, acc) and mins = fma((dmin·m)·d_x, Σx, mins), sub-blocks in K order, result acc − mins
/// (d·sc and dmin·m are exact in fp32).
/// </para>
/// <para>Memory per 32 weights: Q8_0 34 bytes, Q4_0 18 (the GGUF blocks' size, which is what a one-row product streams),
/// Q4_K 18.5 (GGUF 18: the unpacked scales and mins).</para>
/// </summary>
public sealed class Int8Panels
{
    const int B = QuantFormat.BlockSize;

    /// <summary>Q8_0, Q4_0 or Q4_K.</summary>
    public TileFormat Format { get; }
    /// <summary>Weight rows (output features).</summary>
    public int Rows { get; }
    /// <summary>Weight columns (input features), a multiple of 32.</summary>
    public int Cols { get; }

    /// <summary>The packed codes, panel-major: panel p's blocks are contiguous (<see cref="PanelBlockBytes"/> each).</summary>
    internal readonly byte[] Codes;
    /// <summary>fp16 scale bits: panel p, block b, row j at [(p·nb + b)·8 + j]; Q4_K: d of super-block s at [(p·sb + s)·16 + j], dmin at + 8.</summary>
    internal readonly ushort[] Scales;
    /// <summary>Q4_K only: the 6-bit scales of super-block s, sub-block k, row j at [(p·sb + s)·128 + 8k + j], the mins at + 64.</summary>
    internal readonly byte[] SubScales;

    /// <summary>Code bytes of one 32-block of a panel (8 rows).</summary>
    internal static int PanelBlockBytes(TileFormat format) => format == TileFormat.Q8_0 ? 8 * B : 4 * B;

    /// <summary>Bytes held (codes and scales): what one product streams.</summary>
    public long Bytes => Codes.LongLength + Scales.LongLength * sizeof(ushort) + SubScales.LongLength;

    /// <summary>What <paramref name="rows"/> × <paramref name="cols"/> weights of <paramref name="format"/> take as panels (rows padded to a multiple of 8).</summary>
    public static long BytesFor(TileFormat format, int rows, int cols)
    {
        long blocks = (rows + 7) / 8 * 8L * (cols / B);
        return format switch
        {
            TileFormat.Q8_0 => blocks * (B + 2),
            TileFormat.Q4_0 => blocks * (B / 2 + 2),
            _ => blocks / 8 * (8 * B / 2 + 4 + 16),
        };
    }

    Int8Panels(TileFormat format, int rows, int cols)
    {
        Format = format; Rows = rows; Cols = cols;
        long panels = (rows + 7) / 8, nb = cols / B;
        Codes = GC.AllocateUninitializedArray<byte>(checked((int)(panels * nb * PanelBlockBytes(format))), pinned: true);
        Scales = GC.AllocateUninitializedArray<ushort>(checked((int)(panels * nb * (format == TileFormat.Q4_K ? 2 : 8))), pinned: true);
        SubScales = format == TileFormat.Q4_K ? GC.AllocateUninitializedArray<byte>(checked((int)(panels * nb * 16)), pinned: true) : [];
    }

    /// <summary>
    /// Repacks a row-major (rows, cols) matrix of <paramref name="format"/> blocks (Q8_0, Q4_0 or Q4_K, GGUF layout).
    /// Any code is accepted (Q8_0 −128 included): every path forms exact integer dots.
    /// </summary>
    public static Int8Panels Pack(TileFormat format, ReadOnlySpan<byte> blocks, int rows, int cols)
    {
        if (format is not (TileFormat.Q8_0 or TileFormat.Q4_0 or TileFormat.Q4_K)) throw new ArgumentException($"Int8Panels: {format} is not packed (Q8_0, Q4_0 and Q4_K are).");
        int unit = format == TileFormat.Q4_K ? KQuantFormat.SuperBlock : B;
        if (rows < 0 || cols <= 0 || cols % unit != 0) throw new ArgumentException($"Int8Panels: {format} needs rows ≥ 0 and cols a positive multiple of {unit}; got ({rows}, {cols}).");
        if (format == TileFormat.Q4_K) return PackQ4K(blocks, rows, cols);
        int blockBytes = format == TileFormat.Q8_0 ? QuantFormat.Q8_0BlockBytes : QuantFormat.Q4_0BlockBytes;
        int nb = cols / B;
        long expected = (long)rows * nb * blockBytes;
        if (blocks.Length != expected) throw new ArgumentException($"Int8Panels: {format} ({rows}, {cols}) needs {expected} bytes of blocks, got {blocks.Length}.");
        var p = new Int8Panels(format, rows, cols);
        int panelBytes = PanelBlockBytes(format), groups = format == TileFormat.Q8_0 ? 8 : 4;
        byte pad = format == TileFormat.Q8_0 ? (byte)0x80 : (byte)0x88;
        uint flip = format == TileFormat.Q8_0 ? 0x80808080u : 0u;   // Q8_0 codes w → w + 128
        for (int panel = 0; panel < (rows + 7) / 8; panel++)
            for (int b = 0; b < nb; b++)
            {
                var dst = p.Codes.AsSpan((int)(((long)panel * nb + b) * panelBytes), panelBytes);
                var sc = p.Scales.AsSpan((int)(((long)panel * nb + b) * 8), 8);
                for (int j = 0; j < 8; j++)
                {
                    int row = 8 * panel + j;
                    if (row >= rows)
                    {
                        sc[j] = 0;
                        for (int g = 0; g < groups; g++) dst.Slice(32 * g + 4 * j, 4).Fill(pad);
                        continue;
                    }
                    var src = blocks.Slice((int)(((long)row * nb + b) * blockBytes), blockBytes);
                    sc[j] = BinaryPrimitives.ReadUInt16LittleEndian(src);
                    for (int g = 0; g < groups; g++)
                        BinaryPrimitives.WriteUInt32LittleEndian(dst[(32 * g + 4 * j)..], BinaryPrimitives.ReadUInt32LittleEndian(src[(2 + 4 * g)..]) ^ flip);
                }
            }
        return p;
    }

    static Int8Panels PackQ4K(ReadOnlySpan<byte> blocks, int rows, int cols)
    {
        const int SB = KQuantFormat.SuperBlock, Bytes = 144;
        int sb = cols / SB;
        long expected = (long)rows * sb * Bytes;
        if (blocks.Length != expected) throw new ArgumentException($"Int8Panels: Q4_K ({rows}, {cols}) needs {expected} bytes of blocks, got {blocks.Length}.");
        var p = new Int8Panels(TileFormat.Q4_K, rows, cols);
        for (int panel = 0; panel < (rows + 7) / 8; panel++)
            for (int s = 0; s < sb; s++)
            {
                long unit = (long)panel * sb + s;
                var dst = p.Codes.AsSpan((int)(unit * 1024), 1024);
                var halves = p.Scales.AsSpan((int)(unit * 16), 16);
                var subs = p.SubScales.AsSpan((int)(unit * 128), 128);
                for (int j = 0; j < 8; j++)
                {
                    int row = 8 * panel + j;
                    if (row >= rows)
                    {
                        halves[j] = halves[8 + j] = 0;
                        for (int k = 0; k < 8; k++) subs[8 * k + j] = subs[64 + 8 * k + j] = 0;
                        for (int g = 0; g < 32; g++) dst.Slice(32 * g + 4 * j, 4).Clear();
                        continue;
                    }
                    var src = blocks.Slice((int)(((long)row * sb + s) * Bytes), Bytes);
                    halves[j] = BinaryPrimitives.ReadUInt16LittleEndian(src);
                    halves[8 + j] = BinaryPrimitives.ReadUInt16LittleEndian(src[2..]);
                    for (int k = 0; k < 8; k++)
                    {
                        var (sc, m) = KQuantFormat.ScaleMin(src.Slice(4, 12), k);
                        subs[8 * k + j] = (byte)sc;
                        subs[64 + 8 * k + j] = (byte)m;
                    }
                    // Run c's k-group g (bytes 4g … 4g + 3 of the run) into lane j of panel vector 8c + g.
                    for (int g = 0; g < 32; g++) src.Slice(16 + 4 * g, 4).CopyTo(dst[(32 * g + 4 * j)..]);
                }
            }
        return p;
    }
}

// The panel kernels: 8 weight rows (lanes) × up to 4 activation rows per pass (two panels at once with VNNI). Every path forms each block's exact
// integer dot per lane and then runs, per (row, activation row, block), s = scale_row · d_x and acc = fma(dot, s, acc),
// blocks in K order, which is what the scalar twin does; so VNNI, AVX2 and one-at-a-time give the same bits.
public static unsafe partial class Int8Tiles
{
    /// <summary>Test switch: run the AVX2 (vpmaddubsw + vpmaddwd) forms on a VNNI CPU. Both give the same bits.</summary>
    internal static bool AvoidVnni;

    static bool Vnni => AvxVnni.IsSupported && !AvoidVnni;

    /// <summary>
    /// y (n × rows) = q8(x) (n × cols) · Wᵀ for W repacked as <paramref name="w"/>: activations rounded to int8 per 32-block
    /// (<see cref="QuantActivations"/>), exact integer block dots, fp32 accumulation as described on <see cref="Int8Panels"/>.
    /// </summary>
    public static void Run(Int8Panels w, float* x, int n, float* y)
    {
        ArgumentNullException.ThrowIfNull(w);
        if (!Supported(w.Format)) throw new PlatformNotSupportedException($"Int8Tiles: {w.Format} needs AVX2 + FMA.");
        if (n <= 0 || w.Rows == 0) return;
        int cols = w.Cols, nb = cols / B;
        var scratch = QuantMatMul.Rent(n, cols);
        var bias = System.Buffers.ArrayPool<int>.Shared.Rent(n * nb);
        try
        {
            fixed (byte* ps = scratch, pc = w.Codes, psub = w.SubScales)
            fixed (int* pb = bias)
            fixed (ushort* pw = w.Scales)
            {
                QuantMatMul.Quantize(x, n, cols, ps, out var q, out var xs, out var sums);
                // The unsigned weights carry an offset (128 for Q8_0, 8 for Q4_0): each block's dot starts at −offset·Σx.
                // The AVX2 Q8_0 form multiplies the signed codes directly and starts at 0.
                bool vnni = Vnni;
                // Q4_K (codes 0 … 15 with no offset) takes the code sums as fp32 for its mins instead, in the same buffer.
                int offset = w.Format switch { TileFormat.Q8_0 => vnni ? 128 : 0, TileFormat.Q4_0 => 8, _ => 0 };
                if (w.Format == TileFormat.Q4_K)
                    for (long i = 0; i < (long)n * nb; i++) ((float*)pb)[i] = sums[i];
                else
                    for (long i = 0; i < (long)n * nb; i++) pb[i] = -offset * sums[i];
                int units = (w.Rows + 15) / 16;   // pairs of panels
                var job = Panels.ForCurrentThread;
                job.Set(w.Format, vnni, pc, pw, psub, w.Rows, cols, q, xs, pb, n, y);
                var workers = WorkerPool.Shared;
                if ((long)w.Rows * cols * n < RowParallel.MinParallelElements || workers.ThreadCount == 1) job.Run(0, units);
                else workers.For(units, Math.Min(units, 8 * workers.ThreadCount), job.Compute);
            }
        }
        finally { System.Buffers.ArrayPool<byte>.Shared.Return(scratch); System.Buffers.ArrayPool<int>.Shared.Return(bias); }
    }

    sealed class Panels
    {
        [ThreadStatic] static Panels? current;
        [ThreadStatic] static float[]? wide;
        public static Panels ForCurrentThread => current ??= new Panels();

        public readonly Action<int, int> Compute;
        TileFormat format;
        bool vnni;
        byte* codes;
        ushort* scales;
        byte* subScales;
        float* xs, y;
        sbyte* q;
        int* bias;
        int rows, cols, n;

        Panels() => Compute = Run;

        public void Set(TileFormat format, bool vnni, byte* codes, ushort* scales, byte* subScales, int rows, int cols, sbyte* q, float* xs, int* bias, int n, float* y)
        {
            this.format = format; this.vnni = vnni; this.codes = codes; this.scales = scales; this.subScales = subScales; this.rows = rows; this.cols = cols;
            this.q = q; this.xs = xs; this.bias = bias; this.n = n; this.y = y;
        }

        /// <summary>Pairs of panels [start, end).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run(int start, int end)
        {
            int nb = cols / B;
            end = Math.Min(2 * end, (rows + 7) / 8);
            long panelBytes = (long)nb * Int8Panels.PanelBlockBytes(format);
            // The fp32 scales of the panel pair at hand: widened once per pair for all activation rows, read from L1.
            // Q4_K: (d·sc, dmin·m) of one panel, 16 lane vectors per super-block (16·nb floats), and its d/dmin behind them.
            var f = wide is { } k && k.Length >= 18 * nb ? k : wide = GC.AllocateUninitializedArray<float>(18 * nb, pinned: true);
            fixed (float* pf = f)
            for (int p = 2 * start; p < end;)
            {
                // Two panels at a time where the VNNI kernels can (16 weight rows × 4 activation rows: 8 independent
                // vpdpbusd chains, each activation broadcast feeding two); one panel otherwise. The per-row arithmetic
                // is the same in every kernel.
                int span = vnni && format != TileFormat.Q4_K && p + 1 < end && 8 * (p + 1) + 8 <= rows ? 2 : 1;
                byte* w = codes + p * panelBytes;
                float* s = pf;
                int count = Math.Min(8, rows - 8 * p);
                int i = 0;
                if (format == TileFormat.Q4_K)
                {
                    int sb = nb / 8;
                    WidenQ4K(scales + (long)p * sb * 16, subScales + (long)p * sb * 128, sb, s, s + 16 * nb);
                    for (; i + 4 <= n; i += 4)
                        if (vnni) Q4KVnni4(w, s, q + (long)i * cols, xs + (long)i * nb, (float*)bias + (long)i * nb, cols, nb, y + (long)i * rows + 8 * p, rows, count);
                        else Q4KAvx4(w, s, q + (long)i * cols, xs + (long)i * nb, (float*)bias + (long)i * nb, cols, nb, y + (long)i * rows + 8 * p, rows, count);
                    for (; i < n; i++)
                        if (vnni) Q4KVnni1(w, s, q + (long)i * cols, xs + (long)i * nb, (float*)bias + (long)i * nb, nb, y + (long)i * rows + 8 * p, count);
                        else Q4KAvx1(w, s, q + (long)i * cols, xs + (long)i * nb, (float*)bias + (long)i * nb, nb, y + (long)i * rows + 8 * p, count);
                    p++;
                    continue;
                }
                Halves.ToSingle(scales + (long)p * nb * 8, s, span * nb * 8);
                for (; i + 4 <= n; i += 4)
                {
                    sbyte* qi = q + (long)i * cols;
                    float* xi = xs + (long)i * nb;
                    int* bi = bias + (long)i * nb;
                    float* yi = y + (long)i * rows + 8 * p;
                    if (span == 2)
                    {
                        if (format == TileFormat.Q8_0) Q8Vnni2x4(w, panelBytes, s, qi, xi, bi, cols, nb, yi, rows);
                        else Q4Vnni2x4(w, panelBytes, s, qi, xi, bi, cols, nb, yi, rows);
                    }
                    else if (format == TileFormat.Q8_0)
                    {
                        if (vnni) Q8Vnni4(w, s, qi, xi, bi, cols, nb, yi, rows, count);
                        else Q8Avx4(w, s, qi, xi, cols, nb, yi, rows, count);
                    }
                    else if (vnni) Q4Vnni4(w, s, qi, xi, bi, cols, nb, yi, rows, count);
                    else Q4Avx4(w, s, qi, xi, bi, cols, nb, yi, rows, count);
                }
                for (; i < n; i++)
                    for (int h = 0; h < span; h++)
                    {
                        sbyte* qi = q + (long)i * cols;
                        float* xi = xs + (long)i * nb;
                        int* bi = bias + (long)i * nb;
                        float* yi = y + (long)i * rows + 8 * (p + h);
                        byte* wh = w + h * panelBytes;
                        float* sh = s + (long)h * nb * 8;
                        int c = Math.Min(8, rows - 8 * (p + h));
                        if (format == TileFormat.Q8_0)
                        {
                            if (vnni) Q8Vnni1(wh, sh, qi, xi, bi, nb, yi, c);
                            else Q8Avx1(wh, sh, qi, xi, nb, yi, c);
                        }
                        else if (vnni) Q4Vnni1(wh, sh, qi, xi, bi, nb, yi, c);
                        else Q4Avx1(wh, sh, qi, xi, bi, nb, yi, c);
                    }
                p += span;
            }
        }
    }

    /// <summary>
    /// How far ahead of the block at hand the one-row kernels prefetch the panel stream, in bytes. A lone activation row
    /// leaves little work per byte, so one thread pulled only 7–8 GB/s of Q4_0/Q4_K panels with the hardware prefetchers
    /// alone; 4 KB ahead (4–16 KB measured the same) made the 417 M model's one-row products 1.3–1.7× faster on the Xeon.
    /// </summary>
    const int Ahead = 4096;

    /// <summary>The 4 activation codes of k-group g, in every int32 lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<sbyte> Bcast(sbyte* q) => Vector256.Create(*(int*)q).AsSByte();

    /// <summary>acc + dot·(scale · d_x), lane-wise: the one fp32 step per block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Step(Vector256<int> dot, Vector256<float> scale, float dx, Vector256<float> acc)
        => Fma.MultiplyAdd(Avx.ConvertToVector256Single(dot), scale * Vector256.Create(dx), acc);

    /// <summary>Writes the first <paramref name="count"/> lanes (the panel's real rows).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Put(float* y, int count, Vector256<float> acc)
    {
        if (count == 8) { acc.Store(y); return; }
        for (int j = 0; j < count; j++) y[j] = acc.GetElement(j);
    }

    /// <summary>
    /// AVX2 form of Σ x·w for one Q8_0 k-group: |w| (unsigned, 0 … 128) times sign(w)·x (−127 … 127; no int16 pair can
    /// saturate: 2·128·127 &lt; 32768), pairs widened to int32 lanes. Exact for every code, −128 included.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<int> SignDot(Vector256<byte> absW, Vector256<sbyte> signedW, Vector256<sbyte> x)
        => Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(absW, Avx2.Sign(x, signedW)), Vector256<short>.One);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Q8Vnni1(byte* w, float* s, sbyte* q, float* xs, int* bias, int nb, float* y, int count)
    {
        Vector256<float> acc = default;
        for (int b = 0; b < nb; b++)
        {
            byte* wb = w + b * 256;
            sbyte* qb = q + b * B;
            Sse.Prefetch0(wb + Ahead); Sse.Prefetch0(wb + Ahead + 64); Sse.Prefetch0(wb + Ahead + 128); Sse.Prefetch0(wb + Ahead + 192);
            // Two chains (even and odd k-groups) halve the vpdpbusd latency a lone row waits on.
            var d = Vector256.Create(bias[b]);
            var e = Vector256<int>.Zero;
            d = AvxVnni.MultiplyWideningAndAdd(d, Vector256.Load(wb), Bcast(qb));
            e = AvxVnni.MultiplyWideningAndAdd(e, Vector256.Load(wb + 32), Bcast(qb + 4));
            d = AvxVnni.MultiplyWideningAndAdd(d, Vector256.Load(wb + 64), Bcast(qb + 8));
            e = AvxVnni.MultiplyWideningAndAdd(e, Vector256.Load(wb + 96), Bcast(qb + 12));
            d = AvxVnni.MultiplyWideningAndAdd(d, Vector256.Load(wb + 128), Bcast(qb + 16));
            e = AvxVnni.MultiplyWideningAndAdd(e, Vector256.Load(wb + 160), Bcast(qb + 20));
            d = AvxVnni.MultiplyWideningAndAdd(d, Vector256.Load(wb + 192), Bcast(qb + 24));
            e = AvxVnni.MultiplyWideningAndAdd(e, Vector256.Load(wb + 224), Bcast(qb + 28));
            acc = Step(d + e, Vector256.Load(s + 8 * b), xs[b], acc);
        }
        Put(y, count, acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Q8Vnni4(byte* w, float* s, sbyte* q, float* xs, int* bias, int cols, int nb, float* y, int rows, int count)
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        sbyte* q1 = q + cols, q2 = q + 2L * cols, q3 = q + 3L * cols;
        for (int b = 0; b < nb; b++)
        {
            byte* wb = w + b * 256;
            int o = b * B;
            var d0 = Vector256.Create(bias[b]);
            var d1 = Vector256.Create(bias[nb + b]);
            var d2 = Vector256.Create(bias[2 * nb + b]);
            var d3 = Vector256.Create(bias[3 * nb + b]);
            for (int g = 0; g < 8; g++)
            {
                var v = Vector256.Load(wb + 32 * g);
                d0 = AvxVnni.MultiplyWideningAndAdd(d0, v, Bcast(q + o + 4 * g));
                d1 = AvxVnni.MultiplyWideningAndAdd(d1, v, Bcast(q1 + o + 4 * g));
                d2 = AvxVnni.MultiplyWideningAndAdd(d2, v, Bcast(q2 + o + 4 * g));
                d3 = AvxVnni.MultiplyWideningAndAdd(d3, v, Bcast(q3 + o + 4 * g));
            }
            var sc = Vector256.Load(s + 8 * b);
            a0 = Step(d0, sc, xs[b], a0);
            a1 = Step(d1, sc, xs[nb + b], a1);
            a2 = Step(d2, sc, xs[2 * nb + b], a2);
            a3 = Step(d3, sc, xs[3 * nb + b], a3);
        }
        Put(y, count, a0); Put(y + rows, count, a1); Put(y + 2L * rows, count, a2); Put(y + 3L * rows, count, a3);
    }

    /// <summary>Q8_0, two full panels (<paramref name="stride"/> bytes apart) × 4 activation rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Q8Vnni2x4(byte* w, long stride, float* s, sbyte* q, float* xs, int* bias, int cols, int nb, float* y, int rows)
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, c0 = default, c1 = default, c2 = default, c3 = default;
        sbyte* q1 = q + cols, q2 = q + 2L * cols, q3 = q + 3L * cols;
        float* t = s + (long)nb * 8;
        for (int b = 0; b < nb; b++)
        {
            byte* wb = w + b * 256;
            int o = b * B;
            var d0 = Vector256.Create(bias[b]);
            var d1 = Vector256.Create(bias[nb + b]);
            var d2 = Vector256.Create(bias[2 * nb + b]);
            var d3 = Vector256.Create(bias[3 * nb + b]);
            var e0 = d0; var e1 = d1; var e2 = d2; var e3 = d3;
            for (int g = 0; g < 8; g++)
            {
                var v = Vector256.Load(wb + 32 * g);
                var u = Vector256.Load(wb + stride + 32 * g);
                var x0 = Bcast(q + o + 4 * g);
                d0 = AvxVnni.MultiplyWideningAndAdd(d0, v, x0); e0 = AvxVnni.MultiplyWideningAndAdd(e0, u, x0);
                var x1 = Bcast(q1 + o + 4 * g);
                d1 = AvxVnni.MultiplyWideningAndAdd(d1, v, x1); e1 = AvxVnni.MultiplyWideningAndAdd(e1, u, x1);
                var x2 = Bcast(q2 + o + 4 * g);
                d2 = AvxVnni.MultiplyWideningAndAdd(d2, v, x2); e2 = AvxVnni.MultiplyWideningAndAdd(e2, u, x2);
                var x3 = Bcast(q3 + o + 4 * g);
                d3 = AvxVnni.MultiplyWideningAndAdd(d3, v, x3); e3 = AvxVnni.MultiplyWideningAndAdd(e3, u, x3);
            }
            var sc = Vector256.Load(s + 8 * b);
            var sd = Vector256.Load(t + 8 * b);
            a0 = Step(d0, sc, xs[b], a0); c0 = Step(e0, sd, xs[b], c0);
            a1 = Step(d1, sc, xs[nb + b], a1); c1 = Step(e1, sd, xs[nb + b], c1);
            a2 = Step(d2, sc, xs[2 * nb + b], a2); c2 = Step(e2, sd, xs[2 * nb + b], c2);
            a3 = Step(d3, sc, xs[3 * nb + b], a3); c3 = Step(e3, sd, xs[3 * nb + b], c3);
        }
        a0.Store(y); c0.Store(y + 8);
        a1.Store(y + rows); c1.Store(y + rows + 8);
        a2.Store(y + 2L * rows); c2.Store(y + 2L * rows + 8);
        a3.Store(y + 3L * rows); c3.Store(y + 3L * rows + 8);
    }

    /// <summary>Q4_0, two full panels (<paramref name="stride"/> bytes apart) × 4 activation rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Q4Vnni2x4(byte* w, long stride, float* s, sbyte* q, float* xs, int* bias, int cols, int nb, float* y, int rows)
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, c0 = default, c1 = default, c2 = default, c3 = default;
        var mask = Vector256.Create((byte)0x0F);
        sbyte* q1 = q + cols, q2 = q + 2L * cols, q3 = q + 3L * cols;
        float* t = s + (long)nb * 8;
        for (int b = 0; b < nb; b++)
        {
            byte* wb = w + b * 128;
            int o = b * B;
            var d0 = Vector256.Create(bias[b]);
            var d1 = Vector256.Create(bias[nb + b]);
            var d2 = Vector256.Create(bias[2 * nb + b]);
            var d3 = Vector256.Create(bias[3 * nb + b]);
            var e0 = d0; var e1 = d1; var e2 = d2; var e3 = d3;
            for (int c = 0; c < 4; c++)
            {
                // Panel vector c: k-group c in the low nibbles, k-group c + 4 in the high ones.
                var pv = Vector256.Load(wb + 32 * c);
                var pu = Vector256.Load(wb + stride + 32 * c);
                var v = pv & mask;
                var u = pu & mask;
                var x0 = Bcast(q + o + 4 * c);
                d0 = AvxVnni.MultiplyWideningAndAdd(d0, v, x0); e0 = AvxVnni.MultiplyWideningAndAdd(e0, u, x0);
                var x1 = Bcast(q1 + o + 4 * c);
                d1 = AvxVnni.MultiplyWideningAndAdd(d1, v, x1); e1 = AvxVnni.MultiplyWideningAndAdd(e1, u, x1);
                var x2 = Bcast(q2 + o + 4 * c);
                d2 = AvxVnni.MultiplyWideningAndAdd(d2, v, x2); e2 = AvxVnni.MultiplyWideningAndAdd(e2, u, x2);
                var x3 = Bcast(q3 + o + 4 * c);
                d3 = AvxVnni.MultiplyWideningAndAdd(d3, v, x3); e3 = AvxVnni.MultiplyWideningAndAdd(e3, u, x3);
                v = Avx2.ShiftRightLogical(pv.AsUInt16(), 4).AsByte() & mask;
                u = Avx2.ShiftRightLogical(pu.AsUInt16(), 4).AsByte() & mask;
                x0 = Bcast(q + o + 16 + 4 * c);
                d0 = AvxVnni.MultiplyWideningAndAdd(d0, v, x0); e0 = AvxVnni.MultiplyWideningAndAdd(e0, u, x0);
                x1 = Bcast(q1 + o + 16 + 4 * c);
                d1 = AvxVnni.MultiplyWideningAndAdd(d1, v, x1); e1 = AvxVnni.MultiplyWideningAndAdd(e1, u, x1);
                x2 = Bcast(q2 + o + 16 + 4 * c);
                d2 = AvxVnni.MultiplyWideningAndAdd(d2, v, x2); e2 = AvxVnni.MultiplyWideningAndAdd(e2, u, x2);
                x3 = Bcast(q3 + o + 16 + 4 * c);
                d3 = AvxVnni.MultiplyWideningAndAdd(d3, v, x3); e3 = AvxVnni.MultiplyWideningAndAdd(e3, u, x3);
            }
            var sc = Vector256.Load(s + 8 * b);
            var sd = Vector256.Load(t + 8 * b);
            a0 = Step(d0, sc, xs[b], a0); c0 = Step(e0, sd, xs[b], c0);
            a1 = Step(d1, sc, xs[nb + b], a1); c1 = Step(e1, sd, xs[nb + b], c1);
            a2 = Step(d2, sc, xs[2 * nb + b], a2); c2 = Step(e2, sd, xs[2 * nb + b], c2);
            a3 = Step(d3, sc, xs[3 * nb + b], a3); c3 = Step(e3, sd, xs[3 * nb + b], c3);
        }
        a0.Store(y); c0.Store(y + 8);
        a1.Store(y + rows); c1.Store(y + rows + 8);
        a2.Store(y + 2L * rows); c2.Store(y + 2L * rows + 8);
        a3.Store(y + 3L * rows); c3.Store(y + 3L * rows + 8);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Q8Avx1(byte* w, float* s, sbyte* q, float* xs, int nb, float* y, int count)
    {
        Vector256<float> acc = default;
        var flip = Vector256.Create((byte)0x80);
        for (int b = 0; b < nb; b++)
        {
            byte* wb = w + b * 256;
            sbyte* qb = q + b * B;
            var d = Vector256<int>.Zero;
            for (int g = 0; g < 8; g++)
            {
                var sw = (Vector256.Load(wb + 32 * g) ^ flip).AsSByte();
                d += SignDot(Avx2.Abs(sw), sw, Bcast(qb + 4 * g));
            }
            acc = Step(d, Vector256.Load(s + 8 * b), xs[b], acc);
        }
        Put(y, count, acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Q8Avx4(byte* w, float* s, sbyte* q, float* xs, int cols, int nb, float* y, int rows, int count)
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        var flip = Vector256.Create((byte)0x80);
        sbyte* q1 = q + cols, q2 = q + 2L * cols, q3 = q + 3L * cols;
        for (int b = 0; b < nb; b++)
        {
            byte* wb = w + b * 256;
            int o = b * B;
            Vector256<int> d0 = default, d1 = default, d2 = default, d3 = default;
            for (int g = 0; g < 8; g++)
            {
                var sw = (Vector256.Load(wb + 32 * g) ^ flip).AsSByte();
                var aw = Avx2.Abs(sw);
                d0 += SignDot(aw, sw, Bcast(q + o + 4 * g));
                d1 += SignDot(aw, sw, Bcast(q1 + o + 4 * g));
                d2 += SignDot(aw, sw, Bcast(q2 + o + 4 * g));
                d3 += SignDot(aw, sw, Bcast(q3 + o + 4 * g));
            }
            var sc = Vector256.Load(s + 8 * b);
            a0 = Step(d0, sc, xs[b], a0);
            a1 = Step(d1, sc, xs[nb + b], a1);
            a2 = Step(d2, sc, xs[2 * nb + b], a2);
            a3 = Step(d3, sc, xs[3 * nb + b], a3);
        }
        Put(y, count, a0); Put(y + rows, count, a1); Put(y + 2L * rows, count, a2); Put(y + 3L * rows, count, a3);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Q4Vnni1(byte* w, float* s, sbyte* q, float* xs, int* bias, int nb, float* y, int count)
    {
        Vector256<float> acc = default;
        var mask = Vector256.Create((byte)0x0F);
        for (int b = 0; b < nb; b++)
        {
            byte* wb = w + b * 128;
            sbyte* qb = q + b * B;
            var d = Vector256.Create(bias[b]);
            var e = Vector256<int>.Zero;   // the high nibbles' chain
            Sse.Prefetch0(wb + Ahead); Sse.Prefetch0(wb + Ahead + 64);
            for (int c = 0; c < 4; c++)
            {
                var v = Vector256.Load(wb + 32 * c);
                d = AvxVnni.MultiplyWideningAndAdd(d, v & mask, Bcast(qb + 4 * c));
                e = AvxVnni.MultiplyWideningAndAdd(e, Avx2.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & mask, Bcast(qb + 16 + 4 * c));
            }
            acc = Step(d + e, Vector256.Load(s + 8 * b), xs[b], acc);
        }
        Put(y, count, acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Q4Vnni4(byte* w, float* s, sbyte* q, float* xs, int* bias, int cols, int nb, float* y, int rows, int count)
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        var mask = Vector256.Create((byte)0x0F);
        sbyte* q1 = q + cols, q2 = q + 2L * cols, q3 = q + 3L * cols;
        for (int b = 0; b < nb; b++)
        {
            byte* wb = w + b * 128;
            int o = b * B;
            var d0 = Vector256.Create(bias[b]);
            var d1 = Vector256.Create(bias[nb + b]);
            var d2 = Vector256.Create(bias[2 * nb + b]);
            var d3 = Vector256.Create(bias[3 * nb + b]);
            for (int c = 0; c < 4; c++)
            {
                var v = Vector256.Load(wb + 32 * c);
                var lo = v & mask;
                var hi = Avx2.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & mask;
                int ol = o + 4 * c, oh = o + 16 + 4 * c;
                d0 = AvxVnni.MultiplyWideningAndAdd(d0, lo, Bcast(q + ol));
                d1 = AvxVnni.MultiplyWideningAndAdd(d1, lo, Bcast(q1 + ol));
                d2 = AvxVnni.MultiplyWideningAndAdd(d2, lo, Bcast(q2 + ol));
                d3 = AvxVnni.MultiplyWideningAndAdd(d3, lo, Bcast(q3 + ol));
                d0 = AvxVnni.MultiplyWideningAndAdd(d0, hi, Bcast(q + oh));
                d1 = AvxVnni.MultiplyWideningAndAdd(d1, hi, Bcast(q1 + oh));
                d2 = AvxVnni.MultiplyWideningAndAdd(d2, hi, Bcast(q2 + oh));
                d3 = AvxVnni.MultiplyWideningAndAdd(d3, hi, Bcast(q3 + oh));
            }
            var sc = Vector256.Load(s + 8 * b);
            a0 = Step(d0, sc, xs[b], a0);
            a1 = Step(d1, sc, xs[nb + b], a1);
            a2 = Step(d2, sc, xs[2 * nb + b], a2);
            a3 = Step(d3, sc, xs[3 * nb + b], a3);
        }
        Put(y, count, a0); Put(y + rows, count, a1); Put(y + 2L * rows, count, a2); Put(y + 3L * rows, count, a3);
    }

    /// <summary>
    /// AVX2 Q4_0: the 8 k-groups' <c>vpmaddubsw</c> pairs (codes 0 … 15 unsigned, |pair| ≤ 2·15·127) are added as int16
    /// (8 · 3,810 &lt; 32,768: exact), then widened once.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<int> Q4AvxBlock(byte* wb, sbyte* qb, int bias)
    {
        var mask = Vector256.Create((byte)0x0F);
        Vector256<short> t = default;
        for (int c = 0; c < 4; c++)
        {
            var v = Vector256.Load(wb + 32 * c);
            t += Avx2.MultiplyAddAdjacent(v & mask, Bcast(qb + 4 * c));
            t += Avx2.MultiplyAddAdjacent(Avx2.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & mask, Bcast(qb + 16 + 4 * c));
        }
        return Avx2.MultiplyAddAdjacent(t, Vector256<short>.One) + Vector256.Create(bias);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Q4Avx1(byte* w, float* s, sbyte* q, float* xs, int* bias, int nb, float* y, int count)
    {
        Vector256<float> acc = default;
        for (int b = 0; b < nb; b++)
            acc = Step(Q4AvxBlock(w + b * 128, q + b * B, bias[b]), Vector256.Load(s + 8 * b), xs[b], acc);
        Put(y, count, acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Q4Avx4(byte* w, float* s, sbyte* q, float* xs, int* bias, int cols, int nb, float* y, int rows, int count)
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        for (int b = 0; b < nb; b++)
        {
            byte* wb = w + b * 128;
            var sc = Vector256.Load(s + 8 * b);
            a0 = Step(Q4AvxBlock(wb, q + b * B, bias[b]), sc, xs[b], a0);
            a1 = Step(Q4AvxBlock(wb, q + cols + b * B, bias[nb + b]), sc, xs[nb + b], a1);
            a2 = Step(Q4AvxBlock(wb, q + 2L * cols + b * B, bias[2 * nb + b]), sc, xs[2 * nb + b], a2);
            a3 = Step(Q4AvxBlock(wb, q + 3L * cols + b * B, bias[3 * nb + b]), sc, xs[3 * nb + b], a3);
        }
        Put(y, count, a0); Put(y + rows, count, a1); Put(y + 2L * rows, count, a2); Put(y + 3L * rows, count, a3);
    }
}
