using Tessera.Kernels;

namespace Tessera.Inference;

/// <summary>Storage formats the engine can run weight matrices in.</summary>
public enum WeightFormat
{
    /// <summary>fp32 (<see cref="DenseWeights"/>).</summary>
    F32,
    /// <summary>ggml Q8_0: 32 int8 + one fp16 scale per block (8.5 bits per weight).</summary>
    Q8_0,
    /// <summary>ggml Q4_0: 32 4-bit codes + one fp16 scale per block (4.5 bits per weight).</summary>
    Q4_0,
    /// <summary>Tessera ternary {−1, 0, +1} with per-group absmean scales (≈2 bits per weight; for ternary-trained models).</summary>
    Ternary,
    /// <summary>ggml Q4_K: 256-weight super-blocks of 4-bit codes with 6-bit scales and mins (4.5 bits per weight).</summary>
    Q4_K,
    /// <summary>ggml Q5_K: as Q4_K with a fifth bit per code (5.5 bits per weight).</summary>
    Q5_K,
    /// <summary>ggml Q6_K: 256-weight super-blocks of 6-bit codes with int8 scales per 16 (6.5625 bits per weight).</summary>
    Q6_K,
}

/// <summary>
/// A quantized weight matrix (<see cref="Q8_0Matrix"/>, <see cref="Q4_0Matrix"/> or
/// <see cref="TernaryMatrix"/>) or the bytes of a ggml K-quant tensor (Q4_K, Q5_K, Q6_K) behind <see cref="IWeightMatrix"/>, so the forward pass runs on it
/// unchanged. Q8_0, Q4_0 and Q4_K run by default through <see cref="Int8Tiles"/>: the activations
/// rounded to int8 per 32-block once per product and integer dot products, as llama.cpp does (see
/// <see cref="Int8Activations"/>); on that path they are repacked once, on their first product, into
/// <see cref="Int8Panels"/> (kept beside the blocks). Otherwise (and always for Q5_K, Q6_K) they run through <see cref="QuantizedTiles"/>: the blocks are
/// expanded to fp32 in registers or L1 and multiplied in fp32, exactly the product with the dequantized
/// matrix (memory traffic is the quantized size; K-quants a 4-row tile of super-blocks expanded by
/// <see cref="KQuantExpand"/> at a time, never the whole matrix). Ternary uses the int8-activation dot products of
/// <see cref="TernaryMatrix"/>.
/// <see cref="Bytes"/> is what a decode step streams, which is the point: fewer bytes per token.
/// </summary>
public sealed unsafe class QuantizedWeights : IWeightMatrix
{
    readonly Q8_0Matrix? q8;
    readonly Q4_0Matrix? q4;
    readonly TernaryMatrix? ternary;
    readonly byte[]? kBlocks;       // K-quant super-blocks, row-major (each row Cols/256 blocks)
    float[]? scales;                // fp32 block scales for the fp32-expansion path (Q8_0, Q4_0), on its first product
    Int8Panels? panels;             // Q8_0/Q4_0 repacked for the int8 path, on its first product
    readonly long blockBytes;       // what the stored blocks (or super-blocks) take

    /// <summary>Runs a Q8_0 matrix (its blocks are read in place; the fp32 path also keeps the scales as fp32).</summary>
    public QuantizedWeights(Q8_0Matrix m)
    {
        q8 = m; Format = WeightFormat.Q8_0; Rows = m.Rows; Cols = m.Cols;
        blockBytes = m.Blocks.Length;
    }

    /// <summary>Runs a Q4_0 matrix (its blocks are read in place; the fp32 path also keeps the scales as fp32).</summary>
    public QuantizedWeights(Q4_0Matrix m)
    {
        q4 = m; Format = WeightFormat.Q4_0; Rows = m.Rows; Cols = m.Cols;
        blockBytes = m.Blocks.Length;
    }

