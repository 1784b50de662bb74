using Tessera.Data;
using Tessera.Retrieval.Retro;
using Tessera.Retrieval.Sparse;
using Tessera.Text;

namespace Tessera.Retrieval.Tests;

/// <summary>
/// <c>tessera train --index</c>'s data: RETRO rows from a prepared folder and a passage index that
/// holds every document, the training documents' own and the held-out ones included.
/// </summary>
public class RetroTrainingDataTests
{
    static readonly ITokenizer Bytes = TokenizerFiles.Load("bytes");
    const int C = 16;

    /// <summary>
    /// Three topics of forty made-up six-letter words; each document is 70 words of one topic in random
    /// order (four training documents per topic), so topic-mates share terms (BM25 finds them) but hardly any text: with byte tokens a 13-gram
    /// is about two words, and 1,600 word pairs per topic make a shared pair rare. Any 16-byte chunk holds
    /// a whole word, so every query has a term to search for.
    /// </summary>
    internal static (List<CorpusDocument> Train, List<CorpusDocument> Validation) Corpus()
    {
        string[] syllables = ["ka", "lo", "mi", "nu", "pe", "ra", "so", "ti"];
        string[][] topics = [.. new[] { "wh", "se", "co" }.Select(stem => Enumerable.Range(0, 40).Select(i => stem + syllables[i % 8] + syllables[i / 8]).ToArray())];
        var rng = new Random(5);
        string Doc(int topic) => string.Join(' ', Enumerable.Range(0, 70).Select(_ => topics[topic][rng.Next(40)]));
        var train = Enumerable.Range(0, 12).Select(i => new CorpusDocument($"t{i}", Doc(i % 3))).ToList();
        var validation = Enumerable.Range(0, 2).Select(i => new CorpusDocument($"v{i}", Doc(i))).ToList();
        return (train, validation);
    }

    /// <summary>A neighbour's tokens between its leading and trailing filler (counted by hand, not by the code under test).</summary>
    internal static int[] Trimmed(int[] neighbour, int filler) => [.. neighbour.SkipWhile(t => t == filler).Reverse().SkipWhile(t => t == filler).Reverse()];

    /// <summary>
    /// Prepares the corpus and indexes every document (training and validation) under
    /// <paramref name="idPrefix"/> + its key: "" gives the index the data's keys (the id rule), another
    /// prefix ids the data does not know (the text rule).
    /// </summary>
    static (PreparedData Data, string Index, List<CorpusDocument> Train, List<CorpusDocument> Validation) Setup(TempFolder tmp, string idPrefix = "",
        List<CorpusDocument>? extraTrain = null)
    {
        var (train, validation) = Corpus();
        if (extraTrain is not null) train.AddRange(extraTrain);
        var data = ShardBuilder.PrepareSplits(train, validation, [], Bytes, "bytes", tmp["data"]);
        // The index holds every document: each training chunk's best hit is its own text, and held-out text is there to be refused.
        Bm25IndexBuilder.Build(tmp["idx"], [.. train.Concat(validation).Select(d => new SourceDocument(idPrefix + d.Key, d.Text))], new IndexBuildOptions { Shards = 2, PassageWords = 10 });
        return (data, tmp["idx"], train, validation);
    }

