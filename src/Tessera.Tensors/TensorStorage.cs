namespace Tessera.Tensors;

/// <summary>
/// A 64-byte aligned native float buffer (from <see cref="BufferPool"/>). One storage may back
/// several tensors (an owner and its views); only the owner frees it. After <see cref="Free"/>
/// every tensor on it reports itself disposed, so a stale view can never read freed memory
/// (or a buffer the pool has since handed to another tensor).
/// </summary>
internal sealed unsafe class TensorStorage
{
    /// <summary>Cache-line (and AVX-512 vector) alignment of every buffer.</summary>
    public const int Alignment = BufferPool.Alignment;

    float* pointer;
    readonly int capacity;   // the pool's size class this buffer came from

    public TensorStorage(int length, bool zero)
    {
        if (length < 0) throw new ArgumentOutOfRangeException(nameof(length), length, "Tensor length must be non-negative.");
        Length = length;
        // One element at least, so "null" always means freed.
        pointer = BufferPool.Rent(length, zero, out capacity);
    }

    /// <summary>Number of floats.</summary>
    public int Length { get; }

    public bool IsFreed => pointer == null;

    public float* Pointer => pointer;

    public void Free()
    {
        if (pointer == null) return;
        BufferPool.Return(pointer, capacity);
        pointer = null;
        GC.SuppressFinalize(this);
    }

    // A safety net for tensors that were never disposed; correct code disposes deterministically.
    ~TensorStorage() => Free();
}