    /// <summary>The fp16 scale at the head of every block, as fp32 (read once per block instead of converted).</summary>
    static float[] BlockScales(ReadOnlySpan<byte> blocks, int blockBytes)
    {
        var s = new float[blocks.Length / blockBytes];
        for (int b = 0; b < s.Length; b++) s[b] = QuantFormat.FromHalf(System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(blocks[(b * blockBytes)..]));
        return s;
    }
    /// <summary>Runs a (rows, cols) matrix stored as <paramref name="type"/> super-blocks (the bytes of a GGUF tensor, copied); cols must be a multiple of 256.</summary>
    public QuantizedWeights(KQuantType type, int rows, int cols, ReadOnlySpan<byte> blocks)
    {
        if (type is not (KQuantType.Q4_K or KQuantType.Q5_K or KQuantType.Q6_K))
            throw new ArgumentException($"QuantizedWeights: {type} is not run natively; dequantize it to fp32.");
        if (rows <= 0 || cols <= 0 || cols % KQuantFormat.SuperBlock != 0)
            throw new ArgumentException($"QuantizedWeights: a {type} matrix needs a positive row count and a width that is a multiple of {KQuantFormat.SuperBlock}; got ({rows}, {cols}).");
        long expected = KQuantFormat.Bytes(type, (long)rows * cols);
        if (blocks.Length != expected) throw new ArgumentException($"QuantizedWeights: {type} ({rows}, {cols}) needs {expected} bytes, got {blocks.Length}.");
        kBlocks = blocks.ToArray();
        Format = type switch { KQuantType.Q4_K => WeightFormat.Q4_K, KQuantType.Q5_K => WeightFormat.Q5_K, _ => WeightFormat.Q6_K };
        Rows = rows; Cols = cols; blockBytes = kBlocks.LongLength;
    }

    static TileFormat Tile(WeightFormat f) => f switch
    {
        WeightFormat.Q8_0 => TileFormat.Q8_0,
        WeightFormat.Q4_0 => TileFormat.Q4_0,
        WeightFormat.Q4_K => TileFormat.Q4_K,
        WeightFormat.Q5_K => TileFormat.Q5_K,
        WeightFormat.Q6_K => TileFormat.Q6_K,
        _ => throw new ArgumentException($"QuantizedWeights: {f} is not a tiled format."),
    };

    /// <summary>The K-quant type of a K-quant format; null for the others.</summary>
    public static KQuantType? KQuant(WeightFormat format) => format switch
    {
        WeightFormat.Q4_K => KQuantType.Q4_K,
        WeightFormat.Q5_K => KQuantType.Q5_K,
        WeightFormat.Q6_K => KQuantType.Q6_K,
        _ => null,
    };

    /// <summary>Runs a ternary matrix through its int8-activation dot products.</summary>
    public QuantizedWeights(TernaryMatrix m) { ternary = m; Format = WeightFormat.Ternary; Rows = m.Rows; Cols = m.Cols; blockBytes = m.Bytes; }

    /// <summary>Quantizes a row-major (rows, cols) fp32 matrix; cols must be a multiple of 32.</summary>
    public static QuantizedWeights Quantize(ReadOnlySpan<float> w, int rows, int cols, WeightFormat format, int ternaryGroup = 64) => format switch
    {
        WeightFormat.Q8_0 => new(Q8_0Matrix.FromFloat(w, rows, cols)),
        WeightFormat.Q4_0 => new(Q4_0Matrix.FromFloat(w, rows, cols)),
        WeightFormat.Ternary => new(TernaryMatrix.FromFloat(w, rows, cols, ternaryGroup)),
        WeightFormat.Q4_K or WeightFormat.Q5_K or WeightFormat.Q6_K => QuantizeK(KQuant(format)!.Value, w, rows, cols),
        _ => throw new ArgumentException($"QuantizedWeights: {format} is not a quantized format."),
    };

    static QuantizedWeights QuantizeK(KQuantType type, ReadOnlySpan<float> w, int rows, int cols)
    {
        if (w.Length != (long)rows * cols) throw new ArgumentException($"QuantizedWeights.Quantize: {w.Length} weights do not form ({rows}, {cols}).");
        if (cols % KQuantFormat.SuperBlock != 0) throw new ArgumentException($"QuantizedWeights.Quantize: {type} needs rows of a multiple of {KQuantFormat.SuperBlock} weights; got {cols}.");
        var bytes = new byte[KQuantFormat.Bytes(type, w.Length)];
        Tessera.Kernels.Reference.ScalarKQuant.Quantize(type, w, bytes);
        return new QuantizedWeights(type, rows, cols, bytes);
    }

