using System.Text;

namespace Tessera.Server.Tests;

/// <summary>The incremental decoder with stop strings against the plain answer: decode everything, cut at the first stop.</summary>
public class StopStringFilterTests
{
    [Fact]
    public void ReleasedTextIsTheWholeDecodeCutAtTheFirstStopString()
    {
        var rng = new Random(1);
        string[] alphabet = ["a", "b", "ab", "é", "€", "😀", "\n", "STOP"];
        for (int trial = 0; trial < 2000; trial++)
        {
            var sb = new StringBuilder();
            int parts = rng.Next(0, 12);
            for (int i = 0; i < parts; i++) sb.Append(alphabet[rng.Next(alphabet.Length)]);
            byte[] bytes = Encoding.UTF8.GetBytes(sb.ToString());
            if (rng.Next(4) == 0 && bytes.Length > 0) bytes[rng.Next(bytes.Length)] = (byte)rng.Next(0x80, 0x100);   // sometimes broken UTF-8
            string[] stops = rng.Next(3) switch { 0 => [], 1 => ["STOP"], _ => ["b\na", "€😀", "ba"] };

            string full = new UTF8Encoding(false, false).GetString(bytes);
            int cut = -1;
            foreach (var s in stops) { int at = full.IndexOf(s, StringComparison.Ordinal); if (at >= 0 && (cut < 0 || at < cut)) cut = at; }
            string expected = cut >= 0 ? full[..cut] : full;

            var filter = new StopStringFilter(stops);
            var got = new StringBuilder();
            for (int at = 0; at < bytes.Length && !filter.Stopped;)
            {
                int n = Math.Min(rng.Next(1, 4), bytes.Length - at);   // random token boundaries, splitting characters
                string piece = filter.Push(bytes.AsSpan(at, n));
                got.Append(piece);
                Assert.True(expected.StartsWith(got.ToString(), StringComparison.Ordinal), $"released text past the answer in trial {trial}");
                at += n;
            }
            got.Append(filter.Flush());
            Assert.Equal(expected, got.ToString());
            Assert.Equal(cut >= 0, filter.Stopped);
        }
    }

    [Fact]
    public void EmptyStopStringsAreRejected() => Assert.Throws<ArgumentException>(() => new StopStringFilter([""]));
}
