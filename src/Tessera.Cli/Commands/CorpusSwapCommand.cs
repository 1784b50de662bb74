using System.CommandLine;
using System.IO.Compression;
using System.Security.Cryptography;
using Tessera.Inference;
using Tessera.Kernels.IO;
using Tessera.Retrieval;
using Tessera.Retrieval.Evaluation;
using Tessera.Retrieval.Sparse;

namespace Tessera.Cli.Commands;

/// <summary>
/// <c>tessera eval swap</c>: the corpus swap (docs/retrieval.md). Writes the training text of the
/// addresses up to the cutoff (<c>--write-train</c>), or answers cloze questions about the later
/// addresses without and with an index of them, and checks the weights did not change (SHA-256).
/// </summary>
public static class CorpusSwapCommand
{
    /// <summary>The command.</summary>
    public static Command Create()
    {
        var model = new Option<string?>("--model") { Description = "Model trained on the addresses up to the cutoff (checkpoint or run folder)." };
        var corpus = new Option<string>("--corpus") { Description = "State of the Union corpus (=== YYYY_name.txt === headers; .gz allowed).", DefaultValueFactory = _ => "data/corpus/sotu.txt.gz" };
        var cutoff = new Option<int>("--cutoff") { Description = "Last year the model may read.", DefaultValueFactory = _ => 1950 };
        var index = new Option<string?>("--index") { Description = "Index of the later addresses (built here when the folder has no index.json)." };
        var questions = new Option<int>("--questions") { Description = "Cloze questions (a third each: years, numbers, names).", DefaultValueFactory = _ => 150 };
        var writeTrain = new Option<string?>("--write-train") { Description = "Write the addresses up to the cutoff to this text file and exit (train on it with `tessera train --data`)." };
        var matched = new Option<bool>("--matched-distractors") { Description = "Distractors like the answer (years within 20, numbers of its length, names of its first letter), so the no-index score nears chance." };
        var layout = new Option<SwapLayout>("--layout") { Description = "How the passage precedes the scored sentence: ralm (passage, blank line, sentence) or retro (lab retro's training layout: a --neighbour-tokens window of the passage around the sentence, then the sentence with no separator).", DefaultValueFactory = _ => SwapLayout.Ralm };
        var neighbourTokens = new Option<int>("--neighbour-tokens") { Description = "Window length of --layout retro (lab retro trains with 128: a 64-token chunk plus its continuation).", DefaultValueFactory = _ => CorpusSwapTask.DefaultNeighbourTokens };
        var ownText = new Option<int>("--own-text-tokens") { Description = "With --layout retro: also fill the slot where training has the chunk's own earlier text with this many passage tokens just before the sentence (lab retro trains with 64).", DefaultValueFactory = _ => 0 };
        var oracle = new Option<SwapOracle>("--oracle-passage") { Description = "Diagnostic probe instead of the search hit: sentence (the completed sentence alone) or address (it with three sentences either side from its address). A model that copies answers nearly all; not a swap figure.", DefaultValueFactory = _ => SwapOracle.None };
        var seed = new Option<int>("--seed") { Description = "Question sampling seed.", DefaultValueFactory = _ => 1 };
        var answerMode = new Option<string>("--answer") { Description = "How an answer is given: choose (the likeliest of the --choices fillers) or generate (greedy decoding of the blank's filler after the sentence's left context, right when it equals the gold filler after normalisation: case, whitespace, surrounding punctuation).", DefaultValueFactory = _ => "choose" };
        var choices = new Option<int>("--choices") { Description = "Fillers per question with --answer choose: the answer and K − 1 distractors (at least 2).", DefaultValueFactory = _ => 4 };
        var minLeft = new Option<int?>("--min-left-words") { Description = "Draw only blanks with at least this many words before them in their sentence, for both conditions (default: 5 with --answer generate, whose filler is predicted from the left context alone; 0 with choose)." };
        var attribution = new Option<int>("--attribution") { Description = "Also ask this many \"which year / which president said …\" questions (half each; answered in the ralm layout, the passage quoted with its source line).", DefaultValueFactory = _ => 0 };
        var writeRows = new Option<string?>("--write-rows") { Description = "Also write each question's outcome (sentence, answer, without / with, generated fillers) to this JSONL file." };
        var json = BenchCommand.JsonOption();
        var cmd = new Command("swap", "Corpus swap: cloze questions about addresses after the cutoff, answered without and with an index of them (same weights).")
            { model, corpus, cutoff, index, questions, writeTrain, seed, matched, layout, neighbourTokens, ownText, oracle, answerMode, choices, minLeft, attribution, writeRows, json };
        cmd.SetAction(p =>
        {
            bool quiet = p.GetValue(json);
            void Say(string s) { if (!quiet) Console.Error.WriteLine(s); }
            string mode = p.GetValue(answerMode)!;
            if (mode is not ("choose" or "generate")) throw new ArgumentException($"eval swap: --answer must be choose or generate, not '{mode}'.");
            bool generate = mode == "generate";
            int k = p.GetValue(choices);
            if (k < 2) throw new ArgumentException($"eval swap: --choices must be at least 2 (the answer and one distractor), not {k}.");
            if (generate && p.GetResult(choices) is { Implicit: false }) throw new ArgumentException("eval swap: --choices applies to --answer choose; generated answers are not chosen among fillers.");
            int minLeftWords = p.GetValue(minLeft) ?? (generate ? 5 : 0);
            if (minLeftWords < 0) throw new ArgumentException($"eval swap: --min-left-words cannot be negative ({minLeftWords}).");
            int nAttribution = p.GetValue(attribution);
            if (nAttribution < 0) throw new ArgumentException($"eval swap: --attribution cannot be negative ({nAttribution}).");
            if (nAttribution > 0 && p.GetValue(layout) == SwapLayout.Retro) throw new ArgumentException("eval swap: --attribution questions use --layout ralm (the retro window may cut the passage's source line).");
            if (nAttribution > 0 && p.GetValue(oracle) != SwapOracle.None) throw new ArgumentException("eval swap: --oracle-passage probes cloze questions only; drop --attribution.");
            var speeches = ReadSpeeches(p.GetValue(corpus)!);
            int cut = p.GetValue(cutoff);
            var early = speeches.Where(s => s.Year <= cut).ToList();
            var later = speeches.Where(s => s.Year > cut).ToList();
            if (p.GetValue(writeTrain) is { } trainFile)
            {
                AtomicFile.WriteAllText(trainFile, string.Join("\n\n", early.Select(s => s.Text)) + "\n");
                Say($"wrote {early.Count} addresses up to {cut} to {trainFile}; {later.Count} later addresses are left for the index");
                return 0;
            }
            string source = p.GetValue(model) ?? throw new ArgumentException("eval swap: --model is required (or --write-train FILE).");
            string dir = p.GetValue(index) ?? throw new ArgumentException("eval swap: --index is required (a folder; built from the later addresses when it has no index.json).");
            if (!File.Exists(Path.Combine(dir, IndexManifest.FileName)))
            {
                var built = Bm25IndexBuilder.Build(dir, CorpusSwapTask.Documents(later), new IndexBuildOptions { Shards = 4, PassageWords = 100 });
                Say($"index: {later.Count} addresses after {cut} as {built.Manifest.Passages:N0} passages in {dir}");
            }
            var (owner, weights, resolved) = ModelFiles.LoadWeights(source);
            string before = WeightsHash(resolved);
            double score;
            CorpusSwapScore result;
            using (owner)
            {
                var (tok, bos, _) = ModelFiles.LoadTokenizer(source, resolved, null);
                using var engine = new BatchingEngine(weights, new BatchingOptions { MaxSequences = 1 });
                using var idx = Bm25Index.Open(dir);
                var qs = CorpusSwapTask.Questions(later, p.GetValue(questions), p.GetValue(seed), p.GetValue(matched), k, minLeftWords);
                int cloze = qs.Count;
                qs.AddRange(CorpusSwapTask.AttributionQuestions(later, nAttribution, p.GetValue(seed), p.GetValue(matched), k));
                Say($"{cloze} cloze questions" + (minLeftWords > 0 ? $" (blanks with at least {minLeftWords} words before them)" : "") + $" and {qs.Count - cloze} which-year / which-president questions from {later.Count} addresses after {cut}");
                result = generate
                    ? CorpusSwapTask.EvaluateGenerated(engine, tok, bos, idx, qs, Say, p.GetValue(layout), p.GetValue(neighbourTokens), p.GetValue(oracle), later, p.GetValue(ownText))
                    : CorpusSwapTask.Evaluate(engine, tok, bos, idx, qs, Say, p.GetValue(layout), p.GetValue(neighbourTokens), p.GetValue(oracle), later, p.GetValue(ownText));
                score = result.Kinds[^1].AccuracyWith;
                if (p.GetValue(writeRows) is { } rowsFile)
                    AtomicFile.WriteAllText(rowsFile, string.Concat(qs.Zip(result.Rows, (q, r) => JsonNaming.SerializeObject(new
                    {
                        q.Speech, q.Kind, q.Sentence, q.Answer, q.Choices, r.Plain, r.WithIndex, r.GeneratedWithout, r.GeneratedWith, r.RetrievedOwnSpeech, r.PassageHoldsSentence,
                    }).ReplaceLineEndings("") + "\n")));
            }
            string after = WeightsHash(resolved);
            if (before != after) throw new InvalidOperationException($"{resolved}: the weights changed during the evaluation ({before} → {after}).");
            string how = (generate ? "GENERATED answers (exact match after normalisation)" : $"answers chosen among {k} fillers" + (p.GetValue(matched) ? " (matched distractors)" : ""))
                + (minLeftWords > 0 ? $", blanks with >= {minLeftWords} words of left context" : "")
                + $", layout {p.GetValue(layout).ToString().ToLowerInvariant()}" + (p.GetValue(layout) == SwapLayout.Retro ? $", {p.GetValue(neighbourTokens)}-token window, {p.GetValue(ownText)} own-text tokens" : "")
                + (p.GetValue(oracle) != SwapOracle.None ? $", ORACLE passage ({p.GetValue(oracle).ToString().ToLowerInvariant()}; a probe, not a swap figure)" : "");
            if (quiet) Console.WriteLine(JsonNaming.SerializeObject(new { model = resolved, weights_sha256 = before, weights_sha256_after = after, cutoff = cut, index = dir, answer = mode, choices = generate ? 0 : k, min_left_words = minLeftWords,
                layout = p.GetValue(layout).ToString().ToLowerInvariant(), oracle_passage = p.GetValue(oracle).ToString().ToLowerInvariant(), result.Kinds }));
            else
            {
                Console.WriteLine($"weights sha256 {before} before, {after} after (unchanged); {how}");
                Console.WriteLine($"{"kind",-8} {"questions",9} {"without",8} {"with",8} {"ratio",7} {"own speech",11} {"holds answer",13} {"holds, when right",18} {"nats/tok without",17} {"with",6}");
                foreach (var r in result.Kinds)
                    Console.WriteLine($"{r.Kind,-8} {r.Questions,9} {r.AccuracyWithout,8:F3} {r.AccuracyWith,8:F3} {Ratio(r),7} {r.RetrievedOwnSpeech,11:F3} {r.PassageHoldsSentence,13:F3} {r.CitedPassageHoldsAnswerWhenRight,18:F3} {r.AnswerNatsPerToken,17:F3} {r.AnswerNatsPerTokenWithPassage,6:F3}");
                Console.WriteLine("ratio: with / without (inf when nothing was right without the index); nats/tok: the right sentence's nats per scored token without / with the passage (a model that copies from a passage holding the sentence drops far lower)");
            }
            return 0;
        });
        return cmd;
    }

