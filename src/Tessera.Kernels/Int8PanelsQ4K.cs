using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Tessera.Kernels;

// The Q4_K panel kernels (layout on Int8Panels): per sub-block, 8 weight rows' exact integer dots land in the 8 lanes
// (VNNI: vpdpbusd; AVX2: vpmaddubsw pairs added as int16, 8 · 2·15·127 < 2¹⁵, then vpmaddwd), then per (row, activation
// row, sub-block) acc = fma(dot, (d·sc)·d_x, acc) and mins = fma((dmin·m)·d_x, Σx, mins) in K order, result acc − mins:
// the scalar twin's arithmetic (Reference.ScalarInt8Tiles), so every kernel and every batch size give the same bits.
public static unsafe partial class Int8Tiles
{

    /// <summary>
    /// One panel's (d·sc, dmin·m) as fp32 lane vectors, 16 per super-block (scales then mins, sub-block k at 8k), from
    /// its fp16 d/dmin (widened exactly into <paramref name="tmp"/>) and unpacked 6-bit scales: both products are exact.
    /// </summary>
    static void WidenQ4K(ushort* halves, byte* subs, int sb, float* f, float* tmp)
    {
        Halves.ToSingle(halves, tmp, 16 * sb);
        for (int s = 0; s < sb; s++)
        {
            var d = Vector256.Load(tmp + 16 * s);
            var dmin = Vector256.Load(tmp + 16 * s + 8);
            byte* u = subs + 128 * s;
            float* fs = f + 128 * s;
            for (int k = 0; k < 8; k++)
            {
                (Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(u + 8 * k)) * d).Store(fs + 8 * k);
                (Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(u + 64 + 8 * k)) * dmin).Store(fs + 64 + 8 * k);
            }
        }
    }

    /// <summary>The per-sub-block fp32 steps of the scale and min accumulators (the twin's order).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void StepQ4K(Vector256<int> dot, float* fs, int k, float dx, float sx, ref Vector256<float> acc, ref Vector256<float> mins)
    {
        var x = Vector256.Create(dx);
        acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(dot), Vector256.Load(fs + 8 * k) * x, acc);
        mins = Fma.MultiplyAdd(Vector256.Load(fs + 64 + 8 * k) * x, Vector256.Create(sx), mins);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Q4KVnni1(byte* w, float* f, sbyte* q, float* xs, float* sx, int nb, float* y, int count)
    {
        Vector256<float> acc = default, mins = default;
        var mask = Vector256.Create((byte)0x0F);
        for (int s = 0; s < nb / 8; s++)
            for (int c = 0; c < 4; c++)
            {
                byte* wc = w + 1024L * s + 256 * c;
                int b0 = 8 * s + 2 * c;
                sbyte* q0 = q + b0 * B, q1 = q0 + B;
                Sse.Prefetch0(wc + Ahead); Sse.Prefetch0(wc + Ahead + 64); Sse.Prefetch0(wc + Ahead + 128); Sse.Prefetch0(wc + Ahead + 192);
                // Two chains per sub-block (even and odd k-groups) halve the vpdpbusd latency a lone row waits on.
                Vector256<int> d0 = default, d1 = default, e0 = default, e1 = default;
                for (int g = 0; g < 8; g += 2)
                {
                    var v = Vector256.Load(wc + 32 * g);
                    var u = Vector256.Load(wc + 32 * g + 32);
                    d0 = AvxVnni.MultiplyWideningAndAdd(d0, v & mask, Bcast(q0 + 4 * g));
                    e0 = AvxVnni.MultiplyWideningAndAdd(e0, Avx2.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & mask, Bcast(q1 + 4 * g));
                    d1 = AvxVnni.MultiplyWideningAndAdd(d1, u & mask, Bcast(q0 + 4 * g + 4));
                    e1 = AvxVnni.MultiplyWideningAndAdd(e1, Avx2.ShiftRightLogical(u.AsUInt16(), 4).AsByte() & mask, Bcast(q1 + 4 * g + 4));
                }
                float* fs = f + 128L * s;
                StepQ4K(d0 + d1, fs, 2 * c, xs[b0], sx[b0], ref acc, ref mins);
                StepQ4K(e0 + e1, fs, 2 * c + 1, xs[b0 + 1], sx[b0 + 1], ref acc, ref mins);
            }
        Put(y, count, acc - mins);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Q4KVnni4(byte* w, float* f, sbyte* q, float* xs, float* sx, int cols, int nb, float* y, int rows, int count)
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, m0 = default, m1 = default, m2 = default, m3 = default;
        var mask = Vector256.Create((byte)0x0F);
        sbyte* r1 = q + cols, r2 = q + 2L * cols, r3 = q + 3L * cols;
        for (int s = 0; s < nb / 8; s++)
            for (int c = 0; c < 4; c++)
            {
                byte* wc = w + 1024L * s + 256 * c;
                int b0 = 8 * s + 2 * c, o0 = b0 * B, o1 = o0 + B;
                Vector256<int> d0 = default, d1 = default, d2 = default, d3 = default, e0 = default, e1 = default, e2 = default, e3 = default;
                for (int g = 0; g < 8; g++)
                {
                    var v = Vector256.Load(wc + 32 * g);
                    var lo = v & mask;
                    var hi = Avx2.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & mask;
                    int k0 = o0 + 4 * g, k1 = o1 + 4 * g;
                    d0 = AvxVnni.MultiplyWideningAndAdd(d0, lo, Bcast(q + k0)); e0 = AvxVnni.MultiplyWideningAndAdd(e0, hi, Bcast(q + k1));
                    d1 = AvxVnni.MultiplyWideningAndAdd(d1, lo, Bcast(r1 + k0)); e1 = AvxVnni.MultiplyWideningAndAdd(e1, hi, Bcast(r1 + k1));
                    d2 = AvxVnni.MultiplyWideningAndAdd(d2, lo, Bcast(r2 + k0)); e2 = AvxVnni.MultiplyWideningAndAdd(e2, hi, Bcast(r2 + k1));
                    d3 = AvxVnni.MultiplyWideningAndAdd(d3, lo, Bcast(r3 + k0)); e3 = AvxVnni.MultiplyWideningAndAdd(e3, hi, Bcast(r3 + k1));
                }
                float* fs = f + 128L * s;
                StepQ4K(d0, fs, 2 * c, xs[b0], sx[b0], ref a0, ref m0);
                StepQ4K(e0, fs, 2 * c + 1, xs[b0 + 1], sx[b0 + 1], ref a0, ref m0);
                StepQ4K(d1, fs, 2 * c, xs[nb + b0], sx[nb + b0], ref a1, ref m1);
                StepQ4K(e1, fs, 2 * c + 1, xs[nb + b0 + 1], sx[nb + b0 + 1], ref a1, ref m1);
                StepQ4K(d2, fs, 2 * c, xs[2 * nb + b0], sx[2 * nb + b0], ref a2, ref m2);
                StepQ4K(e2, fs, 2 * c + 1, xs[2 * nb + b0 + 1], sx[2 * nb + b0 + 1], ref a2, ref m2);
                StepQ4K(d3, fs, 2 * c, xs[3 * nb + b0], sx[3 * nb + b0], ref a3, ref m3);
                StepQ4K(e3, fs, 2 * c + 1, xs[3 * nb + b0 + 1], sx[3 * nb + b0 + 1], ref a3, ref m3);
            }
        Put(y, count, a0 - m0); Put(y + rows, count, a1 - m1); Put(y + 2L * rows, count, a2 - m2); Put(y + 3L * rows, count, a3 - m3);
    }

    /// <summary>AVX2: one run's two sub-block dots (low nibbles against <paramref name="q0"/>, high against <paramref name="q1"/>), exact.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Q4KAvxRun(byte* wc, sbyte* q0, sbyte* q1, out Vector256<int> lo, out Vector256<int> hi)
    {
        var mask = Vector256.Create((byte)0x0F);
        Vector256<short> t = default, u = default;
        for (int g = 0; g < 8; g++)
        {
            var v = Vector256.Load(wc + 32 * g);
            t += Avx2.MultiplyAddAdjacent(v & mask, Bcast(q0 + 4 * g));
            u += Avx2.MultiplyAddAdjacent(Avx2.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & mask, Bcast(q1 + 4 * g));
        }
        lo = Avx2.MultiplyAddAdjacent(t, Vector256<short>.One);
        hi = Avx2.MultiplyAddAdjacent(u, Vector256<short>.One);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Q4KAvx1(byte* w, float* f, sbyte* q, float* xs, float* sx, int nb, float* y, int count)
    {
        Vector256<float> acc = default, mins = default;
        for (int s = 0; s < nb / 8; s++)
            for (int c = 0; c < 4; c++)
            {
                int b0 = 8 * s + 2 * c;
                Q4KAvxRun(w + 1024L * s + 256 * c, q + b0 * B, q + (b0 + 1) * B, out var d, out var e);
                float* fs = f + 128L * s;
                StepQ4K(d, fs, 2 * c, xs[b0], sx[b0], ref acc, ref mins);
                StepQ4K(e, fs, 2 * c + 1, xs[b0 + 1], sx[b0 + 1], ref acc, ref mins);
            }
        Put(y, count, acc - mins);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Q4KAvx4(byte* w, float* f, sbyte* q, float* xs, float* sx, int cols, int nb, float* y, int rows, int count)
    {
        for (int r = 0; r < 4; r++) Q4KAvx1(w, f, q + (long)r * cols, xs + (long)r * nb, sx + (long)r * nb, nb, y + (long)r * rows, count);
    }
}
