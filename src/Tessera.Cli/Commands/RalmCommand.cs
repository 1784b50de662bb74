using System.CommandLine;
using System.Runtime.CompilerServices;
using Tessera.Inference;
using Tessera.Kernels.IO;
using Tessera.Retrieval;
using Tessera.Retrieval.Sparse;
using Tessera.Text;

namespace Tessera.Cli.Commands;

/// <summary>
/// In-Context RALM on the command line: the <c>--index/--retrieve-every/--retrieve-query</c> options
/// of <c>tessera generate</c>, and <c>tessera eval ralm</c> (held-out bits per byte with and without
/// retrieval, same weights).
/// </summary>
public sealed class RalmCommand
{
    readonly Option<string?> index = new("--index") { Description = "Retrieval index folder: retrieve every --retrieve-every tokens and prepend the top passage (In-Context RALM)." };
    readonly Option<int> every = new("--retrieve-every") { Description = "Retrieval stride s in tokens.", DefaultValueFactory = _ => 16 };
    readonly Option<int> query = new("--retrieve-query") { Description = "Query length q: the last q tokens are the query.", DefaultValueFactory = _ => 32 };
    readonly Option<int> passages = new("--retrieve-passages") { Description = "Passages prepended per retrieval.", DefaultValueFactory = _ => 1 };
    readonly Option<int> passageTokens = new("--retrieve-tokens") { Description = "Most tokens of retrieved text in the context.", DefaultValueFactory = _ => 128 };

    /// <summary>The options (add them to a command with <see cref="AddTo"/>).</summary>
    public static RalmCommand Options() => new();

    /// <summary>Adds the options to <paramref name="cmd"/>.</summary>
    public void AddTo(Command cmd) { cmd.Options.Add(index); cmd.Options.Add(every); cmd.Options.Add(query); cmd.Options.Add(passages); cmd.Options.Add(passageTokens); }

    RalmOptions Settings(ParseResult p) => new RalmOptions
    {
        Stride = p.GetValue(every), QueryTokens = p.GetValue(query), Passages = p.GetValue(passages), MaxPassageTokens = p.GetValue(passageTokens),
    }.Validate();

    /// <summary>The request's tokens: plain generation, or RALM when <c>--index</c> is given (retrieved passages are named on stderr unless quiet).</summary>
    public async IAsyncEnumerable<TokenEvent> Events(ParseResult p, IGenerationEngine engine, ITokenizer tok, int? bos, GenerationRequest request, bool quiet,
        [EnumeratorCancellation] CancellationToken cancel)
    {
        if (p.GetValue(index) is not { } dir)
        {
            await foreach (var e in engine.GenerateAsync(request, cancel)) yield return e;
            yield break;
        }
        using var idx = Bm25Index.Open(dir);
        var ralm = new InContextRalm(engine, tok, idx, bos, Settings(p));
        var prompt = bos is { } b && request.Prompt.Count > 0 && request.Prompt[0] == b ? request.Prompt.Skip(1).ToList() : request.Prompt.ToList();
        IReadOnlyList<Passage>? last = null;
        await foreach (var t in ralm.GenerateAsync(prompt, request.MaxNewTokens, request.Sampling, request.StopIds, cancel))
        {
            if (!quiet && !ReferenceEquals(t.Retrieved, last) && t.Retrieved.Count > 0)
                Console.Error.Write($"\n[retrieved {string.Join(", ", t.Retrieved.Select(x => $"{x.DocumentId}[{x.Start}+{x.Length}]"))}]\n");
            last = t.Retrieved;
            yield return t.Event;
        }
    }

