using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Tessera.Data;
using Tessera.Kernels.IO;
using Tessera.Text;

namespace Tessera.Cli.Commands;

/// <summary><c>tessera data prepare</c>: text → token shards with a document-level split.</summary>
public static class DataCommand
{
    /// <summary>Builds the <c>tessera data</c> command with its options and handler.</summary>
    public static Command Create()
    {
        var cmd = new Command("data", "Turn text corpora into token shards.");
        cmd.Subcommands.Add(Prepare());
        return cmd;
    }

    static Command Prepare()
    {
        var input = new Option<string>("--input") { Description = "A text file or folder of .txt/.txt.gz files; default: the embedded corpus.", DefaultValueFactory = _ => "embedded" };
        var tokenizer = new Option<string>("--tokenizer") { Description = "Tokenizer directory/file, or `bytes`.", Required = true };
        var output = new Option<string>("--out") { Description = "Output folder for train.bin, val.bin, test.bin, meta.json.", Required = true };
        var val = new Option<double>("--val-fraction") { Description = "Share of documents held out for validation.", DefaultValueFactory = _ => 0.05 };
        var test = new Option<double>("--test-fraction") { Description = "Share of documents held out for test.", DefaultValueFactory = _ => 0.05 };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the document split.", DefaultValueFactory = _ => 0UL };
        var split = new Option<string?>("--split-on") { Description = "Regex: a matching line starts a new document (default for the embedded corpus: its headings)." };
        var json = BenchCommand.JsonOption();
        var cmd = new Command("prepare", "Tokenize a corpus into memory-mapped shards with a deterministic document-level train/val/test split.")
            { input, tokenizer, output, val, test, seed, split, json };
        cmd.SetAction(p =>
        {
            var documentSplit = new DocumentSplit(p.GetValue(val), p.GetValue(test), p.GetValue(seed)).Validate();
            string tokPath = p.GetValue(tokenizer)!, outDir = p.GetValue(output)!, inPath = p.GetValue(input)!;
            var tok = TokenizerFiles.Load(tokPath);
            var sw = Stopwatch.StartNew();
            var docs = Load(inPath, p.GetValue(split), outDir);
            var prepared = ShardBuilder.Prepare(docs, tok, tokPath, documentSplit, outDir,
                (n, total) => { if (!p.GetValue(json)) Console.Error.Write($"\rencoding {n}/{total} documents"); });
            if (!p.GetValue(json)) Console.Error.WriteLine();
            Report(prepared, sw.Elapsed.TotalSeconds, p.GetValue(json));
            return 0;
        });
        return cmd;
    }

    /// <summary>Reads the corpus a `--input` value names; `embedded` is the built-in one.</summary>
    public static IReadOnlyList<CorpusDocument> Load(string input, string? splitOn, string scratch)
    {
        if (input == "embedded") return EmbeddedCorpus.Read(Path.Combine(scratch, "corpus"));
        var regex = splitOn is null ? null : new System.Text.RegularExpressions.Regex(splitOn, System.Text.RegularExpressions.RegexOptions.Multiline);
        return CorpusFiles.ChunkIfFew(CorpusFiles.Read(input, regex));
    }

    static void Report(PreparedData d, double seconds, bool json)
    {
        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(new
            {
                @out = Path.GetFullPath(d.Directory), vocab_size = d.VocabSize, train = d.Train, validation = d.Validation, test = d.Test, seconds,
            }, JsonNaming.Line));
            return;
        }
        foreach (var (name, s) in new[] { ("train", d.Train), ("val", d.Validation), ("test", d.Test) })
            Console.WriteLine($"{name,-5} {s.Documents,5} docs {s.Tokens,12:N0} tokens {s.Bytes,12:N0} bytes ({(s.Tokens == 0 ? 0 : (double)s.Bytes / s.Tokens):F2} bytes/token)");
        Console.WriteLine($"wrote {d.Directory} in {seconds:F1} s");
    }
}
