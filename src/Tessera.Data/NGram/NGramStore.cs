using System.Security.Cryptography;

namespace Tessera.Data.NGram;

/// <summary>A next token and how often it follows the context.</summary>
public readonly record struct TokenCount(int Token, long Count);

/// <summary>
/// The next-token distribution after a context: <see cref="SuffixLength"/> is how many trailing
/// context tokens were matched (the whole context for an n-gram query, the longest suffix with a
/// continuation for an ∞-gram query), <see cref="Total"/> the occurrences of that suffix followed by
/// a token, and <see cref="Tokens"/> the counts by token, most frequent first (ties to the lower id).
/// </summary>
public sealed record NextTokenDistribution(int SuffixLength, long Total, IReadOnlyList<TokenCount> Tokens)
{
    /// <summary>Count of <paramref name="token"/> divided by <see cref="Total"/> (0 when the context never occurs).</summary>
    public double Probability(int token)
    {
        if (Total == 0) return 0;
        foreach (var t in Tokens) if (t.Token == token) return (double)t.Count / Total;
        return 0;
    }
}

/// <summary>
/// The ∞-gram probability of one token: P(token | longest suffix of the context that occurs with a
/// continuation) = <see cref="TargetCount"/> / <see cref="ContextCount"/>.
/// </summary>
public readonly record struct InfinityProbability(int SuffixLength, long ContextCount, long TargetCount)
{
    /// <summary>The probability (0 when the index is empty).</summary>
    public double Probability => ContextCount > 0 ? (double)TargetCount / ContextCount : 0;
}

/// <summary>
/// What the store knows about one position beyond the ∞-gram probability of its target: the same
/// probability under the suffix one token shorter than the longest (the backoff estimate; zero
/// counts when the longest suffix is empty), and how peaked the longest suffix's continuations are
/// (<paramref name="Distinct"/> next tokens, the commonest seen <paramref name="TopCount"/> times).
/// Only the target counts depend on the target; a gate must not look at them.
/// </summary>
public readonly record struct NGramEvidence(InfinityProbability Longest, InfinityProbability Backoff, int Distinct, long TopCount);

/// <summary>An occurrence: the global document id and the token offset inside that document.</summary>
public readonly record struct DocumentHit(long Document, long Offset);

/// <summary>Occurrences of one n-gram; <see cref="Hits"/> holds at most the requested number, in document order.</summary>
public sealed record DocumentSearch(long Occurrences, IReadOnlyList<DocumentHit> Hits, bool Truncated);

/// <summary>
/// The store: the shards of an index folder queried as one corpus, memory-mapped, each shard's
/// SHA-256 checked against <c>index.json</c> when opened. Counts sum over shards; an n-gram never
/// matches across a shard boundary (shards are separate token streams, as in infini-gram).
/// All queries are read-only and safe to call from several threads at once.
/// </summary>
public sealed class NGramStore : IDisposable
{
    readonly NGramShard[] shards;

    NGramStore(string directory, NGramManifest manifest, NGramShard[] shards)
    {
        Directory = directory;
        Manifest = manifest;
        this.shards = shards;
        foreach (var s in shards) TokenCount += s.TokenCount;
    }

    /// <summary>The index folder.</summary>
    public string Directory { get; }
    /// <summary>The parsed <c>index.json</c>.</summary>
    public NGramManifest Manifest { get; }
    /// <summary>Tokens indexed (all shards).</summary>
    public long TokenCount { get; }
    /// <summary>Vocabulary size of the tokenizer the ids come from.</summary>
    public int VocabSize => Manifest.Tokenizer.VocabSize;
    /// <summary>The shards, in document order.</summary>
    public IReadOnlyList<NGramShard> Shards => shards;

