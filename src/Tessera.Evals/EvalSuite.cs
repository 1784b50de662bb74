using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;
using Tessera.Data;
using Tessera.Kernels.IO;
using Tessera.Model;
using Tessera.Text;

namespace Tessera.Evals;

/// <summary>What `tessera eval` runs. Every path is optional; at least one eval must be named.</summary>
public sealed record EvalOptions
{
    /// <summary>Prepared data folder (meta.json + shards): bits per byte of train/val/test.</summary>
    public string? Data { get; init; }
    /// <summary>A BLiMP-style jsonl file or a folder of them.</summary>
    public string? MinimalPairs { get; init; }
    /// <summary>A HellaSwag-format text file.</summary>
    public string? HellaSwag { get; init; }
    /// <summary>Training data for the contamination check: a token shard or a prepared folder (its train.bin).</summary>
    public string? Contamination { get; init; }
    /// <summary>N of the contamination n-grams.</summary>
    public int NGram { get; init; } = 13;
    /// <summary>At most this many items per task file (null = all).</summary>
    public int? Limit { get; init; }
    /// <summary>At most this many targets per split for bits per byte (null = the whole split).</summary>
    public long? BitsPerByteTokens { get; init; }
    /// <summary>Largest B·T of one forward pass.</summary>
    public int BatchTokens { get; init; } = 8192;
}

/// <summary>The eval inputs, parsed and checked before any model work.</summary>
public sealed record EvalInputs(PreparedData? Data, IReadOnlyList<(string Name, IReadOnlyList<MinimalPair> Pairs)> MinimalPairSets,
    (string Name, IReadOnlyList<MultipleChoiceItem> Items)? MultipleChoiceSet, string? ContaminationShard)
{
    /// <summary>
    /// Reads and validates every input named in <paramref name="o"/>; throws one clear error (a
    /// missing folder, an empty or malformed eval file, nothing to do) before anything expensive.
    /// </summary>
    public static EvalInputs Load(EvalOptions o)
    {
        if (o.Data is null && o.MinimalPairs is null && o.HellaSwag is null)
            throw new ArgumentException("Nothing to evaluate: give --data, --blimp and/or --hellaswag.");
        if (o.Limit is < 1) throw new ArgumentException($"--limit must be at least 1 (got {o.Limit}).");
        if (o.BitsPerByteTokens is < 1) throw new ArgumentException($"the bits-per-byte token cap must be at least 1 (got {o.BitsPerByteTokens}).");
        if (o.NGram is < 1 or > 64) throw new ArgumentException($"--ngram must be in [1, 64] (got {o.NGram}).");
        PreparedData? data = null;
        if (o.Data is not null)
        {
            if (!Directory.Exists(o.Data)) throw new DirectoryNotFoundException($"Prepared data folder not found: {o.Data}");
            data = PreparedData.Load(o.Data);
            foreach (var s in new[] { Split.Train, Split.Validation, Split.Test })
                if (data.Stats(s).Tokens > 0 && !File.Exists(data.ShardPath(s))) throw new FileNotFoundException($"{data.ShardPath(s)}: shard missing from the prepared folder.");
        }
        var pairSets = new List<(string, IReadOnlyList<MinimalPair>)>();
        if (o.MinimalPairs is not null)
            foreach (var f in Evals.MinimalPairs.ListFiles(o.MinimalPairs)) pairSets.Add((Path.GetFileNameWithoutExtension(f), Evals.MinimalPairs.Load(f, o.Limit)));
        (string, IReadOnlyList<MultipleChoiceItem>)? mc = o.HellaSwag is null ? null
            : (Path.GetFileNameWithoutExtension(o.HellaSwag), MultipleChoice.LoadHellaSwag(o.HellaSwag, o.Limit));
        string? shard = null;
        if (o.Contamination is not null)
        {
            if (pairSets.Count == 0 && mc is null) throw new ArgumentException("--contamination needs a task to check (--blimp and/or --hellaswag).");
            // An ∞-gram index folder (tessera ngram build) is used as is; a prepared folder means its train.bin.
            shard = File.Exists(Path.Combine(o.Contamination, Tessera.Data.NGram.NGramManifest.FileName)) ? o.Contamination
                : Directory.Exists(o.Contamination) ? PreparedData.Load(o.Contamination).ShardPath(Split.Train) : o.Contamination;
            if (!File.Exists(shard) && !Directory.Exists(shard)) throw new FileNotFoundException($"Training shard for the contamination check not found: {shard}", shard);
        }
        return new EvalInputs(data, pairSets, mc, shard);
    }
}

