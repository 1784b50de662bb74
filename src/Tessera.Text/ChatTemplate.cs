namespace Tessera.Text;

/// <summary>A chat message: role (<c>system</c>, <c>user</c>, <c>assistant</c>) and content.</summary>
public sealed record ChatMessage(string Role, string Content);

/// <summary>
/// Tessera's default chat format (documented in docs/tokenizers.md):
/// <code>
/// &lt;|bos|&gt;&lt;|system|&gt;{content}&lt;|end|&gt;&lt;|user|&gt;{content}&lt;|end|&gt;&lt;|assistant|&gt;{content}&lt;|end|&gt;...
/// </code>
/// A prompt for generation ends with an open <c>&lt;|assistant|&gt;</c>; the model stops at
/// <c>&lt;|end|&gt;</c>. Role markers are emitted as special ids while message content is
/// encoded as plain text, so text such as "&lt;|end|&gt;" typed by a user cannot forge a turn.
/// </summary>
public static class ChatTemplate
{
    /// <summary>Beginning of a sequence (one per conversation/document).</summary>
    public const string Bos = "<|bos|>";
    /// <summary>End of a document in pre-training data.</summary>
    public const string Eos = "<|eos|>";
    /// <summary>Padding.</summary>
    public const string Pad = "<|pad|>";
    /// <summary>End of a chat turn; the stop token for generation.</summary>
    public const string End = "<|end|>";
    /// <summary>Placeholder for one image (its patch embeddings replace it).</summary>
    public const string Image = "<|image|>";

    /// <summary>The special tokens a trained Tessera vocabulary gets by default, in id order.</summary>
    public static IReadOnlyList<string> DefaultSpecialTokens { get; } =
        [Bos, Eos, Pad, "<|system|>", "<|user|>", "<|assistant|>", End, Image];

    /// <summary>The marker token that opens a turn of <paramref name="role"/>.</summary>
    /// <exception cref="ArgumentException">Unknown role.</exception>
    public static string RoleToken(string role) => role switch
    {
        "system" or "user" or "assistant" => $"<|{role}|>",
        _ => throw new ArgumentException($"unknown chat role '{role}' (expected system, user or assistant)"),
    };

    /// <summary>The conversation as text (for display and debugging).</summary>
    public static string Render(IEnumerable<ChatMessage> messages, bool addGenerationPrompt)
    {
        var sb = new System.Text.StringBuilder(Bos);
        foreach (var m in messages) sb.Append(RoleToken(m.Role)).Append(m.Content).Append(End);
        if (addGenerationPrompt) sb.Append(RoleToken("assistant"));
        return sb.ToString();
    }

    /// <summary>Encodes a conversation; specials must exist in the tokenizer (a clear error names any that do not).</summary>
    public static List<int> Encode(ITokenizer tokenizer, IEnumerable<ChatMessage> messages, bool addGenerationPrompt)
    {
        var s = tokenizer.SpecialTokens;
        var ids = new List<int> { s.Id(Bos) };
        int end = s.Id(End);
        foreach (var m in messages)
        {
            ids.Add(s.Id(RoleToken(m.Role)));
            ids.AddRange(tokenizer.Encode(m.Content, allowSpecial: false));
            ids.Add(end);
        }
        if (addGenerationPrompt) ids.Add(s.Id(RoleToken("assistant")));
        return ids;
    }
}
