using Tessera.Data;
using Tessera.Model;
using Tessera.Training;

namespace Tessera.Fuzz;

/// <summary>
/// The distillation cache: a real cache for a tiny teacher is built once; each input replaces
/// everything after the identity part of its header (capacity, slot table, records), so the
/// reader trusts the file as its own and must still reject or read it safely. Every stored
/// window is then read; an id outside the vocabulary or a read outside the file is a finding.
/// The cache is opened for no windows to fill: the teacher never runs per input (a damaged file
/// is still rebuilt empty, as a real open would), so the time goes to the reader, not the teacher.
/// One scratch file is rewritten in place per input.
/// </summary>
public sealed class DistillCacheTarget : FuzzTarget
{
    public override string Name => "distill-cache";

    const int T = 8, K = 4, Identity = 72;   // magic, version, T, k, vocab, id bytes, windows, 32-byte key
    static readonly Lazy<(Transformer Teacher, TokenShard Shard, byte[] Valid)> Setup = new(() =>
    {
        var config = new ModelConfig { VocabSize = 300, Dim = 16, Layers = 1, Heads = 2, KvHeads = 1, HiddenDim = 24, ContextLength = 16, TiedEmbeddings = false };
        var teacher = new Transformer(config, seed: 3);
        string shardPath = Scratch("teacher.shard");
        var rng = new Random(5);
        TokenShard.Write(shardPath, [Enumerable.Range(0, 60).Select(_ => rng.Next(300)).ToArray(), Enumerable.Range(0, 45).Select(_ => rng.Next(300)).ToArray()], 300);
        var shard = TokenShard.Open(shardPath);
        string cachePath = Scratch("valid.dcache");
        File.Delete(cachePath);
        using (DistillCache.Build(cachePath, teacher, [shard], T, K, 2f)) { }
        return (teacher, shard, File.ReadAllBytes(cachePath));
    });

    static readonly long[] NoWindows = [];

    /// <summary>A valid cache file for the target's teacher (the seed corpus is made from it).</summary>
    public static byte[] ValidFile => Setup.Value.Valid;

    protected override void Execute(ReadOnlySpan<byte> input)
    {
        var (teacher, shard, valid) = Setup.Value;
        string path = Scratch("x.dcache");
        using (var f = new FileStream(path, FileMode.Create, FileAccess.Write))
        {
            f.Write(valid.AsSpan(0, Identity));
            f.Write(input);
        }
        using var cache = DistillCache.Build(path, teacher, [shard], T, K, 2f, windows: NoWindows);
        var ids = new int[T * K];
        var values = new float[T * K];
        var tails = new float[T];
        for (long w = 0; w < cache.WindowCount; w++)
        {
            if (!cache.Contains(w)) continue;
            cache.Read([w], ids, values, tails);
            foreach (int id in ids)
                if ((uint)id >= (uint)cache.VocabSize) throw new FuzzFinding($"distill cache returned id {id} outside the vocabulary {cache.VocabSize} for window {w}");
        }
    }
}
