using Tessera.Kernels;

namespace Tessera.Inference;

/// <summary>One token row of a forward pass: which sequence slot, at which position, which id.</summary>
public readonly record struct TokenRow(int Slot, int Position, int Token) : ICachedRow;
