using System.Text;

namespace Tessera.Kernels;

/// <summary>Shape and length checks shared by the fast kernels, with messages naming the op and shape.</summary>
/// <remarks>The shape is passed as its dimensions (no string) so a passing check allocates nothing.</remarks>
internal static class SpanChecks
{
    /// <summary>Throws unless <paramref name="value"/> ≥ 0.</summary>
    public static void NonNegative(int value, string op, string name)
    {
        if (value < 0) throw new ArgumentOutOfRangeException(name, value, $"{op}: {name} must be non-negative, got {value}.");
    }

    /// <summary>Throws unless a span named <paramref name="name"/> holds at least <paramref name="needed"/> elements.</summary>
    public static void Length(int length, long needed, string op, string name, params ReadOnlySpan<int> shape)
    {
        if (length < needed) ThrowTooShort(length, needed, op, name, shape);
    }

    static void ThrowTooShort(int length, long needed, string op, string name, ReadOnlySpan<int> shape)
    {
        var text = new StringBuilder("(");
        for (int i = 0; i < shape.Length; i++) text.Append(i == 0 ? "" : ", ").Append(shape[i]);
        throw new ArgumentException($"{op}: {name} has {length} elements but shape {text.Append(')')} needs {needed}.", name);
    }
}
