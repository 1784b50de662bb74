using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace Tessera.Kernels.IO;

/// <summary>
/// The one JSON naming policy: every JSON file Tessera writes and every <c>--json</c> output uses
/// snake_case property names. Files written before this policy used the .NET names (PascalCase) or
/// camelCase; reading accepts those too, so old checkpoints, data folders and caches still load.
/// Dictionary keys are data, not names, and are kept as they are. NaN and ∞ are written as the
/// strings "NaN"/"Infinity" so a diverged run still reports.
/// </summary>
public static class JsonNaming
{
    /// <summary>Indented snake_case options (files).</summary>
    public static JsonSerializerOptions Indented { get; } = Create(indented: true);

    /// <summary>Single-line snake_case options (one <c>--json</c> result per line).</summary>
    public static JsonSerializerOptions Line { get; } = Create(indented: false);

    static JsonSerializerOptions Create(bool indented)
    {
        var o = new JsonSerializerOptions
        {
            WriteIndented = indented,
            PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
            NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
            Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
            TypeInfoResolver = new DefaultJsonTypeInfoResolver(),
        };
        o.MakeReadOnly();
        return o;
    }

    /// <summary>Serialises <paramref name="value"/> with snake_case names (indented unless <paramref name="indented"/> is false).</summary>
    public static string Serialize<T>(T value, bool indented = true) => JsonSerializer.Serialize(value, indented ? Indented : Line);

    /// <summary>Serialises <paramref name="value"/> as its runtime type (for anonymous or polymorphic results).</summary>
    public static string SerializeObject(object value, bool indented = true) => JsonSerializer.Serialize(value, value.GetType(), indented ? Indented : Line);

    /// <summary>Parses JSON written under this policy or under the older PascalCase/camelCase names.</summary>
    /// <exception cref="JsonException">The text is not JSON, names a key twice in one object, or does not fit <typeparamref name="T"/>.</exception>
    public static T? Deserialize<T>(string json)
    {
        // Duplicate keys are refused while parsing; left in, JsonNode throws a bare ArgumentException
        // the first time the object is read (found by fuzzing the index manifest).
        var node = JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { AllowDuplicateProperties = false });
        ToSnakeNames(node, typeof(T));
        return node.Deserialize<T>(Indented);
    }

    /// <summary>
    /// Renames, in place, every object key that is not a property of <paramref name="type"/> but whose
    /// snake_case form is, walking into properties, collection elements and dictionary values by
    /// their declared types (so dictionary keys, which are data, stay as they are).
    /// </summary>
    static void ToSnakeNames(JsonNode? node, Type type)
    {
        if (node is null) return;
        var info = Indented.GetTypeInfo(Nullable.GetUnderlyingType(type) ?? type);
        switch (info.Kind)
        {
            case JsonTypeInfoKind.Object when node is JsonObject obj:
                var properties = new Dictionary<string, Type>(StringComparer.Ordinal);
                foreach (var p in info.Properties) properties[p.Name] = p.PropertyType;
                foreach (var (key, value) in obj.ToArray())
                {
                    string name = key;
                    if (!properties.ContainsKey(key))
                    {
                        string snake = JsonNamingPolicy.SnakeCaseLower.ConvertName(key);
                        if (properties.ContainsKey(snake) && !obj.ContainsKey(snake))
                        {
                            obj.Remove(key);
                            obj[snake] = value;
                            name = snake;
                        }
                    }
                    if (properties.TryGetValue(name, out var propertyType)) ToSnakeNames(value, propertyType);
                }
                break;
            case JsonTypeInfoKind.Dictionary when node is JsonObject dict && info.ElementType is { } valueType:
                foreach (var (_, value) in dict.ToArray()) ToSnakeNames(value, valueType);
                break;
            case JsonTypeInfoKind.Enumerable when node is JsonArray array && info.ElementType is { } elementType:
                foreach (var item in array) ToSnakeNames(item, elementType);
                break;
        }
    }
}
