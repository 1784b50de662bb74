using Tessera.Text;
using Tessera.Vision;

namespace Tessera.Server;

/// <summary>
/// What a served model needs to take images: the patch embedder of its multimodal checkpoint, the
/// <c>&lt;|image|&gt;</c> id of its tokenizer, whether it was trained with prefix-LM attention, and
/// the limits a request must keep (pixels per image before decoding, images per request).
/// </summary>
public sealed class ServedVision
{
    /// <summary>Pairs an embedder with the tokenizer's image marker; the tokenizer must have <c>&lt;|image|&gt;</c>.</summary>
    public ServedVision(PatchEmbedder embedder, ITokenizer tokenizer)
    {
        Embedder = embedder;
        ImageToken = tokenizer.SpecialTokens.TryGetId(ChatTemplate.Image, out int id) ? id
            : throw new ArgumentException($"tokenizer {tokenizer.Name} has no {ChatTemplate.Image} token, so images cannot be placed in its prompts.");
    }

    /// <summary>The embedder that turns patches into the decoder's input vectors.</summary>
    public PatchEmbedder Embedder { get; }

    /// <summary>The tokenizer's <c>&lt;|image|&gt;</c> id.</summary>
    public int ImageToken { get; }

    /// <summary>Largest image accepted, in pixels, checked from the header before decoding.</summary>
    public long MaxPixels { get; init; } = ImageDecoder.DefaultMaxPixels;

    /// <summary>Most images in one request.</summary>
    public int MaxImages { get; init; } = 16;
}

/// <summary>One image attached to a chat message (its encoded bytes, as the client sent them).</summary>
public sealed record ChatImage(ChatMessage Message, byte[] Data, string Source);

/// <summary>
/// Images in chat prompts. A message's images stand right after its role marker, before its text,
/// one <c>&lt;|image|&gt;</c> each (the LLaVA placement); each marker becomes the image's patch rows
/// (id −1) and the embedder's vectors travel with the request. The server fetches nothing: images
/// arrive as <c>data:</c> URIs (PNG or JPEG, base64). Every failure is an <see cref="ApiException"/> (4xx).
/// </summary>
public static class ChatImages
{
    /// <summary>The bytes of a <c>data:image/png;base64,…</c> or <c>data:image/jpeg;base64,…</c> URI; anything else is a 400 naming <paramref name="param"/>.</summary>
    public static byte[] FromDataUrl(string url, string param)
    {
        if (!url.StartsWith("data:", StringComparison.OrdinalIgnoreCase))
        {
            string shown = url.Length > 40 ? url[..40] + "…" : url;
            throw new ApiException(400, $"Image URL '{shown}' is not a data: URI. This server fetches nothing from the network; send the image inline as data:image/png;base64,… or data:image/jpeg;base64,… - '{param}'.",
                param: param, code: "invalid_image_url");
        }
        int comma = url.IndexOf(',');
        if (comma < 0) throw new ApiException(400, $"The data: URI has no ',' before its data - '{param}'.", param: param, code: "invalid_image_url");
        string header = url[5..comma].ToLowerInvariant();
        var parts = header.Split(';');
        if (parts[0] is not ("image/png" or "image/jpeg" or "image/jpg"))
            throw new ApiException(400, $"Unsupported image type '{(parts[0].Length == 0 ? "(none)" : parts[0])}': this server takes image/png and image/jpeg - '{param}'.", param: param, code: "invalid_image_format");
        if (!parts.Contains("base64"))
            throw new ApiException(400, $"The data: URI must be base64-encoded (data:{parts[0]};base64,…) - '{param}'.", param: param, code: "invalid_image_url");
        try { return Convert.FromBase64String(url[(comma + 1)..]); }
        catch (FormatException) { throw new ApiException(400, $"The data: URI's base64 payload is malformed - '{param}'.", param: param, code: "invalid_image_url"); }
    }

