#pragma warning disable SCME0001   // JsonPatch: how the OpenAI client sends n
using System.ClientModel;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;
using System.IO.Compression;
using Tessera.Data;
using Tessera.Inference;
using Tessera.Retrieval.Evaluation;
using Tessera.Retrieval.Mail;
using Tessera.Model;
using Tessera.Retrieval.Sparse;
using Tessera.Server;
using Tessera.Text;

namespace Tessera.Retrieval.Tests;

public class ServeWithIndexTests(Xunit.Abstractions.ITestOutputHelper output)
{
    // What `tessera serve --index` plugs in (Cli's IndexChatRetriever does the same over the same index API).
    sealed class Bm25Retriever(Bm25Index index, int k = 2) : IChatRetriever
    {
        public IReadOnlyList<RetrievedPassage> Retrieve(string query)
            => index.Search(query, k).Select(h => new RetrievedPassage(h.Passage.DocumentId, h.Passage.Start, h.Passage.Length, h.Passage.Text)).ToList();
    }

    [Fact]
    public async Task Chat_through_the_OpenAI_client_prepends_passages_and_cites_them()
    {
        using var tmp = new TempFolder();
        var docs = new[]
        {
            new SourceDocument("airships.txt", "Airships are lighter than air craft once used for travel.\n\nThe zeppelin Hindenburg burned at Lakehurst in 1937."),
            new SourceDocument("comets.txt", "Halley's comet returns every seventy-six years."),
        };
        Bm25IndexBuilder.Build(tmp["idx"], docs, new IndexBuildOptions { Shards = 2, PassageWords = 10 });
        using var index = Bm25Index.Open(tmp["idx"]);
        var tok = TokenizerFiles.Load("bytes");
        using var model = new Transformer(DenseTests.TinyConfig() with { ContextLength = 1024 }, seed: 19);
        var engine = new ReferenceEngine(model);
        var served = new ServedModel("tiny", engine, tok) { Retriever = new Bm25Retriever(index) };
        await using var server = await TesseraServer.StartAsync(served, new ServerOptions { Port = 0 });
        var client = new ChatClient("tiny", new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(server.Address, "v1") });
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 4 };

        var result = await client.CompleteChatAsync([new UserChatMessage("When did the Hindenburg zeppelin burn?")], options);
        using var json = JsonDocument.Parse(result.GetRawResponse().Content.ToString());
        var citations = json.RootElement.GetProperty("citations").EnumerateArray().ToList();
        var first = citations[0];
        Assert.Equal("airships.txt", first.GetProperty("document_id").GetString());
        int start = first.GetProperty("start").GetInt32(), length = first.GetProperty("length").GetInt32();
        Assert.True(start > 0);
        Assert.Equal("The zeppelin Hindenburg burned at Lakehurst in 1937.", docs[0].Text.Substring(start, length));   // the offsets point at the passage holding the answer
        // The prompt the model saw is the conversation with the passages in a system message first.
        var expected = ChatRetrieval.Augment([new Text.ChatMessage("user", "When did the Hindenburg zeppelin burn?")], new Bm25Retriever(index));
        Assert.Equal(ChatTemplate.Encode(tok, expected.Messages, addGenerationPrompt: true).Count, result.Value.Usage.InputTokenCount);
        Assert.Equal(citations.Count, expected.Passages.Count);

        // The tool-call path and the n > 1 path cite the same passages.
        var toolOptions = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 64, ToolChoice = ChatToolChoice.CreateRequiredChoice() };
        toolOptions.Tools.Add(ChatTool.CreateFunctionTool("lookup", "Looks a year up.", BinaryData.FromString("""{"type":"object","properties":{"q":{"type":"string","maxLength":4}},"required":["q"]}""")));
        var called = await client.CompleteChatAsync([new UserChatMessage("When did the Hindenburg zeppelin burn?")], toolOptions);
        Assert.Equal(ChatFinishReason.ToolCalls, called.Value.FinishReason);
        using (var toolJson = JsonDocument.Parse(called.GetRawResponse().Content.ToString()))
            Assert.Equal(citations.Select(c => c.GetRawText()), toolJson.RootElement.GetProperty("citations").EnumerateArray().Select(c => c.GetRawText()));
        var twoOptions = new ChatCompletionOptions { Temperature = 1, MaxOutputTokenCount = 4 };
        twoOptions.Patch.Set("$.n"u8, 2);
        var two = await client.CompleteChatAsync([new UserChatMessage("When did the Hindenburg zeppelin burn?")], twoOptions);
        using (var twoJson = JsonDocument.Parse(two.GetRawResponse().Content.ToString()))
        {
            Assert.Equal(2, twoJson.RootElement.GetProperty("choices").GetArrayLength());
            Assert.Equal(citations.Select(c => c.GetRawText()), twoJson.RootElement.GetProperty("citations").EnumerateArray().Select(c => c.GetRawText()));
        }

        // A question with nothing searchable is answered without passages or citations.
        var plain = await client.CompleteChatAsync([new UserChatMessage("☃ ☃")], options);
        using var plainJson = JsonDocument.Parse(plain.GetRawResponse().Content.ToString());
        Assert.False(plainJson.RootElement.TryGetProperty("citations", out _));
    }

    /// <summary>
    /// Issue 12's citation check on real text: cloze questions about the post-1950 State of the Union
    /// addresses asked through the OpenAI client of a server with an index of those addresses (built as
    /// `eval swap` builds it, three passages cited as `serve --index` does by default). The cited
    /// passages must contain the completed sentence for at least 80% of the questions, and the first
    /// citation must be the passage `eval swap` reads for the same question, so that command's
    /// "holds the answer, when right" figure is what a served reply cites.
    /// </summary>
    [Fact]
    public async Task Served_citations_point_at_the_passage_holding_the_answer()
    {
        using var tmp = new TempFolder();
        string file = Path.Combine(EmbeddedCorpus.Materialize(tmp["corpus"]), "sotu.txt.gz");
        string text;
        using (var gz = new GZipStream(File.OpenRead(file), CompressionMode.Decompress))
        using (var reader = new StreamReader(gz)) text = reader.ReadToEnd();
        var later = CorpusSwapTask.ParseSotu(text).Where(s => s.Year > 1950).ToList();
        Bm25IndexBuilder.Build(tmp["idx"], CorpusSwapTask.Documents(later), new IndexBuildOptions { Shards = 4, PassageWords = 100 });
        using var index = Bm25Index.Open(tmp["idx"]);
        var byId = later.ToDictionary(s => s.Id);
        var tok = TokenizerFiles.Load("bytes");
        using var model = new Transformer(DenseTests.TinyConfig() with { ContextLength = 4096 }, seed: 3);
        var served = new ServedModel("tiny", new ReferenceEngine(model), tok) { Retriever = new Bm25Retriever(index, 3) };
        await using var server = await TesseraServer.StartAsync(served, new ServerOptions { Port = 0 });
        var client = new ChatClient("tiny", new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(server.Address, "v1") });
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 1 };
        var questions = CorpusSwapTask.Questions(later, 30, seed: 1);
        int holds = 0;
        foreach (var q in questions)
        {
            string query = q.Sentence.Replace(ClozeQuestion.Blank, " ", StringComparison.Ordinal);   // the query `eval swap` searches with
            var reply = await client.CompleteChatAsync([new UserChatMessage(query)], options);
            using var json = JsonDocument.Parse(reply.GetRawResponse().Content.ToString());
            var cited = json.RootElement.GetProperty("citations").EnumerateArray()
                .Select(c => (Doc: c.GetProperty("document_id").GetString()!, Start: c.GetProperty("start").GetInt32(), Length: c.GetProperty("length").GetInt32())).ToList();
            var top = index.Search(query, 1)[0].Passage;
            Assert.Equal((top.DocumentId, top.Start, top.Length), cited[0]);
            if (cited.Any(c => byId[c.Doc].Text.Substring(c.Start, c.Length).Contains(q.Filled(q.Answer), StringComparison.Ordinal))) holds++;
        }
        double rate = holds / (double)questions.Count;
        output.WriteLine($"cited passages hold the completed sentence for {holds} of {questions.Count} questions ({rate:P1})");
        Assert.True(rate >= 0.8, $"the cited passages hold the completed sentence for {rate:P0} of {questions.Count} questions; expected at least 80%");
    }

    /// <summary>
    /// Issue 12's personal-data case through the OpenAI client: a folder of real SpamAssassin messages
    /// (60 single-message files and an mbox of eight more) indexed as `index build --input` reads it,
    /// then the mail task's cloze questions asked as chat messages. Every citation must name a
    /// message of the folder (path, or path#n inside the mbox) with offsets whose text in that
    /// message's document is the passage placed in the prompt; the first must be the top search hit;
    /// and for at least 80% of the questions a cited passage must come from the answer's message and
    /// hold the completed sentence. Skipped when the corpus is absent (data/fetch_mail.sh).
    /// </summary>
    [MailCorpusFact]
    public async Task Served_citations_name_the_mail_message_and_offsets_holding_the_answer()
    {
        using var tmp = new TempFolder();
        string mail = tmp["mail"];
        var files = MailCorpus.Files(groups: ["easy-ham-1"]).ToList();
        foreach (var (id, path) in files.Take(60))
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(mail, id))!);
            File.Copy(path, Path.Combine(mail, id));
        }
        var boxed = files.Skip(60).Select(f => MailCorpus.ReadText(f.Path)).Where(t => t.StartsWith("From ", StringComparison.Ordinal)).Take(8).ToList();
        File.WriteAllText(Path.Combine(mail, "archive.mbox"), string.Concat(boxed.Select(t => t.TrimEnd('\n') + "\n\n")), new System.Text.UTF8Encoding(false));
        var docs = DocumentSource.Read(mail).ToList();
        Assert.Equal(68, docs.Count);
        Assert.Equal(Enumerable.Range(1, 8).Select(n => $"archive.mbox#{n}"), docs.Where(d => d.Id.StartsWith("archive.mbox", StringComparison.Ordinal)).Select(d => d.Id));
        var byId = docs.ToDictionary(d => d.Id);
        Bm25IndexBuilder.Build(tmp["idx"], docs, new IndexBuildOptions { Shards = 2 });
        using var index = Bm25Index.Open(tmp["idx"]);
        var questions = MailTask.Questions(docs, id => id.StartsWith("archive.mbox", StringComparison.Ordinal), 3, seed: 1)
            .Concat(MailTask.Questions(docs, id => !id.StartsWith("archive.mbox", StringComparison.Ordinal), 12, seed: 1)).ToList();
        Assert.True(questions.Count >= 10, $"only {questions.Count} questions from 68 messages");
        Assert.Contains(questions, q => q.Speech.StartsWith("archive.mbox#", StringComparison.Ordinal));

        var tok = TokenizerFiles.Load("bytes");
        using var model = new Transformer(DenseTests.TinyConfig() with { ContextLength = 4096 }, seed: 5);
        var retriever = new Bm25Retriever(index, 3);   // serve --index's default --index-passages
        var served = new ServedModel("tiny", new ReferenceEngine(model), tok) { Retriever = retriever };
        await using var server = await TesseraServer.StartAsync(served, new ServerOptions { Port = 0 });
        var client = new ChatClient("tiny", new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(server.Address, "v1") });
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 1 };
        int holds = 0;
        foreach (var q in questions)
        {
            string query = q.Sentence.Replace(ClozeQuestion.Blank, " ", StringComparison.Ordinal);
            var reply = await client.CompleteChatAsync([new UserChatMessage(query)], options);
            using var json = JsonDocument.Parse(reply.GetRawResponse().Content.ToString());
            var cited = json.RootElement.GetProperty("citations").EnumerateArray()
                .Select(c => (Doc: c.GetProperty("document_id").GetString()!, Start: c.GetProperty("start").GetInt32(), Length: c.GetProperty("length").GetInt32())).ToList();
            var prompt = ChatRetrieval.Augment([new Text.ChatMessage("user", query)], retriever).Passages;   // what the server put before the question
            Assert.Equal(prompt.Count, cited.Count);
            var top = index.Search(query, 1)[0].Passage;
            Assert.Equal((top.DocumentId, top.Start, top.Length), cited[0]);
            for (int i = 0; i < cited.Count; i++)
            {
                Assert.True(byId.ContainsKey(cited[i].Doc), $"citation {cited[i].Doc} names no message of the folder");
                Assert.Equal((prompt[i].DocumentId, prompt[i].Start, prompt[i].Length), cited[i]);
                Assert.Equal(prompt[i].Text, byId[cited[i].Doc].Text.Substring(cited[i].Start, cited[i].Length));   // the offsets hold the cited text
            }
            if (cited.Any(c => c.Doc == q.Speech && MailTask.Holds(byId[c.Doc].Text.Substring(c.Start, c.Length), q))) holds++;
        }
        double rate = holds / (double)questions.Count;
        output.WriteLine($"a cited passage of the answer's message holds the completed sentence for {holds} of {questions.Count} questions ({rate:P1})");
        Assert.True(rate >= 0.8, $"the citations hold the answer for {rate:P0} of {questions.Count} questions; expected at least 80%");
    }
}
