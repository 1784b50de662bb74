using Tessera.Retrieval.Sparse;
using Tessera.Server;

namespace Tessera.Cli.Commands;

/// <summary>The BM25 index as the chat server's retriever (<c>tessera serve --index</c>).</summary>
public sealed class IndexChatRetriever(Bm25Index index, int passages) : IChatRetriever
{
    /// <inheritdoc/>
    public IReadOnlyList<RetrievedPassage> Retrieve(string query)
        => index.Search(query, Math.Max(1, passages)).Select(h => new RetrievedPassage(h.Passage.DocumentId, h.Passage.Start, h.Passage.Length, h.Passage.Text)).ToList();
}
