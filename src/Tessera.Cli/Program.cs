using System.CommandLine;
using Tessera.Cli.Commands;

var root = new RootCommand("Tessera: build, train, distill, evaluate and serve sparse mixture-of-experts language models on a CPU.");
root.Subcommands.Add(QuickstartCommand.Create());
root.Subcommands.Add(BenchCommand.Create());
root.Subcommands.Add(TokenizerCommand.Create());
root.Subcommands.Add(DataCommand.Create());
root.Subcommands.Add(TrainCommand.Create());
root.Subcommands.Add(EvalCommand.Create());
root.Subcommands.Add(QuantizeCommand.Create());
root.Subcommands.Add(ServeCommand.Create());
root.Subcommands.Add(GenerateCommand.Create());
root.Subcommands.Add(DistillCommand.Create());
root.Subcommands.Add(LabCommand.Create());
root.Subcommands.Add(NGramCommand.Create());
root.Subcommands.Add(IndexCommand.Create());
root.Subcommands.Add(CompletionCommand.Create());
return CliRunner.Invoke(root, args);