/// <summary>Everything one `tessera eval` run measured; serialises to the JSON the command prints.</summary>
public sealed record EvalResults
{
    /// <summary>The model that was evaluated (the path given to <c>--model</c>).</summary>
    public string Model { get; init; } = "";
    /// <summary>The tokenizer the texts were encoded with.</summary>
    public string Tokenizer { get; init; } = "";
    /// <summary>Held-out bits per byte, one entry per evaluated split.</summary>
    public IReadOnlyList<BitsPerByteResult> BitsPerByte { get; init; } = [];
    /// <summary>Accuracy per minimal-pair set (BLiMP-style), one entry per set.</summary>
    public IReadOnlyList<MinimalPairResult> MinimalPairs { get; init; } = [];
    /// <summary>Mean accuracy over the minimal-pair sets (NaN when none ran).</summary>
    public double MinimalPairsMeanAccuracy { get; init; } = double.NaN;
    /// <summary>Accuracy per multiple-choice set (HellaSwag-style), one entry per set.</summary>
    public IReadOnlyList<MultipleChoiceResult> MultipleChoice { get; init; } = [];
    /// <summary>Scores split into clean and n-gram-overlapping items, one entry per checked task.</summary>
    public IReadOnlyList<ContaminationResult> Contamination { get; init; } = [];
    /// <summary>Distinct training n-grams indexed for the contamination check (0 when none ran).</summary>
    public long ContaminationNGrams { get; init; }
    /// <summary>Wall time of the whole evaluation in seconds.</summary>
    public double Seconds { get; init; }

    /// <summary>Indented snake_case JSON (<see cref="JsonNaming"/>; NaN written as "NaN").</summary>
    public string ToJson() => JsonNaming.Serialize(this);
}