    /// <summary>Q8_0, Q4_0 or K-quant matrices of one format and width stacked by rows (their blocks concatenated).</summary>
    public static QuantizedWeights Concatenate(params QuantizedWeights[] parts)
    {
        if (parts.Length == 0) throw new ArgumentException("QuantizedWeights.Concatenate: nothing to stack.");
        var format = parts[0].Format;
        int rows = 0, cols = parts[0].Cols;
        var bytes = new List<byte>();
        foreach (var p in parts)
        {
            if (p.Format != format || p.Cols != cols) throw new ArgumentException($"QuantizedWeights.Concatenate: {p.Format} ({p.Rows}, {p.Cols}) does not stack with {format} × {cols}.");
            rows += p.Rows;
            bytes.AddRange(format switch
            {
                WeightFormat.Q8_0 => p.q8!.Blocks.ToArray(),
                WeightFormat.Q4_0 => p.q4!.Blocks.ToArray(),
                WeightFormat.Q4_K or WeightFormat.Q5_K or WeightFormat.Q6_K => p.kBlocks!,
                _ => throw new ArgumentException($"QuantizedWeights.Concatenate: {format} scales are per group of the whole tensor; stack before quantizing."),
            });
        }
        var all = bytes.ToArray();
        if (KQuant(format) is KQuantType k) return new(k, rows, cols, all);
        return format == WeightFormat.Q8_0 ? new(new Q8_0Matrix(rows, cols, all)) : new(new Q4_0Matrix(rows, cols, all));
    }

    /// <summary>
    /// The process setting for <see cref="Int8Activations"/>, from the environment variable
    /// <c>TESSERA_QUANT_ACTIVATIONS</c> (read once): unset or <c>int8</c> = int8 for every format that has the kernel
    /// (Q8_0, Q4_0, Q4_K; measured, docs/inference.md: on 8-row panels each decodes batch 1 faster than on its fp32
    /// path); <c>f32</c> = fp32 for every format.
    /// </summary>
    public static readonly string ActivationSetting = Environment.GetEnvironmentVariable("TESSERA_QUANT_ACTIVATIONS") switch { "f32" => "f32", "int8" => "int8", _ => "auto" };

    /// <summary>Whether products with <paramref name="format"/> round activations to int8 unless a matrix says otherwise.</summary>
    public static bool DefaultInt8Activations(WeightFormat format) => ActivationSetting switch
    {
        "f32" => false,
        "int8" => true,
        _ => format is WeightFormat.Q8_0 or WeightFormat.Q4_0 or WeightFormat.Q4_K,
    };

    /// <summary>What quantized products run on by default, in words (benchmarks print it beside their figures).</summary>
    public static string DefaultActivationPath
    {
        get
        {
            if (ActivationSetting == "f32") return "fp32 activations, expanded weights (TESSERA_QUANT_ACTIVATIONS=f32)";
            if (!Int8Tiles.Supported(TileFormat.Q8_0)) return "fp32 activations, expanded weights (no AVX2 + FMA for int8 dot products)";
            string kernel = Int8Tiles.UsesVnni ? "AVX-VNNI vpdpbusd, 8-row panels" : "AVX2 vpmaddubsw + vpmaddwd, 8-row panels";
            return $"int8 activations per 32-block for Q8_0/Q4_0/Q4_K ({kernel}), fp32 for Q5_K/Q6_K; TESSERA_QUANT_ACTIVATIONS=f32 overrides";
        }
    }

    bool? int8Activations;

    /// <summary>
    /// Whether Q8_0, Q4_0 and Q4_K products round the activations to int8 per 32-block and use integer dot
    /// products (<see cref="Int8Tiles"/>, as llama.cpp does), or multiply the expanded weights in fp32
    /// (<see cref="QuantizedTiles"/>: exactly the product with the dequantized matrix). Either way a row's
    /// result does not depend on how many rows share the product. Default: <see cref="DefaultInt8Activations"/>
    /// of the format. Q5_K and Q6_K always take the fp32 path; ternary always rounds activations.
    /// </summary>
    public bool Int8Activations
    {
        get => int8Activations ?? DefaultInt8Activations(Format);
        set => int8Activations = value;
    }

