using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Tessera.Distributed;

/// <summary>
/// <c>MPI_COMM_WORLD</c> through <see cref="MpiLibrary"/>. Every collective, blocking or not, is
/// started as MPI's non-blocking variant (MPI_Iallreduce, MPI_Ialltoallv, …) and completed by
/// polling MPI_Test, so a wait can give up after <see cref="Timeout"/> with an error instead of
/// hanging on a dead peer. Errors are returned, not fatal (MPI_ERRORS_RETURN on the world), and
/// become <see cref="CommunicatorException"/>s naming the call, this rank and the world size.
/// MPI is initialised at MPI_THREAD_SERIALIZED: one thread at a time calls in.
/// </summary>
public sealed unsafe class MpiCommunicator : ICommunicator
{
    static MpiCommunicator? world;
    readonly MpiLibrary mpi;
    readonly nint handle;       // MPI_COMM_WORLD, or a duplicate of it
    readonly bool isWorld;
    bool disposed;

    MpiCommunicator(MpiLibrary mpi)
    {
        this.mpi = mpi;
        int flag = 0, provided = 0;
        Check(mpi.Initialized(&flag), "MPI_Initialized");
        if (flag == 0) Check(mpi.InitThread(null, 0, 2 /* MPI_THREAD_SERIALIZED */, &provided), "MPI_Init_thread");
        handle = mpi.CommWorld;
        isWorld = true;
        Check(mpi.CommSetErrhandler(mpi.CommWorld, mpi.ErrorsReturn), "MPI_Comm_set_errhandler");
        int r = 0, s = 0;
        Check(mpi.CommRank(mpi.CommWorld, &r), "MPI_Comm_rank");
        Check(mpi.CommSize(mpi.CommWorld, &s), "MPI_Comm_size");
        Rank = r; Size = s;
        Description = $"{mpi.Version} ({mpi.Abi} ABI, {mpi.Path})";
    }

    MpiCommunicator(MpiCommunicator parent, nint handle)
    {
        mpi = parent.mpi;
        this.handle = handle;
        Rank = parent.Rank; Size = parent.Size; Description = parent.Description; Timeout = parent.Timeout;
    }

    /// <inheritdoc/>
    public ICommunicator Duplicate()
    {
        nint dup = 0;
        Check(mpi.CommDup(handle, &dup), "MPI_Comm_dup"); // collective; inherits the errors-return handler
        return new MpiCommunicator(this, dup);
    }

    /// <summary>
    /// Initialises MPI (once per process) and returns the world. Throws
    /// <see cref="CommunicatorException"/> when no MPI library loads or initialisation fails.
    /// </summary>
    public static MpiCommunicator World()
    {
        if (world is { disposed: false }) return world;
        if (world is not null) throw new CommunicatorException("MPI was finalised in this process; it cannot be initialised again.");
        return world = new MpiCommunicator(MpiLibrary.Load());
    }

    /// <summary>True when this process was started by mpirun/mpiexec (Open MPI, MPICH/Hydra or PMIx variables).</summary>
    public static bool LaunchedByMpirun
        => Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE") is not null
           || Environment.GetEnvironmentVariable("PMI_SIZE") is not null
           || Environment.GetEnvironmentVariable("PMIX_RANK") is not null;

    /// <inheritdoc/>
    public int Rank { get; }
    /// <inheritdoc/>
    public int Size { get; }
    /// <inheritdoc/>
    public string Description { get; }
    /// <inheritdoc/>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(45);

    /// <inheritdoc/>
    public void Barrier() => BarrierAsync().Wait();

    /// <inheritdoc/>
    public void Broadcast<T>(Span<T> data, int root) where T : unmanaged
    {
        CheckRoot(root, "MPI_Ibcast");
        fixed (T* p = data)
        {
            nint req;
            Check(mpi.Ibcast(p, data.Length, mpi.TypeOf<T>(), root, handle, &req), "MPI_Ibcast");
            new Request(this, req, "MPI_Ibcast", []).Wait();
        }
    }

    /// <inheritdoc/>
    public void Allreduce<T>(ReadOnlySpan<T> send, Span<T> recv, ReduceOp op) where T : unmanaged
    {
        Reductions.Check<T>(op, "MPI_Iallreduce");
        SameLength(send.Length, recv.Length, "MPI_Iallreduce");
        fixed (T* s = send) fixed (T* r = recv)
        {
            nint req;
            Check(mpi.Iallreduce(s == r ? InPlace : (void*)s, r, send.Length, mpi.TypeOf<T>(), OpOf(op), handle, &req), "MPI_Iallreduce");
            new Request(this, req, "MPI_Iallreduce", []).Wait();
        }
        if (op == ReduceOp.Average) Reductions.Divide(recv, Size);
    }

