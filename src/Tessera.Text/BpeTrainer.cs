using System.Runtime.InteropServices;
using System.Text;
using Tessera.Kernels;

namespace Tessera.Text;

/// <summary>Settings for <see cref="BpeTrainer"/>.</summary>
/// <param name="VocabSize">Total vocabulary: 256 byte tokens + merges + special tokens.</param>
/// <param name="Pattern">Pre-tokenizer regex (Rust/PCRE dialect); GPT-4's by default.</param>
/// <param name="SpecialTokens">Special tokens, given ids after the merged tokens in this order; null = <see cref="ChatTemplate.DefaultSpecialTokens"/>.</param>
/// <param name="Threads">Pre-token counting: 1 = on the calling thread; otherwise on the shared worker pool (<c>TESSERA_THREADS</c>, default all cores).</param>
public sealed record BpeTrainerOptions(
    int VocabSize,
    string Pattern = PreTokenizer.Cl100kPattern,
    IReadOnlyList<string>? SpecialTokens = null,
    int Threads = 0);

/// <summary>What training did, for progress output and the CLI's --json.</summary>
public sealed record BpeTrainingReport(long Characters, int UniquePieces, int Merges, TimeSpan CountTime, TimeSpan MergeTime);

/// <summary>
/// Byte-level BPE trainer. Counts regex pre-tokens on all cores, then repeatedly merges the
/// most frequent adjacent pair, with incremental pair counts and a lazy max-heap so each
/// merge only touches the pieces that contain the pair. Ties go to the pair with the
/// smaller (left id, right id), so results do not depend on thread count or input order
/// within the counts. Ids: 0..255 are the bytes, merges follow in order, specials last.
/// The result saves as a tiktoken rank file (rank = id) and encodes with tiktoken semantics.
/// </summary>
public static class BpeTrainer
{
    /// <summary>Trains on text chunks (see <see cref="TrainingCorpus"/>).</summary>
    public static BpeTokenizer Train(IEnumerable<string> chunks, BpeTrainerOptions options, out BpeTrainingReport report,
        Action<string>? progress = null)
    {
        var specials = options.SpecialTokens ?? ChatTemplate.DefaultSpecialTokens;
        int merges = options.VocabSize - 256 - specials.Count;
        if (merges < 0) throw new ArgumentException($"vocab size {options.VocabSize} is smaller than 256 bytes + {specials.Count} special tokens");
        var pre = new PreTokenizer(options.Pattern);

        var sw = System.Diagnostics.Stopwatch.StartNew();
        var counts = CountPieces(chunks, pre, options.Threads, out long chars);
        var countTime = sw.Elapsed;
        progress?.Invoke($"counted {counts.Count:N0} unique pieces in {chars:N0} chars ({countTime.TotalSeconds:F2} s)");

        sw.Restart();
        var tokens = Merge(counts, merges, progress);
        var mergeTime = sw.Elapsed;
        int mergesDone = tokens.Count - 256;

        var specialIds = new Dictionary<string, int>();
        for (int i = 0; i < specials.Count; i++)
            if (!specialIds.TryAdd(specials[i], tokens.Count + i)) throw new ArgumentException($"special token '{specials[i]}' is listed twice");
        report = new BpeTrainingReport(chars, counts.Count, mergesDone, countTime, mergeTime);
        return new BpeTokenizer("trained", tokens, null, options.Pattern, new SpecialTokenSet(specialIds));
    }

    /// <summary>
    /// Counts pre-tokens over chunks on the shared worker pool (<see cref="WorkerPool.Shared"/>;
    /// <paramref name="threads"/> = 1 counts on the calling thread). Chunks are read in batches, so a
    /// streamed corpus is never held whole; each claimed slice of a batch counts into a table no other
    /// thread holds at that moment, and the tables are summed at the end (counts do not depend on how
    /// the work was split).
    /// </summary>
    public static Dictionary<string, long> CountPieces(IEnumerable<string> chunks, PreTokenizer pre, int threads, out long characters)
    {
        var pool = WorkerPool.Shared;
        bool inline = threads == 1 || pool.ThreadCount == 1;
        var spare = new System.Collections.Concurrent.ConcurrentBag<Dictionary<string, long>>();
        var batch = new List<string>();
        long chars = 0, batchChars = 0;

        void CountSlice(int first, int end)
        {
            if (!spare.TryTake(out var local)) local = new Dictionary<string, long>(StringComparer.Ordinal);
            var lookup = local.GetAlternateLookup<ReadOnlySpan<char>>();
            for (int i = first; i < end; i++)
            {
                string chunk = batch[i];
                foreach (var m in pre.Split(chunk))
                {
                    var piece = chunk.AsSpan(m.Index, m.Length);
                    lookup.TryGetValue(piece, out long c);
                    lookup[piece] = c + 1;
                }
            }
            spare.Add(local);
        }

        void Flush()
        {
            if (batch.Count == 0) return;
            if (inline) CountSlice(0, batch.Count);
            else pool.For(batch.Count, Math.Min(batch.Count, 8 * pool.ThreadCount), CountSlice);
            batch.Clear();
            batchChars = 0;
        }

        foreach (var chunk in chunks)
        {
            chars += chunk.Length;
            batchChars += chunk.Length;
            batch.Add(chunk);
            if (batch.Count == CountBatchChunks || batchChars >= CountBatchChars) Flush();
        }
        Flush();

        // Sum into the largest table (fewest insertions).
        var tables = spare.OrderByDescending(t => t.Count).ToList();
        var total = tables.Count > 0 ? tables[0] : new Dictionary<string, long>(StringComparer.Ordinal);
        for (int t = 1; t < tables.Count; t++)
            foreach (var (k, v) in tables[t]) total[k] = total.GetValueOrDefault(k) + v;
        characters = chars;
        return total;
    }

