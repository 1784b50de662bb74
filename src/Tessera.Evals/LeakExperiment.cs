using System.Diagnostics;
using System.Text;
using Tessera.Data;
using Tessera.Model;
using Tessera.Tensors;
using Tessera.Text;
using Tessera.Training;

namespace Tessera.Evals;

/// <summary>Settings of the contamination demonstration; <see cref="Quick"/> and <see cref="Full"/> are the two documented sizes.</summary>
public sealed record LeakExperimentOptions
{
    /// <summary>Minimal pairs in the eval set; the first half (after a seeded shuffle) is leaked.</summary>
    public int Items { get; init; } = 100;
    /// <summary>Copies of each leaked good sentence in the training data.</summary>
    public int Repeats { get; init; } = 16;
    /// <summary>Bytes of English filler text (the embedded corpus) in the training data.</summary>
    public int FillerBytes { get; init; } = 16 * 1024;
    /// <summary>Training steps of the tiny byte-level model.</summary>
    public int Steps { get; init; } = 500;
    /// <summary>N of the contamination n-grams (bytes here).</summary>
    public int NGram { get; init; } = 13;
    /// <summary>Seed for the synthetic data, the model initialisation and the batch order.</summary>
    public ulong Seed { get; init; } = 7;

    /// <summary>The CI size: well under a minute on two cores.</summary>
    public static LeakExperimentOptions Quick { get; } = new();
    /// <summary>The documented full size.</summary>
    public static LeakExperimentOptions Full { get; } = new() { Items = 400, FillerBytes = 256 * 1024, Steps = 1200 };
}

/// <summary>
/// What the demonstration measured. <see cref="Leaked"/>/<see cref="Clean"/> split by ground truth
/// (which items were inserted into training), <see cref="Report"/> by what the n-gram index
/// detected — the report `tessera eval` prints. Mean scores are log p(good sentence) per byte.
/// </summary>
public sealed record LeakExperimentResult(int Items, int LeakedItems, int Repeats, int Steps, long TrainingTokens, double FinalLoss,
    double TrainSeconds, SubsetScore Leaked, SubsetScore Clean, int LeakedFlagged, int CleanFlagged, ContaminationResult Report);

/// <summary>
/// Contamination made visible: half of a minimal-pair eval set is written (its good sentences,
/// repeated) into the training data of a tiny byte-level model; after training, the n-gram
/// index must flag the leaked half, and the leaked half's scores must be inflated while the
/// clean half's are not. Synthetic pairs are made of pseudo-words (so nothing but the leak can
/// teach their word order) and the bad sentence swaps two adjacent words, so a model that has
/// not seen an item can only guess (≈50%); every word belongs to one item only. Real pairs (e.g. BLiMP) can be passed instead.
/// </summary>
public static class LeakExperiment
{
    /// <summary>Runs the whole demonstration in-process; <paramref name="scratch"/> holds the shard and corpus files.</summary>
    public static LeakExperimentResult Run(LeakExperimentOptions o, string scratch, IReadOnlyList<MinimalPair>? pairs = null, Action<string>? log = null)
    {
        if (o.Items < 2) throw new ArgumentException($"The leak experiment needs at least 2 items (got {o.Items}).");
        pairs ??= SyntheticPairs(o.Items, o.Seed);
        if (pairs.Count < 2) throw new ArgumentException($"The leak experiment needs at least 2 pairs (got {pairs.Count}).");
        var rng = new Rng(o.Seed);
        var order = Shuffled(pairs.Count, rng);
        var leaked = new bool[pairs.Count];
        for (int i = 0; i < pairs.Count / 2; i++) leaked[order[i]] = true;

        var tokenizer = new ByteTokenizer(ChatTemplate.DefaultSpecialTokens);
        int bos = tokenizer.SpecialTokens.Id(ChatTemplate.Bos);
        var docs = new List<int[]>();
        foreach (var text in Filler(scratch, o.FillerBytes)) docs.Add([.. tokenizer.Encode(text)]);
        for (int i = 0; i < pairs.Count; i++)
            if (leaked[i])
                for (int r = 0; r < o.Repeats; r++) docs.Add([.. tokenizer.Encode(pairs[i].Good)]);
        var docOrder = Shuffled(docs.Count, rng);
        Directory.CreateDirectory(scratch);
        string shardPath = Path.Combine(scratch, "leak-train.bin");
        TokenShard.Write(shardPath, docOrder.Select(i => docs[i]), tokenizer.VocabSize, bos);
        using var shard = TokenShard.Open(shardPath);

        var config = new ModelConfig { VocabSize = tokenizer.VocabSize, Dim = 64, Layers = 2, Heads = 4, KvHeads = 4, HiddenDim = 192, ContextLength = 128 };
        var train = new TrainOptions { Steps = o.Steps, BatchSize = 8, SequenceLength = 128, LearningRate = 3e-3f, MinLearningRate = 3e-4f,
            WarmupSteps = Math.Max(1, o.Steps / 10), Seed = o.Seed, EvalEvery = 0, CheckpointEvery = 0 };
        log?.Invoke($"training a {config.Layers}-layer byte model for {o.Steps} steps on {shard.TokenCount:N0} tokens " +
                    $"({pairs.Count / 2} of {pairs.Count} eval items leaked ×{o.Repeats})");
        var clock = Stopwatch.StartNew();
        using var trainer = new Trainer(config, train, new TrainData([shard]));
        double loss = double.NaN;
        for (int s = 0; s < o.Steps; s++) loss = trainer.TrainStep().Loss;
        double trainSeconds = clock.Elapsed.TotalSeconds;
        log?.Invoke($"trained in {trainSeconds:F1} s, final loss {loss:F3}");

        var scorer = new LogLikelihoodScorer(trainer.Model);
        var result = MinimalPairs.Evaluate(scorer, tokenizer, bos, "leak-demo", pairs);
        var perByte = new double[pairs.Count];
        for (int i = 0; i < pairs.Count; i++) perByte[i] = result.ItemGoodLogProb[i] / Encoding.UTF8.GetByteCount(pairs[i].Good);

        var index = NGramIndex.Build([shard], o.NGram, bos);
        var flags = Contamination.Flag(index, tokenizer, Contamination.Texts(pairs), out int uncheckable);
        var report = Contamination.Report("leak-demo", o.NGram, flags, uncheckable, result.ItemCorrect, perByte, "mean log p(good) per byte");
        int leakedFlagged = 0, cleanFlagged = 0;
        for (int i = 0; i < pairs.Count; i++)
            if (flags[i]) { if (leaked[i]) leakedFlagged++; else cleanFlagged++; }
        // Ground truth split, reusing the report's arithmetic with "leaked" as the flag.
        var truth = Contamination.Report("truth", o.NGram, leaked, 0, result.ItemCorrect, perByte, report.ScoreName);
        return new LeakExperimentResult(pairs.Count, pairs.Count / 2, o.Repeats, o.Steps, trainer.TokensSeen, loss, trainSeconds,
            truth.Overlap, truth.Clean, leakedFlagged, cleanFlagged, report);
    }

