using System.CommandLine;
using System.Text.Json;
using Tessera.Data;
using Tessera.Kernels.IO;
using Tessera.Model;
using Tessera.Model.Checkpoints;
using Tessera.Text;
using Tessera.Training;

namespace Tessera.Cli.Commands;

/// <summary>
/// <c>tessera quantize</c>: a checkpoint (or a GGUF) → a llama-architecture GGUF with F32/F16/BF16/Q8_0/Q4_0
/// or ternary weight matrices and the checkpoint's tokenizer embedded as <c>tokenizer.ggml.*</c>; <c>--report</c> adds perplexity and KL against fp32 for every type.
/// </summary>
public static class QuantizeCommand
{
    static readonly Dictionary<string, GgufWeightType> Types = new(StringComparer.OrdinalIgnoreCase)
    {
        ["f32"] = GgufWeightType.F32, ["f16"] = GgufWeightType.F16, ["bf16"] = GgufWeightType.BF16,
        ["q8_0"] = GgufWeightType.Q8_0, ["q4_0"] = GgufWeightType.Q4_0, ["ternary"] = GgufWeightType.Ternary,
        ["q4_k"] = GgufWeightType.Q4_K, ["q5_k"] = GgufWeightType.Q5_K, ["q6_k"] = GgufWeightType.Q6_K,
    };

    /// <summary>Builds the <c>tessera quantize</c> command with its options and handler.</summary>
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Checkpoint folder, run folder (latest checkpoint), .gguf file or Hugging Face folder.", Required = true };
        var type = new Option<string>("--type") { Description = "Weight storage: f32, f16, bf16, q8_0, q4_0, q4_k, q5_k, q6_k, ternary.", DefaultValueFactory = _ => "q8_0" };
        var output = new Option<string>("--out") { Description = "Output .gguf file (written atomically).", Required = true };
        var group = new Option<int>("--group") { Description = "Ternary: weights per absmean scale (multiple of 32; 0 = one per tensor).", DefaultValueFactory = _ => 64 };
        var report = new Option<bool>("--report") { Description = "Also measure perplexity and KL vs fp32 for every type on held-out tokens." };
        var data = new Option<string?>("--data") { Description = "Held-out token shard (.bin) for --report; default: data/val.bin of the run." };
        var evalTokens = new Option<int>("--eval-tokens") { Description = "Held-out tokens the report reads.", DefaultValueFactory = _ => 16384 };
        var seq = new Option<int>("--seq") { Description = "Window length of the report (≤ the model's context).", DefaultValueFactory = _ => 256 };
        var noTokenizer = new Option<bool>("--no-tokenizer") { Description = "Do not embed the checkpoint's tokenizer (embedded by default, so llama.cpp and `generate --model FILE.gguf` can use it)." };
        var json = BenchCommand.JsonOption();
        var cmd = new Command("quantize", "Write a model as a GGUF of its architecture with quantized weights and its tokenizer; --report measures the quality cost.")
        {
            model, type, output, group, report, data, evalTokens, seq, noTokenizer, json,
        };
        cmd.SetAction((p, cancel) =>
        {
            bool quiet = p.GetValue(json);
            string source = p.GetValue(model)!;
            string typeName = p.GetValue(type)!;
            if (!Types.TryGetValue(typeName, out var weightType))
                throw new ArgumentException($"Unknown --type '{typeName}'. Known types: {string.Join(", ", Types.Keys)}.");
            int groupSize = p.GetValue(group);
            using var reference = Load(source);
            string outPath = p.GetValue(output)!;
            string tokenizerNote = "no tokenizer embedded (--no-tokenizer)";
            var tokenizer = p.GetValue(noTokenizer) ? null : FindTokenizer(source, out tokenizerNote);
            var options = new GgufExportOptions
            {
                Type = weightType, TernaryGroup = groupSize, Name = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(source))),
                Tokenizer = tokenizer,
            };
            GgufModel.Save(reference, outPath, options);
            long bytes = new FileInfo(outPath).Length;
            if (!quiet)
            {
                Console.WriteLine($"wrote {outPath}: {typeName}, {bytes / 1e6:F2} MB, {bytes * 8.0 / reference.Config.ParameterCount:F2} bits/parameter ({reference.Config.ParameterCount:N0} parameters)");
                Console.WriteLine(tokenizerNote);
            }

