namespace Tessera.Kernels;

/// <summary>
/// What <see cref="CachedAttention"/> needs to know of a token row: the sequence slot whose cache it
/// reads and its position there (the row attends to positions [lo, max(Position, PrefixEnd − 1)] of that slot).
/// </summary>
public interface ICachedRow
{
    /// <summary>The sequence slot.</summary>
    int Slot { get; }

    /// <summary>The row's position in its sequence.</summary>
    int Position { get; }

    /// <summary>
    /// End of the sequence's bidirectional prefix (prefix-LM): the row also attends to positions
    /// up to PrefixEnd − 1 when they lie after it. 0 (or anything ≤ Position + 1) leaves the row causal.
    /// </summary>
    int PrefixEnd { get; }
}

/// <summary>
/// A raw view of a key/value cache: per slot one block of keys and one of values, each laid out
/// (layer, kvHead, position, headDim), so one head's history is one contiguous (Positions, HeadDim)
/// plane. The slot pointer arrays are shared with the owner, so slots it allocates later are seen.
/// </summary>
public readonly unsafe struct KvCacheView
{
    readonly float*[] keys, values;
    readonly long planeFloats;

    /// <summary>A view over slot blocks <paramref name="keys"/> and <paramref name="values"/> (null until allocated).</summary>
    public KvCacheView(float*[] keys, float*[] values, int layers, int kvHeads, int positions, int headDim)
    {
        ArgumentNullException.ThrowIfNull(keys);
        ArgumentNullException.ThrowIfNull(values);
        if (keys.Length != values.Length || layers < 0 || kvHeads <= 0 || positions < 0 || headDim <= 0)
            throw new ArgumentException($"KvCacheView: invalid shape slots {keys.Length}/{values.Length}, layers {layers}, kvHeads {kvHeads}, positions {positions}, headDim {headDim}.");
        this.keys = keys; this.values = values;
        Layers = layers; KvHeads = kvHeads; Positions = positions; HeadDim = headDim;
        planeFloats = (long)positions * headDim;
    }

    /// <summary>Number of sequence slots.</summary>
    public int Slots => keys.Length;

    /// <summary>Layers per slot.</summary>
    public int Layers { get; }

    /// <summary>Key/value heads per layer.</summary>
    public int KvHeads { get; }

    /// <summary>Positions per plane (the context length).</summary>
    public int Positions { get; }

    /// <summary>Floats per position of one head.</summary>
    public int HeadDim { get; }

    /// <summary>Floats of one slot's keys (or values): layers × kvHeads × positions × headDim.</summary>
    public long SlotFloats => planeFloats * Layers * KvHeads;

    /// <summary>Start of the (Positions, HeadDim) key plane of one head.</summary>
    public float* Keys(int slot, int layer, int kvHead) => Plane(keys, slot, layer, kvHead);

    /// <summary>Start of the (Positions, HeadDim) value plane of one head.</summary>
    public float* Values(int slot, int layer, int kvHead) => Plane(values, slot, layer, kvHead);

    float* Plane(float*[] store, int slot, int layer, int kvHead)
    {
        if ((uint)slot >= (uint)store.Length) throw new ArgumentOutOfRangeException(nameof(slot), slot, $"KV cache: slot outside [0, {store.Length}).");
        float* s = store[slot];
        if (s == null) throw new InvalidOperationException($"KV cache: slot {slot} was not allocated (call Ensure).");
        return s + ((long)layer * KvHeads + kvHead) * planeFloats;
    }
}