    /// <inheritdoc/>
    public void ReduceScatter<T>(ReadOnlySpan<T> send, Span<T> recv, ReduceOp op) where T : unmanaged
    {
        Reductions.Check<T>(op, "MPI_Ireduce_scatter_block");
        SameLength(send.Length, recv.Length * Size, "MPI_Ireduce_scatter_block");
        fixed (T* s = send) fixed (T* r = recv)
        {
            nint req;
            Check(mpi.IreduceScatterBlock(s, r, recv.Length, mpi.TypeOf<T>(), OpOf(op), handle, &req), "MPI_Ireduce_scatter_block");
            new Request(this, req, "MPI_Ireduce_scatter_block", []).Wait();
        }
        if (op == ReduceOp.Average) Reductions.Divide(recv, Size);
    }

    /// <inheritdoc/>
    public void Allgather<T>(ReadOnlySpan<T> send, Span<T> recv) where T : unmanaged
    {
        SameLength(send.Length * Size, recv.Length, "MPI_Iallgather");
        fixed (T* s = send) fixed (T* r = recv)
        {
            nint req, t = mpi.TypeOf<T>();
            Check(mpi.Iallgather(s, send.Length, t, r, send.Length, t, handle, &req), "MPI_Iallgather");
            new Request(this, req, "MPI_Iallgather", []).Wait();
        }
    }

    /// <inheritdoc/>
    public void Allgatherv<T>(ReadOnlySpan<T> send, Span<T> recv, ReadOnlySpan<int> counts) where T : unmanaged
    {
        var (c, d) = Layout(counts, recv.Length, "MPI_Iallgatherv");
        SameLength(send.Length, c[Rank], "MPI_Iallgatherv");
        fixed (T* s = send) fixed (T* r = recv) fixed (int* pc = c) fixed (int* pd = d)
        {
            nint req, t = mpi.TypeOf<T>();
            Check(mpi.Iallgatherv(s, send.Length, t, r, pc, pd, t, handle, &req), "MPI_Iallgatherv");
            new Request(this, req, "MPI_Iallgatherv", []).Wait();
        }
    }

    /// <inheritdoc/>
    public void Alltoall<T>(ReadOnlySpan<T> send, Span<T> recv) where T : unmanaged
    {
        SameLength(send.Length, recv.Length, "MPI_Ialltoall");
        if (send.Length % Size != 0) throw Fail("MPI_Ialltoall", $"{send.Length} elements do not split into {Size} equal blocks");
        int block = send.Length / Size;
        fixed (T* s = send) fixed (T* r = recv)
        {
            nint req, t = mpi.TypeOf<T>();
            Check(mpi.Ialltoall(s, block, t, r, block, t, handle, &req), "MPI_Ialltoall");
            new Request(this, req, "MPI_Ialltoall", []).Wait();
        }
    }

    /// <inheritdoc/>
    public void Alltoallv<T>(ReadOnlySpan<T> send, ReadOnlySpan<int> sendCounts, Span<T> recv, ReadOnlySpan<int> recvCounts) where T : unmanaged
    {
        var (sc, sd) = Layout(sendCounts, send.Length, "MPI_Ialltoallv (send)");
        var (rc, rd) = Layout(recvCounts, recv.Length, "MPI_Ialltoallv (receive)");
        fixed (T* s = send) fixed (T* r = recv) fixed (int* psc = sc) fixed (int* psd = sd) fixed (int* prc = rc) fixed (int* prd = rd)
        {
            nint req, t = mpi.TypeOf<T>();
            Check(mpi.Ialltoallv(s, psc, psd, t, r, prc, prd, t, handle, &req), "MPI_Ialltoallv");
            new Request(this, req, "MPI_Ialltoallv", []).Wait();
        }
    }

    /// <inheritdoc/>
    public CommRequest BarrierAsync()
    {
        nint req;
        Check(mpi.Ibarrier(handle, &req), "MPI_Ibarrier");
        return new Request(this, req, "MPI_Ibarrier", []);
    }

    /// <inheritdoc/>
    public CommRequest BroadcastAsync<T>(T[] data, int root) where T : unmanaged
    {
        CheckRoot(root, "MPI_Ibcast");
        var pin = Pin(data);
        nint req;
        Check(mpi.Ibcast(Addr<T>(pin), data.Length, mpi.TypeOf<T>(), root, handle, &req), "MPI_Ibcast", pin);
        return new Request(this, req, "MPI_Ibcast", [pin]);
    }

