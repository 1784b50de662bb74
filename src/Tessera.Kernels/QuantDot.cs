using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Tessera.Kernels;

/// <summary>
/// Integer dot products of one quantized weight row with one int8-quantized activation row
/// (both in 32-blocks; see <see cref="QuantFormat"/>). The 8-bit products go through
/// <c>vpmaddubsw</c> (unsigned × signed bytes → adjacent pairs summed to int16) and <c>vpmaddwd</c>
/// with ones (→ int32), which is what ggml does without VNNI; .NET exposes no VNNI intrinsic on this
/// machine. No int16 pair can saturate: Q8_0 pairs are |q_x|·(±q_w) ≤ 2·127·127, Q4_0 pairs
/// (0..15)·q_x ≤ 2·15·127, ternary (0..2)·q_x ≤ 2·2·127. The unsigned forms of Q4_0 (q) and
/// ternary (t+1) are corrected with the activation block sums: Σ(q−8)·x = Σq·x − 8·Σx.
/// Each block's int32 partial sums are converted to float and scaled by d_w·d_x (exact integers,
/// one rounding per scaled term), so the result differs from <see cref="Reference.ScalarQuant"/>
/// only by fp32 summation order. AVX-512BW handles two blocks per instruction, AVX2+FMA one, else scalar.
/// </summary>
internal static unsafe class QuantDot
{
    const int B = QuantFormat.BlockSize;

    /// <summary>Widest path this CPU runs: 512, 256, or 0 (scalar).</summary>
    public static readonly int BestWidth = Avx512BW.IsSupported ? 512 : Avx2.IsSupported && Fma.IsSupported ? 256 : 0;

    /// <summary>Clamps a requested width to what the CPU supports.</summary>
    public static int Supported(int width) => width >= 512 ? BestWidth : width >= 256 ? Math.Min(BestWidth, 256) : 0;

