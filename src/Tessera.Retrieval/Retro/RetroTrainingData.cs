using System.Diagnostics;
using Tessera.Data;
using Tessera.Kernels.IO;
using Tessera.Retrieval.Sparse;
using Tessera.Text;

namespace Tessera.Retrieval.Retro;

/// <summary>Settings of <see cref="RetroTrainingData.Build"/>.</summary>
public sealed record RetroTrainingOptions
{
    /// <summary>Tokens per chunk (RETRO: 64).</summary>
    public int ChunkTokens { get; init; } = 64;
    /// <summary>Neighbours per example (0: the same examples without retrieval, the baseline).</summary>
    public int Neighbours { get; init; } = 1;
    /// <summary>How a neighbour is cut from its passage.</summary>
    public NeighbourWindow Window { get; init; } = NeighbourWindow.Aligned;
    /// <summary>At most this many training examples, a seeded random draw (0: every example).</summary>
    public int MaxTrainExamples { get; init; }
    /// <summary>At most this many validation examples, a seeded random draw.</summary>
    public int MaxValidationExamples { get; init; } = 160;
    /// <summary>Seed of the two draws.</summary>
    public ulong Seed { get; init; }

    /// <summary>Checks the ranges; returns this.</summary>
    public RetroTrainingOptions Validate()
    {
        if (ChunkTokens < 13) throw new ArgumentOutOfRangeException(nameof(ChunkTokens), ChunkTokens, "--retro-chunk: at least 13 tokens (the overlap measure's 13-grams).");
        if (Neighbours is < 0 or > 16) throw new ArgumentOutOfRangeException(nameof(Neighbours), Neighbours, "--neighbours: 0 to 16.");
        if (MaxTrainExamples < 0) throw new ArgumentOutOfRangeException(nameof(MaxTrainExamples), MaxTrainExamples, "--retro-examples: 0 (all) or more.");
        if (MaxValidationExamples < 1) throw new ArgumentOutOfRangeException(nameof(MaxValidationExamples), MaxValidationExamples, "at least one validation example.");
        return this;
    }
}

/// <summary>
/// What <see cref="RetroTrainingData.Build"/> made, written beside the shards as
/// <see cref="RetroTrainingData.SettingsFile"/>. The first block names the inputs and settings (a
/// later build with the same ones reuses the folder); the rest are counts.
/// </summary>
public sealed record RetroDataSummary
{
    /// <summary>Full path of the prepared data folder the examples came from.</summary>
    public string Source { get; init; } = "";
    /// <summary>Full path of the passage index searched.</summary>
    public string Index { get; init; } = "";
    /// <summary>The index's state when searched: passages, next key and shard generations.</summary>
    public string IndexState { get; init; } = "";
    /// <summary>Tokens per chunk.</summary>
    public int ChunkTokens { get; init; }
    /// <summary>Neighbours per example.</summary>
    public int Neighbours { get; init; }
    /// <summary>How a neighbour was cut from its passage: "aligned" or "start" (<see cref="NeighbourWindow"/>); a folder built before the choice existed reads "start".</summary>
    public string Window { get; init; } = "start";
    /// <summary>The training cap asked for (0: all).</summary>
    public int MaxTrainExamples { get; init; }
    /// <summary>The validation cap asked for.</summary>
    public int MaxValidationExamples { get; init; }
    /// <summary>Seed of the draws.</summary>
    public ulong Seed { get; init; }
    /// <summary>
    /// The folder's layout: 3 = aligned neighbours are reranked by their shared 4-grams with chunk u;
    /// 2 = validation rows score chunk u+1 only (both seventeenth session); a folder without it scored
    /// chunks u and u+1. A folder of another version is rebuilt rather than reused.
    /// </summary>
    public int Version { get; init; }

