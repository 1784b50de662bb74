using System.Diagnostics;
using System.Text;

namespace Tessera.Inference;

/// <summary>Phases of an engine step that <see cref="DecodeProfile"/> times.</summary>
public enum DecodePhase
{
    /// <summary>Token embedding lookup (or copying caller-supplied vectors).</summary>
    Embed,
    /// <summary>RMSNorm before attention, MLP and head.</summary>
    Norm,
    /// <summary>Query, key and value projections.</summary>
    Qkv,
    /// <summary>Rotary embedding and the write of keys and values into the cache.</summary>
    RopeCache,
    /// <summary>Attention over the cached positions.</summary>
    Attention,
    /// <summary>Attention output projection.</summary>
    OutProj,
    /// <summary>MoE router logits and top-k selection.</summary>
    Router,
    /// <summary>Gate and up projections of the MLP or experts.</summary>
    GateUp,
    /// <summary>The gated activation.</summary>
    SwiGlu,
    /// <summary>Down projection of the MLP or experts.</summary>
    Down,
    /// <summary>Output head (logits over the vocabulary).</summary>
    Head,
    /// <summary>Continuous-batching bookkeeping: admitting, ordering and retiring sequences.</summary>
    Schedule,
    /// <summary>Drawing the next token from the logits.</summary>
    Sample,
    /// <summary>Building the token events handed to callers.</summary>
    Events,
    /// <summary>Draft-model steps of speculative decoding.</summary>
    Draft,
    /// <summary>Target-model verification of drafted tokens.</summary>
    Verify,
    /// <summary>Number of phases (not a phase).</summary>
    Count
}

/// <summary>
/// Per-phase wall time of the forward pass and the engines' per-token work, on only when the
/// environment variable <c>TESSERA_DECODE_PROFILE=1</c> is set (read once; when off every mark is a
/// test of a static readonly flag the JIT folds away). Meant for one engine at a time: counters
/// are plain adds. The decode benchmark prints <see cref="Report"/> when it is on.
/// </summary>
public static class DecodeProfile
{
    /// <summary>Whether timing is on (<c>TESSERA_DECODE_PROFILE=1</c>).</summary>
    public static readonly bool Enabled = Environment.GetEnvironmentVariable("TESSERA_DECODE_PROFILE") == "1";

    static readonly long[] ticks = new long[(int)DecodePhase.Count];
    static readonly long[] calls = new long[(int)DecodePhase.Count];

    /// <summary>A timestamp to pass to <see cref="Add"/> (0 when off).</summary>
    public static long Start() => Enabled ? Stopwatch.GetTimestamp() : 0;

    /// <summary>Charges the time since <paramref name="start"/> to <paramref name="phase"/> and returns now, so marks chain.</summary>
    public static long Add(DecodePhase phase, long start)
    {
        if (!Enabled) return 0;
        long now = Stopwatch.GetTimestamp();
        ticks[(int)phase] += now - start;
        calls[(int)phase]++;
        return now;
    }

    /// <summary>Milliseconds charged to <paramref name="phase"/> since the last <see cref="Reset"/>.</summary>
    public static double Milliseconds(DecodePhase phase) => ticks[(int)phase] * 1000.0 / Stopwatch.Frequency;

    /// <summary>Clears the counters.</summary>
    public static void Reset() { Array.Clear(ticks); Array.Clear(calls); }

    /// <summary>One line per phase: milliseconds, share of the total, calls.</summary>
    public static string Report()
    {
        long total = 0;
        foreach (long t in ticks) total += t;
        var sb = new StringBuilder();
        for (int p = 0; p < ticks.Length; p++)
        {
            if (calls[p] == 0) continue;
            sb.AppendLine($"  {(DecodePhase)p,-10} {ticks[p] * 1000.0 / Stopwatch.Frequency,9:F1} ms {100.0 * ticks[p] / Math.Max(1, total),5:F1}%  {calls[p],8} calls");
        }
        return sb.ToString();
    }
}
