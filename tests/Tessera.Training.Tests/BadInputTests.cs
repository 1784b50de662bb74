using Tessera.Model;

namespace Tessera.Training.Tests;

/// <summary>Impossible runs fail with one clear line before any model is built or step is taken.</summary>
public class BadInputTests
{
    static readonly ModelConfig Config = new() { VocabSize = 32, Dim = 16, Layers = 1, Heads = 2, KvHeads = 2, HiddenDim = 16, ContextLength = 32 };
    static readonly TrainOptions Options = new() { Steps = 2, BatchSize = 2, SequenceLength = 16, WarmupSteps = 0 };

    static ArgumentException Fails(Func<ModelConfig, ModelConfig> config, Func<TrainOptions, TrainOptions> options, int tokens = 200, int vocab = 32)
    {
        using var dir = new TempDir();
        using var shard = TestData.Shard(dir.File("s.bin"), tokens, vocab);
        var e = Assert.Throws<ArgumentException>(() => new Trainer(config(Config), options(Options), new TrainData([shard]), dir.File("run")));
        Assert.DoesNotContain('\n', e.Message);
        Assert.False(Directory.Exists(dir.File("run")), "nothing may be written before the checks pass");
        return e;
    }

    [Fact]
    public void ContextLongerThanTheData()
        => Assert.Contains("Context length 16 is longer than the training data", Fails(c => c, o => o, tokens: 12).Message);

    [Fact]
    public void HeadsThatDoNotDivideTheWidth()
        => Assert.Contains("heads (3) must divide dim (16)", Fails(c => c with { Heads = 3, KvHeads = 3 }, o => o).Message);

    [Fact]
    public void TopKAboveTheExpertCount()
        => Assert.Contains("top-k (3) must be between 1 and the number of experts (2)", Fails(c => c with { Experts = 2, TopK = 3 }, o => o).Message);

    [Fact]
    public void SequenceLongerThanTheModelContext()
        => Assert.Contains("exceeds the model's context length 32", Fails(c => c, o => o with { SequenceLength = 33 }, tokens: 400).Message);

    [Fact]
    public void DataFromALargerVocabulary()
        => Assert.Contains("vocabulary of 40, larger than the model's 32", Fails(c => c, o => o, vocab: 40).Message);

    [Fact]
    public void NonsenseOptions()
    {
        Assert.Contains("min learning rate", Fails(c => c, o => o with { MinLearningRate = 1f }).Message);
        Assert.Contains("gradient accumulation (0)", Fails(c => c, o => o with { GradAccumulation = 0 }).Message);
    }
}
