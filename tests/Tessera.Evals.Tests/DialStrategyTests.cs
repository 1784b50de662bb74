using System.Runtime.CompilerServices;
using Tessera.Evals.Thinking;
using Tessera.Inference;
using Tessera.Model;
using Tessera.Text;
using Tessera.Thinking;

namespace Tessera.Evals.Tests;

/// <summary>
/// The calculator in the decoding loop and each strategy, on a scripted engine (it continues one of
/// several fixed completions, picked by the seed; greedy takes the first) and on the quick lab's
/// small trained model.
/// </summary>
public class DialStrategyTests
{
    static readonly ByteTokenizer Bytes = new();
    const string Prompt = "Q:12+7*5-9\nA:";
    static readonly decimal[] Stated = [12, 7, 5, 9];

    /// <summary>
    /// Emits, byte by byte, the continuation of script[k] after the text the context already holds
    /// (k = 0 for greedy, else seed % scripts); the model never computes anything.
    /// </summary>
    sealed class ScriptedEngine(string prompt, params string[] scripts) : IGenerationEngine
    {
        public int Requests;
        public ModelConfig Config { get; } = new() { VocabSize = 256, Dim = 8, Layers = 1, Heads = 1, KvHeads = 1, HiddenDim = 8, ContextLength = 512 };

        public async IAsyncEnumerable<TokenEvent> GenerateAsync(GenerationRequest request, [EnumeratorCancellation] CancellationToken cancel = default)
        {
            Interlocked.Increment(ref Requests);
            int k = request.Sampling.Temperature == 0 ? 0 : (int)(request.Sampling.Seed % 7919 % (ulong)scripts.Length);
            string script = scripts[k];
            string have = Bytes.Decode(request.Prompt.ToArray())[prompt.Length..];
            // A revision resamples after a kept prefix: continue whichever script shares it, preferring the seed's.
            if (!script.StartsWith(have, StringComparison.Ordinal)) script = scripts.FirstOrDefault(s => s.StartsWith(have, StringComparison.Ordinal)) ?? have + "?\n";
            for (int i = have.Length, n = 0; i < script.Length && n < request.MaxNewTokens; i++, n++)
            {
                await Task.Yield();
                bool last = script[i] == '\n' || i == script.Length - 1 || n == request.MaxNewTokens - 1;
                yield return new TokenEvent(script[i], -0.1f * (k + 1), [], last ? FinishReason.Stop : FinishReason.None);
            }
        }

        public IReadOnlyList<TokenEvent> Score(IReadOnlyList<int> prompt, int topLogprobs) => throw new NotSupportedException();
        public float[] Embed(IReadOnlyList<int> ids) => throw new NotSupportedException();
    }

    [Fact]
    public async Task CalculatorResultsAreInsertedMidGeneration()
    {
        // The script holds the results the calculator should write; the decoder must write the same bytes itself.
        const string script = "<<7*5=35>>;<<12+35=47>>;<<47-9=38>>;#38\n";
        var engine = new ScriptedEngine(Prompt, script);
        var decoder = new ToolDecoder(engine, Bytes);
        var c = await decoder.SampleAsync(Bytes.Encode(Prompt), "", 100, new SamplingOptions { Temperature = 0 }, calculator: true);
        Assert.Equal(script, c.Text);
        Assert.Equal(3, c.Calls);
        Assert.Equal("35>>47>>38>>".Length, c.Inserted);
        Assert.Equal(script.Length - c.Inserted, c.Generated);
        Assert.Equal(4, engine.Requests);   // one stream per calculator call, plus the last
        Assert.Empty(c.CallErrors);

        // A script whose "results" are wrong: the calculator's exact results replace them, and the model goes on from there.
        var wrong = new ScriptedEngine(Prompt, "<<7*5=99>>;#1\n");
        var w = await new ToolDecoder(wrong, Bytes).SampleAsync(Bytes.Encode(Prompt), "", 100, new SamplingOptions { Temperature = 0 }, calculator: true);
        Assert.StartsWith("<<7*5=35>>", w.Text);

        // A malformed expression: ERR>> goes into the context and the calculator's message is kept.
        var bad = new ScriptedEngine(Prompt, "<<7*/5=ERR>>;#0\n");
        var b = await new ToolDecoder(bad, Bytes).SampleAsync(Bytes.Encode(Prompt), "", 100, new SamplingOptions { Temperature = 0 }, calculator: true);
        Assert.Equal("<<7*/5=ERR>>;#0\n", b.Text);
        Assert.Contains("unexpected '/'", Assert.Single(b.CallErrors));

        // Without the calculator the model's own text stands.
        var off = await new ToolDecoder(new ScriptedEngine(Prompt, "<<7*5=99>>;#1\n"), Bytes).SampleAsync(Bytes.Encode(Prompt), "", 100, new SamplingOptions { Temperature = 0 }, calculator: false);
        Assert.Equal("<<7*5=99>>;#1\n", off.Text);
        Assert.Equal(0, off.Calls);
    }

