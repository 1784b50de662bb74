using System.Text;

namespace Tessera.Server;

/// <summary>One abusive request: the path, the raw body bytes, and what kind of damage it carries.</summary>
public sealed record MalformedRequest(string Path, byte[] Body, string Kind);

/// <summary>
/// A deterministic generator of malformed API requests, shared by the server tests, the soak
/// harness (<c>tessera bench serve</c>) and the fuzz seed corpus: JSON syntax mutations, wrong
/// types, huge and out-of-range values, invalid UTF-8, unpaired surrogate escapes, deep nesting,
/// unknown models. Every one must get a 4xx from the server, never a 5xx, and leave it serving.
/// </summary>
public sealed class MalformedRequests(string modelId, ulong seed)
{
    /// <summary>The endpoints that parse a JSON body.</summary>
    public static readonly string[] Paths = ["v1/chat/completions", "v1/completions", "v1/embeddings"];

    ulong state = seed * 0x9E3779B97F4A7C15UL + 1;

    int Next(int n)
    {
        // splitmix64: reproducible from the seed, no shared Random.
        ulong z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return (int)((z ^ (z >> 31)) % (ulong)n);
    }

    T Pick<T>(IReadOnlyList<T> items) => items[Next(items.Count)];

    static readonly string[] WrongValues =
    [
        "\"text\"", "-1", "0", "1e309", "-1e309", "1e400", "99999999999999999999999999", "3.5", "true", "[]", "{}", "[[[]]]",
        "\"\\ud800\"", "\"\\udfff\"", "\"\\udc00\\ud800\"", "\"a\\u0000b\"", "-0", "1.7976931348623157e308", "null",
        "{\"type\":\"json_object\"}", "[\"a\",\"b\",\"c\",\"d\",\"e\"]", "\"\"", "[1,2,3]", "{\"5\":1e30}", "[{\"role\":1}]",
    ];

    static readonly string[] Fields =
    [
        "model", "messages", "prompt", "input", "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "min_p",
        "stop", "n", "seed", "logprobs", "top_logprobs", "echo", "stream", "stream_options", "logit_bias", "response_format",
        "tools", "encoding_format", "dimensions", "best_of", "suffix", "frequency_penalty", "presence_penalty",
    ];

    /// <summary>A well-formed body for <paramref name="path"/>, the starting point of each mutation.</summary>
    public string ValidBody(string path) => path switch
    {
        "v1/chat/completions" => $"{{\"model\":\"{modelId}\",\"messages\":[{{\"role\":\"user\",\"content\":\"hello\"}}],\"max_tokens\":4}}",
        "v1/completions" => $"{{\"model\":\"{modelId}\",\"prompt\":\"hello\",\"max_tokens\":4}}",
        _ => $"{{\"model\":\"{modelId}\",\"input\":\"hello\"}}",
    };

    /// <summary>The next malformed request.</summary>
    public MalformedRequest Next()
    {
        string path = Pick(Paths);
        string valid = ValidBody(path);
        switch (Next(12))
        {
            case 0: // a field with a value of the wrong type or range (the required ones included)
            {
                string field = Pick(Fields), value = Pick(WrongValues);
                // Some pairs are valid (temperature 0, seed -1), so a 200 is allowed here; a 5xx never is.
                string budget = field.StartsWith("max_", StringComparison.Ordinal) ? "" : "\"max_tokens\":2,";
                return Text(path, "wrong_value", $"{{\"model\":\"{modelId}\",{budget}{Required(path, field)}\"{field}\":{value}}}", acceptableIfValid: true);
            }
            case 1: // truncated JSON
                return Text(path, "truncated", valid[..Next(valid.Length)]);
            case 2: // one byte flipped to a JSON-significant or invalid byte
            {
                var b = Encoding.UTF8.GetBytes(valid);
                b[Next(b.Length)] = Pick<byte>([(byte)'{', (byte)'}', (byte)'"', (byte)',', (byte)':', (byte)'[', 0xFF, 0xC0, 0x80, 0x00, (byte)'\\']);
                return new MalformedRequest(path, b, "byte_flip?");   // may land in a key or the text and stay valid
            }
            case 3: // invalid UTF-8 inside a string
            {
                var b = Encoding.UTF8.GetBytes(valid).ToList();
                int at = b.IndexOf((byte)'h');
                b.InsertRange(at, Pick<byte[]>([[0xFF], [0xC3], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xC0, 0xAF], [0xE2, 0x82]]));
                return new MalformedRequest(path, [.. b], "invalid_utf8");
            }
            case 4: // an unpaired surrogate escape in the text the model would read
                return Text(path, "lone_surrogate", valid.Replace("hello", Pick(["\\ud800", "\\udbff", "\\udc00", "x\\ud83d", "\\ude00x", "\\udc00\\ud800"])));
            case 5: // deep nesting
            {
                int depth = 65 + Next(2000);
                return Text(path, "deep_nesting", $"{{\"model\":\"{modelId}\",\"x\":{new string('[', depth)}{new string(']', depth)}}}");
            }
            case 6: // not an object at the top
                return Text(path, "not_object", Pick(["[]", "\"text\"", "42", "null", "true", ""]));
            case 7: // unknown model, or model of the wrong type
                return Text(path, "bad_model", valid.Replace($"\"{modelId}\"", Pick(["\"gpt-4o\"", "1", "null", "[]", "\"\""])));
            case 8: // a huge number where a count goes
            {
                string huge = Pick(["1e30", "18446744073709551616", "2147483648", "-2147483649"]);
                return Text(path, "huge_value", path == "v1/embeddings" ? valid.Replace("\"input\"", $"\"dimensions\":{huge},\"input\"") : valid.Replace("\"max_tokens\":4", $"\"max_tokens\":{huge}"));
            }
            case 9: // a token-id prompt with ids outside the vocabulary
                return Text("v1/completions", "bad_ids", $"{{\"model\":\"{modelId}\",\"prompt\":[1,{Pick(["-1", "1000000000", "2147483648", "1.5", "\"a\""])}],\"max_tokens\":2}}");
            case 10: // chat messages of the wrong shape
                return Text("v1/chat/completions", "bad_messages", $"{{\"model\":\"{modelId}\",\"messages\":{Pick(["[{}]", "[{\"role\":\"user\"}]", "[{\"role\":\"wizard\",\"content\":\"x\"}]", "[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]", "[{\"role\":\"user\",\"content\":5}]", "[1]", "{}"])}}}");
            default: // a context-length overflow
                return Text(path, "too_long", valid.Replace("hello", new StringBuilder().Insert(0, "hello ", 20000 + Next(20000)).ToString()));
        }
    }

    /// <summary>Whether a 200 would also be a correct answer (a mutation that happened to stay valid).</summary>
    public static bool MayBeValid(MalformedRequest r) => r.Kind.EndsWith("?", StringComparison.Ordinal);

    // The wrong-value case keeps the endpoint's other required field so the mutated one is what gets judged.
    static string Required(string path, string field) => (path, field) switch
    {
        ("v1/chat/completions", not "messages") => "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],",
        ("v1/completions", not "prompt") => "\"prompt\":\"hi\",",
        ("v1/embeddings", not "input") => "\"input\":\"hi\",",
        _ => "",
    };

    static MalformedRequest Text(string path, string kind, string body, bool acceptableIfValid = false)
        => new(path, Encoding.UTF8.GetBytes(body), acceptableIfValid ? kind + "?" : kind);
}