    /// <summary>Training rows written.</summary>
    public int TrainExamples { get; init; }
    /// <summary>Validation rows written.</summary>
    public int ValidationExamples { get; init; }
    /// <summary>Tokens a row feeds the model: <see cref="RetroLayout.SequenceLength"/>.</summary>
    public int SequenceLength { get; init; }
    /// <summary>How neighbours were kept from the example's own and held-out documents: "document ids", "text" (<see cref="PassageNeighbours"/>), or "none" without neighbours.</summary>
    public string ExclusionRule { get; init; } = "";
    /// <summary>Share of the training documents' keys found among the index's document ids (the id rule needs 99%).</summary>
    public double IdCoverage { get; init; }
    /// <summary>BM25 searches run (deeper repeats included).</summary>
    public long Searches { get; init; }
    /// <summary>Milliseconds per example's search, tokenizing the hits included.</summary>
    public double MsPerExample { get; init; }
    /// <summary>Neighbour slots left as filler (no usable passage found).</summary>
    public long FillerSlots { get; init; }
    /// <summary>Hits passed over as the example's own document (by id, or at least half of the 13-grams read are its text).</summary>
    public long SkippedOwnText { get; init; }
    /// <summary>Hits passed over as validation or test documents (by id, or at least half of the 13-grams read are their text).</summary>
    public long SkippedHeldOutText { get; init; }
    /// <summary>Hits passed over because they are shorter than 13 tokens.</summary>
    public long SkippedShort { get; init; }
    /// <summary>UTF-8 bytes of the validation rows' scored tokens, chunk u+1 (bits per byte divides by these).</summary>
    public long ValidationScoredBytes { get; init; }
    /// <summary>RETRO's leakage measure on the validation rows: mean 13-gram overlap of chunk u+1 with its neighbours.</summary>
    public double ValidationOverlapMean { get; init; }
    /// <summary>Share of validation rows whose chunk u+1 has a 13-gram overlap above 0.5 with its neighbours.</summary>
    public double ValidationOverlapOverHalf { get; init; }

    /// <summary>True when <paramref name="other"/> was built from the same inputs with the same settings.</summary>
    public bool SameInputs(RetroDataSummary other)
        => Version == other.Version && Source == other.Source && Index == other.Index && IndexState == other.IndexState && ChunkTokens == other.ChunkTokens && Neighbours == other.Neighbours && Window == other.Window
           && MaxTrainExamples == other.MaxTrainExamples && MaxValidationExamples == other.MaxValidationExamples && Seed == other.Seed;
}

/// <summary>
/// RETRO-style training data from a prepared data folder and a passage index
/// (<c>tessera index build</c>): every example is a training document's chunks u−1, u, u+1 (of
/// <see cref="RetroTrainingOptions.ChunkTokens"/> tokens), and its neighbours are the BM25 passages
/// best matching chunk u, each cut or padded to a chunk and its continuation (<c>2C</c> tokens) and
/// laid out first (<see cref="RetroLayout"/>). No neighbour comes from the example's own document
/// or from a validation or test document: by document id when the data's keys are the index's ids,
/// else by text (the two rules of <see cref="PassageNeighbours"/>).
/// </summary>
public static class RetroTrainingData
{
    /// <summary>The summary file in the output folder.</summary>
    public const string SettingsFile = "retro.json";
    /// <summary>The layout <see cref="RetroDataSummary.Version"/> this build writes.</summary>
    public const int CurrentVersion = 3;
    const long ProgressEveryMs = 30_000;

    /// <summary>The summary of a built folder, or null when it has none (or an unreadable one).</summary>
    public static RetroDataSummary? ReadSummary(string folder)
    {
        string path = Path.Combine(folder, SettingsFile);
        if (!File.Exists(path) || !File.Exists(Path.Combine(folder, PreparedData.MetaFile))) return null;
        try { return JsonNaming.Deserialize<RetroDataSummary>(File.ReadAllText(path)); }
        catch (System.Text.Json.JsonException) { return null; }
    }

    /// <summary>The inputs-and-settings part of a summary for these arguments (what a reuse compares).</summary>
    public static RetroDataSummary Settings(PreparedData source, string indexFolder, RetroTrainingOptions options)
    {
        var m = IndexManifest.Load(indexFolder);
        return new RetroDataSummary
        {
            Version = CurrentVersion, Source = Path.GetFullPath(source.Directory), Index = Path.GetFullPath(indexFolder),
            IndexState = $"{m.Passages}:{m.NextKey}:{string.Join(',', m.ShardGenerations)}",
            ChunkTokens = options.ChunkTokens, Neighbours = options.Neighbours, Window = NeighbourWindows.Name(options.Window), MaxTrainExamples = options.MaxTrainExamples,
            MaxValidationExamples = options.MaxValidationExamples, Seed = options.Seed,
        };
    }

