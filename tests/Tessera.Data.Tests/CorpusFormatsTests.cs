using System.IO.Compression;
using System.Text;
using System.Text.Json;
using Parquet;
using Parquet.Schema;
using Tessera.Text;

namespace Tessera.Data.Tests;

/// <summary>JSONL and Parquet inputs: the same documents as text files give byte-identical shards; bad files are named with what is wrong.</summary>
public class CorpusFormatsTests
{
    // Quotes, escapes, newlines, CRLF and non-ASCII: what JSON escaping and Parquet's UTF-8 must carry exactly.
    static readonly string[] Texts =
    [
        "Call me Ishmael. Some years ago—never mind how long precisely—having little money,",
        "He said \"whale\"\\ and then\nstopped.\r\nNext line, naïve café, 東京, 🐋.",
        "  leading and trailing spaces are kept  ",
        "tabs\tare\tkept\n\nand blank lines too\n",
        "short",
        string.Concat(Enumerable.Repeat("a longer document that repeats itself. ", 40)),
    ];

    static ByteTokenizer Bytes => new(ChatTemplate.DefaultSpecialTokens);

    /// <summary>One .txt file per document, named so ordinal order is document order.</summary>
    static string TextFolder(TempDir dir, string name, IReadOnlyList<string> texts)
    {
        string folder = dir.File(name);
        Directory.CreateDirectory(folder);
        for (int i = 0; i < texts.Count; i++) File.WriteAllText(Path.Combine(folder, $"d{i:D3}.txt"), texts[i], new UTF8Encoding(false));
        return folder;
    }

    static string Jsonl(TempDir dir, string name, IReadOnlyList<string> texts, string field = "text", bool gzip = false)
    {
        var lines = string.Concat(texts.Select((t, i) => JsonSerializer.Serialize(new Dictionary<string, object> { ["id"] = i, [field] = t }) + "\n"));
        string path = dir.File(name);
        if (!gzip) { File.WriteAllText(path, lines, new UTF8Encoding(false)); return path; }
        using var gz = new GZipStream(File.Create(path), CompressionLevel.Fastest);
        gz.Write(Encoding.UTF8.GetBytes(lines));
        return path;
    }

    /// <summary>Writes a Parquet file with Parquet.Net: an id column and a string column, split over row groups of <paramref name="rowsPerGroup"/>.</summary>
    static string Parquet(TempDir dir, string name, IReadOnlyList<string?> texts, string column = "text", int rowsPerGroup = 4)
    {
        var id = new DataField<int>("id");
        var text = new DataField<string>(column);
        string path = dir.File(name);
        using var stream = File.Create(path);
        var writer = ParquetWriter.CreateAsync(new ParquetSchema(id, text), stream).GetAwaiter().GetResult();
        try
        {
            for (int start = 0; start < texts.Count; start += rowsPerGroup)
            {
                var part = texts.Skip(start).Take(rowsPerGroup).ToArray();
                using var group = writer.CreateRowGroup();
                group.WriteAsync(id, (ReadOnlyMemory<int>)Enumerable.Range(start, part.Length).ToArray()).GetAwaiter().GetResult();
                group.WriteAsync(text, part).GetAwaiter().GetResult();
            }
        }
        finally { writer.DisposeAsync().AsTask().GetAwaiter().GetResult(); }
        return path;
    }

    static Dictionary<string, byte[]> Shards(string folder) => new[] { "train.bin", "val.bin", "test.bin" }
        .ToDictionary(f => f, f => File.ReadAllBytes(Path.Combine(folder, f)));

    [Fact]
    public void JsonlAndParquet_GiveByteIdenticalShardsToTheSameTextInTxt()
    {
        using var dir = new TempDir();
        string[] train = Texts, validation = ["held-out one.", "held-out two,\nwith a second line."];
        var asText = ShardBuilder.PrepareSplits(CorpusFiles.Read(TextFolder(dir, "train-txt", train)), CorpusFiles.Read(TextFolder(dir, "val-txt", validation)), [],
            Bytes, "bytes", dir.File("from-txt"));
        ShardBuilder.PrepareSplits(CorpusFiles.Read(Jsonl(dir, "train.jsonl", train)), CorpusFiles.Read(Jsonl(dir, "val.jsonl", validation)), [],
            Bytes, "bytes", dir.File("from-jsonl"));
        ShardBuilder.PrepareSplits(CorpusFiles.Read(Jsonl(dir, "train.jsonl.gz", train, gzip: true)), CorpusFiles.Read(Jsonl(dir, "val.jsonl.gz", validation, gzip: true)), [],
            Bytes, "bytes", dir.File("from-jsonl-gz"));
        ShardBuilder.PrepareSplits(CorpusFiles.Read(Parquet(dir, "train.parquet", train)), CorpusFiles.Read(Parquet(dir, "val.parquet", validation)), [],
            Bytes, "bytes", dir.File("from-parquet"));

        Assert.Equal(train.Length, asText.Train.Documents);
        Assert.Equal(validation.Length, asText.Validation.Documents);
        var reference = Shards(dir.File("from-txt"));
        foreach (var other in new[] { "from-jsonl", "from-jsonl-gz", "from-parquet" })
        {
            var shards = Shards(dir.File(other));
            foreach (var (name, bytes) in reference) Assert.True(bytes.AsSpan().SequenceEqual(shards[name]), $"{other}/{name} differs from the .txt shards");
            Assert.Equal(File.ReadAllText(Path.Combine(dir.File("from-txt"), PreparedData.MetaFile)), File.ReadAllText(Path.Combine(dir.File(other), PreparedData.MetaFile)));
        }
        using var val = TokenShard.Open(asText.ShardPath(Split.Validation));
        Assert.Equal(validation[1], Bytes.Decode(val.ReadDocument(1).AsSpan(1)));
    }

