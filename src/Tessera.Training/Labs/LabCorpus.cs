using Tessera.Data;
using Tessera.Text;

namespace Tessera.Training.Labs;

/// <summary>
/// The data every lab run reads: one training shard (the pool unique tokens are drawn from) and
/// one validation shard, evaluated on the same fixed windows for every run so losses compare.
/// The shards stay open until <see cref="Dispose"/> (and are disposed only when this object opened them).
/// </summary>
public sealed class LabCorpus : IDisposable
{
    readonly bool owns;

    /// <summary>Wraps shards the caller owns (tests use synthetic ones).</summary>
    public LabCorpus(TokenShard train, TokenShard validation, long validationBytes = 0, string description = "custom shards")
        : this(train, validation, validationBytes, description, owns: false)
    {
    }

    LabCorpus(TokenShard train, TokenShard validation, long validationBytes, string description, bool owns)
    {
        Train = train;
        Validation = validation;
        ValidationBytes = validationBytes;
        Description = description;
        VocabSize = Math.Max(train.VocabSize, validation.VocabSize);
        this.owns = owns;
    }

    /// <summary>The training pool.</summary>
    public TokenShard Train { get; }
    /// <summary>The held-out split every run is scored on.</summary>
    public TokenShard Validation { get; }
    /// <summary>UTF-8 bytes behind the validation shard (0 = unknown).</summary>
    public long ValidationBytes { get; }
    /// <summary>Vocabulary the shards were written for.</summary>
    public int VocabSize { get; }
    /// <summary>Where the data came from, for reports.</summary>
    public string Description { get; }

    /// <summary>
    /// Opens a prepared data folder (meta.json + shards); when <paramref name="folder"/> is not
    /// prepared yet, tokenizes the embedded corpus into it first with <paramref name="tokenizer"/>
    /// (`bytes` or a tokenizer directory). Reuses a folder prepared earlier with the same tokenizer.
    /// </summary>
    public static LabCorpus PrepareOrOpen(string folder, string tokenizer = "bytes", Action<string>? log = null)
    {
        bool prepared = File.Exists(Path.Combine(folder, PreparedData.MetaFile));
        PreparedData data;
        if (prepared)
        {
            data = PreparedData.Load(folder);
        }
        else
        {
            var tok = TokenizerFiles.Load(tokenizer);
            var docs = EmbeddedCorpus.Read();
            log?.Invoke($"tokenizing the embedded corpus ({docs.Count} documents) with {tok.Name} → {folder}");
            data = ShardBuilder.Prepare(docs, tok, tokenizer, new DocumentSplit(), folder);
        }
        var train = TokenShard.Open(data.ShardPath(Split.Train));
        try
        {
            var val = TokenShard.Open(data.ShardPath(Split.Validation));
            return new LabCorpus(train, val, data.Validation.Bytes,
                $"{Path.GetFullPath(folder)} ({data.Tokenizer} tokenizer, {data.Train.Tokens:N0} train / {data.Validation.Tokens:N0} validation tokens)", owns: true);
        }
        catch
        {
            train.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Writes a training shard of exactly <paramref name="tokens"/> unique tokens: the pool cut into
    /// chunks of <paramref name="chunk"/> tokens, taken in a seeded random order, the last one cut
    /// to fit. Small chunks from all over the pool keep a small subset's mix of sources and eras
    /// like the validation split's (whole documents made a 70 K-token subset two speeches, and its
    /// loss said more about which two than about repetition). The same seed gives nested subsets:
    /// a smaller budget is a prefix of a larger one.
    /// </summary>
    public TokenShard WriteSubset(string path, long tokens, ulong seed, int chunk = 1024)
    {
        if (tokens < 2 || tokens > Train.TokenCount)
            throw new ArgumentOutOfRangeException(nameof(tokens), tokens, $"A unique-token subset must hold between 2 and the pool's {Train.TokenCount:N0} tokens.");
        if (chunk < 1) throw new ArgumentOutOfRangeException(nameof(chunk), chunk, "Chunk size must be positive.");
        long count = (Train.TokenCount + chunk - 1) / chunk;
        if (count > int.MaxValue) throw new ArgumentException($"The pool has too many chunks of {chunk} tokens; use larger chunks.");
        var order = new int[count];
        for (int i = 0; i < order.Length; i++) order[i] = i;
        var rng = new Tensors.Rng(seed);
        for (int i = order.Length - 1; i > 0; i--)
        {
            int j = rng.NextInt(i + 1);
            (order[i], order[j]) = (order[j], order[i]);
        }
        var result = new int[tokens];
        long filled = 0;
        foreach (int c in order)
        {
            if (filled == tokens) break;
            long start = (long)c * chunk;
            int size = (int)Math.Min(Math.Min(chunk, Train.TokenCount - start), tokens - filled);
            Train.Read(start, result.AsSpan((int)filled, size));
            filled += size;
        }
        TokenShard.Write(path, [result], Train.VocabSize);
        return TokenShard.Open(path);
    }

    /// <summary>
    /// Writes the evaluation sample every run is scored on: <paramref name="pieces"/> contiguous
    /// pieces of the validation stream, evenly spaced through it, <paramref name="tokens"/> in all.
    /// The trainer evaluates a split from its start, and the embedded corpus's validation split
    /// starts with Moby-Dick and continues with speeches, so a prefix would score one source only;
    /// evenly spaced pieces keep the sources in proportion. The whole split when it is small enough.
    /// </summary>
    public TokenShard WriteValidationSample(string path, long tokens, int pieces = 64)
    {
        long total = Validation.TokenCount;
        if (tokens < 2) throw new ArgumentOutOfRangeException(nameof(tokens), tokens, "A validation sample needs at least 2 tokens.");
        tokens = Math.Min(tokens, total);
        pieces = tokens == total ? 1 : (int)Math.Clamp(pieces, 1, Math.Max(1, tokens / 2));
        var chunks = new List<int[]>(pieces);
        long stride = total / pieces, left = tokens;
        for (int i = 0; i < pieces; i++)
        {
            long size = left / (pieces - i);
            var chunk = new int[size];
            Validation.Read(Math.Min(i * stride, total - size), chunk);
            chunks.Add(chunk);
            left -= size;
        }
        TokenShard.Write(path, [chunks.SelectMany(c => c).ToArray()], Validation.VocabSize);
        return TokenShard.Open(path);
    }

    /// <summary>Closes the shards when this object opened them.</summary>
    public void Dispose()
    {
        if (!owns) return;
        Train.Dispose();
        Validation.Dispose();
    }
}
