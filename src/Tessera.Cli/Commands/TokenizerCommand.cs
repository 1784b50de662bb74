using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Tessera.Kernels.IO;
using Tessera.Text;

namespace Tessera.Cli.Commands;

/// <summary><c>tessera tokenizer train|encode|decode</c>.</summary>
public static class TokenizerCommand
{
    /// <summary>Builds the <c>tessera tokenizer</c> command with its options and handler.</summary>
    public static Command Create()
    {
        var cmd = new Command("tokenizer", "Train a byte-level BPE tokenizer, or encode/decode with any supported tokenizer.");
        cmd.Subcommands.Add(Train());
        cmd.Subcommands.Add(Encode());
        cmd.Subcommands.Add(Decode());
        return cmd;
    }

    private static Option<string> TokenizerOption() => new("--tokenizer")
    {
        Description = "Tokenizer: a directory from `train`, a .gguf, a HF tokenizer.json, r50k/cl100k/o200k_base.tiktoken, or `bytes`.",
        Required = true,
    };

    private static Command Train()
    {
        var input = new Option<string>("--input") { Description = "Training text: a file, a folder (all files, sorted), .gz allowed; `-` for stdin.", Required = true };
        var vocab = new Option<int>("--vocab-size") { Description = "Total vocabulary: 256 bytes + merges + special tokens.", DefaultValueFactory = _ => 8192 };
        var output = new Option<string>("--out") { Description = "Output directory (tokenizer.tiktoken + tokenizer-config.json).", Required = true };
        var pattern = new Option<string>("--pattern") { Description = "Pre-tokenizer regex (Rust/PCRE dialect).", DefaultValueFactory = _ => PreTokenizer.Cl100kPattern };
        var special = new Option<string[]>("--special") { Description = "Special tokens (repeatable); default: the chat template's set.", AllowMultipleArgumentsPerToken = true };
        var threads = new Option<int>("--threads") { Description = "Threads for counting (0 = all cores).", DefaultValueFactory = _ => 0 };
        var json = BenchCommand.JsonOption();
        var cmd = new Command("train", "Train a byte-level BPE tokenizer and save it in tiktoken format.") { input, vocab, output, pattern, special, threads, json };
        cmd.SetAction(p =>
        {
            string inPath = p.GetValue(input)!;
            var specials = p.GetValue(special) is { Length: > 0 } s ? s : null;
            var options = new BpeTrainerOptions(p.GetValue(vocab), p.GetValue(pattern)!, specials, p.GetValue(threads));
            var chunks = inPath == "-" ? TrainingCorpus.FromStream(Console.OpenStandardInput()) : TrainingCorpus.FromPath(inPath);
            var sw = Stopwatch.StartNew();
            var tok = BpeTrainer.Train(chunks, options, out var report, msg => Console.Error.WriteLine(msg));
            string outDir = p.GetValue(output)!;
            TokenizerFiles.Save(tok, outDir);
            double seconds = sw.Elapsed.TotalSeconds;
            if (p.GetValue(json))
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    @out = Path.GetFullPath(outDir), vocab_size = tok.VocabSize, merges = report.Merges, specials = tok.SpecialTokens.Count,
                    characters = report.Characters, unique_pieces = report.UniquePieces,
                    count_seconds = report.CountTime.TotalSeconds, merge_seconds = report.MergeTime.TotalSeconds, total_seconds = seconds,
                }, JsonNaming.Line));
            else
                Console.WriteLine($"trained {tok.VocabSize} tokens ({report.Merges} merges, {tok.SpecialTokens.Count} specials) on {report.Characters:N0} chars " +
                                  $"in {seconds:F2} s (count {report.CountTime.TotalSeconds:F2} s, merge {report.MergeTime.TotalSeconds:F2} s) → {outDir}");
            return 0;
        });
        return cmd;
    }

    private static Command Encode()
    {
        var tokenizer = TokenizerOption();
        var text = new Option<string>("--text") { Description = "Text to encode." };
        var file = new Option<string>("--file") { Description = "File whose bytes to encode (invalid UTF-8 allowed)." };
        var special = new Option<bool>("--allow-special") { Description = "Turn special-token text (e.g. <|eos|>) into special ids." };
        var json = BenchCommand.JsonOption();
        var cmd = new Command("encode", "Print the token ids of a text or file.") { tokenizer, text, file, special, json };
        cmd.SetAction(p =>
        {
            var tok = TokenizerFiles.Load(p.GetValue(tokenizer)!);
            string? t = p.GetValue(text), f = p.GetValue(file);
            if ((t is null) == (f is null)) throw new ArgumentException("give exactly one of --text or --file");
            List<int> ids;
            if (t is not null) ids = tok.Encode(t, p.GetValue(special));
            else if (p.GetValue(special)) ids = tok.Encode(File.ReadAllText(f!), allowSpecial: true);
            else ids = tok.EncodeBytes(File.ReadAllBytes(f!));
            if (p.GetValue(json)) Console.WriteLine(JsonSerializer.Serialize(new { tokenizer = tok.Name, count = ids.Count, ids }, JsonNaming.Line));
            else Console.WriteLine(string.Join(' ', ids));
            return 0;
        });
        return cmd;
    }

    private static Command Decode()
    {
        var tokenizer = TokenizerOption();
        var ids = new Option<string>("--ids") { Description = "Token ids separated by spaces or commas; read from stdin when omitted." };
        var json = BenchCommand.JsonOption();
        var cmd = new Command("decode", "Print the text of a sequence of token ids.") { tokenizer, ids, json };
        cmd.SetAction(p =>
        {
            var tok = TokenizerFiles.Load(p.GetValue(tokenizer)!);
            string raw = p.GetValue(ids) ?? Console.In.ReadToEnd();
            var list = new List<int>();
            foreach (var part in raw.Split([' ', ',', '\n', '\r', '\t', '[', ']'], StringSplitOptions.RemoveEmptyEntries))
                list.Add(int.TryParse(part, out int id) ? id : throw new FormatException($"'{part}' is not a token id"));
            string text = tok.Decode(list.ToArray());
            if (p.GetValue(json)) Console.WriteLine(JsonSerializer.Serialize(new { tokenizer = tok.Name, count = list.Count, text }, JsonNaming.Line));
            else Console.Write(text);
            return 0;
        });
        return cmd;
    }
}
