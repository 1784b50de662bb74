namespace Tessera.Tensors;

/// <summary>
/// An fp32 n-dimensional array: a shape, element strides and an offset into a 64-byte aligned
/// native buffer. A tensor either owns its buffer or is a view of another tensor's buffer.
/// Disposal is deterministic: <see cref="Dispose"/> frees an owner's buffer at once, after which
/// the tensor and all its views throw <see cref="ObjectDisposedException"/> naming the op that
/// touched them. Autograd state (<see cref="RequiresGrad"/>, <see cref="Grad"/>) lives here too;
/// the ops live on <see cref="Graph"/>.
/// </summary>
public sealed unsafe class Tensor : IDisposable
{
    readonly TensorStorage storage;
    readonly int offset;
    readonly int[] shape;
    readonly int[] strides;
    readonly bool ownsStorage;
    bool disposed;

    Tensor(TensorStorage storage, int offset, int[] shape, int[] strides, bool ownsStorage, string? name)
    {
        this.storage = storage;
        this.offset = offset;
        this.shape = shape;
        this.strides = strides;
        this.ownsStorage = ownsStorage;
        Name = name ?? "tensor";
        Length = ElementCount(shape);
    }

    /// <summary>Human-readable name used in error messages (parameter name, or the op that made it).</summary>
    public string Name { get; set; }

    /// <summary>Number of elements (product of the shape; 1 for a rank-0 scalar).</summary>
    public int Length { get; }

    /// <summary>Number of dimensions.</summary>
    public int Rank => shape.Length;

    /// <summary>Size of each dimension.</summary>
    public ReadOnlySpan<int> Shape => shape;

    /// <summary>Element stride of each dimension.</summary>
    public ReadOnlySpan<int> Strides => strides;

    /// <summary>True when the elements are laid out row-major without gaps.</summary>
    public bool IsContiguous
    {
        get
        {
            int expected = 1;
            for (int i = shape.Length - 1; i >= 0; i--)
            {
                if (shape[i] != 1 && strides[i] != expected) return false;
                expected *= shape[i];
            }
            return true;
        }
    }

    /// <summary>True when this tensor shares another tensor's buffer.</summary>
    public bool IsView => !ownsStorage;

    /// <summary>True once this tensor (or, for a view, its owner) has been disposed.</summary>
    public bool IsDisposed => disposed || storage.IsFreed;

    /// <summary>When true, <see cref="Graph.Backward"/> accumulates a gradient into <see cref="Grad"/>.</summary>
    public bool RequiresGrad { get; set; }

    /// <summary>Accumulated gradient (same shape), allocated on first backward; owned and disposed with this tensor.</summary>
    public Tensor? Grad { get; internal set; }

    /// <summary>The shape as text, e.g. <c>(2, 8, 32)</c>.</summary>
    public string ShapeString => FormatShape(shape);

    /// <summary>Size of dimension <paramref name="axis"/>; negative axes count from the end.</summary>
    public int Dim(int axis)
    {
        int a = axis < 0 ? axis + shape.Length : axis;
        if ((uint)a >= (uint)shape.Length)
            throw new ArgumentOutOfRangeException(nameof(axis), axis, $"Tensor '{Name}' {ShapeString} has no axis {axis}.");
        return shape[a];
    }

    /// <summary>An uninitialized tensor (contents are whatever the allocator returned).</summary>
    public static Tensor Empty(ReadOnlySpan<int> shape, string? name = null) => Allocate(shape, zero: false, name);

    /// <summary>A tensor of zeros.</summary>
    public static Tensor Zeros(ReadOnlySpan<int> shape, string? name = null) => Allocate(shape, zero: true, name);

    /// <summary>A tensor holding a copy of <paramref name="data"/>, whose length must match the shape.</summary>
    public static Tensor FromArray(ReadOnlySpan<float> data, ReadOnlySpan<int> shape, string? name = null)
    {
        var t = Allocate(shape, zero: false, name);
        if (data.Length != t.Length)
        {
            t.Dispose();
            throw new ArgumentException($"FromArray: {data.Length} values do not fill shape {FormatShape(shape)} ({ElementCount(shape)} elements).");
        }
        data.CopyTo(t.AsSpan("FromArray"));
        return t;
    }

    /// <summary>A rank-0 tensor holding one value.</summary>
    public static Tensor Scalar(float value, string? name = null) => FromArray([value], [], name);

    static Tensor Allocate(ReadOnlySpan<int> shape, bool zero, string? name)
    {
        foreach (int d in shape)
            if (d < 0) throw new ArgumentException($"Tensor shape {FormatShape(shape)} has a negative dimension.");
        var s = shape.ToArray();
        return new Tensor(new TensorStorage(ElementCount(s), zero), 0, s, ContiguousStrides(s), ownsStorage: true, name);
    }

    /// <summary>
    /// The elements as a span. Only contiguous tensors have one; <paramref name="op"/> names the
    /// caller in the exception thrown for a disposed or strided tensor.
    /// </summary>
    public Span<float> AsSpan(string op = "AsSpan")
    {
        ThrowIfUnusable(op);
        if (!IsContiguous)
            throw new InvalidOperationException($"{op}: tensor '{Name}' {ShapeString} with strides {FormatShape(strides)} is not contiguous; copy it first (Graph.Permute or Contiguous()).");
        return new Span<float>(storage.Pointer + offset, Length);
    }

