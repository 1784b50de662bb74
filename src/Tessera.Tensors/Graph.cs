namespace Tessera.Tensors;

/// <summary>
/// A reverse-mode autograd tape. Each op (a method on this class; one file per op family under
/// Ops/) computes its output with the kernels and, when any input requires a gradient, records
/// a backward closure. <see cref="Backward"/> walks the tape in reverse, so every gradient is
/// accumulated in a fixed order and results are bit-identical run to run.
/// The graph owns every tensor its ops create (outputs, saved statistics, their gradients) and
/// frees them on <see cref="Dispose"/>; leaf tensors (parameters, inputs) stay with the caller
/// and keep their accumulated <see cref="Tensor.Grad"/>.
/// </summary>
public sealed partial class Graph : IDisposable
{
    readonly record struct Node(string Op, Tensor Output, Tensor[] Inputs, Action Backward, string ProfileKey = "", double Flops = 0, double Bytes = 0);

    readonly List<Node> nodes = [];
    readonly List<Tensor> owned = [];
    bool backwardDone;
    bool disposed;
    long lap = OpProfile.Now(); // OpProfile: end of the previous op
    long lapAllocation = OpProfile.AllocationTicks; // OpProfile: allocation ticks at that point

    /// <summary>Creates a tape. With <paramref name="recordGradients"/> false ops only compute (inference).</summary>
    public Graph(bool recordGradients = true) => IsRecording = recordGradients;

    /// <summary>Whether ops record backward closures.</summary>
    public bool IsRecording { get; }

    /// <summary>Number of recorded backward steps.</summary>
    public int NodeCount => nodes.Count;

    /// <summary>
    /// Called during <see cref="Backward"/> with each leaf tensor that requires a gradient
    /// (a parameter: an op input that no op of this graph produced) as soon as its gradient is
    /// complete, i.e. right after the backward step of the earliest op that read it. Data-parallel
    /// training starts reducing a gradient bucket from here while backward goes on.
    /// </summary>
    public Action<Tensor>? LeafGradientReady { get; set; }

    /// <summary>
    /// Back-propagates from <paramref name="root"/>. A one-element root is seeded with 1;
    /// otherwise pass <paramref name="seed"/> (same shape), the gradient of some scalar with
    /// respect to the root. Gradients add into each leaf's <see cref="Tensor.Grad"/>. Runs once per graph.
    /// </summary>
    public void Backward(Tensor root, Tensor? seed = null)
    {
        ThrowIfDisposed("Backward");
        if (backwardDone) throw new InvalidOperationException("Backward: this graph was already back-propagated; build a new graph per step.");
        if (!root.RequiresGrad)
            throw new InvalidOperationException($"Backward: '{root.Name}' {root.ShapeString} does not depend on any tensor with RequiresGrad.");
        var g = GradSpan(root);
        if (seed is null)
        {
            if (root.Length != 1)
                throw new ArgumentException($"Backward: root '{root.Name}' {root.ShapeString} is not a scalar; pass a seed gradient of the same shape.");
            g[0] += 1f;
        }
        else
        {
            if (!seed.Shape.SequenceEqual(root.Shape))
                throw new ArgumentException($"Backward: seed {seed.ShapeString} does not match root '{root.Name}' {root.ShapeString}.");
            System.Numerics.Tensors.TensorPrimitives.Add(g, seed.AsSpan("Backward"), g);
        }
        backwardDone = true;
        var ready = LeafGradientReady is null ? null : LeavesByFirstUse();
        for (int i = nodes.Count - 1; i >= 0; i--)
        {
            var node = nodes[i];
            if (node.Output.Grad is null) { Announce(ready, i); continue; } // nothing downstream used this output
            if (OpProfile.Enabled)
            {
                long start = OpProfile.Now(), alloc = OpProfile.AllocationTicks;
                node.Backward();
                long ticks = OpProfile.Now() - start - (OpProfile.AllocationTicks - alloc);
                // Model-FLOP convention (as MFU counts them): a backward is twice its forward;
                // bytes: the saved inputs and dy read, the input gradients written (≈ twice the forward's).
                OpProfile.Add((node.ProfileKey.Length > 0 ? node.ProfileKey : node.Op) + " bwd", ticks, 2 * node.Flops, 2 * node.Bytes);
            }
            else node.Backward();
            if (TensorDebug.CheckFinite)
                foreach (var x in node.Inputs)
                    if (x.RequiresGrad && x.Grad is { } xg) TensorDebug.ThrowIfNotFinite(node.Op + " backward", $"gradient of '{x.Name}'", xg, node.Inputs);
            Announce(ready, i);
        }
    }

    /// <summary>For each node index, the leaves whose earliest reader it is (null entries: none).</summary>
    List<Tensor>?[] LeavesByFirstUse()
    {
        var produced = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        foreach (var n in nodes) produced.Add(n.Output);
        var seen = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        var at = new List<Tensor>?[nodes.Count];
        for (int i = 0; i < nodes.Count; i++)
            foreach (var x in nodes[i].Inputs)
                if (x.RequiresGrad && !produced.Contains(x) && seen.Add(x)) (at[i] ??= []).Add(x);
        return at;
    }