    [Theory]
    [InlineData("", "document ids", NeighbourWindow.Aligned)]
    [InlineData("elsewhere/", "text", NeighbourWindow.Aligned)]
    [InlineData("", "document ids", NeighbourWindow.Start)]
    [InlineData("elsewhere/", "text", NeighbourWindow.Start)]
    public void Rows_read_passages_of_other_training_documents_never_their_own_or_held_out_text(string idPrefix, string rule, NeighbourWindow window)
    {
        using var tmp = new TempFolder();
        var (data, idx, train, validation) = Setup(tmp, idPrefix);
        var options = new RetroTrainingOptions { ChunkTokens = C, Neighbours = 1, MaxValidationExamples = 1000, Seed = 3, Window = window };
        var (built, s) = RetroTrainingData.Build(data, idx, Bytes, options, tmp["retro"]);

        Assert.Equal(rule, s.ExclusionRule);
        Assert.Equal(idPrefix == "" ? 1.0 : 0.0, s.IdCoverage);
        Assert.Equal(5 * C, s.SequenceLength);   // k·2C + 3C
        // Every (document, u) with chunks u−1..u+1 inside: (length / C) − 2 per document.
        Assert.Equal(train.Sum(d => d.Text.Length / C - 2), s.TrainExamples);
        Assert.Equal(validation.Sum(d => d.Text.Length / C - 2), s.ValidationExamples);
        Assert.True(s.SkippedOwnText > 0, "the index holds the documents' own text, so the rule must have passed some over");
        Assert.True(s.SkippedHeldOutText > 0, "the index holds the validation documents, so the rule must have passed some over");

        Assert.Equal(NeighbourWindows.Name(window), s.Window);
        // Which document each neighbour came from: the passage it starts (start), or the one document whose text holds it
        // (aligned: it may begin inside a passage, run on into the next, and have filler before or after).
        using var index = Bm25Index.Open(idx);
        var passages = index.AllPassages().ToList();
        var everyDocument = train.Select(d => (Id: idPrefix + d.Key, d.Text)).Concat(validation.Select(d => (Id: idPrefix + d.Key, d.Text))).ToList();
        int otherDocument = 0, fillers = 0;
        foreach (var (split, docs) in new[] { (Split.Train, train), (Split.Validation, validation) })
        {
            using var shard = TokenShard.Open(built.ShardPath(split));
            Assert.True(shard.HasLossMask);
            long at = 0;
            for (int r = 0; r < shard.DocumentCount; r++)
            {
                var row = shard.ReadDocument(r);
                Assert.Equal(s.SequenceLength + 1, row.Length);
                Assert.Equal(data.BosId, row[0]);
                var mask = new byte[row.Length];
                shard.ReadLossMask(at, mask);
                at += row.Length;
                // Training rows train chunks u and u+1; validation rows score chunk u+1 only (chunk u found its own neighbours).
                int masked = split == Split.Train ? 2 * C : C;
                Assert.Equal(Enumerable.Range(0, row.Length).Select(i => i >= row.Length - masked ? (byte)1 : (byte)0), mask);
                // The row ends with three chunks of one document, at a chunk boundary.
                string own = Bytes.Decode(row.AsSpan(1 + 2 * C, 3 * C));
                var ownDoc = docs.Single(d => d.Text.Contains(own, StringComparison.Ordinal));
                Assert.Equal(0, ownDoc.Text.IndexOf(own, StringComparison.Ordinal) % C);
                var neighbour = row.AsSpan(1, 2 * C).ToArray();
                var read = window == NeighbourWindow.Start ? neighbour.TakeWhile(t => t != data.BosId).ToArray() : Trimmed(neighbour, data.BosId);
                Assert.DoesNotContain(read, t => t >= 256);
                string text = Bytes.Decode(read);
                if (text.Length == 0)
                {
                    // A filler slot: chunk u's few whole words (about two) appear in no other usable passage.
                    Assert.All(neighbour, t => Assert.Equal(data.BosId, t));
                    fillers++;
                    continue;
                }
                var source = window == NeighbourWindow.Start
                    ? passages.Where(p => p.Text.StartsWith(text, StringComparison.Ordinal)).Select(p => p.DocumentId).Distinct().ToList()
                    : everyDocument.Where(d => d.Text.Contains(text, StringComparison.Ordinal)).Select(d => d.Id).ToList();
                var from = Assert.Single(source);
                Assert.NotEqual(idPrefix + ownDoc.Key, from);
                Assert.StartsWith(idPrefix + "t", from);   // never validation text
                otherDocument++;
            }
        }
        Assert.Equal(s.FillerSlots, fillers);
        Assert.True(fillers <= (s.TrainExamples + s.ValidationExamples) / 50, $"{fillers} filler slots");   // rare with four documents per topic
        Assert.Equal(s.TrainExamples + s.ValidationExamples, otherDocument + fillers);
        // Bits per byte divides by the scored tokens' bytes (chunk u+1): C bytes per ASCII row.
        Assert.Equal(s.ValidationExamples * (long)C, s.ValidationScoredBytes);
    }

