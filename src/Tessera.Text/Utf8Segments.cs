using System.Text;

namespace Tessera.Text;

/// <summary>
/// Walks raw bytes as alternating runs of well-formed UTF-8 and single invalid bytes, so
/// byte-level tokenizers can pre-tokenize the text runs and keep every other byte as is.
/// </summary>
public static class Utf8Segments
{
    /// <summary>
    /// Calls <paramref name="onText"/> for each maximal well-formed run (decoded) and
    /// <paramref name="onInvalid"/> for each byte of an ill-formed sequence.
    /// </summary>
    public static void Walk(ReadOnlySpan<byte> bytes, Action<string> onText, Action<byte> onInvalid)
    {
        int i = 0;
        while (i < bytes.Length)
        {
            int start = i;
            while (i < bytes.Length)
            {
                if (bytes[i] < 0x80) { i++; continue; }
                if (Rune.DecodeFromUtf8(bytes[i..], out _, out int used) != System.Buffers.OperationStatus.Done) break;
                i += used;
            }
            if (i > start) onText(Encoding.UTF8.GetString(bytes[start..i]));
            if (i < bytes.Length)
            {
                Rune.DecodeFromUtf8(bytes[i..], out _, out int bad);
                for (int k = 0; k < Math.Max(bad, 1); k++) onInvalid(bytes[i + k]);
                i += Math.Max(bad, 1);
            }
        }
    }
}