    [Fact]
    public async Task EachStrategyPicksWhatItShould()
    {
        const string right = "7*5=35;12+35=47;47-9=38;#38\n";
        const string wrongArithmetic = "7*5=35;12+35=48;48-9=39;#39\n";   // the majority, and wrong
        const string wrongOrder = "12+7=19;19*5=95;95-9=86;#86\n";          // verifies (steps exact) but is wrong
        var engine = new ScriptedEngine(Prompt, wrongArithmetic, wrongArithmetic, right, wrongArithmetic, wrongOrder);
        var decoder = new ToolDecoder(engine, Bytes);
        var prompt = Bytes.Encode(Prompt);

        async Task<decimal?> Answer(ThinkStrategy s, int n) => (await Dial.RunAsync(decoder, prompt, Stated, new ThinkOptions(s, n) { Seed = 0 })).Answer;

        Assert.Equal(39m, await Answer(ThinkStrategy.Greedy, 1));
        Assert.Equal(39m, await Answer(ThinkStrategy.Vote, 5));            // seeds 0..4 → 39, 39, 38, 39, 86: the mode
        Assert.Equal(38m, await Answer(ThinkStrategy.Verify, 5));          // verified: 38 (seed 2) and 86 (seed 4); tie → first seen
        Assert.Equal(39m, await Answer(ThinkStrategy.Verify, 2));          // no verified sample among seeds 0, 1: falls back to the vote
        Assert.Equal(39m, await Answer(ThinkStrategy.Score, 5));           // highest mean logprob: script 0 (−0.1 per token)

        // Revise: greedy is wrong at step 2; attempts resample after "7*5=35;" until a verified trace comes.
        var steps = await Dial.ReviseAsync(decoder, prompt, Stated, new ThinkOptions(ThinkStrategy.Revise, 8));
        Assert.False(steps[0].Verified);
        Assert.True(steps[^1].Verified);
        Assert.Equal(right, steps[^1].Completion.Text);
        Assert.True(steps.Count >= 2);
        // A revision only pays for what it regenerates: less than a fresh completion per attempt.
        Assert.True(steps[^1].Tokens < steps.Count * right.Length, $"{steps[^1].Tokens} tokens over {steps.Count} attempts");

        var result = await Dial.RunAsync(decoder, prompt, Stated, new ThinkOptions(ThinkStrategy.Vote, 4));
        Assert.Equal(4, result.Samples.Count);
        Assert.Equal(prompt.Count + result.Samples.Sum(s => s.Tokens), result.Tokens);
    }

    [Fact]
    public void QuickLabRunsEndToEnd()
    {
        string dir = Path.Combine(Path.GetTempPath(), "tessera-dial-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            var log = new List<string>();
            var r = DialLab.Run(DialPlan.Quick, dir, log.Add);
            Assert.True(r.LastLoss < r.FirstLoss, $"training did not lower the loss: {r.FirstLoss:F3} → {r.LastLoss:F3}");
            Assert.True(Directory.Exists(Path.Combine(dir, "model")));
            Assert.True(File.Exists(Path.Combine(dir, "dial.svg")));
            Assert.True(File.Exists(Path.Combine(dir, "results.json")));
            Assert.Contains("| pass@k |", File.ReadAllText(Path.Combine(dir, "report.md")));
            foreach (bool calc in new[] { false, true })
            {
                Assert.Single(r.Points, p => p.Strategy == "greedy" && p.Calculator == calc);
                foreach (var s in new[] { "vote", "verify", "score", "revise" })
                    Assert.Equal([1, 2, 4, 8], r.Points.Where(p => p.Strategy == s && p.Calculator == calc).Select(p => p.N));
                // More samples cost more tokens.
                var vote = r.Points.Where(p => p.Strategy == "vote" && p.Calculator == calc).ToList();
                Assert.True(vote[^1].TokensPerQuestion > vote[0].TokensPerQuestion);
                // pass@k never falls with k.
                var pk = r.PassAtK.Where(x => x.Calculator == calc).Select(x => x.PassAtK).ToList();
                for (int i = 1; i < pk.Count; i++) Assert.True(pk[i] >= pk[i - 1] - 1e-12);
            }
            Assert.All(r.Points, p => Assert.InRange(p.Accuracy, 0, 1));
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }
}
