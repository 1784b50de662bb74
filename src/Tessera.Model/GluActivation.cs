namespace Tessera.Model;

/// <summary>The activation of a gated linear unit: act(gate) ⊙ up.</summary>
public enum GluActivation
{
    /// <summary>SwiGLU (Llama, Qwen, Mixtral): silu(gate) ⊙ up.</summary>
    Silu,
    /// <summary>GeGLU with the tanh-approximated GELU (Gemma's gelu_pytorch_tanh).</summary>
    GeluTanh,
}
