using System.Diagnostics;
using Tessera.Tensors;

namespace Tessera.Distributed;

/// <summary>
/// Data-parallel gradient reduction with buckets, the way DDP does it: parameters are grouped in
/// reverse registration order (the order backward finishes them) into buckets of about
/// <c>bucketBytes</c>, the first one smaller (<c>firstBucketBytes</c>) so communication starts
/// early. Backward reports each finished gradient (<see cref="Graph.LeafGradientReady"/> →
/// <see cref="OnGradientReady"/>); when a bucket is complete, and every bucket before it has
/// been started, its <see cref="OrderedSum"/> is posted while backward goes on. <see cref="Finish"/>
/// starts what is left, waits for everything and writes the sums back into the gradients.
/// Buckets start in bucket order on every rank, as MPI requires of collectives.
/// <para>
/// The sum is in rank order (see <see cref="OrderedSum"/>), so a world of N ranks matches one
/// process that adds N slices' gradients left to right; each rank's loss carries the 1/N of
/// the mean, so the sum is the gradient of the global-batch loss.
/// </para>
/// </summary>
public sealed class GradientReducer
{
    /// <summary>PyTorch DDP's default bucket cap (25 MiB).</summary>
    public const long DefaultBucketBytes = 25L << 20;
    /// <summary>PyTorch DDP's first-bucket cap (1 MiB).</summary>
    public const long DefaultFirstBucketBytes = 1L << 20;

    readonly ICommunicator comm;
    readonly IReadOnlyList<Tensor> parameters;
    readonly Dictionary<Tensor, int> bucketOf = new(ReferenceEqualityComparer.Instance);
    readonly int[][] members;   // parameter indices per bucket, in reverse registration order
    readonly OrderedSum[] sums;
    readonly ICommunicator gathers;
    readonly int[] missing;     // gradients each bucket still waits for this step
    readonly long[] started;    // Stopwatch ticks at start, per bucket
    int nextToStart;
    bool armed;

    /// <summary>Buckets <paramref name="parameters"/> (all ranks must pass the same list).</summary>
    public GradientReducer(ICommunicator comm, IReadOnlyList<Tensor> parameters, long bucketBytes = DefaultBucketBytes, long firstBucketBytes = DefaultFirstBucketBytes)
    {
        this.comm = comm;
        this.parameters = parameters;
        var groups = new List<List<int>>();
        var current = new List<int>();
        long bytes = 0, cap = Math.Max(4, firstBucketBytes);
        for (int i = parameters.Count - 1; i >= 0; i--)
        {
            long size = 4L * parameters[i].Length;
            if (current.Count > 0 && bytes + size > cap)
            {
                groups.Add(current);
                current = []; bytes = 0; cap = Math.Max(4, bucketBytes);
            }
            current.Add(i); bytes += size;
        }
        if (current.Count > 0) groups.Add(current);
        members = new int[groups.Count][];
        sums = new OrderedSum[groups.Count];
        // Bucket b's all-gather is posted when its exchange lands, which happens at different
        // moments on different ranks; on a communicator of their own the all-gathers only need to
        // keep bucket order among themselves (see OnGradientReady).
        gathers = comm.Duplicate();
        for (int b = 0; b < groups.Count; b++)
        {
            members[b] = [.. groups[b]];
            long n = 0;
            foreach (int i in members[b]) { n += parameters[i].Length; bucketOf[parameters[i]] = b; }
            if (n > int.MaxValue) throw new ArgumentException($"GradientReducer: bucket {b} holds {n} floats; one parameter is larger than an MPI count allows.");
            sums[b] = new OrderedSum(comm, gathers, (int)n);
        }
        missing = new int[groups.Count];
        started = new long[groups.Count];
    }

    /// <summary>Number of buckets.</summary>
    public int BucketCount => members.Length;
    /// <summary>Floats in bucket <paramref name="b"/>.</summary>
    public int BucketLength(int b) => sums[b].Length;
    /// <summary>Seconds <see cref="Finish"/> spent blocked in the last step (communication not hidden behind backward).</summary>
    public double ExposedSeconds { get; private set; }
    /// <summary>Seconds from the first bucket's start to the last bucket's completion in the last step.</summary>
    public double SpanSeconds { get; private set; }

    /// <summary>Arms the reducer for the backward pass that completes this step's gradients.</summary>
    public void Begin()
    {
        for (int b = 0; b < members.Length; b++) missing[b] = members[b].Length;
        nextToStart = 0;
        armed = true;
    }

    /// <summary>Backward finished <paramref name="parameter"/>'s gradient; starts every bucket that became ready in order.</summary>
    public void OnGradientReady(Tensor parameter)
    {
        if (!armed || !bucketOf.TryGetValue(parameter, out int b)) return;
        missing[b]--;
        while (nextToStart < members.Length && missing[nextToStart] == 0) StartBucket(nextToStart++);
        // Progress the in-flight sums (MPI advances non-blocking collectives inside its calls), in
        // bucket order and stopping at the first unfinished one, so all-gathers are posted in bucket order.
        for (int k = 0; k < nextToStart; k++)
            if (sums[k].Pending && !sums[k].Progress()) break;
    }

    /// <summary>Starts the buckets not started yet, waits for all and writes the sums into the gradients.</summary>
    public void Finish()
    {
        if (!armed) throw new InvalidOperationException("GradientReducer.Finish: Begin was not called for this step.");
        armed = false;
        long wait0 = Stopwatch.GetTimestamp();
        while (nextToStart < members.Length) StartBucket(nextToStart++);
        long first = started.Length > 0 ? started[0] : wait0;
        for (int b = 0; b < members.Length; b++)
        {
            sums[b].Wait();
            Unpack(b);
        }
        long end = Stopwatch.GetTimestamp();
        ExposedSeconds = Stopwatch.GetElapsedTime(wait0, end).TotalSeconds;
        SpanSeconds = Stopwatch.GetElapsedTime(first, end).TotalSeconds;
    }

    void StartBucket(int b)
    {
        var input = sums[b].Input.AsSpan();
        int at = 0;
        foreach (int i in members[b])
        {
            var g = parameters[i].Grad ?? throw new InvalidOperationException($"GradientReducer: parameter '{parameters[i].Name}' has no gradient after backward.");
            var s = g.AsSpan("GradientReducer");
            s.CopyTo(input.Slice(at));
            at += s.Length;
        }
        started[b] = Stopwatch.GetTimestamp();
        sums[b].Start();
    }

    void Unpack(int b)
    {
        var result = sums[b].Result.AsSpan();
        int at = 0;
        foreach (int i in members[b])
        {
            var s = parameters[i].Grad!.AsSpan("GradientReducer");
            result.Slice(at, s.Length).CopyTo(s);
            at += s.Length;
        }
    }
}
