using System.Runtime.InteropServices;

namespace Tessera.Tensors;

/// <summary>
/// Recycles the native buffers behind tensors. A training step builds the same graph every step,
/// so it frees and re-allocates the same buffer sizes every step; handing a freed buffer to the
/// next request of the same size skips the allocator, the kernel's page faults and zeroing of
/// fresh pages, and the GC memory-pressure bookkeeping (whose induced collections are what a
/// step with fresh native buffers mostly pays for). Buffers come in size classes, four per power
/// of two (at most 25% slack), because a mixture-of-experts layer's per-expert row counts change
/// every step; a request whose own class is empty takes a retained buffer up to half a class larger,
/// which goes back to its own class when freed (the early steps of a mixture-of-experts run move demand
/// between neighbouring classes, and each miss costs fresh pages). At most <see cref="MaxRetainedBytes"/>
/// are kept; beyond that a freed buffer goes back to the system. Contents of a reused buffer are whatever its last user left
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

    /// <summary>
    /// Bytes taken from the system since the process started (never decreases): a step that raises it met
    /// a request the retained buffers could not serve, and paid for fresh pages (first-touch page faults,
    /// which cost ~1 GB/s of new memory on the VMs this was measured on).
    /// </summary>
    public static long AllocatedBytes => Interlocked.Read(ref allocatedBytes);

    static long allocatedBytes;

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

    /// <summary>
    /// A buffer of at least <paramref name="length"/> floats, its first <paramref name="length"/> zeroed when asked;
    /// <paramref name="capacity"/> is the size class it belongs to, which <see cref="Return"/> takes back.
    /// </summary>
    internal static float* Rent(int length, bool zero, out int capacity)
    {
        if (!OpProfile.Enabled) return RentCore(length, zero, out capacity);
        long start = OpProfile.Now();
        var p = RentCore(length, zero, out capacity);
        OpProfile.AddAllocation(OpProfile.Now() - start);
        return p;
    }

    static float* RentCore(int length, bool zero, out int capacity)
    {
        int n = SizeClass(length);
        float* p = null;
        capacity = n;
        lock (Gate)
        {
            // The length's own class first; when it is empty, a retained buffer of a larger class, at most
            // MaxSlackQuarters quarters of the class larger (a mixture-of-experts layer's per-expert row counts
            // move between neighbouring classes from step to step: demand shifts between them, the total stays).
            for (int c = n; c <= n + (long)n * MaxSlackQuarters / 4; c = SizeClass(c + 1))
            {
                if (Free.TryGetValue(c, out var stack) && stack.Count > 0)
                {
                    p = (float*)stack.Pop();
                    retainedBytes -= (long)c * sizeof(float);
                    capacity = c;
                    break;
                }
                if (c == int.MaxValue || n <= 1024) break;   // small buffers: their own class only
            }
        }
        if (p == null)
        {
            nuint bytes = (nuint)n * sizeof(float);
            p = (float*)NativeMemory.AlignedAlloc(bytes, Alignment);
            if (p == null) throw new OutOfMemoryException($"Could not allocate {bytes} bytes for a tensor.");
            GC.AddMemoryPressure((long)bytes);
            Interlocked.Add(ref allocatedBytes, (long)bytes);
        }
        if (zero) NativeMemory.Clear(p, (nuint)length * sizeof(float));
        return p;
    }

    /// <summary>How much larger (in quarters of its own class) a retained buffer may be and still serve a request: 2 = 50%.</summary>
    internal const int MaxSlackQuarters = 2;

    /// <summary>Takes back a buffer from <see cref="Rent"/>, with the <paramref name="capacity"/> Rent gave.</summary>
    internal static void Return(float* p, int capacity)
    {
        if (!OpProfile.Enabled) { ReturnCore(p, capacity); return; }
        long start = OpProfile.Now();
        ReturnCore(p, capacity);
        OpProfile.AddAllocation(OpProfile.Now() - start);
    }

    static void ReturnCore(float* p, int capacity)
    {
        int n = capacity;
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
