using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Tessera.Kernels.Reference;

namespace Tessera.Kernels;

/// <summary>Rotary position embedding (rotate-half convention). Same contract as <see cref="ScalarRope"/>.</summary>
/// <remarks>
/// The rotation is vectorized along the half head dimension (x₁ = x[0..D/2), x₂ = x[D/2..D) are
/// contiguous, as are the table rows). It uses separate multiplies and adds, not FMA, so every
/// element goes through exactly the twin's fp32 operations and the results are bitwise equal.
/// Tokens (b, t) are split over <see cref="WorkerPool.Shared"/> for large inputs.
/// </remarks>
public static class Rope
{
    /// <summary>Fills cos/sin tables of shape (maxPositions, headDim/2).</summary>
    public static unsafe void BuildTables(int maxPositions, int headDim, float theta, Span<float> cos, Span<float> sin)
    {
        const string op = "Rope.BuildTables";
        RopeChecks.HeadDim(headDim);
        SpanChecks.NonNegative(maxPositions, op, "maxPositions");
        long n = (long)maxPositions * (headDim / 2);
        SpanChecks.Length(cos.Length, n, op, "cos", maxPositions, headDim / 2);
        SpanChecks.Length(sin.Length, n, op, "sin", maxPositions, headDim / 2);
        fixed (float* pc = cos, ps = sin)
            RowParallel.Run(new TableRows(pc, ps, headDim, theta), maxPositions, 8 * n);   // cos+sin cost ~8 element-passes each
    }

    /// <summary>
    /// Rotates x (B, T, H, D) in place; token t has position <c>positionOffset + t</c>.
    /// <paramref name="inverse"/> rotates by −angle, which is the backward pass.
    /// </summary>
    public static unsafe void Apply(Span<float> x, int batch, int seq, int heads, int headDim, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, int positionOffset = 0, bool inverse = false)
    {
        const string op = "Rope.Apply";
        RopeChecks.HeadDim(headDim);
        SpanChecks.NonNegative(batch, op, "batch");
        SpanChecks.NonNegative(seq, op, "seq");
        SpanChecks.NonNegative(heads, op, "heads");
        SpanChecks.NonNegative(positionOffset, op, "positionOffset");
        int half = headDim / 2;
        long n = (long)batch * seq * heads * headDim;
        SpanChecks.Length(x.Length, n, op, "x", batch, seq, heads, headDim);
        if (n == 0) return;
        long table = (long)(positionOffset + seq) * half;
        if (cos.Length < table || sin.Length < table)
            throw new ArgumentException($"{op}: cos/sin tables have {cos.Length}/{sin.Length} elements but positions up to offset {positionOffset} + T {seq} with D/2={half} need {table}.",
                cos.Length < table ? nameof(cos) : nameof(sin));
        fixed (float* px = x, pc = cos, ps = sin)
            RowParallel.Run(new TokenRows(px, pc, ps, seq, heads, headDim, positionOffset, inverse), batch * seq, n);
    }

    unsafe readonly struct TableRows(float* cos, float* sin, int headDim, float theta) : IRowRange
    {
        public void Run(int start, int end)
        {
            int half = headDim / 2;
            // Same double expressions as the twin, so the tables are bitwise equal; the
            // frequencies are hoisted out of the position loop when they fit on the stack.
            Span<double> freq = half <= 1024 ? stackalloc double[half] : default;
            for (int i = 0; i < freq.Length; i++) freq[i] = Math.Pow(theta, -2.0 * i / headDim);
            for (int p = start; p < end; p++)
                for (int i = 0; i < half; i++)
                {
                    double ang = p * (freq.Length > 0 ? freq[i] : Math.Pow(theta, -2.0 * i / headDim));
                    cos[(long)p * half + i] = (float)Math.Cos(ang);
                    sin[(long)p * half + i] = (float)Math.Sin(ang);
                }
        }
    }

    unsafe readonly struct TokenRows(float* x, float* cos, float* sin, int seq, int heads, int headDim, int positionOffset, bool inverse) : IRowRange
    {
        public void Run(int start, int end)
        {
            int half = headDim / 2;
            for (int bt = start; bt < end; bt++)
            {
                int p = positionOffset + bt % seq;
                ref float c = ref Unsafe.AsRef<float>(cos + (long)p * half);
                ref float s = ref Unsafe.AsRef<float>(sin + (long)p * half);
                for (int h = 0; h < heads; h++)
                    Rotate(ref Unsafe.AsRef<float>(x + ((long)bt * heads + h) * headDim), ref c, ref s, half, inverse);
            }
        }
    }

    static void Rotate(ref float x1, ref float c, ref float s, int half, bool inverse)
    {
        ref float x2 = ref Unsafe.Add(ref x1, half);
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i <= half - 16; i += 16)
            {
                var vc = Vector512.LoadUnsafe(ref c, (nuint)i);
                var vs = Vector512.LoadUnsafe(ref s, (nuint)i);
                if (inverse) vs = -vs;
                var a = Vector512.LoadUnsafe(ref x1, (nuint)i);
                var b = Vector512.LoadUnsafe(ref x2, (nuint)i);
                (a * vc - b * vs).StoreUnsafe(ref x1, (nuint)i);
                (b * vc + a * vs).StoreUnsafe(ref x2, (nuint)i);
            }
        else if (Vector256.IsHardwareAccelerated)
            for (; i <= half - 8; i += 8)
            {
                var vc = Vector256.LoadUnsafe(ref c, (nuint)i);
                var vs = Vector256.LoadUnsafe(ref s, (nuint)i);
                if (inverse) vs = -vs;
                var a = Vector256.LoadUnsafe(ref x1, (nuint)i);
                var b = Vector256.LoadUnsafe(ref x2, (nuint)i);
                (a * vc - b * vs).StoreUnsafe(ref x1, (nuint)i);
                (b * vc + a * vs).StoreUnsafe(ref x2, (nuint)i);
            }
        for (; i < half; i++)
        {
            float cc = Unsafe.Add(ref c, i), ss = inverse ? -Unsafe.Add(ref s, i) : Unsafe.Add(ref s, i);
            float a = Unsafe.Add(ref x1, i), b = Unsafe.Add(ref x2, i);
            Unsafe.Add(ref x1, i) = a * cc - b * ss;
            Unsafe.Add(ref x2, i) = b * cc + a * ss;
        }
    }
}