    /// <summary>
    /// Opens an index folder. Every shard file's size and SHA-256 are checked against the manifest
    /// first (a corrupt or truncated index fails here with the file named), unless
    /// <paramref name="verify"/> is false.
    /// </summary>
    public static NGramStore Open(string directory, bool verify = true)
    {
        var manifest = NGramManifest.Load(directory);
        var opened = new List<NGramShard>();
        try
        {
            foreach (var info in manifest.Shards)
            {
                string path = Path.Combine(directory, info.File);
                if (!File.Exists(path)) throw new FileNotFoundException($"{directory}: shard {info.File} listed in {NGramManifest.FileName} is missing.", path);
                long size = new FileInfo(path).Length;
                if (size != info.Bytes) throw new InvalidDataException($"{path}: {size} bytes, {NGramManifest.FileName} says {info.Bytes} (truncated or replaced).");
                if (verify)
                {
                    string sha;
                    using (var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20)) sha = Convert.ToHexStringLower(SHA256.HashData(fs));
                    if (sha != info.Sha256) throw new InvalidDataException($"{path}: checksum mismatch (SHA-256 {sha[..16]}…, expected {info.Sha256[..Math.Min(16, info.Sha256.Length)]}…); the index is corrupt, rebuild it.");
                }
                var shard = NGramShard.Open(path);
                opened.Add(shard);
                shard.IndexFirstTokens(manifest.Tokenizer.VocabSize);
                if (shard.TokenCount != info.Tokens || shard.TokenBytes != manifest.TokenBytes)
                    throw new InvalidDataException($"{path}: header disagrees with {NGramManifest.FileName} ({shard.TokenCount} tokens of {shard.TokenBytes} bytes, expected {info.Tokens} of {manifest.TokenBytes}).");
            }
            return new NGramStore(directory, manifest, [.. opened]);
        }
        catch
        {
            foreach (var s in opened) s.Dispose();
            throw;
        }
    }

    /// <summary>Throws unless <paramref name="tokenizer"/> is the tokenizer the index was built with.</summary>
    public void CheckTokenizer(TokenizerIdentity tokenizer) => Manifest.Tokenizer.Check(tokenizer, Directory);

    /// <summary>Throws a clear error for an id outside the vocabulary (or an empty query when <paramref name="allowEmpty"/> is false).</summary>
    public void Validate(ReadOnlySpan<int> ids, string what, bool allowEmpty)
    {
        if (ids.IsEmpty && !allowEmpty) throw new ArgumentException($"{what}: the query is empty; give at least one token id.");
        for (int i = 0; i < ids.Length; i++)
            if ((uint)ids[i] >= (uint)VocabSize)
                throw new ArgumentException($"{what}: token id {ids[i]} at position {i} is outside the vocabulary [0, {VocabSize}) of the index {Directory}.");
    }

    /// <summary>The suffix-array range of <paramref name="pattern"/> in every shard.</summary>
    public SaRange[] Find(ReadOnlySpan<int> pattern)
    {
        var ranges = new SaRange[shards.Length];
        for (int s = 0; s < shards.Length; s++) ranges[s] = shards[s].Find(pattern);
        return ranges;
    }

    /// <summary>Occurrences of <paramref name="ngram"/> in the indexed tokens.</summary>
    public long Count(ReadOnlySpan<int> ngram)
    {
        Validate(ngram, "count", allowEmpty: false);
        long n = 0;
        foreach (var r in Find(ngram)) n += r.Count;
        return n;
    }

    /// <summary>The n-gram next-token distribution: what follows exactly <paramref name="context"/> (empty = unigram).</summary>
    public NextTokenDistribution NextTokens(ReadOnlySpan<int> context)
    {
        Validate(context, "next tokens", allowEmpty: true);
        return Distribution(Find(context), context.Length);
    }

    /// <summary>
    /// The ∞-gram next-token distribution: that of the longest suffix of <paramref name="context"/>
    /// which occurs followed by a token (found by binary search on the suffix length, since a
    /// suffix with a continuation implies every shorter one has one).
    /// </summary>
    public NextTokenDistribution InfinityNextTokens(ReadOnlySpan<int> context)
    {
        Validate(context, "∞-gram next tokens", allowEmpty: true);
        int k = LongestSuffix(context, out var ranges);
        return Distribution(ranges, k);
    }

    /// <summary>The ∞-gram probability of <paramref name="token"/> after <paramref name="context"/>.</summary>
    public InfinityProbability Probability(ReadOnlySpan<int> context, int token)
    {
        Validate(context, "∞-gram probability", allowEmpty: true);
        Validate([token], "∞-gram probability", allowEmpty: false);
        int k = LongestSuffix(context, out var ranges);
        long total = 0, hits = 0;
        for (int s = 0; s < shards.Length; s++)
        {
            total += shards[s].Continuations(ranges[s], k);
            hits += shards[s].Narrow(ranges[s], k, token).Count;
        }
        return new InfinityProbability(k, total, hits);
    }

    /// <summary>
    /// The <see cref="NGramEvidence"/> of <paramref name="token"/> after <paramref name="context"/>,
    /// given that position's ∞-gram probability <paramref name="longest"/> (from
    /// <see cref="Probability"/> or the batched pass).
    /// </summary>
    public NGramEvidence Evidence(InfinityProbability longest, ReadOnlySpan<int> context, int token)
    {
        int k = longest.SuffixLength;
        var ranges = k == 0 ? AllRanges() : Find(context[^k..]);
        var counts = new Dictionary<int, long>();
        for (int s = 0; s < shards.Length; s++) shards[s].AddContinuations(ranges[s], k, counts);
        long top = 0;
        foreach (long c in counts.Values) top = Math.Max(top, c);
        var backoff = default(InfinityProbability);
        if (k > 0)
        {
            int b = k - 1;
            var shorter = b == 0 ? AllRanges() : Find(context[^b..]);
            long total = 0, hits = 0;
            for (int s = 0; s < shards.Length; s++)
            {
                total += shards[s].Continuations(shorter[s], b);
                hits += shards[s].Narrow(shorter[s], b, token).Count;
            }
            backoff = new InfinityProbability(b, total, hits);
        }
        return new NGramEvidence(longest, backoff, counts.Count, top);
    }

    /// <summary>Length of the longest suffix of <paramref name="context"/> with a continuation, and its ranges.</summary>
    public int LongestSuffix(ReadOnlySpan<int> context, out SaRange[] ranges)
    {
        int lo = 0, hi = context.Length;   // lo always has a continuation (or the index is empty)
        ranges = AllRanges();
        while (lo < hi)
        {
            int mid = (lo + hi + 1) / 2;
            var r = Find(context[^mid..]);
            if (Continuations(r, mid) > 0) { lo = mid; ranges = r; }
            else hi = mid - 1;
        }
        return lo;
    }

    /// <summary>Every shard's whole range (the empty pattern).</summary>
    public SaRange[] AllRanges()
    {
        var r = new SaRange[shards.Length];
        for (int s = 0; s < shards.Length; s++) r[s] = shards[s].All;
        return r;
    }

    /// <summary>Occurrences followed by a token, over all shards.</summary>
    public long Continuations(SaRange[] ranges, int depth)
    {
        long n = 0;
        for (int s = 0; s < shards.Length; s++) n += shards[s].Continuations(ranges[s], depth);
        return n;
    }

    NextTokenDistribution Distribution(SaRange[] ranges, int depth)
    {
        var counts = new Dictionary<int, long>();
        long total = 0;
        for (int s = 0; s < shards.Length; s++)
        {
            shards[s].AddContinuations(ranges[s], depth, counts);
            total += shards[s].Continuations(ranges[s], depth);
        }
        var list = new List<TokenCount>(counts.Count);
        foreach (var (t, c) in counts) list.Add(new TokenCount(t, c));
        list.Sort((a, b) => a.Count != b.Count ? b.Count.CompareTo(a.Count) : a.Token.CompareTo(b.Token));
        return new NextTokenDistribution(depth, total, list);
    }

    /// <summary>
    /// Documents containing <paramref name="ngram"/>: the total number of occurrences and up to
    /// <paramref name="maxHits"/> of them as (document id, offset in the document), in document order.
    /// </summary>
    public DocumentSearch Documents(ReadOnlySpan<int> ngram, int maxHits = 100)
    {
        Validate(ngram, "documents", allowEmpty: false);
        if (maxHits < 0) throw new ArgumentOutOfRangeException(nameof(maxHits), maxHits, "documents: the hit limit must be ≥ 0.");
        var ranges = Find(ngram);
        long total = 0;
        foreach (var r in ranges) total += r.Count;
        var hits = new List<DocumentHit>();
        for (int s = 0; s < shards.Length && hits.Count < maxHits; s++)
        {
            // Positions of this shard's occurrences in document order (the range is in suffix order).
            long take = Math.Min(ranges[s].Count, maxHits - hits.Count);
            // Sorting every position of a very frequent n-gram would be unbounded work: past 2²⁰
            // occurrences the first ones in suffix order are reported instead.
            var pos = new long[Math.Min(ranges[s].Count, Math.Max(take, 1 << 20))];
            for (long i = 0; i < pos.LongLength; i++) pos[i] = shards[s].Suffix(ranges[s].Lo + i);
            Array.Sort(pos);
            for (long i = 0; i < take; i++) hits.Add(Locate(s, pos[i]));
        }
        return new DocumentSearch(total, hits, total > hits.Count);
    }

    /// <summary>
    /// Documents containing all (<paramref name="all"/> = true, AND) or any (OR) of
    /// <paramref name="ngrams"/>, sorted by id; at most <paramref name="maxOccurrences"/>
    /// occurrences per n-gram are examined (<c>truncated</c> reports when that cut in).
    /// </summary>
    public IReadOnlyList<long> DocumentsMatching(IReadOnlyList<int[]> ngrams, bool all, int maxOccurrences, out bool truncated)
    {
        if (ngrams.Count == 0) throw new ArgumentException("documents: give at least one n-gram to combine.");
        truncated = false;
        SortedSet<long>? result = null;
        foreach (var g in ngrams)
        {
            var found = Documents(g, maxOccurrences);
            truncated |= found.Truncated;
            var docs = new SortedSet<long>();
            foreach (var h in found.Hits) docs.Add(h.Document);
            if (result is null) result = docs;
            else if (all) result.IntersectWith(docs);
            else result.UnionWith(docs);
        }
        return [.. result!];
    }

    /// <summary>Global document id and in-document offset of position <paramref name="pos"/> of shard <paramref name="shard"/>.</summary>
    public DocumentHit Locate(int shard, long pos)
    {
        var s = shards[shard];
        long local = s.DocumentOf(pos);
        long offset = pos - s.DocumentStart(local) + (local == 0 ? s.FirstDocumentOffset : 0);
        return new DocumentHit(s.FirstDocument + local, offset);
    }

    /// <summary>Unmaps every shard.</summary>
    public void Dispose()
    {
        foreach (var s in shards) s.Dispose();
    }
}
