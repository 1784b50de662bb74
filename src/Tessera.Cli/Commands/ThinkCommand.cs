using System.CommandLine;
using Tessera.Evals.Thinking;
using Tessera.Inference;
using Tessera.Text;
using Tessera.Training;
using Tessera.Thinking;

namespace Tessera.Cli.Commands;

/// <summary>
/// <c>tessera think</c>: the test-time compute dial. <c>think lab [--quick]</c> runs the whole
/// experiment (task → training → every strategy at 1…64 samples → figure and tables);
/// <c>think ask</c> answers one question with a strategy at a budget on the lab's model.
/// </summary>
public static class ThinkCommand
{
    /// <summary>Builds the <c>tessera think</c> command with its subcommands.</summary>
    public static Command Create()
    {
        var think = new Command("think", "Test-time compute: strategies (greedy, vote, verify, score, revise) at a budget, with an in-process calculator.");

        var quick = new Option<bool>("--quick") { Description = "A run of under a minute (tiny model, 8 questions, 8 samples): a smoke test, not a result." };
        var output = new Option<string>("--out") { Description = "Output folder (results.json, report.md, dial.svg, the model).", DefaultValueFactory = _ => "runs/think" };
        var steps = new Option<int?>("--steps") { Description = "Training steps (default: the plan's)." };
        var testPerLevel = new Option<int?>("--test-per-level") { Description = "Test questions per difficulty level (default: the plan's)." };
        var samples = new Option<int?>("--samples") { Description = $"Largest sample budget, 1–{ThinkOptions.MaxN} (default: the plan's)." };
        var trained = new Option<string?>("--trained") { Description = "Evaluate this checkpoint (OUT/model of an earlier run) instead of training." };
        var lab = new Command("lab", "The dial experiment: train a small byte model on the arithmetic task, then plot accuracy vs compute for each strategy.")
            { quick, output, steps, testPerLevel, samples, trained };
        lab.SetAction((p, cancel) =>
        {
            var plan = p.GetValue(quick) ? DialPlan.Quick : DialPlan.Full;
            if (p.GetValue(steps) is { } s) plan = plan with { Steps = s >= 1 ? s : throw new ArgumentException($"think lab: --steps {s} must be ≥ 1") };
            if (p.GetValue(testPerLevel) is { } t) plan = plan with { TestPerLevel = t is >= 1 and <= 1000 ? t : throw new ArgumentException($"think lab: --test-per-level {t} must be in 1–1000") };
            if (p.GetValue(samples) is { } n)
                plan = plan with { MaxSamples = n is >= 2 and <= ThinkOptions.MaxN ? n : throw new ArgumentException($"think lab: --samples {n} must be in 2–{ThinkOptions.MaxN}") };
            if (p.GetValue(trained) is { } t2) plan = plan with { TrainedModel = t2 };
            var r = DialLab.Run(plan, p.GetValue(output)!, Console.WriteLine, cancel);
            Console.WriteLine($"wrote {string.Join(", ", r.Files)}, results.json and report.md to {p.GetValue(output)}");
            return Task.FromResult(0);
        });
        think.Subcommands.Add(lab);

        var model = new Option<string>("--model") { Description = "A byte-level checkpoint or run folder (what 'think lab' saves under OUT/model).", Required = true };
        var strategy = new Option<string>("--strategy") { Description = "greedy, vote, verify, score or revise.", DefaultValueFactory = _ => "vote" };
        var n = new Option<int>("--n") { Description = $"Samples (or revision attempts), 1–{ThinkOptions.MaxN}.", DefaultValueFactory = _ => 8 };
        var calculator = new Option<bool>("--calculator") { Description = "Let the model call the calculator (<<expr= … result>>)." };
        var temperature = new Option<float>("--temperature") { Description = "Temperature of the sampled completions.", DefaultValueFactory = _ => 0.8f };
        var seed = new Option<ulong>("--seed") { Description = "Seed of sample 0 (sample i uses seed + i).", DefaultValueFactory = _ => 0UL };
        var question = new Argument<string>("question") { Description = "The question, e.g. \"12+7*5-9\"." };
        var index = new Option<string?>("--index") { Description = "A retrieval index folder ('tessera index build'): the model may call search mid-generation (<<search:QUERY= … best passage>>)." };
        var ask = new Command("ask", "Answer one question with a strategy at a budget.") { model, strategy, n, calculator, index, temperature, seed, question };
        ask.SetAction(async (p, cancel) =>
        {
            var options = new ThinkOptions(ThinkOptions.ParseStrategy(p.GetValue(strategy)!), p.GetValue(n), p.GetValue(calculator))
            { Temperature = p.GetValue(temperature), Seed = p.GetValue(seed), Search = p.GetValue(index) is not null }.Validate();
            string q = p.GetValue(question)!;
            if (q.Length == 0 || q.Contains('\n')) throw new ArgumentException("think ask: the question must be one non-empty line");
            using var searchIndex = p.GetValue(index) is { } dir ? Retrieval.Sparse.Bm25Index.Open(dir) : null;
            using var m = Checkpoint.LoadModel(p.GetValue(model)!);
            if (m.Config.VocabSize != 256) throw new ArgumentException($"think ask: {p.GetValue(model)} has a vocabulary of {m.Config.VocabSize}; expected a byte-level model (256) as 'think lab' trains");
            using var engine = new BatchingEngine(m, new BatchingOptions { MaxSequences = 64, PrefixCacheBytes = 16L << 20 });
            var tokenizer = new ByteTokenizer();
            var search = searchIndex is null ? null : new Server.RetrieverSearchTool(new IndexChatRetriever(searchIndex, 1));
            var result = await Dial.RunAsync(new ToolDecoder(engine, tokenizer, search: search), tokenizer.Encode(ArithmeticTask.Prompt(q, options.Calculator)),
                TraceChecker.NumbersIn(q), options, cancel);
            Console.Write(result.Chosen.Text.EndsWith('\n') ? result.Chosen.Text : result.Chosen.Text + "\n");
            Console.WriteLine($"answer: {(result.Answer is { } a ? Calculator.Format(a) : "none")}  ({options.Strategy}, n = {options.N}, {result.Tokens} tokens, {result.Samples.Count} completions)");
            foreach (var passage in result.Chosen.Passages) Console.WriteLine($"searched: {passage.DocumentId} [{passage.Start}, +{passage.Length}]");
            return result.Answer is null ? 1 : 0;
        });
        think.Subcommands.Add(ask);
        return think;
    }
}