    /// <summary>A parallel counting pass starts once this many chunks or characters are read ahead
    /// (16 of <see cref="TrainingCorpus"/>'s 1M-character chunks: 32 MB of text in flight).</summary>
    const int CountBatchChunks = 1024, CountBatchChars = 16 << 20;

    private readonly struct PairOrder : IComparer<(long Count, long Pair)>
    {
        // Max-heap on count; ties: smaller (left, right) first.
        public int Compare((long Count, long Pair) a, (long Count, long Pair) b) =>
            a.Count != b.Count ? b.Count.CompareTo(a.Count) : a.Pair.CompareTo(b.Pair);
    }

    private static long PairKey(int a, int b) => ((long)a << 32) | (uint)b;

    /// <summary>Runs up to <paramref name="merges"/> merges; returns token bytes by id.</summary>
    public static List<byte[]?> Merge(Dictionary<string, long> pieceCounts, int merges, Action<string>? progress = null)
    {
        // Words in ordinal order so every run sees the same layout.
        var keys = pieceCounts.Keys.ToArray();
        Array.Sort(keys, StringComparer.Ordinal);
        var words = new int[keys.Length][];
        var freq = new long[keys.Length];
        for (int w = 0; w < keys.Length; w++)
        {
            var bytes = Encoding.UTF8.GetBytes(keys[w]);
            words[w] = Array.ConvertAll(bytes, b => (int)b);
            freq[w] = pieceCounts[keys[w]];
        }

        var tokens = new List<byte[]?>(256 + merges);
        var known = new ByteRankTable(256 + merges);
        for (int b = 0; b < 256; b++) { tokens.Add([(byte)b]); known.Add([(byte)b], b, b); }

        var pairCount = new Dictionary<long, long>(PairKeyComparer.Instance);
        var where = new Dictionary<long, List<int>>(PairKeyComparer.Instance);
        for (int w = 0; w < words.Length; w++)
            for (int i = 0; i + 1 < words[w].Length; i++)
            {
                long p = PairKey(words[w][i], words[w][i + 1]);
                CollectionsMarshal.GetValueRefOrAddDefault(pairCount, p, out _) += freq[w];
                if (!where.TryGetValue(p, out var list)) where[p] = list = [];
                if (list.Count == 0 || list[^1] != w) list.Add(w);
            }
        var heap = new PriorityQueue<long, (long, long)>(new PairOrder());
        foreach (var (p, c) in pairCount) heap.Enqueue(p, (c, p));

        var seen = new int[words.Length];
        int stamp = 0;
        var touched = new HashSet<long>();
        var scratch = new List<int>(64);
        int done = 0;
        while (done < merges && heap.TryDequeue(out long pair, out var pri))
        {
            long current = pairCount.GetValueOrDefault(pair);
            if (current != pri.Item1)
            {
                if (current > 0) heap.Enqueue(pair, (current, pair));
                continue;
            }
            if (current <= 0) continue;
            int a = (int)(pair >> 32), b = (int)pair;
            byte[] merged = [.. tokens[a]!, .. tokens[b]!];
            int x;
            if (known.TryGet(merged, out _, out int existing)) x = existing; // the same bytes were built by another pair
            else
            {
                x = tokens.Count;
                tokens.Add(merged);
                known.Add(merged, x, x);
                done++;
            }

            stamp++;
            touched.Clear();
            foreach (int w in where[pair])
            {
                if (seen[w] == stamp) continue;
                seen[w] = stamp;
                var word = words[w];
                scratch.Clear();
                bool hit = false;
                for (int i = 0; i < word.Length; i++)
                {
                    if (i + 1 < word.Length && word[i] == a && word[i + 1] == b) { scratch.Add(x); i++; hit = true; }
                    else scratch.Add(word[i]);
                }
                if (!hit) continue;
                long f = freq[w];
                var next = scratch.ToArray();
                // Only pairs next to a merge site change; subtracting/adding just those would need
                // care with overlapping sites ("aaa"), so whole-word deltas keep it simple: pieces are short.
                for (int i = 0; i + 1 < word.Length; i++)
                    CollectionsMarshal.GetValueRefOrNullRef(pairCount, PairKey(word[i], word[i + 1])) -= f;
                for (int i = 0; i + 1 < next.Length; i++)
                {
                    long p = PairKey(next[i], next[i + 1]);
                    CollectionsMarshal.GetValueRefOrAddDefault(pairCount, p, out _) += f;
                    if (next[i] == x || next[i + 1] == x)
                    {
                        touched.Add(p);
                        if (!where.TryGetValue(p, out var list)) where[p] = list = [];
                        if (list.Count == 0 || list[^1] != w) list.Add(w);
                    }
                }
                words[w] = next;
            }
            foreach (long p in touched)
                if (pairCount[p] > 0) heap.Enqueue(p, (pairCount[p], p));
            where.Remove(pair);
            if (progress is not null && done % 1000 == 0 && existing < 0) progress($"merges: {done:N0}/{merges:N0}");
        }
        return tokens;
    }
}
