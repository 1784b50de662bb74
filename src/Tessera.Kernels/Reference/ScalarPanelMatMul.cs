namespace Tessera.Kernels.Reference;

/// <summary>
/// Scalar twin of <see cref="PanelMatMul"/>: every output is the same single FMA chain over
/// p = 0..K−1 starting from zero, one scalar at a time, so the two agree bit for bit.
/// </summary>
public static unsafe class ScalarPanelMatMul
{
    /// <summary>y[i·ldy + j] = Σₚ x[i·k + p]·W[j, p] for W packed by <see cref="PanelMatMul.Pack"/>.</summary>
    public static void Run(float* panels, int rows, int k, float* x, int n, float* y, int ldy)
    {
        const int P = PanelMatMul.PanelRows;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < rows; j++)
            {
                float* w = panels + (long)(j / P) * k * P + j % P;
                float s = 0;
                for (int p = 0; p < k; p++) s = MathF.FusedMultiplyAdd(x[(long)i * k + p], w[(long)p * P], s);
                y[(long)i * ldy + j] = s;
            }
    }
}
