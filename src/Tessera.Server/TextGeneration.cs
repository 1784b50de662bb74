using System.Runtime.CompilerServices;
using Tessera.Inference;

namespace Tessera.Server;

/// <summary>A generation as the API sees it: prompt ids, token budget, sampling, stop strings and stop ids.</summary>
public sealed record TextRequest(IReadOnlyList<int> Prompt, int MaxTokens, SamplingOptions Sampling,
    IReadOnlyList<string> Stop, IReadOnlySet<int> StopIds, int TopLogprobs)
{
    /// <summary>Image patch vectors for the prompt's negative ids (see <see cref="GenerationRequest.InputVectors"/>).</summary>
    public float[]? InputVectors { get; init; }
    /// <summary>Bidirectional prompt prefix (see <see cref="GenerationRequest.PrefixLength"/>).</summary>
    public int PrefixLength { get; init; }
}

/// <summary>
/// One step of a generation: the text released by it (may be empty while UTF-8 or a possible stop
/// string is held back), the tokens it consumed (a terminating stop id is not included: its text
/// is not part of the reply), and on the last step the OpenAI finish reason (<c>stop</c> or <c>length</c>).
/// </summary>
public sealed record TextDelta(string Text, IReadOnlyList<TokenEvent> Tokens, string? FinishReason, int CompletionTokens);

/// <summary>
/// Runs a <see cref="TextRequest"/> on the engine and turns its token events into text deltas.
/// The one place stop strings are applied: when one appears, the engine sequence is cancelled so
/// its slot is freed at once rather than when the token budget runs out.
/// </summary>
public static class TextGeneration
{
    /// <summary>Streams the deltas; ends without a finish reason only when <paramref name="cancel"/> fires.</summary>
    public static async IAsyncEnumerable<TextDelta> StreamAsync(ServedModel model, TextRequest r, [EnumeratorCancellation] CancellationToken cancel = default)
    {
        using var sequence = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        var filter = new StopStringFilter(r.Stop);
        var request = new GenerationRequest(r.Prompt, r.MaxTokens, r.Sampling, r.StopIds, r.TopLogprobs) { InputVectors = r.InputVectors, PrefixLength = r.PrefixLength };
        int count = 0;
        bool finished = false;
        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        await foreach (var ev in model.Engine.GenerateAsync(request, sequence.Token))
        {
            if (ev.Finish == FinishReason.Cancelled) break;
            if (count == 0) ServerMetrics.FirstToken(System.Diagnostics.Stopwatch.GetElapsedTime(started));
            ServerMetrics.Tokens(1);
            count++;
            bool stopId = ev.Finish == FinishReason.Stop && r.StopIds.Contains(ev.Id);
            string text = stopId ? "" : filter.Push(model.TextBytes(ev.Id));
            IReadOnlyList<TokenEvent> tokens = stopId ? [] : [ev];
            if (filter.Stopped)
            {
                sequence.Cancel();   // frees the engine's slot now; the enumerator is disposed as we leave the loop
                yield return new TextDelta(text, tokens, "stop", count);
                finished = true;
                break;
            }
            if (ev.Finish != FinishReason.None)
            {
                yield return new TextDelta(text + filter.Flush(), tokens, ev.Finish == FinishReason.Stop ? "stop" : "length", count);
                finished = true;
                break;
            }
            yield return new TextDelta(text, tokens, null, count);
        }
        // A zero-token budget yields no events at all; that is a (trivially) finished completion.
        if (!finished && !cancel.IsCancellationRequested) yield return new TextDelta(filter.Flush(), [], "length", count);
    }
}
