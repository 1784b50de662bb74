namespace Tessera.Distributed;

/// <summary>
/// The one-rank world: every collective is a copy (the average of one value is the value).
/// Lets the trainer run the same code with or without MPI.
/// </summary>
public sealed class LocalCommunicator : ICommunicator
{
    sealed class Done : CommRequest
    {
        public static readonly Done Instance = new();
        public override bool Test() => true;
        public override void Wait() { }
    }

    /// <inheritdoc/>
    public int Rank => 0;
    /// <inheritdoc/>
    public int Size => 1;
    /// <inheritdoc/>
    public string Description => "single process";
    /// <inheritdoc/>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <inheritdoc/>
    public void Barrier() { }
    /// <inheritdoc/>
    public void Broadcast<T>(Span<T> data, int root) where T : unmanaged => CheckRoot(root, "Broadcast");
    /// <inheritdoc/>
    public void Allreduce<T>(ReadOnlySpan<T> send, Span<T> recv, ReduceOp op) where T : unmanaged
    {
        Same(send.Length, recv.Length, "Allreduce");
        Reductions.Check<T>(op, "Allreduce");
        send.CopyTo(recv);
    }
    /// <inheritdoc/>
    public void ReduceScatter<T>(ReadOnlySpan<T> send, Span<T> recv, ReduceOp op) where T : unmanaged => Allreduce(send, recv, op);
    /// <inheritdoc/>
    public void Allgather<T>(ReadOnlySpan<T> send, Span<T> recv) where T : unmanaged { Same(send.Length, recv.Length, "Allgather"); send.CopyTo(recv); }
    /// <inheritdoc/>
    public void Allgatherv<T>(ReadOnlySpan<T> send, Span<T> recv, ReadOnlySpan<int> counts) where T : unmanaged
    {
        Same(counts.Length, 1, "Allgatherv counts");
        Same(send.Length, counts[0], "Allgatherv");
        send.CopyTo(recv);
    }
    /// <inheritdoc/>
    public void Alltoall<T>(ReadOnlySpan<T> send, Span<T> recv) where T : unmanaged { Same(send.Length, recv.Length, "Alltoall"); send.CopyTo(recv); }
    /// <inheritdoc/>
    public void Alltoallv<T>(ReadOnlySpan<T> send, ReadOnlySpan<int> sendCounts, Span<T> recv, ReadOnlySpan<int> recvCounts) where T : unmanaged
    {
        Same(sendCounts.Length, 1, "Alltoallv counts");
        Same(sendCounts[0], recvCounts[0], "Alltoallv");
        send[..sendCounts[0]].CopyTo(recv);
    }

    /// <inheritdoc/>
    public CommRequest BarrierAsync() => Done.Instance;
    /// <inheritdoc/>
    public CommRequest BroadcastAsync<T>(T[] data, int root) where T : unmanaged { CheckRoot(root, "BroadcastAsync"); return Done.Instance; }
    /// <inheritdoc/>
    public CommRequest AllreduceAsync<T>(T[] send, T[] recv, ReduceOp op) where T : unmanaged { Allreduce<T>(send, recv, op); return Done.Instance; }
    /// <inheritdoc/>
    public CommRequest AllgathervAsync<T>(T[] send, int sendOffset, T[] recv, int[] counts) where T : unmanaged
    {
        Allgatherv<T>(send.AsSpan(sendOffset, counts[0]), recv, counts);
        return Done.Instance;
    }
    /// <inheritdoc/>
    public CommRequest AlltoallvAsync<T>(T[] send, int[] sendCounts, T[] recv, int[] recvCounts) where T : unmanaged
    {
        Alltoallv<T>(send, sendCounts, recv, recvCounts);
        return Done.Instance;
    }

    /// <inheritdoc/>
    public CommRequest SendAsync<T>(T[] data, int destination, int tag) where T : unmanaged
        => throw new CommunicatorException($"SendAsync to rank {destination}: the single-process world has no other rank.");
    /// <inheritdoc/>
    public CommRequest ReceiveAsync<T>(T[] data, int source, int tag) where T : unmanaged
        => throw new CommunicatorException($"ReceiveAsync from rank {source}: the single-process world has no other rank.");

    /// <inheritdoc/>
    public ICommunicator Duplicate() => new LocalCommunicator { Timeout = Timeout };

    /// <inheritdoc/>
    public void Abort(int exitCode) => Environment.Exit(exitCode);

    /// <inheritdoc/>
    public void Dispose() { }

    static void CheckRoot(int root, string op)
    {
        if (root != 0) throw new CommunicatorException($"{op}: root {root} is not a rank of the single-process world (size 1).");
    }

    static void Same(int a, int b, string op)
    {
        if (a != b) throw new CommunicatorException($"{op} on rank 0 of 1: lengths {a} and {b} differ.");
    }
}