    /// <summary>
    /// Builds the RETRO-layout prepared folder <paramref name="outDir"/> (train.bin, val.bin, an empty
    /// test.bin, their loss masks, meta.json, <see cref="SettingsFile"/>) from the train and validation
    /// splits of <paramref name="source"/>, searching <paramref name="indexFolder"/>. A folder already
    /// built from the same inputs and settings is reused as it is. The folder is published whole, so a
    /// stopped build leaves the previous one intact. <paramref name="log"/> gets a line every 30 s
    /// while searching.
    /// </summary>
    public static (PreparedData Data, RetroDataSummary Summary) Build(PreparedData source, string indexFolder, ITokenizer tokenizer,
        RetroTrainingOptions options, string outDir, Action<string>? log = null, CancellationToken cancel = default)
    {
        options.Validate();
        if (tokenizer.VocabSize != source.VocabSize)
            throw new ArgumentException($"{source.Directory}: prepared with {source.VocabSize} token ids, the tokenizer has {tokenizer.VocabSize}.");
        var settings = Settings(source, indexFolder, options);
        if (ReadSummary(outDir) is { } old && old.SameInputs(settings))
        {
            log?.Invoke($"retrieval data: reusing {outDir} ({old.TrainExamples:N0} training and {old.ValidationExamples:N0} validation examples)");
            return (PreparedData.Load(outDir), old);
        }
        int C = options.ChunkTokens, k = options.Neighbours, bos = source.BosId;
        using var train = TokenShard.Open(source.ShardPath(Split.Train));
        using var validation = TokenShard.Open(source.ShardPath(Split.Validation));
        using var test = File.Exists(source.ShardPath(Split.Test)) ? TokenShard.Open(source.ShardPath(Split.Test)) : null;
        var trainDocs = Documents(train, bos);
        var valDocs = Documents(validation, bos);

        var rng = RetroLayout.Seeded(options.Seed);
        var trainExamples = RetroLayout.Examples(trainDocs, C, options.MaxTrainExamples, rng, "training");
        var valExamples = RetroLayout.Examples(valDocs, C, options.MaxValidationExamples, rng, "validation");
        log?.Invoke($"retrieval data: {trainExamples.Count:N0} training and {valExamples.Count:N0} validation examples of 3 chunks of {C} tokens, " +
            (k == 0 ? "no neighbours (the baseline layout)" : $"{k} neighbour(s) each from {settings.Index}"));

        using var index = k > 0 ? Bm25Index.Open(indexFolder) : null;
        // The id rule when the data's document keys are the index's document ids (data prepare and index
        // build over the same folder), else the text rule; either way no neighbour comes from the example's
        // own document or from validation or test documents.
        var keys = source.AllKeys();
        var trainKeys = keys.GetValueOrDefault(Split.Train);
        var valKeys = keys.GetValueOrDefault(Split.Validation);
        var testKeys = test is null ? [] : keys.GetValueOrDefault(Split.Test);
        double coverage = index is not null && trainKeys is not null && valKeys is not null && testKeys is not null ? PassageNeighbours.IdsMatch(index, trainKeys) : 0;
        bool byId = coverage >= PassageNeighbours.IdCoverageNeeded;
        PassageNeighbours? neighbours = index is null ? null : byId
            ? new PassageNeighbours(index, tokenizer, C, k, bos, new HashSet<string>([.. valKeys!, .. testKeys!], StringComparer.Ordinal)) { Window = options.Window }
            : new PassageNeighbours(index, tokenizer, C, k, bos, TextGrams.Of(test is null ? valDocs : [.. valDocs, .. Documents(test, bos)])) { Window = options.Window };
        if (index is not null)
            log?.Invoke(byId ? $"retrieval data: other documents by id ({coverage:P1} of the training documents' keys are index document ids)"
                : $"retrieval data: other documents by text (a neighbour half of whose 13-grams are the document's own or held-out text is passed over); " +
                  (trainKeys is null ? "the data folder lists no document keys" : $"only {coverage:P1} of its training keys are index document ids"));
        var search = new Searcher(neighbours, C, k, log, cancel);
        var clock = Stopwatch.StartNew();
        var trainRows = search.Rows(trainDocs, trainKeys, trainExamples, "training", trainExamples.Count + valExamples.Count, 0);
        var valNeighbours = new List<int[][]>(valExamples.Count);
        var valRows = search.Rows(valDocs, valKeys, valExamples, "validation", trainExamples.Count + valExamples.Count, trainExamples.Count, valNeighbours);
        double msPerExample = clock.Elapsed.TotalMilliseconds / Math.Max(1, trainExamples.Count + valExamples.Count);

        long valBytes = 0;
        var overlaps = new double[valExamples.Count];
        for (int i = 0; i < valExamples.Count; i++)
        {
            var (d, u) = valExamples[i];
            valBytes += tokenizer.DecodeBytes(valDocs[d].AsSpan((u + 1) * C, C)).Length;
            overlaps[i] = k == 0 ? 0 : RetroChunkIndex.NGramOverlap(valDocs[d].AsSpan((u + 1) * C, C), valNeighbours[i], TextGrams.N);
        }
        var summary = settings with
        {
            TrainExamples = trainRows.Count, ValidationExamples = valRows.Count, SequenceLength = RetroLayout.SequenceLength(C, k),
            ExclusionRule = k == 0 ? "none" : byId ? "document ids" : "text", IdCoverage = coverage,
            Searches = neighbours?.Searches ?? 0, MsPerExample = msPerExample, FillerSlots = neighbours?.FillerSlots ?? 0, SkippedOwnText = neighbours?.SkippedOwnText ?? 0,
            SkippedHeldOutText = neighbours?.SkippedHeldOutText ?? 0, SkippedShort = neighbours?.SkippedShort ?? 0, ValidationScoredBytes = valBytes,
            ValidationOverlapMean = overlaps.Length == 0 ? 0 : overlaps.Average(), ValidationOverlapOverHalf = overlaps.Length == 0 ? 0 : overlaps.Count(o => o > 0.5) / (double)overlaps.Length,
        };
        long trainBytes = 0;
        foreach (var (d, u) in trainExamples) trainBytes += tokenizer.DecodeBytes(trainDocs[d].AsSpan(u * C, 2 * C)).Length;
        long rowTokens = summary.SequenceLength + 1L;
        PreparedData? result = null;
        cancel.ThrowIfCancellationRequested();
        AtomicFile.PublishDirectory(outDir, staging =>
        {
            RetroLayout.WriteShard(Path.Combine(staging, ShardBuilder.FileName(Split.Train)), trainRows, RetroLayout.TrainedTokens(C), source.VocabSize, bos);
            RetroLayout.WriteShard(Path.Combine(staging, ShardBuilder.FileName(Split.Validation)), valRows, RetroLayout.ScoredTokens(C), source.VocabSize, bos);
            TokenShard.Write(Path.Combine(staging, ShardBuilder.FileName(Split.Test)), [], source.VocabSize, bos);
            string recorded = ShardBuilder.KeepTokenizer(source.TokenizerPath(), staging);
            result = new PreparedData(outDir, recorded, source.VocabSize, bos,
                new SplitStats(trainRows.Count, trainRows.Count * rowTokens, trainBytes),
                new SplitStats(valRows.Count, valRows.Count * rowTokens, valBytes), new SplitStats(0, 0, 0));
            AtomicFile.WriteAllText(Path.Combine(staging, SettingsFile), JsonNaming.Serialize(summary));
            AtomicFile.WriteAllText(Path.Combine(staging, PreparedData.MetaFile), JsonNaming.Serialize(result with { Directory = "." }));
        });
        return (result!, summary);
    }

