namespace Tessera.Data.NGram;

/// <summary>
/// Suffix array construction by induced sorting (SA-IS, Nong, Zhang and Chan 2009): linear time
/// whatever the text, which matters here because a corpus repeated many times (or one with long
/// duplicated passages) makes every comparison-based suffix sort crawl through the repeats.
/// Suffixes are ordered as if the text ended with a sentinel smaller than every token, so a
/// suffix that is a prefix of another sorts first. <see cref="Naive"/> is the slow twin tests compare against.
/// </summary>
public static class SuffixArray
{
    /// <summary>The suffix array of <paramref name="text"/>, whose values lie in [0, <paramref name="alphabet"/>).</summary>
    public static int[] Build(ReadOnlySpan<int> text, int alphabet)
    {
        if (alphabet < 1) throw new ArgumentOutOfRangeException(nameof(alphabet), alphabet, "SuffixArray: the alphabet needs at least one symbol.");
        var s = text.ToArray();
        foreach (int c in s)
            if ((uint)c >= (uint)alphabet) throw new ArgumentOutOfRangeException(nameof(text), c, $"SuffixArray: symbol {c} is outside the alphabet [0, {alphabet}).");
        return Sais(s, alphabet - 1);
    }

    /// <summary>Sorts suffix start positions by direct comparison: O(n² log n), for tests only.</summary>
    public static int[] Naive(ReadOnlySpan<int> text)
    {
        var s = text.ToArray();
        var sa = new int[s.Length];
        for (int i = 0; i < sa.Length; i++) sa[i] = i;
        Array.Sort(sa, (a, b) =>
        {
            if (a == b) return 0;
            var x = s.AsSpan(a);
            var y = s.AsSpan(b);
            int c = x.SequenceCompareTo(y);
            return c;
        });
        return sa;
    }

    // Symbols in s lie in [0, upper]. L/S types are relative to a virtual sentinel after the end,
    // so the last position is always L-type.
    static int[] Sais(int[] s, int upper)
    {
        int n = s.Length;
        if (n == 0) return [];
        if (n == 1) return [0];
        if (n == 2) return s[0] < s[1] ? [0, 1] : [1, 0];
        var sa = new int[n];
        var isS = new bool[n];
        for (int i = n - 2; i >= 0; i--) isS[i] = s[i] == s[i + 1] ? isS[i + 1] : s[i] < s[i + 1];

        // bucketStart[c]: first slot of bucket c; sStart[c]: first slot of its S-type part (L-types come first).
        var bucketStart = new int[upper + 2];
        var sStart = new int[upper + 1];
        for (int i = 0; i < n; i++)
        {
            if (!isS[i]) sStart[s[i]]++;
            else bucketStart[s[i] + 1]++;
        }
        for (int c = 0; c <= upper; c++)
        {
            sStart[c] += bucketStart[c];
            bucketStart[c + 1] += sStart[c];
        }

        var cursor = new int[upper + 2];
        void Induce(ReadOnlySpan<int> lms)
        {
            Array.Fill(sa, -1);
            Array.Copy(sStart, cursor, upper + 1);
            foreach (int d in lms) sa[cursor[s[d]]++] = d;
            Array.Copy(bucketStart, cursor, upper + 2);
            sa[cursor[s[n - 1]]++] = n - 1;
            for (int i = 0; i < n; i++)
            {
                int v = sa[i];
                if (v >= 1 && !isS[v - 1]) sa[cursor[s[v - 1]]++] = v - 1;
            }
            Array.Copy(bucketStart, cursor, upper + 2);
            for (int i = n - 1; i >= 0; i--)
            {
                int v = sa[i];
                if (v >= 1 && isS[v - 1]) sa[--cursor[s[v - 1] + 1]] = v - 1;
            }
        }

        // LMS positions (an S-type right after an L-type) in text order, and each one's ordinal.
        var lmsIndex = new int[n];
        Array.Fill(lmsIndex, -1);
        int m = 0;
        for (int i = 1; i < n; i++) if (!isS[i - 1] && isS[i]) lmsIndex[i] = m++;
        var lms = new int[m];
        for (int i = 1, k = 0; i < n; i++) if (!isS[i - 1] && isS[i]) lms[k++] = i;
        Induce(lms);
        if (m == 0) return sa;

        // Name the LMS substrings in sorted order; equal substrings share a name.
        var sortedLms = new int[m];
        for (int i = 0, k = 0; i < n; i++) if (sa[i] >= 0 && lmsIndex[sa[i]] >= 0) sortedLms[k++] = sa[i];
        var reduced = new int[m];
        int name = 0;
        reduced[lmsIndex[sortedLms[0]]] = 0;
        for (int i = 1; i < m; i++)
        {
            int l = sortedLms[i - 1], r = sortedLms[i];
            int endL = lmsIndex[l] + 1 < m ? lms[lmsIndex[l] + 1] : n;
            int endR = lmsIndex[r] + 1 < m ? lms[lmsIndex[r] + 1] : n;
            bool same = endL - l == endR - r;
            if (same)
            {
                while (l < endL && s[l] == s[r]) { l++; r++; }
                if (l < endL || l == n || s[l] != s[r]) same = false;
            }
            if (!same) name++;
            reduced[lmsIndex[sortedLms[i]]] = name;
        }
        lmsIndex = null!;   // the largest scratch array; let the recursion reuse its memory
        var reducedSa = Sais(reduced, name);
        for (int i = 0; i < m; i++) sortedLms[i] = lms[reducedSa[i]];
        Induce(sortedLms);
        return sa;
    }
}