    [Fact]
    public void An_aligned_neighbour_lines_up_with_the_querying_chunk_and_reads_on_into_the_next_passage()
    {
        // Four made-up documents of ten-word passages; "quote" repeats 100 bytes of "source" from byte 37 (inside a passage),
        // framed by its own words, so its chunks are found in "source" at an offset the passages do not start at.
        var (train0, _) = Corpus();
        string source = train0[0].Text, quote = train0[4].Text[..60] + " " + source.Substring(37, 100) + " " + train0[8].Text[..80];
        using var tmp = new TempFolder();
        Bm25IndexBuilder.Build(tmp["idx"], [new SourceDocument("source", source), new SourceDocument("quote", quote), new SourceDocument("other", train0[1].Text)],
            new IndexBuildOptions { Shards = 2, PassageWords = 10 });
        using var index = Bm25Index.Open(tmp["idx"]);
        var tokens = Bytes.Encode(quote).ToArray();
        int start = quote.IndexOf(source.Substring(37, 100), StringComparison.Ordinal);
        var chunk = tokens.AsSpan(start + 20, C);   // 16 bytes well inside the quoted text
        var search = new PassageNeighbours(index, Bytes, C, 1, filler: 999, heldOut: new HashSet<string>()) { Window = NeighbourWindow.Aligned };
        var found = Assert.Single(search.Search(chunk, "quote", null));
        // The neighbour is the source's bytes from where the chunk's text stands in it: the chunk itself, then what follows in the source,
        // across a passage boundary (ten words are about 70 bytes, and bytes 57 to 89 cross the first), whichever passage BM25 found first.
        int at = 37 + 20;
        Assert.Equal(Bytes.Encode(source.Substring(at, 2 * C)).ToArray(), found);
        Assert.Equal(chunk.ToArray(), found[..C]);

        var first = Assert.Single(search.Search(chunk, "quote", null));
        Assert.Equal(found, first);   // cached: the same window again
        var atStart = new PassageNeighbours(index, Bytes, C, 1, filler: 999, heldOut: new HashSet<string>()) { Window = NeighbourWindow.Start };
        var p = index.Search(Bytes.Decode(chunk), 5).First(h => h.Passage.DocumentId == "source").Passage;
        Assert.Equal(PassageNeighbours.Cut(Bytes.Encode(p.Text).ToArray(), 0, 2 * C, 999), Assert.Single(atStart.Search(chunk, "quote", null)));
    }

    [Fact]
    public void Aligned_search_prefers_the_hit_that_repeats_the_chunk_over_the_one_BM25_ranks_first()
    {
        const string chunkText = "amber falcon ice";   // 16 bytes, C
        // "topical" repeats the chunk's three words (BM25's first) but never two of them in the chunk's order; "quote" holds the chunk once, verbatim.
        const string topical = "ice amber ice falcon amber ice falcon amber", quote = "river amber falcon ice was long and cold";
        using var tmp = new TempFolder();
        Bm25IndexBuilder.Build(tmp["idx"], [new SourceDocument("topical", topical), new SourceDocument("quote", quote), new SourceDocument("own", "a lake " + chunkText + " and reeds")],
            new IndexBuildOptions { Shards = 1, PassageWords = 10 });
        using var index = Bm25Index.Open(tmp["idx"]);
        var order = index.Search(chunkText, 10).Select(h => h.Passage.DocumentId).Where(id => id != "own").ToList();
        Assert.Equal(["topical", "quote"], order);   // the setting: BM25 puts the topical passage first
        var chunk = Bytes.Encode(chunkText).ToArray();
        Assert.Equal(C, chunk.Length);
        const int filler = 999;
        var aligned = new PassageNeighbours(index, Bytes, C, 1, filler, heldOut: new HashSet<string>());
        int at = quote.IndexOf(chunkText, StringComparison.Ordinal);
        var expected = Bytes.Encode(quote[at..]).ToArray().Concat(Enumerable.Repeat(filler, 2 * C)).Take(2 * C).ToArray();   // the quote ends before 2C: filler after
        Assert.Equal(expected, Assert.Single(aligned.Search(chunk, "own", null)));
        var start = new PassageNeighbours(index, Bytes, C, 1, filler, heldOut: new HashSet<string>()) { Window = NeighbourWindow.Start };
        Assert.Equal(Bytes.Encode(topical[..(2 * C)]).ToArray(), Assert.Single(start.Search(chunk, "own", null)));
        // Two neighbours: the quote first, then the topical passage read from where most of its 4-grams place the chunk.
        var two = new PassageNeighbours(index, Bytes, C, 2, filler, heldOut: new HashSet<string>()).Search(chunk, "own", null);
        Assert.Equal(expected, two[0]);
        Assert.Contains("amber", Bytes.Decode(PassageNeighbours.Text(two[1], filler)));
    }

