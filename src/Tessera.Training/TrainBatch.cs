namespace Tessera.Training;

/// <summary>
/// The micro-batch a <see cref="Trainer.Objective"/> sees: (B, T) input and target ids, row-major,
/// and for each of the B rows the index of its window in the training data (file order, as
/// <see cref="Tessera.Data.BatchReader"/> numbers them), so per-window side data can be looked up.
/// The arrays are the trainer's buffers, reused every micro-batch: read them, do not keep them.
/// </summary>
public sealed record TrainBatch(int[] Inputs, int[] Targets, long[] Windows, int BatchSize, int SequenceLength);
