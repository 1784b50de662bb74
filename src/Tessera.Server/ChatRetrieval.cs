using System.Text;
using System.Text.Json;
using Tessera.Text;
using Tessera.Thinking;

namespace Tessera.Server;

/// <summary>A passage retrieved for a chat turn, cited in the response by document id and character offsets.</summary>
/// <param name="DocumentId">The document's id in the index.</param>
/// <param name="Start">Character offset of the passage in the document.</param>
/// <param name="Length">Passage length in characters.</param>
/// <param name="Text">The passage text (placed in the prompt).</param>
public sealed record RetrievedPassage(string DocumentId, int Start, int Length, string Text);

/// <summary>Looks up passages for a chat question (<c>tessera serve --index</c> plugs the BM25 index in here).</summary>
public interface IChatRetriever
{
    /// <summary>Passages relevant to <paramref name="query"/>, best first (empty when nothing matches).</summary>
    IReadOnlyList<RetrievedPassage> Retrieve(string query);
}

/// <summary>
/// Retrieval for chat: the last user message is the query; the passages found go into a system
/// message ahead of the conversation, numbered, and the response carries them as
/// <c>citations</c> (document id, start, length), an extra top-level field OpenAI clients ignore.
/// </summary>
public static class ChatRetrieval
{
    /// <summary>The conversation with retrieved passages prepended, and the passages (none without a retriever).</summary>
    public static (List<ChatMessage> Messages, IReadOnlyList<RetrievedPassage> Passages) Augment(List<ChatMessage> messages, IChatRetriever? retriever)
    {
        if (retriever is null) return (messages, []);
        var question = messages.LastOrDefault(m => m.Role == "user")?.Content;
        if (string.IsNullOrWhiteSpace(question)) return (messages, []);
        IReadOnlyList<RetrievedPassage> passages;
        try { passages = retriever.Retrieve(question); }
        catch (ArgumentException) { return (messages, []); }   // nothing searchable in the question: answer without passages
        if (passages.Count == 0) return (messages, []);
        var sb = new StringBuilder("Answer from these passages and cite them by number.\n");
        for (int i = 0; i < passages.Count; i++) sb.Append('[').Append(i + 1).Append("] ").Append(passages[i].Text).Append('\n');
        var result = new List<ChatMessage>(messages.Count + 1) { new("system", sb.ToString().TrimEnd()) };
        result.AddRange(messages);
        return (result, passages);
    }

    /// <summary>Writes <c>"citations": [{"index", "document_id", "start", "length"}]</c> when there are passages.</summary>
    public static void Write(Utf8JsonWriter w, IReadOnlyList<RetrievedPassage> passages)
    {
        if (passages.Count == 0) return;
        w.WriteStartArray("citations");
        for (int i = 0; i < passages.Count; i++)
        {
            w.WriteStartObject();
            w.WriteNumber("index", i + 1);
            w.WriteString("document_id", passages[i].DocumentId);
            w.WriteNumber("start", passages[i].Start);
            w.WriteNumber("length", passages[i].Length);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }
}

/// <summary>A chat retriever as the in-process search tool of <c>tessera_think</c> (<c>"search": true</c>): the best passage of each query.</summary>
public sealed class RetrieverSearchTool(IChatRetriever retriever) : ISearchTool
{
    /// <inheritdoc/>
    public ToolPassage? Search(string query)
        => retriever.Retrieve(query) is { Count: > 0 } hits ? new ToolPassage(hits[0].DocumentId, hits[0].Start, hits[0].Length, hits[0].Text) : null;
}