    /// <inheritdoc/>
    public CommRequest AllreduceAsync<T>(T[] send, T[] recv, ReduceOp op) where T : unmanaged
    {
        Reductions.Check<T>(op, "MPI_Iallreduce");
        SameLength(send.Length, recv.Length, "MPI_Iallreduce");
        var ps = Pin(send); var pr = ReferenceEquals(send, recv) ? ps : Pin(recv);
        GCHandle[] pins = ReferenceEquals(send, recv) ? [ps] : [ps, pr];
        nint req;
        Check(mpi.Iallreduce(ReferenceEquals(send, recv) ? InPlace : (void*)Addr<T>(ps), Addr<T>(pr), send.Length, mpi.TypeOf<T>(), OpOf(op), handle, &req), "MPI_Iallreduce", pins);
        int size = Size;
        return new Request(this, req, "MPI_Iallreduce", pins, op == ReduceOp.Average ? () => Reductions.Divide(recv.AsSpan(), size) : null);
    }

    /// <inheritdoc/>
    public CommRequest AllgathervAsync<T>(T[] send, int sendOffset, T[] recv, int[] counts) where T : unmanaged
    {
        var (c, d) = Layout(counts, recv.Length, "MPI_Iallgatherv");
        if (sendOffset < 0 || sendOffset + c[Rank] > send.Length) throw Fail("MPI_Iallgatherv", $"send range [{sendOffset}, +{c[Rank]}) is outside the {send.Length}-element buffer");
        // The same array on both sides, with this rank's block already in place: MPI_IN_PLACE (MPI forbids aliased buffers).
        bool inPlace = ReferenceEquals(send, recv);
        if (inPlace && sendOffset != d[Rank]) throw Fail("MPI_Iallgatherv", $"in place, the send block must start at {d[Rank]}, not {sendOffset}");
        var ps = Pin(send); var pr = inPlace ? ps : Pin(recv); var pc = Pin(c); var pd = Pin(d);
        GCHandle[] pins = inPlace ? [ps, pc, pd] : [ps, pr, pc, pd];
        nint req, t = mpi.TypeOf<T>();
        Check(mpi.Iallgatherv(inPlace ? InPlace : Addr<T>(ps) + sendOffset, c[Rank], t, Addr<T>(pr), (int*)Addr<int>(pc), (int*)Addr<int>(pd), t, handle, &req), "MPI_Iallgatherv", pins);
        return new Request(this, req, "MPI_Iallgatherv", pins);
    }

    /// <inheritdoc/>
    public CommRequest AlltoallvAsync<T>(T[] send, int[] sendCounts, T[] recv, int[] recvCounts) where T : unmanaged
    {
        var (sc, sd) = Layout(sendCounts, send.Length, "MPI_Ialltoallv (send)");
        var (rc, rd) = Layout(recvCounts, recv.Length, "MPI_Ialltoallv (receive)");
        GCHandle[] pins = [Pin(send), Pin(recv), Pin(sc), Pin(sd), Pin(rc), Pin(rd)];
        nint req, t = mpi.TypeOf<T>();
        Check(mpi.Ialltoallv(Addr<T>(pins[0]), (int*)Addr<int>(pins[2]), (int*)Addr<int>(pins[3]), t, Addr<T>(pins[1]),
            (int*)Addr<int>(pins[4]), (int*)Addr<int>(pins[5]), t, handle, &req), "MPI_Ialltoallv", pins);
        return new Request(this, req, "MPI_Ialltoallv", pins);
    }

    /// <inheritdoc/>
    public CommRequest SendAsync<T>(T[] data, int destination, int tag) where T : unmanaged
    {
        CheckRoot(destination, "MPI_Isend");
        var pin = Pin(data);
        nint req;
        Check(mpi.Isend(Addr<T>(pin), data.Length, mpi.TypeOf<T>(), destination, tag, handle, &req), "MPI_Isend", pin);
        return new Request(this, req, $"MPI_Isend to rank {destination}", [pin]);
    }

    /// <inheritdoc/>
    public CommRequest ReceiveAsync<T>(T[] data, int source, int tag) where T : unmanaged
    {
        CheckRoot(source, "MPI_Irecv");
        var pin = Pin(data);
        nint req;
        Check(mpi.Irecv(Addr<T>(pin), data.Length, mpi.TypeOf<T>(), source, tag, handle, &req), "MPI_Irecv", pin);
        return new Request(this, req, $"MPI_Irecv from rank {source}", [pin]);
    }

    /// <inheritdoc/>
    public void Abort(int exitCode)
    {
        mpi.Abort(mpi.CommWorld, exitCode);
        Environment.Exit(exitCode);
    }