    /// <summary>
    /// The generation request's rows, vectors and prefix for a templated prompt (<paramref name="ids"/>
    /// encoded from <paramref name="messages"/> with Tessera's chat format) and its images. The row
    /// count is checked against the context before any image is decoded.
    /// </summary>
    public static (List<int> Rows, float[] Vectors, int Prefix) Build(ServedModel model, List<int> ids, IReadOnlyList<ChatMessage> messages, IReadOnlyList<ChatImage> images)
    {
        var vision = model.Vision ?? throw new ApiException(400, $"The model '{model.Id}' takes no images (it has no vision_config); send text only.", param: "messages", code: "images_unsupported");
        if (model.ModelTemplate is not null)
            throw new ApiException(400, "Images need Tessera's chat format; this model has its own chat template.", param: "messages", code: "images_unsupported");
        if (images.Count > vision.MaxImages)
            throw new ApiException(400, $"The request has {images.Count} images; this server takes at most {vision.MaxImages} per request.", param: "messages", code: "too_many_images");
        var config = vision.Embedder.Config;
        if (config.Frames > 0 && images.Count > config.Frames)   // a video model: the request's images are one clip's frames
            throw new ApiException(400, $"The request has {images.Count} images; this video model takes clips of at most {config.Frames} frames (its max_frames).", param: "messages", code: "too_many_images");
        long rows = ids.Count + (long)images.Count * config.TokensPerImage;
        if (rows >= model.ContextLength)
            throw new ApiException(400, $"This model's maximum context length is {model.ContextLength} tokens. The {images.Count} images take {config.TokensPerImage} rows each, "
                + $"so the prompt has {rows} rows ({ids.Count} text tokens) and leaves no room for a reply. Send fewer images.", param: "messages", code: "context_length_exceeded");

        var marked = InsertMarkers(model.Tokenizer, vision.ImageToken, ids, messages, images);
        var patches = new float[images.Count * config.TokensPerImage * config.PatchValues];
        for (int i = 0; i < images.Count; i++)
        {
            RgbImage image;
            try { image = ImageDecoder.Decode(images[i].Data, images[i].Source, vision.MaxPixels); }
            catch (ImageDecodeException e) { throw new ApiException(400, e.Message, param: images[i].Source, code: "invalid_image"); }
            PatchGrid.Patches(image, config).CopyTo(patches, i * config.TokensPerImage * config.PatchValues);
        }
        int[] expanded;
        try { expanded = ImageSpans.Expand(marked.ToArray(), vision.ImageToken, images.Count, config, model.ContextLength); }
        catch (ImageDecodeException e) { throw new ApiException(400, e.Message, param: "messages", code: "context_length_exceeded"); }
        var vectors = vision.Embedder.Embed(patches);   // (images·TokensPerImage, D)
        return ([.. expanded], vectors, config.PrefixLm ? expanded.Length : 0);
    }

    /// <summary>Puts one image marker per image right after the role marker of the message it belongs to.</summary>
    static List<int> InsertMarkers(ITokenizer tokenizer, int imageToken, List<int> ids, IReadOnlyList<ChatMessage> messages, IReadOnlyList<ChatImage> images)
    {
        // Content is encoded without specials, so in Tessera's format the k-th role marker opens message k.
        var s = tokenizer.SpecialTokens;
        var roles = new HashSet<int>();
        foreach (var r in (string[])["system", "user", "assistant"])
            if (s.TryGetId(ChatTemplate.RoleToken(r), out int id)) roles.Add(id);
        var result = new List<int>(ids.Count + images.Count);
        int message = -1;
        foreach (int id in ids)
        {
            result.Add(id);
            if (!roles.Contains(id)) continue;
            message++;
            if (message >= messages.Count) continue;   // the open assistant turn
            foreach (var img in images)
                if (ReferenceEquals(img.Message, messages[message])) result.Add(imageToken);
        }
        int placed = result.Count - ids.Count;
        if (placed != images.Count)
            throw new ApiException(400, $"{images.Count - placed} images belong to messages that did not reach the prompt; put images in user messages.", param: "messages", code: "invalid_value");
        return result;
    }
}
