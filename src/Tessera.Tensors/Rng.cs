namespace Tessera.Tensors;

/// <summary>The four words of an <see cref="Rng"/>'s state; save it to resume a stream exactly.</summary>
public readonly record struct RngState(ulong S0, ulong S1, ulong S2, ulong S3)
{
    /// <summary>32 little-endian bytes.</summary>
    public byte[] ToBytes()
    {
        var b = new byte[32];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(0), S0);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(8), S1);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(16), S2);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(24), S3);
        return b;
    }

    /// <summary>Reads the 32 bytes written by <see cref="ToBytes"/>.</summary>
    public static RngState FromBytes(ReadOnlySpan<byte> b)
    {
        if (b.Length != 32) throw new ArgumentException($"RngState: expected 32 bytes, got {b.Length}.");
        return new RngState(
            System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(b),
            System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(b[8..]),
            System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(b[16..]),
            System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(b[24..]));
    }
}

/// <summary>
/// Seeded, platform-independent random numbers: xoshiro256** (Blackman &amp; Vigna) seeded through
/// splitmix64. Same seed ⇒ same sequence on every machine and thread count, because fills run on
/// the calling thread only. Normals use Box–Muller on two 53-bit uniforms and cache nothing, so
/// <see cref="State"/> alone captures the stream.
/// </summary>
public sealed class Rng
{
    ulong s0, s1, s2, s3;

    /// <summary>Seeds the generator; any seed (including 0) gives a full-period state.</summary>
    public Rng(ulong seed)
    {
        ulong x = seed;
        s0 = SplitMix(ref x); s1 = SplitMix(ref x); s2 = SplitMix(ref x); s3 = SplitMix(ref x);
    }

    /// <summary>The full generator state (get to save, set to restore).</summary>
    public RngState State
    {
        get => new(s0, s1, s2, s3);
        set
        {
            if ((value.S0 | value.S1 | value.S2 | value.S3) == 0) throw new ArgumentException("Rng: the all-zero state is invalid for xoshiro256**.");
            (s0, s1, s2, s3) = (value.S0, value.S1, value.S2, value.S3);
        }
    }

    static ulong SplitMix(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Next 64 random bits.</summary>
    public ulong NextUInt64()
    {
        ulong result = ulong.RotateLeft(s1 * 5, 7) * 9;
        ulong t = s1 << 17;
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3;
        s2 ^= t;
        s3 = ulong.RotateLeft(s3, 45);
        return result;
    }

    /// <summary>Uniform double in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform float in [0, 1) with 24 random bits.</summary>
    public float NextFloat() => (NextUInt64() >> 40) * (1f / (1 << 24));

    /// <summary>Uniform integer in [0, <paramref name="maxExclusive"/>), unbiased (Lemire's method).</summary>
    public int NextInt(int maxExclusive)
    {
        if (maxExclusive <= 0) throw new ArgumentOutOfRangeException(nameof(maxExclusive), maxExclusive, "Rng.NextInt: bound must be positive.");
        ulong n = (ulong)maxExclusive;
        while (true)
        {
            ulong hi = Math.BigMul(NextUInt64(), n, out ulong lo);
            if (lo >= (0UL - n) % n) return (int)hi;
        }
    }

    /// <summary>Standard normal (Box–Muller, one draw per two uniforms).</summary>
    public double NextNormal()
    {
        double u1 = 1.0 - NextDouble(); // (0, 1], keeps log finite
        double u2 = NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    /// <summary>Fills with uniform values in [lo, hi).</summary>
    public void FillUniform(Span<float> x, float lo = 0f, float hi = 1f)
    {
        for (int i = 0; i < x.Length; i++) x[i] = (float)(lo + (hi - (double)lo) * NextDouble());
    }

    /// <summary>Fills with normal values of the given mean and standard deviation.</summary>
    public void FillNormal(Span<float> x, float mean = 0f, float std = 1f)
    {
        for (int i = 0; i < x.Length; i++) x[i] = (float)(mean + std * NextNormal());
    }

    /// <summary>Fills a contiguous tensor with uniform values in [lo, hi).</summary>
    public void FillUniform(Tensor t, float lo = 0f, float hi = 1f) => FillUniform(t.AsSpan("Rng.FillUniform"), lo, hi);

    /// <summary>Fills a contiguous tensor with normal values.</summary>
    public void FillNormal(Tensor t, float mean = 0f, float std = 1f) => FillNormal(t.AsSpan("Rng.FillNormal"), mean, std);
}
