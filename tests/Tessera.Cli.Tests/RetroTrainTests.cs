using System.Text.Json;

namespace Tessera.Cli.Tests;

/// <summary><c>tessera train --index</c>: RETRO-style training from the command line, resumable, with the same examples as its baseline.</summary>
public class RetroTrainTests
{
    /// <summary>Nine short documents of three topics (train, validation) and an index over all of them.</summary>
    static (string Data, string Index) Setup(string dir)
    {
        string[][] topics =
        [
            ["whale", "harpoon", "ahab", "mast", "sail", "ocean", "crew", "deck", "storm", "captain"],
            ["congress", "tariff", "union", "senate", "budget", "treaty", "nation", "law", "revenue", "army"],
            ["comet", "orbit", "planet", "moon", "galaxy", "nebula", "star", "telescope", "asteroid", "meteor"],
        ];
        var rng = new Random(9);
        string all = Path.Combine(dir, "all"), train = Path.Combine(dir, "train"), val = Path.Combine(dir, "val");
        foreach (var d in new[] { all, train, val }) Directory.CreateDirectory(d);
        for (int i = 0; i < 9; i++)
        {
            string text = string.Join(' ', Enumerable.Range(0, 60).Select(_ => topics[i % 3][rng.Next(10)])) + "\n";
            File.WriteAllText(Path.Combine(i < 7 ? train : val, $"d{i}.txt"), text);
            File.WriteAllText(Path.Combine(all, $"d{i}.txt"), text);
        }
        string data = Path.Combine(dir, "data"), index = Path.Combine(dir, "idx");
        Assert.Equal(0, CliProcess.Run(dir, "data", "prepare", "--train", train, "--validation", val, "--tokenizer", "bytes", "--out", data).ExitCode);
        var built = CliProcess.Run(dir, "index", "build", "--input", all, "--out", index, "--passage-words", "10");
        Assert.True(built.ExitCode == 0, built.Stderr);
        return (data, index);
    }

    static string[] Train(string data, string index, string outDir, params string[] more) =>
        ["train", "--data", data, "--index", index, "--preset", "tiny", "--retro-chunk", "16", "--batch", "4", "--eval-batches", "2", "--eval-every", "0",
         "--checkpoint-every", "3", "--out", outDir, "--json", .. more];

