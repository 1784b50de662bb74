namespace Tessera.Text.Templates;

/// <summary>Template statements.</summary>
internal abstract record JinjaNode;
internal sealed record TextNode(string Text) : JinjaNode;
internal sealed record OutputNode(JinjaExpr Expr) : JinjaNode;
internal sealed record IfNode(JinjaExpr Condition, List<JinjaNode> Then, List<JinjaNode> Else) : JinjaNode;
internal sealed record ForNode(List<string> Targets, JinjaExpr Iterable, JinjaExpr? Filter, List<JinjaNode> Body, List<JinjaNode> Else) : JinjaNode;
internal sealed record SetNode(JinjaExpr Target, JinjaExpr? Value, List<JinjaNode>? Body) : JinjaNode;
internal sealed record MacroNode(string Name, List<(string Name, JinjaExpr? Default)> Params, List<JinjaNode> Body) : JinjaNode;
internal sealed record BreakNode : JinjaNode;
internal sealed record ContinueNode : JinjaNode;
internal sealed record FilterBlockNode(string Filter, List<JinjaExpr> Args, List<JinjaNode> Body) : JinjaNode;

/// <summary>Template expressions.</summary>
internal abstract record JinjaExpr;
internal sealed record LiteralExpr(object? Value) : JinjaExpr;
internal sealed record NameExpr(string Name) : JinjaExpr;
internal sealed record AttrExpr(JinjaExpr Target, string Name) : JinjaExpr;
internal sealed record IndexExpr(JinjaExpr Target, JinjaExpr Index) : JinjaExpr;
internal sealed record SliceExpr(JinjaExpr Target, JinjaExpr? Start, JinjaExpr? Stop, JinjaExpr? Step) : JinjaExpr;
internal sealed record CallExpr(JinjaExpr Target, List<JinjaExpr> Args, List<(string Name, JinjaExpr Value)> Kwargs) : JinjaExpr;
internal sealed record FilterExpr(JinjaExpr Target, string Name, List<JinjaExpr> Args, List<(string Name, JinjaExpr Value)> Kwargs) : JinjaExpr;
internal sealed record TestExpr(JinjaExpr Target, string Name, bool Negated, List<JinjaExpr> Args) : JinjaExpr;
internal sealed record UnaryExpr(string Op, JinjaExpr Operand) : JinjaExpr;
internal sealed record BinaryExpr(string Op, JinjaExpr Left, JinjaExpr Right) : JinjaExpr;
internal sealed record CondExpr(JinjaExpr Then, JinjaExpr Condition, JinjaExpr? Else) : JinjaExpr;
internal sealed record ListExpr(List<JinjaExpr> Items, bool IsTuple) : JinjaExpr;
internal sealed record DictExpr(List<(JinjaExpr Key, JinjaExpr Value)> Items) : JinjaExpr;
