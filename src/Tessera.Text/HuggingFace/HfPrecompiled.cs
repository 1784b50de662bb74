using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace Tessera.Text;

internal abstract partial class HfNormalizer
{
    /// <summary>
    /// <c>Precompiled</c>: the normalization rules SentencePiece compiles into a model
    /// (<c>precompiled_charsmap</c>, e.g. nmt_nfkc), as HF tokenizers applies them. The blob is a
    /// little-endian u32 byte length of a darts-clone double-array trie, the trie's u32 units, then
    /// the replacement strings, each ending in a zero byte; a trie key is UTF-8 input and its value
    /// the offset of its replacement. HF walks the text by extended grapheme cluster: a cluster under
    /// 6 UTF-8 bytes that has a key as a prefix becomes the replacement of the <em>shortest</em> such
    /// key (all of the cluster, whatever the key covered); otherwise each code point of the cluster
    /// is looked up the same way, or kept. With <c>longestPrefix</c> the rules run the way
    /// SentencePiece itself (and llama.cpp for GGUF <c>t5</c> vocabularies) runs them: left to
    /// right over the UTF-8 text, the longest key at each position is replaced, else one code point
    /// is kept.
    /// </summary>
    public sealed class Precompiled : HfNormalizer
    {
        private readonly uint[] _units;
        private readonly byte[] _replacements;
        private readonly bool _longestPrefix;

        public Precompiled(byte[] charsmap, string component, bool longestPrefix = false)
        {
            _longestPrefix = longestPrefix;
            if (charsmap.Length < 4) throw new FormatException($"{component}: precompiled_charsmap is {charsmap.Length} bytes; it must start with the trie's u32 length");
            uint trieBytes = BinaryPrimitives.ReadUInt32LittleEndian(charsmap);
            if (trieBytes == 0 || trieBytes % 4 != 0 || trieBytes > (uint)(charsmap.Length - 4))
                throw new FormatException($"{component}: precompiled_charsmap gives a trie of {trieBytes} bytes in a blob of {charsmap.Length}; expected a positive multiple of 4 that fits");
            _units = new uint[trieBytes / 4];
            for (int i = 0; i < _units.Length; i++) _units[i] = BinaryPrimitives.ReadUInt32LittleEndian(charsmap.AsSpan(4 + 4 * i));
            _replacements = charsmap[(4 + (int)trieBytes)..];
            try { new UTF8Encoding(false, throwOnInvalidBytes: true).GetCharCount(_replacements); }
            catch (DecoderFallbackException) { throw new FormatException($"{component}: precompiled_charsmap's replacement strings are not valid UTF-8"); }
        }

        private static bool HasLeaf(uint unit) => ((unit >> 8) & 1) == 1;
        private static uint Value(uint unit) => unit & ((1u << 31) - 1);
        private static uint Label(uint unit) => unit & ((1u << 31) | 0xFF);
        private static uint Offset(uint unit) => (unit >> 10) << (int)((unit & (1u << 9)) >> 6);

        /// <summary>The value of the shortest key that is a prefix of <paramref name="key"/>, or -1. A position outside the trie ends the walk (no match).</summary>
        private long ShortestPrefixValue(ReadOnlySpan<byte> key)
        {
            uint pos = Offset(_units[0]);
            foreach (byte c in key)
            {
                if (c == 0) break;
                pos ^= c;
                if (pos >= (uint)_units.Length) return -1;
                uint unit = _units[pos];
                if (Label(unit) != c) return -1;
                pos ^= Offset(unit);
                if (pos >= (uint)_units.Length) return -1;
                if (HasLeaf(unit)) return Value(_units[pos]);
            }
            return -1;
        }

        /// <summary>(length, value) of the longest key that is a prefix of <paramref name="key"/>; length 0 when none.</summary>
        private (int Length, long Value) LongestPrefix(ReadOnlySpan<byte> key)
        {
            (int, long) best = (0, -1);
            uint pos = Offset(_units[0]);
            for (int i = 0; i < key.Length; i++)
            {
                byte c = key[i];
                if (c == 0) break;
                pos ^= c;
                if (pos >= (uint)_units.Length) break;
                uint unit = _units[pos];
                if (Label(unit) != c) break;
                pos ^= Offset(unit);
                if (pos >= (uint)_units.Length) break;
                if (HasLeaf(unit)) best = (i + 1, Value(_units[pos]));
            }
            return best;
        }

        private string NormalizeLongestPrefix(string text)
        {
            byte[] utf8 = Encoding.UTF8.GetBytes(text);
            var output = new List<byte>(utf8.Length + 16);
            for (int at = 0; at < utf8.Length;)
            {
                var (length, value) = LongestPrefix(utf8.AsSpan(at));
                if (length > 0 && value >= 0 && value < _replacements.Length)
                {
                    var rest = _replacements.AsSpan((int)value);
                    int end = rest.IndexOf((byte)0);
                    foreach (byte b in end < 0 ? rest : rest[..end]) output.Add(b);
                    at += length;
                    continue;
                }
                // No rule: keep one code point (the text is valid UTF-8, so its length is in the lead byte).
                byte lead = utf8[at];
                int n = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
                for (int k = 0; k < n && at < utf8.Length; k++) output.Add(utf8[at++]);
            }
            return Encoding.UTF8.GetString(output.ToArray());
        }

        /// <summary>Appends the replacement of <paramref name="utf8"/>'s shortest matching prefix; false when none matches.</summary>
        private bool Transform(ReadOnlySpan<byte> utf8, StringBuilder output)
        {
            long at = ShortestPrefixValue(utf8);
            if (at < 0 || at > _replacements.Length) return false;
            int end = _replacements.AsSpan((int)at).IndexOf((byte)0);
            var replacement = end < 0 ? _replacements.AsSpan((int)at) : _replacements.AsSpan((int)at, end);
            output.Append(Encoding.UTF8.GetString(replacement));
            return true;
        }

        public override string Normalize(string text)
        {
            if (text.Length == 0) return text;
            if (_longestPrefix) return NormalizeLongestPrefix(text);
            var sb = new StringBuilder(text.Length + 16);
            Span<byte> buf = stackalloc byte[64];
            var clusters = StringInfo.GetTextElementEnumerator(text);
            while (clusters.MoveNext())
            {
                string cluster = (string)clusters.Current;
                int n = Encoding.UTF8.GetByteCount(cluster);
                if (n < 6)
                {
                    int len = Encoding.UTF8.GetBytes(cluster, buf);
                    if (Transform(buf[..len], sb)) continue;
                }
                foreach (var rune in cluster.EnumerateRunes())
                {
                    int len = rune.EncodeToUtf8(buf);
                    if (!Transform(buf[..len], sb)) sb.Append(rune.ToString());
                }
            }
            return sb.ToString();
        }
    }
}