    [Fact]
    public void Train_with_an_index_writes_retro_rows_resumes_and_its_baseline_reads_the_same_chunks()
    {
        string dir = CliProcess.TempDir();
        try
        {
            var (data, index) = Setup(dir);
            string run = Path.Combine(dir, "run");
            var r = CliProcess.Run(dir, Train(data, index, run, "--steps", "6"));
            var json = r.Json();
            Assert.Equal(6, json.GetProperty("steps").GetInt64());
            double bpb = json.GetProperty("val_bits_per_byte").GetDouble();
            Assert.InRange(bpb, 1, 12);   // byte tokens, six steps: near log2(264) ≈ 8 bits per byte
            using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "retro-data", "retro.json")));
            var s = summary.RootElement;
            Assert.Equal(80, s.GetProperty("sequence_length").GetInt32());   // 1·2·16 + 3·16
            Assert.Equal(8, s.GetProperty("validation_examples").GetInt32());   // capped at --eval-batches × --batch, all evaluated
            // The masked loss (nats per scored token) over the validation rows' scored bytes: chunk u+1, C ASCII bytes per row.
            Assert.Equal(8 * 16, s.GetProperty("validation_scored_bytes").GetInt64());
            Assert.Equal(json.GetProperty("val_loss").GetDouble() * 8 * 16 / Math.Log(2) / (8 * 16), bpb, 9);
            Assert.Equal("aligned", s.GetProperty("window").GetString());
            using (var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "step-00000006", "config.json"))))
                Assert.True(config.RootElement.GetProperty("max_position_embeddings").GetInt32() >= 80);

            // The trained model scored in its own layout on the held-out files: chunk u+1 with and without a neighbour.
            var eval = CliProcess.Run(dir, "eval", "ralm", "--model", run, "--index", index, "--input", Path.Combine(dir, "val"), "--layout", "retro",
                "--retro-chunk", "16", "--retro-examples", "10", "--json").Json().GetProperty("result");
            Assert.Equal(10, eval.GetProperty("examples").GetInt32());
            Assert.Equal(10 * 16, eval.GetProperty("scored_bytes").GetInt64());
            Assert.InRange(eval.GetProperty("bits_per_byte_with").GetDouble(), 1, 12);
            Assert.InRange(eval.GetProperty("bits_per_byte_without").GetDouble(), 1, 12);
            CliProcess.Run(dir, "eval", "ralm", "--model", run, "--index", index, "--input", Path.Combine(dir, "val"), "--neighbours", "2").AssertRefused("--neighbours", "--layout ralm");

            // Resume: the same rows are reused, the run continues from its checkpoint.
            var resumed = CliProcess.Run(dir, Train(data, index, run, "--steps", "8", "--resume"));
            Assert.Equal(8, resumed.Json().GetProperty("steps").GetInt64());
            // A resume with other settings is refused before training.
            CliProcess.Run(dir, Train(data, index, run, "--steps", "9", "--resume", "--neighbours", "2")).AssertRefused("other inputs or settings");
            CliProcess.Run(dir, Train(data, index, run, "--steps", "9", "--resume", "--retro-window", "start")).AssertRefused("other inputs or settings", "window aligned");

            // The baseline: the same examples without neighbours (rows of 3C tokens).
            string plain = Path.Combine(dir, "plain");
            CliProcess.Run(dir, Train(data, index, plain, "--steps", "3", "--neighbours", "0")).Json();
            using var ps = JsonDocument.Parse(File.ReadAllText(Path.Combine(plain, "retro-data", "retro.json")));
            Assert.Equal(48, ps.RootElement.GetProperty("sequence_length").GetInt32());
            Assert.Equal(s.GetProperty("train_examples").GetInt32(), ps.RootElement.GetProperty("train_examples").GetInt32());

            // The claim's figure from the two finished runs: each left its result; the plot groups them by neighbours.
            double resumedBpb = resumed.Json().GetProperty("val_bits_per_byte").GetDouble();
            using (var result = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "retro-result.json"))))
            {
                Assert.Equal(resumedBpb, result.RootElement.GetProperty("held_out_bits_per_byte").GetDouble(), 12);
                Assert.Equal(8, result.RootElement.GetProperty("steps").GetInt64());
                Assert.Equal(1, result.RootElement.GetProperty("neighbours").GetInt32());
            }
            string svg = Path.Combine(dir, "plot", "retro.svg");
            var plot = CliProcess.Run(dir, "eval", "retro-plot", "--runs", run, plain, "--out", svg, "--json").Json();
            Assert.True(File.Exists(svg));
            Assert.StartsWith("<?xml", File.ReadAllText(svg).TrimStart());
            var series = plot.GetProperty("series").EnumerateArray().ToList();
            Assert.Equal(["without retrieval", "with 1 neighbour (aligned)"], series.Select(x => x.GetProperty("name").GetString()));
            var point = Assert.Single(series[1].GetProperty("points").EnumerateArray());
            Assert.Equal(resumedBpb, point.GetProperty("mean_bits_per_byte").GetDouble(), 12);
            CliProcess.Run(dir, "eval", "retro-plot", "--runs", run, dir, "--out", svg).AssertRefused("no retro-result.json");
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void Retro_flags_without_an_index_a_wrong_seq_and_a_missing_index_are_refused_before_any_work()
    {
        string dir = CliProcess.TempDir();
        try
        {
            var (data, index) = Setup(dir);
            string run = Path.Combine(dir, "run");
            CliProcess.Run(dir, "train", "--data", data, "--neighbours", "2", "--out", run).AssertRefused("--neighbours", "--index");
            CliProcess.Run(dir, Train(data, index, run, "--seq", "64")).AssertRefused("--seq 64", "80 tokens");
            CliProcess.Run(dir, Train(data, Path.Combine(dir, "nope"), run)).AssertRefused("no such folder", "tessera index build");
            CliProcess.Run(dir, Train(data, index, run, "--retro-chunk", "8")).AssertRefused("--retro-chunk");
            CliProcess.Run(dir, Train(data, index, run, "--retro-window", "middle")).AssertRefused("--retro-window", "aligned or start");
            CliProcess.Run(dir, Train(data, index, run, "--context", "64")).AssertRefused("80 tokens", "context length 64");
            Assert.False(Directory.Exists(run));   // nothing written
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}

/// <summary><c>tessera data prepare --mail</c>: a mail folder becomes documents the way <c>index build</c> reads it.</summary>
public class PrepareMailTests
{
    static readonly byte[] Latin1Message = System.Text.Encoding.Latin1.GetBytes(
        "Received: from mx.example.org by example.net; Fri, 23 Aug 2002 09:00:00 +0000\n" +
        "From: bob@example.net\nSubject: Caf\u00e9 menu\nDate: Fri, 23 Aug 2002 09:00:00 +0000\nContent-Type: text/plain; charset=iso-8859-1\n\n" +
        "The caf\u00e9 serves quince tart from nine thirty.\n");

    const string Mbox =
        "From dave@example.com  Mon Sep  2 08:00:00 2002\n" +
        "From: dave@example.com\nSubject: first\nDate: Mon, 2 Sep 2002 08:00:00 +0000\n\nAlpha walrus text.\n\n" +
        "From erin@example.com  Tue Sep  3 08:00:00 2002\n" +
        "From: erin@example.com\nSubject: second\nDate: Tue, 3 Sep 2002 08:00:00 +0000\n\nBeta walrus text.\n";

    [Fact]
    public void A_mail_folder_prepares_one_document_per_message_with_subject_and_body_and_skips_binary_files()
    {
        string dir = CliProcess.TempDir();
        try
        {
            string train = Path.Combine(dir, "train"), val = Path.Combine(dir, "val");
            Directory.CreateDirectory(train); Directory.CreateDirectory(val);
            File.WriteAllBytes(Path.Combine(train, "00001.txt"), Latin1Message);   // not valid UTF-8
            File.WriteAllText(Path.Combine(train, "inbox.mbox"), Mbox);
            File.WriteAllText(Path.Combine(train, "notes.txt"), "A plain note about the harbour.\n");
            File.WriteAllBytes(Path.Combine(train, "image.bin"), [0x89, 0x50, 0x00, 0x01]);
            File.WriteAllText(Path.Combine(val, "00002.txt"), "From: x@example.org\nSubject: Held out\n\nThe lighthouse keeper waves.\n");

            // Without --mail the 8-bit message is refused, as before.
            CliProcess.Run(dir, "data", "prepare", "--train", train, "--validation", val, "--tokenizer", "bytes", "--out", Path.Combine(dir, "plain"))
                .AssertRefused("not valid UTF-8");
            string outDir = Path.Combine(dir, "mail");
            var r = CliProcess.Run(dir, "data", "prepare", "--train", train, "--validation", val, "--tokenizer", "bytes", "--out", outDir, "--mail");
            Assert.True(r.ExitCode == 0, r.Stderr);
            Assert.Contains("image.bin: skipped, binary", r.Stderr);
            using var shard = Tessera.Data.TokenShard.Open(Path.Combine(outDir, "train.bin"));
            var bytes = Tessera.Text.TokenizerFiles.Load("bytes");
            var texts = Enumerable.Range(0, shard.DocumentCount).Select(i => bytes.Decode(shard.ReadDocument(i).AsSpan(1))).ToList();
            // Files in ordinal order: 00001.txt, inbox.mbox (two messages), notes.txt.
            Assert.Equal(["Subject: Café menu\n\nThe café serves quince tart from nine thirty.", "Subject: first\n\nAlpha walrus text.",
                "Subject: second\n\nBeta walrus text.", "A plain note about the harbour."], texts.Select(t => t.TrimEnd('\n')));
            Assert.DoesNotContain(texts, t => t.Contains("Received:", StringComparison.Ordinal));

            CliProcess.Run(dir, "data", "prepare", "--input", train, "--tokenizer", "bytes", "--out", Path.Combine(dir, "x"), "--mail", "--include", "*.txt")
                .AssertRefused("--include", "--mail");
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
