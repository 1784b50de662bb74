using System.ClientModel;
using OpenAI;
using OpenAI.Embeddings;

namespace Tessera.Server.Tests;

/// <summary>/v1/embeddings through the official client (which asks for base64) and as plain floats.</summary>
[Collection(ServerCollection.Name)]
public class EmbeddingsApiTests(ServerFixture f)
{
    [Fact]
    public async Task EmbeddingsAreTheEnginesVectors()
    {
        var client = new EmbeddingClient(ServerFixture.ModelId, new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = f.ApiBase });
        string[] inputs = ["a small cat", "quantum chromodynamics"];
        var result = (await client.GenerateEmbeddingsAsync(inputs)).Value;
        Assert.Equal(2, result.Count);
        int tokens = 0;
        for (int i = 0; i < inputs.Length; i++)
        {
            var ids = f.Served.EncodePrompt(inputs[i]);
            tokens += ids.Count;
            Assert.Equal(f.Reference.Embed(ids), result[i].ToFloats().ToArray());   // bit-exact: float32 travels losslessly
            Assert.Equal(i, result[i].Index);
        }
        Assert.Equal(tokens, result.Usage.InputTokenCount);
    }

    [Fact]
    public async Task FloatFormatAndTokenIdInputsWork()
    {
        var (status, body) = await f.PostAsync("v1/embeddings", $$"""{"model":"{{ServerFixture.ModelId}}","input":[[256,65,66]],"encoding_format":"float"}""");
        Assert.Equal(200, status);
        var v = body.GetProperty("data")[0].GetProperty("embedding").EnumerateArray().Select(e => e.GetSingle()).ToArray();
        Assert.Equal(f.Reference.Embed([256, 65, 66]), v);
        Assert.Equal(f.Model.Config.Dim, v.Length);
    }
}
