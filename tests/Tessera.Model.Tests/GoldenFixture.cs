using System.Buffers.Binary;
using System.Text.Json;

namespace Tessera.Model.Tests;

/// <summary>
/// Reader for the tessera-golden-v1 fixtures (fixtures/NAME.{json,bin}, e.g. model_moe written by
/// reference/model_reference.py): the JSON holds the config, scalar results and an index
/// {name: {dtype, shape, offset}} into the little-endian binary blob (f32 or i32). See
/// reference/README.md. Compiled into the model and training tests, which hold the fixtures.
/// </summary>
public sealed class GoldenFixture
{
    readonly byte[] blob;
    readonly JsonElement tensors;

    GoldenFixture(JsonDocument doc, byte[] blob)
    {
        Root = doc.RootElement;
        tensors = Root.GetProperty("tensors");
        this.blob = blob;
    }

    /// <summary>The whole JSON document.</summary>
    public JsonElement Root { get; }

    /// <summary>Loads the fixture copied next to the test assembly.</summary>
    public static GoldenFixture Load(string name)
    {
        string dir = Path.Combine(AppContext.BaseDirectory, "fixtures");
        var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, name + ".json")));
        if (doc.RootElement.GetProperty("format").GetString() != "tessera-golden-v1")
            throw new InvalidDataException($"{name}.json: unknown fixture format.");
        return new GoldenFixture(doc, File.ReadAllBytes(Path.Combine(dir, name + ".bin")));
    }

    /// <summary>An integer config value.</summary>
    public int ConfigInt(string key) => Root.GetProperty("config").GetProperty(key).GetInt32();

    /// <summary>A floating config value.</summary>
    public double ConfigDouble(string key) => Root.GetProperty("config").GetProperty(key).GetDouble();

    /// <summary>A top-level scalar.</summary>
    public double Scalar(string key) => Root.GetProperty(key).GetDouble();

    /// <summary>A top-level array of numbers.</summary>
    public double[] Doubles(string key) => [.. Root.GetProperty(key).EnumerateArray().Select(e => e.GetDouble())];

    /// <summary>Parameter names in fixture order.</summary>
    public string[] ParameterNames => [.. Root.GetProperty("parameters").EnumerateArray().Select(e => e.GetString()!)];

    /// <summary>Shape of a stored tensor.</summary>
    public int[] Shape(string name) => [.. Entry(name).GetProperty("shape").EnumerateArray().Select(e => e.GetInt32())];

    /// <summary>A stored f32 tensor's values.</summary>
    public float[] Floats(string name)
    {
        var (off, n) = Span(name, "f32");
        var r = new float[n];
        for (int i = 0; i < n; i++) r[i] = BinaryPrimitives.ReadSingleLittleEndian(blob.AsSpan(off + 4 * i));
        return r;
    }

    /// <summary>A stored i32 tensor's values.</summary>
    public int[] Ints(string name)
    {
        var (off, n) = Span(name, "i32");
        var r = new int[n];
        for (int i = 0; i < n; i++) r[i] = BinaryPrimitives.ReadInt32LittleEndian(blob.AsSpan(off + 4 * i));
        return r;
    }

    JsonElement Entry(string name) =>
        tensors.TryGetProperty(name, out var e) ? e : throw new KeyNotFoundException($"golden fixture has no tensor '{name}'.");

    (int Offset, int Count) Span(string name, string dtype)
    {
        var e = Entry(name);
        if (e.GetProperty("dtype").GetString() != dtype) throw new InvalidDataException($"golden tensor '{name}' is not {dtype}.");
        int n = 1;
        foreach (var d in e.GetProperty("shape").EnumerateArray()) n *= d.GetInt32();
        int off = e.GetProperty("offset").GetInt32();
        if (off + 4L * n > blob.Length) throw new InvalidDataException($"golden tensor '{name}' runs past the end of the blob.");
        return (off, n);
    }
}