    /// <summary>Finalises MPI for the world (once per process; a new world cannot be made afterwards); frees a duplicate.</summary>
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        int flag = 0;
        if (!isWorld)
        {
            mpi.Finalized(&flag);
            nint h = handle;
            if (flag == 0) mpi.CommFree(&h);
            return;
        }
        mpi.Finalized(&flag);
        if (flag == 0) mpi.Finalize();
    }

    // ---- plumbing ------------------------------------------------------------------------------

    void* InPlace => (void*)(mpi.Abi == MpiAbi.OpenMpi ? 1 : -1); // MPI_IN_PLACE: (void*)1 in Open MPI, (void*)-1 in MPICH

    nint OpOf(ReduceOp op) => op == ReduceOp.Max ? mpi.OpMax : mpi.OpSum;

    static GCHandle Pin<T>(T[] a) => GCHandle.Alloc(a, GCHandleType.Pinned);

    static T* Addr<T>(GCHandle h) where T : unmanaged => (T*)h.AddrOfPinnedObject();

    (int[] Counts, int[] Displacements) Layout(ReadOnlySpan<int> counts, int capacity, string op)
    {
        if (counts.Length != Size) throw Fail(op, $"{counts.Length} counts given for {Size} ranks");
        var c = counts.ToArray(); var d = new int[Size];
        long at = 0;
        for (int i = 0; i < Size; i++)
        {
            if (c[i] < 0) throw Fail(op, $"count {c[i]} for rank {i} is negative");
            d[i] = (int)at;
            at += c[i];
        }
        if (at > capacity) throw Fail(op, $"counts total {at} elements but the buffer holds {capacity}");
        return (c, d);
    }

    void CheckRoot(int root, string op)
    {
        if ((uint)root >= (uint)Size) throw Fail(op, $"root {root} is not a rank (size {Size})");
    }

    void SameLength(long a, long b, string op)
    {
        if (a != b) throw Fail(op, $"buffer lengths {a} and {b} do not match");
    }

    CommunicatorException Fail(string op, string why) => new($"{op} on rank {Rank} of {Size}: {why}.");

    void Check(int code, string op, params GCHandle[] pins)
    {
        if (code == MpiLibrary.Success) return;
        foreach (var p in pins) p.Free();
        throw new CommunicatorException($"{op} failed on rank {Rank} of {Size}: {mpi.Describe(code)} (MPI error {code}).");
    }

    sealed class Request(MpiCommunicator owner, nint handle, string op, GCHandle[] pins, Action? after = null) : CommRequest
    {
        nint handle = handle;
        bool done;

        public override bool Test()
        {
            if (done) return true;
            int flag = 0;
            nint h = handle;
            int code = owner.mpi.Test(&h, &flag, null);
            handle = h;
            if (code != MpiLibrary.Success)
            {
                Release();
                throw new CommunicatorException($"{op} failed on rank {owner.Rank} of {owner.Size}: {owner.mpi.Describe(code)} (MPI error {code}); a peer rank has probably died.");
            }
            if (flag == 0) return false;
            Release();
            after?.Invoke();
            return true;
        }

        public override void Wait()
        {
            if (done) return;
            var clock = Stopwatch.StartNew();
            int spins = 0;
            while (!Test())
            {
                if (clock.Elapsed > owner.Timeout)
                    throw new CommunicatorException($"{op} on rank {owner.Rank} of {owner.Size} did not complete within {owner.Timeout.TotalSeconds:F0} s: " +
                                                    "a peer rank has probably died or hung.");
                // Spin briefly (shared-memory transfers finish in microseconds), then yield the core:
                // ranks are often oversubscribed.
                if (++spins < 64) Thread.SpinWait(20);
                else if (spins < 1024) Thread.Yield();
                else Thread.Sleep(1);
            }
        }

        void Release()
        {
            done = true;
            foreach (var p in pins) p.Free();
        }
    }
}

/// <summary>Type and operator rules shared by both communicators.</summary>
static class Reductions
{
    public static void Check<T>(ReduceOp op, string call) where T : unmanaged
    {
        if (op == ReduceOp.Average && typeof(T) != typeof(float) && typeof(T) != typeof(double))
            throw new CommunicatorException($"{call}: average is defined for float and double, not {typeof(T).Name}.");
    }

    public static void Divide<T>(Span<T> values, int size) where T : unmanaged
    {
        if (typeof(T) == typeof(float))
        {
            var f = System.Runtime.InteropServices.MemoryMarshal.Cast<T, float>(values);
            System.Numerics.Tensors.TensorPrimitives.Divide(f, size, f);
        }
        else if (typeof(T) == typeof(double))
        {
            var d = System.Runtime.InteropServices.MemoryMarshal.Cast<T, double>(values);
            System.Numerics.Tensors.TensorPrimitives.Divide(d, size, d);
        }
    }
}
