using Tessera.Kernels.IO;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Hosting;
using Spectre.Console;
using Tessera.Data;
using Tessera.Data.NGram;
using Tessera.Evals;
using Tessera.Text;
using Tessera.Training;

namespace Tessera.Cli.Commands;

/// <summary><c>tessera ngram build|query|eval</c>: the ∞-gram store (see docs/ngram.md).</summary>
public static class NGramCommand
{
    /// <summary>snake_case JSON for --json output.</summary>
    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, WriteIndented = true,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>Builds the <c>tessera ngram</c> command with its options and handler.</summary>
    public static Command Create()
    {
        var cmd = new Command("ngram", "The ∞-gram store: suffix arrays over training tokens, exact n-gram and ∞-gram queries, batched lookups, LM interpolation.");
        cmd.Subcommands.Add(Build());
        cmd.Subcommands.Add(Query());
        cmd.Subcommands.Add(Eval());
        return cmd;
    }

    static Command Build()
    {
        var data = new Option<string?>("--data") { Description = "Prepared data folder (meta.json): its train split is indexed." };
        var shards = new Option<string[]>("--shard") { Description = "Token shard file(s) to index instead of --data (repeatable).", AllowMultipleArgumentsPerToken = true };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Tokenizer the shards were written with (default: the one meta.json names)." };
        var output = new Option<string>("--out") { Description = "Index folder to create.", Required = true };
        var shardTokens = new Option<int>("--shard-tokens") { Description = "Tokens per index shard (bounds build memory; ≤ 2^24 keeps 3-byte pointers).", DefaultValueFactory = _ => 1 << 24 };
        var force = new Option<bool>("--force") { Description = "Replace an existing index at --out." };
        var json = BenchCommand.JsonOption();
        var cmd = new Command("build", "Build an ∞-gram index (suffix arrays, memory-mapped shards, checksums) from token shards.")
            { data, shards, tokenizer, output, shardTokens, force, json };
        cmd.SetAction(p =>
        {
            bool quiet = p.GetValue(json);
            var files = new List<string>(p.GetValue(shards) ?? []);
            string? tokPath = p.GetValue(tokenizer);
            if (p.GetValue(data) is { } d)
            {
                var prepared = PreparedData.Load(d);
                files.Add(prepared.ShardPath(Split.Train));
                tokPath ??= prepared.TokenizerPath();
            }
            if (files.Count == 0) throw new ArgumentException("give --data (a prepared folder) or at least one --shard file to index.");
            if (tokPath is null) throw new ArgumentException("--tokenizer is required with --shard (the index records which tokenizer its ids come from).");
            var tok = LoadTokenizer(tokPath);
            var opened = files.Select(TokenShard.Open).ToList();
            try
            {
                var m = NGramBuilder.Build(opened, TokenizerIdentity.Of(tok), p.GetValue(output)!,
                    new NGramBuildOptions { ShardTokens = p.GetValue(shardTokens), Overwrite = p.GetValue(force) }, quiet ? null : s => Console.Error.WriteLine(s));
                var result = new { index = Path.GetFullPath(p.GetValue(output)!), tokens = m.Tokens, documents = m.Documents, shards = m.Shards.Count,
                    bytes = m.Bytes, bytes_per_token = (double)m.Bytes / Math.Max(1, m.Tokens), build_seconds = m.BuildSeconds, tokenizer = m.Tokenizer.Name };
                if (quiet) Console.WriteLine(JsonSerializer.Serialize(result, Json));
                else Console.WriteLine($"indexed {m.Tokens:N0} tokens ({m.Documents:N0} documents) in {m.Shards.Count} shard(s): {m.Bytes / 1048576.0:F1} MiB, " +
                                       $"{result.bytes_per_token:F2} bytes/token, {m.BuildSeconds:F1} s → {result.index}");
            }
            finally
            {
                foreach (var s in opened) s.Dispose();
            }
            return 0;
        });
        return cmd;
    }

    /// <summary>A tokenizer folder/file, `bytes`, or a run's tokenizer folder.</summary>
    static ITokenizer LoadTokenizer(string path) => path == "bytes" ? TokenizerFiles.Load("bytes")
        : Directory.Exists(path) ? RunSetup.LoadRunTokenizer(path) : TokenizerFiles.Load(path);

