"""What an allow-listed call costs, estimated from its arguments before anything runs.

Allow-listed globals cannot run foreign code, but some of them allocate or compute in
proportion to a number in the pickle: ``bytearray(2**30)`` is a 1 GiB allocation from a
30-byte file, ``Fraction('1e30000000')`` computes ``10**30000000`` (about a minute of
CPU), ``torch.nn.Linear(16384, 16384)`` allocates and initialises 1 GiB of weights.
Legitimate pickles carry their data, so what they allocate is of the order of the file's
size; the scanner reports calls whose estimate is far larger (the budget in
:class:`~mgattest.inspect._limits.Limits`), and the restricted unpickler refuses them.

:func:`estimate` returns a :class:`Cost` or None (no rule: the call is cheap, or its
cost is bounded by data the pickle must carry). Values the walker could not follow
(results of other calls) count as unknown sizes: for a sizing argument that is itself
a finding, since a cheap-looking file must not hide a large allocation behind a call.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from mgattest.inspect._allowlist import UFUNCS

UNKNOWN = -1  # a sizing argument the walker cannot see

Computed = Callable[[object], bool]
"""``computed(value)``: whether a symbolic value is the result of a call (unknown until load)."""


@dataclass(frozen=True)
class Cost:
    """``amount`` bytes (or, for ``kind == "cpu"``, decimal digits computed)."""

    kind: str  # "memory" | "cpu" | "unbounded" (what says why)
    amount: int
    what: str


_TORCH_STORAGE_BYTES = {"Double": 8, "Long": 8, "ComplexDouble": 16, "ComplexFloat": 8,
                        "Float": 4, "Int": 4, "Half": 2, "BFloat16": 2, "Short": 2,
                        "Char": 1, "Byte": 1, "Bool": 1, "Untyped": 1, "Typed": 1}
_EXPONENT = re.compile(r"[eE]\s*([+-]?\d[\d_]*)\s*$")
_NUMPY_ARRAY_BUILDERS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
}
_DECIMAL_LIKE = {("fractions", "Fraction"), ("decimal", "Decimal")}
# Protocols 0-2 write bytes as _codecs.encode(text, "latin1"); other codecs are not
# needed, and some are quadratic (punycode: 5000 characters take ~10 s).
_LINEAR_CODECS = frozenset({"latin1", "latin-1", "latin_1", "iso-8859-1", "iso8859-1",
                            "ascii", "utf-8", "utf8", "utf_8"})


def _int(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


class _Sizes:
    """Reads sizes out of symbolic arguments; ``computed(value)`` says whether a value is
    the result of a call (unknown until load time)."""

    def __init__(self, computed: Computed) -> None:
        self.computed = computed

    def size(self, value: object) -> int:
        """An int argument (>= 0), UNKNOWN when computed, 0 for data (str, bytes...)."""
        n = _int(value)
        if n is not None:
            return max(n, 0)
        return UNKNOWN if self.computed(value) else 0

    def product(self, shape: object) -> int:
        """Elements of an array shape (an int or a tuple of ints)."""
        if not isinstance(shape, tuple):
            return self.size(shape)
        total = 1
        for dim in shape:
            n = self.size(dim)
            if n == UNKNOWN:
                return UNKNOWN
            total *= n
        return total


def shape_elements(shape: object) -> int:
    """Elements of a literal shape (an int or a tuple of ints); 0 when not literal."""
    return max(_Sizes(lambda _v: False).product(shape), 0)


def _range_length(args: tuple[object, ...], sizes: _Sizes) -> int:
    ints = [n for n in map(_int, args) if n is not None]
    if not args or len(args) > 3 or len(ints) != len(args):
        return UNKNOWN if any(sizes.computed(a) for a in args) else 0
    try:
        return len(range(*ints))
    except (OverflowError, ValueError):
        return 1 << 63  # longer than sys.maxsize, or a zero step (which fails anyway)


def _exponent(text: object) -> int:
    """The decimal exponent written in a number string (0 if none)."""
    if not isinstance(text, str):
        return 0
    found = _EXPONENT.search(text[-64:])
    if not found:
        return 0
    try:
        return abs(int(found.group(1)))
    except ValueError:
        return 0


def show(value: object, depth: int = 0) -> str:
    """A short description of a symbolic value that never walks it deeply.

    ``repr`` is not safe here: tuples that share their items (built through the memo)
    expand exponentially, and a format precision cuts the text only after rendering it.
    """
    if value is None or isinstance(value, (bool, int, float)):
        text = repr(value)
    elif isinstance(value, (str, bytes)):
        text = repr(value[:40])
    elif isinstance(value, tuple) and depth < 2:
        inner = ", ".join(show(item, depth + 1) for item in value[:6])
        text = f"({inner}{', ...' if len(value) > 6 else ''})"
    else:
        text = f"<{type(value).__name__.lstrip('_')}>"
    return text if len(text) <= 80 else text[:77] + "..."


def _one(_value: object) -> int:
    return 1


def estimate(module: str, name: str, args: object, *, init: bool, computed: Computed,
             itemsize: Callable[[object], int] = _one, depth: int = 0) -> Cost | None:
    """The cost of calling ``module.name`` with ``args``.

    ``init`` is True when ``__init__`` runs too (REDUCE, INST, OBJ); NEWOBJ only runs
    ``__new__``. ``computed(value)`` tells results of other calls from literal data;
    ``itemsize(value)`` is the element size of a symbolic numpy dtype (at least 1).
    """
    args = args if isinstance(args, tuple) else (args,)
    sizes = _Sizes(computed)
    first = args[0] if args else None
    pair = (module, name)
    label = f"{module}.{name}"
    if pair == ("copyreg", "_reconstructor") and len(args) == 3 and depth < 2:
        # _reconstructor(cls, base, state) runs base.__new__(cls, state) and, when base
        # has its own __init__, base.__init__(obj, state): cost of base(state)
        base = args[1]
        real = getattr(base, "real", None)  # a symbolic Global's (module, name)
        return None if not isinstance(real, tuple) else estimate(
            real[0], real[1], (args[2],), init=True, computed=computed, itemsize=itemsize,
            depth=depth + 1)
    if pair == ("_codecs", "encode"):
        codec = args[1] if len(args) > 1 else "utf-8"
        if not (isinstance(codec, str) and codec.lower() in _LINEAR_CODECS):
            return Cost("unbounded", UNKNOWN, f"{label} with the codec {show(codec)} (only "
                        "latin1/ascii/utf-8 are linear-time and needed by pickles)")
        return None
    if pair in (("builtins", "bytes"), ("builtins", "bytearray")) and (
            init or name == "bytes"):
        n = sizes.size(first)
        return Cost("memory", n, f"{label}({n if n >= 0 else 'computed size'})") if n else None
    if pair == ("builtins", "range"):
        length = _range_length(args, sizes)
        return Cost("memory", length * 8 if length >= 0 else UNKNOWN,
                    f"range of {length if length >= 0 else 'a computed number of'} items")
    if pair in _DECIMAL_LIKE:
        digits = _exponent(first)
        return Cost("cpu", digits, f"{label}({show(first)}) computes 10**{digits}") \
            if digits else None
    # numpy allocates shape x itemsize (and fills object arrays with None)
    if pair in _NUMPY_ARRAY_BUILDERS and len(args) >= 2:
        return _elements(sizes.product(args[1]), itemsize(args[2] if len(args) > 2 else None),
                         f"{label} of shape {show(args[1])}")
    if pair == ("numpy.ma.core", "_mareconstruct") and len(args) >= 3:
        return _elements(sizes.product(args[2]), itemsize(args[3] if len(args) > 3 else None),
                         f"{label} of shape {show(args[2])}")
    if pair == ("numpy", "ndarray"):
        return _elements(sizes.product(first), itemsize(args[1] if len(args) > 1 else None),
                         f"{label} of shape {show(first)}")
    if pair == ("sklearn.tree._tree", "Tree") and len(args) >= 3:
        return _elements(sizes.size(args[2]), 8, f"{label} with {show(args[2])} outputs")
    if module in ("torch", "torch._tensor") and name == "Tensor":
        return _elements(sizes.product(tuple(args)), 4, f"{label}{show(args)}")
    if name.endswith("Storage") and module in ("torch", "torch.storage"):
        width = _TORCH_STORAGE_BYTES.get(name[:-len("Storage")], 8)
        return _elements(sizes.size(first), width, f"{label}({show(first)})")
    if module == "numpy" and name in UFUNCS:
        # pickles only name ufuncs; a call broadcasts its inputs, (n,1) + (1,n) is n*n
        return Cost("memory", UNKNOWN, f"call of the ufunc {label} (broadcasting)")
    if init and module.startswith("torch.nn.modules.") and args:
        # pickles restore modules through __new__ and BUILD; a constructor call with
        # sizes allocates (and initialises) its parameters
        dims = [sizes.size(a) for a in args if not isinstance(a, bool)]
        if UNKNOWN in dims:
            return Cost("memory", UNKNOWN, f"{label} constructor with computed sizes")
        total = 1
        for n in dims:
            total *= max(n, 1)
        return Cost("memory", total * 4, f"{label}{show(args)}")
    return None


def _elements(count: int, width: int, what: str) -> Cost:
    return Cost("memory", UNKNOWN if count == UNKNOWN else count * width, what)


def _fixed_hash(key: object, depth: int = 0) -> int | None:
    """``hash(key)`` when it is the same in every process (numbers, None, tuples of them);
    None for str/bytes (randomised per process) and anything else."""
    if key is None or type(key) in (int, bool):
        return hash(key)
    if type(key) is tuple and depth < 4:
        parts = [_fixed_hash(item, depth + 1) for item in key]
        return None if None in parts else hash(key)
    return None


class KeyHashes:
    """The keys inserted into one dict or set, counted by hash.

    Keys with equal hashes make every insertion compare against all earlier ones:
    ``{k * (2**61 - 1): None for k in ...}`` in a 260 KB pickle costs ~10 s of CPU,
    quadratic in the count. Keys whose hash the walker cannot know (results of calls,
    huge ints) are counted too: a dict of many of them cannot be bounded.
    """

    __slots__ = ("by_hash", "unknown", "reported")

    def __init__(self) -> None:
        self.by_hash: dict[int, int] = {}
        self.unknown = 0
        self.reported = False

    def note(self, keys: Iterable[object], *, computed: Computed, max_equal: int, max_unknown: int) -> str | None:
        """Count ``keys``; a reason (once) when they make insertion quadratic."""
        for key in keys:
            fixed = _fixed_hash(key)
            if fixed is not None:
                count = self.by_hash.get(fixed, 0) + 1
                self.by_hash[fixed] = count
                if count > max_equal and not self.reported:
                    self.reported = True
                    return (f"more than {max_equal} keys of one dict/set share the hash "
                            f"{fixed}: inserting them costs quadratic CPU time")
            elif computed(key):
                self.unknown += 1
                if self.unknown > max_unknown and not self.reported:
                    self.reported = True
                    return (f"more than {max_unknown} keys of one dict/set are computed "
                            "at load time: their hash collisions cannot be bounded")
        return None
