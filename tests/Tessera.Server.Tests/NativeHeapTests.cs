using System.Runtime.InteropServices;
using Tessera.Server;
using Xunit;

namespace Tessera.Server.Tests;

/// <summary>
/// The glibc heap probe the server's memory gauges and trim timer rely on. Its figures are the
/// whole process's, so this class runs alone (its own collection, parallelisation off), not
/// beside tests that allocate and free native memory meanwhile.
/// </summary>
[Collection(NativeHeapCollection.Name)]
public unsafe class NativeHeapTests
{
    [GlibcFact]
    public void InUseBytesFollowAnAllocationAndItsFree()
    {
        const int bytes = 48 << 20; // above glibc's mmap threshold: counted in the in-use figure as its own mapping
        var before = NativeHeap.Read()!.Value;
        byte* p = (byte*)NativeMemory.Alloc(bytes);
        try
        {
            new Span<byte>(p, 1 << 20).Fill(1);
            var during = NativeHeap.Read()!.Value;
            // The runtime's own threads (GC, JIT) still allocate and free between the two reads: allow 1 MiB of
            // their frees below and 8 MiB of their allocations above. The 48 MiB block itself must show: without
            // it the difference would be near 0. (A fresh-clone CI run under load once read 48 MiB − 36,688 bytes.)
            Assert.InRange(during.InUseBytes - before.InUseBytes, bytes - (1 << 20), bytes + (8 << 20));
        }
        finally { NativeMemory.Free(p); }
        var after = NativeHeap.Read()!.Value;
        Assert.True(after.InUseBytes < before.InUseBytes + bytes / 2, $"in use stayed up after free: {before.InUseBytes} → {after.InUseBytes}");
    }

    [GlibcFact]
    public void TrimHandsFreedArenaMemoryBack()
    {
        // Many small blocks (below the mmap threshold, so they live in the arena), then free all but
        // the last: the arena's top is pinned, so the freed middle stays as free arena bytes until trimmed.
        var blocks = new IntPtr[4096];
        for (int i = 0; i < blocks.Length; i++) { blocks[i] = (IntPtr)NativeMemory.Alloc(16 << 10); new Span<byte>((void*)blocks[i], 16 << 10).Fill(2); }
        for (int i = 0; i < blocks.Length - 1; i++) NativeMemory.Free((void*)blocks[i]);
        try
        {
            long resident0 = ResidentKb();
            Assert.True(NativeHeap.Read()!.Value.FreeBytes >= 32 << 20, "the freed 64 MB should sit in the arena as free bytes");
            Assert.True(NativeHeap.Trim(), "malloc_trim released nothing");
            long resident1 = ResidentKb();
            Assert.True(resident0 - resident1 >= 32 << 10, $"trim should return at least 32 MB of the 64 MB freed: RSS {resident0} → {resident1} KB");
        }
        finally { NativeMemory.Free((void*)blocks[^1]); }
    }

    [Fact]
    public void AnArenaCapBelowOneIsRefused()
        => Assert.Throws<ArgumentOutOfRangeException>(() => NativeHeap.LimitArenas(0));

    static long ResidentKb()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal)) return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);
        throw new InvalidOperationException("/proc/self/status has no VmRSS");
    }
}

/// <summary>A fact that runs only where the C library is glibc (it has mallinfo2 and malloc_trim).</summary>
public sealed class GlibcFactAttribute : FactAttribute
{
    /// <summary>Sets the skip reason off glibc.</summary>
    public GlibcFactAttribute()
    {
        if (!NativeHeap.IsAvailable)
            Skip = OperatingSystem.IsLinux() ? "this Linux C library has no mallinfo2/malloc_trim (not glibc ≥ 2.33)" : "glibc heap checks run on Linux only";
    }
}

/// <summary>The collection of the process-wide heap tests: run with no other test class beside it.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class NativeHeapCollection
{
    /// <summary>The collection's name.</summary>
    public const string Name = "native heap";
}
