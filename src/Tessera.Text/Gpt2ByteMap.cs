namespace Tessera.Text;

/// <summary>
/// GPT-2's reversible byte ↔ printable-character map, used by GGUF <c>gpt2</c> and Hugging
/// Face byte-level vocabularies to store token bytes as text (space is <c>Ġ</c>).
/// </summary>
public static class Gpt2ByteMap
{
    private static readonly char[] ByteToChar = Build();
    private static readonly Dictionary<char, byte> CharToByte = Invert();

    private static char[] Build()
    {
        var map = new char[256];
        var printable = new bool[256];
        for (int b = '!'; b <= '~'; b++) printable[b] = true;
        for (int b = 0xA1; b <= 0xAC; b++) printable[b] = true;
        for (int b = 0xAE; b <= 0xFF; b++) printable[b] = true;
        int n = 0;
        for (int b = 0; b < 256; b++) map[b] = printable[b] ? (char)b : (char)(256 + n++);
        return map;
    }

    private static Dictionary<char, byte> Invert()
    {
        var d = new Dictionary<char, byte>(256);
        for (int b = 0; b < 256; b++) d[ByteToChar[b]] = (byte)b;
        return d;
    }

    /// <summary>The printable character that stands for byte <paramref name="b"/>.</summary>
    public static char CharOf(byte b) => ByteToChar[b];

    /// <summary>The byte a printable character stands for; false when it is outside the map.</summary>
    public static bool TryByteOf(char c, out byte b) => CharToByte.TryGetValue(c, out b);

    /// <summary>Encodes bytes as GPT-2 printable characters.</summary>
    public static string ToText(ReadOnlySpan<byte> bytes)
    {
        var chars = new char[bytes.Length];
        for (int i = 0; i < bytes.Length; i++) chars[i] = ByteToChar[bytes[i]];
        return new string(chars);
    }

    /// <summary>Decodes GPT-2 printable characters to bytes; null when a character is outside the map.</summary>
    public static byte[]? ToBytes(string text)
    {
        var bytes = new byte[text.Length];
        for (int i = 0; i < text.Length; i++)
        {
            if (!CharToByte.TryGetValue(text[i], out byte b)) return null;
            bytes[i] = b;
        }
        return bytes;
    }
}
