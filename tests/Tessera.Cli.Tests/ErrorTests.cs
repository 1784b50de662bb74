namespace Tessera.Cli.Tests;

/// <summary>The command contract for failures: one line starting with "error:" on stderr, exit code 1, nothing written.</summary>
[Collection(CliCollection.Name)]
public class ErrorTests
{
    public static TheoryData<string[], string> Cases => new()
    {
        { ["generate", "--model", "no/such/run", "--prompt", "hi"], "no/such/run" },
        { ["tokenizer", "encode", "--tokenizer", "no-such-tokenizer", "--text", "hi"], "no-such-tokenizer" },
        { ["train", "--steps", "0", "--out", "out"], "steps" },
        { ["train", "--preset", "huge", "--out", "out"], "huge" },
        { ["train", "--preset", "large-moe", "--batch", "4096", "--seq", "1024", "--steps", "1", "--out", "out"], "training needs about" },
        { ["bench", "train", "--presets", "large", "--batch", "64", "--seq", "1024", "--memory-limit-gb", "1", "--no-torch"], "only 1.00 GB are available" },
        { ["bench", "decode", "--sequences", "1,x"], "--sequences" },
        { ["bench", "train", "--presets", "tiny", "--scaling", "1", "--no-torch"], "--scaling: expected two positive thread counts" },
        { ["bench", "gemm", "--shapes", "64x64x64:xt"], "MxNxK[:nn|nt|tn|tt]" },
        { ["bench", "gemm", "--sizes", "64", "--ab", "even-chunks"], "--ab needs --paired" },
        { ["bench", "gemm", "--sizes", "64", "--paired", "--ab", "no-such-switch"], "no-such-switch" },
        { ["bench", "gemm", "--sizes", "64", "--burst", "4"], "--burst needs --paired" },
        { ["bench", "gemm", "--sizes", "64", "--paired", "--burst", "1"], "2..100 timed calls" },
        { ["bench", "train", "--presets", "tiny", "--gemm-ab", "no-such-switch", "--no-torch"], "--gemm-ab: 'no-such-switch'" },
        { ["bench", "train", "--presets", "tiny", "--gemm-ab", "even-chunks", "--split-ab", "--no-torch"], "give one" },
        { ["bench", "cascade", "--small", "s"], "--large" },
        { ["bench", "cascade", "--small", "s", "--large", "l", "--thresholds", "0.5,2"], "--thresholds" },
        { ["quantize", "--model", "no-run", "--type", "q2_k", "--out", "m.gguf"], "q2_k" },
        { ["train", "--objective", "contrastive", "--init-from", "no/such/run", "--out", "out"], "--pairs" },
        { ["train", "--objective", "contrastive", "--pairs", "no-such-pairs.jsonl", "--init-from", "no/such/run", "--out", "out"], "no-such-pairs.jsonl" },
        { ["train", "--objective", "ranking", "--out", "out"], "lm or contrastive" },
        { ["eval", "swap", "--corpus", "no-such-sotu.txt.gz", "--model", "m", "--index", "i"], "no-such-sotu.txt.gz" },
        { ["eval", "swap", "--answer", "pick", "--model", "m", "--index", "i"], "--answer must be choose or generate" },
        { ["eval", "mail", "--corpus", "no-such-mail-folder", "--index", "i"], "no-such-mail-folder" },
        { ["eval", "mail", "--corpus", ".", "--index", "i", "--cite", "0"], "--cite must be in" },
        { ["eval", "mail", "--corpus", ".", "--index", "i", "--generate"], "--generate needs --model" },
        { ["eval", "swap", "--choices", "1", "--model", "m", "--index", "i"], "--choices must be at least 2" },
        { ["eval", "swap", "--answer", "generate", "--choices", "6", "--model", "m", "--index", "i"], "--choices applies to --answer choose" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void BadInputIsOneClearLineAndExitCodeOne(string[] args, string mentioned) => CliProcess.AssertOneErrorLine(args, mentioned, StringComparison.OrdinalIgnoreCase);

    [Fact]
    public void HelpListsEveryCommand()
    {
        var r = CliProcess.Run(Path.GetTempPath(), "--help");
        Assert.Equal(0, r.ExitCode);
        foreach (var c in new[] { "quickstart", "bench", "tokenizer", "data", "train", "eval", "quantize", "serve", "generate", "distill", "lab" })
            Assert.Contains(c, r.Stdout);
    }
}
