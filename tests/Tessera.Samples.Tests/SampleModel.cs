using System.Diagnostics;
using Tessera.Inference;
using Tessera.Model;
using Tessera.Model.Checkpoints;
using Tessera.Server;
using Tessera.Text;

namespace Tessera.Samples.Tests;

/// <summary>
/// The model the samples run on, made at test time (nothing is downloaded): a BPE tokenizer trained
/// on a few paragraphs and a small llama-family MoE with seeded random weights, saved as one GGUF
/// file (tokenizer embedded) through the project's own writer.
/// </summary>
public sealed class SampleModel : IDisposable
{
    const string Text = """
        A tessera is one of the small pieces of stone, glass or tile that make up a mosaic. Craftsmen
        cut the tesserae by hand, sort them by colour and set them one by one into a bed of mortar.
        Seen from close by, a mosaic is a field of separate pieces; seen from a few steps away, the
        pieces merge into faces, animals, ships and gardens. Roman floors, Byzantine domes and the
        walls of modern stations all use the same idea: many small parts, each simple, together
        carry a picture that none of them holds alone.
        """;

    /// <summary>Folder holding <see cref="Path"/>; deleted on dispose.</summary>
    public string Directory { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "tessera-samples-tests", Guid.NewGuid().ToString("N"));

    /// <summary>The GGUF file.</summary>
    public string Path { get; }

    /// <summary>Makes and saves the model.</summary>
    public SampleModel()
    {
        System.IO.Directory.CreateDirectory(Directory);
        var tokenizer = BpeTrainer.Train(Enumerable.Repeat(Text, 8), new BpeTrainerOptions(VocabSize: 384), out _);
        var config = new ModelConfig
        {
            VocabSize = tokenizer.VocabSize, Dim = 32, Layers = 2, Heads = 2, KvHeads = 1, HiddenDim = 48, Experts = 2, TopK = 1, ContextLength = 128,
            // Untied: a random model with tied embeddings greedily repeats its last input token.
            TiedEmbeddings = false,
        };
        using var model = new Transformer(config, seed: 20);
        Path = System.IO.Path.Combine(Directory, "tiny-moe.gguf");
        GgufModel.Save(model, Path, new GgufExportOptions { Type = GgufWeightType.F32, Tokenizer = tokenizer });
    }

    /// <summary>
    /// The engine's own greedy reply to one user message, decoded the plain way: the ids a greedy
    /// decode produces up to a stop id (excluded), special tokens left out, decoded all at once.
    /// </summary>
    public async Task<string> GreedyReply(string prompt, int maxTokens)
    {
        using var engine = new BatchingEngine(GgufWeights.Load(Path));
        var tokenizer = GgufVocabulary.Load(Path).Tokenizer;
        var served = new ServedModel("tiny-moe", engine, tokenizer);
        var ids = new List<int>();
        var finish = FinishReason.None;
        var request = new GenerationRequest(served.EncodeChat([new ChatMessage("user", prompt)]), maxTokens, SamplingOptions.Greedy, served.ChatStopIds);
        await foreach (var e in engine.GenerateAsync(request))
        {
            ids.Add(e.Id);
            finish = e.Finish;
        }
        if (finish == FinishReason.Stop) ids.RemoveAt(ids.Count - 1);
        return tokenizer.Decode(ids.Where(id => !tokenizer.SpecialTokens.IsSpecial(id)).ToArray());
    }

    /// <summary>Deletes the model folder.</summary>
    public void Dispose() => System.IO.Directory.Delete(Directory, recursive: true);
}

/// <summary>What one sample run printed and returned.</summary>
public sealed record SampleRun(int ExitCode, string Stdout, string Stderr);

/// <summary>Runs a sample's built dll (copied beside the tests) as a child process.</summary>
public static class Samples
{
    /// <summary>Runs <c>dotnet NAME.dll ARGS</c> with a time limit; fails the test on timeout.</summary>
    public static SampleRun Run(string name, params string[] args)
    {
        string dll = System.IO.Path.Combine(AppContext.BaseDirectory, name + ".dll");
        Assert.True(File.Exists(dll), $"{dll} is missing: the test project must reference samples/{name}.");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"sample {name} did not finish in 2 minutes.");
        }
        return new SampleRun(p.ExitCode, stdout.Result, stderr.Result);
    }
}
