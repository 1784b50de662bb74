using Tessera.Tensors;

namespace Tessera.Distributed;

/// <summary>
/// Expert parallelism for MoE layers: with E experts on N ranks (N divides E), rank r owns experts
/// [r·E/N, (r+1)·E/N). Each rank routes its own tokens (router, gates, capacity and the
/// load-balancing loss are the single-process ones, see <see cref="IExpertRunner"/>); the kept
/// rows go to the experts' owners by all-to-all, the owners run them and send the outputs back by
/// a second all-to-all. Backward is the same two exchanges reversed, inside the autograd tape
/// (<see cref="Graph.Custom"/>).
/// <para>
/// An owner runs each expert once per source rank, on that rank's rows, through a per-source view
/// of the weights; after backward <see cref="FinishGradients"/> adds the views' gradients in rank
/// order. That is exactly how one process computing the batch as N slices gets its expert
/// gradients (one slice after another, added in slice order), so expert parallelism stays
/// bit-identical to the single-process reference. Weights of experts a rank does not own go stale
/// there; <see cref="Synchronize"/> copies the owners' weights (and optimizer moments) to every
/// rank before evaluation and checkpoints.
/// </para>
/// </summary>
public sealed class ExpertParallel : IExpertRunner, IDisposable
{
    readonly ICommunicator comm;
    readonly int experts, perRank;
    readonly Dictionary<(Tensor Weight, int Source), Tensor> views = new();
    readonly List<Tensor> owned = [];
    readonly HashSet<Tensor> ownedSet = new(ReferenceEqualityComparer.Instance);

    /// <summary>Spreads <paramref name="experts"/> experts per layer over the world; every rank must construct it (it duplicates the communicator).</summary>
    public ExpertParallel(ICommunicator comm, int experts)
    {
        if (experts % comm.Size != 0)
            throw new ArgumentException($"Expert parallelism: {experts} experts do not split evenly over {comm.Size} ranks; use a world size that divides the expert count.");
        this.comm = comm.Duplicate();
        this.experts = experts;
        perRank = experts / comm.Size;
    }

    /// <summary>The rank that owns expert <paramref name="e"/>.</summary>
    public int OwnerOf(int e) => e / perRank;

    /// <summary>Starts a step: forgets the previous step's per-source weight views and their gradients.</summary>
    public void BeginStep()
    {
        foreach (var v in views.Values) v.Dispose();
        views.Clear();
    }

    /// <summary>Owned expert weights receive the rank-ordered sum of their per-source gradients.</summary>
    public void FinishGradients()
    {
        foreach (var w in owned)
        {
            var target = Graph.LeafGradient(w);
            for (int s = 0; s < comm.Size; s++)
            {
                var g = views.TryGetValue((w, s), out var v) && v.Grad is { } vg ? vg.AsSpan("ExpertParallel") : default;
                if (s == 0) { if (g.IsEmpty) target.Clear(); else g.CopyTo(target); }
                else if (!g.IsEmpty) OrderedSum.AddInOrder(target, g);
            }
        }
    }

    /// <summary>
    /// Copies every expert weight from its owner to all ranks, and with <paramref name="optimizer"/>
    /// its AdamW moments too (for checkpoints). <paramref name="expertsOf"/> lists each layer's
    /// w1, w3, w2 arrays in layer order, as the model holds them.
    /// </summary>
    public void Synchronize(IReadOnlyList<(Tensor[] W1, Tensor[] W3, Tensor[] W2)> expertsOf, AdamW? optimizer)
    {
        var index = new Dictionary<Tensor, int>(ReferenceEqualityComparer.Instance);
        if (optimizer is not null) for (int i = 0; i < optimizer.Parameters.Count; i++) index[optimizer.Parameters[i]] = i;
        foreach (var (w1, w3, w2) in expertsOf)
            for (int e = 0; e < experts; e++)
                foreach (var w in new[] { w1[e], w3[e], w2[e] })
                {
                    int owner = OwnerOf(e);
                    comm.Broadcast(w.AsSpan("ExpertParallel"), owner);
                    if (optimizer is not null && index.TryGetValue(w, out int i))
                    {
                        comm.Broadcast(optimizer.FirstMoment(i).AsSpan("ExpertParallel"), owner);
                        comm.Broadcast(optimizer.SecondMoment(i).AsSpan("ExpertParallel"), owner);
                    }
                }
    }

