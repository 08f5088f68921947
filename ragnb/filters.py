"""Safe `where` filters typed as text: a Polars expression, parsed, never evaluated.

The explorer's filter box and `%rag --where` both take what a user would write in Python,

    pl.col("year") > 2020 and pl.col("lang").is_in(["en", "de"])

and turn it into a `pl.Expr` by walking the syntax tree. Only column references, literals,
comparisons, boolean and arithmetic operators and a short list of methods are accepted, so text
from a notebook cell can name columns but can never run code.
"""

from __future__ import annotations

import ast
import operator
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import polars as pl

from ragnb.errors import InputError

# Methods callable on an expression, and on its `.str` namespace. Everything else is refused.
EXPR_METHODS = frozenset(
    {"is_in", "is_null", "is_not_null", "is_between", "is_nan", "is_not_nan", "abs", "not_"}
)
STR_METHODS = frozenset(
    {"contains", "starts_with", "ends_with", "to_lowercase", "to_uppercase", "len_chars"}
)

_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.BitAnd: operator.and_,
    ast.BitOr: operator.or_,
    ast.BitXor: operator.xor,
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Mod: operator.mod,
}


MAX_LENGTH = 2000  # characters of filter text
MAX_DEPTH = 40  # nested operators/calls; real filters use a handful

# What building an expression can raise on hostile text (deep nesting, odd operand types):
# each becomes the one-line InputError naming the filter.
_BUILD_ERRORS = (
    RecursionError,
    MemoryError,
    TypeError,
    ValueError,
    OverflowError,
    pl.exceptions.PolarsError,
)


class _Str:
    """The `.str` namespace of an expression, waiting for one of STR_METHODS."""

    def __init__(self, expr: pl.Expr):
        self.expr = expr


def parse_where(text: str, columns: Sequence[str]) -> pl.Expr:
    """Turn a filter typed as text into a Polars expression over `columns`, without `eval`.

    Accepted: `pl.col("name")`, `col("name")` or a bare column name; str/int/float/bool/None
    literals and lists of them; `== != < <= > >=` (chains too); `and or not & | ~`; `+ - * / %`;
    the methods in EXPR_METHODS and `.str.` methods in STR_METHODS.

    >>> parse_where('year > 2020 and pl.col("lang") == "en"', ["year", "lang"])  # doctest: +SKIP
    [([(col("year")) > (dyn int: 2020)]) & ([(col("lang")) == ("en")])]

    Raises InputError (one line) for syntax errors, unknown columns, names that are not columns,
    calls outside the list, arithmetic between constants (``'a' * 10**11`` and ``1/0`` would run
    before any column is read), text over MAX_LENGTH characters or nested over MAX_DEPTH, and
    text that is not an expression on at least one column.
    """
    if not isinstance(text, (str, type(None))):
        raise InputError(f"where must be text, got {type(text).__name__}")
    source = (text or "").strip()
    if not source:
        raise InputError("where is empty: write a Polars expression such as pl.col('year') > 2020")
    if len(source) > MAX_LENGTH:
        raise InputError(
            f"where is {len(source):,} characters long, more than {MAX_LENGTH:,}: "
            "write a shorter filter (a list of many values belongs in a column)"
        )
    shown = source if len(source) <= 200 else source[:199] + "…"
    try:
        with warnings.catch_warnings():  # "1if x" warns before it fails: one message, not two
            warnings.simplefilter("ignore", SyntaxWarning)
            tree = ast.parse(source, mode="eval")
        result = _Builder(shown, list(columns)).build(tree.body)
    except SyntaxError as exc:
        raise InputError(
            f"where {shown!r} is not valid Python ({exc.msg}): fix the expression"
        ) from None
    except InputError:
        raise
    except _BUILD_ERRORS as exc:
        lines = str(exc).strip().splitlines()
        why = lines[0] if lines else type(exc).__name__
        if isinstance(exc, (RecursionError, MemoryError)):
            why = "nested too deeply"
        raise InputError(f"where {shown!r} cannot be used ({why}): simplify the filter") from None
    if not isinstance(result, pl.Expr):
        raise InputError(
            f"where {shown!r} is a constant, not a condition on columns: "
            f"compare a column, e.g. pl.col({_first(columns)!r}) == ..."
        )
    return result


def _first(columns: Sequence[str]) -> str:
    return columns[0] if len(columns) else "name"


