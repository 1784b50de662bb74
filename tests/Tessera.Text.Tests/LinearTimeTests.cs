using System.Diagnostics;
using System.Text;

namespace Tessera.Text.Tests;

/// <summary>
/// Encoding must stay near-linear on adversarial input: 10 MB with no spaces, or one huge
/// "word". Normal: about 3 s of CPU for a 10 MB single piece (heap merge, O(n log n)) and
/// well under 1 s for ordinary text. The bound (60 s wall, so it holds on a loaded 2-core
/// machine with tests running in parallel) is far above that; tiktoken's quadratic scan
/// would need ~10^13 steps here, i.e. hours.
/// </summary>
public class LinearTimeTests
{
    private const int TenMB = 10 * 1024 * 1024;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    private static void Time(ITokenizer tok, string text, string what)
    {
        var sw = Stopwatch.StartNew();
        var ids = tok.Encode(text);
        sw.Stop();
        Assert.True(sw.Elapsed < Bound, $"{tok.Name} on {what}: {sw.Elapsed.TotalSeconds:F1} s for {text.Length:N0} chars");
        Assert.NotEmpty(ids);
    }

    private static string Repeat(string unit, int chars)
    {
        var sb = new StringBuilder(chars + unit.Length);
        while (sb.Length < chars) sb.Append(unit);
        return sb.ToString(0, chars);
    }

    [Fact]
    public void Trained_TenMegabyteSingleWord_IsNotQuadratic()
    {
        // One \p{L}+ pre-token of 10 MB: the merge of a single piece is the hot spot.
        Time(TestTokenizers.Trained, Repeat("thequickbrownfoxjumpsoverthelazydog", TenMB), "one 10 MB word");
    }

    [Fact]
    public void Trained_TenMegabytesOfOneLetter_IsNotQuadratic()
    {
        Time(TestTokenizers.Trained, new string('a', TenMB), "10 MB of 'a'");
    }

    [SharedDataFact("tokenizer/tiktoken/cl100k_base.tiktoken")]
    public void Cl100k_TenMegabytesWithoutSpaces_IsNotQuadratic()
    {
        Time(TestTokenizers.Cl100k!, Repeat("Lorem.ipsum,dolor;sit(amet)42", TenMB), "10 MB, punctuation and letters, no spaces");
    }

    [SharedDataFact("tokenizer/tiktoken/cl100k_base.tiktoken")]
    public void Cl100k_TenMegabytesOfSpacesThenAWord_IsNotQuadratic()
    {
        Time(TestTokenizers.Cl100k!, new string(' ', TenMB) + "x", "10 MB of spaces");
    }

    [Fact]
    public void HeapMerge_ScalesLinearly_OnLongPieces()
    {
        // 4× the piece: about 4× the time (n log n: 4.4×); a quadratic merge would take 16×. Bound: 10× (+0.2 s).
        var tok = TestTokenizers.Trained;
        var small = Encoding.UTF8.GetBytes(Repeat("abracadabra sail ", 1 << 18));
        var large = Encoding.UTF8.GetBytes(Repeat("abracadabra sail ", 1 << 20));
        tok.EncodePiece(small, []); // warm up
        // Best of three each: a wall-clock ratio on a shared 2-core machine is otherwise at the mercy of one
        // preemption or collection; the fastest run of each size is the one closest to the work itself.
        static double Best(BpeTokenizer t, byte[] piece)
        {
            double best = double.MaxValue;
            for (int i = 0; i < 3; i++)
            {
                var sw = Stopwatch.StartNew();
                t.EncodePiece(piece, []);
                best = Math.Min(best, sw.Elapsed.TotalSeconds);
            }
            return best;
        }
        double tSmall = Best(tok, small), tLarge = Best(tok, large);
        Assert.True(tLarge < 10 * tSmall + 0.2,
            $"4x input took {tLarge * 1000:F0} ms vs {tSmall * 1000:F0} ms (best of 3 each)");
    }
}
