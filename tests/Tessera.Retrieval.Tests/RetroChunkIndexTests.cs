using Tessera.Retrieval.Retro;
using Tessera.Text;

namespace Tessera.Retrieval.Tests;

/// <summary>RETRO's retrieval database: chunking, neighbours from other documents only, and the 13-gram leakage measure.</summary>
public class RetroChunkIndexTests
{
    static readonly ITokenizer Bytes = TokenizerFiles.Load("bytes");

    static int[] Tok(string s) => [.. Bytes.Encode(s)];

    [Fact]
    public void Neighbours_are_chunk_plus_continuation_from_other_documents_only()
    {
        const int C = 16;
        // Documents "a" and "b" share a chunk of text word for word; "c" is unrelated.
        string shared = "zeppelin harbour".PadRight(C);
        string a = "aaaa bbbb cccc d" + shared + "after the ship e" + "filler text goes";
        string b = "qqqq rrrr ssss t" + shared + "continues in b!!" + "more b words her";
        string c = "comets and orbit" + "planets, moons. " + "dust and gas too" + "stars shine on. ";
        var docs = new[] { new RetroDocument("a", Tok(a)), new RetroDocument("b", Tok(b)), new RetroDocument("c", Tok(c)) };
        Assert.All(docs, d => Assert.Equal(64, d.Tokens.Length));
        using var tmp = new TempFolder();
        using var index = RetroChunkIndex.Build(tmp["idx"], docs, Bytes, C, shards: 2);
        Assert.Equal(3 * 3, index.Chunks);   // 4 chunks per document, the last has no continuation

        var query = docs[0].Tokens.AsSpan(C, C);   // a's shared chunk
        var own = index.Neighbours(query, "a", 1, filler: -1);
        Assert.Equal(2 * C, own[0].Length);
        Assert.Equal(shared + "continues in b!!", Bytes.Decode(own[0]));   // b's chunk and what follows it there

        // Excluding b as well (query as if from b): the best hit is a's copy, then never b's.
        var fromB = index.Neighbours(query, "b", 1, filler: -1);
        Assert.Equal(shared + "after the ship e", Bytes.Decode(fromB[0]));

        // No searchable term: the slot is the filler and the miss is counted.
        long before = index.EmptySearches;
        var none = index.Neighbours(Tok("!!!! ???? .... ,"), null, 2, filler: 7);
        Assert.All(none, n => Assert.All(n, id => Assert.Equal(7, id)));
        Assert.Equal(before + 1, index.EmptySearches);
    }

    [Fact]
    public void Own_past_neighbours_end_before_the_context_and_training_queries_never_see_held_out_text()
    {
        const int C = 16;
        var rng = new Random(11);
        // Words from a small vocabulary, so chunks of every document resemble each other and each
        // document's own chunks (filtered or kept) crowd the top of every hit list; "h1" and "h2" repeat
        // one passage (their own past holds the text their later chunks search for).
        string[] words = ["whale", "ship", "union", "state", "sea", "law", "oil", "war", "peace", "trade", "harbour", "crew"];
        string Words(int n) => string.Join(' ', Enumerable.Range(0, n).Select(_ => words[rng.Next(words.Length)]));
        string Repeating(int n) { string w = Words(20); return string.Concat(Enumerable.Repeat(w + " ", n)); }
        var docs = new List<RetroDocument>();
        for (int i = 0; i < 4; i++) docs.Add(new RetroDocument($"t{i}", Tok(i == 0 ? Repeating(6) : Words(120))));
        docs.Add(new RetroDocument("h1", Tok(Repeating(6))) { HeldOut = true });
        docs.Add(new RetroDocument("h2", Tok(Repeating(6))) { HeldOut = true });
        var heldOut = docs.Where(d => d.HeldOut).Select(d => d.Id).ToHashSet();
        using var tmp = new TempFolder();
        using var index = RetroChunkIndex.Build(tmp["idx"], docs, Bytes, C, shards: 2);
        int own = 0, ownHeldOut = 0, queries = 0;
        foreach (var d in docs)
            for (int u = 1; (u + 2) * C <= d.Tokens.Length; u++)
                foreach (bool ownPast in new[] { false, true })
                {
                    var found = index.Search(d.Tokens.AsSpan(u * C, C), d.Id, u, 2, filler: -1, ownPast);
                    queries++;
                    Assert.Equal(2, found.Length);
                    foreach (var n in found)
                    {
                        if (n.DocumentId is null) { Assert.All(n.Tokens, t => Assert.Equal(-1, t)); continue; }
                        var source = docs.Single(x => x.Id == n.DocumentId);
                        Assert.Equal(source.Tokens.AsSpan(n.Chunk * C, 2 * C).ToArray(), n.Tokens);
                        if (n.DocumentId == d.Id)
                        {
                            // Own document: only with own-past, and the neighbour (chunk + continuation)
                            // ends at or before position (u − 1)·C, where the example's context starts.
                            Assert.True(ownPast);
                            Assert.True((n.Chunk + 2) * C <= (u - 1) * C, $"{d.Id} chunk {u}: own chunk {n.Chunk} reaches into the context");
                            own++;
                            if (d.HeldOut) ownHeldOut++;
                        }
                        else Assert.DoesNotContain(n.DocumentId, heldOut);   // another document's query never sees held-out text
                    }
                }
        // The rule is exercised, not vacuous: own-past hits occur, for held-out documents too.
        Assert.True(own > 10 && ownHeldOut > 0, $"own-past neighbours were returned {own} times ({ownHeldOut} to held-out queries) in {queries} queries");

        // The plain query (own-past off) of a training document equals the old Neighbours call.
        var t1 = docs[1].Tokens.AsSpan(3 * C, C);
        Assert.Equal(index.Neighbours(t1, "t1", 1, -1)[0], index.Search(t1, "t1", 3, 1, -1, ownPast: false)[0].Tokens);
    }

