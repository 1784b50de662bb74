using System.Runtime.CompilerServices;
using Tessera.Inference;
using Tessera.Model;
using Tessera.Text;

namespace Tessera.Server.Tests;

/// <summary>A tiny randomly initialised MoE model with the byte tokenizer: fast enough to run a real server in tests.</summary>
public static class TestModel
{
    public static readonly ITokenizer Tokenizer = TokenizerFiles.Load("bytes");

    public static ModelConfig Config(int context = 96) => new()
    {
        VocabSize = Tokenizer.VocabSize, Dim = 32, Layers = 2, Heads = 2, KvHeads = 1, HiddenDim = 48, Experts = 2, TopK = 1, ContextLength = context,
        // Untied: a random model with tied embeddings greedily repeats its last input token forever.
        TiedEmbeddings = false,
    };

    /// <summary>Reply text the plain way: all ids decoded at once, special tokens left out.</summary>
    public static string Text(IEnumerable<int> ids) => Tokenizer.Decode(ids.Where(id => !Tokenizer.SpecialTokens.IsSpecial(id)).ToArray());

    /// <summary>The greedy reply the engine gives for a chat, decoded the plain way (see <see cref="Text"/>).</summary>
    public static async Task<(string Text, int PromptTokens, int CompletionTokens, FinishReason Finish)> GreedyChat(
        IGenerationEngine engine, IReadOnlyList<ChatMessage> messages, int maxTokens, SamplingOptions? sampling = null)
    {
        var s = Tokenizer.SpecialTokens;
        var prompt = ChatTemplate.Encode(Tokenizer, messages, addGenerationPrompt: true);
        var stops = new HashSet<int> { s.Id(ChatTemplate.End), s.Id(ChatTemplate.Eos) };
        var ids = new List<int>();
        var finish = FinishReason.None;
        await foreach (var e in engine.GenerateAsync(new GenerationRequest(prompt, maxTokens, sampling ?? SamplingOptions.Greedy, stops)))
        {
            ids.Add(e.Id);
            finish = e.Finish;
        }
        int count = ids.Count;
        if (finish == FinishReason.Stop) ids.RemoveAt(ids.Count - 1);
        return (Text(ids), prompt.Count, count, finish);
    }
}

/// <summary>
/// Wraps an engine to observe sequences: how many started, ran to their end, or stopped early
/// because their token was cancelled; optionally slows each token down so a test can act mid-stream.
/// </summary>
public sealed class CountingEngine(IGenerationEngine inner, TimeSpan perToken = default) : IGenerationEngine
{
    int started, completed, cancelled, tokens;

    public int Started => Volatile.Read(ref started);
    public int Completed => Volatile.Read(ref completed);
    public int Cancelled => Volatile.Read(ref cancelled);
    public int Tokens => Volatile.Read(ref tokens);

    public ModelConfig Config => inner.Config;

    public async IAsyncEnumerable<TokenEvent> GenerateAsync(GenerationRequest request, [EnumeratorCancellation] CancellationToken cancel = default)
    {
        Interlocked.Increment(ref started);
        bool finished = false;
        try
        {
            await foreach (var e in inner.GenerateAsync(request, cancel))
            {
                Interlocked.Increment(ref tokens);
                if (perToken > TimeSpan.Zero) await Task.Delay(perToken, CancellationToken.None);
                if (e.Finish != FinishReason.None) finished = true;
                yield return e;
            }
        }
        finally
        {
            // Counted once the sequence is over, however it ended (loop exit, disposal by the caller).
            if (finished) Interlocked.Increment(ref completed);
            else if (cancel.IsCancellationRequested) Interlocked.Increment(ref cancelled);
        }
    }

    public IReadOnlyList<TokenEvent> Score(IReadOnlyList<int> prompt, int topLogprobs) => inner.Score(prompt, topLogprobs);
    public float[] Embed(IReadOnlyList<int> ids) => inner.Embed(ids);
}
