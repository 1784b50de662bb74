using Tessera.Inference;
using Tessera.Text;

namespace Tessera.Server;

/// <summary>
/// What the server serves: an engine (token ids only), the tokenizer that turns text into its ids
/// and back, and the id clients name it by. The special ids the API needs are looked up once here.
/// </summary>
public sealed class ServedModel
{
    /// <summary>Pairs an engine with its tokenizer; the tokenizer's ids must all fit the model's vocabulary.</summary>
    public ServedModel(string id, IGenerationEngine engine, ITokenizer tokenizer)
    {
        if (string.IsNullOrWhiteSpace(id)) throw new ArgumentException("the served model needs a non-empty id");
        if (tokenizer.VocabSize > engine.Config.VocabSize)
            throw new ArgumentException($"tokenizer {tokenizer.Name} has {tokenizer.VocabSize} ids but the model's vocabulary is {engine.Config.VocabSize}; they do not belong together");
        Id = id;
        Engine = engine;
        Tokenizer = tokenizer;
        var s = tokenizer.SpecialTokens;
        Bos = s.TryGetId(ChatTemplate.Bos, out int bos) ? bos : null;
        var eos = new HashSet<int>();
        if (s.TryGetId(ChatTemplate.Eos, out int e)) eos.Add(e);
        CompletionStopIds = eos;
        var chat = new HashSet<int>(eos);
        if (s.TryGetId(ChatTemplate.End, out int end)) chat.Add(end);
        // A model that ships its own chat template is prompted with it; Tessera's format otherwise.
        ModelTemplate = Text.Templates.ModelChatTemplate.Of(tokenizer);
        if (ModelTemplate is not null)
        {
            chat.UnionWith(ModelTemplate.StopIds(tokenizer));
            if (ModelTemplate.BosToken is { } bt && s.TryGetId(bt, out int mb)) Bos ??= mb;
        }
        ChatStopIds = chat;
        Created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
    }

    /// <summary>The model id clients send in <c>model</c>.</summary>
    public string Id { get; }

    /// <summary>Retrieval for chat (<c>serve --index</c>): passages prepended and cited; null serves without.</summary>
    public IChatRetriever? Retriever { get; init; }
    /// <summary>Image input (a multimodal checkpoint's patch embedder); null serves text only.</summary>
    public ServedVision? Vision { get; init; }
    /// <summary>The engine that generates token ids for this model.</summary>
    public IGenerationEngine Engine { get; }
    /// <summary>The tokenizer that turns request text into the engine's ids and back.</summary>
    public ITokenizer Tokenizer { get; }
    /// <summary>Context length in tokens (prompt + completion).</summary>
    public int ContextLength => Engine.Config.ContextLength;
    /// <summary>The BOS id put before text prompts, if the tokenizer has one.</summary>
    public int? Bos { get; }
    /// <summary>Ids that end a plain completion (<c>&lt;|eos|&gt;</c>).</summary>
    public IReadOnlySet<int> CompletionStopIds { get; }
    /// <summary>Ids that end an assistant turn (<c>&lt;|end|&gt;</c> and <c>&lt;|eos|&gt;</c>).</summary>
    public IReadOnlySet<int> ChatStopIds { get; }
    /// <summary>Unix time the server started serving the model (reported by /v1/models).</summary>
    public long Created { get; }

    /// <summary>Text prompt → ids with BOS in front (the engine wants BOS included by the caller).</summary>
    public List<int> EncodePrompt(string text)
    {
        var ids = new List<int>();
        if (Bos is { } b) ids.Add(b);
        ids.AddRange(Tokenizer.Encode(text));
        return ids;
    }

    /// <summary>The model's own chat template (from its tokenizer files), or null for Tessera's format.</summary>
    public Text.Templates.ModelChatTemplate? ModelTemplate { get; }

    /// <summary>A chat conversation → ids ending with an open assistant turn (the model's template when it has one; content is never read for special tokens).</summary>
    public List<int> EncodeChat(IEnumerable<ChatMessage> messages, IReadOnlyDictionary<string, object?>? extra = null)
    {
        if (ModelTemplate is null) return ChatTemplate.Encode(Tokenizer, messages, addGenerationPrompt: true);
        try { return ModelTemplate.Encode(Tokenizer, messages, addGenerationPrompt: true, extra); }
        catch (Text.Templates.JinjaException e) { throw new ArgumentException($"the model's chat template ({ModelTemplate.Where}) refused the conversation: {e.Message}", e); }
    }

    /// <summary>The bytes of one token (a special token's bytes are its marker text).</summary>
    public byte[] TokenBytes(int id) => Tokenizer.DecodeBytes([id]);

    /// <summary>
    /// What one token adds to the reply text: its bytes, or nothing for a special token. Markers such
    /// as <c>&lt;|assistant|&gt;</c> are control, not content (OpenAI-style servers skip them too);
    /// they still count as tokens and appear in logprobs.
    /// </summary>
    public byte[] TextBytes(int id) => Tokenizer.SpecialTokens.IsSpecial(id) ? [] : Tokenizer.DecodeBytes([id]);

    /// <summary>The reply text of a token sequence: <see cref="TextBytes"/> of each, decoded as UTF-8.</summary>
    public string DecodeText(IReadOnlyList<int> ids)
    {
        var kept = new List<int>(ids.Count);
        foreach (int id in ids) if (!Tokenizer.SpecialTokens.IsSpecial(id)) kept.Add(id);
        return Tokenizer.Decode(kept.ToArray());
    }
}
