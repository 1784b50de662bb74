using System.Text.Json;

namespace Tessera.Cli.Tests;

/// <summary><c>tessera index build|search</c> end to end: a folder of the user's files, incremental builds, JSON hits with offsets, one-line errors.</summary>
public class IndexCommandTests
{
    [Fact]
    public void BuildSearchExtendAndFailClearly()
    {
        string dir = CliProcess.TempDir();
        try
        {
            string files = Path.Combine(dir, "files"), idx = Path.Combine(dir, "idx");
            Directory.CreateDirectory(Path.Combine(files, "mail"));
            File.WriteAllText(Path.Combine(files, "mail", "a.txt"), "Lunch on Friday?\n\nThe zeppelin museum opens at noon.");
            File.WriteAllText(Path.Combine(files, "b.md"), "Notes about comets and orbits.");
            File.WriteAllBytes(Path.Combine(files, "blob.bin"), [0, 1, 2, 0, 5]);   // binary: skipped

            var build = CliProcess.Run(dir, "index", "build", "--input", files, "--out", idx, "--shards", "2", "--passage-words", "5", "--json");
            Assert.True(build.ExitCode == 0, build.Stderr);
            using (var b = JsonDocument.Parse(build.Stdout)) Assert.Equal(2, b.RootElement.GetProperty("documents").GetInt64());

            var search = CliProcess.Run(dir, "index", "search", "--index", idx, "--query", "zeppelin museum", "--k", "1", "--json");
            Assert.True(search.ExitCode == 0, search.Stderr);
            using (var s = JsonDocument.Parse(search.Stdout))
            {
                var hit = s.RootElement.GetProperty("hits")[0];
                Assert.Equal("mail/a.txt", hit.GetProperty("document_id").GetString());
                string text = File.ReadAllText(Path.Combine(files, "mail", "a.txt"));
                Assert.Equal(hit.GetProperty("text").GetString(), text.Substring(hit.GetProperty("start").GetInt32(), hit.GetProperty("length").GetInt32()));
            }

            File.WriteAllText(Path.Combine(dir, "more.jsonl"), "{\"id\": \"n1\", \"text\": \"A lighthouse keeper's log.\", \"date\": \"1950-01-01\"}\n");
            var extend = CliProcess.Run(dir, "index", "build", "--input", Path.Combine(dir, "more.jsonl"), "--out", idx, "--json");
            Assert.True(extend.ExitCode == 0, extend.Stderr);
            Assert.Contains("n1", CliProcess.Run(dir, "index", "search", "--index", idx, "--query", "lighthouse").Stdout);

            foreach (var (args, message) in new[]
            {
                (new[] { "index", "search", "--index", Path.Combine(dir, "missing"), "--query", "x" }, "index not found"),
                (new[] { "index", "search", "--index", idx, "--query", "  " }, "query is empty"),
                (new[] { "index", "search", "--index", idx, "--query", "★ ☃" }, "no searchable term"),
                (new[] { "index", "build", "--input", files, "--out", idx, "--shards", "3" }, "has 2 shard(s)"),
            })
            {
                var r = CliProcess.Run(dir, args);
                Assert.Equal(1, r.ExitCode);
                Assert.Contains(message, r.Stderr);
                Assert.Single(r.Stderr.Trim().Split('\n'));   // one clear line
            }
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
