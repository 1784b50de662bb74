using System.Runtime.CompilerServices;
using Microsoft.AspNetCore.Http;
using Tessera.Inference;
using Tessera.Model;
using Tessera.Server;
using Tessera.Text;

namespace Tessera.Fuzz;

/// <summary>
/// The server's request handling, endpoint by endpoint, without a socket: the first input byte
/// picks the endpoint, the rest is the body. The engine is a stub that answers instantly, so the
/// fuzzer spends its time in parsing, validation, templating and response writing. A response
/// the server would send as 5xx (<see cref="ApiException.From"/>) is a finding.
/// </summary>
public sealed class ServerRequestTarget : FuzzTarget
{
    public override string Name => "server-request";

    static readonly string[] Paths = ["v1/chat/completions", "v1/completions", "v1/embeddings"];

    static readonly Lazy<ServedModel> Model = new(() => new ServedModel("m", new StubEngine(), TokenizerFiles.Load("bytes")));

    protected override void Execute(ReadOnlySpan<byte> input)
    {
        if (input.IsEmpty) return;
        var model = Model.Value;
        var ctx = new DefaultHttpContext();
        ctx.Request.Method = "POST";
        ctx.Request.Body = new MemoryStream(input[1..].ToArray());
        ctx.Request.ContentLength = input.Length - 1;
        ctx.Response.Body = new MemoryStream();
        ctx.Features.Set(new RequestLimits(JsonRequest.MaxBodyBytes, 64));
        Task handler = (input[0] % 3) switch
        {
            0 => ChatCompletionsEndpoint.HandleAsync(ctx, model, CancellationToken.None),
            1 => CompletionsEndpoint.HandleAsync(ctx, model, CancellationToken.None),
            _ => EmbeddingsEndpoint.HandleAsync(ctx, model, CancellationToken.None),
        };
        try { handler.GetAwaiter().GetResult(); }
        catch (Exception e)
        {
            var api = ApiException.From(e);
            if (api.Status >= 500) throw new FuzzFinding($"{Paths[input[0] % 3]} answered {api.Status}: {e}");
        }
    }

    /// <summary>Two tokens per request, no model: enough to drive every response path.</summary>
    sealed class StubEngine : IGenerationEngine
    {
        public ModelConfig Config { get; } = new() { VocabSize = 300, Dim = 8, Layers = 1, Heads = 1, KvHeads = 1, HiddenDim = 8, ContextLength = 96 };

        public async IAsyncEnumerable<TokenEvent> GenerateAsync(GenerationRequest request, [EnumeratorCancellation] CancellationToken cancel = default)
        {
            if (request.Prompt.Count == 0 || request.Prompt.Count + request.MaxNewTokens > Config.ContextLength) throw new ArgumentException("stub: prompt does not fit");
            foreach (int id in request.Prompt) if ((uint)id >= (uint)Config.VocabSize) throw new ArgumentException("stub: id outside the vocabulary");
            await Task.CompletedTask;
            int n = Math.Min(2, request.MaxNewTokens);
            var top = Enumerable.Range(0, request.TopLogprobs).Select(i => new TokenLogprob(65 + i, -1f - i)).ToArray();
            for (int i = 0; i < n; i++)
                yield return new TokenEvent(0xC3 + i * 0, -0.5f, top, i == n - 1 ? FinishReason.Length : FinishReason.None);
        }

        public IReadOnlyList<TokenEvent> Score(IReadOnlyList<int> prompt, int topLogprobs)
            => prompt.Select((id, i) => new TokenEvent(id, i == 0 ? float.NaN : -1f, [])).ToArray();

        public float[] Embed(IReadOnlyList<int> ids) => new float[Config.Dim];
    }
}
