namespace Tessera.Data.Tests;

public class DocumentSplitTests
{
    [Fact]
    public void AssignmentDependsOnKeyAndSeedOnly()
    {
        var split = new DocumentSplit(0.1, 0.1, Seed: 7);
        var keys = Enumerable.Range(0, 2000).Select(i => $"doc-{i}.txt").ToArray();
        var first = keys.Select(split.Assign).ToArray();
        var reversed = keys.Reverse().Select(split.Assign).Reverse().ToArray();
        Assert.Equal(first, reversed);
        var other = keys.Select(new DocumentSplit(0.1, 0.1, Seed: 8).Assign).ToArray();
        Assert.NotEqual(first, other);
    }

    [Fact]
    public void FractionsAreRespectedWithinSamplingError()
    {
        // 20,000 keys, p = 0.1: the count's standard deviation is sqrt(n p (1-p)) = 42; allow 5σ.
        var split = new DocumentSplit(0.1, 0.1);
        int n = 20_000, val = 0, test = 0;
        for (int i = 0; i < n; i++)
        {
            var s = split.Assign("k" + i);
            if (s == Split.Validation) val++; else if (s == Split.Test) test++;
        }
        Assert.InRange(val, 2000 - 5 * 42, 2000 + 5 * 42);
        Assert.InRange(test, 2000 - 5 * 42, 2000 + 5 * 42);
    }

    [Fact]
    public void ImpossibleFractionsFailFast()
    {
        Assert.Throws<ArgumentException>(() => new DocumentSplit(0.6, 0.5).Validate());
        Assert.Throws<ArgumentException>(() => new DocumentSplit(-0.1, 0).Validate());
    }
}
