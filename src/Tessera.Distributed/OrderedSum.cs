using System.Numerics.Tensors;

namespace Tessera.Distributed;

/// <summary>
/// A sum over ranks in a fixed order, so that N ranks give the same bits as one process adding N
/// partial results left to right: element i of the result is
/// <c>((x₀[i] + x₁[i]) + x₂[i]) + … + x_{N−1}[i]</c>, where xᵣ is rank r's buffer. It runs as a
/// reduce-scatter built from an all-to-all (rank r receives every rank's r-th chunk and adds them
/// in rank order) followed by an all-gather of the summed chunks: the same 2·(N−1)/N·n elements per
/// rank as a ring all-reduce, but with an order that depends on nothing but the rank numbers.
/// Non-blocking: <see cref="Start"/> posts the all-to-all, <see cref="Progress"/> moves to the
/// all-gather once it lands, <see cref="Wait"/> finishes. The buffers are reused across steps.
/// </summary>
public sealed class OrderedSum
{
    readonly ICommunicator comm, gatherComm;
    readonly int[] chunk, sendCounts, recvCounts;
    readonly int myOffset;
    readonly float[] recv;
    CommRequest? exchange, gather;

    /// <summary>Prepares a sum of <paramref name="length"/>-element buffers (one sum in flight at a time on <paramref name="comm"/>).</summary>
    public OrderedSum(ICommunicator comm, int length) : this(comm, comm, length) { }

    /// <summary>
    /// Posts the exchanges on <paramref name="comm"/> and the all-gathers on
    /// <paramref name="gatherComm"/> (a <see cref="ICommunicator.Duplicate"/>), so that several
    /// sums can be in flight: each phase is then posted in the same order on every rank as long as
    /// the sums are started, and progressed, in one agreed order (see <see cref="GradientReducer"/>).
    /// </summary>
    public OrderedSum(ICommunicator comm, ICommunicator gatherComm, int length)
    {
        this.comm = comm;
        this.gatherComm = gatherComm;
        int n = comm.Size;
        Length = length;
        chunk = new int[n];
        for (int r = 0; r < n; r++) chunk[r] = length / n + (r < length % n ? 1 : 0);
        for (int r = 0; r < comm.Rank; r++) myOffset += chunk[r];
        sendCounts = chunk;
        recvCounts = new int[n];
        Array.Fill(recvCounts, chunk[comm.Rank]);
        recv = new float[n * chunk[comm.Rank]];
        Input = new float[length];
        Result = new float[length];
    }

    /// <summary>Elements summed.</summary>
    public int Length { get; }
    /// <summary>This rank's contribution; fill it before <see cref="Start"/>.</summary>
    public float[] Input { get; }
    /// <summary>The sum, valid after <see cref="Wait"/>.</summary>
    public float[] Result { get; }
    /// <summary>True between <see cref="Start"/> and the end of <see cref="Wait"/>.</summary>
    public bool Pending => exchange is not null || gather is not null;

    /// <summary>Posts the exchange of chunks.</summary>
    public void Start()
    {
        if (Pending) throw new InvalidOperationException("OrderedSum.Start: the previous sum has not been waited for.");
        if (comm.Size == 1) { Input.AsSpan().CopyTo(Result); return; }
        // No progress here: the caller decides when all-gathers get posted (the same order on every rank).
        exchange = comm.AlltoallvAsync(Input, sendCounts, recv, recvCounts);
    }

    /// <summary>Advances without blocking; true when the result is ready.</summary>
    public bool Progress()
    {
        if (exchange is not null)
        {
            if (!exchange.Test()) return false;
            exchange = null;
            SumChunks();
            gather = gatherComm.AllgathervAsync(Result, myOffset, Result, chunk);
        }
        if (gather is not null)
        {
            if (!gather.Test()) return false;
            gather = null;
        }
        return true;
    }

    /// <summary>Blocks until <see cref="Result"/> holds the sum (or the communicator's timeout throws).</summary>
    public void Wait()
    {
        if (exchange is not null) { exchange.Wait(); Progress(); }
        gather?.Wait();
        gather = null;
    }

    /// <summary>Rank order, left to right: the one order a single process reproduces with <see cref="AddInOrder"/>.</summary>
    void SumChunks()
    {
        int c = chunk[comm.Rank];
        var acc = Result.AsSpan(myOffset, c);
        recv.AsSpan(0, c).CopyTo(acc);
        for (int r = 1; r < comm.Size; r++) TensorPrimitives.Add(acc, recv.AsSpan(r * c, c), acc);
    }

    /// <summary>
    /// The single-process twin: <paramref name="sum"/> += <paramref name="part"/>, the step that
    /// adds the next rank's (or slice's) values. Element-wise IEEE additions, so the bits match
    /// <see cref="SumChunks"/> whatever the vector width.
    /// </summary>
    public static void AddInOrder(Span<float> sum, ReadOnlySpan<float> part) => TensorPrimitives.Add(sum, part, sum);
}
