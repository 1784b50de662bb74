using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Tessera.Kernels;
using Tessera.Model.Checkpoints;

namespace Tessera.Model.Tests;

/// <summary>GGUF writer → reader round trips, the llama/Mixtral mapping and RoPE permutation, and the shared fixture.</summary>
public class GgufTests : IDisposable
{
    readonly string dir = Path.Combine(Path.GetTempPath(), "tessera-gguf-" + Guid.NewGuid().ToString("N"));

    public GgufTests() => Directory.CreateDirectory(dir);

    public void Dispose() => Directory.Delete(dir, recursive: true);

    string File(string name) => Path.Combine(dir, name);

    [Fact]
    public void EveryTypeAndMetadataValue_RoundTripsBitIdentical()
    {
        var rng = new Random(1);
        var values = new float[4 * 64];
        for (int i = 0; i < values.Length; i++) values[i] = (float)(rng.NextDouble() * 2 - 1);
        var tensors = new List<GgufTensor>();
        foreach (var type in new[] { GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.TesseraTernary })
            tensors.Add(new GgufTensor("t." + type, type, [64, 4], GgufModel.Encode(values, type, 64)));
        tensors.Add(new GgufTensor("odd", GgmlType.F32, [3], MemoryMarshal.AsBytes(new float[] { 1, 2, 3 }.AsSpan()).ToArray()));
        var w = new GgufWriter { Alignment = 64 };
        w.Set("general.architecture", "llama").Set("u8", (byte)7).Set("i8", (sbyte)-7).Set("u16", (ushort)65535).Set("i16", (short)-2)
         .Set("u32", 4000000000u).Set("i32", -5).Set("f32", 1.5f).Set("b", true).Set("u64", ulong.MaxValue).Set("i64", long.MinValue)
         .Set("f64", Math.PI).Set("strs", new[] { "a", "ü", "" }).Set("floats", new[] { 1f, -2f }).Set("ints", new[] { -1, 2 }).Set("uints", new[] { 1u, 2u })
         .Set("tessera.ternary.group_size", 64u);
        foreach (var t in tensors) w.Add(t, 64);
        w.Write(File("all.gguf"));

        using var r = GgufReader.Open(File("all.gguf"));
        Assert.Equal(64, r.Alignment);
        Assert.Equal(tensors.Count, r.Tensors.Count);
        foreach (var t in tensors)
        {
            var info = r.Tensor(t.Name);
            Assert.Equal(t.Type, info.Type);
            Assert.Equal(t.Dims, info.Dims);
            Assert.Equal(0, info.Offset % 64);
            Assert.Equal(t.Data.ToArray(), r.Bytes(info).ToArray());
        }
        var m = r.Metadata.Values;
        Assert.Equal((byte)7, m["u8"]); Assert.Equal((sbyte)-7, m["i8"]); Assert.Equal((ushort)65535, m["u16"]); Assert.Equal((short)-2, m["i16"]);
        Assert.Equal(4000000000u, m["u32"]); Assert.Equal(-5, m["i32"]); Assert.Equal(1.5f, m["f32"]); Assert.Equal(true, m["b"]);
        Assert.Equal(ulong.MaxValue, m["u64"]); Assert.Equal(long.MinValue, m["i64"]); Assert.Equal(Math.PI, m["f64"]);
        Assert.Equal(new[] { "a", "ü", "" }, m["strs"]); Assert.Equal(new[] { 1f, -2f }, m["floats"]);
        Assert.Equal(new[] { -1, 2 }, m["ints"]); Assert.Equal(new[] { 1u, 2u }, m["uints"]);

        // Decoding agrees with the kernels' own dequantizers.
        Assert.Equal(Q8_0Matrix.FromFloat(values, 4, 64).Dequantize(), r.ReadFloat32(r.Tensor("t.Q8_0")));
        Assert.Equal(Q4_0Matrix.FromFloat(values, 4, 64).Dequantize(), r.ReadFloat32(r.Tensor("t.Q4_0")));
        Assert.Equal(TernaryMatrix.FromFloat(values, 4, 64, 64).Dequantize(), r.ReadFloat32(r.Tensor("t.TesseraTernary")));
        Assert.Equal(values, r.ReadFloat32(r.Tensor("t.F32")));
        var f16 = r.ReadFloat32(r.Tensor("t.F16"));
        for (int i = 0; i < values.Length; i++) Assert.Equal((float)(Half)values[i], f16[i]);
    }