    [Fact]
    public void AFolderMixesFormats_InOrdinalFileOrder_AndANamedFieldIsRead()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("mixed"));
        File.WriteAllText(dir.File("mixed/a.txt"), "from text");
        File.WriteAllText(dir.File("mixed/b.jsonl"), "{\"content\": \"from jsonl 1\"}\n\n{\"content\": \"\"}\n{\"content\": \"from jsonl 4\"}\n");
        Parquet(dir, "mixed/c.parquet", ["row 0", null, "", "row 3"], column: "content", rowsPerGroup: 2);
        File.WriteAllText(dir.File("mixed/notes.md"), "ignored: not a corpus format");
        var docs = CorpusFiles.Read(dir.File("mixed"), textField: "content");
        Assert.Equal(["a.txt", "b.jsonl#1", "b.jsonl#4", "c.parquet#0", "c.parquet#3"], docs.Select(d => d.Key));
        Assert.Equal(["from text", "from jsonl 1", "from jsonl 4", "row 0", "row 3"], docs.Select(d => d.Text));
    }

    [Fact]
    public void MalformedJsonl_ListsEveryBadLineByNumber_AndReturnsNothing()
    {
        using var dir = new TempDir();
        string path = dir.File("bad.jsonl");
        File.WriteAllText(path, string.Join("\n",
            "{\"text\": \"fine\"}",          // 1
            "{\"text\": \"unterminated",      // 2
            "[\"an\", \"array\"]",            // 3
            "",                               // 4: blank lines are skipped, not errors
            "{\"body\": \"wrong field\"}",    // 5
            "{\"text\": 42}",                 // 6
            "{\"text\": \"fine again\"}"));   // 7
        var e = Assert.Throws<InvalidDataException>(() => CorpusFiles.Read(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("4 malformed JSONL line(s)", e.Message);
        Assert.Contains("line 2: not valid JSON", e.Message);
        Assert.Contains("line 3: expected a JSON object, found an array", e.Message);
        Assert.Contains("line 5: no \"text\" field", e.Message);
        Assert.Contains("line 6: \"text\" is a number", e.Message);
        Assert.DoesNotContain("line 1:", e.Message);
        Assert.DoesNotContain("line 4:", e.Message);
        Assert.DoesNotContain("line 7:", e.Message);
    }

    [Fact]
    public void ManyBadLines_AreCountedAndTheFirstTenQuoted()
    {
        using var dir = new TempDir();
        string path = dir.File("bad.jsonl");
        File.WriteAllText(path, string.Concat(Enumerable.Range(0, 25).Select(i => "not json\n")));
        var e = Assert.Throws<InvalidDataException>(() => CorpusFiles.Read(path));
        Assert.Contains("25 malformed", e.Message);
        Assert.Contains("line 10:", e.Message);
        Assert.DoesNotContain("line 11:", e.Message);
        Assert.Contains("and 15 more", e.Message);
    }

    [Fact]
    public void ParquetWithoutTheNamedColumn_NamesTheColumnsItHas()
    {
        using var dir = new TempDir();
        string path = Parquet(dir, "t.parquet", ["a", "b"], column: "body");
        var e = Assert.Throws<InvalidDataException>(() => CorpusFiles.Read(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("no column \"text\"", e.Message);
        Assert.Contains("id, body", e.Message);
        Assert.Contains("--text-field", e.Message);
        Assert.Equal(["a", "b"], CorpusFiles.Read(path, textField: "body").Select(d => d.Text));
        Assert.Contains("expected strings", Assert.Throws<InvalidDataException>(() => CorpusFiles.Read(path, textField: "id")).Message);
    }

    [Fact]
    public void NotParquet_IsNamed()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("fake.parquet"), "this is not a parquet file at all, just text");
        var e = Assert.Throws<InvalidDataException>(() => CorpusFiles.Read(dir.File("fake.parquet")));
        Assert.Contains("fake.parquet", e.Message);
    }
}
