#pragma warning disable SCME0001   // JsonPatch: how the OpenAI client sends an extension field (tessera_think)
using System.ClientModel;
using System.Runtime.CompilerServices;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;
using Tessera.Inference;
using Tessera.Model;
using Tessera.Retrieval.Sparse;
using Tessera.Server;
using Tessera.Text;
using Tessera.Thinking;

namespace Tessera.Retrieval.Tests;

/// <summary>
/// Retrieval search as an in-process tool (issue 16, item 2): the model writes <c>&lt;&lt;search:QUERY=</c>,
/// the decoder searches a real Lucene index and writes the best passage into the context, and the
/// model goes on from there; through <see cref="ToolDecoder"/> and through the server's
/// <c>tessera_think</c> with <c>"search": true</c>.
/// </summary>
public class SearchToolTests
{
    static readonly SourceDocument[] Docs =
    [
        new("airships.txt", "Airships are lighter than air craft once used for travel.\n\nThe zeppelin Hindenburg burned at Lakehurst in 1937."),
        new("comets.txt", "Halley's comet returns every seventy-six years."),
    ];

    const string Passage = "The zeppelin Hindenburg burned at Lakehurst in 1937.";

    /// <summary>
    /// A byte "model" that writes <c>script</c>: each request continues it after the longest part of it
    /// the context already ends with. If the decoder inserts anything but the script's own text, the
    /// context no longer ends with a part of the script and the model starts it over, so the
    /// completion differs from the script.
    /// </summary>
    sealed class ScriptEngine(string script) : IGenerationEngine
    {
        public ModelConfig Config { get; } = new() { VocabSize = 4096, Dim = 8, Layers = 1, Heads = 1, KvHeads = 1, HiddenDim = 8, ContextLength = 1024 };

        public async IAsyncEnumerable<TokenEvent> GenerateAsync(GenerationRequest request, [EnumeratorCancellation] CancellationToken cancel = default)
        {
            string context = new ByteTokenizer().Decode([.. request.Prompt.Where(id => id < 256)]);   // a chat prompt's special ids are not text
            int have = 0;
            for (int k = Math.Min(script.Length, context.Length); k > 0; k--)
                if (context.EndsWith(script[..k], StringComparison.Ordinal)) { have = k; break; }
            for (int i = have, n = 0; i < script.Length && n < request.MaxNewTokens; i++, n++)
            {
                await Task.Yield();
                yield return new TokenEvent(script[i], -0.5f, [], i == script.Length - 1 ? FinishReason.Stop : FinishReason.None);
            }
        }

        public IReadOnlyList<TokenEvent> Score(IReadOnlyList<int> prompt, int topLogprobs) => throw new NotSupportedException();
        public float[] Embed(IReadOnlyList<int> ids) => throw new NotSupportedException();
    }

    /// <summary>What <c>tessera serve --index</c> and <c>think ask --index</c> plug in: the index's passages for a query.</summary>
    sealed class Bm25Retriever(Bm25Index index) : IChatRetriever
    {
        public IReadOnlyList<RetrievedPassage> Retrieve(string query)
            => index.Search(query, 3).Select(h => new RetrievedPassage(h.Passage.DocumentId, h.Passage.Start, h.Passage.Length, h.Passage.Text)).ToList();
    }

    static async Task<Completion> Sample(string script, ISearchTool? search, bool useSearch = true)
    {
        var bytes = new ByteTokenizer();
        var decoder = new ToolDecoder(new ScriptEngine(script), bytes, search: search);
        return await decoder.SampleAsync(bytes.Encode("Q:when did the Hindenburg burn?\nA:"), "", 400, new SamplingOptions { Temperature = 0 }, calculator: true, useSearch: useSearch);
    }

    [Fact]
    public async Task TheBestPassageIsWrittenIntoTheContextMidGeneration()
    {
        using var tmp = new TempFolder();
        Bm25IndexBuilder.Build(tmp["idx"], Docs, new IndexBuildOptions { Shards = 2, PassageWords = 10 });
        using var index = Bm25Index.Open(tmp["idx"]);
        var tool = new RetrieverSearchTool(new Bm25Retriever(index));

        // The script holds the passage BM25 should find; the decoder must write those bytes itself.
        string script = $"<<search:Hindenburg zeppelin burned={Passage}>> so 1937, and <<1937+10=1947>>\n";
        var c = await Sample(script, tool);
        Assert.Equal(script, c.Text);
        Assert.Equal(2, c.Calls);
        Assert.Equal(1, c.SearchCalls);
        Assert.Equal((Passage + ">>").Length + "1947>>".Length, c.Inserted);   // bytes: one token each
        var cited = Assert.Single(c.Passages);
        Assert.Equal("airships.txt", cited.DocumentId);
        Assert.Equal(Passage, Docs[0].Text.Substring(cited.Start, cited.Length));
        Assert.Empty(c.CallErrors);

        // A script expecting another passage than the index's best is not reproduced: the insertion is the index's.
        string wrong = "<<search:Hindenburg zeppelin burned=Halley's comet returns every seventy-six years.>> ok\n";
        Assert.NotEqual(wrong, (await Sample(wrong, tool)).Text);

        // Nothing matches: NONE; an empty query: ERR with the reason kept.
        var none = await Sample("<<search:xylophone quasar=NONE>> no\n", tool);
        Assert.Equal("<<search:xylophone quasar=NONE>> no\n", none.Text);
        Assert.Empty(none.Passages);
        var empty = await Sample("<<search: =ERR>> no\n", tool);
        Assert.Equal("<<search: =ERR>> no\n", empty.Text);
        Assert.Contains("empty", Assert.Single(empty.CallErrors));

        // Search off: the model's own text stands and nothing is looked up.
        var off = await Sample("<<search:Hindenburg=made up>> x\n", tool, useSearch: false);
        Assert.Equal("<<search:Hindenburg=made up>> x\n", off.Text);
        Assert.Equal(0, off.Calls);
        // Asking for search from a decoder without a tool is refused before any decoding.
        await Assert.ThrowsAsync<ArgumentException>(() => Sample("x\n", null));
    }