    static Command Query()
    {
        var index = new Option<string>("--index") { Description = "Index folder.", Required = true };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Tokenizer for --text (must be the one the index was built with)." };
        var text = new Option<string[]>("--text") { Description = "Query text (repeat for and/or).", AllowMultipleArgumentsPerToken = false };
        var ids = new Option<string?>("--ids") { Description = "Query as comma-separated token ids instead of --text." };
        var type = new Option<string>("--type") { Description = "count | next | infinity | probability | documents | and | or | stupid-backoff.", DefaultValueFactory = _ => "count" };
        var token = new Option<string?>("--next") { Description = "For probability / stupid-backoff: the next token's text (or id with --ids)." };
        var maxHits = new Option<int>("--max-hits") { Description = "Document hits to list.", DefaultValueFactory = _ => 10 };
        var top = new Option<int>("--top") { Description = "Next tokens to list.", DefaultValueFactory = _ => 10 };
        var json = BenchCommand.JsonOption();
        var cmd = new Command("query", "Query an ∞-gram index: counts, next-token distributions (n-gram and ∞-gram), ∞-gram probability, documents (and/or), Stupid Backoff.")
            { index, tokenizer, text, ids, type, token, maxHits, top, json };
        cmd.SetAction(p =>
        {
            using var store = NGramStore.Open(p.GetValue(index)!);
            ITokenizer? tok = null;
            if (p.GetValue(tokenizer) is { } tp) { tok = LoadTokenizer(tp); store.CheckTokenizer(TokenizerIdentity.Of(tok)); }
            var queries = new List<int[]>();
            if (p.GetValue(ids) is { } idText)
                queries.Add(idText.Length == 0 ? [] : [.. idText.Split(',').Select(s => int.TryParse(s.Trim(), CultureInfo.InvariantCulture, out int v) ? v : throw new ArgumentException($"--ids: '{s}' is not a token id."))]);
            foreach (var t in p.GetValue(text) ?? [])
                queries.Add([.. (tok ?? throw new ArgumentException("--text needs --tokenizer (the index's tokenizer).")).Encode(t)]);
            if (queries.Count == 0) throw new ArgumentException("give the query as --text (with --tokenizer) or --ids.");
            int Next()
            {
                string v = p.GetValue(token) ?? throw new ArgumentException("--next is required for this query type.");
                if (tok is null) return int.Parse(v, CultureInfo.InvariantCulture);
                var e = tok.Encode(v);
                if (e.Count != 1) throw new ArgumentException($"--next '{v}' encodes to {e.Count} tokens; give one token.");
                return e[0];
            }
            string Show(int id) => tok is null ? id.ToString(CultureInfo.InvariantCulture) : tok.Decode([id]);
            var sw = Stopwatch.StartNew();
            object result = p.GetValue(type) switch
            {
                "count" => new { count = store.Count(queries[0]) },
                "next" or "infinity" => Dist(p.GetValue(type) == "next" ? store.NextTokens(queries[0]) : store.InfinityNextTokens(queries[0]), p.GetValue(top), Show),
                "probability" => store.Probability(queries[0], Next()) is var q
                    ? new { suffix_length = q.SuffixLength, context_count = q.ContextCount, target_count = q.TargetCount, probability = q.Probability } : null!,
                "stupid-backoff" => new { score = StupidBackoff.Score(store, queries[0], Next()) },
                "documents" => store.Documents(queries[0], p.GetValue(maxHits)) is var d
                    ? new { occurrences = d.Occurrences, truncated = d.Truncated, hits = d.Hits.Select(h => new { document = h.Document, offset = h.Offset }).ToList() } : null!,
                "and" or "or" => store.DocumentsMatching(queries, p.GetValue(type) == "and", 100_000, out bool cut) is var docs
                    ? new { documents = docs.Count, truncated = cut, ids = docs.Take(p.GetValue(maxHits)).ToList() } : null!,
                var other => throw new ArgumentException($"unknown --type '{other}': count, next, infinity, probability, documents, and, or, stupid-backoff."),
            };
            double ms = sw.Elapsed.TotalMilliseconds;
            if (p.GetValue(json)) Console.WriteLine(JsonSerializer.Serialize(new { query = p.GetValue(type), result, milliseconds = ms }, Json));
            else Console.WriteLine($"{JsonSerializer.Serialize(result, Json)}\n({ms:F2} ms over {store.TokenCount:N0} tokens)");
            return 0;
        });
        return cmd;
    }