    [Fact]
    public void Ngram_overlap_matches_a_brute_force_count()
    {
        var rng = new Random(5);
        for (int trial = 0; trial < 50; trial++)
        {
            int n = 1 + rng.Next(13);
            var chunk = Enumerable.Range(0, 8 + rng.Next(40)).Select(_ => rng.Next(4)).ToArray();   // a 4-letter alphabet, so some n-grams repeat
            var neighbours = Enumerable.Range(0, 1 + rng.Next(3)).Select(_ => Enumerable.Range(0, rng.Next(60)).Select(_ => rng.Next(4)).ToArray()).ToList();
            if (trial % 3 == 0) neighbours[0] = [.. neighbours[0], .. chunk.AsSpan(rng.Next(chunk.Length / 2))];   // plant a copy
            int total = chunk.Length - n + 1, hit = 0;
            for (int i = 0; i < total; i++)
            {
                bool found = false;
                foreach (var nb in neighbours)
                    for (int j = 0; j + n <= nb.Length && !found; j++)
                        found = chunk.AsSpan(i, n).SequenceEqual(nb.AsSpan(j, n));
                if (found) hit++;
            }
            Assert.Equal(total < 1 ? 0 : hit / (double)total, RetroChunkIndex.NGramOverlap(chunk, neighbours, n));
        }
        Assert.Equal(0, RetroChunkIndex.NGramOverlap(new int[12], [new int[40]]));   // shorter than 13 tokens
        Assert.Equal(1, RetroChunkIndex.NGramOverlap(new int[13], [new int[40]]));
    }

    [MailCorpusFact]
    public void On_the_mail_corpus_held_out_messages_are_never_the_neighbours_of_another_document()
    {
        // The lab's documents and split (RetroCorpus), on the first 160 messages of easy-ham-1 (threads of
        // mailing-list mail, where replies quote each other), byte tokens so no tokenizer is fitted here.
        const int C = 64;
        var docs = RetroCorpus.ReadMail(null, ["easy-ham-1"], out var counts).Take(160).ToList();
        Assert.True(counts.Kept >= 160, $"{counts.Kept} messages with a text body in easy-ham-1");
        var (train, heldOut) = RetroCorpus.Split(docs, seed: 1);
        Assert.True(heldOut.Count >= 5 && train.Count >= 100, $"split: {train.Count} train, {heldOut.Count} held out");
        var trainDocs = train.Select(d => new RetroDocument(d.Key, Tok(d.Text))).ToList();
        var heldDocs = heldOut.Select(d => new RetroDocument(d.Key, Tok(d.Text)) { HeldOut = true }).ToList();
        var heldIds = heldDocs.Select(d => d.Id).ToHashSet();
        // Queries: every chunk of every held-out message, and every chunk of every fourth training message.
        var queries = new List<(RetroDocument Doc, int U)>();
        foreach (var d in heldDocs.Concat(trainDocs.Where((_, i) => i % 4 == 0)))
            for (int u = 1; (u + 2) * C <= d.Tokens.Length; u++) queries.Add((d, u));
        Assert.True(queries.Count > 200, $"{queries.Count} queries");

        using var tmp = new TempFolder();
        // The lab's database: training messages only (held-out ones are not indexed at all).
        using (var plain = RetroChunkIndex.Build(tmp["plain"], trainDocs, Bytes, C, shards: 2))
            foreach (var (d, u) in queries)
                foreach (var n in plain.Search(d.Tokens.AsSpan(u * C, C), d.Id, u, 2, filler: -1, ownPast: false))
                {
                    Assert.False(n.DocumentId is { } id && heldIds.Contains(id), $"{d.Id} chunk {u}: neighbour from held-out {n.DocumentId}");
                    Assert.NotEqual(d.Id, n.DocumentId);
                }
        // --own-past: held-out messages are indexed for their own queries only.
        using (var own = RetroChunkIndex.Build(tmp["own"], [.. trainDocs, .. heldDocs], Bytes, C, shards: 2))
            foreach (var (d, u) in queries)
                foreach (var n in own.Search(d.Tokens.AsSpan(u * C, C), d.Id, u, 2, filler: -1, ownPast: true))
                {
                    if (n.DocumentId == d.Id) Assert.True((n.Chunk + 2) * C <= (u - 1) * C, $"{d.Id} chunk {u}: own chunk {n.Chunk} reaches into the context");
                    else Assert.False(n.DocumentId is { } id && heldIds.Contains(id), $"{d.Id} chunk {u}: neighbour from another held-out message {n.DocumentId}");
                }
        // Control: the same messages indexed without the held-out mark. Held-out text is then retrieved by
        // other documents' queries, so the assertions above would fail if the rule or the split let it through.
        int leaked = 0;
        using (var open = RetroChunkIndex.Build(tmp["open"], [.. trainDocs, .. heldDocs.Select(d => d with { HeldOut = false })], Bytes, C, shards: 2))
            foreach (var (d, u) in queries)
                leaked += open.Search(d.Tokens.AsSpan(u * C, C), d.Id, u, 2, filler: -1, ownPast: false).Count(n => n.DocumentId is { } id && id != d.Id && heldIds.Contains(id));
        Assert.True(leaked > 0, "without the mark no held-out message was ever a neighbour: the test would not catch a leak");
    }