    [Fact]
    public void Offset_is_the_shift_most_shared_4_grams_agree_on_and_Cut_pads_outside_the_tokens()
    {
        var rng = new Random(11);
        var passage = Enumerable.Range(0, 100).Select(_ => rng.Next(1000)).ToArray();
        var chunk = passage[30..46].ToArray();
        chunk[5] = 5000;   // a changed token breaks four 4-grams, not the alignment
        Assert.Equal(30, PassageNeighbours.Offset(chunk, passage));
        // The chunk starts 6 tokens before the passage does.
        var early = new[] { 7001, 7002, 7003, 7004, 7005, 7006 }.Concat(passage[..10]).ToArray();
        Assert.Equal(-6, PassageNeighbours.Offset(early, passage));
        // Two shifts share 4-grams; the one with more wins, and a tie goes to the smaller shift.
        var more = passage[50..59].Concat(passage[10..17]).ToArray();   // 6 grams say 50, 4 say 10 − 9 = 1
        Assert.Equal(50, PassageNeighbours.Offset(more, passage));
        var tie = passage[50..58].Concat(passage[10..18]).ToArray();    // 5 grams say 50, 5 say 10 − 8 = 2
        Assert.Equal(2, PassageNeighbours.Offset(tie, passage));
        Assert.Null(PassageNeighbours.Offset([8001, 8002, 8003, 8004, 8005], passage));   // nothing shared
        Assert.Equal([9, 9, 1, 2], PassageNeighbours.Cut([1, 2, 3], -2, 4, 9));
        Assert.Equal([3, 9, 9], PassageNeighbours.Cut([1, 2, 3], 2, 3, 9));
    }

    [Fact]
    public void A_document_that_quotes_another_is_read_by_it_under_the_id_rule_and_passed_over_under_the_text_rule()
    {
        // "reply" quotes the first 200 bytes of t0 word for word, then goes on in t0's topic: a mail reply.
        var (train0, _) = Corpus();
        string quoted = train0[0].Text[..200];
        var reply = new CorpusDocument("reply", quoted + " " + train0[3].Text[200..]);
        int fromReply(string idPrefix, out string rule)
        {
            using var tmp = new TempFolder();
            var (data, idx, _, _) = Setup(tmp, idPrefix, [reply]);
            var (built, s) = RetroTrainingData.Build(data, idx, Bytes, new RetroTrainingOptions { ChunkTokens = C, Neighbours = 1, MaxValidationExamples = 10, Seed = 3 }, tmp["retro"]);
            rule = s.ExclusionRule;
            using var index = Bm25Index.Open(idx);
            using var shard = TokenShard.Open(built.ShardPath(Split.Train));
            int n = 0;
            for (int r = 0; r < shard.DocumentCount; r++)
            {
                var row = shard.ReadDocument(r);
                string own = Bytes.Decode(row.AsSpan(1 + 2 * C, 3 * C)), neighbour = Bytes.Decode(row.AsSpan(1, 2 * C));
                // A row of t0 whose chunk u lies in the quoted text, reading the reply's copy of it, lined up: the neighbour's first C bytes
                // are chunk u, the rest what follows it in the quote.
                if (train0[0].Text.Contains(own, StringComparison.Ordinal) && quoted.Contains(own.Substring(C, C), StringComparison.Ordinal)
                    && quoted.Contains(neighbour, StringComparison.Ordinal) && neighbour.StartsWith(own.Substring(C, C), StringComparison.Ordinal)) n++;
            }
            return n;
        }
        Assert.True(fromReply("", out string byId) > 0, "under the id rule t0's quoted chunks read the reply that quotes them");
        Assert.Equal("document ids", byId);
        Assert.Equal(0, fromReply("elsewhere/", out string byText));   // the reply's quoting passages are t0's own text
        Assert.Equal("text", byText);
    }

