using System.Buffers;
using System.Runtime.Intrinsics;

namespace Tessera.Kernels;

/// <summary>
/// Per-32-block int8 quantization of activation rows, the left operand of every quantized matmul
/// (ggml's Q8 "vec_dot_type"). Same contract and the same float operations as
/// <see cref="Reference.ScalarQuant.QuantizeActivations"/>, so the int8 codes, scales and sums are
/// bit-identical to the twin's: d = max|x|/127, q = round-half-even(x·(1/d)), sum = Σq.
/// </summary>
public static class QuantActivations
{
    const int B = QuantFormat.BlockSize;

    /// <summary>Quantizes <paramref name="x"/> (length a multiple of 32) into codes, one scale and one code sum per block.</summary>
    public static unsafe void Quantize(ReadOnlySpan<float> x, Span<sbyte> q, Span<float> scales, Span<int> sums)
    {
        long nb = QuantFormat.CheckedBlocks(x.Length);
        if (q.Length != x.Length || scales.Length != nb || sums.Length != nb)
            throw new ArgumentException($"QuantActivations.Quantize: {x.Length} inputs need {x.Length} codes and {nb} scales and sums; got {q.Length}, {scales.Length}, {sums.Length}.");
        fixed (float* px = x, ps = scales)
        fixed (sbyte* pq = q)
        fixed (int* pm = sums)
            for (int b = 0; b < nb; b++) QuantizeBlock(px + b * B, pq + b * B, ps + b, pm + b);
    }

    /// <summary>One block of 32 floats → 32 codes, its scale and its code sum.</summary>
    internal static unsafe void QuantizeBlock(float* x, sbyte* q, float* scale, int* sum)
    {
        var v0 = Vector256.Load(x); var v1 = Vector256.Load(x + 8);
        var v2 = Vector256.Load(x + 16); var v3 = Vector256.Load(x + 24);
        var m = Vector256.Max(Vector256.Max(Vector256.Abs(v0), Vector256.Abs(v1)), Vector256.Max(Vector256.Abs(v2), Vector256.Abs(v3)));
        // Max is exact and (with NaN propagation, as MathF.Max) order-free: halves folded by shuffles, not a lane loop.
        var h = Vector128.Max(m.GetLower(), m.GetUpper());
        h = Vector128.Max(h, Vector128.Shuffle(h, Vector128.Create(2, 3, 0, 1)));
        h = Vector128.Max(h, Vector128.Shuffle(h, Vector128.Create(1, 0, 3, 2)));
        float amax = MathF.Max(0, h.ToScalar());
        float d = amax / 127f;
        float id = d != 0 ? 1f / d : 0f;
        var vid = Vector256.Create(id);
        var i0 = Vector256.ConvertToInt32(Vector256.Round(v0 * vid));
        var i1 = Vector256.ConvertToInt32(Vector256.Round(v1 * vid));
        var i2 = Vector256.ConvertToInt32(Vector256.Round(v2 * vid));
        var i3 = Vector256.ConvertToInt32(Vector256.Round(v3 * vid));
        Vector256.Narrow(Vector256.Narrow(i0, i1), Vector256.Narrow(i2, i3)).Store(q);
        *scale = d;
        *sum = Vector256.Sum(i0 + i1 + i2 + i3);
    }
}

/// <summary>
/// Shared driver of the quantized matmuls: argument checks, a pooled scratch buffer for the
/// quantized activations (no steady-state allocation), and the activation quantization.
/// </summary>
internal static unsafe class QuantMatMul
{
    const int B = QuantFormat.BlockSize;

    /// <summary>Checks y (n×rows) = x (n×cols)·Wᵀ shapes.</summary>
    public static void Check(string op, int rows, int cols, int xLength, int n, int yLength)
    {
        if (n < 0) throw new ArgumentException($"{op}: n = {n} must be ≥ 0.");
        if (xLength != (long)n * cols) throw new ArgumentException($"{op}: x has {xLength} floats, expected n·cols = {n}·{cols}.");
        if (yLength != (long)n * rows) throw new ArgumentException($"{op}: y has {yLength} floats, expected n·rows = {n}·{rows}.");
    }

    /// <summary>Scratch bytes for n rows of <paramref name="cols"/> activations: codes, scales, sums.</summary>
    public static int ScratchBytes(int n, int cols) => checked(n * cols + n * (cols / B) * 8);

    /// <summary>Quantizes the rows of x into scratch (codes first, then scales, then sums).</summary>
    public static void Quantize(float* x, int n, int cols, byte* scratch, out sbyte* q, out float* xs, out int* sums)
    {
        int nb = cols / B;
        q = (sbyte*)scratch;
        xs = (float*)(scratch + (long)n * cols);
        sums = (int*)(xs + (long)n * nb);
        for (long blk = 0; blk < (long)n * nb; blk++) QuantActivations.QuantizeBlock(x + blk * B, q + blk * B, xs + blk, sums + blk);
    }

    /// <summary>Rents a scratch array (return it with <see cref="ArrayPool{T}.Return"/>).</summary>
    public static byte[] Rent(int n, int cols) => ArrayPool<byte>.Shared.Rent(Math.Max(1, ScratchBytes(n, cols)));
}
