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
/// Every format runs on <see cref="Int8Panels"/> (8 weight rows interleaved per 4-byte k-group): each block's
/// whole integer dot lands in the row's own lane, then per (row, activation row, block) one fp32 step,
/// acc = fma(dot, scale·d_x, acc), blocks in K order (Q4_K: the scale is d·sc of the sub-block, and a second
/// accumulator takes fma((dmin·m)·d_x, Σx, mins), subtracted at the end). Each panel meets 4 activation rows per
/// pass, so a panel k-group is loaded (and 4-bit codes unpacked) once per 4 rows.
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
    /// The blocks are repacked into <see cref="Int8Panels"/> for this one product (a matrix used more than once
    /// keeps its panels and calls <see cref="Run(Int8Panels, float*, int, float*)"/>).
    /// </summary>
    public static void Run(TileFormat format, byte* blocks, int rows, int cols, float* x, int n, float* y)
    {
        if (!Supported(format)) throw new PlatformNotSupportedException($"Int8Tiles: {format} needs AVX2 + FMA and one of Q8_0, Q4_0, Q4_K.");
        int unit = format == TileFormat.Q4_K ? KQuantFormat.SuperBlock : B;
        if (rows < 0 || cols <= 0 || cols % unit != 0) throw new ArgumentException($"Int8Tiles: {format} needs rows ≥ 0 and cols a positive multiple of {unit}; got ({rows}, {cols}).");
        if (n <= 0 || rows == 0) return;
        Run(Int8Panels.Pack(format, new ReadOnlySpan<byte>(blocks, checked((int)(rows * RowBytes(format, cols)))), rows, cols), x, n, y);
    }

    /// <summary>Bytes of one weight row.</summary>
    internal static long RowBytes(TileFormat format, int cols) => format switch
    {
        TileFormat.Q8_0 => (long)(cols / B) * QuantFormat.Q8_0BlockBytes,
        TileFormat.Q4_0 => (long)(cols / B) * QuantFormat.Q4_0BlockBytes,
        _ => (long)(cols / KQuantFormat.SuperBlock) * Q4KBytes,
    };
}
