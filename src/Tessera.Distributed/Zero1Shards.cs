using Tessera.Tensors;

namespace Tessera.Distributed;

/// <summary>
/// ZeRO stage 1: each rank owns a contiguous run of whole parameters (balanced by element count)
/// and keeps AdamW moments for those only. Per step: <see cref="ReduceScatterGradients"/> leaves on
/// each rank the rank-ordered sum (see <see cref="OrderedSum"/>) of its own parameters' gradients,
/// the global norm is combined from per-chunk partial sums (<see cref="GatherChunkSums"/>, added in
/// parameter order: the same bits as the unsharded clip), each rank updates its parameters, and
/// <see cref="AllgatherWeights"/> hands every rank the new weights. Elementwise AdamW on a subset
/// is the same arithmetic as on the whole, so ZeRO-1 is bit-identical to plain data parallelism.
/// </summary>
public sealed class Zero1Shards
{
    readonly ICommunicator comm;
    readonly IReadOnlyList<Tensor> parameters;
    readonly int[] first;          // rank r owns parameters [first[r], first[r+1])
    readonly int[] elements;       // floats owned per rank
    readonly float[] flat;         // all parameters (or gradients), in order
    readonly float[] received;
    readonly int offset;

    /// <summary>Partitions <paramref name="parameters"/> (identical on every rank) over the world.</summary>
    public Zero1Shards(ICommunicator comm, IReadOnlyList<Tensor> parameters)
    {
        this.comm = comm;
        this.parameters = parameters;
        int n = comm.Size;
        long total = 0;
        foreach (var p in parameters) total += p.Length;
        if (total > int.MaxValue) throw new ArgumentException($"Zero1Shards: {total} parameters exceed one MPI count; shard buckets are not implemented.");
        first = new int[n + 1];
        elements = new int[n];
        long seen = 0; int i = 0;
        for (int r = 0; r < n; r++)
        {
            first[r] = i;
            long target = total * (r + 1) / n;
            while (i < parameters.Count && (r == n - 1 || seen + parameters[i].Length / 2 < target)) { seen += parameters[i].Length; elements[r] += parameters[i].Length; i++; }
        }
        first[n] = parameters.Count;
        for (int r = 0; r < comm.Rank; r++) offset += elements[r];
        flat = new float[total];
        received = new float[(long)n * elements[comm.Rank]];
        var owned = new List<Tensor>();
        for (int k = first[comm.Rank]; k < first[comm.Rank + 1]; k++) owned.Add(parameters[k]);
        Owned = owned;
    }

    /// <summary>The parameters this rank updates (give these to its AdamW).</summary>
    public IReadOnlyList<Tensor> Owned { get; }

    /// <summary>Index of the first parameter owned by <paramref name="rank"/>.</summary>
    public int FirstOwned(int rank) => first[rank];

    /// <summary>Each rank's own gradients become the rank-ordered sum over ranks; other gradients are left stale.</summary>
    public void ReduceScatterGradients()
    {
        Pack(flat, p => p.Grad ?? throw new InvalidOperationException($"Zero1Shards: parameter '{p.Name}' has no gradient after backward."), 0, parameters.Count);
        if (comm.Size == 1) return;
        int mine = elements[comm.Rank];
        var recvCounts = new int[comm.Size];
        Array.Fill(recvCounts, mine);
        comm.AlltoallvAsync(flat, elements, received, recvCounts).Wait();
        var acc = flat.AsSpan(offset, mine);
        received.AsSpan(0, mine).CopyTo(acc);
        for (int r = 1; r < comm.Size; r++) OrderedSum.AddInOrder(acc, received.AsSpan(r * mine, mine));
        Unpack(flat, offset, p => p.Grad!, first[comm.Rank], first[comm.Rank + 1]);
    }

    /// <summary>All ranks' per-chunk sums of squares in parameter order (for <see cref="GradClip"/>).</summary>
    public double[] GatherChunkSums(double[] mine)
    {
        if (comm.Size == 1) return mine;
        var counts = new int[comm.Size];
        comm.Allgather<int>([mine.Length], counts);
        long total = 0;
        foreach (int c in counts) total += c;
        var all = new double[total];
        comm.Allgatherv<double>(mine, all, counts);
        return all;
    }

    /// <summary>Every rank receives the owners' updated weights.</summary>
    public void AllgatherWeights() => Allgather(p => p);

    /// <summary>
    /// Collects a per-parameter tensor held by the owners (e.g. an AdamW moment) into
    /// <paramref name="full"/> on every rank (indexed like the parameter list).
    /// <paramref name="ownedTensor"/> maps an owned parameter's index in <see cref="Owned"/> to its tensor.
    /// </summary>
    public void Gather(Func<int, Tensor> ownedTensor, IReadOnlyList<Tensor> full)
    {
        int f = first[comm.Rank];
        Pack(flat, p => ownedTensor(IndexOf(p) - f), f, first[comm.Rank + 1], offset);
        if (comm.Size > 1) comm.AllgathervAsync(flat, offset, flat, elements).Wait();
        int at = 0;
        for (int i = 0; i < parameters.Count; i++)
        {
            var s = full[i].AsSpan("Zero1Shards.Gather");
            flat.AsSpan(at, s.Length).CopyTo(s);
            at += s.Length;
        }
    }

    void Allgather(Func<Tensor, Tensor> pick)
    {
        if (comm.Size == 1) return;
        Pack(flat, pick, first[comm.Rank], first[comm.Rank + 1], offset);
        comm.AllgathervAsync(flat, offset, flat, elements).Wait();
        Unpack(flat, 0, pick, 0, parameters.Count);
    }

    int IndexOf(Tensor p)
    {
        for (int i = 0; i < parameters.Count; i++) if (ReferenceEquals(parameters[i], p)) return i;
        throw new ArgumentException($"Zero1Shards: '{p.Name}' is not a sharded parameter.");
    }

    void Pack(float[] into, Func<Tensor, Tensor> pick, int from, int to, int at = -1)
    {
        if (at < 0) { at = 0; for (int i = 0; i < from; i++) at += parameters[i].Length; }
        for (int i = from; i < to; i++)
        {
            var s = pick(parameters[i]).AsSpan("Zero1Shards");
            s.CopyTo(into.AsSpan(at));
            at += s.Length;
        }
    }

    void Unpack(float[] from, int at, Func<Tensor, Tensor> pick, int first, int end)
    {
        for (int i = first; i < end; i++)
        {
            var s = pick(parameters[i]).AsSpan("Zero1Shards");
            from.AsSpan(at, s.Length).CopyTo(s);
            at += s.Length;
        }
    }
}