    /// <summary>Pointer to the first element (no contiguity check; strides apply).</summary>
    internal float* Pointer(string op)
    {
        ThrowIfUnusable(op);
        return storage.Pointer + offset;
    }

    /// <summary>The single value of a one-element tensor.</summary>
    public float Item()
    {
        if (Length != 1) throw new InvalidOperationException($"Item: tensor '{Name}' {ShapeString} has {Length} elements, not 1.");
        return *Pointer("Item");
    }

    /// <summary>Copies the elements out in row-major order (works for strided views too).</summary>
    public float[] ToArray()
    {
        var result = new float[Length];
        fixed (float* dst = result) StridedCopy.Copy(Pointer("ToArray"), shape, strides, dst, accumulate: false);
        return result;
    }

    /// <summary>A contiguous copy (a fresh owner), whatever this tensor's strides.</summary>
    public Tensor Contiguous()
    {
        var t = Allocate(shape, zero: false, Name);
        StridedCopy.Copy(Pointer("Contiguous"), shape, strides, t.storage.Pointer, accumulate: false);
        return t;
    }

    /// <summary>
    /// A view with a new shape over the same elements (no copy, not recorded for autograd; use
    /// <see cref="Graph.Reshape"/> inside a graph). One dimension may be -1.
    /// </summary>
    public Tensor View(ReadOnlySpan<int> newShape)
    {
        ThrowIfUnusable("View");
        var s = ResolveShape("View", newShape);
        if (!IsContiguous)
            throw new InvalidOperationException($"View: tensor '{Name}' {ShapeString} is not contiguous, so it cannot be viewed as {FormatShape(s)}.");
        return new Tensor(storage, offset, s, ContiguousStrides(s), ownsStorage: false, Name);
    }

    /// <summary>A strided view with the axes reordered (no copy, not contiguous in general).</summary>
    public Tensor Permuted(ReadOnlySpan<int> perm)
    {
        ThrowIfUnusable("Permuted");
        CheckPermutation("Permuted", perm);
        var s = new int[perm.Length]; var st = new int[perm.Length];
        for (int i = 0; i < perm.Length; i++) { s[i] = shape[perm[i]]; st[i] = strides[perm[i]]; }
        return new Tensor(storage, offset, s, st, ownsStorage: false, Name);
    }

    /// <summary>Sets the gradient to zero (keeps its buffer).</summary>
    public void ZeroGrad()
    {
        if (Grad is { } g) g.AsSpan("ZeroGrad").Clear();
    }

    /// <summary>Frees the buffer (owners) and the gradient. Further use throws.</summary>
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        Grad?.Dispose();
        Grad = null;
        if (ownsStorage) storage.Free();
    }

    /// <inheritdoc/>
    public override string ToString() => $"Tensor '{Name}' {ShapeString}{(IsDisposed ? " (disposed)" : "")}";

    internal void ThrowIfUnusable(string op)
    {
        if (disposed)
            throw new ObjectDisposedException(Name, $"{op}: tensor '{Name}' {ShapeString} was used after Dispose().");
        if (storage.IsFreed)
            throw new ObjectDisposedException(Name, $"{op}: tensor '{Name}' {ShapeString} is a view whose owner was disposed.");
    }

    internal int[] ResolveShape(string op, ReadOnlySpan<int> newShape)
    {
        var s = newShape.ToArray();
        int unknown = -1; long known = 1;
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] == -1)
            {
                if (unknown >= 0) throw new ArgumentException($"{op}: shape {FormatShape(s)} has more than one -1.");
                unknown = i;
            }
            else if (s[i] < 0) throw new ArgumentException($"{op}: shape {FormatShape(s)} has a negative dimension.");
            else known *= s[i];
        }
        if (unknown >= 0 && known > 0 && Length % known == 0) s[unknown] = (int)(Length / known);
        if (ElementCount(s) != Length || (unknown >= 0 && known == 0))
            throw new ArgumentException($"{op}: cannot reshape tensor '{Name}' {ShapeString} ({Length} elements) to {FormatShape(newShape)}.");
        return s;
    }

    internal void CheckPermutation(string op, ReadOnlySpan<int> perm)
    {
        bool ok = perm.Length == shape.Length;
        Span<bool> seen = stackalloc bool[Math.Max(perm.Length, 1)];
        for (int i = 0; ok && i < perm.Length; i++)
        {
            ok = (uint)perm[i] < (uint)shape.Length && !seen[perm[i]];
            if (ok) seen[perm[i]] = true;
        }
        if (!ok) throw new ArgumentException($"{op}: {FormatShape(perm)} is not a permutation of the axes of tensor '{Name}' {ShapeString}.");
    }

    internal static int[] ContiguousStrides(ReadOnlySpan<int> shape)
    {
        var st = new int[shape.Length];
        int s = 1;
        for (int i = shape.Length - 1; i >= 0; i--) { st[i] = s; s *= shape[i]; }
        return st;
    }

    internal static int ElementCount(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (int d in shape) n *= d;
        if (n > int.MaxValue) throw new ArgumentException($"Tensor shape {FormatShape(shape)} has more than {int.MaxValue} elements.");
        return (int)n;
    }

    /// <summary>Formats a shape as <c>(a, b, c)</c>.</summary>
    public static string FormatShape(ReadOnlySpan<int> shape)
    {
        var sb = new System.Text.StringBuilder("(");
        for (int i = 0; i < shape.Length; i++) { if (i > 0) sb.Append(", "); sb.Append(shape[i]); }
        return sb.Append(')').ToString();
    }
}
