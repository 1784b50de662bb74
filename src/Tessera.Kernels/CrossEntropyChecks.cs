namespace Tessera.Kernels;

/// <summary>Input checks shared by the cross-entropy kernel and its scalar twin.</summary>
public static class CrossEntropyChecks
{
    /// <summary>Throws when a target id is outside the vocabulary.</summary>
    public static void Target(int target, int row, int vocab)
    {
        if ((uint)target >= (uint)vocab)
            throw new ArgumentOutOfRangeException(nameof(target), target, $"CrossEntropy: target id {target} at row {row} is outside the vocabulary [0, {vocab}).");
    }
}
