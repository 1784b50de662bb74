using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Tessera.Data;
using Tessera.Inference;
using Tessera.Kernels.IO;
using Tessera.Model;
using Tessera.Text;
using Tessera.Training;

namespace Tessera.Cli.Commands;

/// <summary>
/// <c>tessera quickstart</c>, the main job: on the embedded corpus, train (or reuse) a BPE
/// tokenizer, prepare shards, pre-train a small MoE model for a fixed budget, report held-out
/// bits per byte and print samples. Everything lands under the output folder.
/// </summary>
public static class QuickstartCommand
{
    static readonly string[] Prompts = ["The ship", "Fellow-citizens of the Senate and House of Representatives:", "Call me"];

    /// <summary>Builds the <c>tessera quickstart</c> command with its options and handler.</summary>
    public static Command Create()
    {
        var output = new Option<string>("--out") { Description = "Run folder.", DefaultValueFactory = _ => "runs/quickstart" };
        var steps = new Option<long>("--steps") { Description = "Optimizer steps (the default fits in about 10 minutes on 2 cores).", DefaultValueFactory = _ => 3000 };
        var vocab = new Option<int>("--vocab-size") { Description = "BPE vocabulary trained on the corpus.", DefaultValueFactory = _ => 4096 };
        var preset = new Option<string>("--preset") { Description = "Model preset.", DefaultValueFactory = _ => "tiny-moe" };
        var sampleTokens = new Option<int>("--sample-tokens") { Description = "Tokens generated per sample.", DefaultValueFactory = _ => 48 };
        var seed = new Option<ulong>("--seed") { Description = "Seed for weights, data order and sampling.", DefaultValueFactory = _ => 1337UL };
        var json = BenchCommand.JsonOption();
        var cmd = new Command("quickstart", "The main job: tokenizer → shards → MoE pre-training → held-out eval → samples, on the embedded corpus.")
            { output, steps, vocab, preset, sampleTokens, seed, json };
        cmd.SetAction((p, cancel) =>
        {
            bool quiet = p.GetValue(json);
            var total = Stopwatch.StartNew();
            string outDir = p.GetValue(output)!;
            var options = new TrainOptions
            {
                Steps = p.GetValue(steps), BatchSize = 16, SequenceLength = 128, LearningRate = 4e-3f, MinLearningRate = 4e-4f,
                WarmupSteps = Math.Max(1, p.GetValue(steps) / 20), EvalEvery = Math.Max(1, p.GetValue(steps) / 4), EvalBatches = 16,
                CheckpointEvery = Math.Max(1, p.GetValue(steps) / 4), Seed = p.GetValue(seed),
            }.Validate();
            void Say(string s) { if (!quiet) Console.WriteLine(s); }

            // 1. Tokenizer: reuse when already trained with the same vocabulary size.
            string tokDir = Path.Combine(outDir, "tokenizer");
            var sw = Stopwatch.StartNew();
            ITokenizer tok;
            if (File.Exists(Path.Combine(tokDir, TokenizerFiles.ConfigFile)) && (tok = TokenizerFiles.Load(tokDir)).VocabSize == p.GetValue(vocab))
                Say($"[1/5] tokenizer: reusing {tokDir} ({tok.VocabSize} tokens)");
            else
            {
                string corpus = EmbeddedCorpus.Materialize(Path.Combine(outDir, "corpus"));
                var bpe = BpeTrainer.Train(TrainingCorpus.FromPath(corpus), new BpeTrainerOptions(p.GetValue(vocab), PreTokenizer.Cl100kPattern, null, 0), out var rep);
                TokenizerFiles.Save(bpe, tokDir);
                tok = bpe;
                Say($"[1/5] tokenizer: trained {bpe.VocabSize} tokens on {rep.Characters:N0} characters in {sw.Elapsed.TotalSeconds:F1} s → {tokDir}");
            }
            double tokenizerSeconds = sw.Elapsed.TotalSeconds;

            // 2. Shards: reuse when prepared with this tokenizer.
            sw.Restart();
            string dataDir = Path.Combine(outDir, "data");
            PreparedData prepared;
            if (File.Exists(Path.Combine(dataDir, PreparedData.MetaFile)) && PreparedData.Load(dataDir) is { } old && old.VocabSize == tok.VocabSize
                && KeepsTokenizer(old, tokDir))
            {
                prepared = old;
                Say($"[2/5] data: reusing {dataDir}");
            }
            else
            {
                prepared = ShardBuilder.Prepare(EmbeddedCorpus.Read(Path.Combine(outDir, "corpus")), tok, tokDir, new DocumentSplit(), dataDir);
                Say($"[2/5] data: {prepared.Train.Tokens:N0} train / {prepared.Validation.Tokens:N0} val / {prepared.Test.Tokens:N0} test tokens " +
                    $"({prepared.Train.Documents}/{prepared.Validation.Documents}/{prepared.Test.Documents} documents) in {sw.Elapsed.TotalSeconds:F1} s");
            }

            // 3 + 4. Pre-train from scratch (evaluating on the held-out validation split as it goes).
            string modelDir = Path.Combine(outDir, "model");
            if (Directory.Exists(modelDir)) Directory.Delete(modelDir, recursive: true);
            Directory.CreateDirectory(modelDir);
            RunSetup.CopyTokenizer(tokDir, Path.Combine(modelDir, Checkpoint.TokenizerFolder));
            var config = ModelConfig.Preset(p.GetValue(preset)!) with { VocabSize = tok.VocabSize };
            Say($"[3/5] pre-training {p.GetValue(preset)} on the embedded corpus");
            var result = TrainCommand.Run(config.Validate(), options, prepared, modelDir, resume: false, quiet, cancel);
            Say($"[4/5] held-out: val loss {result.ValLoss:F4} nats/token, {result.ValBitsPerByte:F4} bits/byte");

            // 5. Samples from the final checkpoint.
            sw.Restart();
            using var model = Checkpoint.LoadModel(modelDir);
            var reference = new ReferenceEngine(model);
            int bos = tok.SpecialTokens.Id(ChatTemplate.Bos);
            var samples = new List<object>();
            Say("[5/5] samples (temperature 0.8, top-k 40):");
            for (int i = 0; i < Prompts.Length; i++)
            {
                var prompt = new List<int> { bos };
                prompt.AddRange(tok.Encode(Prompts[i]));
                var ids = reference.Generate(prompt, p.GetValue(sampleTokens),
                    new SamplingOptions { Temperature = 0.8f, TopK = 40, Seed = p.GetValue(seed) + (ulong)i });
                string text = tok.Decode(ids.ToArray().AsSpan(1));
                samples.Add(new { prompt = Prompts[i], text });
                Say($"  » {text.Replace("\n", " ")}");
            }
            var summary = new
            {
                run = Path.GetFullPath(outDir), preset = p.GetValue(preset), parameters = result.Parameters, active_parameters = result.ActiveParameters,
                steps = result.Steps, tokens_per_step = options.TokensPerStep, train_tokens = prepared.Train.Tokens,
                final_train_loss = result.FinalLoss, val_loss = result.ValLoss, val_bits_per_byte = result.ValBitsPerByte,
                tokens_per_second = result.TokensPerSecond, mfu = result.Mfu, train_seconds = result.Seconds,
                tokenizer_seconds = tokenizerSeconds, total_seconds = total.Elapsed.TotalSeconds, samples,
            };
            string summaryJson = JsonSerializer.Serialize(summary, JsonNaming.Indented);
            AtomicFile.WriteAllText(Path.Combine(outDir, "summary.json"), summaryJson + "\n");
            if (quiet) Console.WriteLine(JsonSerializer.Serialize(summary, JsonNaming.Line));
            else Console.WriteLine($"done in {RunSetup.Fmt(total.Elapsed)}: held-out {result.ValBitsPerByte:F4} bits/byte, {result.TokensPerSecond:N0} tokens/s " +
                                   $"(MFU {result.Mfu * 100:F1}%) → {Path.Combine(outDir, "summary.json")}");
            return Task.FromResult(0);
        });
        return cmd;
    }

    /// <summary>True when the data folder's copy of the tokenizer has the same files as <paramref name="tokDir"/>.</summary>
    static bool KeepsTokenizer(PreparedData data, string tokDir)
    {
        foreach (string f in new[] { TokenizerFiles.RanksFile, TokenizerFiles.ConfigFile })
        {
            string kept = Path.Combine(data.Directory, PreparedData.TokenizerFolder, f), ours = Path.Combine(tokDir, f);
            if (!File.Exists(kept) || !File.Exists(ours) || !File.ReadAllBytes(kept).AsSpan().SequenceEqual(File.ReadAllBytes(ours))) return false;
        }
        return true;
    }
}
