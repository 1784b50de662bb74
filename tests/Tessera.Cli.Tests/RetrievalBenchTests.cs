using System.Text.Json;

namespace Tessera.Cli.Tests;

/// <summary><c>tessera bench retrieval --task sotu --quick</c>: the SOTU cloze-passage task end to end with MiniLM as the funnel's dense stage (the pipeline, not the figures).</summary>
public class RetrievalBenchTests
{
    /// <summary>The bench's query expansion reads WordNet (Debian wordnet-base): skipped with the install command where it is absent.</summary>
    public sealed class NeedsWordNetAttribute : FactAttribute
    {
        /// <summary>Sets the skip reason when WordNet is not installed.</summary>
        public NeedsWordNetAttribute()
        {
            if (!Tessera.Retrieval.Expansion.WordNet.IsInstalled()) Skip = $"WordNet is not installed in {Tessera.Retrieval.Expansion.WordNet.DefaultFolder}: skipped (apt-get install wordnet-base; .ci/run installs it).";
        }
    }

    [NeedsWordNet]
    public void Quick_sotu_cloze_retrieval_reports_every_row_and_tuned_weights()
    {
        string dir = CliProcess.TempDir();
        try
        {
            var r = CliProcess.Run(dir, "bench", "retrieval", "--task", "sotu", "--quick", "--tune", "--likelihood-weight", "0", "--out", Path.Combine(dir, "bench"), "--json");
            Assert.True(r.ExitCode == 0, r.Stderr);
            using var doc = JsonDocument.Parse(r.Stdout);
            var root = doc.RootElement;
            Assert.Equal("sotu", root.GetProperty("task").GetString());
            Assert.Equal(20, root.GetProperty("queries").GetInt32());
            var rows = root.GetProperty("rows").EnumerateArray().ToDictionary(x => x.GetProperty("name").GetString()!);
            var tuned = root.GetProperty("tuned").GetProperty("funnel+minilm");
            string first = tuned.GetProperty("expand").GetBoolean() ? "bm25+expansion" : "bm25";   // chosen on validation
            foreach (var name in new[] { "bm25", "bm25+expansion", "funnel+minilm:" + first, "funnel+minilm:dense", "funnel+minilm:final(dense)", "minilm-alone" })
                Assert.True(rows.ContainsKey(name), $"row {name} missing: {string.Join(", ", rows.Keys)}");
            // The funnel's first stage is the chosen BM25 retriever: the same candidates as its own row.
            Assert.Equal(rows[first].GetProperty("recall").GetDouble(), rows["funnel+minilm:" + first].GetProperty("recall").GetDouble(), 12);
            Assert.Equal(rows[first].GetProperty("mrr").GetDouble(), rows["funnel+minilm:" + first].GetProperty("mrr").GetDouble(), 12);
            // The query is its passage's sentence less one word: BM25 must find most passages (a wrong label would not).
            Assert.True(rows["bm25"].GetProperty("hit_at5").GetDouble() >= 0.7, rows["bm25"].ToString());
            foreach (var x in rows.Values)
            {
                Assert.InRange(x.GetProperty("precision_at5").GetDouble(), 0, 0.2 + 1e-12);   // one relevant passage per query
                Assert.InRange(x.GetProperty("recall").GetDouble(), 0, 1);
            }
            Assert.Equal(100, rows["funnel+minilm:dense"].GetProperty("depth").GetInt32());
            Assert.Equal(rows["bm25+expansion"].GetProperty("recall").GetDouble() - rows["bm25"].GetProperty("recall").GetDouble(),
                root.GetProperty("expansion_lift_points").GetDouble() / 100, 9);
            var w = tuned.GetProperty("weights").EnumerateArray().Select(e => e.GetDouble()).ToList();
            Assert.Single(w);   // no model: MiniLM is the only dense signal
            Assert.InRange(w[0], 0, 1);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
