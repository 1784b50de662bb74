// The model tests share the process-wide worker pool; run classes one at a time (as Tessera.Tensors.Tests does).
[assembly: CollectionBehavior(DisableTestParallelization = true)]