    [Fact]
    public void The_baseline_has_the_same_examples_without_neighbours_and_builds_are_reproducible_and_reused()
    {
        using var tmp = new TempFolder();
        var (data, idx, _, _) = Setup(tmp);
        var k1 = new RetroTrainingOptions { ChunkTokens = C, Neighbours = 1, MaxTrainExamples = 9, MaxValidationExamples = 4, Seed = 7 };
        var (a, sa) = RetroTrainingData.Build(data, idx, Bytes, k1, tmp["a"]);
        var (b, _) = RetroTrainingData.Build(data, idx, Bytes, k1, tmp["b"]);
        Assert.Equal(9, sa.TrainExamples);
        Assert.Equal(4, sa.ValidationExamples);
        foreach (var split in new[] { Split.Train, Split.Validation })
        {
            Assert.Equal(File.ReadAllBytes(a.ShardPath(split)), File.ReadAllBytes(b.ShardPath(split)));
            Assert.Equal(File.ReadAllBytes(TokenShard.MaskPath(a.ShardPath(split))), File.ReadAllBytes(TokenShard.MaskPath(b.ShardPath(split))));
        }

        var (plain, sp) = RetroTrainingData.Build(data, idx, Bytes, k1 with { Neighbours = 0 }, tmp["plain"]);
        Assert.Equal(3 * C, sp.SequenceLength);
        Assert.Equal(0, sp.Searches);
        using (var withRetrieval = TokenShard.Open(a.ShardPath(Split.Train)))
        using (var without = TokenShard.Open(plain.ShardPath(Split.Train)))
        {
            Assert.Equal(withRetrieval.DocumentCount, without.DocumentCount);
            for (int r = 0; r < without.DocumentCount; r++)
                Assert.Equal(withRetrieval.ReadDocument(r)[(1 + 2 * C)..], without.ReadDocument(r)[1..]);   // the same chunks, in the same order
        }

        // The same inputs and settings: the folder is reused as it is; other settings rebuild it.
        var stamp = File.GetLastWriteTimeUtc(a.ShardPath(Split.Train));
        var (_, again) = RetroTrainingData.Build(data, idx, Bytes, k1, tmp["a"]);
        Assert.Equal(stamp, File.GetLastWriteTimeUtc(a.ShardPath(Split.Train)));
        Assert.True(again.SameInputs(sa));
        var (_, two) = RetroTrainingData.Build(data, idx, Bytes, k1 with { Neighbours = 2 }, tmp["a"]);
        Assert.Equal(2, two.Neighbours);
        Assert.Equal(7 * C, RetroTrainingData.ReadSummary(tmp["a"])!.SequenceLength);
    }

    [Fact]
    public void Documents_too_short_for_three_chunks_and_a_mismatched_tokenizer_are_refused()
    {
        using var tmp = new TempFolder();
        var (data, idx, _, _) = Setup(tmp);
        var tooLong = new RetroTrainingOptions { ChunkTokens = 200 };
        Assert.Contains("3 chunks of 200 tokens", Assert.Throws<ArgumentException>(() => RetroTrainingData.Build(data, idx, Bytes, tooLong, tmp["x"])).Message);
        Assert.False(Directory.Exists(tmp["x"]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RetroTrainingOptions { ChunkTokens = 8 }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new RetroTrainingOptions { Neighbours = -1 }.Validate());
        var other = data with { VocabSize = 1000 };
        Assert.Contains("1000 token ids", Assert.Throws<ArgumentException>(() => RetroTrainingData.Build(other, idx, Bytes, new RetroTrainingOptions { ChunkTokens = C }, tmp["x"])).Message);
    }
}
