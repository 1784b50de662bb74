namespace Tessera.Text;

/// <summary>
/// What a Hugging Face post-processor adds around one sequence when special tokens are
/// requested: <c>TemplateProcessing</c> (its <c>single</c> template), <c>BertProcessing</c>
/// and <c>RobertaProcessing</c> (CLS … SEP), <c>ByteLevel</c> (offsets only: no ids), and
/// <c>Sequence</c> of those.
/// </summary>
internal sealed class HfPostProcessor(IReadOnlyList<int> prefix, IReadOnlyList<int> suffix)
{
    /// <summary>Ids before the sequence.</summary>
    public IReadOnlyList<int> Prefix { get; } = prefix;

    /// <summary>Ids after the sequence.</summary>
    public IReadOnlyList<int> Suffix { get; } = suffix;

    /// <summary>Adds nothing.</summary>
    public static HfPostProcessor None { get; } = new([], []);

    /// <summary>This processor followed by <paramref name="later"/>: templates nest, the later outermost.</summary>
    public HfPostProcessor Then(HfPostProcessor later) => new([.. later.Prefix, .. Prefix], [.. Suffix, .. later.Suffix]);
}