    [Fact]
    public void PassagesEnterTheContextAsOneBoundedLine()
    {
        Assert.Equal("a b c", SearchInsertion.OneLine("  a\n\n b\t c \n"));
        Assert.Equal("x > > y", SearchInsertion.OneLine("x >> y"));   // a passage cannot close the call early
        string longText = string.Join(' ', Enumerable.Repeat("word", 200));
        string cut = SearchInsertion.OneLine(longText);
        Assert.True(cut.Length <= SearchInsertion.MaxChars, $"{cut.Length}");
        Assert.True(cut.Length > SearchInsertion.MaxChars - 5);
        Assert.EndsWith("word", cut);   // cut at a space, never inside a word
    }

    [Fact]
    public async Task ServerThinkSearchCitesThePassageTheCompletionRead()
    {
        using var tmp = new TempFolder();
        Bm25IndexBuilder.Build(tmp["idx"], Docs, new IndexBuildOptions { Shards = 1, PassageWords = 10 });
        using var index = Bm25Index.Open(tmp["idx"]);
        string script = $"<<search:Hindenburg zeppelin burned={Passage}>> #1937\n";
        var served = new ServedModel("scripted", new ScriptEngine(script), TokenizerFiles.Load("bytes")) { Retriever = new Bm25Retriever(index) };
        await using var server = await TesseraServer.StartAsync(served, new ServerOptions { Port = 0 });
        var client = new ChatClient("scripted", new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(server.Address, "v1") });
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 300 };
        options.Patch.Set("$.tessera_think"u8, BinaryData.FromString("""{"strategy":"greedy","search":true}"""));
        var result = await client.CompleteChatAsync([new UserChatMessage("When did the Hindenburg burn?")], options);
        Assert.Equal(script.TrimEnd('\n'), result.Value.Content[0].Text);
        using var json = JsonDocument.Parse(result.GetRawResponse().Content.ToString());
        var think = json.RootElement.GetProperty("tessera_think");
        Assert.True(think.GetProperty("search").GetBoolean());
        Assert.Equal(1, think.GetProperty("search_calls").GetInt32());
        Assert.Equal(0, think.GetProperty("calculator_calls").GetInt32());
        // serve --index put the question's passages in the prompt (cited first); the search call's passage comes last.
        var citations = json.RootElement.GetProperty("citations").EnumerateArray().ToList();
        var prompted = ChatRetrieval.Augment([new Text.ChatMessage("user", "When did the Hindenburg burn?")], new Bm25Retriever(index)).Passages;
        Assert.Equal(prompted.Count + 1, citations.Count);
        for (int k = 0; k < prompted.Count; k++) Assert.Equal(prompted[k].Start, citations[k].GetProperty("start").GetInt32());
        var citation = citations[^1];
        Assert.Equal(prompted.Count + 1, citation.GetProperty("index").GetInt32());
        Assert.Equal("airships.txt", citation.GetProperty("document_id").GetString());
        Assert.Equal(Passage, Docs[0].Text.Substring(citation.GetProperty("start").GetInt32(), citation.GetProperty("length").GetInt32()));

        // search must be a boolean: a 400 naming the field, and the server keeps serving.
        var bad = new ChatCompletionOptions { MaxOutputTokenCount = 8 };
        bad.Patch.Set("$.tessera_think"u8, BinaryData.FromString("""{"search":"yes"}"""));
        var e = await Assert.ThrowsAsync<ClientResultException>(() => client.CompleteChatAsync([new UserChatMessage("hi")], bad));
        Assert.Equal(400, e.Status);
        Assert.Contains("tessera_think.search", e.Message);
        Assert.Equal(script.TrimEnd('\n'), (await client.CompleteChatAsync([new UserChatMessage("When did the Hindenburg burn?")], options)).Value.Content[0].Text);
    }

    [Fact]
    public async Task ServerThinkSearchWithoutAnIndexIsA400()
    {
        var served = new ServedModel("scripted", new ScriptEngine("x\n"), TokenizerFiles.Load("bytes"));
        await using var server = await TesseraServer.StartAsync(served, new ServerOptions { Port = 0 });
        var client = new ChatClient("scripted", new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(server.Address, "v1") });
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 8 };
        options.Patch.Set("$.tessera_think"u8, BinaryData.FromString("""{"strategy":"greedy","search":true}"""));
        var e = await Assert.ThrowsAsync<ClientResultException>(() => client.CompleteChatAsync([new UserChatMessage("hi")], options));
        Assert.Equal(400, e.Status);
        Assert.Contains("--index", e.Message);
    }
}
