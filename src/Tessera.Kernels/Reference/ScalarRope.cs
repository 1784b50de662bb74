namespace Tessera.Kernels.Reference;

/// <summary>
/// Scalar twin of <see cref="Rope"/>. Rotary embedding in the "rotate half" convention used by
/// Hugging Face Llama/Mixtral checkpoints: element i pairs with i + D/2 and is rotated by
/// angle pos·θ^(−2i/D). Layout (B, T, H, D), rotated in place.
/// </summary>
public static class ScalarRope
{
    /// <summary>Fills cos/sin tables of shape (maxPositions, headDim/2).</summary>
    public static void BuildTables(int maxPositions, int headDim, float theta, Span<float> cos, Span<float> sin)
    {
        RopeChecks.HeadDim(headDim);
        var invFreq = new double[headDim / 2];
        InverseFrequencies(headDim, theta, invFreq);
        BuildTables(maxPositions, invFreq, cos, sin);
    }

    /// <summary>Fills cos/sin tables of shape (maxPositions, invFreq.Length) with cos/sin(p·invFreq[i]).</summary>
    public static void BuildTables(int maxPositions, ReadOnlySpan<double> invFreq, Span<float> cos, Span<float> sin)
    {
        int half = invFreq.Length;
        for (int p = 0; p < maxPositions; p++)
            for (int i = 0; i < half; i++)
            {
                double ang = p * invFreq[i];
                cos[p * half + i] = (float)Math.Cos(ang);
                sin[p * half + i] = (float)Math.Sin(ang);
            }
    }

    /// <summary>θ^(−2i/D), remapped by a scaling; see <see cref="Rope.InverseFrequencies"/>.</summary>
    public static void InverseFrequencies(int headDim, double theta, Span<double> invFreq, RopeScalingKind scaling = RopeScalingKind.None,
        double factor = 1, double lowFreqFactor = 1, double highFreqFactor = 4, int originalMaxPositions = 8192)
    {
        RopeChecks.HeadDim(headDim);
        RopeChecks.Scaling(scaling, theta, factor, lowFreqFactor, highFreqFactor, originalMaxPositions);
        for (int i = 0; i < headDim / 2; i++)
        {
            double f = Math.Pow(theta, -2.0 * i / headDim);
            if (scaling == RopeScalingKind.Linear) f /= factor;
            else if (scaling == RopeScalingKind.Llama3)
            {
                double wavelen = 2 * Math.PI / f;
                if (wavelen > originalMaxPositions / lowFreqFactor) f /= factor;
                else if (wavelen >= originalMaxPositions / highFreqFactor)
                {
                    double smooth = (originalMaxPositions / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
                    f = (1 - smooth) * f / factor + smooth * f;
                }
            }
            invFreq[i] = f;
        }
    }

    /// <summary>
    /// Rotates x (B, T, H, D) in place; token t has position <c>positionOffset + t</c>.
    /// <paramref name="inverse"/> rotates by −angle, which is the backward pass.
    /// </summary>
    public static void Apply(Span<float> x, int batch, int seq, int heads, int headDim,
        ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, int positionOffset = 0, bool inverse = false)
    {
        RopeChecks.HeadDim(headDim);
        int half = headDim / 2;
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < seq; t++)
            {
                int p = positionOffset + t;
                for (int h = 0; h < heads; h++)
                {
                    int o = ((b * seq + t) * heads + h) * headDim;
                    for (int i = 0; i < half; i++)
                    {
                        float c = cos[p * half + i], s = inverse ? -sin[p * half + i] : sin[p * half + i];
                        float x1 = x[o + i], x2 = x[o + i + half];
                        x[o + i] = x1 * c - x2 * s;
                        x[o + i + half] = x2 * c + x1 * s;
                    }
                }
            }
    }
}