    static string Ratio(CorpusSwapKind r) => r.AccuracyWithout > 0 ? (r.AccuracyWith / r.AccuracyWithout).ToString("F2", System.Globalization.CultureInfo.InvariantCulture) + "x"
        : r.AccuracyWith > 0 ? "inf" : "-";

    /// <summary>SHA-256 over the weight files of a model folder (or of the file itself), in name order.</summary>
    static string WeightsHash(string resolved)
    {
        var files = File.Exists(resolved) ? [resolved]
            : Directory.GetFiles(resolved).Where(f => f.EndsWith(".safetensors", StringComparison.Ordinal) && !f.Contains("optimizer", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToArray();
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var f in files) sha.AppendData(File.ReadAllBytes(f));
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    /// <summary>The addresses of a State of the Union corpus file (plain or .gz, <c>=== YYYY_name.txt ===</c> headers).</summary>
    public static List<Speech> ReadSpeeches(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such corpus file (expected the State of the Union corpus, data/corpus/sotu.txt.gz).", path);
        using var fs = File.OpenRead(path);
        using var reader = new StreamReader(path.EndsWith(".gz", StringComparison.Ordinal) ? new GZipStream(fs, CompressionMode.Decompress) : fs);
        return CorpusSwapTask.ParseSotu(reader.ReadToEnd());
    }
}
