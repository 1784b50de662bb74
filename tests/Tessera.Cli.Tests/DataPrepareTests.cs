using System.Security.Cryptography;
using System.Text.Json;
using Tessera.Data;
using Tessera.Text;

namespace Tessera.Cli.Tests;

/// <summary><c>tessera data prepare</c> with given splits and the file forms people have, out of process.</summary>
[Collection(CliCollection.Name)]
public class DataPrepareTests
{
    // Not from Moby-Dick: no 40-byte run of it occurs there.
    const string Novel = "Zebras quietly computed eigenvalues while the quantum toaster hummed 7492 lullabies to a sleepy lighthouse.";

    static Dictionary<string, string> Hashes(string folder) => Directory.GetFiles(folder, "*", SearchOption.AllDirectories)
        .ToDictionary(f => Path.GetRelativePath(folder, f), f => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f))));

    static string[] Decoded(string folder, Split split)
    {
        var data = PreparedData.Load(folder);
        var tok = TokenizerFiles.Load(data.TokenizerPath());
        using var shard = TokenShard.Open(data.ShardPath(split));
        return [.. Enumerable.Range(0, shard.DocumentCount).Select(i => tok.Decode(shard.ReadDocument(i).AsSpan(1)))];
    }

    [Fact]
    public void TrainAndValidationFiles_GiveExactlyThoseSplits_AndAnOverlapIsWarned()
    {
        string dir = CliProcess.TempDir();
        try
        {
            string corpus = File.ReadAllText(CliProcess.WriteCorpus(dir));
            // The validation text file is a passage that is not in training: it must come back byte for byte.
            File.WriteAllText(Path.Combine(dir, "valid.txt"), Novel + "\nA second line, and a trailing newline.\n");
            var clean = CliProcess.Run(dir, "data", "prepare", "--train", "corpus.txt", "--validation", "valid.txt", "--tokenizer", "bytes",
                "--out", "clean", "--overlap-ngram", "40", "--json");
            var json = clean.Json();
            Assert.Equal(1, json.GetProperty("train").GetProperty("documents").GetInt32());
            Assert.Equal(1, json.GetProperty("validation").GetProperty("documents").GetInt32());
            Assert.Equal(0, json.GetProperty("test").GetProperty("documents").GetInt32());
            Assert.Equal(0, json.GetProperty("overlap")[0].GetProperty("overlapping").GetInt32());
            Assert.DoesNotContain("warning", clean.Stderr);
            Assert.Equal([File.ReadAllText(Path.Combine(dir, "valid.txt"))], Decoded(Path.Combine(dir, "clean"), Split.Validation));
            Assert.Equal([corpus], Decoded(Path.Combine(dir, "clean"), Split.Train));

            // JSONL validation with one passage copied out of training: warned, measured by the contamination n-gram check, still written.
            string leaked = corpus.Substring(corpus.Length / 2, 400);
            File.WriteAllLines(Path.Combine(dir, "valid.jsonl"), [JsonSerializer.Serialize(new { text = leaked }), JsonSerializer.Serialize(new { text = Novel })]);
            var dirty = CliProcess.Run(dir, "data", "prepare", "--train", "corpus.txt", "--validation", "valid.jsonl", "--tokenizer", "bytes",
                "--out", "dirty", "--overlap-ngram", "40", "--json");
            var overlap = dirty.Json().GetProperty("overlap")[0];
            Assert.Equal("validation", overlap.GetProperty("split").GetString());
            Assert.Equal(2, overlap.GetProperty("documents").GetInt32());
            Assert.Equal(1, overlap.GetProperty("overlapping").GetInt32());
            Assert.Contains("warning: 1 of 2 validation documents (50.0%) share a 40-token n-gram with the training split", dirty.Stderr);
            Assert.Equal([leaked, Novel], Decoded(Path.Combine(dir, "dirty"), Split.Validation));

            // Moved elsewhere, the folder still loads and decodes.
            Directory.Move(Path.Combine(dir, "dirty"), Path.Combine(dir, "moved"));
            Assert.Equal([leaked, Novel], Decoded(Path.Combine(dir, "moved"), Split.Validation));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void BadInput_IsOneErrorLine_AndThePreviousFolderStaysIntact()
    {
        string dir = CliProcess.TempDir();
        try
        {
            File.WriteAllText(Path.Combine(dir, "train.txt"), "Training text, long enough to be a document of its own.");
            File.WriteAllText(Path.Combine(dir, "valid.jsonl"), "{\"text\": \"held out\"}\n");
            Assert.Equal(0, CliProcess.Run(dir, "data", "prepare", "--train", "train.txt", "--validation", "valid.jsonl", "--tokenizer", "bytes", "--out", "data").ExitCode);
            var good = Hashes(Path.Combine(dir, "data"));

            File.WriteAllText(Path.Combine(dir, "bad.jsonl"), "{\"text\": \"fine\"}\n{\"text\": oops}\n{\"txt\": \"typo\"}\n");
            File.WriteAllText(Path.Combine(dir, "empty.jsonl"), "{\"text\": \"\"}\n");
            string[][] cases =
            [
                ["--train", "train.txt", "--validation", "bad.jsonl"],
                ["--train", "train.txt", "--validation", "empty.jsonl"],
                ["--train", "train.txt"],
                ["--train", "train.txt", "--validation", "valid.jsonl", "--val-fraction", "0.1"],
                ["--train", "train.txt", "--validation", "valid.jsonl", "--text-field", "body"],
            ];
            string[] mentioned = ["2 malformed JSONL line(s), nothing was written: line 2: not valid JSON at column 10", "no documents", "--validation", "--val-fraction", "no \"body\" field"];
            for (int i = 0; i < cases.Length; i++)
            {
                var r = CliProcess.Run(dir, ["data", "prepare", .. cases[i], "--tokenizer", "bytes", "--out", "data"]);
                Assert.Equal(1, r.ExitCode);
                var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
                Assert.True(lines.Length == 1, $"case {i}: expected one stderr line, got:\n{r.Stderr}");
                Assert.StartsWith("error: ", lines[0]);
                Assert.Contains(mentioned[i], lines[0]);
                Assert.Equal(good, Hashes(Path.Combine(dir, "data")));
            }
            Assert.Equal(["data"], Directory.GetDirectories(dir).Select(Path.GetFileName));   // no staging folders left
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
