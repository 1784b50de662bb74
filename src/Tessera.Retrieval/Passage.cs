namespace Tessera.Retrieval;

/// <summary>
/// A document to index: a caller-chosen id (a file's relative path, a JSONL record's id), its
/// text, and an optional date for the recency prior.
/// </summary>
/// <param name="Id">Unique document id; indexing a document again under the same id replaces it.</param>
/// <param name="Text">The whole text.</param>
/// <param name="Date">When the document was written (null: undated).</param>
public sealed record SourceDocument(string Id, string Text, DateTimeOffset? Date = null);

/// <summary>
/// One retrievable unit: a span of a document's text. <see cref="Start"/> and <see cref="Length"/>
/// are character offsets into the document, so a citation can point back at the exact passage.
/// </summary>
/// <param name="Key">Index-wide key (also the vector key in the dense index).</param>
/// <param name="DocumentId">The owning document's id.</param>
/// <param name="Start">Character offset of the passage in the document.</param>
/// <param name="Length">Length of the passage in characters.</param>
/// <param name="Text">The passage text.</param>
/// <param name="Date">The document's date, if any.</param>
public sealed record Passage(long Key, string DocumentId, int Start, int Length, string Text, DateTimeOffset? Date);

/// <summary>A scored passage returned by a retriever (higher score is better).</summary>
/// <param name="Passage">The passage.</param>
/// <param name="Score">The retriever's score (BM25, cosine similarity or log-likelihood, by stage).</param>
public sealed record SearchHit(Passage Passage, double Score);
