using Tessera.Tensors;

namespace Tessera.Tensors.Tests;

/// <summary>Recycled tensor buffers: reuse, zeroing, the retention bound, and safety of stale views.</summary>
public class BufferPoolTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(17)]
    [InlineData(1000)]
    [InlineData(5000)]
    [InlineData(123_457)]
    public void ZerosAreZeroEvenOnARecycledBuffer(int length)
    {
        // Fill buffers of nearby sizes (same size class) with garbage and free them, then ask for zeros.
        for (int delta = 0; delta < 3; delta++)
        {
            var dirty = Tensor.Empty([length + delta]);
            dirty.AsSpan().Fill(float.NaN);
            dirty.Dispose();
        }
        using var t = Tensor.Zeros([length]);
        foreach (float v in t.AsSpan()) Assert.Equal(0f, v);
    }

    [Fact]
    public void FreedBuffersAreRetainedAndReusedUpToTheBound()
    {
        long bound = BufferPool.MaxRetainedBytes;
        try
        {
            BufferPool.Trim();
            Assert.Equal(0, BufferPool.RetainedBytes);
            var a = Tensor.Empty([4096]);
            a.Dispose();
            long held = BufferPool.RetainedBytes;
            Assert.True(held >= 4096 * sizeof(float), $"retained {held} bytes after freeing 16 KiB");
            var b = Tensor.Empty([4096]);
            Assert.Equal(0, BufferPool.RetainedBytes); // the same buffer came back out

            BufferPool.MaxRetainedBytes = held - 1; // too small for it: freeing releases it to the system
            b.Dispose();
            Assert.Equal(0, BufferPool.RetainedBytes);
        }
        finally { BufferPool.MaxRetainedBytes = bound; }
    }

    [Fact]
    public void AViewOfAFreedOwnerStaysDisposedAfterItsBufferIsReused()
    {
        var owner = Tensor.FromArray([1f, 2f, 3f, 4f], [2, 2], "owner");
        var view = owner.View([4]);
        owner.Dispose();
        using var next = Tensor.FromArray([9f, 9f, 9f, 9f], [4], "next"); // may reuse owner's buffer
        Assert.True(view.IsDisposed);
        Assert.Throws<ObjectDisposedException>(() => view.AsSpan("test"));
        Assert.Equal([9f, 9f, 9f, 9f], next.ToArray());
    }

    [Fact]
    public void SizeClassesCoverTheLengthWithAtMostAQuarterSlack()
    {
        int previous = 0;
        for (int n = 0; n <= 1 << 20; n += n < 4096 ? 1 : 997)
        {
            int c = BufferPool.SizeClass(n);
            Assert.True(c >= Math.Max(n, 1), $"class {c} < length {n}");
            Assert.True(c <= Math.Max(16, n + 15) || c <= n * 1.25 + 1, $"class {c} too big for length {n}");
            Assert.True(c >= previous, "classes must not shrink as lengths grow");
            previous = c;
        }
    }
}
