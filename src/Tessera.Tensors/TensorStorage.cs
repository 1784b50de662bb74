using System.Runtime.InteropServices;

namespace Tessera.Tensors;

/// <summary>
/// A 64-byte aligned native float buffer. One storage may back several tensors (an owner and
/// its views); only the owner frees it. After <see cref="Free"/> every tensor on it reports
/// itself disposed, so a stale view can never read freed memory.
/// </summary>
internal sealed unsafe class TensorStorage
{
    /// <summary>Cache-line (and AVX-512 vector) alignment of every buffer.</summary>
    public const int Alignment = 64;

    float* pointer;

    public TensorStorage(int length, bool zero)
    {
        if (length < 0) throw new ArgumentOutOfRangeException(nameof(length), length, "Tensor length must be non-negative.");
        Length = length;
        // AlignedAlloc(0) is allowed to return null; allocate one element so "null" always means freed.
        nuint bytes = (nuint)Math.Max(length, 1) * sizeof(float);
        pointer = (float*)NativeMemory.AlignedAlloc(bytes, Alignment);
        if (pointer == null) throw new OutOfMemoryException($"Could not allocate {bytes} bytes for a tensor.");
        if (zero) NativeMemory.Clear(pointer, bytes);
        GC.AddMemoryPressure((long)bytes);
    }

    /// <summary>Number of floats.</summary>
    public int Length { get; }

    public bool IsFreed => pointer == null;

    public float* Pointer => pointer;

    public void Free()
    {
        if (pointer == null) return;
        NativeMemory.AlignedFree(pointer);
        pointer = null;
        GC.RemoveMemoryPressure((long)Math.Max(Length, 1) * sizeof(float));
        GC.SuppressFinalize(this);
    }

    // A safety net for tensors that were never disposed; correct code disposes deterministically.
    ~TensorStorage() => Free();
}
