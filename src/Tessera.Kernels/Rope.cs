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
    /// <summary>Fills cos/sin tables of shape (maxPositions, headDim/2) for base <paramref name="theta"/>, unscaled.</summary>
    public static void BuildTables(int maxPositions, int headDim, float theta, Span<float> cos, Span<float> sin)
    {
        RopeChecks.HeadDim(headDim);
        Span<double> invFreq = headDim <= 2048 ? stackalloc double[headDim / 2] : new double[headDim / 2];
        InverseFrequencies(headDim, theta, invFreq);
        BuildTables(maxPositions, invFreq, cos, sin);
    }

    /// <summary>
    /// Fills cos/sin tables of shape (maxPositions, invFreq.Length): entry (p, i) is cos/sin of
    /// p·invFreq[i], the angle computed in double and rounded once to float.
    /// </summary>
    public static unsafe void BuildTables(int maxPositions, ReadOnlySpan<double> invFreq, Span<float> cos, Span<float> sin)
    {
        const string op = "Rope.BuildTables";
        SpanChecks.NonNegative(maxPositions, op, "maxPositions");
        int half = invFreq.Length;
        long n = (long)maxPositions * half;
        SpanChecks.Length(cos.Length, n, op, "cos", maxPositions, half);
        SpanChecks.Length(sin.Length, n, op, "sin", maxPositions, half);
        fixed (float* pc = cos, ps = sin)
        fixed (double* pf = invFreq)
            RowParallel.Run(new TableRows(pc, ps, pf, half), maxPositions, 8 * n);   // cos+sin cost ~8 element-passes each
    }

    /// <summary>
    /// invFreq[i] = θ^(−2i/D) for i &lt; D/2, then remapped by <paramref name="scaling"/>:
    /// <see cref="RopeScalingKind.Linear"/> divides every frequency by <paramref name="factor"/>
    /// (positions stretched by it; HF <c>_compute_linear_scaling_rope_parameters</c>);
    /// <see cref="RopeScalingKind.Llama3"/> divides the low frequencies (wavelength above
    /// originalMaxPositions / lowFreqFactor) by the factor, keeps the high ones (wavelength below
    /// originalMaxPositions / highFreqFactor) and blends in between (HF <c>_compute_llama3_parameters</c>).
    /// </summary>
    public static void InverseFrequencies(int headDim, double theta, Span<double> invFreq, RopeScalingKind scaling = RopeScalingKind.None,
        double factor = 1, double lowFreqFactor = 1, double highFreqFactor = 4, int originalMaxPositions = 8192)
    {
        const string op = "Rope.InverseFrequencies";
        RopeChecks.HeadDim(headDim);
        RopeChecks.Scaling(scaling, theta, factor, lowFreqFactor, highFreqFactor, originalMaxPositions);
        SpanChecks.Length(invFreq.Length, headDim / 2, op, "invFreq", headDim / 2);
        for (int i = 0; i < headDim / 2; i++) invFreq[i] = Math.Pow(theta, -2.0 * i / headDim);
        if (scaling == RopeScalingKind.Linear)
            for (int i = 0; i < headDim / 2; i++) invFreq[i] /= factor;
        else if (scaling == RopeScalingKind.Llama3)
        {
            double lowWavelen = originalMaxPositions / lowFreqFactor, highWavelen = originalMaxPositions / highFreqFactor;
            for (int i = 0; i < headDim / 2; i++)
            {
                double f = invFreq[i], wavelen = 2 * Math.PI / f;
                if (wavelen > lowWavelen) invFreq[i] = f / factor;
                else if (wavelen >= highWavelen)
                {
                    double smooth = (originalMaxPositions / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
                    invFreq[i] = (1 - smooth) * f / factor + smooth * f;
                }
            }
        }
    }

    /// <summary>
    /// Rotates <paramref name="heads"/> contiguous heads of one token in place (the inference layout:
    /// a token's q heads then its k heads), by position <paramref name="position"/> of tables built
    /// for <paramref name="headDim"/>; the same fp32 operations as <see cref="Apply"/>, so bitwise equal.
    /// </summary>
    public static unsafe void RotateHeads(Span<float> x, int heads, int headDim, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, int position)
    {
        const string op = "Rope.RotateHeads";
        RopeChecks.HeadDim(headDim);
        SpanChecks.NonNegative(heads, op, "heads");
        SpanChecks.NonNegative(position, op, "position");
        int half = headDim / 2;
        SpanChecks.Length(x.Length, (long)heads * headDim, op, "x", heads, headDim);
        long table = (long)(position + 1) * half;
        if (cos.Length < table || sin.Length < table)
            throw new ArgumentException($"{op}: cos/sin tables have {cos.Length}/{sin.Length} elements but position {position} with D/2={half} needs {table}.",
                cos.Length < table ? nameof(cos) : nameof(sin));
        ref float c = ref Unsafe.Add(ref System.Runtime.InteropServices.MemoryMarshal.GetReference(cos), (nint)((long)position * half));
        ref float s = ref Unsafe.Add(ref System.Runtime.InteropServices.MemoryMarshal.GetReference(sin), (nint)((long)position * half));
        ref float x0 = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(x);
        for (int h = 0; h < heads; h++) Rotate(ref Unsafe.Add(ref x0, (nint)((long)h * headDim)), ref c, ref s, half, inverse: false);
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

    // Same double expressions as the twin, so the tables are bitwise equal.
    unsafe readonly struct TableRows(float* cos, float* sin, double* invFreq, int half) : IRowRange
    {
        public void Run(int start, int end)
        {
            for (int p = start; p < end; p++)
                for (int i = 0; i < half; i++)
                {
                    double ang = p * invFreq[i];
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
