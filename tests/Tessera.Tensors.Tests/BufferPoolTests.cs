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

    static unsafe nint Address(Tensor t) => (nint)System.Runtime.CompilerServices.Unsafe.AsPointer(ref t.AsSpan()[0]);

    [Fact]
    public void ARequestWhoseClassIsEmptyTakesABufferUpToHalfAClassLargerAndItGoesBackToItsOwnClass()
    {
        // Lengths in classes no other test uses: 2^21 + 5 floats is in the 1.25 × 2^21 class; 2^21 − 3 in the 2^21 class.
        const int big = (1 << 21) + 5, small = (1 << 21) - 3;
        Assert.Equal((1 << 21) + (1 << 19), BufferPool.SizeClass(big));
        Assert.Equal(1 << 21, BufferPool.SizeClass(small));
        var a = Tensor.Empty([big]);
        nint buffer = Address(a);
        a.Dispose();
        using (var b = Tensor.Empty([small]))          // its own class is empty: the retained 25%-larger buffer serves it
        {
            Assert.Equal(buffer, Address(b));
            b.AsSpan().Fill(1f);
        }
        // Given back under its own (larger) class, so a request of that class finds it again. Filed by the
        // smaller request's length instead, it would sit in the 2^21 class and this request would allocate.
        using var c = Tensor.Empty([big]);
        Assert.Equal(buffer, Address(c));
        Assert.Equal(1f, c.AsSpan()[small - 1]);
    }

    [Fact]
    public void NoBufferMoreThanHalfAClassLargerServesARequestAndSmallClassesServeOnlyTheirOwn()
    {
        // 1.75 × 2^22 + 1 floats is in the 2 × 2^22 class, twice the 2^22 class of the request: not taken.
        const int big = (1 << 22) + (3 << 20) + 1, request = (1 << 22) - 7;
        var a = Tensor.Empty([big]);
        nint buffer = Address(a);
        a.Dispose();
        using (var b = Tensor.Empty([request])) Assert.NotEqual(buffer, Address(b));
        using (var again = Tensor.Empty([big])) Assert.Equal(buffer, Address(again));   // still retained, untouched

        // Up to 1,024 floats the classes are 16 floats apart and a request takes its own class only.
        var s = Tensor.Empty([1009]);   // class 1,024
        nint small = Address(s);
        s.Dispose();
        using (var t = Tensor.Empty([993])) Assert.NotEqual(small, Address(t));   // class 1,008
    }
}
