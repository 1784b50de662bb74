namespace Tessera.Text;

/// <summary>A Hugging Face decoder step: token strings in, token strings out (joined at the end).</summary>
internal abstract class HfDecoder
{
    public abstract List<string> DecodeChain(List<string> tokens);

    /// <summary>ByteLevel: GPT-2 mapped characters back to bytes, read as UTF-8 (invalid sequences → U+FFFD).</summary>
    public sealed class ByteLevel : HfDecoder
    {
        public override List<string> DecodeChain(List<string> tokens) => [System.Text.Encoding.UTF8.GetString(Bytes(tokens))];

        /// <summary>The raw bytes (a token with a character outside the map contributes its own UTF-8).</summary>
        public static byte[] Bytes(List<string> tokens)
        {
            var bytes = new List<byte>();
            foreach (var t in tokens)
            {
                int mark = bytes.Count;
                bool ok = true;
                foreach (char c in t)
                {
                    if (!Gpt2ByteMap.TryByteOf(c, out byte b)) { ok = false; break; }
                    bytes.Add(b);
                }
                if (!ok) { bytes.RemoveRange(mark, bytes.Count - mark); bytes.AddRange(System.Text.Encoding.UTF8.GetBytes(t)); }
            }
            return bytes.ToArray();
        }
    }

    /// <summary>ByteFallback: runs of &lt;0xNN&gt; tokens become their UTF-8 text, or one U+FFFD per byte when invalid.</summary>
    public sealed class ByteFallback : HfDecoder
    {
        public override List<string> DecodeChain(List<string> tokens)
        {
            var output = new List<string>(tokens.Count);
            var pending = new List<byte>();
            void Flush()
            {
                if (pending.Count == 0) return;
                try { output.Add(StrictUtf8.GetString(pending.ToArray())); }
                catch (System.Text.DecoderFallbackException) { for (int k = 0; k < pending.Count; k++) output.Add("\uFFFD"); }
                pending.Clear();
            }
            foreach (var t in tokens)
            {
                if (t.Length == 6 && t.StartsWith("<0x", StringComparison.Ordinal) && t[5] == '>' && byte.TryParse(t.AsSpan(3, 2), System.Globalization.NumberStyles.HexNumber, null, out byte b))
                    pending.Add(b);
                else { Flush(); output.Add(t); }
            }
            Flush();
            return output;
        }

        private static readonly System.Text.Encoding StrictUtf8 = new System.Text.UTF8Encoding(false, throwOnInvalidBytes: true);
    }

    /// <summary>Fuse: all tokens into one.</summary>
    public sealed class Fuse : HfDecoder
    {
        public override List<string> DecodeChain(List<string> tokens) => [string.Concat(tokens)];
    }

    /// <summary>Strip: up to <c>start</c> leading and <c>stop</c> trailing <c>content</c> characters of each token.</summary>
    public sealed class Strip(char content, int start, int stop) : HfDecoder
    {
        public override List<string> DecodeChain(List<string> tokens)
        {
            var output = new List<string>(tokens.Count);
            foreach (var t in tokens)
            {
                int a = 0, b = t.Length;
                for (int k = 0; k < start && a < b && t[a] == content; k++) a++;
                for (int k = 0; k < stop && b > a && t[b - 1] == content; k++) b--;
                output.Add(t[a..b]);
            }
            return output;
        }
    }

    /// <summary>Replace: a literal or regex with content, in each token.</summary>
    public sealed class Replace(string? literal, System.Text.RegularExpressions.Regex? regex, string content) : HfDecoder
    {
        public override List<string> DecodeChain(List<string> tokens) => tokens.ConvertAll(t => HfNormalizer.Replace.Apply(t, literal, regex, content));
    }

    /// <summary>Metaspace: the replacement (▁) back to spaces; the first token's leading space dropped unless prepend_scheme is never.</summary>
    public sealed class Metaspace(char replacement, bool stripFirst) : HfDecoder
    {
        public override List<string> DecodeChain(List<string> tokens)
        {
            var output = new List<string>(tokens.Count);
            for (int i = 0; i < tokens.Count; i++)
            {
                string t = tokens[i].Replace(replacement, ' ');
                if (i == 0 && stripFirst && t.StartsWith(' ')) t = t[1..];
                output.Add(t);
            }
            return output;
        }
    }

    /// <summary>WordPiece: continuation pieces lose their prefix, others get a space; optional clean-up of spaces before punctuation.</summary>
    public sealed class WordPiece(string prefix, bool cleanup) : HfDecoder
    {
        public override List<string> DecodeChain(List<string> tokens)
        {
            var output = new List<string>(tokens.Count);
            for (int i = 0; i < tokens.Count; i++)
            {
                string t = tokens[i];
                if (i != 0) t = t.StartsWith(prefix, StringComparison.Ordinal) ? t[prefix.Length..] : " " + t;
                if (cleanup) t = Cleanup(t);
                output.Add(t);
            }
            return output;
        }

        private static string Cleanup(string s) => s.Replace(" .", ".").Replace(" ?", "?").Replace(" !", "!").Replace(" ,", ",").Replace(" ' ", "'")
            .Replace(" n't", "n't").Replace(" 'm", "'m").Replace(" do not", " don't").Replace(" 's", "'s").Replace(" 've", "'ve").Replace(" 're", "'re");
    }

    /// <summary>BPEDecoder: the end-of-word suffix becomes a space (none after the last token).</summary>
    public sealed class Bpe(string suffix) : HfDecoder
    {
        public override List<string> DecodeChain(List<string> tokens)
        {
            var output = new List<string>(tokens.Count);
            for (int i = 0; i < tokens.Count; i++) output.Add(tokens[i].Replace(suffix, i == tokens.Count - 1 ? "" : " "));
            return output;
        }
    }

    /// <summary>Applies decoders in order.</summary>
    public sealed class Sequence(IReadOnlyList<HfDecoder> steps) : HfDecoder
    {
        public IReadOnlyList<HfDecoder> Steps { get; } = steps;
        public override List<string> DecodeChain(List<string> tokens)
        {
            foreach (var s in Steps) tokens = s.DecodeChain(tokens);
            return tokens;
        }
    }
}