    /// <summary>A shard's documents without their leading BOS.</summary>
    static List<int[]> Documents(TokenShard shard, int bos)
    {
        var docs = new List<int[]>(shard.DocumentCount);
        for (int i = 0; i < shard.DocumentCount; i++)
        {
            var d = shard.ReadDocument(i);
            docs.Add(d.Length > 0 && d[0] == bos ? d[1..] : d);
        }
        return docs;
    }

    /// <summary>The rows of one build: each example's neighbours (its rule and counters are <see cref="PassageNeighbours"/>'s) and the progress lines.</summary>
    sealed class Searcher(PassageNeighbours? search, int C, int k, Action<string>? log, CancellationToken cancel)
    {
        readonly Stopwatch clock = Stopwatch.StartNew();
        long nextReport = ProgressEveryMs;

        public List<int[]> Rows(List<int[]> docs, IReadOnlyList<string>? keys, List<(int Doc, int U)> examples, string side, int total, int doneBefore, List<int[][]>? neighboursOut = null)
        {
            var rows = new List<int[]>(examples.Count);
            TextGrams? own = null;
            int ownDoc = -1;
            for (int i = 0; i < examples.Count; i++)
            {
                cancel.ThrowIfCancellationRequested();
                var (d, u) = examples[i];
                int[][] neighbours = [];
                if (k > 0)
                {
                    if (d != ownDoc) { own = search!.ByDocumentId ? null : TextGrams.Of([docs[d]]); ownDoc = d; }
                    neighbours = search!.Search(docs[d].AsSpan(u * C, C), keys?[d], own);
                }
                neighboursOut?.Add(neighbours);
                rows.Add(RetroLayout.Row(docs[d], u, C, k == 0 ? null : neighbours));
                int done = doneBefore + i + 1;
                if (log is not null && done < total && clock.ElapsedMilliseconds >= nextReport)
                {
                    nextReport += ProgressEveryMs;
                    double s = clock.Elapsed.TotalSeconds;
                    log($"  searching {side} neighbours: {done:N0} of {total:N0} examples ({1000 * s / done:F1} ms each, about {(total - done) * s / done:F0} s left)");
                }
            }
            return rows;
        }
    }
}
