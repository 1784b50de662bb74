namespace Tessera.Training.Tests;

public class ScheduleTests
{
    [Fact]
    public void WarmupIsLinearThenCosineReachesTheMinimum()
    {
        var s = new LearningRateSchedule(Peak: 1f, Min: 0.1f, Warmup: 4, Steps: 14);
        Assert.Equal(0.25f, s.At(0));
        Assert.Equal(0.75f, s.At(2));
        Assert.Equal(1f, s.At(4));                       // first decay step: progress 0
        Assert.Equal(0.55f, s.At(9), 6);                 // halfway: (peak + min) / 2
        Assert.Equal(0.1f, s.At(14), 6);                 // end
        Assert.Equal(0.1f, s.At(100), 6);                // past the end stays at min
        for (long t = 4; t < 14; t++) Assert.True(s.At(t + 1) <= s.At(t), $"not decreasing at {t}");
    }

    [Fact]
    public void NoWarmupStartsAtThePeak()
    {
        var s = new LearningRateSchedule(2f, 0f, 0, 10);
        Assert.Equal(2f, s.At(0));
        Assert.Equal(1f, s.At(5), 6);
    }
}
