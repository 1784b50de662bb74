using System.Buffers.Binary;
using System.Text;
using Tessera.Model.Checkpoints;

namespace Tessera.Model.Tests;

public class SafetensorsTests
{
    static string Temp(string name) => Path.Combine(Directory.CreateTempSubdirectory("tessera-st-").FullName, name);

    [SharedFact]
    public void ReadsAFileWrittenByTheOfficialLibrary()
    {
        // Expected sums/endpoints come from an independent reader: reference/safetensors_values.py
        // (numpy over the raw F64 buffer).
        using var r = SafetensorsReader.Open(SharedData.File("formats/syoyo_gen_model.safetensors"));
        Assert.Equal(new[] { "weight1", "weight2" }, r.Entries.Select(e => e.Name));
        Assert.Equal(new long[] { 8, 8 }, r.Entry("weight1").Shape);
        Assert.Equal(SafetensorsDType.F64, r.Entry("weight2").DType);
        var w1 = r.ReadFloat32("weight1");
        var w2 = r.ReadFloat32("weight2");
        // float32 conversion of 64/256 values: each rounding is ≤ 2⁻²⁴ relative, so the sum of
        // positive values is off by at most that much plus the float summation error below.
        Assert.Equal(31.741862223954197, w1.Sum(x => (double)x), 1e-5);
        Assert.Equal(126.67609970765007, w2.Sum(x => (double)x), 1e-4);
        Assert.Equal((float)0.08001627472781947, w1[0]);
        Assert.Equal((float)0.4085505781254526, w2[^1]);
    }

    [SharedFact]
    public void RejectsTheHostileHeaderLengthFixture()
    {
        var e = Assert.Throws<InvalidDataException>(() => SafetensorsReader.Open(SharedData.File("formats/abuse_attempt_1.safetensors")));
        Assert.Contains("header length", e.Message);
    }

    [Fact]
    public void RoundTripsEveryFloatTypeAndMetadata()
    {
        var path = Temp("m.safetensors");
        float[] a = [1f, -2.5f, 3.25f, 0f, 1e-3f, 65504f];
        var half = new byte[a.Length * 2];
        var bf16 = new byte[a.Length * 2];
        for (int i = 0; i < a.Length; i++)
        {
            BinaryPrimitives.WriteHalfLittleEndian(half.AsSpan(i * 2), (Half)a[i]);
            BinaryPrimitives.WriteUInt16LittleEndian(bf16.AsSpan(i * 2), (ushort)(BitConverter.SingleToInt32Bits(a[i]) >> 16));
        }
        SafetensorsWriter.Write(path, [
            SafetensorsTensor.F32("model.embed_tokens.weight", [2, 3], a),
            new("h", SafetensorsDType.F16, [6], half),
            new("b", SafetensorsDType.BF16, [3, 2], bf16),
            new("empty", SafetensorsDType.F32, [0, 4], Array.Empty<byte>()),
            SafetensorsTensor.F32("scalar", [], [42f]),
        ], new Dictionary<string, string> { ["format"] = "pt" });
        using var r = SafetensorsReader.Open(path);
        Assert.Equal("pt", r.Metadata["format"]);
        Assert.Equal(a, r.ReadFloat32("model.embed_tokens.weight"));
        var h = r.ReadFloat32("h");
        for (int i = 0; i < a.Length; i++) Assert.Equal((float)(Half)a[i], h[i]);
        var b = r.ReadFloat32("b");
        for (int i = 0; i < a.Length; i++) Assert.Equal(BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits(a[i]) & unchecked((int)0xFFFF0000)), b[i]);
        Assert.Empty(r.ReadFloat32("empty"));
        Assert.Equal(new[] { 42f }, r.ReadFloat32("scalar"));
        Assert.Equal(0, (new FileInfo(path).Length - 8 - (r.Entries.Sum(e => e.End - e.Begin))) % 8);
    }

    static void WriteRaw(string path, string header, int dataBytes)
    {
        var h = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + h.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)h.Length);
        h.CopyTo(bytes, 8);
        File.WriteAllBytes(path, bytes);
    }

    [Theory]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,12]}}""", 12, "spans")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", 16, "cover")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", 12, "overlaps")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,80]}}""", 8, "outside")]
    [InlineData("""{"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}}""", 8, "unknown dtype")]
    [InlineData("""{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}""", 8, "dimension")]
    [InlineData("""{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}}""", 8, "overflows")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}""", 16, "duplicate")]
    [InlineData("""[1,2]""", 0, "not a JSON object")]
    [InlineData("""{"a":""", 0, "not JSON")]
    [InlineData("""{"__metadata__":{"k":1}}""", 0, "not a string")]
    public void HostileHeadersAreRejectedWithAReason(string header, int dataBytes, string reason)
    {
        var path = Temp("bad.safetensors");
        WriteRaw(path, header, dataBytes);
        var e = Assert.Throws<InvalidDataException>(() => SafetensorsReader.Open(path));
        Assert.Contains(reason, e.Message);
        Assert.Contains("bad.safetensors", e.Message);
    }

    [Fact]
    public void FailedWriteKeepsThePreviousFile()
    {
        var path = Temp("keep.safetensors");
        SafetensorsWriter.Write(path, [SafetensorsTensor.F32("w", [2], [1f, 2f])]);
        Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(path, [new("w", SafetensorsDType.F32, [3], new byte[8])]));
        using var r = SafetensorsReader.Open(path);
        Assert.Equal(new[] { 1f, 2f }, r.ReadFloat32("w"));
        Assert.Single(Directory.GetFiles(Path.GetDirectoryName(path)!));
    }

    [Fact]
    public void TruncatedFile_AtAnyLength_GivesOneErrorNamingTheFile()
    {
        var path = Temp("whole.safetensors");
        SafetensorsWriter.Write(path, [SafetensorsTensor.F32("w", [4, 4], new float[16]), SafetensorsTensor.F32("b", [4], [1f, 2f, 3f, 4f])]);
        var whole = File.ReadAllBytes(path);
        var cut = Temp("cut.safetensors");
        foreach (int n in new[] { 0, 1, 7, 8, 9, 40, whole.Length - 65, whole.Length - 1 })
        {
            File.WriteAllBytes(cut, whole[..n]);
            var e = Assert.Throws<InvalidDataException>(() => SafetensorsReader.Open(cut).Dispose());
            Assert.StartsWith(cut + ": ", e.Message);
        }
    }
}
