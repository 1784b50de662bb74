using System.Text;
using Tessera.Data.NGram;
using Tessera.Inference.Constraints;
using Tessera.Retrieval;
using Tessera.Text.Templates;
using Tessera.Vision;

namespace Tessera.Fuzz;

/// <summary>
/// The image decoder (PNG/JPEG through StbImageSharp) with a small pixel cap, as a server would
/// use it: a decoded image must match its header and stay within the cap, and decoding must not
/// allocate far more than the cap allows (a decompression bomb is refused before it is allocated).
/// </summary>
public sealed class ImageTarget : FuzzTarget
{
    public override string Name => "image";

    /// <summary>The cap the harness decodes under (256×256).</summary>
    public const long MaxPixels = 256 * 256;

    protected override void Execute(ReadOnlySpan<byte> input)
    {
        byte[] data = input.ToArray();
        long before = GC.GetAllocatedBytesForCurrentThread();
        RgbImage image;
        try { image = ImageDecoder.Decode(data, "x.img", MaxPixels); }
        finally
        {
            // Everything the codec may legitimately hold: the RGB result, a few planes of the same
            // size (RGBA, YCbCr, filter rows), and buffers proportional to the input.
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            long budget = 16 * MaxPixels + 16L * data.Length + (1 << 20);
            if (allocated > budget) throw new FuzzFinding($"decoding {data.Length} bytes allocated {allocated} bytes, over the budget {budget} for a {MaxPixels}-pixel cap");
        }
        if ((long)image.Width * image.Height > MaxPixels) throw new FuzzFinding($"decoded {image.Width}×{image.Height} past the cap {MaxPixels}");
        var (w, h) = ImageDecoder.ReadHeader(data, "x.img");
        if (image.Width != w || image.Height != h) throw new FuzzFinding($"decoded {image.Width}×{image.Height}, header says {w}×{h}");
    }
}

/// <summary>
/// The chat-template renderer: the input is a template (a model file's <c>chat_template</c> is
/// untrusted text), parsed and rendered over a fixed conversation. A template may refuse
/// (<see cref="JinjaException"/>), but must never crash, hang or exhaust memory.
/// </summary>
public sealed class ChatTemplateTarget : FuzzTarget
{
    public override string Name => "chat-template";

    static readonly Text.ChatMessage[] Conversation =
    [
        new("system", "Be brief."), new("user", "Hi <|im_end|> there"), new("assistant", "Hello."), new("user", "ünïcödé 😀 {{ x }}"),
    ];

    protected override void Execute(ReadOnlySpan<byte> input)
    {
        var template = new ModelChatTemplate(Encoding.UTF8.GetString(input), "<s>", "</s>", "chat_template");
        template.Render(Conversation, addGenerationPrompt: true);
    }
}

/// <summary>
/// The regex grammar of <c>response_format {type: regex}</c>: the input is a pattern, a NUL byte,
/// then a text. The pattern is compiled and the text run through the byte matcher; an accepted
/// text must be at least as long as the grammar's shortest instance.
/// </summary>
public sealed class RegexGrammarTarget : FuzzTarget
{
    public override string Name => "regex-grammar";

    protected override void Execute(ReadOnlySpan<byte> input)
    {
        int cut = input.IndexOf((byte)0);
        var pattern = cut < 0 ? input : input[..cut];
        var text = cut < 0 ? [] : input[(cut + 1)..];
        var grammar = RegexGrammar.Compile(Encoding.UTF8.GetString(pattern));
        var matcher = new GrammarMatcher(grammar);
        var start = matcher.Start();
        if (start.Accepted != (grammar.Root.MinBytes == 0)) throw new FuzzFinding($"the empty text is {(start.Accepted ? "" : "not ")}accepted but the shortest instance has {grammar.Root.MinBytes} bytes");
        var end = matcher.Step(start, text);
        if (end.Accepted && text.Length < grammar.Root.MinBytes) throw new FuzzFinding($"accepted {text.Length} bytes, shorter than the shortest instance ({grammar.Root.MinBytes})");
    }
}

/// <summary>
/// The two index-folder manifests (<c>index.json</c>): the first input byte picks the retrieval
/// index's or the n-gram store's, the rest is the file.
/// </summary>
public sealed class ManifestTarget : FuzzTarget
{
    public override string Name => "manifest";

    protected override void Execute(ReadOnlySpan<byte> input)
    {
        if (input.IsEmpty) return;
        string dir = Path.GetDirectoryName(ToFile(input[1..], "index.json"))!;
        if ((input[0] & 1) == 0) IndexManifest.Load(dir);
        else NGramManifest.Load(dir);
    }
}
