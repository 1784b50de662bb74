using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Tessera.Data;
using Tessera.Distributed;
using Tessera.Model;

namespace Tessera.Training;

/// <summary>
/// How a <see cref="Trainer"/> spreads its batch. The global batch of
/// <see cref="TrainOptions.BatchSize"/> sequences is cut into <c>Communicator.Size × LocalSlices</c>
/// equal slices (rank r takes slices r·L … r·L+L−1, rows in order); every slice's gradient is
/// computed alone and the slices are added left to right (across ranks by
/// <see cref="OrderedSum"/>). So N ranks with one slice each give the same bits as one process
/// with <c>LocalSlices = N</c>: the fixed reduction order makes data parallelism bit-identical to
/// its single-process reference. Without a <see cref="Parallelism"/> the trainer keeps its plain
/// single-slice path.
/// </summary>
/// <param name="Communicator">The world (an <see cref="MpiCommunicator"/> or a <see cref="LocalCommunicator"/>).</param>
/// <param name="LocalSlices">Slices per rank; more than one only in a one-rank world (the single-process reference).</param>
/// <param name="Zero1">Shard the AdamW moments over ranks (ZeRO stage 1): reduce-scatter the gradients, update the owned parameters, all-gather the weights.</param>
/// <param name="BucketBytes">Gradient bucket size (DDP's 25 MiB by default).</param>
/// <param name="ShardExperts">Expert parallelism: each rank owns Experts/Size experts of every MoE layer and tokens travel to them by all-to-all (see <see cref="ExpertParallel"/>).</param>
public sealed record Parallelism(ICommunicator Communicator, int LocalSlices = 1, bool Zero1 = false, long BucketBytes = GradientReducer.DefaultBucketBytes,
    bool ShardExperts = false)
{
    /// <summary>Slices of every global batch: world size × local slices.</summary>
    public int Slices => Communicator.Size * LocalSlices;

    /// <summary>One process, <paramref name="slices"/> slices: the reference an N-rank run must match bit for bit.</summary>
    public static Parallelism SingleProcess(int slices, bool zero1 = false) => new(new LocalCommunicator(), slices, zero1);

    /// <summary>
    /// Every rank hashes the model config, the options (minus the measured peak FLOP/s), the start
    /// step and a sample of the data, and all ranks compare: a mismatch throws the same
    /// <see cref="ArgumentException"/> on every rank, naming the ranks that differ from rank 0.
    /// Runs before any other check, so ranks with different arguments cannot diverge into a hang.
    /// </summary>
    internal void CheckSameRun(ModelConfig config, TrainOptions options, TrainData data, long step)
    {
        if (Communicator.Size == 1) return;
        var text = new StringBuilder();
        text.Append(JsonSerializer.Serialize(config)).Append('|').Append(JsonSerializer.Serialize(options with { PeakFlops = 0 }))
            .Append('|').Append(step).Append('|').Append(LocalSlices).Append(Zero1).Append(ShardExperts);
        foreach (var s in data.Train) text.Append('|').Append(ShardSample(s));
        if (data.Validation is { } v) foreach (var s in v) text.Append("|v").Append(ShardSample(s));
        var mine = new long[4];
        SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())).AsSpan().CopyTo(System.Runtime.InteropServices.MemoryMarshal.AsBytes(mine.AsSpan()));
        var all = new long[4 * Communicator.Size];
        Communicator.Allgather<long>(mine, all);
        var differ = new List<int>();
        for (int r = 1; r < Communicator.Size; r++)
            if (!all.AsSpan(4 * r, 4).SequenceEqual(all.AsSpan(0, 4))) differ.Add(r);
        if (differ.Count > 0)
            throw new ArgumentException($"Distributed training: rank(s) {string.Join(", ", differ)} have a different model config, training options or data than rank 0 " +
                                        $"(fingerprint {all[0]:x16} on rank 0); start every rank with the same arguments and files.");
    }

    /// <summary>Token count, vocabulary, documents and 3×4096 tokens (start, middle, end) of a shard.</summary>
    static string ShardSample(TokenShard s)
    {
        var h = new StringBuilder($"{s.TokenCount}:{s.VocabSize}:{s.DocumentCount}");
        int n = (int)Math.Min(4096, s.TokenCount);
        var buf = new int[n];
        foreach (long at in new[] { 0, (s.TokenCount - n) / 2, s.TokenCount - n })
        {
            s.Read(at, buf);
            h.Append(':').Append(Convert.ToHexString(SHA256.HashData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(buf.AsSpan())))[..16]);
        }
        return h.ToString();
    }
}