/// <summary>
/// Runs the evals of <see cref="EvalInputs"/> on one model: bits per byte per split, each
/// minimal-pair set, the multiple-choice set, and — when a training shard is given — the
/// contamination split of every task.
/// </summary>
public static class EvalSuite
{
    /// <summary>
    /// Evaluates <paramref name="model"/> (with the <paramref name="tokenizer"/> its data was made
    /// with). <paramref name="log"/> receives one line per finished piece of work.
    /// </summary>
    public static EvalResults Run(Transformer model, ITokenizer tokenizer, EvalInputs inputs, EvalOptions options, string modelName,
        Action<string>? log = null)
    {
        var clock = Stopwatch.StartNew();
        if (tokenizer.VocabSize > model.Config.VocabSize)
            throw new ArgumentException($"The tokenizer {tokenizer.Name} has {tokenizer.VocabSize} ids, more than the model's vocabulary of {model.Config.VocabSize}.");
        if (!tokenizer.SpecialTokens.TryGetId(ChatTemplate.Bos, out int bos))
            throw new ArgumentException($"The tokenizer {tokenizer.Name} has no {ChatTemplate.Bos} token to start scored sequences with.");
        var scorer = new LogLikelihoodScorer(model, options.BatchTokens);

        var bpb = new List<BitsPerByteResult>();
        if (inputs.Data is { } data)
        {
            if (data.VocabSize > model.Config.VocabSize)
                throw new ArgumentException($"{data.Directory} was tokenized for {data.VocabSize} ids, more than the model's vocabulary of {model.Config.VocabSize}.");
            foreach (var s in new[] { Split.Train, Split.Validation, Split.Test })
            {
                var stats = data.Stats(s);
                if (stats.Tokens < 2) continue;
                using var shard = TokenShard.Open(data.ShardPath(s));
                var r = BitsPerByte.Evaluate(model, shard, SplitName(s), stats.Bytes, tokenizer, options.BitsPerByteTokens, batchTokens: options.BatchTokens);
                bpb.Add(r);
                log?.Invoke($"bits/byte {r.Split}: {r.BitsPerByte:F4} over {r.TokensScored:N0} tokens ({r.Fraction:P1} of the split)");
            }
        }

        IOverlapIndex? index = null;
        long contaminationNGrams = 0;
        using var store = inputs.ContaminationShard is { } indexDir && Directory.Exists(indexDir) ? Tessera.Data.NGram.NGramStore.Open(indexDir) : null;
        if (store is not null)
        {
            store.CheckTokenizer(Tessera.Data.NGram.TokenizerIdentity.Of(tokenizer));
            index = new StoreOverlapIndex(store, options.NGram);
            contaminationNGrams = store.TokenCount;
            log?.Invoke($"contamination index: the ∞-gram store {store.Directory} ({store.TokenCount:N0} training tokens, exact {options.NGram}-gram counts)");
        }
        else if (inputs.ContaminationShard is { } shardPath)
        {
            using var train = TokenShard.Open(shardPath);
            if (train.VocabSize > model.Config.VocabSize)
                throw new ArgumentException($"{shardPath} was tokenized for {train.VocabSize} ids, more than the model's vocabulary of {model.Config.VocabSize}.");
            var hashes = NGramIndex.Build([train], options.NGram, bos);
            index = hashes;
            contaminationNGrams = hashes.Count;
            log?.Invoke($"contamination index: {hashes.Count:N0} distinct {hashes.N}-grams from {hashes.TokensIndexed:N0} training tokens ({hashes.MemoryBytes / 1048576.0:F1} MiB)");
        }

        var pairs = new List<MinimalPairResult>();
        var contamination = new List<ContaminationResult>();
        foreach (var (name, set) in inputs.MinimalPairSets)
        {
            var r = MinimalPairs.Evaluate(scorer, tokenizer, bos, name, set);
            pairs.Add(r);
            log?.Invoke($"minimal pairs {name}: {r.Accuracy:P1} of {r.Pairs}");
            if (index is not null)
            {
                var flags = Contamination.Flag(index, tokenizer, Contamination.Texts(set), out int unchecked_);
                contamination.Add(Contamination.Report(name, index.N, flags, unchecked_, r.ItemCorrect, r.ItemGoodLogProb, "mean log p(good sentence)"));
            }
        }

        var mc = new List<MultipleChoiceResult>();
        if (inputs.MultipleChoiceSet is { } m)
        {
            var r = MultipleChoice.Evaluate(scorer, tokenizer, bos, m.Name, m.Items);
            mc.Add(r);
            log?.Invoke($"multiple choice {m.Name}: {r.AccuracyPerToken:P1} (per-token), {r.Accuracy:P1} (sum), {r.AccuracyPerByte:P1} (per-byte) of {r.Items}");
            if (index is not null)
            {
                var flags = Contamination.Flag(index, tokenizer, Contamination.Texts(m.Items), out int unchecked_);
                contamination.Add(Contamination.Report(m.Name, index.N, flags, unchecked_, r.ItemCorrect, r.ItemLabelLogProbPerToken, "mean log p per token of the right ending"));
            }
        }

        double mean = double.NaN;
        if (pairs.Count > 0)
        {
            mean = 0;
            foreach (var p in pairs) mean += p.Accuracy / pairs.Count;
        }
        return new EvalResults
        {
            Model = modelName, Tokenizer = tokenizer.Name, BitsPerByte = bpb, MinimalPairs = pairs, MinimalPairsMeanAccuracy = mean,
            MultipleChoice = mc, Contamination = contamination, ContaminationNGrams = contaminationNGrams, Seconds = clock.Elapsed.TotalSeconds,
        };
    }

    /// <summary>The name a split goes by in reports.</summary>
    public static string SplitName(Split s) => s switch { Split.Train => "train", Split.Validation => "val", _ => "test" };
}
