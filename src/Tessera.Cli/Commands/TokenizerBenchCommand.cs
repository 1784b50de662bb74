using System.CommandLine;
using System.Text.Json;
using Tessera.Bench;
using Tessera.Kernels.IO;

namespace Tessera.Cli.Commands;

/// <summary><c>tessera bench tokenizer</c>: encode MB/s, training time, and the same-run JS and spm_train peers.</summary>
public static class TokenizerBenchCommand
{
    /// <summary>Builds the <c>tessera bench tokenizer</c> command with its options and handler.</summary>
    public static Command Create()
    {
        var mb = new Option<double>("--mb") { Description = "Megabytes of the default English corpus to use.", DefaultValueFactory = _ => 4 };
        var vocab = new Option<int>("--vocab-size") { Description = "Vocabulary size for training (tessera and spm_train).", DefaultValueFactory = _ => 8192 };
        var cl100k = new Option<string?>("--cl100k") { Description = "Path to cl100k_base.tiktoken (default: ../shared/data or $TESSERA_SHARED)." };
        var repeats = new Option<int>("--repeats") { Description = "Timed repetitions per figure (best kept).", DefaultValueFactory = _ => 3 };
        var peersOnly = new Option<bool>("--peers-only") { Description = "Only the same-run peer comparisons (Microsoft.ML.Tokenizers, HF tokenizers) on english, code, multilingual and llama.cpp inputs." };
        var peerMb = new Option<double>("--peer-mb") { Description = "Megabytes per text class for the peer comparisons.", DefaultValueFactory = _ => 1 };
        var json = BenchCommand.JsonOption();
        var cmd = new Command("tokenizer", "Encode MB/s (1 thread, all cores) for cl100k_base and a trained vocab, BPE training time; compares with Microsoft.ML.Tokenizers, HF tokenizers (Rust), gpt-tokenizer, js-tiktoken and spm_train in the same run.")
            { mb, vocab, cl100k, repeats, peersOnly, peerMb, json };
        cmd.SetAction(p =>
        {
            bool asJson = p.GetValue(json);
            var result = TokenizerBench.Run(new TokenizerBenchOptions(p.GetValue(mb), p.GetValue(vocab), p.GetValue(cl100k), p.GetValue(repeats), p.GetValue(peersOnly), p.GetValue(peerMb)),
                line => (asJson ? Console.Error : Console.Out).WriteLine(line));
            if (asJson) Console.WriteLine(JsonSerializer.Serialize(result, JsonNaming.Line));
            return 0;
        });
        return cmd;
    }
}
