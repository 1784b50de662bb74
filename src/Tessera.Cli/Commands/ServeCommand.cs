using System.CommandLine;
using System.Text.Json;
using Tessera.Inference;
using Tessera.Server;
using Tessera.Training;

namespace Tessera.Cli.Commands;

/// <summary>
/// <c>tessera serve</c>: loads a checkpoint and its tokenizer and serves them over the
/// OpenAI-compatible API and chat page (see docs/server.md) until Ctrl+C.
/// </summary>
public static class ServeCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Checkpoint folder, or a run folder (its latest checkpoint is served).", Required = true };
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
        var cors = new Option<string[]>("--cors-origin") { Description = "Origin allowed to call the API from a browser (repeatable); default: none, CORS off.", AllowMultipleArgumentsPerToken = false };
        var json = BenchCommand.JsonOption();
        var cmd = new Command("serve", "Serve a checkpoint over an OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions, /v1/embeddings) with a chat page at /.")
            { model, tokenizer, port, host, name, log, apiKey, insecure, maxQueue, maxBody, maxTokens, cors, json };
        cmd.SetAction(async (p, cancel) =>
        {
            string path = Path.GetFullPath(p.GetValue(model)!);
            string dir = Checkpoint.Resolve(path);
            string tokPath = p.GetValue(tokenizer) ?? FindTokenizer(dir, path);
            var tok = File.Exists(tokPath) || tokPath == "bytes" ? Text.TokenizerFiles.Load(tokPath) : RunSetup.LoadRunTokenizer(tokPath);
            using var transformer = Checkpoint.LoadModel(dir);
            string id = p.GetValue(name) ?? DefaultName(dir);
            // Concurrent requests share one continuous-batching engine (greedy output equals ReferenceEngine's).
            using var engine = new BatchingEngine(transformer);
            var served = new ServedModel(id, engine, tok);
            var options = new ServerOptions
            {
                Host = p.GetValue(host)!, Port = p.GetValue(port), Log = p.GetValue(log),
                ApiKey = p.GetValue(apiKey) ?? (Environment.GetEnvironmentVariable("TESSERA_API_KEY") is { Length: > 0 } envKey ? envKey : null),
                Insecure = p.GetValue(insecure), MaxQueue = p.GetValue(maxQueue), MaxBodyBytes = p.GetValue(maxBody),
                MaxTokensPerRequest = p.GetValue(maxTokens), CorsOrigins = p.GetValue(cors) ?? [],
            };
            await using var server = await TesseraServer.StartAsync(served, options, cancel);
            if (p.GetValue(json))
                Console.WriteLine(JsonSerializer.Serialize(new { address = server.Address.ToString(), model = id, checkpoint = dir, tokenizer = tok.Name, context = transformer.Config.ContextLength }));
            else
            {
                Console.WriteLine($"serving {id} ({dir}, tokenizer {tok.Name}, context {transformer.Config.ContextLength})");
                Console.WriteLine($"chat page: {server.Address}   API: {server.Address}v1   (Ctrl+C stops)");
            }
            try { await server.WaitForShutdownAsync(cancel); }
            catch (OperationCanceledException) { }
            return 0;
        });
        return cmd;
    }

    /// <summary>The checkpoint's own tokenizer folder, else the run folder's.</summary>
    static string FindTokenizer(string checkpointDir, string given)
    {
        foreach (var candidate in (string[])[Path.Combine(checkpointDir, Checkpoint.TokenizerFolder), Path.Combine(given, Checkpoint.TokenizerFolder),
                     Path.Combine(Path.GetDirectoryName(checkpointDir) ?? checkpointDir, Checkpoint.TokenizerFolder)])
            if (Directory.Exists(candidate)) return candidate;
        throw new ArgumentException($"no tokenizer saved with {checkpointDir}; pass --tokenizer");
    }

    /// <summary>
    /// The run's name: the checkpoint folder's, or for step-NNNNNNNN folders the run folder's (and
    /// above a quickstart's generic <c>model</c> folder, its parent's).
    /// </summary>
    static string DefaultName(string checkpointDir)
    {
        string dir = checkpointDir.TrimEnd(Path.DirectorySeparatorChar);
        while (Path.GetFileName(dir) is { } n && (n.StartsWith("step-", StringComparison.Ordinal) || n == "model") && Path.GetDirectoryName(dir) is { Length: > 1 } parent)
            dir = parent;
        return Path.GetFileName(dir) is { Length: > 0 } name ? name : "tessera";
    }
}
