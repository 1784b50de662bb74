using System.Runtime.InteropServices;

namespace Tessera.Kernels;

/// <summary>
/// Per-thread scratch buffers of the kernels (packing blocks for <see cref="Gemm"/>, tile buffers for the
/// attention passes that claim their work in chunks): 64-byte aligned native memory that grows
/// to the largest block seen and is then reused, so steady-state calls allocate nothing.
/// Each thread (callers and pool workers alike) owns one instance; when the thread ends, the
/// instance becomes unreachable and its finalizer returns the memory.
/// </summary>
internal sealed unsafe class GemmScratch
{
    [ThreadStatic] static GemmScratch? current;

    float* a, b, sharedA, attention;
    nuint aFloats, bFloats, sharedAFloats, attentionFloats;

    /// <summary>The calling thread's buffers.</summary>
    public static GemmScratch ForCurrentThread => current ??= new GemmScratch();

    /// <summary>Buffer for packed A blocks (owned by the thread that packs and consumes them).</summary>
    public float* A(nuint floats) => Ensure(ref a, ref aFloats, floats);

    /// <summary>Buffer for the packed B block the calling thread shares with the pool's workers.</summary>
    public float* B(nuint floats) => Ensure(ref b, ref bFloats, floats);

    /// <summary>Buffer for one K block of the whole packed A, shared with the pool's workers (<see cref="Gemm.PackAOnce"/>).</summary>
    public float* SharedA(nuint floats) => Ensure(ref sharedA, ref sharedAFloats, floats);

    /// <summary>
    /// Tile buffers for an attention pass on this thread (<see cref="AttentionForward"/>, the fused backward):
    /// one per thread, reused by every chunk the thread claims instead of one allocation per chunk.
    /// </summary>
    public float* Attention(nuint floats) => Ensure(ref attention, ref attentionFloats, floats);

    static float* Ensure(ref float* p, ref nuint have, nuint want)
    {
        if (want <= have) return p;
        NativeMemory.AlignedFree(p);
        p = null;
        have = 0;
        p = (float*)NativeMemory.AlignedAlloc(want * sizeof(float), 64);
        have = want;
        return p;
    }

    ~GemmScratch()
    {
        NativeMemory.AlignedFree(a);
        NativeMemory.AlignedFree(b);
        NativeMemory.AlignedFree(sharedA);
        NativeMemory.AlignedFree(attention);
    }
}
