using Tessera.Kernels;
using Tessera.Model;

namespace Tessera.Training.Tests;

/// <summary>
/// Same seed + same thread count ⇒ the same bits, with two threads doing the work: a model large
/// enough that the GEMMs, AdamW, clipping, the MoE combine and the head reorders all take their
/// parallel paths (where the pool may move a late helper's range onto the caller).
/// </summary>
public class ThreadedDeterminismTests
{
    [Fact]
    public void TwoThreadRunsOfAMoeModelAreBitIdentical()
    {
        var config = new ModelConfig
        {
            VocabSize = 512, Dim = 96, Layers = 2, Heads = 4, KvHeads = 2, HiddenDim = 192, Experts = 4, TopK = 2, ContextLength = 64,
        };
        var options = new TrainOptions { Steps = 3, BatchSize = 4, SequenceLength = 64, WarmupSteps = 0, EvalEvery = 0, Seed = 9 };
        int before = WorkerPool.Shared.ThreadCount;
        WorkerPool.SetSharedThreadCount(2);
        try
        {
            using var dir = new TempDir();
            using var shard = TestData.Shard(dir.File("a.bin"), 4000, config.VocabSize);
            Dictionary<string, int[]> Run()
            {
                using var t = new Trainer(config, options, new TrainData([shard]));
                for (int s = 0; s < 3; s++) t.TrainStep();
                return TestData.Snapshot(t);
            }
            TestData.AssertSame(Run(), Run());
        }
        finally { WorkerPool.SetSharedThreadCount(before); }
    }
}
