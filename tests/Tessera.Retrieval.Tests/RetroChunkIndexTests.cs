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
}
