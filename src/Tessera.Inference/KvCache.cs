using System.Runtime.InteropServices;
using Tessera.Kernels;
using Tessera.Model;

namespace Tessera.Inference;

/// <summary>
/// Keys and values of every processed position, fp32, per sequence slot, laid out
/// (slot, layer, kvHead, position, headDim) so one head's history is one contiguous run for the
/// attention scan. A slot's memory is allocated on first use and kept for reuse; rolling a
/// sequence back (speculation) needs no copy: positions past the sequence's length are simply
/// overwritten by the next tokens fed.
/// </summary>
public sealed unsafe class KvCache : IDisposable
{
    readonly float*[] keys, values;
    readonly long planeFloats, slotFloats;

    /// <summary>A cache of <paramref name="slots"/> sequences of up to the config's context length.</summary>
    public KvCache(ModelConfig config, int slots)
    {
        if (slots < 1) throw new ArgumentException($"KvCache: slots must be ≥ 1, got {slots}.");
        Slots = slots; Layers = config.Layers; KvHeads = config.KvHeads; HeadDim = config.HeadDim; Positions = config.ContextLength;
        planeFloats = (long)Positions * HeadDim;
        slotFloats = planeFloats * Layers * KvHeads;
        keys = new float*[slots]; values = new float*[slots];
    }

    /// <summary>Independent sequences the cache holds at once (one slot each).</summary>
    public int Slots { get; }
    /// <summary>Transformer layers, each with its own key and value planes per slot.</summary>
    public int Layers { get; }
    /// <summary>Key/value heads per layer (fewer than query heads under grouped-query attention).</summary>
    public int KvHeads { get; }
    /// <summary>Width of one key or value head.</summary>
    public int HeadDim { get; }
    /// <summary>Positions per slot (the context length).</summary>
    public int Positions { get; }

    /// <summary>Bytes of keys and values one position occupies over all layers.</summary>
    public long BytesPerPosition => 2L * Layers * KvHeads * HeadDim * sizeof(float);

    /// <summary>Bytes allocated so far.</summary>
    public long AllocatedBytes
    {
        get { long n = 0; foreach (var k in keys) if (k != null) n += 2 * slotFloats * sizeof(float); return n; }
    }

    /// <summary>The raw view the attention kernel reads (shares the slot blocks, so later allocations are seen).</summary>
    public KvCacheView View => new(keys, values, Layers, KvHeads, Positions, HeadDim);

    /// <summary>Start of the (Positions, HeadDim) key plane of one head.</summary>
    public float* Keys(int slot, int layer, int kvHead) => View.Keys(slot, layer, kvHead);

    /// <summary>Start of the (Positions, HeadDim) value plane of one head.</summary>
    public float* Values(int slot, int layer, int kvHead) => View.Values(slot, layer, kvHead);

    /// <summary>Makes sure a slot's memory exists (call before the forward pass, off the hot loop).</summary>
    public void Ensure(int slot)
    {
        if ((uint)slot >= (uint)Slots) throw new ArgumentOutOfRangeException(nameof(slot), slot, $"KvCache: slot outside [0, {Slots}).");
        if (keys[slot] != null) return;
        nuint bytes = (nuint)(slotFloats * sizeof(float));
        keys[slot] = (float*)NativeMemory.AlignedAlloc(bytes, 64);
        values[slot] = (float*)NativeMemory.AlignedAlloc(bytes, 64);
    }

    /// <summary>Frees the native key and value buffers of every slot.</summary>
    public void Dispose()
    {
        for (int i = 0; i < Slots; i++)
        {
            if (keys[i] != null) NativeMemory.AlignedFree(keys[i]);
            if (values[i] != null) NativeMemory.AlignedFree(values[i]);
            keys[i] = values[i] = null;
        }
    }
}