    void Announce(List<Tensor>?[]? ready, int node)
    {
        if (ready?[node] is { } leaves)
            foreach (var t in leaves) LeafGradientReady!(t);
    }

    /// <summary>Frees every tensor this graph created.</summary>
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        foreach (var t in owned) t.Dispose();
        owned.Clear();
        nodes.Clear();
    }

    // ---- helpers for the op files ------------------------------------------------------------

    void ThrowIfDisposed(string op)
    {
        if (disposed) throw new ObjectDisposedException(nameof(Graph), $"{op}: the graph was disposed.");
    }

    /// <summary>Checks that inputs are alive and contiguous, naming the op and the offending tensor.</summary>
    void Usable(string op, params ReadOnlySpan<Tensor> inputs)
    {
        ThrowIfDisposed(op);
        foreach (var t in inputs)
        {
            ArgumentNullException.ThrowIfNull(t, op);
            t.AsSpan(op); // throws for disposed or strided tensors with the op and shape in the message
        }
    }

    /// <summary>An output tensor owned by the graph; it requires grad when recording and any input does.</summary>
    Tensor NewOutput(string op, ReadOnlySpan<int> shape, bool zero, params ReadOnlySpan<Tensor> inputs)
    {
        var t = zero ? Tensor.Zeros(shape, op) : Tensor.Empty(shape, op);
        owned.Add(t);
        if (IsRecording)
            foreach (var x in inputs)
                if (x.RequiresGrad) { t.RequiresGrad = true; break; }
        return t;
    }

    /// <summary>A graph-owned buffer for saved statistics (never requires grad).</summary>
    Tensor NewSaved(string op, ReadOnlySpan<int> shape)
    {
        var t = Tensor.Empty(shape, op + ".saved");
        owned.Add(t);
        return t;
    }

    /// <summary>Finishes an op: the optional finite check, then the tape entry when the output needs a gradient.</summary>
    /// <remarks><paramref name="flops"/>: the forward's FLOPs for the profile (products only).</remarks>
    void Record(string op, Tensor output, Tensor[] inputs, Action backward, double flops = 0)
    {
        string key = op;
        double bytes = 0;
        if (OpProfile.Enabled)
        {
            long now = OpProfile.Now(), alloc = OpProfile.AllocationTicks;
            if (OpProfile.CurrentTag is { } tag) key = op + "[" + tag + "]";
            bytes = 4.0 * output.Length;
            foreach (var x in inputs) bytes += 4.0 * x.Length;
            OpProfile.Add(key + " fwd", now - lap - (alloc - lapAllocation), flops, bytes);
            lap = now;
            lapAllocation = alloc;
        }
        if (TensorDebug.CheckFinite) TensorDebug.ThrowIfNotFinite(op, "output", output, inputs);
        if (output.RequiresGrad) nodes.Add(new Node(op, output, inputs, backward, key, flops, bytes));
    }

    /// <summary>The tensor's gradient buffer, allocated (zeroed) on first use.</summary>
    static Span<float> GradSpan(Tensor t)
    {
        t.Grad ??= Tensor.Zeros(t.Shape, t.Name + ".grad");
        return t.Grad.AsSpan("Backward");
    }

    /// <summary>
    /// A buffer for kernels that overwrite their gradient output. When the tensor has no gradient
    /// yet it is allocated and written directly; otherwise the kernel writes a scratch buffer that
    /// <see cref="EndGrad"/> adds in (or drops, for inputs that do not require grad).
    /// </summary>
    static Tensor BeginGrad(Tensor t, out bool scratch)
    {
        if (t.RequiresGrad && t.Grad is null)
        {
            scratch = false;
            t.Grad = Tensor.Empty(t.Shape, t.Name + ".grad"); // the kernel overwrites every element
            return t.Grad;
        }
        scratch = true;
        return Tensor.Empty(t.Shape, t.Name + ".grad-scratch");
    }

    /// <summary>
    /// The gradient buffer of <paramref name="t"/> for a kernel that can either overwrite or add
    /// (a GEMM's accumulate flag): a first gradient is allocated without zeroing and overwritten
    /// (<paramref name="accumulate"/> false), a later one is added to.
    /// </summary>
    static Span<float> GradTarget(Tensor t, out bool accumulate)
    {
        accumulate = t.Grad is not null;
        t.Grad ??= Tensor.Empty(t.Shape, t.Name + ".grad");
        return t.Grad.AsSpan("Backward");
    }

    static void EndGrad(Tensor t, Tensor buffer, bool scratch)
    {
        if (!scratch) return;
        if (t.RequiresGrad)
        {
            var g = GradSpan(t);
            ParallelSpans.Add(g, buffer.AsSpan("Backward"), g);
        }
        buffer.Dispose();
    }

    static string Describe(Tensor t) => $"'{t.Name}' {t.ShapeString}";
}