    /// <summary>
    /// Tensors stored as ggml's other 32-weight blocks (Q4_1, Q5_0, Q5_1, IQ4_NL: arbitrary bytes, as a reader meets
    /// them) are read: each type decodes through its own dequantizer, and Q5_0 and IQ4_NL also rewrite as Q8_0 blocks of
    /// the same values. A type that is not read (Q8_1) is refused with the list of readable ones.
    /// </summary>
    [Fact]
    public void OtherBlockTypes_ReadThroughTheirDequantizers()
    {
        var rng = new Random(7);
        (GgmlType Type, int BlockBytes)[] types =
            [(GgmlType.Q4_1, 20), (GgmlType.Q5_0, 22), (GgmlType.Q5_1, 24), (GgmlType.IQ4_NL, 18)];
        var w = new GgufWriter();
        var data = new Dictionary<GgmlType, byte[]>();
        foreach (var (type, blockBytes) in types)
        {
            var bytes = new byte[2 * 3 * blockBytes];   // [96, 2]: 2 rows of 3 blocks
            rng.NextBytes(bytes);
            // Scales (and Q4_1/Q5_1 minimums) as small finite halves, so every decoded value is finite.
            for (int b = 0; b < 6; b++)
                for (int h = 0; h < (type is GgmlType.Q4_1 or GgmlType.Q5_1 ? 2 : 1); h++)
                    BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(b * blockBytes + 2 * h), BitConverter.HalfToUInt16Bits((Half)(rng.NextDouble() - 0.5)));
            data[type] = bytes;
            w.Add(new GgufTensor("t." + type, type, [96, 2], bytes));
        }
        w.Add(new GgufTensor("t.Q8_1", GgmlType.Q8_1, [32], new byte[36]));   // ggml's activation format: not a weight type
        w.Write(File("blocks.gguf"));

