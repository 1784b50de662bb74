using Tessera.Retrieval.Retro;
using Tessera.Text;

namespace Tessera.Retrieval.Tests;

/// <summary>Copy practice with scrambled numbers: digit tokens exchanged within their length, the neighbour still holding the target's tokens.</summary>
public class NumberScrambleTests
{
    // Years and sums often enough that the BPE merges some digit pairs ("19", "00", ...).
    static readonly string Text = string.Concat(Enumerable.Range(0, 200).Select(i =>
        $"In {1890 + i % 60} the Congress spent {i * 37 % 1000},000 dollars on {i % 7} new ships and {1900 + i % 45} roads. "));

    static readonly ITokenizer Bpe = BpeTrainer.Train([Text], new BpeTrainerOptions(300), out _);

    static bool Digits(byte[] b) => b.Length > 0 && b.All(c => c is >= (byte)'0' and <= (byte)'9');

    [Fact]
    public void Draw_permutes_digit_tokens_within_their_length_and_fixes_every_other_token()
    {
        var scramble = new NumberScramble(Bpe);
        var lengths = Enumerable.Range(0, Bpe.VocabSize).Where(scramble.IsNumber).Select(id => Bpe.DecodeBytes([id]).Length).Distinct().ToList();
        Assert.Contains(1, lengths);
        Assert.Contains(lengths, l => l > 1);   // the test means something only with multi-digit tokens
        Assert.Equal(Enumerable.Range(0, Bpe.VocabSize).Count(id => !Bpe.SpecialTokens.IsSpecial(id) && Digits(Bpe.DecodeBytes([id]))), scramble.NumberTokens);

        var rng = new Random(5);
        bool moved = false;
        for (int draw = 0; draw < 20; draw++)
        {
            var map = scramble.Draw(rng);
            Assert.Equal(Bpe.VocabSize, map.Length);
            Assert.Equal(map.Length, map.Distinct().Count());   // a bijection
            for (int id = 0; id < map.Length; id++)
            {
                if (!scramble.IsNumber(id)) { Assert.Equal(id, map[id]); continue; }
                Assert.True(scramble.IsNumber(map[id]));
                Assert.Equal(Bpe.DecodeBytes([id]).Length, Bpe.DecodeBytes([map[id]]).Length);
                moved |= map[id] != id;
            }
        }
        Assert.True(moved);
    }

    [Fact]
    public void A_scrambled_practice_example_keeps_the_targets_tokens_in_its_neighbour_and_changes_only_digits()
    {
        const int C = 16;
        var scramble = new NumberScramble(Bpe);
        int[] doc = [.. Bpe.Encode(Text)];
        // An example as lab retro builds it: chunks u−1, u, u+1 of the document, the neighbour a 2C window
        // of the same text starting at a shift inside chunk u (reading practice).
        int u = 3, shift = 5;
        var own = doc.AsSpan((u - 1) * C, 3 * C).ToArray();
        var window = doc.AsSpan(u * C + shift, 2 * C).ToArray();
        Assert.True(scramble.Touches(own));
        var rng = new Random(11);
        var map = scramble.Draw(rng);
        var ownS = NumberScramble.Apply(map, own);
        var windowS = NumberScramble.Apply(map, window);

        // The neighbour holds the scrambled target token for token where the two overlap (chunks u and
        // u+1 from the shift on).
        Assert.Equal(ownS.AsSpan(C + shift).ToArray(), windowS.AsSpan(0, 2 * C - shift).ToArray());
        // Only digit tokens moved, and to digit tokens of their length: the text is the same but for digits.
        string before = Bpe.Decode(own), after = Bpe.Decode(ownS);
        Assert.Equal(before.Length, after.Length);
        for (int i = 0; i < before.Length; i++)
            if (before[i] != after[i]) { Assert.True(char.IsAsciiDigit(before[i])); Assert.True(char.IsAsciiDigit(after[i])); }
        Assert.NotEqual(before, after);   // this draw changes a number (fixed seed; 10! orders of the single digits)
        // Tokens outside the map are refused with a clear error.
        Assert.Throws<ArgumentOutOfRangeException>(() => NumberScramble.Apply(map, [Bpe.VocabSize]));
    }
}
