using System.Text.Json;

namespace Tessera.Cli.Tests;

/// <summary><c>tessera eval long-context</c> and <c>eval long-context-data</c> as a user runs them, on a tiny byte-level model.</summary>
[Collection(CliCollection.Name)]
public sealed class LongContextCommandTests
{
    [Fact]
    public void EvalWritesScoresAndAHeatMap_DataWritesTrainableItems_BadInputIsOneLine()
    {
        string dir = CliProcess.TempDir();
        try
        {
            CliProcess.WriteCorpus(dir);
            CliProcess.Run(dir, "data", "prepare", "--input", "corpus.txt", "--tokenizer", "bytes", "--out", "data", "--json").Json();
            CliProcess.Run(dir, "train", "--data", "data", "--out", "run", "--steps", "2", "--layers", "1", "--dim", "32", "--heads", "2", "--kv-heads", "1",
                "--hidden", "64", "--experts", "1", "--top-k", "1", "--context", "1024", "--seq", "32", "--batch", "2", "--eval-every", "0",
                "--checkpoint-every", "0", "--eval-batches", "1", "--json").Json();

            var r = CliProcess.Run(dir, "eval", "long-context", "--model", "run", "--lengths", "256,512,2048", "--depths", "0,1", "--samples", "1",
                "--tasks", "niah_single,common_words", "--out", "lc", "--json");
            Assert.True(r.ExitCode == 0, r.Stderr);
            using (var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "lc", "long-context.json"))))
            {
                var root = doc.RootElement;
                Assert.Equal([256, 512], root.GetProperty("lengths").EnumerateArray().Select(e => e.GetInt32()));
                Assert.Equal([2048], root.GetProperty("skipped").EnumerateArray().Select(e => e.GetInt32()));
                Assert.Equal(2 * 2 * 1 + 2 * 1, root.GetProperty("items").GetInt32());
                Assert.Equal(2, root.GetProperty("needle_grid").GetArrayLength());
                foreach (var task in new[] { "niah_single", "common_words" })
                    Assert.InRange(root.GetProperty("tasks").GetProperty(task).GetProperty("512").GetDouble(), 0, 1);
            }
            Assert.StartsWith("<?xml", File.ReadAllText(Path.Combine(dir, "lc", "long-context-needle.svg")).TrimStart());

            var data = CliProcess.Run(dir, "eval", "long-context-data", "--tokenizer", "bytes", "--lengths", "300", "--items", "3", "--tasks", "niah_multikey", "--out", "lc.jsonl");
            Assert.True(data.ExitCode == 0, data.Stderr);
            var lines = File.ReadAllLines(Path.Combine(dir, "lc.jsonl"));
            Assert.Equal(3, lines.Length);
            foreach (var line in lines)
            {
                string text = JsonDocument.Parse(line).RootElement.GetProperty("text").GetString()!;
                Assert.Matches(@"The magic number for [a-z]+-[a-z]+ is \d{7}\.$", text);
            }

            // --answer-only: prompt/completion lines, prepared into shards with a loss mask, trained on the answers.
            var answers = CliProcess.Run(dir, "eval", "long-context-data", "--tokenizer", "bytes", "--lengths", "200", "--items", "40", "--tasks", "niah_single",
                "--answer-only", "--out", "answers.jsonl");
            Assert.True(answers.ExitCode == 0, answers.Stderr);
            foreach (var line in File.ReadAllLines(Path.Combine(dir, "answers.jsonl")))
            {
                var o = JsonDocument.Parse(line).RootElement;
                Assert.EndsWith(" is", o.GetProperty("prompt").GetString()!);
                Assert.Matches(@"^ \d{7}\.$", o.GetProperty("completion").GetString()!);
            }
            // --edge-share 1: every first needle sits at the very start or right before the question (the eval's depths 0 and 1), both occur;
            // the default draws uniform depths exactly as before (explicit 0 writes the same file).
            var edge = CliProcess.Run(dir, "eval", "long-context-data", "--tokenizer", "bytes", "--lengths", "300", "--items", "40", "--tasks", "niah_single",
                "--edge-share", "1", "--out", "edges.jsonl");
            Assert.True(edge.ExitCode == 0, edge.Stderr);
            int atStart = 0, atEnd = 0;
            foreach (var line in File.ReadAllLines(Path.Combine(dir, "edges.jsonl")))
            {
                string text = JsonDocument.Parse(line).RootElement.GetProperty("text").GetString()!;
                if (text.StartsWith("The magic number for ", StringComparison.Ordinal)) atStart++;
                else if (System.Text.RegularExpressions.Regex.IsMatch(text, @"is \d{7}\. What is the magic number for ")) atEnd++;
                else Assert.Fail($"a needle neither first nor last: {text[..80]}…");
            }
            Assert.True(atStart > 0 && atEnd > 0, $"{atStart} at the start, {atEnd} at the end");
            CliProcess.Run(dir, "eval", "long-context-data", "--tokenizer", "bytes", "--lengths", "300", "--items", "10", "--tasks", "niah_single", "--out", "plain.jsonl");
            CliProcess.Run(dir, "eval", "long-context-data", "--tokenizer", "bytes", "--lengths", "300", "--items", "10", "--tasks", "niah_single", "--edge-share", "0", "--out", "zero.jsonl");
            Assert.Equal(File.ReadAllText(Path.Combine(dir, "plain.jsonl")), File.ReadAllText(Path.Combine(dir, "zero.jsonl")));
            CliProcess.AssertOneErrorLine(["eval", "long-context-data", "--tokenizer", "bytes", "--lengths", "300", "--edge-share", "1.5", "--out", "x.jsonl"], "--edge-share");
            CliProcess.Run(dir, "data", "prepare", "--input", "answers.jsonl", "--tokenizer", "bytes", "--out", "answers", "--json").Json();
            Assert.True(File.Exists(Path.Combine(dir, "answers", "train.mask")), "the prepared training split has no loss mask");
            var masked = CliProcess.Run(dir, "train", "--data", "answers", "--out", "masked", "--steps", "2", "--layers", "1", "--dim", "32", "--heads", "2",
                "--kv-heads", "1", "--hidden", "64", "--experts", "1", "--top-k", "1", "--context", "256", "--seq", "64", "--batch", "2", "--eval-every", "0",
                "--checkpoint-every", "0", "--eval-batches", "1", "--json");
            Assert.True(masked.ExitCode == 0, masked.Stderr);

            foreach (var (args, message) in new (string[], string)[]
            {
                (["eval", "long-context", "--model", "run", "--lengths", "abc"], "--lengths: 'abc'"),
                (["eval", "long-context", "--model", "run", "--depths", "1.5"], "--depths: '1.5'"),
                (["eval", "long-context", "--model", "run", "--tasks", "haystack_dance"], "Unknown long-context task 'haystack_dance'"),
                (["eval", "long-context", "--model", "run", "--lengths", "4096"], "exceeds the model's context of 1024"),
            })
            {
                var bad = CliProcess.Run(dir, args);
                Assert.NotEqual(0, bad.ExitCode);
                Assert.Contains(message, bad.Stderr);
            }
        }
        finally { try { Directory.Delete(dir, recursive: true); } catch (IOException) { } }
    }
}