    /// <summary>
    /// Deterministic pseudo-word pairs: six words, each used by one item only (so no 13-byte
    /// stretch with a whole word in it is shared between items), and the same sentence with two
    /// adjacent words (never the first) swapped.
    /// </summary>
    public static IReadOnlyList<MinimalPair> SyntheticPairs(int count, ulong seed)
    {
        var rng = new Rng(seed ^ 0xC0FFEE);
        string[] onsets = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "sh", "tr"];
        string[] vowels = ["a", "e", "i", "o", "u", "ai", "ou"];
        var used = new HashSet<string>();
        string NewWord()
        {
            while (true)
            {
                var sb = new StringBuilder();
                int syllables = 2 + rng.NextInt(2);
                for (int s = 0; s < syllables; s++) sb.Append(onsets[rng.NextInt(onsets.Length)]).Append(vowels[rng.NextInt(vowels.Length)]);
                if (rng.NextInt(2) == 0) sb.Append(onsets[rng.NextInt(onsets.Length)]);
                if (used.Add(sb.ToString())) return sb.ToString();
            }
        }
        var pairs = new List<MinimalPair>(count);
        var words = new string[6];
        while (pairs.Count < count)
        {
            for (int w = 0; w < words.Length; w++) words[w] = NewWord();
            int j = 1 + rng.NextInt(words.Length - 2);
            string good = string.Join(' ', words) + ".";
            (words[j], words[j + 1]) = (words[j + 1], words[j]);
            pairs.Add(new MinimalPair(good, string.Join(' ', words) + "."));
        }
        return pairs;
    }

    /// <summary>About <paramref name="bytes"/> of the embedded English corpus, as 2 KB documents.</summary>
    static List<string> Filler(string scratch, int bytes)
    {
        var docs = new List<string>();
        if (bytes <= 0) return docs;
        long taken = 0;
        foreach (var d in EmbeddedCorpus.Read(Path.Combine(scratch, "corpus")))
        {
            for (int at = 0; at < d.Text.Length && taken < bytes; at += 2048)
            {
                string piece = d.Text.Substring(at, Math.Min(2048, d.Text.Length - at));
                docs.Add(piece);
                taken += Encoding.UTF8.GetByteCount(piece);
            }
            if (taken >= bytes) break;
        }
        return docs;
    }

    static int[] Shuffled(int n, Rng rng)
    {
        var a = new int[n];
        for (int i = 0; i < n; i++) a[i] = i;
        for (int i = n - 1; i > 0; i--)
        {
            int j = rng.NextInt(i + 1);
            (a[i], a[j]) = (a[j], a[i]);
        }
        return a;
    }
}
