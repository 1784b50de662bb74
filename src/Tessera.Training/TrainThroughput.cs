using System.Diagnostics;
using Tessera.Data;
using Tessera.Model;

namespace Tessera.Training;

/// <summary>Timing of training steps: mean milliseconds per step, tokens per second and MFU.</summary>
public sealed record ThroughputResult(ModelConfig Config, int BatchSize, int SequenceLength, int Steps, double MsPerStep, double TokensPerSecond, double Mfu);

/// <summary>
/// Times full training steps (forward, backward, clipping, AdamW) of a freshly initialised model
/// on random tokens, for <c>tessera bench train</c>. The tokens come from a temporary shard read
/// through the normal <see cref="BatchReader"/> path, so data loading is included.
/// </summary>
public static class TrainThroughput
{
    /// <summary>Runs <paramref name="warmupSteps"/> untimed steps, then times <paramref name="steps"/> steps; MFU divides by <paramref name="peakFlops"/> (0: the measured <see cref="Kernels.GemmPeak.PeakFlops"/>).</summary>
    public static ThroughputResult Measure(ModelConfig config, int batchSize, int sequenceLength, int steps, int warmupSteps = 1,
        ulong seed = 1, double peakFlops = 0)
    {
        if (steps < 1 || warmupSteps < 0) throw new ArgumentException($"Throughput: steps ({steps}) must be ≥ 1 and warmup steps ({warmupSteps}) ≥ 0.");
        var options = new TrainOptions
        {
            Steps = steps + warmupSteps, BatchSize = batchSize, SequenceLength = sequenceLength, WarmupSteps = 0,
            Seed = seed, PeakFlops = peakFlops, EvalEvery = 0, CheckpointEvery = 0,
        }.Validate();
        config.Validate();
        string dir = Directory.CreateTempSubdirectory("tessera-throughput-").FullName;
        try
        {
            // Enough distinct windows for a few batches; the reader wraps into new epochs after that.
            int windows = Math.Max(4 * batchSize, 16);
            var rng = new Tensors.Rng(seed);
            var tokens = new int[windows * sequenceLength + 1];
            for (int i = 0; i < tokens.Length; i++) tokens[i] = rng.NextInt(config.VocabSize);
            string path = Path.Combine(dir, "random.bin");
            TokenShard.Write(path, [tokens], config.VocabSize);
            using var shard = TokenShard.Open(path);
            using var trainer = new Trainer(config, options, new TrainData([shard]));
            for (int i = 0; i < warmupSteps; i++) trainer.TrainStep();
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < steps; i++) trainer.TrainStep();
            double seconds = clock.Elapsed.TotalSeconds;
            double tps = (double)options.TokensPerStep * steps / seconds;
            return new ThroughputResult(config, batchSize, sequenceLength, steps, seconds * 1000 / steps, tps,
                config.TrainingFlopsPerToken(sequenceLength) * tps / trainer.PeakFlops);
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }
}
