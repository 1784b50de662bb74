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

    /// <summary>
    /// A mail folder end to end: `index build --input` names each skipped file on stderr and indexes the
    /// rest (an mbox as one document per message), `index search` cites path#n with offsets into the
    /// message's text, and `eval mail --json` finds every answer's message first on this small, distinct folder.
    /// </summary>
    [Fact]
    public void A_mail_folder_indexes_per_message_and_eval_mail_scores_it()
    {
        string dir = CliProcess.TempDir();
        try
        {
            string mail = Path.Combine(dir, "mail"), idx = Path.Combine(dir, "idx");
            Directory.CreateDirectory(Path.Combine(mail, "inbox"));
            string Message(int i) =>
                $"From: person{i}@example.org\nSubject: note {i}\nDate: Mon, {i + 1} Sep 2002 08:00:00 +0000\n\n" +
                $"Hello. The committee agreed that Person{(char)('A' + i)}xyz will present the budget of {1000 + 37 * i} dollars at the meeting next week in the hall.\n";
            for (int i = 0; i < 12; i++) File.WriteAllText(Path.Combine(mail, "inbox", $"{i:D2}.eml"), Message(i));
            File.WriteAllText(Path.Combine(mail, "old.mbox"), string.Concat(Enumerable.Range(12, 3).Select(i => $"From person{i}@example.org  Mon Sep  2 08:00:00 2002\n" + Message(i) + "\n")));
            File.WriteAllBytes(Path.Combine(mail, "inbox", "photo.jpg"), [0xFF, 0xD8, 0, 0x10]);

            var build = CliProcess.Run(dir, "index", "build", "--input", mail, "--out", idx, "--json");
            Assert.True(build.ExitCode == 0, build.Stderr);
            Assert.Contains("photo.jpg: skipped, binary", build.Stderr);
            using (var b = JsonDocument.Parse(build.Stdout))
            {
                Assert.Equal(15, b.RootElement.GetProperty("documents").GetInt64());
                Assert.Equal(1, b.RootElement.GetProperty("skipped").GetInt32());
            }

            var search = CliProcess.Run(dir, "index", "search", "--index", idx, "--query", "PersonNxyz budget", "--k", "1", "--json");
            Assert.True(search.ExitCode == 0, search.Stderr);
            using (var s = JsonDocument.Parse(search.Stdout))
            {
                var hit = s.RootElement.GetProperty("hits")[0];
                Assert.Equal("old.mbox#2", hit.GetProperty("document_id").GetString());
                string text = Message(13);
                text = "Subject: note 13\n\n" + text[(text.IndexOf("\n\n", StringComparison.Ordinal) + 2)..].TrimEnd('\n');
                Assert.Equal(hit.GetProperty("text").GetString(), text.Substring(hit.GetProperty("start").GetInt32(), hit.GetProperty("length").GetInt32()));
            }

            var eval = CliProcess.Run(dir, "eval", "mail", "--corpus", mail, "--index", idx, "--questions", "6", "--depth", "10", "--json");
            Assert.True(eval.ExitCode == 0, eval.Stderr);
            using var e = JsonDocument.Parse(eval.Stdout);
            Assert.True(e.RootElement.GetProperty("questions").GetInt32() >= 4, eval.Stdout);
            Assert.Equal(1.0, e.RootElement.GetProperty("recall_at_1").GetDouble());
            Assert.Equal(1.0, e.RootElement.GetProperty("cites_message").GetDouble());
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
