using System.Diagnostics;
using System.Security.Cryptography;
using Tessera.Kernels;
using Tessera.Kernels.IO;

namespace Tessera.Data.NGram;

/// <summary>How an index is built.</summary>
public sealed record NGramBuildOptions
{
    /// <summary>
    /// Tokens per shard. Bounds build memory (about 30 bytes per token per shard under
    /// construction, one shard per pool thread) and sets the suffix-array pointer width: up to
    /// 2²⁴ tokens take 3-byte entries, so 2 + 3 = 5 bytes per token with a 16-bit vocabulary.
    /// </summary>
    public int ShardTokens { get; init; } = 1 << 24;
    /// <summary>Replace an existing index at the output path.</summary>
    public bool Overwrite { get; init; }
}

/// <summary>
/// Builds an ∞-gram store folder from documents of token ids. Documents stream through: they are
/// packed into shards of at most <see cref="NGramBuildOptions.ShardTokens"/> tokens (split only
/// when a single document is larger), and as soon as the worker pool has one full shard per thread
/// the shards' suffix arrays are built side by side (SA-IS, linear time) and written out, so
/// memory stays bounded whatever the corpus size. Everything is written into a temporary sibling
/// folder that is renamed into place after the manifest is written: a crash leaves no half index.
/// </summary>
public static class NGramBuilder
{
    /// <summary>Indexes the documents of token shards (e.g. a prepared folder's train.bin).</summary>
    public static NGramManifest Build(IReadOnlyList<TokenShard> shards, TokenizerIdentity tokenizer, string outDir,
        NGramBuildOptions? options = null, Action<string>? progress = null)
    {
        foreach (var s in shards)
            if (s.VocabSize != tokenizer.VocabSize)
                throw new ArgumentException($"{s.Path}: written for a vocabulary of {s.VocabSize}, but the tokenizer '{tokenizer.Name}' has {tokenizer.VocabSize}.");
        return Build(Documents(shards), tokenizer, outDir, options, progress);
    }

    static IEnumerable<int[]> Documents(IReadOnlyList<TokenShard> shards)
    {
        foreach (var s in shards)
            for (int d = 0; d < s.DocumentCount; d++) yield return s.ReadDocument(d);
    }

    /// <summary>Indexes in-memory documents (each its own document id, in order).</summary>
    public static NGramManifest Build(IEnumerable<int[]> documents, TokenizerIdentity tokenizer, string outDir,
        NGramBuildOptions? options = null, Action<string>? progress = null)
    {
        options ??= new NGramBuildOptions();
        if (options.ShardTokens < 1) throw new ArgumentOutOfRangeException(nameof(options), options.ShardTokens, "n-gram build: shard size must be at least one token.");
        string target = Path.GetFullPath(outDir).TrimEnd(Path.DirectorySeparatorChar);
        if (Directory.Exists(target) && !options.Overwrite)
            throw new IOException($"{target} already exists; pass overwrite (--force) to replace it.");
        var sw = Stopwatch.StartNew();
        NGramManifest? manifest = null;
        // Shards and manifest are written into a staging folder that replaces any old index in one step.
        AtomicFile.PublishDirectory(target, tmp =>
        {
            int vocab = tokenizer.VocabSize;
            int tokenBytes = vocab <= 65536 ? 2 : 4;
            var pool = WorkerPool.Shared;
            var pending = new List<PendingShard>();
            var infos = new List<NGramShardInfo>();
            var current = new PendingShard(options.ShardTokens, 0, 0);
            long docId = 0, totalTokens = 0;

            void FlushPending()
            {
                if (pending.Count == 0) return;
                var batch = pending.ToArray();
                var written = new NGramShardInfo[batch.Length];
                int first = infos.Count;
                // One shard per pool worker range: the suffix arrays are built side by side.
                pool.For(batch.Length, (_, start, end) =>
                {
                    for (int i = start; i < end; i++) written[i] = WriteShard(tmp, first + i, batch[i], tokenBytes, vocab);
                });
                infos.AddRange(written);
                pending.Clear();
                progress?.Invoke($"{infos.Count} shard(s), {totalTokens:N0} tokens indexed, {sw.Elapsed.TotalSeconds:F1} s");
            }

            foreach (var doc in documents)
            {
                long offsetInDoc = 0;
                var rest = doc.AsSpan();
                foreach (int t in doc)
                    if ((uint)t >= (uint)vocab) throw new ArgumentOutOfRangeException(nameof(documents), t, $"n-gram build: token id {t} in document {docId} is outside the vocabulary [0, {vocab}) of '{tokenizer.Name}'.");
                while (true)
                {
                    if (current.Length == current.Capacity)
                    {
                        pending.Add(current);
                        if (pending.Count == pool.ThreadCount) FlushPending();
                        current = new PendingShard(options.ShardTokens, docId, offsetInDoc);
                    }
                    current.StartDocument(docId, offsetInDoc);
                    int take = Math.Min(rest.Length, current.Capacity - current.Length);
                    current.Append(rest[..take]);
                    rest = rest[take..];
                    offsetInDoc += take;
                    if (rest.IsEmpty) break;
                }
                totalTokens += doc.Length;
                docId++;
            }
            if (current.Length > 0) pending.Add(current);
            FlushPending();
            manifest = new NGramManifest(NGramManifest.FormatName, NGramManifest.CurrentVersion, tokenizer, tokenBytes, totalTokens, docId,
                options.ShardTokens, infos, sw.Elapsed.TotalSeconds);
            manifest.Save(tmp);
        });
        return manifest!;
    }

    static NGramShardInfo WriteShard(string dir, int index, PendingShard shard, int tokenBytes, int vocab)
    {
        var text = shard.Tokens;
        var sa = SuffixArray.Build(text, vocab);
        string file = $"shard-{index:D4}.bin";
        string path = Path.Combine(dir, file);
        NGramShard.Write(path, text, sa, shard.DocumentStarts, tokenBytes, shard.FirstDocument, shard.FirstDocumentOffset);
        string sha;
        using (var fs = File.OpenRead(path)) sha = Convert.ToHexStringLower(SHA256.HashData(fs));
        return new NGramShardInfo(file, text.Length, shard.DocumentStarts.Length, NGramShard.PointerBytesFor(text.Length), new FileInfo(path).Length, sha);
    }

    /// <summary>Tokens and document starts of one shard being filled.</summary>
    sealed class PendingShard(int capacity, long firstDocument, long firstDocumentOffset)
    {
        int[] tokens = new int[Math.Min(capacity, 1 << 16)];
        readonly List<long> starts = [];
        long lastDoc = -1;
        public int Capacity => capacity;
        public int Length { get; private set; }
        public long FirstDocument => firstDocument;
        public long FirstDocumentOffset => firstDocumentOffset;
        public ReadOnlySpan<int> Tokens => tokens.AsSpan(0, Length);
        public long[] DocumentStarts => [.. starts];

        public void StartDocument(long doc, long offsetInDoc)
        {
            if (doc == lastDoc) return;
            if (starts.Count == 0 && (doc != firstDocument || offsetInDoc != firstDocumentOffset))
                throw new InvalidOperationException("n-gram build: shard bookkeeping out of step.");
            starts.Add(Length);
            lastDoc = doc;
        }

        public void Append(ReadOnlySpan<int> ids)
        {
            if (Length + ids.Length > tokens.Length)
                Array.Resize(ref tokens, (int)Math.Min(capacity, Math.Max((long)Length + ids.Length, 2L * tokens.Length)));
            ids.CopyTo(tokens.AsSpan(Length));
            Length += ids.Length;
        }
    }
}