class _Builder:
    """Walks the syntax tree of one where-expression, building the Polars expression."""

    def __init__(self, source: str, columns: list[str]):
        self.source = source
        self.columns = columns
        self.depth = 0

    def fail(self, what: str) -> InputError:
        return InputError(f"where {self.source!r}: {what}")

    def column(self, name: object) -> pl.Expr:
        if not isinstance(name, str):
            raise self.fail(f"col() takes a column name string, got {name!r}")
        if name not in self.columns:
            raise self.fail(f"unknown column {name!r}; columns are {', '.join(self.columns)}")
        return pl.col(name)

    def build(self, node: ast.AST) -> Any:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise self.fail(f"nested more than {MAX_DEPTH} levels deep: simplify the filter")
            return self.node(node)
        finally:
            self.depth -= 1

    def node(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            if node.value is None or isinstance(node.value, (str, int, float, bool)):
                return node.value
            raise self.fail(f"literal {node.value!r} is not a str, number, bool or None")
        if isinstance(node, (ast.List, ast.Tuple)):
            values = [self.build(item) for item in node.elts]
            if any(isinstance(v, (pl.Expr, _Str)) for v in values):
                raise self.fail("lists may hold only literals")
            return values
        if isinstance(node, ast.Name):
            if node.id in self.columns:
                return pl.col(node.id)
            raise self.fail(
                f"name {node.id!r} is not a column; columns are {', '.join(self.columns)}"
            )
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.BoolOp):
            parts = [self.expr(value) for value in node.values]
            combine = operator.and_ if isinstance(node.op, ast.And) else operator.or_
            result = parts[0]
            for part in parts[1:]:
                result = combine(result, part)
            return result
        if isinstance(node, ast.UnaryOp):
            return self.unary(node)
        if isinstance(node, ast.BinOp):
            op = _BINARY.get(type(node.op))
            if op is None:
                raise self.fail(f"operator {type(node.op).__name__} is not allowed")
            left, right = self.build(node.left), self.build(node.right)
            if not isinstance(left, pl.Expr) and not isinstance(right, pl.Expr):
                # 'a' * 10**11 or 1/0 would run here, in Python, before any column is read
                raise self.fail(
                    f"{ast.unparse(node)!r} is arithmetic between constants: write its value"
                )
            if isinstance(left, _Str) or isinstance(right, _Str):
                raise self.fail(".str needs a method, e.g. .str.contains('x')")
            return op(left, right)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Attribute) and node.attr == "str":
            return _Str(self.expr(node.value))
        raise self.fail(
            f"{type(node).__name__} is not allowed; use columns, literals and comparisons"
        )

    def expr(self, node: ast.AST) -> pl.Expr:
        value = self.build(node)
        if not isinstance(value, pl.Expr):
            raise self.fail(f"{ast.unparse(node)!r} must be a condition on a column")
        return value

    def compare(self, node: ast.Compare) -> pl.Expr:
        # a < b < c means (a < b) & (b < c), as in Python.
        left = self.build(node.left)
        result = None
        for op_node, right_node in zip(node.ops, node.comparators, strict=True):
            op = _COMPARE.get(type(op_node))
            if op is None:
                raise self.fail(f"{type(op_node).__name__} is not allowed; use .is_in([...])")
            right = self.build(right_node)
            if isinstance(left, _Str) or isinstance(right, _Str):
                raise self.fail(".str needs a method, e.g. .str.contains('x')")
            if not isinstance(left, pl.Expr) and not isinstance(right, pl.Expr):
                raise self.fail(f"{ast.unparse(node)!r} compares two constants")
            term = op(left, right) if isinstance(left, pl.Expr) else op(pl.lit(left), right)
            result = term if result is None else result & term
            left = right
        return result

    def unary(self, node: ast.UnaryOp) -> Any:
        operand = self.build(node.operand)
        if isinstance(node.op, (ast.Not, ast.Invert)):
            if not isinstance(operand, pl.Expr):
                raise self.fail(f"{ast.unparse(node)!r} negates a constant")
            return ~operand
        if isinstance(node.op, (ast.USub, ast.UAdd)):
            if not (isinstance(operand, pl.Expr) or _is_number(operand)):
                raise self.fail(f"{ast.unparse(node)!r} applies a sign to a non-number")
            return -operand if isinstance(node.op, ast.USub) else operand
        raise self.fail(f"operator {type(node.op).__name__} is not allowed")

    def call(self, node: ast.Call) -> Any:
        # The callee is checked before its arguments, so the message names what is refused.
        func = node.func
        is_col = (isinstance(func, ast.Name) and func.id == "col") or _is_pl(func, "col")
        if not (is_col or _is_pl(func, "lit") or isinstance(func, ast.Attribute)):
            raise self.fail(f"call of {ast.unparse(func)!r} is not allowed; use pl.col('name')")
        if isinstance(func, ast.Attribute) and not (is_col or _is_pl(func, "lit")):
            if isinstance(func.value, ast.Name) and func.value.id in ("pl", "polars"):
                raise self.fail(
                    f"pl.{func.attr} is not allowed; use pl.col('name') or pl.lit(value)"
                )
            if func.attr not in EXPR_METHODS | STR_METHODS:
                allowed = sorted(EXPR_METHODS) + [f"str.{m}" for m in sorted(STR_METHODS)]
                raise self.fail(
                    f"method {func.attr!r} is not allowed; allowed: {', '.join(allowed)}"
                )
        if node.keywords and not all(kw.arg for kw in node.keywords):
            raise self.fail("**kwargs are not allowed")
        args = [self.build(arg) for arg in node.args]
        kwargs = {kw.arg: self.build(kw.value) for kw in node.keywords}
        if is_col:
            if len(args) != 1 or kwargs:
                raise self.fail("col() takes exactly one column name")
            return self.column(args[0])
        if _is_pl(func, "lit"):
            if len(args) != 1 or kwargs or isinstance(args[0], (pl.Expr, _Str)):
                raise self.fail("pl.lit() takes exactly one literal")
            return pl.lit(args[0])
        target = self.build(func.value)
        if isinstance(target, _Str) and func.attr in STR_METHODS:
            method = getattr(target.expr.str, func.attr)
        elif isinstance(target, pl.Expr) and func.attr in EXPR_METHODS:
            method = getattr(target, func.attr)
        else:
            where = "on .str" if isinstance(target, _Str) else "on an expression"
            raise self.fail(f"method {func.attr!r} is not allowed {where}")
        try:
            return method(*args, **kwargs)
        except (TypeError, ValueError, pl.exceptions.PolarsError) as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise self.fail(f"{func.attr}() rejected its arguments ({first_line})") from None


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_pl(node: ast.AST, attr: str) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == attr
        and isinstance(node.value, ast.Name)
        and node.value.id in ("pl", "polars")
    )
