namespace Tessera.Tensors;

/// <summary>
/// All parameters of an optimizer cut into fixed-size chunks: the unit of work that the
/// memory-bound optimizer loops (<see cref="AdamW"/>, <see cref="GradClip"/>) hand to the worker
/// pool. Chunk boundaries depend only on the parameter sizes, never on the thread count, so a
/// reduction done per chunk and then summed in chunk order gives the same bits on any thread count.
/// </summary>
internal readonly struct ParameterChunks
{
    /// <summary>Floats per chunk: 64 KiB of each stream, big enough to amortise a pool hand-off.</summary>
    public const int ChunkFloats = 1 << 14;

    readonly int[] param, start, length;

    ParameterChunks(int[] param, int[] start, int[] length) { this.param = param; this.start = start; this.length = length; }

    /// <summary>Number of chunks.</summary>
    public int Count => param.Length;

    /// <summary>The chunks of <paramref name="parameters"/> in parameter order (lengths 0 give none).</summary>
    public static ParameterChunks Of(IReadOnlyList<Tensor> parameters)
    {
        int count = 0;
        for (int i = 0; i < parameters.Count; i++) count += (parameters[i].Length + ChunkFloats - 1) / ChunkFloats;
        var p = new int[count]; var s = new int[count]; var l = new int[count];
        int c = 0;
        for (int i = 0; i < parameters.Count; i++)
            for (int at = 0; at < parameters[i].Length; at += ChunkFloats, c++)
            {
                p[c] = i; s[c] = at; l[c] = Math.Min(ChunkFloats, parameters[i].Length - at);
            }
        return new ParameterChunks(p, s, l);
    }

    /// <summary>Chunk <paramref name="c"/>: which parameter, and the element range inside it.</summary>
    public (int Parameter, int Start, int Length) this[int c] => (param[c], start[c], length[c]);

    /// <summary>Total floats over all chunks.</summary>
    public long Elements
    {
        get { long n = 0; foreach (int x in length) n += x; return n; }
    }
}