    [Fact]
    public void Mail_documents_are_subject_and_body_and_the_split_is_fixed_by_seed()
    {
        // The split is a function of key and seed only: the same keys land on the same side in any order.
        var docs = Enumerable.Range(0, 400).Select(i => new Tessera.Data.CorpusDocument($"easy-ham-1/{i:D5}.x", "t")).ToList();
        var (train, heldOut) = RetroCorpus.Split(docs, seed: 1);
        var (train2, heldOut2) = RetroCorpus.Split(Enumerable.Reverse(docs), seed: 1);
        Assert.Equal(heldOut.Select(d => d.Key).Order(), heldOut2.Select(d => d.Key).Order());
        Assert.InRange(heldOut.Count, 20, 60);   // 10% of 400, binomial spread
        Assert.Equal(400, train.Count + heldOut.Count);
        var (_, heldOut3) = RetroCorpus.Split(docs, seed: 2);
        Assert.NotEqual(heldOut.Select(d => d.Key).Order(), heldOut3.Select(d => d.Key).Order());
    }

    [Fact]
    public void Mail_documents_keep_subject_and_body_and_drop_duplicates_and_empty_bodies()
    {
        using var tmp = new TempFolder();
        string root = tmp["mail"];
        Directory.CreateDirectory(Path.Combine(root, "g"));
        File.WriteAllText(Path.Combine(root, ".complete"), "");
        const string head = "From: a@b.c\nReceived: from relay.example (10.0.0.1)\nMessage-ID: <1@b.c>\n";
        File.WriteAllText(Path.Combine(root, "g", "1.txt"), head + "Subject: Re: lunch\n\nAnna wrote:\n> noon?\nYes, noon.\n");
        File.WriteAllText(Path.Combine(root, "g", "2.txt"), head + "Subject: Re:  lunch\n\nAnna   wrote:\n> noon?\n\nYes, noon.\n");   // same text, other spacing
        File.WriteAllText(Path.Combine(root, "g", "3.txt"), head + "Subject: empty\n\n \n");
        File.WriteAllText(Path.Combine(root, "g", "4.txt"), head + "Subject: Re: lunch\n\nNo, one.\n");
        var docs = RetroCorpus.ReadMail(root, ["g"], out var counts);
        Assert.Equal(new MailCorpusCounts(4, 2, 1, 1), counts);
        Assert.Equal(["g/1.txt", "g/4.txt"], docs.Select(d => d.Key));
        Assert.StartsWith("Subject: Re: lunch\n\nAnna wrote:", docs[0].Text);
        Assert.Contains("Yes, noon.", docs[0].Text);
        Assert.DoesNotContain("Received", docs[0].Text);   // transport headers are dropped
        Assert.DoesNotContain("Message-ID", docs[0].Text);
        Assert.Throws<DirectoryNotFoundException>(() => RetroCorpus.ReadMail(Path.Combine(root, "absent"), ["g"], out _));
    }
}