    /// <inheritdoc/>
    public Tensor[] Run(Graph g, int layer, Tensor x, int[][] keptRows, Tensor[] w1, Tensor[] w3, Tensor[] w2)
    {
        int n = comm.Size, me = comm.Rank, d = x.Dim(1);
        if (keptRows.Length != experts) throw new ArgumentException($"Expert parallelism: layer {layer} has {keptRows.Length} experts, expected {experts}.");
        // Everyone's kept-row counts per expert: counts[s·E + e].
        var mine = new int[experts];
        for (int e = 0; e < experts; e++) mine[e] = keptRows[e].Length;
        var counts = new int[n * experts];
        comm.Allgather<int>(mine, counts);
        int myFirst = me * perRank, myEnd = myFirst + perRank;

        // Local rows per expert, then dispatch: to owner o go the rows of o's experts in expert order;
        // from source s arrive s's rows of my experts, source-major: [s][e owned].
        var local = new Tensor[experts];
        for (int e = 0; e < experts; e++) local[e] = g.GatherRows(x, keptRows[e]);                 // (Mₑ, D)
        var toOwner = new int[n]; var fromSource = new int[n];
        for (int e = 0; e < experts; e++) toOwner[OwnerOf(e)] += mine[e] * d;
        int received = 0;
        for (int s = 0; s < n; s++)
            for (int e = myFirst; e < myEnd; e++) { fromSource[s] += counts[s * experts + e] * d; received += counts[s * experts + e]; }
        var arrived = g.Custom("ExpertDispatch", [received, d], local,
            y => Exchange(Concat(local), toOwner, fromSource).CopyTo(y),
            (dy, dx) => Scatter(Exchange(dy.ToArray(), fromSource, toOwner), local.Length, e => mine[e] * d, dx));            // (R, D)

        // The owner runs each expert once per source, on that source's rows, through per-source weight views.
        var outs = new Tensor[n * perRank];
        var blockRows = new int[n * perRank];
        int at = 0;
        for (int s = 0; s < n; s++)
            for (int e = myFirst; e < myEnd; e++)
            {
                int rows = counts[s * experts + e];
                var idx = new int[rows];
                for (int i = 0; i < rows; i++) idx[i] = at + i;
                at += rows;
                var xb = g.GatherRows(arrived, idx);                                               // (rows, D)
                var h = g.SwiGlu(g.Linear(xb, View(w1[e], s)), g.Linear(xb, View(w3[e], s)));      // (rows, F)
                outs[s * perRank + (e - myFirst)] = g.Linear(h, View(w2[e], s));                   // (rows, D)
                blockRows[s * perRank + (e - myFirst)] = rows;
            }

        // Return: the outputs travel back to their sources, arriving in expert order.
        int total = 0;
        foreach (int m in mine) total += m;
        var back = g.Custom("ExpertCombineExchange", [total, d], outs,
            y => Exchange(Concat(outs), fromSource, toOwner).CopyTo(y),
            (dy, dx) => Scatter(Exchange(dy.ToArray(), toOwner, fromSource), outs.Length, b => blockRows[b] * d, dx));         // (ΣMₑ, D)
        var result = new Tensor[experts];
        int row = 0;
        for (int e = 0; e < experts; e++)
        {
            var idx = new int[mine[e]];
            for (int i = 0; i < idx.Length; i++) idx[i] = row + i;
            row += mine[e];
            result[e] = g.GatherRows(back, idx);                                                    // (Mₑ, D)
        }
        return result;
    }

    Tensor View(Tensor w, int source)
    {
        if (ownedSet.Add(w)) owned.Add(w);
        if (!views.TryGetValue((w, source), out var v))
        {
            v = w.View(w.Shape);
            v.Name = $"{w.Name}@rank{source}";
            v.RequiresGrad = true;
            views[(w, source)] = v;
        }
        return v;
    }

    float[] Exchange(float[] send, int[] sendCounts, int[] recvCounts)
    {
        int total = 0;
        foreach (int c in recvCounts) total += c;
        var recv = new float[total];
        comm.Alltoallv<float>(send, sendCounts, recv, recvCounts);
        return recv;
    }

    static float[] Concat(Tensor[] parts)
    {
        int total = 0;
        foreach (var p in parts) total += p.Length;
        var all = new float[total];
        int at = 0;
        foreach (var p in parts) { p.AsSpan("ExpertParallel").CopyTo(all.AsSpan(at)); at += p.Length; }
        return all;
    }

    static void Scatter(float[] grads, int inputs, Func<int, int> length, GradientOf dx)
    {
        int at = 0;
        for (int i = 0; i < inputs; i++)
        {
            int len = length(i);
            var target = dx(i);
            if (!target.IsEmpty) System.Numerics.Tensors.TensorPrimitives.Add(target, grads.AsSpan(at, len), target);
            at += len;
        }
    }

    /// <summary>Frees the views and the duplicated communicator.</summary>
    public void Dispose()
    {
        BeginStep();
        comm.Dispose();
    }
}
