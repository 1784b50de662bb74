using Tessera.Kernels;

namespace Tessera.Inference;

/// <summary>
/// One token row of a forward pass: which sequence slot, at which position, which id (negative: a
/// caller-supplied vector). <see cref="PrefixEnd"/> &gt; 0 marks the sequence's first PrefixEnd
/// positions as a bidirectional prefix (prefix-LM): a row inside it also attends to the prefix
/// positions after it, so the whole prefix must be in the cache or in the same pass.
/// </summary>
public readonly record struct TokenRow(int Slot, int Position, int Token, int PrefixEnd = 0) : ICachedRow;
