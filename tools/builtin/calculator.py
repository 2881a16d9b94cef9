"""A calculator tool that evaluates arithmetic safely, by walking the AST.

Only numbers, ``+ - * / // % **``, unary ``+``/``-``, parentheses, the constants ``pi``, ``e``
and ``tau``, and a few functions of :mod:`math` are understood. Anything else — names,
attribute access, subscripts, lambdas, comprehensions, strings, keyword arguments — is refused
before anything is evaluated. Sizes are bounded: the input length, the nesting depth, and the
size of integer results (``9**9**9`` is refused at once instead of computed).

A flat chain such as ``1 + 2 + ... + 2000`` or ``2 * 3 * 4`` is one level of nesting however long
it is (it is evaluated left to right in a loop); what counts as nesting is an operand that is
itself an operation: parentheses on the right (``1 + (2 + (3 + ...))``), unary chains
(``- - - 1``), power towers (``2 ** 2 ** 2``), function arguments.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

from ..base import Tool

__all__ = ["CalculatorError", "MAX_EXPRESSION_LENGTH", "MAX_INT_BITS", "calculator", "evaluate"]

MAX_EXPRESSION_LENGTH = 4_000
"""Longest expression accepted, in characters (a flat sum of ~2,000 one-digit terms)."""

MAX_INT_BITS = 10_000
"""Largest integer result, in bits (about 3000 decimal digits)."""

MAX_DEPTH = 100
"""Deepest nesting of operations accepted."""


class CalculatorError(ValueError):
    """The expression is not allowed or cannot be evaluated; the message says why."""


_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}
def _round(value: Any, ndigits: Any = None) -> Any:
    """``round`` with a bounded ``ndigits`` (``round(5, -10**9)`` would compute 10**10**9)."""
    if ndigits is None:
        return round(value)
    if not isinstance(ndigits, int) or abs(ndigits) > 1_000:
        raise CalculatorError("round(): ndigits must be an integer between -1000 and 1000")
    return round(value, ndigits)


_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": abs, "round": _round, "min": min, "max": max,
    "sqrt": math.sqrt, "exp": math.exp, "log": math.log, "log10": math.log10,
    "log2": math.log2, "sin": math.sin, "cos": math.cos, "tan": math.tan, "asin": math.asin,
    "acos": math.acos, "atan": math.atan, "atan2": math.atan2, "sinh": math.sinh,
    "cosh": math.cosh, "tanh": math.tanh, "floor": math.floor, "ceil": math.ceil,
    "hypot": math.hypot, "degrees": math.degrees, "radians": math.radians,
}
_SYMBOLS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//",
            ast.Mod: "%", ast.Pow: "**"}


def _int_bits(value: Any) -> int:
    return abs(value).bit_length() if isinstance(value, int) else 0


def _check_size(value: Any) -> Any:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise CalculatorError(f"the result is too large (more than {MAX_INT_BITS} bits)")
    if isinstance(value, float) and not math.isfinite(value):
        raise CalculatorError("the result is too large (not a finite number)")
    return value


def _power(base: Any, exponent: Any) -> Any:
    """``base ** exponent`` with the size of an integer result estimated before computing."""
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0:
        if abs(base) > 1 and (exponent > MAX_INT_BITS
                              or (_int_bits(base) - 1) * exponent > MAX_INT_BITS):
            raise CalculatorError(
                f"the exponent is too large: the result would exceed {MAX_INT_BITS} bits")
    elif isinstance(exponent, int) and abs(exponent) > MAX_INT_BITS and abs(base) > 1:
        raise CalculatorError(f"the exponent {exponent} is too large")
    result = base ** exponent
    if isinstance(result, complex):
        raise CalculatorError("the result is a complex number (e.g. a fractional power of a "
                              "negative number), which is not supported")
    return result


def _evaluate(node: ast.AST, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise CalculatorError(f"the expression is nested too deeply (over {MAX_DEPTH} levels)")
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, depth + 1)
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise CalculatorError(f"only numbers are allowed, not {value!r}")
        return _check_size(value)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _evaluate_chain(node, depth)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand, depth + 1))
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise CalculatorError(f"unknown name {node.id!r}: only the constants "
                              f"{', '.join(sorted(_CONSTANTS))} are allowed")
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name):
            raise CalculatorError(f"calling {_what(node.func)} is not allowed; only the "
                                  f"functions {', '.join(sorted(_FUNCTIONS))} can be called")
        if node.func.id not in _FUNCTIONS:
            raise CalculatorError(f"function {node.func.id!r} is not allowed; allowed "
                                  f"functions: {', '.join(sorted(_FUNCTIONS))}")
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise CalculatorError("functions take plain positional arguments only")
        args = [_evaluate(a, depth + 1) for a in node.args]
        name = node.func.id
        try:
            return _check_size(_FUNCTIONS[name](*args))
        except CalculatorError:
            raise
        except (TypeError, ValueError, OverflowError) as exc:
            raise CalculatorError(f"{name}() failed: {exc}") from None
    raise CalculatorError(f"{_what(node)} is not allowed; only arithmetic on numbers is")


def _evaluate_chain(node: ast.BinOp, depth: int) -> Any:
    """A left-leaning chain of binary operations (``a + b * c - d ...`` parses as
    ``((a + (b * c)) - d) ...``), evaluated left to right in a loop: its length is not
    nesting, so only its operands count one level deeper."""
    chain: list[ast.BinOp] = []
    left: ast.AST = node
    while isinstance(left, ast.BinOp) and type(left.op) in _BINARY:
        chain.append(left)
        left = left.left
    value = _evaluate(left, depth + 1)
    for op_node in reversed(chain):
        right = _evaluate(op_node.right, depth + 1)
        op = op_node.op
        if isinstance(op, ast.Div | ast.FloorDiv | ast.Mod) and right == 0:
            raise CalculatorError(f"division by zero in {_SYMBOLS[type(op)]!r}")
        if isinstance(op, ast.Pow):
            value = _check_size(_power(value, right))
        else:
            value = _check_size(_BINARY[type(op)](value, right))
    return value


_KINDS = {ast.Attribute: "attribute access", ast.Subscript: "subscripting",
          ast.Lambda: "a lambda", ast.ListComp: "a comprehension",
          ast.SetComp: "a comprehension", ast.DictComp: "a comprehension",
          ast.GeneratorExp: "a generator expression", ast.Compare: "a comparison",
          ast.BoolOp: "a boolean operator", ast.IfExp: "a conditional expression",
          ast.NamedExpr: "an assignment", ast.Call: "a call", ast.List: "a list",
          ast.Tuple: "a tuple", ast.Dict: "a dict", ast.Set: "a set",
          ast.JoinedStr: "an f-string", ast.Starred: "unpacking"}


def _what(node: ast.AST) -> str:
    """A readable name for a kind of syntax."""
    return _KINDS.get(type(node), f"the syntax {type(node).__name__!r}")


def evaluate(expression: str) -> int | float:
    """Evaluate an arithmetic expression safely (see the module docstring); raises
    :class:`CalculatorError` with a clear message for anything else."""
    if not isinstance(expression, str):
        raise CalculatorError("the expression must be a string")
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise CalculatorError(f"the expression is too long ({len(expression)} characters; "
                              f"at most {MAX_EXPRESSION_LENGTH})")
    if "\x00" in expression:
        raise CalculatorError("the expression contains a NUL character")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except RecursionError:  # Python's parser, past its own depth limit
        raise CalculatorError("the expression is nested too deeply to parse") from None
    except (SyntaxError, ValueError, MemoryError) as exc:
        reason = exc.msg if isinstance(exc, SyntaxError) else type(exc).__name__
        raise CalculatorError(f"not a valid arithmetic expression: {reason}") from None
    try:
        return _evaluate(tree, 0)
    except ZeroDivisionError:
        raise CalculatorError("division by zero") from None
    except OverflowError:
        raise CalculatorError("the result is too large") from None
    except RecursionError:
        raise CalculatorError("the expression is nested too deeply") from None


def _calculator(expression: str) -> int | float:
    """Evaluate an arithmetic expression and return the number.

    Supports numbers, + - * / // % ** (power), unary minus, parentheses, the constants pi, e
    and tau, and the functions abs, round, min, max, sqrt, exp, log, log10, log2, sin, cos,
    tan, asin, acos, atan, atan2, sinh, cosh, tanh, floor, ceil, hypot, degrees, radians.

    Args:
        expression: the arithmetic expression, e.g. "(2 + 3) * sqrt(16) / 7".
    """
    return evaluate(expression)


calculator = Tool(_calculator, name="calculator", description=(
    "Evaluate an arithmetic expression and return the number. Supports numbers, + - * / // % "
    "** (power), unary minus, parentheses, the constants pi, e and tau, and the functions "
    + ", ".join(sorted(_FUNCTIONS)) + "."))
"""The calculator tool (a :class:`~graphflow.tools.Tool` named ``"calculator"``)."""
