using System.Globalization;

namespace Tessera.Thinking;

/// <summary>
/// The in-process calculator tool: an exact evaluator of arithmetic expressions over
/// <see cref="decimal"/> (integers and decimals, <c>+ - * /</c> and <c>× ÷ −</c>, unary minus,
/// parentheses). It never runs code: a recursive-descent parser over a bounded text
/// (<see cref="MaxLength"/> characters, <see cref="MaxDepth"/> nested parentheses or unary signs).
/// Bad input (an unknown character, a dangling operator, unbalanced parentheses, division by zero,
/// overflow) is a <see cref="CalculatorException"/> whose message names the problem and its position.
/// </summary>
public static class Calculator
{
    /// <summary>Longest expression accepted, in characters.</summary>
    public const int MaxLength = 256;

    /// <summary>Deepest nesting of parentheses and unary signs accepted.</summary>
    public const int MaxDepth = 32;

    /// <summary>Evaluates <paramref name="expression"/> exactly.</summary>
    /// <exception cref="CalculatorException">The expression is malformed, too long or too deep, divides by zero or overflows.</exception>
    public static decimal Evaluate(string expression)
    {
        ArgumentNullException.ThrowIfNull(expression);
        if (expression.Length > MaxLength)
            throw new CalculatorException($"calculator: expression of {expression.Length} characters; at most {MaxLength} are accepted");
        var p = new Parser(expression);
        p.SkipSpaces();
        if (p.AtEnd) throw new CalculatorException("calculator: empty expression; expected a number or '('");
        decimal value = p.Sum(0);
        p.SkipSpaces();
        if (!p.AtEnd) throw p.Error($"unexpected '{expression[p.Pos]}'; expected an operator (+ - * /) or the end");
        return value;
    }

    /// <summary>True and the value when <paramref name="expression"/> evaluates; false and the error message otherwise.</summary>
    public static bool TryEvaluate(string expression, out decimal value, out string? error)
    {
        try { value = Evaluate(expression); error = null; return true; }
        catch (CalculatorException e) { value = 0; error = e.Message; return false; }
    }

    /// <summary>The canonical text of a value: invariant culture, no exponent, no trailing fraction zeros ("84", "2.5", "-0.125").</summary>
    public static string Format(decimal value)
    {
        string s = value.ToString("0.############################", CultureInfo.InvariantCulture);
        return s == "-0" ? "0" : s;
    }

    struct Parser(string text)
    {
        public int Pos;
        public readonly bool AtEnd => Pos >= text.Length;

        public void SkipSpaces() { while (Pos < text.Length && text[Pos] == ' ') Pos++; }

        public readonly CalculatorException Error(string what) => new($"calculator: {what} at position {Pos} of \"{text}\"");

        char Peek() { SkipSpaces(); return Pos < text.Length ? text[Pos] : '\0'; }

        // sum := product (('+' | '-') product)*
        public decimal Sum(int depth)
        {
            decimal left = Product(depth);
            while (true)
            {
                char c = Peek();
                if (c is '+') { Pos++; left = Apply(left, '+', Product(depth)); }
                else if (c is '-' or '−') { Pos++; left = Apply(left, '-', Product(depth)); }
                else return left;
            }
        }

        // product := unary (('*' | '/') unary)*
        decimal Product(int depth)
        {
            decimal left = Unary(depth);
            while (true)
            {
                char c = Peek();
                if (c is '*' or '×') { Pos++; left = Apply(left, '*', Unary(depth)); }
                else if (c is '/' or '÷')
                {
                    int at = Pos++;
                    decimal right = Unary(depth);
                    if (right == 0) { Pos = at; throw Error("division by zero"); }
                    left = Apply(left, '/', right);
                }
                else return left;
            }
        }

        // unary := ('-' | '+') unary | '(' sum ')' | number
        decimal Unary(int depth)
        {
            if (depth >= MaxDepth) throw Error($"nesting deeper than {MaxDepth}");
            char c = Peek();
            if (c is '-' or '−') { Pos++; return -Unary(depth + 1); }
            if (c is '+') { Pos++; return Unary(depth + 1); }
            if (c is '(')
            {
                Pos++;
                decimal v = Sum(depth + 1);
                if (Peek() != ')') throw Error(AtEnd ? "missing ')'" : $"unexpected '{text[Pos]}'; expected ')'");
                Pos++;
                return v;
            }
            if (c is >= '0' and <= '9' or '.') return Number();
            if (c == '\0') throw Error("the expression ends where a number or '(' was expected");
            throw Error($"unexpected '{c}'; expected a number or '('");
        }

        decimal Number()
        {
            int start = Pos;
            while (Pos < text.Length && text[Pos] is >= '0' and <= '9') Pos++;
            if (Pos < text.Length && text[Pos] == '.')
            {
                Pos++;
                int frac = Pos;
                while (Pos < text.Length && text[Pos] is >= '0' and <= '9') Pos++;
                if (Pos == frac) throw Error("a '.' without digits after it");
            }
            var digits = text.AsSpan(start, Pos - start);
            if (digits.Length > 28 || !decimal.TryParse(digits, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out decimal v))
            {
                Pos = start;
                throw Error($"number \"{digits}\" is not a decimal of at most 28 digits");
            }
            return v;
        }

        readonly decimal Apply(decimal a, char op, decimal b)
        {
            try
            {
                return op switch { '+' => a + b, '-' => a - b, '*' => a * b, _ => a / b };
            }
            catch (OverflowException)
            {
                throw Error($"result of {Format(a)} {op} {Format(b)} overflows a 28-digit decimal");
            }
        }
    }
}

/// <summary>A calculator expression that cannot be evaluated; the message says why and where.</summary>
public sealed class CalculatorException(string message) : Exception(message);
