using Tessera.Kernels;
using Tessera.Kernels.Reference;

namespace Tessera.Inference.Tests;

/// <summary>The decode step's adapters: thread invariance (the DecodeMatMul kernel, log-sum-exp and argmax: Tessera.Kernels.Tests; the chunked loop: WorkerPoolChunkTests).</summary>
public unsafe class DecodeKernelTests
{

    static float[] Random(int n, int seed)
    {
        var r = new System.Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(r.NextDouble() * 2 - 1);
        return a;
    }

    [Theory]
    [InlineData("row-major", 6)]
    [InlineData("panels", 6)]
    [InlineData("panels", 32)]   // the prefetching regime (one contiguous range per thread)
    public void DecodeProductIsTheSameForOneAndTwoThreads(string layout, int n)
    {
        int rows = 1000, k = 512;
        var values = Random(rows * k, 1);
        IWeightMatrix w = layout == "panels" ? PanelWeights.Pack(values, rows, k) : DenseWeights.Own(values, rows, k);
        var x = Random(n * k, 2);
        var a = new float[n * rows];
        var b = new float[n * rows];
        w.MatMul(x, n, a);
        using (var single = new WorkerPool(1))
            single.For(1, 1, (_, _) => w.MatMul(x, n, b));   // nested: runs inline on one thread
        Assert.Equal(a, b);
    }
}
