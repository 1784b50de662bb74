using System.CommandLine;
using System.Text.Json;
using Tessera.Inference;
using Tessera.Kernels.IO;
using Tessera.Server;
using Tessera.Training;

namespace Tessera.Cli.Commands;

/// <summary>
/// <c>tessera serve</c>: loads a checkpoint and its tokenizer and serves them over the
/// OpenAI-compatible API and chat page (see docs/server.md) until Ctrl+C.
/// </summary>
public static class ServeCommand
{
    /// <summary>Builds the <c>tessera serve</c> command with its options and handler.</summary>
    public static Command Create()
    {
        var model = new Option<string?>("--model") { Description = "Run or checkpoint folder (its latest checkpoint), .gguf file (quantized weights served as stored), or Hugging Face folder." };
        var ngram = new Option<string?>("--ngram") { Description = "∞-gram index folder to serve too (POST /v1/ngram/query, /v1/ngram/batch); alone, only those routes are served." };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Tokenizer (directory, file or `bytes`); default: the one saved with the checkpoint." };
        var port = new Option<int>("--port") { Description = "TCP port (0 picks a free one).", DefaultValueFactory = _ => 8000 };
        var host = new Option<string>("--host") { Description = "Address to bind; 127.0.0.1 keeps the server local to this machine.", DefaultValueFactory = _ => "127.0.0.1" };
        var name = new Option<string?>("--name") { Description = "Model id clients send as `model`; default: the run folder's name." };
        var log = new Option<bool>("--log") { Description = "Log server warnings and errors to the console." };
        var apiKey = new Option<string?>("--api-key") { Description = "Require 'Authorization: Bearer KEY' on every request but /health (default: $TESSERA_API_KEY; required off loopback)." };
        var insecure = new Option<bool>("--insecure") { Description = "Allow a non-loopback --host without --api-key." };
        var maxQueue = new Option<int>("--max-queue") { Description = "Most model requests running or queued; more get 429 + Retry-After.", DefaultValueFactory = _ => new ServerOptions().MaxQueue };
        var maxBody = new Option<long>("--max-body") { Description = "Largest request body in bytes (413 above).", DefaultValueFactory = _ => new ServerOptions().MaxBodyBytes };
        var maxTokens = new Option<int?>("--max-tokens") { Description = "Most completion tokens per request (default: the model's context)." };
        var chatIndex = new Option<string?>("--index") { Description = "Retrieval index folder: chat answers get the top passages in their prompt and cite them (document id, offsets) in a `citations` field." };
        var chatPassages = new Option<int>("--index-passages") { Description = "Passages retrieved per chat turn with --index.", DefaultValueFactory = _ => 3 };
        var cors = new Option<string[]>("--cors-origin") { Description = "Origin allowed to call the API from a browser (repeatable); default: none, CORS off.", AllowMultipleArgumentsPerToken = false };
        var json = BenchCommand.JsonOption();
        var prefixCache = new Option<int?>("--prefix-cache-mb") { Description = "KV blocks of shared prompt prefixes kept across requests, in MB (0 = off), reserved at start; a prompt whose KV alone is larger gets a 400. Default: the KV cache's own size (every slot at full context), at most 256." };
        var cascadeSmall = new Option<string?>("--cascade-small") { Description = "Cascade: a small model (run/checkpoint folder, same tokenizer) that answers each request unless its confidence in the prompt is below --cascade-threshold; --model is the large one (docs/cascade.md)." };
        var cascadeThreshold = new Option<double>("--cascade-threshold") { Description = "Cascade: confidence (geometric-mean prompt-token probability under the small model) below which a request goes to the large model; 0 = always small, 1 = always large.", DefaultValueFactory = _ => 0.05 };
        var trimSeconds = new Option<int>("--malloc-trim-seconds") { Description = "How often to hand the C library heap's free pages back to the kernel (glibc malloc_trim), in seconds; 0 = never.", DefaultValueFactory = _ => (int)new ServerOptions().NativeHeapTrimInterval.TotalSeconds };
        var arenas = new Option<int>("--malloc-arenas") { Description = "Most glibc malloc arenas the process spreads native allocations over (MALLOC_ARENA_MAX, which wins when set); 0 = glibc's default of 8 per core.", DefaultValueFactory = _ => 2 };
        var cmd = new Command("serve", "Serve a model over an OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions, /v1/embeddings) with a chat page at /.")
            { model, ngram, tokenizer, port, host, name, log, apiKey, insecure, maxQueue, maxBody, maxTokens, cors, prefixCache, json, chatIndex, chatPassages, cascadeSmall, cascadeThreshold, trimSeconds, arenas,
              ModuleServingLoad.All, ModuleCommand.Modules, ModuleCommand.Registry, ModuleServingLoad.Default };
        cmd.SetAction(async (p, cancel) =>
        {
            using var store = p.GetValue(ngram) is { } ngramDir ? Data.NGram.NGramStore.Open(ngramDir) : null;
            if (p.GetValue(model) is null)
            {
                if (store is null) throw new ArgumentException("give --model (a checkpoint or run folder) and/or --ngram (an index folder).");
                return await NGramCommand.ServeAsync(store, new ServerOptions { Host = p.GetValue(host)!, Port = p.GetValue(port) }, p.GetValue(json), cancel);
            }
            if (p.GetValue(trimSeconds) < 0) throw new ArgumentException($"--malloc-trim-seconds must be ≥ 0, got {p.GetValue(trimSeconds)}.");
            if (p.GetValue(arenas) < 0) throw new ArgumentException($"--malloc-arenas must be ≥ 0, got {p.GetValue(arenas)}.");
            // Before the engine starts its threads: each thread that contends for malloc would otherwise get an arena of its own.
            if (p.GetValue(arenas) > 0) NativeHeap.LimitArenas(p.GetValue(arenas));
            string path = Path.GetFullPath(p.GetValue(model)!);
            var (owner, weights, dir) = ModelFiles.LoadWeights(path);
            using var transformer = owner;
            var tok = ModelFiles.LoadTokenizer(path, dir, p.GetValue(tokenizer)).Tokenizer;
            if (weights.Config.VocabSize < tok.VocabSize)
                throw new InvalidDataException($"{dir}: the tokenizer has {tok.VocabSize} ids but the model only {weights.Config.VocabSize}.");
            store?.CheckTokenizer(Data.NGram.TokenizerIdentity.Of(tok));
            string id = p.GetValue(name) ?? DefaultName(dir);
            // Concurrent requests share one continuous-batching engine (greedy output equals the reference forward's).
            if (p.GetValue(prefixCache) < 0) throw new ArgumentException($"--prefix-cache-mb must be ≥ 0, got {p.GetValue(prefixCache)}.");
            long prefixCacheBytes = p.GetValue(prefixCache) is { } mb ? (long)mb << 20 : BatchingOptions.DefaultPrefixCacheBytes(weights.Config);
            // Modules (docs/modules.md) attach to the fp32 base before the engine is built; requests turn them on by id.
            if (ModuleServingLoad.Wanted(p) && p.GetValue(cascadeSmall) is not null) throw new ArgumentException("--cascade-small cannot be combined with --module/--modules.");
            var (attached, refused) = ModuleServingLoad.Wanted(p) ? ModuleServingLoad.Attach(p, transformer, Console.Error.WriteLine) : (null, null);
            using var engine = new BatchingEngine(weights, new BatchingOptions { PrefixCacheBytes = prefixCacheBytes }, attached);
            using var index = p.GetValue(chatIndex) is { } indexDir ? Retrieval.Sparse.Bm25Index.Open(indexDir) : null;
            using var embedder = ImagePrompt.TryLoadEmbedder(path, weights.Config.Dim);   // a multimodal folder also takes images in chat
            var served = new ServedModel(id, engine, tok)
            {
                Retriever = index is null ? null : new IndexChatRetriever(index, p.GetValue(chatPassages)),
                Vision = embedder is null ? null : new ServedVision(embedder, tok),
            };
            var options = new ServerOptions
            {
                Host = p.GetValue(host)!, Port = p.GetValue(port), Log = p.GetValue(log),
                ApiKey = p.GetValue(apiKey) ?? (Environment.GetEnvironmentVariable("TESSERA_API_KEY") is { Length: > 0 } envKey ? envKey : null),
                Insecure = p.GetValue(insecure), MaxQueue = p.GetValue(maxQueue), MaxBodyBytes = p.GetValue(maxBody),
                MaxTokensPerRequest = p.GetValue(maxTokens), CorsOrigins = p.GetValue(cors) ?? [], NGram = store,
                NativeHeapTrimInterval = TimeSpan.FromSeconds(p.GetValue(trimSeconds)),
            };
            using var small = p.GetValue(cascadeSmall) is { } smallPath ? CascadeServing.LoadSmall(smallPath, p.GetValue(tokenizer), p.GetValue(prefixCache)) : null;
            var cascade = small is null ? null : CascadeServing.Build(p.GetValue(name), small, served, DefaultName(dir), p.GetValue(cascadeThreshold));
            if (cascade is not null) id = cascade.Id;
            var composed = attached is null ? null : new ModuleServing(served, engine, refused, p.GetValue(ModuleServingLoad.Default) == "all");
            await using var server = composed is not null ? await TesseraServer.StartAsync(composed, options, cancel)
                : cascade is null ? await TesseraServer.StartAsync(served, options, cancel) : await TesseraServer.StartAsync(cascade, options, cancel);
            if (p.GetValue(json))
                Console.WriteLine(JsonSerializer.Serialize(new { address = server.Address.ToString(), model = id, checkpoint = dir, tokenizer = tok.Name, context = weights.Config.ContextLength, modules = composed?.Ids, refused_modules = refused }, JsonNaming.Line));
            else
            {
                Console.WriteLine($"serving {id} ({dir}, tokenizer {tok.Name}, context {weights.Config.ContextLength})");
                if (composed is not null) Console.WriteLine($"modules: {string.Join(", ", composed.Ids.Select(m => $"{id}+{m}"))} (default: {(composed.DefaultAll ? "all on" : "base only")})");
                if (cascade is not null) Console.WriteLine($"cascade '{cascade.Id}': small '{cascade.Small.Id}' ({small!.Dir}), large '{cascade.Large.Id}', threshold {cascade.Threshold}");
                Console.WriteLine($"chat page: {server.Address}   API: {server.Address}v1   (Ctrl+C stops)");
            }
            try { await server.WaitForShutdownAsync(cancel); }
            catch (OperationCanceledException) { }
            return 0;
        });
        return cmd;
    }

    /// <summary>
    /// The run's name: the checkpoint folder's, or for step-NNNNNNNN folders the run folder's (and
    /// above a quickstart's generic <c>model</c> folder, its parent's).
    /// </summary>
    internal static string DefaultName(string checkpointDir)
    {
        string dir = checkpointDir.TrimEnd(Path.DirectorySeparatorChar);
        while (Path.GetFileName(dir) is { } n && (n.StartsWith("step-", StringComparison.Ordinal) || n == "model") && Path.GetDirectoryName(dir) is { Length: > 1 } parent)
            dir = parent;
        return Path.GetFileName(dir) is { Length: > 0 } name ? name : "tessera";
    }
}
