using System.Diagnostics;
using System.Text;
using System.CommandLine;
using Tessera.Data;
using Tessera.Kernels.IO;
using Tessera.Model;
using Tessera.Retrieval.Retro;
using Tessera.Tensors;
using Tessera.Text;
using Tessera.Training;
using Tessera.Training.Experiments;

namespace Tessera.Cli.Commands;

/// <summary>One model size of the RETRO experiment (dense llama block).</summary>
internal sealed record RetroSize(string Name, int Dim, int Layers, int Heads, int Hidden);

/// <summary>
/// The RETRO experiment's settings. Every example is four chunks of one held-in or held-out
/// document: the model reads chunk u−1 and u, and is scored on chunk u+1; with retrieval, the
/// <see cref="Neighbours"/> neighbours of chunk u (each a chunk plus its continuation, from other
/// documents) come first in the context.
/// </summary>
internal sealed record RetroPlan(int VocabSize, int ChunkTokens, int Neighbours, int TrainPairs, int EvalPairs, int Steps, int Batch, float LearningRate,
    int MaxDocuments, RetroSize[] Sizes, string[] RetrievalSizes, ulong Seed = 1)
{
    /// <summary>When set, State of the Union addresses after this year are left out entirely (the corpus swap's training side).</summary>
    public int? Cutoff { get; init; }
    /// <summary>
    /// Fraction of retrieval examples whose neighbour is replaced by a window of the example's own text
    /// around chunks u and u+1, at a random shift of less than a chunk ("reading practice": the answer
    /// is in the context, so the model learns to copy from it). 0 for
    /// the bits-per-byte claim, where a neighbour must never be the chunk's own text.
    /// </summary>
    public double ReadingPractice { get; init; }
    /// <summary>Train only the retrieval runs (the corpus swap needs one model; its no-index score is the same weights without the index).</summary>
    public bool RetrievalOnly { get; init; }
    /// <summary>
    /// Training neighbours are random chunks (with continuation) of other documents instead of BM25
    /// hits: with <see cref="ReadingPractice"/> the model learns to copy from a passage that holds its
    /// text and to ignore one that does not, without the cost of searching. Held-out neighbours are still searched.
    /// </summary>
    public bool RandomNeighbours { get; init; }
    /// <summary>
    /// Fraction of reading-practice examples whose digit tokens (neighbour and chunks alike) go through one
    /// random bijection among digit tokens of the same length (<see cref="NumberScramble"/>): the copy
    /// from the neighbour predicts them, the model's prior over numbers does not. Drawn from a random
    /// stream of its own, so the examples and windows are those of the same plan without it.
    /// </summary>
    public double ScrambleNumbers { get; init; }
    /// <summary>
    /// Fraction of training examples replaced by examples whose scored chunks (u and u+1) hold a number
    /// token (drawn from a random stream of its own), so copy practice meets digits more often.
    /// </summary>
    public double NumberRich { get; init; }
    /// <summary>
    /// The database also holds each document's own earlier text: chunk u's neighbours may come from
    /// its own document's chunks that end at or before the start of chunk u−1 (never the example's
    /// context or what follows it), and the held-out documents are indexed for their own queries only
    /// (<see cref="RetroDocument.HeldOut"/>): a training query never sees held-out text, a held-out
    /// query sees the training documents and its own past.
    /// </summary>
    public bool OwnPast { get; init; }
    /// <summary>
    /// Training neighbours are searched with the scored chunk u+1 instead of chunk u (still other
    /// documents only, never the own target): copy practice, since a neighbour then holds the text the
    /// model is scored on whenever another document does. Held-out neighbours are always searched with
    /// chunk u, so evaluation stays causal.
    /// </summary>
    public bool TrainQueryTarget { get; init; }
    /// <summary>
    /// The mail corpus folder (<c>--corpus mail[:DIR]</c>): the SpamAssassin ham messages, one document
    /// each (<see cref="RetroCorpus.ReadMail"/>); null for the embedded corpus (SOTU + Moby-Dick).
    /// </summary>
    public string? MailFolder { get; init; }

    /// <summary>Minutes on the 2-core machine: three sizes without retrieval, two with.</summary>
    public static RetroPlan Full => new(1024, 64, 1, 9600, 400, 600, 16, 3e-3f, 0,
        [new("S", 64, 2, 4, 192), new("M", 96, 3, 4, 256), new("L", 128, 4, 4, 384)], ["S", "M"]);

    /// <summary>The pipeline end to end in seconds (CI): byte tokens, a few documents, a few steps.</summary>
    public static RetroPlan Quick => new(0, 16, 1, 96, 24, 12, 8, 3e-3f, 24,
        [new("S", 16, 1, 2, 32), new("M", 24, 1, 2, 48)], ["S"]);
}

/// <summary>One trained model's held-out scores.</summary>
internal sealed record RetroRun(string Name, string Size, bool Retrieval, long Parameters, int SequenceLength, long TrainTokens, double TrainSeconds,
    double FinalTrainLoss, double HeldOutBpb, double HeldOutBpbZeroOverlap, double? HeldOutBpbShuffledNeighbours)
{
    /// <summary>Held-out bpb over the chunks of each 13-gram overlap bucket (<see cref="RetroLab.OverlapBuckets"/>; null where a bucket is empty; absent in runs cached before it existed).</summary>
    public double?[]? HeldOutBpbByOverlap { get; init; }
}