    /// <summary>Q8_0 row (<paramref name="nb"/> blocks of 34 bytes, fp32 copies of their scales in <paramref name="ws"/>) · activations.</summary>
    public static float Q8_0(byte* w, float* ws, sbyte* q, float* xs, int nb, int width)
    {
        float total = 0;
        int b = 0;
        if (width >= 512)
        {
            var acc = Vector512<float>.Zero;
            for (; b + 2 <= nb; b += 2)
            {
                var wv = Vector512.Create(Vector256.Load((sbyte*)(w + b * QuantFormat.Q8_0BlockBytes + 2)),
                                          Vector256.Load((sbyte*)(w + (b + 1) * QuantFormat.Q8_0BlockBytes + 2)));
                var qv = Vector512.Load(q + b * B);
                var signed = Vector512.ConditionalSelect(Vector512.LessThan(qv, Vector512<sbyte>.Zero), -wv, wv);
                var p32 = Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(Avx512BW.Abs(qv), signed), Vector512<short>.One);
                var sc = Vector512.Create(Vector256.Create(ws[b] * xs[b]), Vector256.Create(ws[b + 1] * xs[b + 1]));
                acc = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(p32), sc, acc);
            }
            total = Vector512.Sum(acc);
        }
        if (width >= 256)
        {
            var acc = Vector256<float>.Zero;
            for (; b < nb; b++)
            {
                var wv = Vector256.Load((sbyte*)(w + b * QuantFormat.Q8_0BlockBytes + 2));
                var qv = Vector256.Load(q + b * B);
                var p32 = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Avx2.Abs(qv), Avx2.Sign(wv, qv)), Vector256<short>.One);
                acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(p32), Vector256.Create(ws[b] * xs[b]), acc);
            }
            return total + Vector256.Sum(acc);
        }
        for (; b < nb; b++)
        {
            sbyte* wq = (sbyte*)(w + b * QuantFormat.Q8_0BlockBytes + 2);
            int s = 0;
            for (int j = 0; j < B; j++) s += wq[j] * q[b * B + j];
            total += s * (ws[b] * xs[b]);
        }
        return total;
    }

    /// <summary>Q4_0 row (blocks of 18 bytes, fp32 scales in <paramref name="ws"/>) · activations (with block sums).</summary>
    public static float Q4_0(byte* w, float* ws, sbyte* q, float* xs, int* sums, int nb, int width)
    {
        float total = 0, corr = 0;
        int b = 0;
        if (width >= 512)
        {
            var acc = Vector512<float>.Zero;
            for (; b + 2 <= nb; b += 2)
            {
                var wv = Vector512.Create(Nibbles(w + b * QuantFormat.Q4_0BlockBytes + 2), Nibbles(w + (b + 1) * QuantFormat.Q4_0BlockBytes + 2));
                var p32 = Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(wv, Vector512.Load(q + b * B)), Vector512<short>.One);
                float s0 = ws[b] * xs[b], s1 = ws[b + 1] * xs[b + 1];
                acc = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(p32), Vector512.Create(Vector256.Create(s0), Vector256.Create(s1)), acc);
                corr += s0 * sums[b] + s1 * sums[b + 1];
            }
            total = Vector512.Sum(acc);
        }
        if (width >= 256)
        {
            var acc = Vector256<float>.Zero;
            for (; b < nb; b++)
            {
                var p32 = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Nibbles(w + b * QuantFormat.Q4_0BlockBytes + 2), Vector256.Load(q + b * B)), Vector256<short>.One);
                float s = ws[b] * xs[b];
                acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(p32), Vector256.Create(s), acc);
                corr += s * sums[b];
            }
            return total + Vector256.Sum(acc) - 8f * corr;
        }
        for (; b < nb; b++)
        {
            byte* wq = w + b * QuantFormat.Q4_0BlockBytes + 2;
            int s = 0;
            for (int j = 0; j < B / 2; j++) s += (wq[j] & 0x0F) * q[b * B + j] + (wq[j] >> 4) * q[b * B + j + B / 2];
            float sc = ws[b] * xs[b];
            total += s * sc;
            corr += sc * sums[b];
        }
        return total - 8f * corr;
    }

    /// <summary>
    /// Ternary row: <paramref name="t"/> points at the row's packed codes (8 bytes per block), whose first
    /// element has flat index <paramref name="first"/> in the tensor, so block b's scale is
    /// <c>gs[(first + 32·b) / groupSize]</c>.
    /// </summary>
    public static float Ternary(byte* t, float* gs, int groupSize, long first, sbyte* q, float* xs, int* sums, int nb, int width)
    {
        float total = 0, corr = 0;
        int b = 0;
        if (width >= 512)
        {
            var acc = Vector512<float>.Zero;
            var shifts = Vector512.Create(0UL, 2, 4, 6, 0, 2, 4, 6);
            for (; b + 2 <= nb; b += 2)
            {
                var packed = Vector512.Create(Vector256.Create(*(ulong*)(t + b * 8)), Vector256.Create(*(ulong*)(t + (b + 1) * 8)));
                var codes = Avx512F.ShiftRightLogicalVariable(packed, shifts).AsByte() & Vector512.Create((byte)3);
                var p32 = Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(codes, Vector512.Load(q + b * B)), Vector512<short>.One);
                float s0 = gs[(first + (long)b * B) / groupSize] * xs[b], s1 = gs[(first + (long)(b + 1) * B) / groupSize] * xs[b + 1];
                acc = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(p32), Vector512.Create(Vector256.Create(s0), Vector256.Create(s1)), acc);
                corr += s0 * sums[b] + s1 * sums[b + 1];
            }
            total = Vector512.Sum(acc);
        }
        if (width >= 256)
        {
            var acc = Vector256<float>.Zero;
            var shifts = Vector256.Create(0UL, 2, 4, 6);
            for (; b < nb; b++)
            {
                var codes = Avx2.ShiftRightLogicalVariable(Vector256.Create(*(ulong*)(t + b * 8)), shifts).AsByte() & Vector256.Create((byte)3);
                var p32 = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(codes, Vector256.Load(q + b * B)), Vector256<short>.One);
                float s = gs[(first + (long)b * B) / groupSize] * xs[b];
                acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(p32), Vector256.Create(s), acc);
                corr += s * sums[b];
            }
            return total + Vector256.Sum(acc) - corr;
        }
        for (; b < nb; b++)
        {
            int s = 0;
            for (int j = 0; j < B; j++) s += ((t[b * 8 + (j & 7)] >> (2 * (j >> 3))) & 3) * q[b * B + j];
            float sc = gs[(first + (long)b * B) / groupSize] * xs[b];
            total += s * sc;
            corr += sc * sums[b];
        }
        return total - corr;
    }

    /// <summary>16 bytes of Q4_0 nibbles → 32 unsigned codes in element order (low nibbles first).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<byte> Nibbles(byte* p)
    {
        var v = Vector128.Load(p);
        var mask = Vector128.Create((byte)0x0F);
        return Vector256.Create(v & mask, Vector128.ShiftRightLogical(v, 4) & mask);
    }
}
