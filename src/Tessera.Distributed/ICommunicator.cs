namespace Tessera.Distributed;

/// <summary>How <see cref="ICommunicator.Allreduce{T}"/> and its relatives combine values.</summary>
public enum ReduceOp
{
    /// <summary>Element-wise sum (the library's own order: fast, not specified).</summary>
    Sum,
    /// <summary>Element-wise sum divided by the world size (float and double only).</summary>
    Average,
    /// <summary>Element-wise maximum.</summary>
    Max,
}

/// <summary>
/// A group of ranks that run the same program: MPI's <c>MPI_COMM_WORLD</c>
/// (<see cref="MpiCommunicator"/>) or one process alone (<see cref="LocalCommunicator"/>), so the
/// training code has one shape. Collectives must be called by every rank in the same order with
/// matching sizes. Blocking calls wait at most <see cref="Timeout"/> and then throw
/// <see cref="CommunicatorException"/> (a dead or hung peer never hangs this rank). Buffers of the
/// non-blocking calls are pinned until their <see cref="CommRequest"/> completes.
/// </summary>
public interface ICommunicator : IDisposable
{
    /// <summary>This process's index in [0, Size).</summary>
    int Rank { get; }
    /// <summary>Number of ranks.</summary>
    int Size { get; }
    /// <summary>What runs underneath (library and version), for reports.</summary>
    string Description { get; }
    /// <summary>Longest wait of any blocking call or <see cref="CommRequest.Wait"/>.</summary>
    TimeSpan Timeout { get; set; }

    /// <summary>Returns when every rank has entered.</summary>
    void Barrier();
    /// <summary>Copies <paramref name="data"/> on <paramref name="root"/> to every rank.</summary>
    void Broadcast<T>(Span<T> data, int root) where T : unmanaged;
    /// <summary>recv[i] = op over ranks of send[i]; send and recv have equal length (they may be the same span).</summary>
    void Allreduce<T>(ReadOnlySpan<T> send, Span<T> recv, ReduceOp op) where T : unmanaged;
    /// <summary>Rank r receives op over ranks of send[r·n .. (r+1)·n) where n = recv.Length; send.Length = n·Size.</summary>
    void ReduceScatter<T>(ReadOnlySpan<T> send, Span<T> recv, ReduceOp op) where T : unmanaged;
    /// <summary>recv = the send blocks of ranks 0..Size−1 in order; recv.Length = send.Length·Size.</summary>
    void Allgather<T>(ReadOnlySpan<T> send, Span<T> recv) where T : unmanaged;
    /// <summary>Like <see cref="Allgather{T}"/> with rank r contributing counts[r] elements.</summary>
    void Allgatherv<T>(ReadOnlySpan<T> send, Span<T> recv, ReadOnlySpan<int> counts) where T : unmanaged;
    /// <summary>Block j of rank i's send goes to rank j and lands as block i of its recv (equal blocks).</summary>
    void Alltoall<T>(ReadOnlySpan<T> send, Span<T> recv) where T : unmanaged;
    /// <summary>All-to-all with per-destination send counts and per-source receive counts (contiguous blocks).</summary>
    void Alltoallv<T>(ReadOnlySpan<T> send, ReadOnlySpan<int> sendCounts, Span<T> recv, ReadOnlySpan<int> recvCounts) where T : unmanaged;

    /// <summary>Non-blocking <see cref="Barrier"/>.</summary>
    CommRequest BarrierAsync();
    /// <summary>Non-blocking <see cref="Broadcast{T}"/>.</summary>
    CommRequest BroadcastAsync<T>(T[] data, int root) where T : unmanaged;
    /// <summary>Non-blocking <see cref="Allreduce{T}"/> (send and recv may be the same array).</summary>
    CommRequest AllreduceAsync<T>(T[] send, T[] recv, ReduceOp op) where T : unmanaged;
    /// <summary>Non-blocking <see cref="Allgatherv{T}"/> of send[sendOffset..+counts[Rank]) into recv.</summary>
    CommRequest AllgathervAsync<T>(T[] send, int sendOffset, T[] recv, int[] counts) where T : unmanaged;
    /// <summary>Non-blocking <see cref="Alltoallv{T}"/>.</summary>
    CommRequest AlltoallvAsync<T>(T[] send, int[] sendCounts, T[] recv, int[] recvCounts) where T : unmanaged;

    /// <summary>Non-blocking send of <paramref name="data"/> to rank <paramref name="destination"/> (matched by tag and order).</summary>
    CommRequest SendAsync<T>(T[] data, int destination, int tag) where T : unmanaged;
    /// <summary>Non-blocking receive into <paramref name="data"/> from rank <paramref name="source"/> (exactly data.Length elements).</summary>
    CommRequest ReceiveAsync<T>(T[] data, int source, int tag) where T : unmanaged;

    /// <summary>
    /// A new communicator over the same ranks (MPI_Comm_dup; collective). Collectives on different
    /// communicators never match each other, so two streams of non-blocking collectives posted in
    /// different interleavings on different ranks stay correct.
    /// </summary>
    ICommunicator Duplicate();

    /// <summary>Ends every rank's process (MPI_Abort); the single-process version exits this process.</summary>
    void Abort(int exitCode);
}

/// <summary>A pending non-blocking collective.</summary>
public abstract class CommRequest
{
    /// <summary>True once the operation finished (drives progress in MPI; never blocks).</summary>
    public abstract bool Test();
    /// <summary>Blocks until the operation finishes or the communicator's timeout passes (then throws).</summary>
    public abstract void Wait();
}

/// <summary>An MPI call failed, a wait timed out, or no MPI library could be loaded. The message names the call and the ranks.</summary>
public sealed class CommunicatorException(string message) : Exception(message);
