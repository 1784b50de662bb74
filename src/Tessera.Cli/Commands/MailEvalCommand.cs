using System.CommandLine;
using System.Diagnostics;
using Tessera.Inference;
using Tessera.Kernels.IO;
using Tessera.Retrieval;
using Tessera.Retrieval.Evaluation;
using Tessera.Retrieval.Sparse;

namespace Tessera.Cli.Commands;

/// <summary>
/// <c>tessera eval mail</c>: the personal-data task (docs/retrieval.md, "Personal data: the mail
/// corpus"). Cloze questions about a mail folder, each answer in exactly one message; reports the
/// answer message's recall among the searched passages, search latency, and the citations a
/// <c>serve --index</c> reply carries; with <c>--model</c> also the likelihood-choice answers
/// without and with the top passage, and how often a right answer's citations point at its message.
/// </summary>
public static class MailEvalCommand
{
    /// <summary>The command.</summary>
    public static Command Create()
    {
        var corpus = new Option<string>("--corpus") { Description = "The mail folder (read as `index build --input` reads it: one document per message).", Required = true };
        var index = new Option<string>("--index") { Description = "Index of that folder (built here from --corpus when the folder has no index.json).", Required = true };
        var askFrom = new Option<string?>("--ask-from") { Description = "Comma-separated subfolders of --corpus whose messages questions are drawn from (default: all); the whole folder is searched either way." };
        var questions = new Option<int>("--questions") { Description = "Cloze questions (a third each: years, numbers, names).", DefaultValueFactory = _ => 300 };
        var seed = new Option<int>("--seed") { Description = "Question sampling seed.", DefaultValueFactory = _ => 1 };
        var depth = new Option<int>("--depth") { Description = "Passages searched per question (recall is reported at 1, 3, 10 and this depth).", DefaultValueFactory = _ => 100 };
        var cite = new Option<int>("--cite") { Description = "Passages cited per reply (serve --index's --index-passages).", DefaultValueFactory = _ => 3 };
        var model = new Option<string?>("--model") { Description = "Also answer by likelihood choice among --choices fillers, without and with the top passage (checkpoint or run folder)." };
        var choices = new Option<int>("--choices") { Description = "Fillers per question: the answer and K − 1 distractors.", DefaultValueFactory = _ => 4 };
        var generate = new Option<bool>("--generate") { Description = "With --model: the model writes the blank's filler after the sentence's left context (greedy, exact match after normalisation) instead of choosing among fillers; blanks need 5 words before them." };
        var queryWords = new Option<int>("--query-words") { Description = "Search with only this many words of the blanked sentence, drawn at random and kept in order (0: the whole sentence).", DefaultValueFactory = _ => 0 };
        var layout = new Option<SwapLayout>("--layout") { Description = "With --model: how the top passage precedes the sentence, as in eval swap: ralm (passage, blank line, sentence) or retro (lab retro's training layout: a 128-token window of the passage around the sentence).", DefaultValueFactory = _ => SwapLayout.Ralm };
        var ownText = new Option<int>("--own-text-tokens") { Description = "With --layout retro: passage tokens just before the sentence in the own-text slot (lab retro trains with 64).", DefaultValueFactory = _ => 0 };
        var writeRows = new Option<string?>("--write-rows") { Description = "Also write each question's outcome (message, sentence, answer, rank, citations, right without / with) to this JSONL file." };
        var json = BenchCommand.JsonOption();
        var cmd = new Command("mail", "Personal data: cloze questions about a mail folder; recall of the answer's message, search latency, citations, and (with --model) answers.")
            { corpus, index, askFrom, questions, seed, depth, cite, model, choices, generate, queryWords, layout, ownText, writeRows, json };
        cmd.SetAction(p =>
        {
            bool quiet = p.GetValue(json);
            void Say(string s) { if (!quiet) Console.Error.WriteLine(s); }
            int d = p.GetValue(depth), c = p.GetValue(cite), k = p.GetValue(choices);
            if (d < 10 || d > 10_000) throw new ArgumentException($"eval mail: --depth must be in [10, 10000], got {d}.");
            if (p.GetValue(queryWords) < 0) throw new ArgumentException($"eval mail: --query-words cannot be negative ({p.GetValue(queryWords)}).");
            if (c < 1 || c > d) throw new ArgumentException($"eval mail: --cite must be in [1, --depth], got {c}.");
            if (k < 2) throw new ArgumentException($"eval mail: --choices must be at least 2 (the answer and one distractor), not {k}.");
            bool gen = p.GetValue(generate);
            if (gen && p.GetValue(model) is null) throw new ArgumentException("eval mail: --generate needs --model.");
            string root = p.GetValue(corpus)!, dir = p.GetValue(index)!;
            if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"eval mail: --corpus {root} is not a folder (the spam-assassin corpus: data/fetch_mail.sh).");
            var clock = Stopwatch.StartNew();
            var docs = DocumentSource.Read(root, s => Say(s)).ToList();
            if (docs.Count == 0) throw new InvalidDataException($"eval mail: no documents in {root} (expected a folder of mail files or mboxes).");
            Say($"read {docs.Count:N0} documents from {root} in {clock.Elapsed.TotalSeconds:F1} s");
            double? buildSeconds = null;
            if (!File.Exists(Path.Combine(dir, IndexManifest.FileName)))
            {
                var built = Bm25IndexBuilder.Build(dir, docs, new IndexBuildOptions { Progress = Say });
                buildSeconds = built.Seconds;
                Say($"index: {built.Manifest.Documents:N0} documents as {built.Manifest.Passages:N0} passages in {built.Seconds:F1} s → {dir}");
            }
            var folders = p.GetValue(askFrom)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            bool Asked(string id) => folders is null || folders.Any(f => id.StartsWith(f.TrimEnd('/') + "/", StringComparison.Ordinal));
            var qs = MailTask.Questions(docs, Asked, p.GetValue(questions), p.GetValue(seed), k, gen ? 5 : 0);
            Say($"{qs.Count} questions ({string.Join(", ", qs.GroupBy(q => q.Kind).Select(g => $"{g.Count()} {g.Key}"))}) from {docs.Count(x => Asked(x.Id)):N0} messages, each answer in exactly one message");
            using var idx = Bm25Index.Open(dir);
            MailScore score;
            string? resolved = null;
            if (p.GetValue(model) is { } source)
            {
                var (owner, weights, r) = ModelFiles.LoadWeights(source);
                resolved = r;
                using (owner)
                {
                    var (tok, bos, _) = ModelFiles.LoadTokenizer(source, r, null);
                    using var engine = new BatchingEngine(weights, new BatchingOptions { MaxSequences = 1 });
                    score = MailTask.Evaluate(idx, qs, d, c, engine, tok, bos, Say, gen, p.GetValue(queryWords), p.GetValue(layout), p.GetValue(ownText));
                }
            }
            else score = MailTask.Evaluate(idx, qs, d, c, progress: Say, queryWords: p.GetValue(queryWords));
            long bytes = Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
            var right = score.Right;
            var summary = new
            {
                corpus = Path.GetFullPath(root), index = Path.GetFullPath(dir), index_bytes = bytes, index_build_seconds = buildSeconds, documents = docs.Count, questions = qs.Count, query_words = p.GetValue(queryWords),
                recall_at_1 = score.RecallAt(1), recall_at_3 = score.RecallAt(3), recall_at_10 = score.RecallAt(10), recall_at_depth = score.RecallAt(d), depth = d,
                search_ms_median = score.LatencyPercentile(0.5), search_ms_p95 = score.LatencyPercentile(0.95), search_ms_mean = score.Rows.Average(r => r.Milliseconds),
                cite = c, cites_message = score.CitesMessage, cited_passage_holds_answer = score.CitedPassageHoldsAnswer,
                model = resolved, answer = resolved is null ? null : gen ? "generate" : "choose", layout = p.GetValue(layout).ToString().ToLowerInvariant(), own_text_tokens = p.GetValue(ownText), choices = resolved is null || gen ? 0 : k,
                accuracy_without = resolved is null ? double.NaN : MailScore.Share(score.Rows, r => r.RightWithout == true),
                accuracy_with = resolved is null ? double.NaN : MailScore.Share(score.Rows, r => r.RightWith == true),
                right_with = right.Count,
                right_cites_message = MailScore.Share(right, r => r.CitesMessage),
                right_first_cites_message = MailScore.Share(right, r => r.FirstCitesMessage),
                right_cited_passage_holds_answer = MailScore.Share(right, r => r.CitedPassageHoldsAnswer),
            };
            if (p.GetValue(writeRows) is { } rowsFile)
                AtomicFile.WriteAllText(rowsFile, string.Concat(qs.Zip(score.Rows, (q, r) => JsonNaming.SerializeObject(new
                {
                    r.Message, q.Kind, q.Sentence, q.Answer, q.Choices, r.Rank, r.CitesMessage, r.FirstCitesMessage, r.CitedPassageHoldsAnswer, r.RightWithout, r.RightWith, r.GeneratedWithout, r.GeneratedWith, r.Cited,
                }).ReplaceLineEndings("") + "\n")));
            if (quiet) Console.WriteLine(JsonNaming.SerializeObject(summary));
            else
            {
                Console.WriteLine($"{docs.Count:N0} messages, index {bytes / 1048576.0:F1} MiB" + (buildSeconds is { } b ? $", built in {b:F1} s" : "") + $"; {qs.Count} questions" + (p.GetValue(queryWords) > 0 ? $", each searched with {p.GetValue(queryWords)} of its sentence's words" : ", each searched with its whole blanked sentence"));
                Console.WriteLine($"recall of the answer's message among the top passages: @1 {summary.recall_at_1:F3}  @3 {summary.recall_at_3:F3}  @10 {summary.recall_at_10:F3}  @{d} {summary.recall_at_depth:F3}");
                Console.WriteLine($"search (top {d}): median {summary.search_ms_median:F2} ms, p95 {summary.search_ms_p95:F2} ms, mean {summary.search_ms_mean:F2} ms");
                Console.WriteLine($"the {c} cited passages include the answer's message for {summary.cites_message:F3} of questions; hold the completed sentence for {summary.cited_passage_holds_answer:F3}");
                if (resolved is not null)
                {
                    Console.WriteLine($"model {resolved}: " + (gen ? "GENERATED fillers (exact match)" : $"likelihood choice among {k} fillers") + $", layout {p.GetValue(layout).ToString().ToLowerInvariant()}" + $", without the passage {summary.accuracy_without:F3}, with the top passage {summary.accuracy_with:F3}");
                    Console.WriteLine($"of the {right.Count} right answers (with the passage): citations include the answer's message {summary.right_cites_message:F3} " +
                                      $"(first citation {summary.right_first_cites_message:F3}); a cited passage holds the completed sentence {summary.right_cited_passage_holds_answer:F3}");
                }
            }
            return 0;
        });
        return cmd;
    }
}
