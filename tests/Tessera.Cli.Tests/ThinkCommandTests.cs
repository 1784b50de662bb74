namespace Tessera.Cli.Tests;

/// <summary><c>tessera think</c>: out-of-range budgets and unknown strategies are one clear error line, exit code 1, nothing written.</summary>
[Collection(CliCollection.Name)]
public class ThinkCommandTests
{
    public static TheoryData<string[], string> Cases => new()
    {
        { ["think", "ask", "--model", "no-run", "--n", "65", "1+2"], "n = 65 is out of range" },
        { ["think", "ask", "--model", "no-run", "--n", "0", "1+2"], "n = 0 is out of range" },
        { ["think", "ask", "--model", "no-run", "--strategy", "majority", "1+2"], "unknown strategy 'majority'" },
        { ["think", "ask", "--model", "no-run", "--temperature", "5", "1+2"], "temperature" },
        { ["think", "ask", "--model", "no/such/run", "1+2"], "no/such/run" },
        { ["think", "lab", "--samples", "99", "--out", "o"], "--samples 99" },
        { ["think", "lab", "--steps", "0", "--out", "o"], "--steps 0" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void BadThinkInputIsOneClearLine(string[] args, string mentioned) => CliProcess.AssertOneErrorLine(args, mentioned);
}
