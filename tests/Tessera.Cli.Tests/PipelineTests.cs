namespace Tessera.Cli.Tests;

/// <summary>
/// The commands wired end to end, out of process: tokenizer → data → train → generate (plain,
/// speculative, from a quantized GGUF) → eval → bench decode, on a tiny model, checking what each
/// prints against what the previous step produced.
/// </summary>
[Collection(CliCollection.Name)]
public class PipelineTests
{
    [Fact]
    public void TheWholeLoopRunsFromTheCommandLine()
    {
        string dir = CliProcess.TempDir();
        try
        {
            CliProcess.WriteCorpus(dir);
            var tok = CliProcess.Run(dir, "tokenizer", "train", "--input", "corpus.txt", "--vocab-size", "512", "--out", "tok", "--json").Json();
            Assert.Equal(512, tok.GetProperty("vocab_size").GetInt32());
            var enc = CliProcess.Run(dir, "tokenizer", "encode", "--tokenizer", "tok", "--text", "Call me Ishmael.", "--json").Json();
            var dec = CliProcess.Run(dir, "tokenizer", "decode", "--tokenizer", "tok", "--ids", string.Join(',', enc.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32())), "--json").Json();
            Assert.Equal("Call me Ishmael.", dec.GetProperty("text").GetString());

            var data = CliProcess.Run(dir, "data", "prepare", "--tokenizer", "tok", "--out", "data", "--json").Json();
            Assert.True(data.GetProperty("train").GetProperty("tokens").GetInt64() > 1_000_000);
            Assert.True(File.Exists(Path.Combine(dir, "data", "meta.json")));

            string[] model = ["--layers", "2", "--dim", "32", "--heads", "2", "--kv-heads", "1", "--hidden", "64", "--experts", "2", "--top-k", "1",
                "--context", "64", "--seq", "32", "--batch", "2", "--eval-every", "3", "--checkpoint-every", "3", "--eval-batches", "2"];
            var train = CliProcess.Run(dir, ["train", "--data", "data", "--out", "run", "--steps", "6", .. model, "--json"]).Json();
            Assert.Equal(6, train.GetProperty("steps").GetInt32());
            Assert.True(double.IsFinite(train.GetProperty("val_loss").GetDouble()));
            Assert.True(Directory.Exists(Path.Combine(dir, "run", "step-00000006")));
            // Resuming a finished run with a larger budget continues from its last checkpoint.
            var resumed = CliProcess.Run(dir, ["train", "--data", "data", "--out", "run", "--steps", "9", "--resume", .. model, "--json"]).Json();
            Assert.Equal(9, resumed.GetProperty("steps").GetInt32());

            string[] greedy = ["--prompt", "The whale", "--max-tokens", "8", "--temperature", "0", "--json"];
            var plain = CliProcess.Run(dir, ["generate", "--model", "run", .. greedy]).Json();
            Assert.Equal(8, plain.GetProperty("tokens").GetInt32());
            // The run as its own draft: every drafted token is accepted and the text is the plain one.
            var spec = CliProcess.Run(dir, ["generate", "--model", "run", "--draft", "run", .. greedy]).Json();
            Assert.Equal(plain.GetProperty("text").GetString(), spec.GetProperty("text").GetString());
            Assert.Equal(spec.GetProperty("speculative").GetProperty("drafted").GetInt32(), spec.GetProperty("speculative").GetProperty("accepted").GetInt32());

            var q = CliProcess.Run(dir, "quantize", "--model", "run", "--type", "q8_0", "--out", "m.gguf", "--json").Json();
            Assert.Equal("q8_0", q.GetProperty("type").GetString());
            var fromGguf = CliProcess.Run(dir, ["generate", "--model", "m.gguf", .. greedy]).Json();
            Assert.Equal(8, fromGguf.GetProperty("tokens").GetInt32());   // Q8_0 may pick other tokens; it must run with the embedded tokenizer

            var eval = CliProcess.Run(dir, "eval", "--model", "run", "--data", "data", "--bpb-tokens", "2048", "--json").Json();
            foreach (var split in eval.GetProperty("bits_per_byte").EnumerateArray())
                Assert.InRange(split.GetProperty("bits_per_byte").GetDouble(), 0.5, 12);

            var bench = CliProcess.Run(dir, "bench", "decode", "--model", "run", "--draft", "run", "--sequences", "1,2", "--decode-tokens", "4", "--json").Json();
            Assert.Equal(2, bench.GetProperty("aggregate").GetArrayLength());
            Assert.True(bench.GetProperty("speculation").GetProperty("same_tokens").GetBoolean());
            Assert.True(bench.GetProperty("percent_of_roofline").GetDouble() > 0);
            Assert.InRange(bench.GetProperty("prefill_percent_of_peak").GetDouble(), double.Epsilon, 100);   // prefill GFLOP/s against the peak measured in the same run
            Assert.True(bench.GetProperty("image_prefill").GetProperty("image_rows_per_second").GetDouble() > 0);   // images vs text, same run
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void APreparedFolder_MovedAway_TrainsEvaluatesAndIndexesFromAnotherWorkingDirectory()
    {
        string dir = CliProcess.TempDir();
        try
        {
            // Prepare in a/ with a tokenizer named relatively ("tok"), as a user would.
            string a = Path.Combine(dir, "a"), b = Path.Combine(dir, "b"), c = Path.Combine(dir, "c");
            Directory.CreateDirectory(a);
            Directory.CreateDirectory(c);
            CliProcess.WriteCorpus(a);
            CliProcess.Run(a, "tokenizer", "train", "--input", "corpus.txt", "--vocab-size", "300", "--out", "tok", "--json").Json();
            var data = CliProcess.Run(a, "data", "prepare", "--input", "corpus.txt", "--tokenizer", "tok", "--out", "data", "--json").Json();
            long trainTokens = data.GetProperty("train").GetProperty("tokens").GetInt64();

            // Move the folder and remove everything it was made from.
            Directory.Move(Path.Combine(a, "data"), b);
            Directory.Delete(a, recursive: true);

            string[] model = ["--layers", "1", "--dim", "32", "--heads", "2", "--kv-heads", "1", "--hidden", "64", "--experts", "1", "--top-k", "1",
                "--context", "64", "--seq", "32", "--batch", "2", "--eval-every", "2", "--checkpoint-every", "2", "--eval-batches", "1"];
            var train = CliProcess.Run(c, ["train", "--data", "../b", "--out", "run", "--steps", "2", .. model, "--json"]).Json();
            Assert.Equal(2, train.GetProperty("steps").GetInt32());
            var eval = CliProcess.Run(c, "eval", "--model", "run", "--data", "../b", "--bpb-tokens", "512", "--json").Json();
            Assert.True(eval.GetProperty("bits_per_byte").GetArrayLength() > 0);
            // The n-gram index takes the moved folder's own tokenizer too and indexes its train split.
            var index = CliProcess.Run(c, "ngram", "build", "--data", "../b", "--out", "idx", "--json").Json();
            Assert.Equal(trainTokens, index.GetProperty("tokens").GetInt64());
            Assert.True(trainTokens > 0);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class CliCollection { public const string Name = "tessera processes"; }
