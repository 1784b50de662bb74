using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Tessera.Kernels;

/// <summary>An elementwise operator y = f(x) in scalar, Vector256 and Vector512 form (same math in each).</summary>
internal interface IUnaryOp
{
    float Invoke(float x);
    Vector256<float> Invoke(Vector256<float> x);
    Vector512<float> Invoke(Vector512<float> x);
}

/// <summary>An elementwise operator y = f(a, b).</summary>
internal interface IBinaryOp
{
    float Invoke(float a, float b);
    Vector256<float> Invoke(Vector256<float> a, Vector256<float> b);
    Vector512<float> Invoke(Vector512<float> a, Vector512<float> b);
}

/// <summary>An elementwise operator with three inputs and two outputs, (y, z) = f(a, b, c).</summary>
internal interface ITernaryPairOp
{
    void Invoke(float a, float b, float c, out float y, out float z);
    void Invoke(Vector256<float> a, Vector256<float> b, Vector256<float> c, out Vector256<float> y, out Vector256<float> z);
    void Invoke(Vector512<float> a, Vector512<float> b, Vector512<float> c, out Vector512<float> y, out Vector512<float> z);
}

/// <summary>
/// The one vector driver behind the fused elementwise kernels, in the TensorPrimitives style:
/// an operator struct supplies the math, these loops supply Vector512 (else Vector256) bodies and a
/// scalar tail. Reductions keep one vector accumulator and add the scalar tail last, a fixed order
/// for a given length and ISA, so they are deterministic. Exact overlap of an input and an output
/// is allowed (each element is read before it is written).
/// </summary>
internal static class Elementwise
{
    /// <summary>y[i] = op(x[i]) for i &lt; n.</summary>
    public static void Map<TOp>(in TOp op, ref float x, ref float y, int n) where TOp : struct, IUnaryOp
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i <= n - 16; i += 16) op.Invoke(Vector512.LoadUnsafe(ref x, (nuint)i)).StoreUnsafe(ref y, (nuint)i);
        else if (Vector256.IsHardwareAccelerated)
            for (; i <= n - 8; i += 8) op.Invoke(Vector256.LoadUnsafe(ref x, (nuint)i)).StoreUnsafe(ref y, (nuint)i);
        for (; i < n; i++) Unsafe.Add(ref y, i) = op.Invoke(Unsafe.Add(ref x, i));
    }

    /// <summary>y[i] = op(x[i]) and returns Σ y[i] in fp32.</summary>
    public static float MapSum<TOp>(in TOp op, ref float x, ref float y, int n) where TOp : struct, IUnaryOp
    {
        int i = 0;
        float sum = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var acc = Vector512<float>.Zero;
            for (; i <= n - 16; i += 16)
            {
                var v = op.Invoke(Vector512.LoadUnsafe(ref x, (nuint)i));
                v.StoreUnsafe(ref y, (nuint)i);
                acc += v;
            }
            sum = Vector512.Sum(acc);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var acc = Vector256<float>.Zero;
            for (; i <= n - 8; i += 8)
            {
                var v = op.Invoke(Vector256.LoadUnsafe(ref x, (nuint)i));
                v.StoreUnsafe(ref y, (nuint)i);
                acc += v;
            }
            sum = Vector256.Sum(acc);
        }
        for (; i < n; i++)
        {
            float v = op.Invoke(Unsafe.Add(ref x, i));
            Unsafe.Add(ref y, i) = v;
            sum += v;
        }
        return sum;
    }

    /// <summary>Returns Σ op(x[i]) in fp32 without storing the terms.</summary>
    public static float Sum<TOp>(in TOp op, ref float x, int n) where TOp : struct, IUnaryOp
    {
        int i = 0;
        float sum = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var acc = Vector512<float>.Zero;
            for (; i <= n - 16; i += 16) acc += op.Invoke(Vector512.LoadUnsafe(ref x, (nuint)i));
            sum = Vector512.Sum(acc);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var acc = Vector256<float>.Zero;
            for (; i <= n - 8; i += 8) acc += op.Invoke(Vector256.LoadUnsafe(ref x, (nuint)i));
            sum = Vector256.Sum(acc);
        }
        for (; i < n; i++) sum += op.Invoke(Unsafe.Add(ref x, i));
        return sum;
    }

    /// <summary>y[i] = op(a[i], b[i]).</summary>
    public static void Map<TOp>(in TOp op, ref float a, ref float b, ref float y, int n) where TOp : struct, IBinaryOp
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i <= n - 16; i += 16)
                op.Invoke(Vector512.LoadUnsafe(ref a, (nuint)i), Vector512.LoadUnsafe(ref b, (nuint)i)).StoreUnsafe(ref y, (nuint)i);
        else if (Vector256.IsHardwareAccelerated)
            for (; i <= n - 8; i += 8)
                op.Invoke(Vector256.LoadUnsafe(ref a, (nuint)i), Vector256.LoadUnsafe(ref b, (nuint)i)).StoreUnsafe(ref y, (nuint)i);
        for (; i < n; i++) Unsafe.Add(ref y, i) = op.Invoke(Unsafe.Add(ref a, i), Unsafe.Add(ref b, i));
    }

    /// <summary>(y[i], z[i]) = op(a[i], b[i], c[i]).</summary>
    public static void Map<TOp>(in TOp op, ref float a, ref float b, ref float c, ref float y, ref float z, int n)
        where TOp : struct, ITernaryPairOp
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i <= n - 16; i += 16)
            {
                op.Invoke(Vector512.LoadUnsafe(ref a, (nuint)i), Vector512.LoadUnsafe(ref b, (nuint)i), Vector512.LoadUnsafe(ref c, (nuint)i),
                    out var vy, out var vz);
                vy.StoreUnsafe(ref y, (nuint)i);
                vz.StoreUnsafe(ref z, (nuint)i);
            }
        else if (Vector256.IsHardwareAccelerated)
            for (; i <= n - 8; i += 8)
            {
                op.Invoke(Vector256.LoadUnsafe(ref a, (nuint)i), Vector256.LoadUnsafe(ref b, (nuint)i), Vector256.LoadUnsafe(ref c, (nuint)i),
                    out var vy, out var vz);
                vy.StoreUnsafe(ref y, (nuint)i);
                vz.StoreUnsafe(ref z, (nuint)i);
            }
        for (; i < n; i++)
        {
            op.Invoke(Unsafe.Add(ref a, i), Unsafe.Add(ref b, i), Unsafe.Add(ref c, i), out float sy, out float sz);
            Unsafe.Add(ref y, i) = sy;
            Unsafe.Add(ref z, i) = sz;
        }
    }

    /// <summary>Elements per parallel chunk: a multiple of 16 so chunk boundaries fall on vector boundaries.</summary>
    const int Chunk = 4096;

    /// <summary>y = op(x) over whole spans, split into chunks over the worker pool when large.</summary>
    public static unsafe void MapParallel<TOp>(TOp op, ReadOnlySpan<float> x, Span<float> y) where TOp : struct, IUnaryOp
    {
        int n = x.Length;
        fixed (float* px = x, py = y)
            RowParallel.Run(new UnaryChunks<TOp>(op, px, py, n), (n + Chunk - 1) / Chunk, n);
    }

    /// <summary>y = op(a, b) over whole spans, chunked over the worker pool when large.</summary>
    public static unsafe void MapParallel<TOp>(TOp op, ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y) where TOp : struct, IBinaryOp
    {
        int n = a.Length;
        fixed (float* pa = a, pb = b, py = y)
            RowParallel.Run(new BinaryChunks<TOp>(op, pa, pb, py, n), (n + Chunk - 1) / Chunk, 2L * n);
    }

    /// <summary>(y, z) = op(a, b, c) over whole spans, chunked over the worker pool when large.</summary>
    public static unsafe void MapParallel<TOp>(TOp op, ReadOnlySpan<float> a, ReadOnlySpan<float> b, ReadOnlySpan<float> c, Span<float> y, Span<float> z)
        where TOp : struct, ITernaryPairOp
    {
        int n = a.Length;
        fixed (float* pa = a, pb = b, pc = c, py = y, pz = z)
            RowParallel.Run(new TernaryPairChunks<TOp>(op, pa, pb, pc, py, pz, n), (n + Chunk - 1) / Chunk, 3L * n);
    }

    unsafe readonly struct UnaryChunks<TOp>(TOp op, float* x, float* y, int n) : IRowRange where TOp : struct, IUnaryOp
    {
        public void Run(int start, int end)
        {
            int i0 = start * Chunk, i1 = (int)Math.Min((long)end * Chunk, n);
            Map(op, ref x[i0], ref y[i0], i1 - i0);
        }
    }

    unsafe readonly struct BinaryChunks<TOp>(TOp op, float* a, float* b, float* y, int n) : IRowRange where TOp : struct, IBinaryOp
    {
        public void Run(int start, int end)
        {
            int i0 = start * Chunk, i1 = (int)Math.Min((long)end * Chunk, n);
            Map(op, ref a[i0], ref b[i0], ref y[i0], i1 - i0);
        }
    }

    unsafe readonly struct TernaryPairChunks<TOp>(TOp op, float* a, float* b, float* c, float* y, float* z, int n) : IRowRange
        where TOp : struct, ITernaryPairOp
    {
        public void Run(int start, int end)
        {
            int i0 = start * Chunk, i1 = (int)Math.Min((long)end * Chunk, n);
            Map(op, ref a[i0], ref b[i0], ref c[i0], ref y[i0], ref z[i0], i1 - i0);
        }
    }

    /// <summary>A by-ref view of a span's first element that is safe for empty spans (never dereferenced then).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ref float Ref(ReadOnlySpan<float> s) => ref MemoryMarshal.GetReference(s);

    /// <inheritdoc cref="Ref(ReadOnlySpan{float})"/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ref float Ref(Span<float> s) => ref MemoryMarshal.GetReference(s);
}
