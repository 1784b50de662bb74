using System.Text.Json;

namespace Tessera.Cli.Tests;

/// <summary><c>tessera lab retro --quick</c>: RETRO-style training end to end on byte tokens (the pipeline, not the science).</summary>
public class RetroLabTests
{
    [Fact]
    public void Quick_retro_lab_trains_with_and_without_neighbours_and_reports_leakage_and_a_plot()
    {
        string dir = CliProcess.TempDir();
        try
        {
            string outDir = Path.Combine(dir, "lab");
            var r = CliProcess.Run(dir, "lab", "retro", "--quick", "--out", outDir, "--json");
            Assert.True(r.ExitCode == 0, r.Stderr);
            using var doc = JsonDocument.Parse(r.Stdout);
            var root = doc.RootElement;
            var runs = root.GetProperty("runs").EnumerateArray().ToList();
            Assert.Equal(3, runs.Count);   // S and M without retrieval, S with
            var plainS = runs.Single(x => x.GetProperty("name").GetString() == "S-plain");
            var retroS = runs.Single(x => x.GetProperty("name").GetString() == "S-retro");
            // Same architecture, same parameters; the retrieval run reads 2 × chunk more tokens per row.
            Assert.Equal(plainS.GetProperty("parameters").GetInt64(), retroS.GetProperty("parameters").GetInt64());
            int chunk = root.GetProperty("chunk_tokens").GetInt32();
            Assert.Equal(plainS.GetProperty("sequence_length").GetInt32() + 2 * chunk, retroS.GetProperty("sequence_length").GetInt32());
            foreach (var x in runs)
            {
                double bpb = x.GetProperty("held_out_bpb").GetDouble();
                Assert.InRange(bpb, 0.5, 12);   // byte tokens, a dozen steps: near log2(264) ≈ 8 bits per byte
            }
            Assert.True(retroS.GetProperty("held_out_bpb_shuffled_neighbours").ValueKind == JsonValueKind.Number);
            Assert.InRange(root.GetProperty("overlap_mean").GetDouble(), 0, 1);
            Assert.True(root.GetProperty("scored_bytes").GetInt64() > 0);
            string svg = File.ReadAllText(Path.Combine(outDir, "retro-bpb.svg"));
            Assert.Contains("<svg", svg);
            Assert.Contains("with retrieval", svg);
            Assert.Contains("| S-retro |", File.ReadAllText(Path.Combine(outDir, "report.md")));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
    [Fact]
    public void Quick_retro_lab_scrambles_numbers_in_practice_examples_and_refuses_it_without_practice()
    {
        string dir = CliProcess.TempDir();
        try
        {
            string outDir = Path.Combine(dir, "lab");
            var r = CliProcess.Run(dir, "lab", "retro", "--quick", "--out", outDir, "--sizes", "S", "--retrieval-only", "--random-neighbours",
                "--reading-practice", "1", "--scramble-numbers", "1", "--number-rich", "0.5", "--json");
            Assert.True(r.ExitCode == 0, r.Stderr);
            using var doc = JsonDocument.Parse(r.Stdout);
            var root = doc.RootElement;
            int practice = root.GetProperty("practice_examples").GetInt32(), scrambled = root.GetProperty("scrambled_examples").GetInt32();
            Assert.Equal(root.GetProperty("train_pairs").GetInt32(), practice);   // practice 1: every example
            // Half the examples are drawn from those whose scored chunks hold a digit, and every example
            // holding one is scrambled (fraction 1), so at least about half are.
            Assert.InRange(root.GetProperty("number_rich_examples").GetInt32(), practice / 4, practice);
            Assert.InRange(scrambled, practice / 4, practice);
            Assert.Single(root.GetProperty("runs").EnumerateArray());

            var bad = CliProcess.Run(dir, "lab", "retro", "--quick", "--out", Path.Combine(dir, "bad"), "--scramble-numbers", "0.5");
            bad.AssertRefused("--reading-practice");
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void Training_neighbours_searched_with_the_target_differ_while_held_out_ones_stay_causal()
    {
        string dir = CliProcess.TempDir();
        try
        {
            string chunk = Path.Combine(dir, "chunk"), target = Path.Combine(dir, "target");
            foreach (var (outDir, query) in new[] { (chunk, "chunk"), (target, "target") })
            {
                var r = CliProcess.Run(dir, "lab", "retro", "--quick", "--out", outDir, "--sizes", "S", "--retrieval-only", "--train-query", query, "--json");
                Assert.True(r.ExitCode == 0, r.Stderr);
            }
            string File1(string d, string pattern) => Assert.Single(Directory.GetFiles(d, pattern));
            // Held-out chunks are searched with chunk u in both labs: the same neighbours, byte for byte.
            Assert.Equal(File.ReadAllBytes(File1(chunk, "neighbours-eval-*.bin")), File.ReadAllBytes(File1(target, "neighbours-eval-*.bin")));
            // Training chunks: searched with u+1 in one lab (its cache named apart), so other neighbours.
            Assert.Empty(Directory.GetFiles(chunk, "neighbours-train-*-qt.bin"));
            Assert.NotEqual(File.ReadAllBytes(File1(chunk, "neighbours-train-*.bin")), File.ReadAllBytes(File1(target, "neighbours-train-*-qt.bin")));
            Assert.Contains("searched with the scored chunk", File.ReadAllText(Path.Combine(target, "report.md")));

            var bad = CliProcess.Run(dir, "lab", "retro", "--quick", "--out", Path.Combine(dir, "bad"), "--train-query", "target", "--own-past");
            bad.AssertRefused("--own-past");
            var unknown = CliProcess.Run(dir, "lab", "retro", "--quick", "--out", Path.Combine(dir, "bad2"), "--train-query", "future");
            unknown.AssertRefused("chunk or target");
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void Quick_retro_lab_with_own_past_and_two_neighbours_reports_the_own_document_share()
    {
        string dir = CliProcess.TempDir();
        try
        {
            string outDir = Path.Combine(dir, "lab");
            var r = CliProcess.Run(dir, "lab", "retro", "--quick", "--out", outDir, "--sizes", "S", "--retrieval-only", "--own-past", "--neighbours", "2", "--json");
            Assert.True(r.ExitCode == 0, r.Stderr);
            using var doc = JsonDocument.Parse(r.Stdout);
            var root = doc.RootElement;
            Assert.True(root.GetProperty("own_past").GetBoolean());
            Assert.Equal(2, root.GetProperty("neighbours").GetInt32());
            int chunk = root.GetProperty("chunk_tokens").GetInt32();
            var run = Assert.Single(root.GetProperty("runs").EnumerateArray());
            Assert.Equal(3 * chunk + 2 * 2 * chunk, run.GetProperty("sequence_length").GetInt32());   // two neighbours of 2 chunks, then u−1, u, u+1
            // Byte-token chunks of one document resemble each other, so some neighbours come from the own past.
            Assert.InRange(root.GetProperty("train_own_document_share").GetDouble(), 1e-9, 1);
            Assert.InRange(root.GetProperty("eval_own_document_share").GetDouble(), 0, 1);
            Assert.Contains("own document", File.ReadAllText(Path.Combine(outDir, "report.md")));

            var bad = CliProcess.Run(dir, "lab", "retro", "--quick", "--out", Path.Combine(dir, "bad"), "--neighbours", "0");
            bad.AssertRefused("--neighbours");
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [MailCorpusFact]
    public void Quick_retro_lab_on_the_mail_corpus_trains_on_messages_and_never_retrieves_held_out_mail()
    {
        string dir = CliProcess.TempDir();
        try
        {
            string outDir = Path.Combine(dir, "lab");
            var r = CliProcess.Run(dir, "lab", "retro", "--quick", "--corpus", "mail", "--out", outDir, "--json");
            Assert.True(r.ExitCode == 0, r.Stderr);
            using var doc = JsonDocument.Parse(r.Stdout);
            var root = doc.RootElement;
            Assert.Equal("mail", root.GetProperty("corpus").GetString());
            var mail = root.GetProperty("mail");
            Assert.Equal(4150, mail.GetProperty("messages").GetInt32());   // the three ham groups of data/MAIL.md
            Assert.Equal(4150, mail.GetProperty("kept").GetInt32() + mail.GetProperty("empty").GetInt32() + mail.GetProperty("duplicates").GetInt32());
            Assert.Equal(24, root.GetProperty("train_documents").GetInt32());   // the quick plan's cap
            Assert.Equal(0, root.GetProperty("eval_held_out_neighbours").GetInt64());
            Assert.Equal(0, root.GetProperty("train_held_out_neighbours").GetInt64());
            var runs = root.GetProperty("runs").EnumerateArray().ToList();
            Assert.Equal(3, runs.Count);
            var chunks = root.GetProperty("overlap_bucket_chunks").EnumerateArray().Select(x => x.GetInt32()).ToList();
            Assert.Equal(4, chunks.Count);
            Assert.Equal(root.GetProperty("eval_pairs").GetInt32(), chunks.Sum());
            foreach (var x in runs) Assert.Equal(4, x.GetProperty("held_out_bpb_by_overlap").GetArrayLength());
            // Every scored chunk's neighbour message and the held-out message have dates here; the shares are fractions.
            var later = root.GetProperty("eval_neighbour_dated_later");
            Assert.InRange(later.GetProperty("dated").GetInt32(), chunks.Sum() / 2, chunks.Sum());
            Assert.InRange(later.GetProperty("all").GetDouble(), 0, 1);
            Assert.True(File.Exists(Directory.GetFiles(outDir, "neighbours-eval-*-mail.bin.ids.json").Single()));
            Assert.Contains("Corpus: mail", File.ReadAllText(Path.Combine(outDir, "report.md")));
            Assert.Equal("mail", File.ReadAllText(Path.Combine(outDir, "corpus.txt")).Trim());

            // The folder holds the mail corpus's tokenizer and runs: the embedded corpus is refused there.
            var other = CliProcess.Run(dir, "lab", "retro", "--quick", "--out", outDir);
            other.AssertRefused("mail corpus");
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void Retro_lab_refuses_an_unknown_corpus_and_a_missing_mail_folder()
    {
        string dir = CliProcess.TempDir();
        try
        {
            var bad = CliProcess.Run(dir, "lab", "retro", "--quick", "--out", Path.Combine(dir, "a"), "--corpus", "news");
            bad.AssertRefused("--corpus");
            var missing = CliProcess.Run(dir, "lab", "retro", "--quick", "--out", Path.Combine(dir, "b"), "--corpus", "mail:" + Path.Combine(dir, "no-mail"));
            missing.AssertRefused("no-mail", "fetch_mail.sh");
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}

/// <summary>A fact skipped, with the fetch command, where the SpamAssassin mail corpus (data/fetch_mail.sh) is absent.</summary>
public sealed class MailCorpusFactAttribute : FactAttribute
{
    public MailCorpusFactAttribute()
    {
        if (!Tessera.Retrieval.Mail.MailCorpus.IsPresent()) Skip = $"the mail corpus is not in {Tessera.Retrieval.Mail.MailCorpus.DefaultFolder}: skipped (run data/fetch_mail.sh; .ci/run does).";
    }
}
