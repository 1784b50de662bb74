using Tessera.Tensors;

namespace Tessera.Tensors.Tests;

/// <summary>
/// The small transformer block of reference/golden_block.py built from Tessera.Tensors ops:
/// embedding → RMSNorm → causal GQA self-attention with RoPE → residual → RMSNorm → top-k MoE of
/// SwiGLU experts (Mixtral routing) → residual → RMSNorm → lm_head → cross-entropy + aux losses.
/// Lives in the tests until Tessera.Model exists. Parameter names follow Llama/Mixtral checkpoints.
/// </summary>
public sealed class GoldenBlock : IDisposable
{
    const string L = "model.layers.0.";

    public int Vocab, Dim, Heads, KvHeads, HeadDim, Experts, TopK, Batch, Seq;
    public float RmsEps, AuxCoef, ZCoef;
    public readonly Dictionary<string, Tensor> Params = [];
    public readonly List<Tensor> ParamList = [];
    readonly RopeTable rope;

    /// <summary>Builds the block with the fixture's config and initial weights.</summary>
    public GoldenBlock(GoldenFixture fx)
    {
        Vocab = fx.ConfigInt("vocab"); Dim = fx.ConfigInt("dim"); Heads = fx.ConfigInt("heads"); KvHeads = fx.ConfigInt("kv_heads");
        HeadDim = fx.ConfigInt("head_dim"); Experts = fx.ConfigInt("experts"); TopK = fx.ConfigInt("top_k");
        Batch = fx.ConfigInt("batch"); Seq = fx.ConfigInt("seq");
        RmsEps = (float)fx.ConfigDouble("rms_eps"); AuxCoef = (float)fx.ConfigDouble("aux_coef"); ZCoef = (float)fx.ConfigDouble("z_coef");
        rope = new RopeTable(Seq, HeadDim, (float)fx.ConfigDouble("rope_theta"));
        foreach (var name in fx.ParameterNames)
        {
            var t = Tensor.FromArray(fx.Floats("init/" + name), fx.Shape("init/" + name), name);
            t.RequiresGrad = true;
            Params[name] = t;
            ParamList.Add(t);
        }
    }

    Tensor P(string name) => Params[name];

    /// <summary>Everything the golden test compares from one forward pass.</summary>
    public sealed record Result(Tensor Logits, Tensor Total, Tensor Ce, Tensor Aux, Tensor Z, Tensor RouterProbs, int[] RouterTop);

    /// <summary>Forward pass over ids/targets of (B·T) tokens; call g.Backward(result.Total) for gradients.</summary>
    public Result Forward(Graph g, int[] ids, int[] targets)
    {
        int n = Batch * Seq;
        var x = g.Embedding(P("model.embed_tokens.weight"), ids);                         // (N, D)
        x = g.Add(x, SelfAttention(g, g.RmsNorm(x, P(L + "input_layernorm.weight"), RmsEps)));
        var (moe, probs, top, aux, z) = Moe(g, g.RmsNorm(x, P(L + "post_attention_layernorm.weight"), RmsEps));
        x = g.Add(x, moe);
        var logits = g.Linear(g.RmsNorm(x, P("model.norm.weight"), RmsEps), P("lm_head.weight")); // (N, V)
        var ce = g.CrossEntropy(logits, targets);
        var total = g.Add(ce, g.Add(g.Scale(aux, AuxCoef), g.Scale(z, ZCoef)));
        return new Result(logits, total, ce, aux, z, probs, top);
    }

    Tensor SelfAttention(Graph g, Tensor h)
    {
        int b = Batch, t = Seq;
        var q = g.Reshape(g.Linear(h, P(L + "self_attn.q_proj.weight")), [b, t, Heads, HeadDim]);   // (B, T, H, D)
        var k = g.Reshape(g.Linear(h, P(L + "self_attn.k_proj.weight")), [b, t, KvHeads, HeadDim]); // (B, T, Hkv, D)
        var v = g.Reshape(g.Linear(h, P(L + "self_attn.v_proj.weight")), [b, t, KvHeads, HeadDim]); // (B, T, Hkv, D)
        q = g.Permute(g.Rope(q, rope), [0, 2, 1, 3]);                                             // (B, H, T, D)
        k = g.Permute(g.Rope(k, rope), [0, 2, 1, 3]);                                             // (B, Hkv, T, D)
        v = g.Permute(v, [0, 2, 1, 3]);                                                           // (B, Hkv, T, D)
        var o = g.Permute(g.Attention(q, k, v), [0, 2, 1, 3]);                                    // (B, T, H, D)
        return g.Linear(g.Reshape(o, [b * t, Heads * HeadDim]), P(L + "self_attn.o_proj.weight")); // (N, D)
    }

    (Tensor Out, Tensor Probs, int[] Top, Tensor Aux, Tensor Z) Moe(Graph g, Tensor h)
    {
        int n = h.Dim(0);
        const string m = L + "block_sparse_moe.";
        var logits = g.Linear(h, P(m + "gate.weight"));                                  // (N, E)
        var probs = g.Softmax(logits);
        var top = g.TopK(probs, TopK);                                                   // N·k expert ids
        var gates = g.NormalizeRows(g.GatherColumns(probs, top, TopK));                  // (N, k), rows sum to 1
        var plan = ExpertDispatch.Build(top, TopK, Experts);
        Tensor? output = null;
        for (int e = 0; e < Experts; e++)
        {
            if (plan.Rows[e].Length == 0) continue;
            string p = m + $"experts.{e}.";
            var xe = g.GatherRows(h, plan.Rows[e]);                                      // (Mₑ, D)
            var he = g.SwiGlu(g.Linear(xe, P(p + "w1.weight")), g.Linear(xe, P(p + "w3.weight"))); // (Mₑ, F)
            var ye = g.Linear(he, P(p + "w2.weight"));                                   // (Mₑ, D)
            var part = g.ScatterRowsWeighted(ye, gates, plan.Slots[e], plan.Rows[e], n); // (N, D)
            output = output is null ? part : g.Add(output, part);
        }
        return (output!, probs, top, g.LoadBalanceLoss(probs, top), g.RouterZLoss(logits));
    }

    public void Dispose()
    {
        foreach (var t in ParamList) t.Dispose();
    }
}
