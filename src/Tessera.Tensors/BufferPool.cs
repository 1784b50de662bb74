using System.Runtime.InteropServices;

namespace Tessera.Tensors;

/// <summary>
/// Recycles the native buffers behind tensors. A training step builds the same graph every step,
/// so it frees and re-allocates the same buffer sizes every step; handing a freed buffer to the
/// next request of the same size skips the allocator, the kernel's page faults and zeroing of
/// fresh pages, and the GC memory-pressure bookkeeping (whose induced collections are what a
/// step with fresh native buffers mostly pays for). Buffers come in size classes, four per power
/// of two (at most 25% slack), because a mixture-of-experts layer's per-expert row counts change
/// every step; at most <see cref="MaxRetainedBytes"/> are kept, beyond that a freed buffer goes
/// back to the system. Contents of a reused buffer are whatever its last user left
/// (<see cref="Tensor.Empty"/> promises nothing else), so results cannot depend on the pool.
/// Thread-safe (tensors are freed from the finalizer thread too).
/// </summary>
public static unsafe class BufferPool
{
    static readonly Dictionary<int, Stack<nint>> Free = [];
    static readonly object Gate = new();
    static long retainedBytes;

    /// <summary>Cache-line (and AVX-512 vector) alignment of every buffer.</summary>
    internal const int Alignment = 64;

    /// <summary>
    /// Upper bound on the bytes kept for reuse (0 disables pooling). Default: a quarter of the memory
    /// available to the process, at least 1 GiB. A fixed 1 GiB made every step of a ≥ 28M-parameter
    /// model (whose tape holds more than that) free and re-allocate its largest buffers, with page
    /// faults and GC-pressure collections each step (medium at 4×512: 36 GCs in 3 steps).
    /// </summary>
    public static long MaxRetainedBytes { get; set; } = Math.Max(1L << 30, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 4);

    /// <summary>Bytes currently held for reuse.</summary>
    public static long RetainedBytes { get { lock (Gate) return retainedBytes; } }

    /// <summary>
    /// The capacity in floats of the class holding <paramref name="length"/>: multiples of 16 floats
    /// (one cache line) up to 1024, above that the next of 1, 1.25, 1.5, 1.75 × a power of two.
    /// </summary>
    internal static int SizeClass(int length)
    {
        if (length <= 1024) return Math.Max(16, (length + 15) & ~15);
        int step = 1 << (29 - int.LeadingZeroCount(length - 1)); // a quarter of the power of two below length
        long c = ((long)length + step - 1) / step * step;
        return c > int.MaxValue ? length : (int)c;
    }

    /// <summary>A buffer of at least <paramref name="length"/> floats, its first <paramref name="length"/> zeroed when asked.</summary>
    internal static float* Rent(int length, bool zero)
    {
        if (!OpProfile.Enabled) return RentCore(length, zero);
        long start = OpProfile.Now();
        var p = RentCore(length, zero);
        OpProfile.AddAllocation(OpProfile.Now() - start);
        return p;
    }

    static float* RentCore(int length, bool zero)
    {
        int n = SizeClass(length);
        nuint bytes = (nuint)n * sizeof(float);
        float* p = null;
        lock (Gate)
        {
            if (Free.TryGetValue(n, out var stack) && stack.Count > 0)
            {
                p = (float*)stack.Pop();
                retainedBytes -= (long)bytes;
            }
        }
        if (p == null)
        {
            p = (float*)NativeMemory.AlignedAlloc(bytes, Alignment);
            if (p == null) throw new OutOfMemoryException($"Could not allocate {bytes} bytes for a tensor.");
            GC.AddMemoryPressure((long)bytes);
        }
        if (zero) NativeMemory.Clear(p, (nuint)length * sizeof(float));
        return p;
    }

    /// <summary>Takes back a buffer from <see cref="Rent"/> of the same <paramref name="length"/>.</summary>
    internal static void Return(float* p, int length)
    {
        if (!OpProfile.Enabled) { ReturnCore(p, length); return; }
        long start = OpProfile.Now();
        ReturnCore(p, length);
        OpProfile.AddAllocation(OpProfile.Now() - start);
    }

    static void ReturnCore(float* p, int length)
    {
        int n = SizeClass(length);
        long bytes = (long)n * sizeof(float);
        lock (Gate)
        {
            if (retainedBytes + bytes <= MaxRetainedBytes)
            {
                if (!Free.TryGetValue(n, out var stack)) Free[n] = stack = new Stack<nint>();
                stack.Push((nint)p);
                retainedBytes += bytes;
                return;
            }
        }
        Release(p, bytes);
    }

    /// <summary>Gives every retained buffer back to the system (e.g. after training, before serving).</summary>
    public static void Trim()
    {
        List<(nint, long)> all = [];
        lock (Gate)
        {
            foreach (var (n, stack) in Free)
                while (stack.Count > 0) all.Add((stack.Pop(), (long)n * sizeof(float)));
            Free.Clear();
            retainedBytes = 0;
        }
        foreach (var (p, bytes) in all) Release((float*)p, bytes);
    }

    static void Release(float* p, long bytes)
    {
        NativeMemory.AlignedFree(p);
        GC.RemoveMemoryPressure(bytes);
    }
}
