// Run test classes one at a time: TensorDebug.CheckFinite is process-global, and
// WorkerPool.Shared.For (used by the fast kernels) does not take concurrent callers.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