    static object Dist(NextTokenDistribution d, int top, Func<int, string> show)
        => new { suffix_length = d.SuffixLength, total = d.Total, distinct = d.Tokens.Count,
            tokens = d.Tokens.Take(top).Select(t => new { token = t.Token, text = show(t.Token), count = t.Count, probability = (double)t.Count / d.Total }).ToList() };

    static Command Eval()
    {
        var index = new Option<string>("--index") { Description = "Index folder (built from the training split only).", Required = true };
        var model = new Option<string>("--model") { Description = "Checkpoint or run folder.", Required = true };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Tokenizer (default: the checkpoint's)." };
        var data = new Option<string>("--data") { Description = "Prepared data folder with the held-out splits.", Required = true };
        var fit = new Option<string>("--fit-split") { Description = "Split λ and the gates are fitted on.", DefaultValueFactory = _ => "val" };
        var evalSplit = new Option<string>("--eval-split") { Description = "Split the bits per byte are reported on.", DefaultValueFactory = _ => "test" };
        var window = new Option<int?>("--window") { Description = "LM window (default: the model's context)." };
        var output = new Option<string?>("--out") { Description = "Folder to write ngram-eval.json into." };
        var json = BenchCommand.JsonOption();
        var cmd = new Command("eval", "Held-out bits per byte of the LM alone and interpolated with the ∞-gram (fixed λ; learned gates over the ∞-gram, and over it and its backoff), with the suffix-length histogram.")
            { index, model, tokenizer, data, fit, evalSplit, window, output, json };
        cmd.SetAction(p =>
        {
            bool quiet = p.GetValue(json);
            void Say(string s) { if (!quiet) Console.Error.WriteLine(s); }
            var prepared = PreparedData.Load(p.GetValue(data)!);
            string checkpoint = Checkpoint.Resolve(Path.GetFullPath(p.GetValue(model)!));
            var tok = EvalCommand.LoadTokenizer(p.GetValue(tokenizer), checkpoint);
            using var store = NGramStore.Open(p.GetValue(index)!);
            store.CheckTokenizer(TokenizerIdentity.Of(tok));
            using var m = Checkpoint.LoadModel(checkpoint);
            if (m.Config.VocabSize != store.VocabSize)
                throw new InvalidDataException($"{checkpoint}: the model's vocabulary ({m.Config.VocabSize}) differs from the index's ({store.VocabSize}).");
            var sw = Stopwatch.StartNew();
            (double[] Lm, NGramEvidence[] Ng, long Bytes) Score(string name)
            {
                var split = ParseSplit(name);
                using var shard = TokenShard.Open(prepared.ShardPath(split));
                var ids = new int[shard.TokenCount];
                shard.Read(0, ids);
                var t0 = sw.Elapsed.TotalSeconds;
                var ng = NGramBatch.Evidence(store, ids);
                Say($"{name}: ∞-gram and backoff evidence for {ids.Length:N0} positions in {sw.Elapsed.TotalSeconds - t0:F2} s");
                t0 = sw.Elapsed.TotalSeconds;
                var lm = BitsPerByte.TargetLogProbs(m, shard, p.GetValue(window), progress: (done, total) => { if (!quiet) Console.Error.Write($"\r{name}: LM {done:N0}/{total:N0} targets"); });
                Say($"\r{name}: LM scored {lm.Length:N0} targets in {sw.Elapsed.TotalSeconds - t0:F1} s");
                return (lm, ng, prepared.Stats(split).Bytes);
            }
            var f = Score(p.GetValue(fit)!);
            var e = Score(p.GetValue(evalSplit)!);
            var report = NGramInterpolation.Report(p.GetValue(fit)!, f.Lm, f.Ng, p.GetValue(evalSplit)!, e.Lm, e.Ng, e.Bytes);
            var text = JsonSerializer.Serialize(new
            {
                model = checkpoint, index = store.Directory, index_tokens = store.TokenCount, report.FitSplit, report.EvalSplit, report.Targets, report.Bytes,
                lm_bits_per_byte = report.LmBitsPerByte, lambda = report.Lambda, fixed_bits_per_byte = report.FixedBitsPerByte, fixed_change = report.FixedChange,
                gate_bits_per_byte = report.GateBitsPerByte, gate_change = report.GateChange, gate_weights = report.GateWeights,
                backoff_gate_bits_per_byte = report.BackoffGateBitsPerByte, backoff_gate_change = report.BackoffGateChange, backoff_gate_weights = report.BackoffGateWeights,
                suffix_lengths = report.SuffixLengths, seconds = sw.Elapsed.TotalSeconds,
            }, Json);
            if (p.GetValue(output) is { } dir) AtomicFile.WriteAllText(Path.Combine(dir, "ngram-eval.json"), text);
            if (quiet) { Console.WriteLine(text); return 0; }
            var t = new Table().Title($"held-out bits per byte on {report.EvalSplit} ({report.Targets:N0} targets; λ and gates fitted on {report.FitSplit})")
                .AddColumns("model", "bits/byte", "change");
            t.AddRow("LM alone", report.LmBitsPerByte.ToString("F4", CultureInfo.InvariantCulture), "");
            t.AddRow($"LM + ∞-gram, fixed λ = {report.Lambda:F3}", report.FixedBitsPerByte.ToString("F4", CultureInfo.InvariantCulture), $"{report.FixedChange * 100:+0.0;-0.0}%");
            t.AddRow("LM + ∞-gram, learned gate", report.GateBitsPerByte.ToString("F4", CultureInfo.InvariantCulture), $"{report.GateChange * 100:+0.0;-0.0}%");
            t.AddRow("LM + ∞-gram + backoff, learned gate", report.BackoffGateBitsPerByte.ToString("F4", CultureInfo.InvariantCulture), $"{report.BackoffGateChange * 100:+0.0;-0.0}%");
            AnsiConsole.Write(t);
            var h = new Table().Title("∞-gram suffix length used").AddColumns("suffix length", "positions", "share", "∞-gram p > 0", "mean p∞(target)", "mean p_LM(target)");
            foreach (var b in report.SuffixLengths)
                h.AddRow(b.Lengths, b.Positions.ToString("N0", CultureInfo.InvariantCulture), $"{b.Share * 100:F1}%", double.IsNaN(b.NonZeroShare) ? "–" : $"{b.NonZeroShare * 100:F1}%",
                    double.IsNaN(b.MeanInfinityProbability) ? "–" : b.MeanInfinityProbability.ToString("F3", CultureInfo.InvariantCulture),
                    double.IsNaN(b.MeanLmProbability) ? "–" : b.MeanLmProbability.ToString("F3", CultureInfo.InvariantCulture));
            AnsiConsole.Write(h);
            return 0;
        });
        return cmd;
    }

    /// <summary>`tessera serve --ngram DIR` without a model: only the n-gram routes, until Ctrl+C.</summary>
    public static async Task<int> ServeAsync(NGramStore store, Server.ServerOptions options, bool json, CancellationToken cancel)
    {
        var (app, address) = await Server.NGramEndpoint.StartAsync(store, options, cancel);
        await using (app)
        {
            if (json) Console.WriteLine(JsonSerializer.Serialize(new { address = address.ToString(), ngram_index = store.Directory, tokens = store.TokenCount }));
            else Console.WriteLine($"serving the ∞-gram index {store.Directory} ({store.TokenCount:N0} tokens) at {address}v1/ngram/query and {address}v1/ngram/batch (Ctrl+C stops)");
            try { await app.WaitForShutdownAsync(cancel); }
            catch (OperationCanceledException) { }
        }
        return 0;
    }

    static Split ParseSplit(string s) => s switch
    {
        "train" => Split.Train, "val" or "validation" => Split.Validation, "test" => Split.Test,
        _ => throw new ArgumentException($"unknown split '{s}': train, val or test."),
    };
}
