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
        var input = new Option<string>("--input") { Description = "A corpus file or folder (.txt, .txt.gz, .jsonl, .jsonl.gz, .parquet), split by document hash; default: the embedded corpus.", DefaultValueFactory = _ => "embedded" };
        var train = new Option<string?>("--train") { Description = "Explicit splits: the training file or folder (with --validation; replaces --input and the hash split)." };
        var validation = new Option<string?>("--validation") { Description = "Explicit splits: the validation file or folder (used whole, in order)." };
        var testSplit = new Option<string?>("--test") { Description = "Explicit splits: an optional test file or folder." };
        var include = new Option<string?>("--include") { Description = "Comma-separated file-name patterns (e.g. \"*.cs,*.md\") that pick the files of a corpus folder instead of the usual endings; each matching file is one text document." };
        var textField = new Option<string>("--text-field") { Description = "JSONL field or Parquet column that holds each document's text.", DefaultValueFactory = _ => CorpusFiles.DefaultTextField };
        var tokenizer = new Option<string>("--tokenizer") { Description = "Tokenizer directory/file, or `bytes`.", Required = true };
        var output = new Option<string>("--out") { Description = "Output folder for train.bin, val.bin, test.bin, meta.json (new, empty, or a prepared folder to replace).", Required = true };
        var val = new Option<double>("--val-fraction") { Description = "Hash split: share of documents held out for validation.", DefaultValueFactory = _ => 0.05 };
        var test = new Option<double>("--test-fraction") { Description = "Hash split: share of documents held out for test.", DefaultValueFactory = _ => 0.05 };
        var seed = new Option<ulong>("--seed") { Description = "Hash split: seed of the document split.", DefaultValueFactory = _ => 0UL };
        var split = new Option<string?>("--split-on") { Description = "Regex: a matching line of a text file starts a new document (default for the embedded corpus: its headings)." };
        var mail = new Option<bool>("--mail") { Description = "Read the input as `tessera index build` does: a mail file (RFC 5322 headers, or an mbox) is one document per message, its Subject and decoded text body (8-bit mail kept as Latin-1); other text files are one document each; binary files are skipped and named on stderr." };
        var overlapN = new Option<int?>("--overlap-ngram") { Description = $"Explicit splits: warn when validation/test documents share an n-gram of this many tokens with training (0 = skip; default {SplitOverlap.DefaultN}, {SplitOverlap.DefaultByteN} for a byte tokenizer)." };
        var json = BenchCommand.JsonOption();
        var cmd = new Command("prepare", "Tokenize a corpus into memory-mapped shards: a deterministic document-level train/val/test split, or the train/validation/test files given.")
            { input, train, validation, testSplit, include, textField, tokenizer, output, val, test, seed, split, overlapN, mail, json };
        cmd.SetAction(p =>
        {
            string tokPath = p.GetValue(tokenizer)!, outDir = p.GetValue(output)!, field = p.GetValue(textField)!;
            var patterns = p.GetValue(include)?.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            string? trainPath = p.GetValue(train), valPath = p.GetValue(validation), testPath = p.GetValue(testSplit);
            bool explicitSplits = trainPath is not null || valPath is not null || testPath is not null;
            bool asJson = p.GetValue(json);
            if (explicitSplits)
            {
                if (trainPath is null || valPath is null) throw new ArgumentException("Explicit splits need both --train and --validation (--test is optional).");
                var hashOnly = new Option[] { input, val, test, seed }.Where(o => p.GetResult(o) is { Implicit: false }).Select(o => o.Name).ToList();
                if (hashOnly.Count > 0) throw new ArgumentException($"{string.Join(", ", hashOnly)} belong(s) to the hash split of --input; with --train/--validation the files are the splits.");
            }
            bool asMail = p.GetValue(mail);
            if (asMail)
            {
                var plainOnly = new Option[] { include, textField, split }.Where(o => p.GetResult(o) is { Implicit: false }).Select(o => o.Name).ToList();
                if (plainOnly.Count > 0) throw new ArgumentException($"{string.Join(", ", plainOnly)} cannot be combined with --mail, which reads every file the way `index build` does.");
            }
            var documentSplit = new DocumentSplit(p.GetValue(val), p.GetValue(test), p.GetValue(seed)).Validate();
            var tok = TokenizerFiles.Load(tokPath);
            var sw = Stopwatch.StartNew();
            Action<int, int> progress = (n, total) => { if (!asJson) Console.Error.Write($"\rencoding {n}/{total} documents"); };
            PreparedData prepared;
            IReadOnlyList<SplitOverlap>? overlaps = null;
            if (explicitSplits)
            {
                // Every split is read (and every bad line found) before anything is written.
                var trainDocs = asMail ? LoadMail("--train", trainPath!) : LoadSplit("--train", trainPath!, p.GetValue(split), field, patterns);
                var valDocs = asMail ? LoadMail("--validation", valPath!) : LoadSplit("--validation", valPath!, p.GetValue(split), field, patterns);
                var testDocs = testPath is null ? [] : asMail ? LoadMail("--test", testPath) : LoadSplit("--test", testPath, p.GetValue(split), field, patterns);
                prepared = ShardBuilder.PrepareSplits(trainDocs, valDocs, testDocs, tok, tokPath, outDir, progress);
                if (!asJson) Console.Error.WriteLine();
                int n = p.GetValue(overlapN) ?? SplitOverlap.DefaultFor(tok.VocabSize);
                if (n > 0)
                {
                    overlaps = SplitOverlap.Measure(prepared, n);
                    foreach (var o in overlaps.Where(o => o.Overlapping > 0)) Console.Error.WriteLine(o.Warning());
                }
            }
            else
            {
                var docs = asMail ? LoadMail("--input", p.GetValue(input)!) : Load(p.GetValue(input)!, p.GetValue(split), field, patterns);
                prepared = ShardBuilder.Prepare(docs, tok, tokPath, documentSplit, outDir, progress);
                if (!asJson) Console.Error.WriteLine();
            }
            Report(prepared, sw.Elapsed.TotalSeconds, asJson, overlaps);
            return 0;
        });
        return cmd;
    }

    /// <summary>Reads the corpus a `--input` value names (`embedded` is the built-in one); few long documents are cut into chunks so a hash split has units to assign.</summary>
    public static IReadOnlyList<CorpusDocument> Load(string input, string? splitOn, string textField = CorpusFiles.DefaultTextField, IReadOnlyList<string>? include = null)
    {
        if (input == "embedded")
            return include is null ? EmbeddedCorpus.Read() : throw new ArgumentException("--include picks files of a corpus folder; the embedded corpus has none to pick.");
        return CorpusFiles.ChunkIfFew(CorpusFiles.Read(input, Regex(splitOn), textField, include));
    }

    /// <summary>Reads one explicit split whole: its documents as they are, in file order, never re-chunked.</summary>
    static IReadOnlyList<CorpusDocument> LoadSplit(string flag, string path, string? splitOn, string textField, IReadOnlyList<string>? include)
    {
        try
        {
            return CorpusFiles.Read(path, Regex(splitOn), textField, include);
        }
        catch (InvalidDataException e) when (e.Message.Contains("holds no text", StringComparison.Ordinal))
        {
            throw new InvalidDataException($"{flag} {path}: the split holds no documents (every document is empty); nothing was written.");
        }
    }

    /// <summary>
    /// Reads <paramref name="path"/> with <see cref="Tessera.Retrieval.DocumentSource"/>, so the documents and their
    /// ids are the ones `tessera index build` indexes from the same folder (a message per mail document).
    /// </summary>
    static IReadOnlyList<CorpusDocument> LoadMail(string flag, string path)
    {
        if (path == "embedded") throw new ArgumentException($"{flag} embedded: --mail reads a file or folder of your own.");
        var docs = Tessera.Retrieval.DocumentSource.Read(path, line => Console.Error.WriteLine(line)).Select(d => new CorpusDocument(d.Id, d.Text)).ToList();
        if (docs.Count == 0) throw new InvalidDataException($"{flag} {path}: no document with text (every file was skipped or empty); nothing was written.");
        return docs;
    }

    static System.Text.RegularExpressions.Regex? Regex(string? splitOn)
        => splitOn is null ? null : new System.Text.RegularExpressions.Regex(splitOn, System.Text.RegularExpressions.RegexOptions.Multiline);

    static void Report(PreparedData d, double seconds, bool json, IReadOnlyList<SplitOverlap>? overlaps)
    {
        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(new
            {
                @out = Path.GetFullPath(d.Directory), vocab_size = d.VocabSize, train = d.Train, validation = d.Validation, test = d.Test,
                overlap = overlaps, seconds,
            }, JsonNaming.Line));
            return;
        }
        foreach (var (name, s) in new[] { ("train", d.Train), ("val", d.Validation), ("test", d.Test) })
            Console.WriteLine($"{name,-5} {s.Documents,5} docs {s.Tokens,12:N0} tokens {s.Bytes,12:N0} bytes ({(s.Tokens == 0 ? 0 : (double)s.Bytes / s.Tokens):F2} bytes/token)");
        Console.WriteLine($"wrote {d.Directory} in {seconds:F1} s");
    }
}
