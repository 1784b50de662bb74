using Tessera.Data;
using Tessera.Model;
using Tessera.Model.Checkpoints;
using Tessera.Training;

namespace Tessera.Fuzz;

/// <summary>GGUF: header, metadata, tensor table, then every readable tensor decoded, the llama config read, and the embedded tokenizer (if any) loaded and used.</summary>
public sealed class GgufTarget : FuzzTarget
{
    public override string Name => "gguf";

    protected override void Execute(ReadOnlySpan<byte> input)
    {
        string path = ToFile(input, "x.gguf");
        using (var r = GgufReader.Open(path))
        {
            foreach (var t in r.Tensors)
                if (GgmlTypes.IsReadable(t.Type) && t.ElementCount <= 1 << 20) r.ReadFloat32(t);
            GgufModel.ReadConfig(r);
        }
        var tok = Text.GgufVocabulary.Load(path).Tokenizer;
        tok.Decode(tok.Encode("Hello, world! 123 ünïcödé").ToArray());
    }
}

/// <summary>safetensors: header JSON, entries, and every tensor converted to float32.</summary>
public sealed class SafetensorsTarget : FuzzTarget
{
    public override string Name => "safetensors";

    protected override void Execute(ReadOnlySpan<byte> input)
    {
        using var r = SafetensorsReader.Open(ToFile(input, "x.safetensors"));
        foreach (var e in r.Entries)
            if (SafetensorsDTypes.IsFloat(e.DType) && e.ElementCount <= 1 << 20) r.ReadFloat32(e.Name);
    }
}

/// <summary>Token shards: header, document table, and every document read back.</summary>
public sealed class ShardTarget : FuzzTarget
{
    public override string Name => "shard";

    protected override void Execute(ReadOnlySpan<byte> input)
    {
        using var s = TokenShard.Open(ToFile(input, "x.shard"));
        for (int i = 0; i < Math.Min(s.DocumentCount, 4096); i++)
            foreach (int id in s.ReadDocument(i))
                if ((uint)id >= (uint)s.VocabSize) throw new FuzzFinding($"shard returned id {id} outside its vocabulary {s.VocabSize}");
    }
}

/// <summary>
/// A checkpoint's two JSON files: the input is config.json, a NUL byte, then trainer_state.json.
/// (Its safetensors file is the safetensors target; the manifest's SHA-256 would stop a fuzzer at the door.)
/// </summary>
public sealed class CheckpointTarget : FuzzTarget
{
    public override string Name => "checkpoint";

    protected override void Execute(ReadOnlySpan<byte> input)
    {
        int cut = input.IndexOf((byte)0);
        var config = cut < 0 ? input : input[..cut];
        var state = cut < 0 ? [] : input[(cut + 1)..];
        try { ModelConfig.FromHuggingFaceJson(System.Text.Encoding.UTF8.GetString(config), "config.json"); }
        catch (Exception e) when (IsCleanRejection(e)) { }
        TrainerState.FromJson(System.Text.Encoding.UTF8.GetString(state), "trainer_state.json");
    }
}
