namespace Tessera.Kernels;

/// <summary>Shape and length checks shared by the fast kernels, with messages naming the op and shape.</summary>
internal static class SpanChecks
{
    /// <summary>Throws unless <paramref name="value"/> ≥ 0.</summary>
    public static void NonNegative(int value, string op, string name)
    {
        if (value < 0) throw new ArgumentOutOfRangeException(name, value, $"{op}: {name} must be non-negative, got {value}.");
    }

    /// <summary>Throws unless a span named <paramref name="name"/> holds at least <paramref name="needed"/> elements.</summary>
    public static void Length(int length, long needed, string op, string name, string shape)
    {
        if (length < needed)
            throw new ArgumentException($"{op}: {name} has {length} elements but shape {shape} needs {needed}.", name);
    }
}
