using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;
using Tessera.Evals.LongContext;
using Tessera.Inference;
using Tessera.Model;
using Tessera.Text;

namespace Tessera.Evals.Tests;

/// <summary>The RULER-style generator (lengths, depths, answers recounted independently) and the scoring loop, with an oracle and a mute engine.</summary>
public class LongContextTests
{
    static readonly ByteTokenizer Tok = TinyModels.Bytes;

    [Fact]
    public void Items_AreDeterministic_FitTheirLength_AndHoldTheirAnswers()
    {
        var gen = new RulerTasks(Tok);
        foreach (var task in Enum.GetValues<RulerTask>())
            foreach (int len in new[] { 512, 1024, 4096 })
            {
                var a = gen.Generate(task, len, 0.5, 11);
                Assert.Equal(a.Prompt, gen.Generate(task, len, 0.5, 11).Prompt);
                Assert.NotEqual(a.Prompt, gen.Generate(task, len, 0.5, 12).Prompt);
                Assert.Equal(Tok.Encode(a.Prompt).Count, a.Tokens);
                Assert.InRange(a.Tokens, (int)(len * 0.9), len);
                Assert.NotEmpty(a.Answers);
                if (task == RulerTask.CommonWords)
                {
                    // Recount: the answers are the three most frequent list words.
                    var words = a.Prompt[..a.Prompt.IndexOf(". What", StringComparison.Ordinal)].Split(", ");
                    var top = words.GroupBy(w => w).OrderByDescending(g => g.Count()).Take(3).Select(g => g.Key).ToHashSet();
                    Assert.True(top.SetEquals(a.Answers), $"{len}: {string.Join(",", a.Answers)} vs {string.Join(",", top)}");
                }
                else foreach (var ans in a.Answers) Assert.Contains(ans, a.Prompt);
            }
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.25)]
    [InlineData(0.5)]
    [InlineData(1.0)]
    public void TheNeedle_SitsAtItsDepth(double depth)
    {
        var item = new RulerTasks(Tok).Generate(RulerTask.SingleNeedle, 4096, depth, 5);
        int question = item.Prompt.IndexOf("What is the magic number", StringComparison.Ordinal);
        int needle = item.Prompt.IndexOf("The magic number for", StringComparison.Ordinal);
        Assert.True(needle < question);
        Assert.InRange(needle / (double)question, depth - 0.02, depth + 0.02);
    }

    [Fact]
    public void CorpusHaystack_UsesItsSentences()
    {
        var gen = new RulerTasks(Tok, "Call me Ishmael. Some years ago I went to sea. It is a way I have of driving off the spleen!");
        var item = gen.Generate(RulerTask.MultiKey, 1024, 0.3, 1);
        Assert.Contains("Some years ago I went to sea.", item.Prompt);
        Assert.DoesNotContain("The grass is green.", item.Prompt);
        Assert.Throws<ArgumentException>(() => new RulerTasks(Tok, "no sentence end here"));
        Assert.Throws<ArgumentException>(() => gen.Generate(RulerTask.SingleNeedle, 32, 0.5, 1));
        Assert.Throws<ArgumentException>(() => gen.Generate(RulerTask.SingleNeedle, 512, 1.5, 1));
    }

    [Fact]
    public void Score_IsTheFractionOfAnswersFound()
    {
        Assert.Equal(1.0, LongContextEval.Score(" 1234567 and 7654321.", ["1234567", "7654321"]));
        Assert.Equal(0.5, LongContextEval.Score(" 1234567 and 7.", ["1234567", "7654321"]));
        Assert.Equal(0.0, LongContextEval.Score("", ["1234567"]));
    }

    /// <summary>An engine that reads the prompt and answers each task exactly (a scalar twin of a perfect model), or says nothing.</summary>
    sealed class OracleEngine(ModelConfig config, bool mute) : IGenerationEngine
    {
        public ModelConfig Config => config;
        public IReadOnlyList<TokenEvent> Score(IReadOnlyList<int> prompt, int topLogprobs) => throw new NotSupportedException();
        public float[] Embed(IReadOnlyList<int> ids) => throw new NotSupportedException();

        public async IAsyncEnumerable<TokenEvent> GenerateAsync(GenerationRequest request, [EnumeratorCancellation] CancellationToken cancel = default)
        {
            await Task.Yield();
            if (mute) yield break;
            string prompt = Tok.Decode(request.Prompt.Where(id => id < 256).ToArray());
            string answer;
            var q = Regex.Match(prompt, @"magic numbers? for ([a-z\-]+)(?: and ([a-z\-]+))?\? The");
            if (prompt.Contains("common words", StringComparison.Ordinal))
                answer = string.Join(" ", prompt[..prompt.IndexOf(". What", StringComparison.Ordinal)].Split(", ").GroupBy(w => w).OrderByDescending(g => g.Count()).Take(3).Select(g => g.Key));
            else if (Regex.Match(prompt, @"assigned the value (\d+)\?") is { Success: true } v)
            {
                var names = new List<string> { Regex.Match(prompt, $@"VAR ([A-Z]+) = {v.Groups[1].Value}\.").Groups[1].Value };
                for (Match m; (m = Regex.Match(prompt, $@"VAR ([A-Z]+) = VAR {names[^1]}\.")).Success;) names.Add(m.Groups[1].Value);
                answer = string.Join(" ", names);
            }
            else
                answer = string.Join(" ", q.Groups.Values.Skip(1).Where(g => g.Success).SelectMany(g =>
                    Regex.Matches(prompt, $@"magic numbers? for {Regex.Escape(g.Value)} is (\d+)\.").Select(m => m.Groups[1].Value)));
            foreach (int id in Tok.Encode(" " + answer).Take(request.MaxNewTokens)) yield return new TokenEvent(id, 0, []);
        }
    }

    [Fact]
    public async Task AnOracle_ScoresOne_AMuteEngineZero_AndLengthsPastTheContextAreSkipped()
    {
        var config = new ModelConfig { VocabSize = Tok.VocabSize, Dim = 8, Layers = 1, Heads = 1, KvHeads = 1, HiddenDim = 8, ContextLength = 2048 };
        var options = new LongContextOptions { Lengths = [512, 1024, 4096], Samples = 2, Depths = [0, 0.5, 1] };
        var gen = new RulerTasks(Tok);
        var oracle = await LongContextEval.RunAsync(new OracleEngine(config, false), Tok, TinyModels.Bos, gen, options);
        Assert.Equal([512, 1024], oracle.Lengths);
        Assert.Equal([4096], oracle.Skipped);
        foreach (var (task, perLength) in oracle.Tasks)
            foreach (var (len, score) in perLength) Assert.True(score == 1.0, $"{task} at {len}: {score}");
        Assert.All(oracle.NeedleGrid.SelectMany(r => r), s => Assert.Equal(1.0, s));
        Assert.Equal(2 * 3 * 2 + 5 * 2 * 2, oracle.Items); // needle: lengths × depths × samples; the other five: lengths × samples
        var mute = await LongContextEval.RunAsync(new OracleEngine(config, true), Tok, TinyModels.Bos, gen, options);
        Assert.All(mute.Tasks.Values.SelectMany(t => t.Values), s => Assert.Equal(0.0, s));
    }

    [Fact]
    public async Task ARealModel_RunsThroughTheBatchingEngine()
    {
        using var model = TinyModels.Random(context: 600);
        using var engine = new BatchingEngine(InferenceWeights.FromTransformer(model), new BatchingOptions { MaxSequences = 4 });
        var report = await LongContextEval.RunAsync(engine, Tok, TinyModels.Bos, new RulerTasks(Tok),
            new LongContextOptions { Lengths = [256, 512], Samples = 1, Depths = [0.5], Tasks = [RulerTask.SingleNeedle, RulerTask.CommonWords] });
        Assert.Equal([256, 512], report.Lengths);
        Assert.All(report.Tasks.Values.SelectMany(t => t.Values), s => Assert.InRange(s, 0, 1));
        Assert.Throws<ArgumentException>(() => LongContextEval.ParseTasks("niah_single,haystack_dance"));
        Assert.Equal([RulerTask.SingleNeedle, RulerTask.VariableTracking], LongContextEval.ParseTasks("niah_single, variable_tracking"));
    }
}