            IReadOnlyList<QuantizeReport.Row>? rows = null;
            if (p.GetValue(report))
            {
                string shardPath = p.GetValue(data) ?? FindValidation(source);
                using var shard = TokenShard.Open(shardPath);
                int n = (int)Math.Min(shard.TokenCount, Math.Max(2, p.GetValue(evalTokens)));
                var tokens = new int[n];
                shard.Read(0, tokens);
                string temp = Path.Combine(Path.GetTempPath(), $"tessera-quant-report-{Environment.ProcessId}");
                try
                {
                    rows = QuantizeReport.Run(reference, tokens, p.GetValue(seq), groupSize == 0 ? 64 : groupSize, temp,
                        quiet ? null : msg => Console.Error.Write($"\r{msg}   "));
                }
                finally { if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true); }
                if (!quiet)
                {
                    Console.Error.WriteLine();
                    Console.WriteLine($"quality on {n:N0} held-out tokens of {shardPath} (KL = mean KL(p_fp32 ‖ p_quant), nats/token):");
                    Console.WriteLine($"{"variant",-16} {"MB",8} {"bits/param",10} {"perplexity",11} {"KL",10} {"top-1 = fp32",13}");
                    foreach (var r in rows)
                        Console.WriteLine($"{r.Variant,-16} {r.FileBytes / 1e6,8:F2} {r.BitsPerParameter,10:F2} {r.Perplexity,11:F3} {r.KlDivergence,10:E2} {r.Top1Agreement,12:P1}");
                }
            }
            if (quiet) Console.WriteLine(JsonSerializer.Serialize(new { output = outPath, type = typeName, bytes, parameters = reference.Config.ParameterCount, tokenizer = tokenizer?.Name, report = rows }, JsonNaming.Line));
            return Task.FromResult(0);
        });
        return cmd;
    }

    /// <summary>
    /// The tokenizer to embed: a checkpoint's <c>tokenizer/</c> folder (as <c>generate</c> loads it),
    /// or the vocabulary already inside a source GGUF; null (with a note saying why) when there is none.
    /// </summary>
    static ITokenizer? FindTokenizer(string source, out string note)
    {
        if (source.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase))
        {
            if (!GgufVocabReader.Read(source).Values.ContainsKey("tokenizer.ggml.model")) { note = $"no tokenizer embedded: {source} has none"; return null; }
            var fromGguf = GgufVocabulary.Load(source).Tokenizer;
            note = $"embedded tokenizer {fromGguf.Name} ({fromGguf.VocabSize} ids) from {source}";
            return fromGguf;
        }
        string dir = Path.Combine(Checkpoint.Resolve(source), Checkpoint.TokenizerFolder);
        if (!Directory.Exists(dir)) { note = $"no tokenizer embedded: {dir} does not exist"; return null; }
        var tok = RunSetup.LoadRunTokenizer(dir);
        note = $"embedded tokenizer {tok.Name} ({tok.VocabSize} ids) from {dir}";
        return tok;
    }

    static Transformer Load(string source) => ModelFiles.LoadModel(source).Model;

    /// <summary>data/val.bin of the run holding the checkpoint (searched up to three folders up).</summary>
    static string FindValidation(string source)
    {
        for (var dir = new DirectoryInfo(Path.GetFullPath(source)); dir is not null && dir.FullName.Length > 1; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "data", "val.bin");
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException($"No held-out shard found above {source} (looked for data/val.bin); pass --data FILE.bin.");
    }
}