    /// <summary><c>tessera eval ralm</c>: bits per byte of held-out documents with and without retrieval.</summary>
    public static Command Eval()
    {
        var o = new RalmCommand();
        var model = new Option<string>("--model") { Description = "Model (checkpoint, run folder, .gguf or HF folder).", Required = true };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Tokenizer (default: the model's own)." };
        var input = new Option<string>("--input") { Description = "Held-out documents (folder, text or .jsonl file), scored stride by stride.", Required = true };
        var limit = new Option<int>("--limit") { Description = "At most this many documents.", DefaultValueFactory = _ => 50 };
        var layout = new Option<string>("--layout") { Description = "ralm: In-Context RALM, stride by stride; retro: the layout `tessera train --index` trains, chunk u+1 after [BOS] neighbours u−1 u.", DefaultValueFactory = _ => "ralm" };
        var chunk = new Option<int>("--retro-chunk") { Description = "With --layout retro: tokens per chunk, C.", DefaultValueFactory = _ => 64 };
        var neighbours = new Option<int>("--neighbours") { Description = "With --layout retro: neighbours per example, k.", DefaultValueFactory = _ => 1 };
        var examples = new Option<int>("--retro-examples") { Description = "With --layout retro: at most this many examples, a seeded draw (0 = all).", DefaultValueFactory = _ => 400 };
        var seed = new Option<ulong>("--seed") { Description = "With --layout retro: seed of the draw.", DefaultValueFactory = _ => 1UL };
        var window = new Option<string>("--retro-window") { Description = "With --layout retro: aligned = the passage's tokens lined up with chunk u and their continuation; start = the passage's first 2C tokens (as the model was trained).", DefaultValueFactory = _ => "aligned" };
        var json = BenchCommand.JsonOption();
        var cmd = new Command("ralm", "Held-out bits per byte with and without retrieved passages (same weights; a document never retrieves itself): In-Context RALM, or the RETRO layout.")
            { model, tokenizer, input, limit, layout, chunk, neighbours, examples, seed, window, json };
        o.AddTo(cmd);
        cmd.SetAction(p =>
        {
            string dir = p.GetValue(o.index) ?? throw new ArgumentException("--index is required for eval ralm.");
            // Flags of the other layout are refused before the model loads.
            static List<string> Given(ParseResult p, params Option[] options) => [.. options.Where(x => p.GetResult(x) is { Implicit: false }).Select(x => x.Name)];
            var stray = p.GetValue(layout) switch
            {
                "ralm" => Given(p, chunk, neighbours, examples, seed, window),
                "retro" => Given(p, o.every, o.query, o.passages, o.passageTokens),
                var other => throw new ArgumentException($"--layout: expected ralm or retro, got '{other}'."),
            };
            if (stray.Count > 0) throw new ArgumentException($"{string.Join(", ", stray)} cannot be used with --layout {p.GetValue(layout)}.");
            var (owner, weights, resolved) = ModelFiles.LoadWeights(p.GetValue(model)!);
            using var _ = owner;
            var (tok, bos, _) = ModelFiles.LoadTokenizer(p.GetValue(model)!, resolved, p.GetValue(tokenizer));
            using var engine = new BatchingEngine(weights, new BatchingOptions { MaxSequences = 1 });
            using var idx = Bm25Index.Open(dir);
            var docs = DocumentSource.Read(p.GetValue(input)!).Take(p.GetValue(limit)).Select(d => (d.Id, (IReadOnlyList<int>)tok.Encode(d.Text))).ToList();
            if (docs.Count == 0) throw new ArgumentException($"{p.GetValue(input)}: no documents to score.");
            if (p.GetValue(layout) == "retro")
            {
                int b = bos ?? throw new ArgumentException($"--layout retro: the tokenizer has no {ChatTemplate.Bos} token, which the RETRO rows start with.");
                var r = Retrieval.Retro.RetroEvaluation.Run(engine, tok, b, idx, [.. docs.Select(d => (d.Id, d.Item2.ToArray()))], p.GetValue(chunk), p.GetValue(neighbours),
                    p.GetValue(examples), p.GetValue(seed), Retrieval.Retro.NeighbourWindows.Parse(p.GetValue(window)!));
                if (p.GetValue(json))
                    Console.WriteLine(JsonNaming.SerializeObject(new { model = resolved, index = dir, layout = "retro", chunk_tokens = p.GetValue(chunk), neighbours = p.GetValue(neighbours), window = p.GetValue(window), result = r }));
                else
                    Console.WriteLine($"{r.Documents} documents, {r.Examples:N0} examples (chunk u+1 of {p.GetValue(chunk)} tokens scored, {r.ScoredBytes:N0} bytes): bits/byte without retrieval {r.BitsPerByteWithout:F4}, " +
                        $"with {r.BitsPerByteWith:F4} ({r.BitsPerByteWith - r.BitsPerByteWithout:+0.0000;-0.0000}); 13-gram overlap with the neighbours mean {r.OverlapMean:F3}, above 0.5 for {r.OverlapOverHalf:P1}; " +
                        $"{r.FillerSlots} filler slots, passed over {r.SkippedOwnText} own and {r.SkippedHeldOutText} held-out hits (by {r.ExclusionRule})\n" +
                        "by 13-gram overlap: " + string.Join("; ", r.Buckets.Select(x => $"{x.Range}: {x.Examples} examples, without {x.BitsPerByteWithout:F4}, with {x.BitsPerByteWith:F4}")));
                return 0;
            }
            var ralm = new InContextRalm(engine, tok, idx, bos, o.Settings(p));
            double plain = ralm.BitsPerByte(docs, retrieve: false), with = ralm.BitsPerByte(docs, retrieve: true);
            if (p.GetValue(json))
                Console.WriteLine(JsonNaming.SerializeObject(new { model = resolved, index = dir, documents = docs.Count, tokens = docs.Sum(d => d.Item2.Count), stride = p.GetValue(o.every), query_tokens = p.GetValue(o.query), bpb_without = plain, bpb_with = with }));
            else
                Console.WriteLine($"{docs.Count} documents, {docs.Sum(d => d.Item2.Count):N0} tokens, s={p.GetValue(o.every)} q={p.GetValue(o.query)}: bits/byte without retrieval {plain:F4}, with {with:F4} ({with - plain:+0.0000;-0.0000})");
            return 0;
        });
        return cmd;
    }
}
