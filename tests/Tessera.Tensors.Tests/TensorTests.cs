using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Tessera.Tensors;

namespace Tessera.Tensors.Tests;

/// <summary>Tensor storage, views, disposal and the error messages for misuse.</summary>
public class TensorTests
{
    [Theory]
    [InlineData(new int[0])]
    [InlineData(new[] { 1 })]
    [InlineData(new[] { 3, 5 })]
    [InlineData(new[] { 2, 3, 7 })]
    [InlineData(new[] { 0, 4 })]
    public unsafe void BuffersAre64ByteAlignedAndZeroed(int[] shape)
    {
        using var t = Tensor.Zeros(shape);
        var span = t.AsSpan();
        Assert.Equal(span.Length, t.Length);
        fixed (float* p = &MemoryMarshal.GetReference(span))
            Assert.Equal(0UL, (ulong)p % 64);
        foreach (var v in span) Assert.Equal(0f, v);
    }

    [Fact]
    public void ShapeStridesAndContiguity()
    {
        using var t = Tensor.FromArray([.. Enumerable.Range(0, 24).Select(i => (float)i)], [2, 3, 4], "t");
        Assert.Equal([12, 4, 1], t.Strides.ToArray());
        Assert.True(t.IsContiguous);
        Assert.Equal(4, t.Dim(-1));
        using var p = t.Permuted([2, 0, 1]);                      // (4, 2, 3), strided
        Assert.Equal([4, 2, 3], p.Shape.ToArray());
        Assert.False(p.IsContiguous);
        var a = p.ToArray();
        // p[i, j, k] = t[j, k, i] = 12j + 4k + i
        for (int i = 0; i < 4; i++) for (int j = 0; j < 2; j++) for (int k = 0; k < 3; k++)
            Assert.Equal(12 * j + 4 * k + i, a[(i * 2 + j) * 3 + k]);
        using var c = p.Contiguous();
        Assert.Equal(a, c.AsSpan().ToArray());
        using var v = t.View([6, -1]);
        Assert.Equal([6, 4], v.Shape.ToArray());
        Assert.True(v.IsView);
    }

    [Fact]
    public void UseAfterDisposeNamesTensorAndOp()
    {
        var t = Tensor.Zeros([2, 2], "weights");
        var view = t.View([4]);
        t.Dispose();
        var e = Assert.Throws<ObjectDisposedException>(() => t.AsSpan("MyOp"));
        Assert.Contains("MyOp", e.Message);
        Assert.Contains("weights", e.Message);
        var ev = Assert.Throws<ObjectDisposedException>(() => view.ToArray());
        Assert.Contains("owner was disposed", ev.Message);
        using var g = new Graph();
        var eg = Assert.Throws<ObjectDisposedException>(() => g.Silu(t));
        Assert.Contains("Silu", eg.Message);
        t.Dispose(); // idempotent
    }

    [Fact]
    public void NonContiguousInputIsRejectedWithOpName()
    {
        using var t = Tensor.Zeros([3, 4], "x");
        using var w = Tensor.Zeros([5, 3], "w");
        using var xt = t.Permuted([1, 0]);                       // (4, 3), strided
        using var g = new Graph();
        var e = Assert.Throws<InvalidOperationException>(() => g.Linear(xt, w));
        Assert.Contains("Linear", e.Message);
        Assert.Contains("(4, 3)", e.Message);
        Assert.Contains("not contiguous", e.Message);
        // Permute accepts strided input and produces a contiguous copy.
        var y = g.Permute(xt, [1, 0]);
        Assert.True(y.IsContiguous);
    }

    [Fact]
    public void ShapeMismatchesNameOpAndShapes()
    {
        using var g = new Graph();
        using var x = Tensor.Zeros([4, 8], "x");
        using var w = Tensor.Zeros([6, 7], "w");
        using var y = Tensor.Zeros([4, 9], "y");
        AssertMessage<ArgumentException>(() => g.Linear(x, w), "Linear", "(4, 8)", "(6, 7)");
        AssertMessage<ArgumentException>(() => g.Add(x, y), "Add", "(4, 8)", "(4, 9)");
        AssertMessage<ArgumentException>(() => g.MatMul(x, y), "MatMul", "(4, 8)", "(4, 9)");
        AssertMessage<ArgumentException>(() => g.RmsNorm(x, y), "RmsNorm", "(4, 8)", "(4, 9)");
        AssertMessage<ArgumentException>(() => g.Reshape(x, [5, -1]), "Reshape", "(4, 8)");
        AssertMessage<ArgumentException>(() => g.CrossEntropy(x, [1, 2]), "CrossEntropy", "(4, 8)");
        AssertMessage<ArgumentException>(() => g.Permute(x, [0, 0]), "Permute", "(4, 8)");
        using var q = Tensor.Zeros([1, 3, 4, 8], "q");
        using var k = Tensor.Zeros([1, 2, 4, 8], "k");
        AssertMessage<ArgumentException>(() => g.Attention(q, k, k), "Attention", "(1, 3, 4, 8)", "(1, 2, 4, 8)");
        AssertMessage<ArgumentOutOfRangeException>(() => g.Embedding(x, [0, 4]), "Embedding", "4");
        AssertMessage<ArgumentException>(() => Tensor.FromArray([1f, 2f], [3], "z"), "FromArray", "(3)");
    }

