// The eval tests share the process-wide worker pool and train models; run classes one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