        using var r = GgufReader.Open(File("blocks.gguf"));
        var expected = new float[192];
        Tessera.Kernels.Reference.ScalarQuant.DequantizeQ4_1(data[GgmlType.Q4_1], expected);
        Assert.Equal(expected, r.ReadFloat32(r.Tensor("t.Q4_1")));
        Tessera.Kernels.Reference.ScalarQuant.DequantizeQ5_0(data[GgmlType.Q5_0], expected);
        Assert.Equal(expected, r.ReadFloat32(r.Tensor("t.Q5_0")));
        Assert.Equal(expected, new Q8_0Matrix(2, 96, GgmlTypes.ToQ8_0(GgmlType.Q5_0, data[GgmlType.Q5_0])).Dequantize());
        Tessera.Kernels.Reference.ScalarQuant.DequantizeQ5_1(data[GgmlType.Q5_1], expected);
        Assert.Equal(expected, r.ReadFloat32(r.Tensor("t.Q5_1")));
        Tessera.Kernels.Reference.ScalarQuant.DequantizeIq4Nl(data[GgmlType.IQ4_NL], expected);
        Assert.Equal(expected, r.ReadFloat32(r.Tensor("t.IQ4_NL")));
        Assert.Equal(expected, new Q8_0Matrix(2, 96, GgmlTypes.ToQ8_0(GgmlType.IQ4_NL, data[GgmlType.IQ4_NL])).Dequantize());
        var e = Assert.Throws<NotSupportedException>(() => r.ReadFloat32(r.Tensor("t.Q8_1")));
        Assert.Contains("t.Q8_1", e.Message);
        Assert.Contains("Q5_0", e.Message);
    }

    [Theory]
    [InlineData(false, GgufWeightType.F32)]
    [InlineData(true, GgufWeightType.F32)]
    [InlineData(false, GgufWeightType.Q8_0)]
    [InlineData(true, GgufWeightType.Q4_0)]
    [InlineData(true, GgufWeightType.Ternary)]
    public void Model_SavesAndLoads(bool moe, GgufWeightType type)
    {
        var config = new ModelConfig
        {
            VocabSize = 50, Dim = 64, Layers = 2, Heads = 4, KvHeads = 2, HiddenDim = 96, ContextLength = 16,
            Experts = moe ? 3 : 1, TopK = moe ? 2 : 1, TiedEmbeddings = moe, RopeTheta = 5000f, NormEps = 1e-6f,
        };
        using var model = new Transformer(config, seed: 7);
        foreach (var p in model.Parameters.All)
            if (p.Name.EndsWith("layernorm.weight") || p.Name == "model.norm.weight")
                for (int i = 0; i < p.Length; i++) p.AsSpan()[i] = 1f + 0.01f * i;   // norms must round-trip as F32 too
        string path = File($"m-{moe}-{type}.gguf");
        GgufModel.Save(model, path, new GgufExportOptions { Type = type, TernaryGroup = 64 });
        using var loaded = GgufModel.Load(path);
        Assert.Equal(config with { }, loaded.Config with { LoadBalanceCoef = config.LoadBalanceCoef });
        foreach (var p in model.Parameters.All)
        {
            var expected = Expected(p.Name, p.AsSpan().ToArray(), p.Shape[^1], type, config);
            Assert.True(expected.AsSpan().SequenceEqual(loaded.Parameters[p.Name].AsSpan()), $"{type}: parameter {p.Name} differs after the round trip");
        }
    }

    /// <summary>What a parameter must read back as: the quantize→dequantize image under the per-tensor type policy.</summary>
    static float[] Expected(string name, float[] w, int cols, GgufWeightType type, ModelConfig c)
    {
        if (type == GgufWeightType.F32 || name.EndsWith("norm.weight") || name.EndsWith("block_sparse_moe.gate.weight")) return w;
        bool embed = name is "model.embed_tokens.weight" or "lm_head.weight";
        bool expert = name.Contains(".experts.");
        int rows = w.Length / cols;
        if (type == GgufWeightType.Q8_0 || (type == GgufWeightType.Ternary && embed)) return Q8_0Matrix.FromFloat(w, rows, cols).Dequantize();
        if (type == GgufWeightType.Q4_0) return Q4_0Matrix.FromFloat(w, rows, cols).Dequantize();
        // Ternary groups run over the flattened GGUF tensor: experts are stacked, so expert e starts at e·rows·cols.
        Assert.False(expert && (rows * cols) % 64 != 0);
        return TernaryMatrix.FromFloat(w, rows, cols, 64).Dequantize();
    }

    [Fact]
    public void QkPermutation_MakesInterleavedRopeEqualRotateHalf()
    {
        // For one head: q_hf rotated by HF rotate-half RoPE equals q_gguf rotated by llama.cpp's adjacent-pair
        // RoPE, element for element after the same permutation, so attention scores agree.
        int d = 8, cols = 5, pos = 3;
        var rng = new Random(3);
        var w = new float[d * cols];
        for (int i = 0; i < w.Length; i++) w[i] = (float)rng.NextDouble() - 0.5f;
        var x = new double[cols];
        for (int i = 0; i < cols; i++) x[i] = rng.NextDouble();
        var wg = GgufModel.PermuteRows(w, 1, cols, inverse: false);
        double Row(float[] m, int r) { double s = 0; for (int k = 0; k < cols; k++) s += m[r * cols + k] * x[k]; return s; }
        for (int j = 0; j < d / 2; j++)
        {
            double ang = pos * Math.Pow(10000, -2.0 * j / d), cs = Math.Cos(ang), sn = Math.Sin(ang);
            double a = Row(w, j), b = Row(w, j + d / 2);                 // HF pair (j, j + d/2)
            double ga = Row(wg, 2 * j), gb = Row(wg, 2 * j + 1);         // GGUF pair (2j, 2j+1)
            Assert.Equal(a * cs - b * sn, ga * cs - gb * sn, 12);
            Assert.Equal(a * sn + b * cs, ga * sn + gb * cs, 12);
        }
        Assert.Equal(w, GgufModel.PermuteRows(wg, 1, cols, inverse: true));
    }

    [SharedFact]
    public void SharedLlamaFixture_LoadsAndMapsToTheModel()
    {
        string path = SharedData.File("formats/llama-2-tiny-random.gguf");
        using var r = GgufReader.Open(path);
        Assert.Equal("llama", r.Metadata.Get<string>("general.architecture"));
        Assert.Equal(12, r.Tensors.Count);
        Assert.Equal(new long[] { 8, 32000 }, r.Tensor("token_embd.weight").Dims);
        Assert.Equal(new long[] { 32, 8 }, r.Tensor("blk.0.ffn_down.weight").Dims);
        Assert.Equal(GgmlType.F16, r.Tensor("blk.0.attn_q.weight").Type);
        Assert.Equal(GgmlType.F32, r.Tensor("output_norm.weight").Type);
        var emb = r.ReadFloat32(r.Tensor("token_embd.weight"));
        Assert.All(emb, v => Assert.True(float.IsFinite(v) && MathF.Abs(v) < 100f));
        Assert.Contains(emb, v => v != 0);

        var c = GgufModel.ReadConfig(r);
        Assert.Equal((8, 1, 2, 2, 32, 32000, 4096, false), (c.Dim, c.Layers, c.Heads, c.KvHeads, c.HiddenDim, c.VocabSize, c.ContextLength, c.TiedEmbeddings));
        using var model = GgufModel.Load(r);
        var q = r.ReadFloat32(r.Tensor("blk.0.attn_q.weight"));
        Assert.Equal(GgufModel.PermuteRows(q, 2, 8, inverse: true), model.Parameters["model.layers.0.self_attn.q_proj.weight"].AsSpan().ToArray());
        Assert.Equal(r.ReadFloat32(r.Tensor("output.weight")), model.Parameters["lm_head.weight"].AsSpan().ToArray());
        using var g = new Tessera.Tensors.Graph();
        var logits = model.Forward(g, [1, 450, 4996], 1, 3).Logits.AsSpan().ToArray();
        Assert.All(logits, v => Assert.True(float.IsFinite(v)));
    }

    // ---- hostile files: each one clear InvalidDataException, never an out-of-range read ----

    /// <summary>A one-tensor GGUF built field by field so each field can be made to lie.</summary>
    static byte[] Handmade(ulong tensorCount = 1, uint nDims = 2, ulong dim0 = 32, ulong dim1 = 2, uint type = 0, ulong offset = 0,
        ulong nameLength = 1, uint alignment = 32, long dataBytes = 256, ulong kvCount = 1)
    {
        var ms = new MemoryStream();
        var w = new BinaryWriter(ms);
        w.Write(0x46554747u); w.Write(3u); w.Write(tensorCount); w.Write(kvCount);
        w.Write((ulong)17); w.Write("general.alignment"u8); w.Write(4u); w.Write(alignment);
        w.Write(nameLength); w.Write((byte)'t');
        w.Write(nDims);
        w.Write(dim0); if (nDims > 1) w.Write(dim1);
        for (uint i = 2; i < nDims && i < 8; i++) w.Write(1UL);
        w.Write(type); w.Write(offset);
        while (ms.Length % 32 != 0) w.Write((byte)0);
        w.Write(new byte[dataBytes]);
        return ms.ToArray();
    }

    string Write(string name, byte[] bytes) { var p = File(name); System.IO.File.WriteAllBytes(p, bytes); return p; }

    [Fact]
    public void HandmadeFile_IsValid()
    {
        using var r = GgufReader.Open(Write("ok.gguf", Handmade()));
        Assert.Equal(new long[] { 32, 2 }, r.Tensor("t").Dims);
        Assert.Equal(256, r.Tensor("t").Bytes);
    }

    [Theory]
    [InlineData("truncated data", "runs past the end")]
    [InlineData("offset past end", "runs past the end")]
    [InlineData("misaligned offset", "not a multiple of the alignment")]
    [InlineData("too many dims", "dimensions")]
    [InlineData("zero dims", "dimensions")]
    [InlineData("unknown type", "ggml type 77 (type 77), which Tessera does not read")]
    [InlineData("iq type", "ggml type 23 (IQ4_XS), which Tessera does not read (readable: F32")]
    [InlineData("partial block", "whole number of blocks")]
    [InlineData("huge dims", "too many elements")]
    [InlineData("huge tensor count", "cannot fit")]
    [InlineData("huge name", "name length")]
    [InlineData("bad alignment", "power of two")]
    [InlineData("huge kv count", "cannot fit")]
    [InlineData("bad magic", "bad magic")]
    public void HostileHeaders_AreRejectedClearly(string what, string message)
    {
        byte[] bytes = what switch
        {
            "truncated data" => Handmade(dataBytes: 100),
            "offset past end" => Handmade(offset: 1UL << 40),
            "misaligned offset" => Handmade(offset: 4),
            "too many dims" => Handmade(nDims: 5),
            "zero dims" => Handmade(nDims: 0),
            "unknown type" => Handmade(type: 77),
            "iq type" => Handmade(type: 23),
            "partial block" => Handmade(type: 8, dim0: 33),
            "huge dims" => Handmade(dim0: 1UL << 40, dim1: 1UL << 40),
            "huge tensor count" => Handmade(tensorCount: ulong.MaxValue),
            "huge name" => Handmade(nameLength: ulong.MaxValue),
            "bad alignment" => Handmade(alignment: 24),
            "huge kv count" => Handmade(kvCount: 1UL << 50),
            "bad magic" => [.. "GGUX"u8, .. Handmade()[4..]],
            _ => throw new ArgumentException(what),
        };
        var e = Assert.Throws<InvalidDataException>(() => GgufReader.Open(Write("bad.gguf", bytes)).Dispose());
        Assert.Contains(message, e.Message);
        Assert.Contains("bad.gguf", e.Message);
    }

    [Fact]
    public void TruncatedFile_AtAnyLength_GivesOneErrorNamingTheFile()
    {
        var w = new GgufWriter().Set("general.architecture", "llama").Set("tokenizer.ggml.tokens", new[] { "a", "b" });
        w.Add(new GgufTensor("a", GgmlType.F32, [8], new byte[32])).Add(new GgufTensor("b", GgmlType.Q8_0, [32], new byte[34]));
        string whole = File("whole.gguf");
        w.Write(whole);
        var bytes = System.IO.File.ReadAllBytes(whole);
        long end;                                                  // the writer pads after the last tensor; cutting only padding is legal
        using (var r = GgufReader.Open(whole)) end = r.Tensors.Max(t => t.Offset + t.Bytes);
        Assert.True(end > bytes.Length - 32);
        string cut = File("cut.gguf");
        for (int n = 0; n < end; n += n < 64 ? 1 : 7)
        {
            System.IO.File.WriteAllBytes(cut, bytes[..n]);
            var e = Assert.Throws<InvalidDataException>(() => GgufReader.Open(cut).Dispose());
            Assert.StartsWith(cut + ": ", e.Message);
        }
    }

    [Fact]
    public void OverlappingTensors_AreRejected()
    {
        var w = new GgufWriter();
        w.Add(new GgufTensor("a", GgmlType.F32, [8], new byte[32])).Add(new GgufTensor("b", GgmlType.F32, [8], new byte[32]));
        string p = File("overlap.gguf");
        w.Write(p);
        var bytes = System.IO.File.ReadAllBytes(p);
        // The second info's offset field (the last 8 bytes before padding) is the data offset 32; point it at 0.
        int at = IndexOfName(bytes, "b") + 1 + 4 + 8 + 4;
        Assert.Equal(32UL, BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(at)));
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(at), 0);
        var e = Assert.Throws<InvalidDataException>(() => GgufReader.Open(Write("overlap2.gguf", bytes)).Dispose());
        Assert.Contains("overlap", e.Message);
    }

    static int IndexOfName(byte[] bytes, string name)
    {
        var pattern = new byte[9];
        BinaryPrimitives.WriteUInt64LittleEndian(pattern, (ulong)name.Length);
        pattern[8] = (byte)name[0];
        return bytes.AsSpan().IndexOf(pattern) + 8;
    }

    [Fact]
    public void Writer_IsAtomic_AndChecksSizes()
    {
        string p = File("atomic.gguf");
        System.IO.File.WriteAllText(p, "old");
        Assert.Throws<ArgumentException>(() => new GgufWriter().Add(new GgufTensor("x", GgmlType.Q8_0, [32], new byte[33])));
        Assert.Throws<ArgumentException>(() => new GgufWriter().Set("k", 1).Set("k", 2));
        new GgufWriter().Add(new GgufTensor("x", GgmlType.Q8_0, [32], new byte[34])).Write(p);
        Assert.Single(Directory.GetFiles(dir));
        using var r = GgufReader.Open(p);
        Assert.Single(r.Tensors);
    }

    [Fact]
    public void NonLlamaArchitecture_IsRejected()
    {
        var w = new GgufWriter();
        w.Set("general.architecture", "gpt2").Add(new GgufTensor("token_embd.weight", GgmlType.F32, [8, 2], new byte[64]));
        w.Write(File("gpt2.gguf"));
        var e = Assert.Throws<InvalidDataException>(() => GgufModel.Load(File("gpt2.gguf")));
        Assert.Contains("llama", e.Message);
    }
}
