using System.Globalization;
using Tessera.Data;
using Tessera.Training;
using Tessera.Training.ResumeWorker;

// Usage: worker <run dir> <shard> <side dir> <stall-at-step (0 = never)> <delay ms after each checkpoint>
// Trains ResumeRun (resuming when the run folder already has a checkpoint), appending "step lossbits"
// to <side dir>/losses-<pid>.log after every step. When the checkpoint of <stall-at-step> is half
// written (weights and state on disk, no manifest yet) it creates <side dir>/stalled and hangs,
// so a test can SIGKILL it mid-save.
string runDir = args[0], shardPath = args[1], side = args[2];
long stall = long.Parse(args[3], CultureInfo.InvariantCulture);
int delay = int.Parse(args[4], CultureInfo.InvariantCulture);
string log = Path.Combine(side, $"losses-{Environment.ProcessId}.log");

using var shard = TokenShard.Open(shardPath);
var data = new TrainData([shard]);
using var trainer = Checkpoint.List(runDir).Count > 0
    ? Trainer.Resume(runDir, data)
    : new Trainer(ResumeRun.Config, ResumeRun.Options, data, runDir);
trainer.StepCompleted = r => File.AppendAllText(log, $"{r.Step} {BitConverter.DoubleToInt64Bits(r.TotalLoss):X16}\n");
trainer.CheckpointExtras = dir =>
{
    if (trainer.Step != stall) return;
    File.WriteAllText(Path.Combine(side, "stalled"), dir);
    Thread.Sleep(Timeout.Infinite);
};
trainer.CheckpointSaved = _ => { if (delay > 0) Thread.Sleep(delay); };
trainer.Run();
return 0;