    /// <summary>The storage format.</summary>
    public WeightFormat Format { get; }
    /// <inheritdoc />
    public int Rows { get; }
    /// <inheritdoc />
    public int Cols { get; }

    /// <summary>
    /// Bytes one full product reads: for Q8_0, Q4_0 and Q4_K on the int8 path the <see cref="Int8Panels"/> (rows padded
    /// to a multiple of 8; Q4_K's scales unpacked), for Q8_0 and Q4_0 on the fp32 path the blocks and the fp32 copy of
    /// their scales; otherwise the stored blocks.
    /// </summary>
    public long Bytes
    {
        get
        {
            if (Format is not (WeightFormat.Q8_0 or WeightFormat.Q4_0 or WeightFormat.Q4_K)) return blockBytes;
            if (Int8Activations && Int8Tiles.Supported(Tile(Format))) return Int8Panels.BytesFor(Tile(Format), Rows, Cols);
            return Format == WeightFormat.Q4_K ? blockBytes : blockBytes + (long)Rows * (Cols / QuantFormat.BlockSize) * sizeof(float);
        }
    }

    /// <summary>The fp32 matrix the codes represent.</summary>
    public float[] Dequantize()
    {
        if (kBlocks is null) return q8?.Dequantize() ?? q4?.Dequantize() ?? ternary!.Dequantize();
        var w = new float[(long)Rows * Cols];
        Tessera.Kernels.Reference.ScalarKQuant.Dequantize(KQuant(Format)!.Value, kBlocks, w);
        return w;
    }

    Int8Panels Publish(Int8Panels p) => Interlocked.CompareExchange(ref panels, p, null) ?? p;
    float[] Publish(float[] s) => Interlocked.CompareExchange(ref scales, s, null) ?? s;

    /// <inheritdoc />
    public void MatMul(ReadOnlySpan<float> x, int n, Span<float> y)
    {
        if (x.Length < (long)n * Cols || y.Length < (long)n * Rows)
            throw new ArgumentException($"QuantizedWeights.MatMul: x has {x.Length} (needs {n}×{Cols}), y has {y.Length} (needs {n}×{Rows}).");
        // The quantized kernels want exact extents; the engine's buffers are larger.
        var xs = x[..(n * Cols)];
        var ys = y[..(n * Rows)];
        bool int8 = Int8Activations && Format != WeightFormat.Ternary && Int8Tiles.Supported(Tile(Format));
        if (kBlocks is not null)
        {
            if (int8)
            {
                var packed = Volatile.Read(ref panels) ?? Publish(Int8Panels.Pack(Tile(Format), kBlocks, Rows, Cols));
                fixed (float* px = xs, py = ys)
                    Int8Tiles.Run(packed, px, n, py);
                return;
            }
            fixed (byte* blocks = kBlocks)
            fixed (float* px = xs, py = ys)
                QuantizedTiles.Run(Tile(Format), blocks, null, Rows, Cols, px, n, py);
            return;
        }
        if (Format is WeightFormat.Q8_0 or WeightFormat.Q4_0)
        {
            var raw = q8 is not null ? q8.Blocks : q4!.Blocks;
            // The int8 path runs on 8-row panels, repacked from the blocks on the first product (a racing second
            // pack builds the same bytes; the first one published wins).
            if (int8)
            {
                var packed = Volatile.Read(ref panels) ?? Publish(Int8Panels.Pack(Tile(Format), raw, Rows, Cols));
                fixed (float* px = xs, py = ys)
                    Int8Tiles.Run(packed, px, n, py);
                return;
            }
            var s = Volatile.Read(ref scales) ?? Publish(BlockScales(raw, q8 is not null ? QuantFormat.Q8_0BlockBytes : QuantFormat.Q4_0BlockBytes));
            fixed (byte* blocks = raw)
            fixed (float* px = xs, py = ys, ps = s)
                QuantizedTiles.Run(Tile(Format), blocks, ps, Rows, Cols, px, n, py);
            return;
        }
        if (q8 is not null) q8.MatMul(xs, n, ys);
        else if (q4 is not null) q4.MatMul(xs, n, ys);
        else ternary!.MatMul(xs, n, ys);
    }
}