/// <summary>
/// <c>tessera lab retro</c>: RETRO-style retrieval-augmented training at our scale. Tokenizes the
/// embedded corpus (documents: SOTU addresses and Moby-Dick chapters; a fixed document split holds
/// some out), indexes the training documents' 64-token chunks in BM25 (<see cref="RetroChunkIndex"/>),
/// and trains the same architecture at several sizes on the same target tokens with and without the
/// retrieved neighbours in context. Reports held-out bits per byte, the 13-gram overlap between
/// every evaluated chunk and its neighbours, the bpb over the chunks with no overlap, and a plot.
/// </summary>
internal static class RetroLab
{
    /// <summary>The <c>tessera lab retro</c> command.</summary>
    public static Command Create()
    {
        var output = new Option<string>("--out") { Description = "Lab folder (results.json, report.md, retro-bpb.svg; runs/ caches each trained size).", DefaultValueFactory = _ => "runs/lab-retro" };
        var quick = new Option<bool>("--quick") { Description = "Byte tokens, a few documents and steps: the pipeline in under a minute (CI), not the science." };
        var steps = new Option<int?>("--steps") { Description = "Optimizer steps of every run (default: the plan's)." };
        var pairs = new Option<int?>("--train-pairs") { Description = "Training examples (chunk triples) of every run (default: steps × batch)." };
        var evalPairs = new Option<int?>("--eval-pairs") { Description = "Held-out chunks scored." };
        var cutoff = new Option<int?>("--cutoff") { Description = "Leave out State of the Union addresses after this year (train the corpus swap's model, docs/retrieval.md)." };
        var practice = new Option<double>("--reading-practice") { Description = "Fraction of retrieval examples whose neighbour is their own text (teaches copying; never for the bpb claim).", DefaultValueFactory = _ => 0 };
        var sizes = new Option<string?>("--sizes") { Description = "Comma-separated size names to train (default all: S,M,L)." };
        var scramble = new Option<double>("--scramble-numbers") { Description = "Fraction of reading-practice examples whose numbers are scrambled the same way in neighbour and text (copy practice for digits).", DefaultValueFactory = _ => 0 };
        var numberRich = new Option<double>("--number-rich") { Description = "Fraction of training examples drawn from those whose scored chunks hold a number.", DefaultValueFactory = _ => 0 };
        var trainQuery = new Option<string>("--train-query") { Description = "What training neighbours are searched with: chunk (chunk u, as held-out ones) or target (the scored chunk u+1; other documents only, copy practice).", DefaultValueFactory = _ => "chunk" };
        var randomNeighbours = new Option<bool>("--random-neighbours") { Description = "Training neighbours are random chunks of other documents, not BM25 hits (with --reading-practice: a model that learns to read, cheaply)." };
        var retrievalOnly = new Option<bool>("--retrieval-only") { Description = "Train only the runs with retrieval." };
        var retrievalSizes = new Option<string?>("--retrieval-sizes") { Description = "Sizes also trained with retrieval (default S,M)." };
        var ownPast = new Option<bool>("--own-past") { Description = "The database also holds each document's own text before the example's context (held-out documents for their own queries only)." };
        var neighbours = new Option<int?>("--neighbours") { Description = "Neighbours per chunk, k (default: the plan's, 1)." };
        var corpus = new Option<string>("--corpus")
        {
            Description = "embedded (SOTU + Moby-Dick, the default) or mail[:DIR]: the SpamAssassin ham, one message per document (DIR default ${TESSERA_DATA:-~/.cache/tessera-data}/spam-assassin, from data/fetch_mail.sh).",
            DefaultValueFactory = _ => "embedded",
        };
        var json = BenchCommand.JsonOption();
        var cmd = new Command("retro", "RETRO-style retrieval-augmented training: held-out bpb vs parameters with and without retrieved neighbours, 13-gram leakage report.")
            { output, quick, steps, pairs, evalPairs, cutoff, practice, sizes, retrievalSizes, retrievalOnly, randomNeighbours, scramble, numberRich, ownPast, trainQuery, neighbours, corpus, json };
        cmd.SetAction((p, cancel) =>
        {
            var plan = p.GetValue(quick) ? RetroPlan.Quick : RetroPlan.Full;
            if (p.GetValue(steps) is { } s) plan = plan with { Steps = s, TrainPairs = s * plan.Batch };
            if (p.GetValue(pairs) is { } tp) plan = plan with { TrainPairs = tp };
            if (p.GetValue(evalPairs) is { } ep) plan = plan with { EvalPairs = ep };
            if (p.GetValue(neighbours) is { } k) plan = k is >= 1 and <= 8 ? plan with { Neighbours = k } : throw new ArgumentException($"--neighbours: {k}; give 1 to 8 neighbours per chunk.");
            plan = plan with { Cutoff = p.GetValue(cutoff), ReadingPractice = p.GetValue(practice), RetrievalOnly = p.GetValue(retrievalOnly), RandomNeighbours = p.GetValue(randomNeighbours), ScrambleNumbers = p.GetValue(scramble), NumberRich = p.GetValue(numberRich), OwnPast = p.GetValue(ownPast),
                TrainQueryTarget = p.GetValue(trainQuery) switch { "chunk" => false, "target" => true, var q => throw new ArgumentException($"--train-query: '{q}'; give chunk or target.") } };
            if (plan.TrainQueryTarget && (plan.OwnPast || plan.RandomNeighbours)) throw new ArgumentException("--train-query target searches other documents with the scored chunk; it does not combine with --own-past or --random-neighbours.");
            if (plan.ScrambleNumbers is < 0 or > 1 || plan.ReadingPractice is < 0 or > 1 || plan.NumberRich is < 0 or > 1) throw new ArgumentException("--reading-practice, --scramble-numbers and --number-rich are fractions between 0 and 1.");
            string corpusName = p.GetValue(corpus)!;
            if (corpusName == "mail" || corpusName.StartsWith("mail:", StringComparison.Ordinal))
                plan = plan with { MailFolder = corpusName.Length > 5 ? corpusName[5..] : Tessera.Retrieval.Mail.MailCorpus.DefaultFolder };
            else if (corpusName != "embedded") throw new ArgumentException($"--corpus: '{corpusName}'; give embedded or mail[:DIR].");
            if (plan.MailFolder is not null && (plan.Cutoff is not null || plan.NumberRich > 0 || plan.ScrambleNumbers > 0))
                throw new ArgumentException("--cutoff, --number-rich and --scramble-numbers belong to the embedded corpus's swap experiments, not to --corpus mail.");
            if (plan.OwnPast && plan.RandomNeighbours) throw new ArgumentException("--own-past is a database for searched neighbours; --random-neighbours does not search.");
            if (plan.ScrambleNumbers > 0 && plan.ReadingPractice == 0) throw new ArgumentException("--scramble-numbers acts on reading-practice examples: give --reading-practice too.");
            if (p.GetValue(sizes) is { } names)
            {
                var keep = names.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
                foreach (var n in keep)
                    if (!plan.Sizes.Any(z => z.Name == n)) throw new ArgumentException($"--sizes: unknown size '{n}'; the plan has {string.Join(", ", plan.Sizes.Select(z => z.Name))}.");
                plan = plan with { Sizes = [.. plan.Sizes.Where(z => keep.Contains(z.Name))] };
            }
            if (p.GetValue(retrievalSizes) is { } rs) plan = plan with { RetrievalSizes = rs.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries) };
            string outDir = p.GetValue(output)!;
            if (p.GetValue(quick) && p.GetResult(output) is null or { Implicit: true }) outDir += "-quick";
            bool quiet = p.GetValue(json);
            var result = Run(plan, outDir, s => { if (!quiet) Console.WriteLine(s); }, cancel);
            if (quiet) Console.WriteLine(JsonNaming.SerializeObject(result, indented: false));
            else Console.WriteLine($"→ {Path.Combine(outDir, ExperimentReport.MarkdownFile)}");
            return Task.FromResult(0);
        });
        return cmd;
    }

    /// <summary>The 13-gram overlap buckets of the leakage breakdown: zero, (0, 0.2], (0.2, 0.5], (0.5, 1].</summary>
    public static IReadOnlyList<string> OverlapBuckets { get; } = ["0", "(0, 0.2]", "(0.2, 0.5]", "(0.5, 1]"];

    static int OverlapBucket(double overlap) => overlap == 0 ? 0 : overlap <= 0.2 ? 1 : overlap <= 0.5 ? 2 : 3;

    /// <summary>
    /// A lab folder holds one corpus: its tokenizer, neighbour caches and runs belong to it. The
    /// first run writes corpus.txt; a later run on another corpus is refused (a folder from before
    /// the file existed is the embedded corpus's).
    /// </summary>
    static void CheckCorpus(string outDir, string tag)
    {
        string path = Path.Combine(outDir, "corpus.txt");
        string? had = File.Exists(path) ? File.ReadAllText(path).Trim()
            : Directory.Exists(Path.Combine(outDir, "tokenizer")) || Directory.Exists(Path.Combine(outDir, "runs")) ? "embedded" : null;
        if (had is not null && had != tag)
            throw new ArgumentException($"{outDir}: this lab folder holds a run on the {had} corpus; give another --out for --corpus {tag}.");
        if (!File.Exists(path)) AtomicFile.WriteAllText(path, tag + "\n");
    }

    /// <summary>How often the neighbour search reports progress.</summary>
    const long ProgressEveryMs = 30_000;

    public static object Run(RetroPlan plan, string outDir, Action<string> log, CancellationToken cancel)
    {
        Directory.CreateDirectory(outDir);
        var clock = Stopwatch.StartNew();
        int C = plan.ChunkTokens;
        IReadOnlyList<CorpusDocument> all;
        MailCorpusCounts? mailCounts = null;
        Dictionary<string, DateTimeOffset>? mailDates = null;
        if (plan.MailFolder is { } mailDir)
        {
            mailDates = new Dictionary<string, DateTimeOffset>(StringComparer.Ordinal);
            all = RetroCorpus.ReadMail(mailDir, RetroCorpus.MailGroups, out var counts, mailDates);
            mailCounts = counts;
            log($"mail corpus {mailDir} ({string.Join(", ", RetroCorpus.MailGroups)}): {counts.Messages:N0} messages, {counts.Kept:N0} documents kept " +
                $"({counts.Empty} with an empty text body, {counts.Duplicates} duplicates of an earlier message dropped)");
        }
        else
        {
            all = EmbeddedCorpus.Read();
            if (plan.Cutoff is { } cut) all = [.. all.Where(d => YearOf(d.Key) is not { } y || y <= cut)];
        }
        string corpusTag = plan.MailFolder is null ? "embedded" : "mail";
        CheckCorpus(outDir, corpusTag);
        var (train, heldOut) = RetroCorpus.Split(all, plan.Seed);
        if (plan.MaxDocuments > 0) { train = train.Take(plan.MaxDocuments).ToList(); heldOut = heldOut.Take(Math.Max(2, plan.MaxDocuments / 4)).ToList(); }

        // Tokenizer: bytes for the quick plan, else a BPE fitted on the training documents only (cached).
        ITokenizer tok;
        string tokDir = Path.Combine(outDir, "tokenizer");
        if (plan.VocabSize == 0) tok = TokenizerFiles.Load("bytes");
        else if (File.Exists(Path.Combine(tokDir, TokenizerFiles.ConfigFile)) && TokenizerFiles.Load(tokDir) is { } cached && cached.VocabSize == plan.VocabSize) tok = cached;
        else
        {
            var bpe = BpeTrainer.Train(train.Select(d => d.Text), new BpeTrainerOptions(plan.VocabSize), out _);
            TokenizerFiles.Save(bpe, tokDir);
            tok = TokenizerFiles.Load(tokDir);
        }
        int bos = tok.SpecialTokens.Id(ChatTemplate.Bos);
        var trainDocs = train.Select(d => new RetroDocument(d.Key, [.. tok.Encode(d.Text)])).ToList();
        var heldDocs = heldOut.Select(d => new RetroDocument(d.Key, [.. tok.Encode(d.Text)]) { HeldOut = true }).ToList();
        log($"{trainDocs.Count} training documents ({trainDocs.Sum(d => (long)d.Tokens.Length):N0} tokens, {trainDocs.Sum(d => Math.Max(0L, d.Tokens.Length / C - 2)):N0} examples of 3 chunks), {heldDocs.Count} held out ({heldDocs.Sum(d => (long)d.Tokens.Length):N0}); tokenizer {tok.Name} ({tok.VocabSize} ids) [{clock.Elapsed.TotalSeconds:F0} s]");

        string indexDir = Path.Combine(outDir, "index");
        if (Directory.Exists(indexDir)) Directory.Delete(indexDir, recursive: true);
        // With --own-past the held-out documents are indexed too, each visible to its own queries only.
        using var index = RetroChunkIndex.Build(indexDir, plan.OwnPast ? [.. trainDocs, .. heldDocs] : trainDocs, tok, C, shards: 4);
        log($"index: {index.Chunks:N0} chunks of {C} tokens{(plan.OwnPast ? " (training documents, and held-out documents for their own past only)" : "")} [{clock.Elapsed.TotalSeconds:F0} s]");

        var rng = new Random((int)plan.Seed);
        var trainPairs = Pairs(trainDocs, C, plan.TrainPairs, rng);
        var evalPairs = Pairs(heldDocs, C, plan.EvalPairs, rng);
        int numberRichDrawn = 0, scrambled = 0;
        var numbers = plan.NumberRich > 0 || plan.ScrambleNumbers > 0 ? new NumberScramble(tok) : null;   // the vocabulary's digit tokens, found once
        if (plan.NumberRich > 0)
        {
            var nrng = new Random(unchecked((int)plan.Seed * 7919 + 29));
            var pool = Pairs(trainDocs, C, int.MaxValue, nrng).Where(p => numbers!.Touches(p.Doc.Tokens.AsSpan(p.U * C, 2 * C))).ToList();
            for (int i = 0; i < trainPairs.Count && pool.Count > 0; i++)
                if (nrng.NextDouble() < plan.NumberRich) trainPairs[i] = pool[numberRichDrawn++ % pool.Count];
            log($"number-rich: {numberRichDrawn:N0} of {trainPairs.Count:N0} training examples drawn from the {pool.Count:N0} whose scored chunks hold a number");
        }
        var retrieveClock = Stopwatch.StartNew();
        // Neighbours are cached per plan (retrieval is the slow part of a rerun that adds sizes); the
        // training side is only searched when some run still has to train with retrieval.
        string Cache(string side, int n) => Path.Combine(outDir, $"neighbours-{side}-c{C}-k{plan.Neighbours}-n{n}-s{plan.Seed}-y{plan.Cutoff}{(plan.OwnPast ? "-own" : "")}{(plan.MailFolder is null ? "" : "-mail")}{(side == "train" && plan.TrainQueryTarget ? "-qt" : "")}.bin");
        int searched = 0;
        var ownShare = new Dictionary<string, double>();   // side → share of neighbours taken from the querying document
        var heldOutIds = heldDocs.Select(d => d.Id).ToHashSet(StringComparer.Ordinal);
        var heldOutHits = new Dictionary<string, long>();   // side → neighbours from another document that is held out (must be 0), when searched in this process
        var sourceIds = new Dictionary<string, string?[][]>();   // side → each pair's neighbours' document ids (when searched, or cached with them)
        List<int[][]> Retrieve(List<Pair> pairs, string side)
        {
            string path = Cache(side, pairs.Count), ownPath = path + ".own.json", idsPath = path + ".ids.json";
            if (File.Exists(path) && File.Exists(ownPath))
            {
                ownShare[side] = JsonNaming.Deserialize<double>(File.ReadAllText(ownPath));
                if (File.Exists(idsPath)) sourceIds[side] = JsonNaming.Deserialize<string?[][]>(File.ReadAllText(idsPath))!;
                return ReadNeighbours(path);
            }
            searched += pairs.Count;
            long own = 0, held = 0;
            var ids = new List<string?[]>(pairs.Count);
            // Progress every 30 s: the training side is one search per example (37,341 on the mail corpus: 17 minutes).
            var searchClock = Stopwatch.StartNew();
            long nextReport = ProgressEveryMs;
            int done = 0;
            var found = pairs.Select(p =>
            {
                cancel.ThrowIfCancellationRequested();
                int query = side == "train" && plan.TrainQueryTarget ? p.U + 1 : p.U;
                var hits = index.Search(p.Doc.Tokens.AsSpan(query * C, C), p.Doc.Id, p.U, plan.Neighbours, bos, plan.OwnPast);
                if (++done < pairs.Count && searchClock.ElapsedMilliseconds >= nextReport)
                {
                    nextReport += ProgressEveryMs;
                    double seconds = searchClock.Elapsed.TotalSeconds;
                    log($"  searching {side} neighbours: {done:N0} of {pairs.Count:N0} ({1000 * seconds / done:F1} ms per query, about {(pairs.Count - done) * seconds / done:F0} s left)");
                }
                own += hits.Count(h => h.DocumentId == p.Doc.Id);
                held += hits.Count(h => h.DocumentId is { } id && id != p.Doc.Id && heldOutIds.Contains(id));
                ids.Add([.. hits.Select(h => h.DocumentId)]);
                return hits.Select(h => h.Tokens).ToArray();
            }).ToList();
            ownShare[side] = own / (double)Math.Max(1, (long)pairs.Count * plan.Neighbours);
            heldOutHits[side] = held;
            WriteNeighbours(path, found);
            sourceIds[side] = [.. ids];
            if (side == "eval") AtomicFile.WriteAllText(idsPath, JsonNaming.Serialize(sourceIds[side]));   // the held-out side only: small
            AtomicFile.WriteAllText(ownPath, JsonNaming.Serialize(ownShare[side]));
            return found;
        }
        bool Cached(string name) => File.Exists(Path.Combine(outDir, "runs", name + ".json"));
        bool trainsRetrieval = plan.Sizes.Any(z => plan.RetrievalSizes.Contains(z.Name) && !Cached($"{z.Name}-retro"));
        var evalNeighbours = Retrieve(evalPairs, "eval");
        var trainNeighbours = !trainsRetrieval ? [] : plan.RandomNeighbours ? RandomNeighbours(trainPairs, trainDocs, C, plan.Neighbours, rng) : Retrieve(trainPairs, "train");
        var practised = new bool[trainNeighbours.Count];
        if (plan.ReadingPractice > 0)
            for (int i = 0; i < trainNeighbours.Count; i++)
                if (rng.NextDouble() < plan.ReadingPractice)
                {
                    practised[i] = true;
                    trainNeighbours[i] = [.. trainNeighbours[i]];
                    // The window starts up to a chunk before or after u, so the copy distance varies and the model
                    // must find the text by content (induction), not learn one fixed offset back.
                    var t = trainPairs[i].Doc.Tokens;
                    int from = Math.Clamp(trainPairs[i].U * C + rng.Next(-C + 1, C), 0, t.Length - 2 * C);
                    trainNeighbours[i][0] = t.AsSpan(from, 2 * C).ToArray();
                }
        // Numbers scrambled in some practice examples (their own random stream: the draws above are unchanged).
        var retroPairs = trainPairs;
        if (plan.ScrambleNumbers > 0 && trainNeighbours.Count > 0)
        {
            var scramble = numbers!;   // made above when ScrambleNumbers > 0
            var srng = new Random(unchecked((int)plan.Seed * 7919 + 17));
            retroPairs = [.. trainPairs];
            for (int i = 0; i < trainNeighbours.Count; i++)
            {
                if (!practised[i] || srng.NextDouble() >= plan.ScrambleNumbers) continue;
                var p = trainPairs[i];
                var own = p.Doc.Tokens.AsSpan((p.U - 1) * C, 3 * C);
                if (!scramble.Touches(own) && !trainNeighbours[i].Any(n => scramble.Touches(n))) continue;
                var map = scramble.Draw(srng);
                trainNeighbours[i] = [.. trainNeighbours[i].Select(n => NumberScramble.Apply(map, n))];
                retroPairs[i] = new Pair(new RetroDocument(p.Doc.Id, NumberScramble.Apply(map, own)), 1);
                scrambled++;
            }
            log($"numbers scrambled in {scrambled:N0} of {practised.Count(x => x):N0} practice examples ({scramble.NumberTokens} digit tokens in the vocabulary)");
        }
        double msPerQuery = searched == 0 ? double.NaN : retrieveClock.Elapsed.TotalMilliseconds / searched;
        log($"neighbours for {trainNeighbours.Count:N0} training and {evalPairs.Count} held-out chunks ({searched:N0} searched now, the rest cached): {msPerQuery:F1} ms per BM25 query, {index.EmptySearches} without a hit [{clock.Elapsed.TotalSeconds:F0} s]");

        // Leakage: 13-gram overlap of each scored chunk (u+1) with its neighbours.
        var overlap = evalPairs.Select((p, i) => RetroChunkIndex.NGramOverlap(p.Doc.Tokens.AsSpan((p.U + 1) * C, C), evalNeighbours[i])).ToArray();
        var clean = overlap.Select(o => o == 0).ToArray();
        var bucketOf = overlap.Select(OverlapBucket).ToArray();
        // Mail: is the (first) neighbour's message dated after the held-out message? A later message that
        // quotes the held-out one is the test text itself in the database (leakage); an earlier one is the
        // thread the held-out message replies to.
        object? laterShares = null;
        if (mailDates is not null && sourceIds.TryGetValue("eval", out var evalIds))
        {
            var later = evalPairs.Select((p, i) => evalIds[i].FirstOrDefault() is { } nb && mailDates.TryGetValue(nb, out var dn) && mailDates.TryGetValue(p.Doc.Id, out var dq)
                ? dn > dq : (bool?)null).ToArray();
            double? Share(Func<int, bool> keep)
            {
                var sel = Enumerable.Range(0, later.Length).Where(i => keep(i) && later[i] is not null).ToList();
                return sel.Count == 0 ? null : sel.Count(i => later[i] == true) / (double)sel.Count;
            }
            laterShares = new
            {
                dated = later.Count(x => x is not null), all = Share(_ => true), overlap_zero = Share(i => overlap[i] == 0),
                overlap_positive = Share(i => overlap[i] > 0), overlap_over_half = Share(i => overlap[i] > 0.5),
            };
            log($"held-out chunks whose neighbour's message is dated later: {JsonNaming.SerializeObject(laterShares, indented: false)}");
        }
        var bucketChunks = OverlapBuckets.Select((_, b) => bucketOf.Count(x => x == b)).ToArray();
        long scoredBytes = 0, cleanBytes = 0;
        var rowBytes = evalPairs.Select(p => (long)tok.DecodeBytes(p.Doc.Tokens.AsSpan((p.U + 1) * C, C)).Length).ToArray();
        for (int i = 0; i < rowBytes.Length; i++) { scoredBytes += rowBytes[i]; if (clean[i]) cleanBytes += rowBytes[i]; }
        // Shuffled neighbours: each held-out chunk gets another chunk's neighbours (does the model read them?).
        var shuffled = evalNeighbours.Select((_, i) => evalNeighbours[(i + evalNeighbours.Count / 2) % evalNeighbours.Count]).ToList();

        int tPlain = RetroLayout.SequenceLength(C, 0), tRetro = RetroLayout.SequenceLength(C, plan.Neighbours);   // rows are BOS + tokens: T + 1 long
        var runs = new List<RetroRun>();
        foreach (var size in plan.Sizes)
            foreach (bool retrieval in new[] { false, true })
            {
                if (retrieval && !plan.RetrievalSizes.Contains(size.Name)) continue;
                if (!retrieval && plan.RetrievalOnly) continue;
                cancel.ThrowIfCancellationRequested();
                string name = $"{size.Name}-{(retrieval ? "retro" : "plain")}";
                string cache = Path.Combine(outDir, "runs", name + ".json");
                if (File.Exists(cache)) { runs.Add(JsonNaming.Deserialize<RetroRun>(File.ReadAllText(cache))!); log($"{name}: cached"); continue; }
                var config = (ModelConfig.Preset("tiny") with
                {
                    VocabSize = tok.VocabSize, Dim = size.Dim, Layers = size.Layers, Heads = size.Heads, KvHeads = size.Heads, HiddenDim = size.Hidden, ContextLength = tRetro,
                }).Validate();
                int T = retrieval ? tRetro : tPlain;
                var shardPath = Path.Combine(outDir, "runs", name + ".bin");
                Directory.CreateDirectory(Path.GetDirectoryName(shardPath)!);
                var shardPairs = retrieval ? retroPairs : trainPairs;
                RetroLayout.WriteShard(shardPath, [.. shardPairs.Select((p, i) => RetroLayout.Row(p.Doc.Tokens, p.U, C, retrieval ? trainNeighbours[i] : null))], RetroLayout.TrainedTokens(C), tok.VocabSize, bos);
                using var shard = TokenShard.Open(shardPath);
                var options = new TrainOptions
                {
                    Steps = plan.Steps, BatchSize = plan.Batch, SequenceLength = T, LearningRate = plan.LearningRate, MinLearningRate = plan.LearningRate / 10,
                    WarmupSteps = Math.Max(1, plan.Steps / 20), EvalEvery = 0, CheckpointEvery = 0, Seed = plan.Seed, AlignDocuments = true,
                }.Validate();
                var runClock = Stopwatch.StartNew();
                // A checkpoint every tenth of the run makes a killed lab resumable where it stopped (the
                // shard is rewritten identically; the checkpoint holds the moments and the data cursor).
                options = options with { CheckpointEvery = Math.Max(1, plan.Steps / 10), KeepCheckpoints = 1 };
                string runDir = Path.Combine(outDir, "runs", name);
                bool resuming = Checkpoint.List(runDir).Count > 0;
                using var trainer = resuming ? Trainer.Resume(runDir, new TrainData([shard]), plan.Steps) : new Trainer(config, options, new TrainData([shard]), runDir);
                if (resuming)
                {
                    var saved = trainer.Options;
                    if (saved.SequenceLength != T || saved.BatchSize != plan.Batch || saved.LearningRate != plan.LearningRate || trainer.Model.Config.Dim != size.Dim || trainer.Model.Config.Layers != size.Layers)
                        throw new ArgumentException($"{runDir}: its checkpoint was trained with other settings (sequence {saved.SequenceLength}, batch {saved.BatchSize}, lr {saved.LearningRate}); delete the folder to train {name} afresh.");
                    log($"  {name}: resuming at step {trainer.Step}/{plan.Steps} (train seconds count this process only)");
                }
                double last = double.NaN;
                trainer.StepCompleted = r =>
                {
                    last = r.Loss;
                    if (r.Step % Math.Max(1, plan.Steps / 5) == 0) log($"  {name} step {r.Step}/{plan.Steps} loss {r.Loss:F3} ({r.StepSeconds * 1000:F0} ms/step)");
                };
                trainer.Run(cancel);
                // A stopped run (Ctrl+C, SIGTERM) has saved its step as a checkpoint: it is not scored or
                // cached as finished, and the next invocation resumes it there.
                cancel.ThrowIfCancellationRequested();
                double seconds = runClock.Elapsed.TotalSeconds;
                var model = trainer.Model;
                if (plan.VocabSize > 0) RunSetup.CopyTokenizer(tokDir, Path.Combine(outDir, "runs", name, Checkpoint.TokenizerFolder));   // `eval swap --model` finds it
                var nats = Score(model, evalPairs, retrieval ? evalNeighbours : null, C, bos, plan.Batch);
                double? shuffledBpb = retrieval ? Bpb(Score(model, evalPairs, shuffled, C, bos, plan.Batch), rowBytes, null) : null;
                var run = new RetroRun(name, size.Name, retrieval, config.ParameterCount, T, (long)plan.Steps * plan.Batch * 2 * C, seconds, last,
                    Bpb(nats, rowBytes, null), Bpb(nats, rowBytes, clean), shuffledBpb)
                {
                    HeldOutBpbByOverlap = [.. OverlapBuckets.Select((_, b) => bucketChunks[b] == 0 ? (double?)null : Bpb(nats, rowBytes, [.. bucketOf.Select(x => x == b)]))],
                };
                AtomicFile.WriteAllText(cache, JsonNaming.Serialize(run));
                File.Delete(shardPath);
                File.Delete(TokenShard.MaskPath(shardPath));
                runs.Add(run);
                log($"{name}: {run.Parameters:N0} parameters, held-out bpb {run.HeldOutBpb:F4} (no-overlap chunks {run.HeldOutBpbZeroOverlap:F4}" +
                    (shuffledBpb is { } sb ? $", shuffled neighbours {sb:F4}" : "") + $"), {seconds:F0} s");
            }

        var figure = new Figure("Held-out bits per byte vs parameters", "parameters", "held-out bits/byte", logX: true);
        figure.Add(new PlotSeries("without retrieval", [.. runs.Where(r => !r.Retrieval).Select(r => ((double)r.Parameters, r.HeldOutBpb))], SeriesStyle.LineAndMarkers, 0));
        figure.Add(new PlotSeries("with retrieval (RETRO-style, in context)", [.. runs.Where(r => r.Retrieval).Select(r => ((double)r.Parameters, r.HeldOutBpb))], SeriesStyle.LineAndMarkers, 1));
        var result = new
        {
            corpus = corpusTag, train_documents = trainDocs.Count, held_out_documents = heldDocs.Count, mail = mailCounts,
            plan.ChunkTokens, plan.Neighbours, plan.TrainPairs, plan.EvalPairs, plan.Steps, plan.Batch, vocab = tok.VocabSize,
            index_chunks = index.Chunks, ms_per_query = msPerQuery, empty_searches = index.EmptySearches,
            overlap_mean = overlap.Average(), overlap_zero_fraction = clean.Count(c => c) / (double)clean.Length,
            overlap_over_half_fraction = overlap.Count(o => o > 0.5) / (double)overlap.Length,
            overlap_buckets = OverlapBuckets, overlap_bucket_chunks = bucketChunks, eval_neighbour_dated_later = laterShares,
            eval_held_out_neighbours = heldOutHits.TryGetValue("eval", out long eh) ? eh : (long?)null,
            train_held_out_neighbours = heldOutHits.TryGetValue("train", out long th) ? th : (long?)null,
            own_past = plan.OwnPast, eval_own_document_share = ownShare.GetValueOrDefault("eval"), train_own_document_share = ownShare.TryGetValue("train", out double ts) ? ts : (double?)null,
            scored_bytes = scoredBytes, zero_overlap_bytes = cleanBytes, practice_examples = practised.Count(x => x), scrambled_examples = scrambled, number_rich_examples = numberRichDrawn, runs, seconds = clock.Elapsed.TotalSeconds,
        };
        var md = new StringBuilder();
        md.AppendLine(mailCounts is { } mc
            ? $"Corpus: mail ({string.Join(", ", RetroCorpus.MailGroups)}), {mc.Kept:N0} messages as documents ({mc.Duplicates} duplicates and {mc.Empty} empty dropped); {trainDocs.Count:N0} train, {heldDocs.Count:N0} held out."
            : $"Corpus: embedded (SOTU + Moby-Dick); {trainDocs.Count:N0} train documents, {heldDocs.Count:N0} held out.");
        md.AppendLine();
        md.AppendLine($"Chunks of {C} tokens, {plan.Neighbours} neighbour(s) per chunk (chunk + continuation, " +
            (plan.OwnPast ? "other training documents and the document's own text before the example's context" : "other documents only") +
            $"), {trainPairs.Count} training examples, {evalPairs.Count} held-out chunks scored." +
            (plan.TrainQueryTarget ? " Training neighbours searched with the scored chunk u+1 (copy practice from other documents); held-out ones with chunk u." : ""));
        md.AppendLine();
        md.AppendLine($"Share of held-out neighbours taken from the chunk's own document: {result.eval_own_document_share:P1}" +
            (result.train_own_document_share is { } tshare ? $"; of training neighbours: {tshare:P1}." : "."));
        md.AppendLine();
        md.AppendLine($"13-gram overlap of scored chunks with their neighbours: mean {overlap.Average():F3}; zero for {result.overlap_zero_fraction:P1}; above 0.5 for {result.overlap_over_half_fraction:P1}.");
        md.AppendLine();
        md.AppendLine("| run | parameters | retrieval | T | held-out bpb | bpb, zero-overlap chunks | bpb, shuffled neighbours | train s |");
        md.AppendLine("|---|---|---|---|---|---|---|---|");
        foreach (var r in runs)
            md.AppendLine($"| {r.Name} | {r.Parameters:N0} | {(r.Retrieval ? "yes" : "no")} | {r.SequenceLength} | {r.HeldOutBpb:F4} | {r.HeldOutBpbZeroOverlap:F4} | {(r.HeldOutBpbShuffledNeighbours is { } s ? s.ToString("F4") : "")} | {r.TrainSeconds:F0} |");
        md.AppendLine();
        md.AppendLine($"Held-out bpb by the scored chunk's 13-gram overlap with its neighbours (chunks per bucket: {string.Join(", ", OverlapBuckets.Select((b, i) => $"{b}: {bucketChunks[i]}"))}):");
        md.AppendLine();
        md.AppendLine("| run | " + string.Join(" | ", OverlapBuckets.Select(b => "overlap " + b)) + " |");
        md.AppendLine("|---|" + string.Concat(OverlapBuckets.Select(_ => "---|")));
        foreach (var r in runs.Where(r => r.HeldOutBpbByOverlap is not null))
            md.AppendLine($"| {r.Name} | " + string.Join(" | ", r.HeldOutBpbByOverlap!.Select(v => v is { } x ? x.ToString("F4", System.Globalization.CultureInfo.InvariantCulture) : "")) + " |");
        md.AppendLine();
        md.AppendLine("![bpb vs parameters](retro-bpb.svg)");
        ExperimentReport.Write(outDir, "RETRO-style training at small scale", result, md.ToString(), new Dictionary<string, Figure> { ["retro-bpb"] = figure });
        return result;
    }

    /// <summary>For each pair, <paramref name="k"/> random chunks with continuation from other documents.</summary>
    static List<int[][]> RandomNeighbours(List<Pair> pairs, List<RetroDocument> docs, int C, int k, Random rng)
    {
        var usable = docs.Where(d => d.Tokens.Length >= 2 * C).ToList();
        return pairs.Select(p => Enumerable.Range(0, k).Select(_ =>
        {
            RetroDocument d;
            do d = usable[rng.Next(usable.Count)]; while (d.Id == p.Doc.Id && usable.Count > 1);
            int c = rng.Next(d.Tokens.Length / C - 1);
            return d.Tokens.AsSpan(c * C, 2 * C).ToArray();
        }).ToArray()).ToList();
    }

    static void WriteNeighbours(string path, List<int[][]> all) => AtomicFile.Write(path, fs =>
    {
        using var w = new BinaryWriter(fs, Encoding.UTF8, leaveOpen: true);
        w.Write(all.Count);
        foreach (var set in all)
        {
            w.Write(set.Length);
            foreach (var n in set) { w.Write(n.Length); foreach (int id in n) w.Write(id); }
        }
    });

    static List<int[][]> ReadNeighbours(string path)
    {
        using var r = new BinaryReader(File.OpenRead(path));
        var all = new List<int[][]>(r.ReadInt32());
        for (int i = all.Capacity; i > 0; i--)
        {
            var set = new int[r.ReadInt32()][];
            for (int j = 0; j < set.Length; j++) { set[j] = new int[r.ReadInt32()]; for (int t = 0; t < set[j].Length; t++) set[j][t] = r.ReadInt32(); }
            all.Add(set);
        }
        return all;
    }

    /// <summary>The year of a State of the Union document key (<c>…1961_Kennedy…</c>); null for other documents.</summary>
    static int? YearOf(string key)
        => System.Text.RegularExpressions.Regex.Match(key, @"(?<!\d)(1[7-9]\d\d|20\d\d)_") is { Success: true } m ? int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : null;

    sealed record Pair(RetroDocument Doc, int U);

    /// <summary>Up to <paramref name="count"/> (document, u) pairs with chunks u−1, u, u+1 inside the document, drawn without replacement.</summary>
    static List<Pair> Pairs(List<RetroDocument> docs, int C, int count, Random rng)
    {
        var all = new List<Pair>();
        foreach (var d in docs)
            for (int u = 1; (u + 2) * C <= d.Tokens.Length; u++) all.Add(new Pair(d, u));
        for (int i = all.Count - 1; i > 0; i--) { int j = rng.Next(i + 1); (all[i], all[j]) = (all[j], all[i]); }
        if (all.Count == 0) throw new ArgumentException($"RETRO lab: no document has 3 chunks of {C} tokens.");
        return all.Count > count ? all.GetRange(0, count) : all;
    }

    /// <summary>Summed nats of every example's chunk u+1 (each row's last C tokens), one entry per example.</summary>
    static double[] Score(Transformer model, List<Pair> pairs, List<int[][]>? neighbours, int C, int bos, int batch)
    {
        var nats = new double[pairs.Count];
        for (int start = 0; start < pairs.Count; start += batch)
        {
            int B = Math.Min(batch, pairs.Count - start);
            var rows = new int[B][];
            for (int b = 0; b < B; b++) rows[b] = [bos, .. RetroLayout.Row(pairs[start + b].Doc.Tokens, pairs[start + b].U, C, neighbours?[start + b])];
            int T = rows[0].Length - 1;
            var ids = new int[B * T];
            for (int b = 0; b < B; b++) rows[b].AsSpan(0, T).CopyTo(ids.AsSpan(b * T));
            using var g = new Graph(recordGradients: false);
            var logits = model.Forward(g, ids, B, T).Logits.AsSpan("RetroLab");   // (B·T, V)
            int V = model.Config.VocabSize;
            for (int b = 0; b < B; b++)
            {
                double sum = 0;
                for (int t = T - C; t < T; t++)   // position t predicts row[t + 1], the last C tokens
                {
                    var l = logits.Slice((b * T + t) * V, V);
                    float max = float.NegativeInfinity;
                    foreach (float v in l) max = Math.Max(max, v);
                    double z = 0;
                    foreach (float v in l) z += Math.Exp(v - max);
                    sum += max + Math.Log(z) - l[rows[b][t + 1]];
                }
                nats[start + b] = sum;
            }
        }
        return nats;
    }

    /// <summary>Bits per byte over the examples selected by <paramref name="keep"/> (all when null); NaN when none.</summary>
    static double Bpb(double[] nats, long[] bytes, bool[]? keep)
    {
        double n = 0; long b = 0;
        for (int i = 0; i < nats.Length; i++)
            if (keep is null || keep[i]) { n += nats[i]; b += bytes[i]; }
        return b == 0 ? double.NaN : n / Math.Log(2) / b;
    }
}