    static void AssertMessage<T>(Action a, params string[] parts) where T : Exception
    {
        var e = Assert.ThrowsAny<T>(a);
        foreach (var p in parts) Assert.Contains(p, e.Message);
    }

    [Fact]
    public void GraphOwnsIntermediatesAndLeavesKeepGradients()
    {
        using var w = Tensor.FromArray([1f, 2f, 3f, 4f], [2, 2], "w");
        using var x = Tensor.FromArray([1f, -1f], [1, 2], "x");
        w.RequiresGrad = true;
        Tensor hidden;
        using (var g = new Graph())
        {
            hidden = g.Linear(x, w);
            g.Backward(g.Sum(hidden));
            Assert.Throws<InvalidOperationException>(() => g.Backward(g.Sum(hidden))); // once per graph
        }
        Assert.True(hidden.IsDisposed);
        Assert.Equal([1f, -1f, 1f, -1f], w.Grad!.ToArray());
        // A second graph accumulates into the same leaf gradient until it is zeroed.
        using (var g = new Graph()) g.Backward(g.Sum(g.Linear(x, w)));
        Assert.Equal([2f, -2f, 2f, -2f], w.Grad!.ToArray());
        Assert.Null(x.Grad);
        w.ZeroGrad();
        Assert.All(w.Grad!.ToArray(), v => Assert.Equal(0f, v));
    }

    [Fact]
    public void InferenceGraphRecordsNothing()
    {
        using var w = Tensor.Zeros([2, 2], "w");
        w.RequiresGrad = true;
        using var x = Tensor.Zeros([1, 2], "x");
        using var g = new Graph(recordGradients: false);
        var y = g.Linear(x, w);
        Assert.False(y.RequiresGrad);
        Assert.Equal(0, g.NodeCount);
    }

    /// <summary>The NaN switch is global, so both directions are checked in one sequential test.</summary>
    [Fact]
    public void DebugModeNamesTheOpThatMadeANaN()
    {
        using var x = Tensor.FromArray([1f, float.NaN, 2f], [1, 3], "x");
        using var w = Tensor.FromArray([1f, 1f, 1f], [3], "w");
        using var ok = Tensor.FromArray([1f, 2f, 3f], [1, 3], "ok");
        ok.RequiresGrad = true;
        bool before = TensorDebug.CheckFinite;
        try
        {
            TensorDebug.CheckFinite = false;
            using (var g = new Graph()) Assert.True(float.IsNaN(g.RmsNorm(x, w).ToArray()[0])); // silent when off

            TensorDebug.CheckFinite = true;
            using (var g = new Graph())
            {
                var e = Assert.Throws<ArithmeticException>(() => g.RmsNorm(x, w));
                Assert.Contains("RmsNorm", e.Message);
                Assert.Contains("(1, 3)", e.Message);
                Assert.Contains("'x'", e.Message);
            }
            // Backward checks gradients too: a NaN seed is caught at the first op it reaches.
            using (var g = new Graph())
            {
                var y = g.Silu(ok);
                using var seed = Tensor.FromArray([0f, float.NaN, 0f], [1, 3]);
                var e = Assert.Throws<ArithmeticException>(() => g.Backward(y, seed));
                Assert.Contains("Silu backward", e.Message);
            }
        }
        finally { TensorDebug.CheckFinite = before; }
    }

    [Fact]
    public void ExpertDispatchGroupsTokensInOrder()
    {
        // 4 tokens, k = 2: token t chose experts (top[2t], top[2t+1]).
        var plan = ExpertDispatch.Build([2, 0, 0, 1, 2, 1, 0, 2], 2, 3);
        Assert.Equal([0, 1, 3], plan.Rows[0]);
        Assert.Equal([1, 2, 6], plan.Slots[0]);
        Assert.Equal([1, 2], plan.Rows[1]);
        Assert.Equal([0, 2, 3], plan.Rows[2]);
        Assert.Equal([0, 4, 7], plan.Slots[2]);
        Assert.Throws<ArgumentOutOfRangeException>(() => ExpertDispatch.Build([0, 3], 2, 3));
    }
}
