using System.CommandLine;
using Tessera.Inference;
using Tessera.Kernels.IO;
using Tessera.Retrieval;
using Tessera.Retrieval.Dense;
using Tessera.Retrieval.Sparse;

namespace Tessera.Cli.Commands;

/// <summary><c>tessera index build|search</c>: the retrieval index (see docs/retrieval.md).</summary>
public static class IndexCommand
{
    /// <summary>The command group.</summary>
    public static Command Create()
    {
        var cmd = new Command("index", "Retrieval index over text or a user's own files: sharded Lucene BM25, optional model embeddings (HNSW).");
        cmd.Subcommands.Add(Build());
        cmd.Subcommands.Add(Search());
        return cmd;
    }

    static Command Build()
    {
        var input = new Option<string>("--input") { Description = "A folder (indexed recursively), a text file, a mail file or mbox (one document per message: subject and text body, dated by its Date header), or a .jsonl file of {id, text, date}.", Required = true };
        var output = new Option<string>("--out") { Description = "Index folder (created, or extended incrementally when it exists).", Required = true };
        var shards = new Option<int?>("--shards") { Description = "Lucene shards of a new index (default 1; an existing index keeps its own)." };
        var words = new Option<int>("--passage-words") { Description = "Maximum words per passage (new index).", DefaultValueFactory = _ => 120 };
        var model = new Option<string?>("--model") { Description = "Also build the dense stage with this model's embeddings (checkpoint, run folder, .gguf or HF folder)." };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Tokenizer for --model (default: the model's own)." };
        var json = BenchCommand.JsonOption();
        var cmd = new Command("build", "Build or extend an index; a crash leaves the last good index usable.") { input, output, shards, words, model, tokenizer, json };
        cmd.SetAction(p =>
        {
            bool quiet = p.GetValue(json);
            string dir = p.GetValue(output)!;
            int skipped = 0;
            void Skip(string why) { skipped++; Console.Error.WriteLine(why); }   // each file or message left out, named, with the reason
            var r = Bm25IndexBuilder.Build(dir, DocumentSource.Read(p.GetValue(input)!, Skip), new IndexBuildOptions
            {
                Shards = p.GetValue(shards), PassageWords = p.GetValue(words), Progress = quiet ? null : s => Console.Error.WriteLine(s),
            });
            DenseManifest? dense = null;
            if (p.GetValue(model) is { } m)
            {
                using var embedder = OpenEmbedder(m, p.GetValue(tokenizer));
                using var index = Bm25Index.Open(dir);
                dense = DenseStage.Build(index, embedder.Generator, quiet ? null : s => Console.Error.WriteLine(s));
            }
            if (quiet)
                Console.WriteLine(JsonNaming.SerializeObject(new
                {
                    index = Path.GetFullPath(dir), r.AddedDocuments, r.ReplacedDocuments, r.AddedPassages, documents = r.Manifest.Documents,
                    passages = r.Manifest.Passages, shards = r.Manifest.Shards, seconds = r.Seconds, skipped, dense,
                }));
            else
                Console.WriteLine($"indexed {r.AddedDocuments:N0} new and {r.ReplacedDocuments:N0} replaced document(s) as {r.AddedPassages:N0} passages in {r.Seconds:F1} s; " +
                                  $"the index now holds {r.Manifest.Documents:N0} documents, {r.Manifest.Passages:N0} passages in {r.Manifest.Shards} shard(s)" +
                                  (skipped > 0 ? $"; {skipped:N0} file(s) or message(s) skipped (listed above)" : "") +
                                  (dense is null ? "" : $"; dense stage: {dense.Count:N0} × {dense.Dimensions} vectors from {dense.Embedder}") + $" → {Path.GetFullPath(dir)}");
            return 0;
        });
        return cmd;
    }

    static Command Search()
    {
        var index = new Option<string>("--index") { Description = "Index folder.", Required = true };
        var query = new Option<string>("--query") { Description = "Query text.", Required = true };
        var k = new Option<int>("--k") { Description = "Passages to return.", DefaultValueFactory = _ => 10 };
        var json = BenchCommand.JsonOption();
        var cmd = new Command("search", "BM25 search of an index; prints passages with document ids and character offsets.") { index, query, k, json };
        cmd.SetAction(p =>
        {
            if (p.GetValue(k) is < 1 or > 10_000) throw new ArgumentException($"--k must be in [1, 10000], got {p.GetValue(k)}.");
            using var idx = Bm25Index.Open(p.GetValue(index)!);
            var hits = idx.Search(p.GetValue(query)!, p.GetValue(k));
            if (p.GetValue(json))
                Console.WriteLine(JsonNaming.SerializeObject(new
                {
                    query = p.GetValue(query), hits = hits.Select(h => new { document_id = h.Passage.DocumentId, h.Passage.Start, h.Passage.Length, h.Passage.Key, h.Score, h.Passage.Text }),
                }));
            else
                foreach (var h in hits)
                    Console.WriteLine($"{h.Score,8:F3}  {h.Passage.DocumentId} [{h.Passage.Start}+{h.Passage.Length}]  {Snippet(h.Passage.Text)}");
            return 0;
        });
        return cmd;
    }

    static string Snippet(string text) { var s = text.ReplaceLineEndings(" "); return s.Length <= 100 ? s : s[..100] + "…"; }

    /// <summary>A model embedder that owns its engine and weights.</summary>
    public sealed class OwnedEmbedder(ModelEmbeddingGenerator generator, BatchingEngine engine, IDisposable? owner) : IDisposable
    {
        /// <summary>The embedder.</summary>
        public ModelEmbeddingGenerator Generator => generator;

        /// <summary>The engine behind it (also scores text for the log-likelihood rerank).</summary>
        public BatchingEngine Engine => engine;

        /// <inheritdoc/>
        public void Dispose() { engine.Dispose(); owner?.Dispose(); }
    }

    /// <summary>Loads a model (any source <see cref="ModelFiles"/> reads) as an embedder.</summary>
    public static OwnedEmbedder OpenEmbedder(string source, string? tokenizer)
    {
        var (owner, weights, dir) = ModelFiles.LoadWeights(source);
        var (tok, bos, _) = ModelFiles.LoadTokenizer(source, dir, tokenizer);
        var engine = new BatchingEngine(weights, new BatchingOptions { MaxSequences = 1 });
        return new OwnedEmbedder(new ModelEmbeddingGenerator(engine, tok, bos, Path.GetFullPath(dir)), engine, owner);
    }
}
