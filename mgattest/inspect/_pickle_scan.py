"""Opcode-level pickle analysis: what a pickle would import and call, without loading it.

A small symbolic machine walks the opcodes. It keeps just enough of the values (short
strings, ints, tuples, small dicts) to resolve ``STACK_GLOBAL`` through the memo and to
follow joblib's raw array bytes, and represents everything else as opaque. Its memory is
bounded by :class:`~mgattest.inspect._limits.Limits` and it never recurses on the input's
nesting, so hostile input ends in a ``malformed`` finding, not a crash or a hang.
"""

from __future__ import annotations

import codecs
import re
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mgattest.inspect import _allowlist as allowlist, _npy as npy, _pickle_cost as pickle_cost, _pickle_text as pickle_text
from mgattest.inspect._limits import DEFAULT_LIMITS, Buffer, Limits
from mgattest.inspect._report import (DANGEROUS, INFO, MALFORMED, SUSPICIOUS, Finding,
                                     ImportRecord)

if TYPE_CHECKING:
    from mgattest.inspect._admission import Admission

_WRAPPER = ("joblib.numpy_pickle", "NumpyArrayWrapper")
_RECONSTRUCTOR = ("copyreg", "_reconstructor")
_DTYPE = ("numpy", "dtype")
# Tuples expanding to more items are remembered with their size; lighter ones are
# measured again when needed (cheap: at most this many items).
_LIGHT_TUPLE = 64
_ARRAY_MAKERS = frozenset({("numpy.core.multiarray", "_reconstruct"),
                           ("numpy._core.multiarray", "_reconstruct"), ("numpy", "ndarray")})
_MASKED_ARRAY_MAKER = ("numpy.ma.core", "_mareconstruct")
_REBUILD_FROM_TYPE = ("torch._tensor", "_rebuild_from_type_v2")
_DICT_TYPES = frozenset({("builtins", "dict"), ("collections", "OrderedDict"),
                         ("collections", "defaultdict"), ("collections", "Counter")})
_TORCH_MAGIC = 0x1950A86A20F9469CFC6C
# UNICODE lines longer than this are not decoded (kept opaque, accepted unchecked)
_MAX_VALIDATED_LINE = 1 << 20


SCAN_LIMIT = "scan-limit"
"""Finding kind: the scanner stopped at one of its own limits; CPython would read on."""

_NPY_ITEM_HASOBJECT = 0x01


class MalformedPickle(Exception):
    """Raised inside the walker; turned into a ``malformed`` finding by the caller.

    ``scan_limit`` is True when the *scanner* gave up (time, size or analysis limits)
    although CPython's unpickler would go on: then nothing about the rest is known.
    Otherwise CPython's unpicklers reject the stream at the same opcode.
    """

    def __init__(self, detail: str, offset: int, *, scan_limit: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.offset = offset
        self.scan_limit = scan_limit


class _Opaque:
    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what

    def __repr__(self) -> str:
        return f"<{self.what}>"


OPAQUE = _Opaque("value")
_BIG = _Opaque("large value")


class _LenientMemo(dict[object, object]):
    """The memo of a walk that starts mid-stream: unknown keys hold unknown values."""

    def __missing__(self, key: object) -> object:
        return OPAQUE


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _Mark:
    __slots__ = ()


class Global:
    """An imported object: ``real`` is what the unpickler resolves (after Py2 aliasing)."""

    __slots__ = ("module", "name", "real", "offset")

    def __init__(self, module: str, name: str, real: tuple[str, str], offset: int) -> None:
        self.module, self.name, self.real, self.offset = module, name, real, offset


class Obj:
    """The result of calling or instantiating something (REDUCE, NEWOBJ, OBJ, INST)."""

    __slots__ = ("func", "args", "state", "offset")

    def __init__(self, func: object, args: object, offset: int) -> None:
        self.func, self.args, self.offset = func, args, offset
        self.state: object = None


class SList:
    """A list: its first items (up to the tracking cap) and how many it holds in all."""

    __slots__ = ("items", "truncated", "length")

    def __init__(self, items: list[object], length: int | None = None) -> None:
        self.items, self.truncated = items, False
        self.length = len(items) if length is None else length


class SDict:
    __slots__ = ("d", "truncated", "hashes")

    def __init__(self) -> None:
        self.d: dict[object, object] = {}
        self.truncated = False
        self.hashes: pickle_cost.KeyHashes | None = None  # made on the first key


class SSet:
    """A set or frozenset: only its keys' hashes are kept (see ``KeyHashes``)."""

    __slots__ = ("hashes",)

    def __init__(self) -> None:
        self.hashes: pickle_cost.KeyHashes | None = None


@dataclass
class ScanContext:
    """Where findings go and the bounds that apply while scanning one file."""

    member: str | None = None
    limits: Limits = DEFAULT_LIMITS
    extra_allowed: frozenset[tuple[str, str]] = frozenset()
    findings: list[Finding] = field(default_factory=list)
    imports: list[ImportRecord] = field(default_factory=list)
    deadline: float = 0.0
    persistent_ids: int = 0
    compression: str | None = None  # outer compression of the file, if any
    allocated: int = 0  # bytes the allow-listed calls seen so far would allocate
    heavy_tuple_seen: bool = False  # a tuple expanding beyond max_expanded_tuple was reported
    hash_work: int = 0  # tuple items hashed by dict/set insertions so far (expanded)
    hash_work_seen: bool = False
    pickle_blobs: int = 0  # pickle data scanned in this file: loading it means unpickling
    joblib_arrays: int = 0  # joblib array payloads skipped (only a joblib=True walk does)
    admission: Admission | None = None  # the top-level pickle walk's, if any

    def pristine(self) -> bool:
        """Nothing has been scanned into this context yet (its counters are all zero)."""
        return not (self.findings or self.imports or self.persistent_ids or self.allocated
                    or self.hash_work or self.pickle_blobs or self.joblib_arrays
                    or self.heavy_tuple_seen or self.hash_work_seen)

    def __post_init__(self) -> None:
        if not self.deadline:
            self.deadline = time.monotonic() + self.limits.time_budget_s

    def trial(self) -> ScanContext:
        """A fresh context for a trial walk: same member, limits, allow-list and deadline;
        nothing of this one's findings or counters (the caller decides what to keep)."""
        return ScanContext(member=self.member, limits=self.limits,
                           extra_allowed=self.extra_allowed, deadline=self.deadline)

    def add(self, severity: str, kind: str, detail: str, offset: int | None = None,
            module: str | None = None, name: str | None = None) -> None:
        self.findings.append(Finding(severity, kind, detail, module, name, offset, self.member))


@dataclass
class StreamResult:
    """One pickle stream: where it ended, its protocol, and the value it built (symbolic)."""

    end: int
    proto: int
    value: object


def _hashable(key: object) -> bool:
    try:
        hash(key)
    except TypeError:
        return False
    return True


def _dtype_info(value: object, depth: int = 0) -> tuple[int, bool]:
    """(itemsize, has_object) of a symbolic ``numpy.dtype(...)`` value."""
    if depth > 16 or not isinstance(value, Obj) or not isinstance(value.func, Global) \
            or value.func.real != _DTYPE or not isinstance(value.args, tuple) \
            or not value.args or not isinstance(value.args[0], str):
        raise ValueError("array dtype is not a plain numpy.dtype")
    code = value.args[0]
    state = value.state if isinstance(value.state, tuple) else ()
    if value.state is not None and len(state) not in (8, 9):
        raise ValueError("array dtype has a state layout numpy no longer writes")
    try:  # the type string as numpy parses it ('object', 'i4,O', '(1,)O' ...)
        has_object = npy.descr_has_object(code)
    except npy.NpyError as exc:
        raise ValueError(str(exc)) from None
    if len(state) > 7:  # numpy.dtype.__setstate__ takes hasobject from the flags too
        if not isinstance(state[7], int):
            raise ValueError("array dtype flags are not an integer")
        has_object |= bool(state[7] & _NPY_ITEM_HASOBJECT)
    elsize = state[5] if len(state) > 5 and isinstance(state[5], int) else -1
    if len(state) > 4 and isinstance(state[4], SDict):  # structured: fields
        if state[4].truncated:
            raise ValueError("too many dtype fields to analyse")
        for field_spec in state[4].d.values():
            if isinstance(field_spec, tuple) and field_spec:
                has_object |= _dtype_info(field_spec[0], depth + 1)[1]
    if len(state) > 2 and isinstance(state[2], tuple) and state[2]:  # subarray
        has_object |= _dtype_info(state[2][0], depth + 1)[1]
    kind = code.lstrip("<>|=")[:1]
    digits = "".join(ch for ch in code if ch.isdigit())
    from_code = int(digits) * (4 if kind == "U" else 1) if digits else (
        8 if kind in ("M", "m", "O") else None)
    # numpy takes flexible sizes from the state; refuse a state that disagrees with the
    # type code, or joblib and this scanner could skip different byte counts
    if elsize > 0 and from_code is not None and elsize != from_code:
        raise ValueError(f"dtype {code!r} claims itemsize {elsize}")
    size = elsize if elsize > 0 else from_code
    if size is None and has_object:
        size = 8  # unused: object arrays are read as a nested pickle, not by size
    if size is None:
        raise ValueError(f"cannot size dtype {code!r}")
    return size, has_object


def _is_wrapper(value: object) -> bool:
    if not isinstance(value, Obj) or not isinstance(value.func, Global):
        return False
    if value.func.real == _WRAPPER:
        return True
    return (value.func.real == _RECONSTRUCTOR and isinstance(value.args, tuple)
            and bool(value.args) and isinstance(value.args[0], Global)
            and value.args[0].real == _WRAPPER)


class _Walker:
    """Walks one pickle stream from ``pos``."""

    def __init__(self, data: Buffer, ctx: ScanContext, *, joblib: bool, end: int) -> None:
        self.data = data
        self.ctx = ctx
        self.joblib = joblib
        self.end = end
        self.proto = 0
        self.lenient = False  # shadow walks: unknown stack and memo become opaque values
        # tuple -> its size fully expanded, kept (with the tuple) for the heavy ones only
        self._heavy_tuples: dict[int, tuple[object, int]] = {}

    # -- helpers -------------------------------------------------------------------------
    def _line(self, pos: int) -> tuple[bytes, int]:
        nl = self.data.find(b"\n", pos, self.end)
        if nl < 0:
            # Both unpicklers accept a last line without newline and drop its last byte
            # (readline()[:-1]); e.g. "cos\nsystemX" at EOF still imports os.system.
            # At EOF the Python unpickler reads an empty line and goes on (b"c." makes it
            # call find_class("", "")): scan what it would do; the stream then ends
            # without STOP, which is reported as truncated anyway.
            if pos >= self.end:
                return b"", pos
            nl = self.end - 1
        # No length limit: CPython reads lines of any length, and so must the scanner.
        # Callers keep long lines as opaque values.
        return bytes(self.data[pos:nl]), min(nl + 1, self.end)

    # Memo opcodes come in three widths: BIN* (1-byte key), LONG_BIN* (4-byte little
    # endian key) and the text form (decimal line). PUT and GET share the layout.
    _MEMO_WIDTH = {0x71: 1, 0x68: 1, 0x72: 4, 0x6A: 4}

    def _memo_key(self, op: int, pos: int, at: int,
                  kind: str) -> tuple[int | tuple[str, bytes], int]:
        """The memo key of a PUT/GET-family opcode at ``pos``, and the position after it."""
        width = self._MEMO_WIDTH.get(op)
        if width == 1:
            pos = self._need(pos, 1, f"BIN{kind}")
            return self.data[pos - 1], pos
        if width == 4:
            pos = self._need(pos, 4, f"LONG_BIN{kind}")
            return int.from_bytes(self.data[pos - 4:pos], "little"), pos
        line, pos = self._line(pos)
        key = pickle_text.parse_memo_key(line)
        if key is pickle_text.LARGE:
            return ("large key", line.strip()), pos
        if not isinstance(key, int):  # pickle_text.REJECTED, the only other result
            raise MalformedPickle(f"{kind} argument is not an integer", at)
        if kind == "PUT" and key < 0:
            raise MalformedPickle("negative PUT argument", at)
        return key, pos

    def _check_state_setter(self, func: Global, args: object, at: int) -> None:
        """``_rebuild_from_type_v2(func, type, args, state)`` setattr()s ``state`` onto
        whatever ``func(*args)`` returns; only torch's tensor rebuilders make new objects
        for it (any other allow-listed function might return a shared one)."""
        if func.real != _REBUILD_FROM_TYPE or not isinstance(args, tuple) or not args:
            return
        inner = args[0]
        if not (isinstance(inner, Global) and inner.real[0] == "torch._utils"
                and inner.real[1].startswith("_rebuild_")):
            self.ctx.add(SUSPICIOUS, "state-setter", f"{func.real[1]} sets attributes on "
                         f"the result of {_describe(inner)}, not of a torch tensor "
                         "rebuilder", at, *func.real)

    def _tuple(self, items: list[object], at: int) -> object:
        """A symbolic tuple, with its expanded size tracked.

        Through the memo, ``t1 = (t0, t0)``, ``t2 = (t1, t1)``... takes 6 bytes a level and
        doubles the size each time: hashing (as a dict key or set member), comparing or
        printing it visits every copy. ``pickle.load`` itself hangs on 200 such bytes.
        """
        weight = 1 + sum(self._weight(item) for item in items)
        value = tuple(items) if len(items) <= self.ctx.limits.max_tracked_container else _BIG
        if weight > _LIGHT_TUPLE:
            self._heavy_tuples[id(value)] = (value, weight)
        if weight > self.ctx.limits.max_expanded_tuple and not self.ctx.heavy_tuple_seen:
            self.ctx.heavy_tuple_seen = True
            self.ctx.add(SUSPICIOUS, "resource", f"tuples built from shared items expand to "
                         f"{weight} items: hashing, comparing or printing them takes time "
                         "exponential in the pickle's size", at)
        return value

    def _weight(self, value: object) -> int:
        """Expanded size of a symbolic value (tuples count their items, recursively)."""
        if type(value) is not tuple and value is not _BIG:
            return 1
        heavy = self._heavy_tuples.get(id(value))
        if heavy is not None and heavy[0] is value:
            return heavy[1]
        if not isinstance(value, tuple):  # _BIG (a tuple here is exactly a tuple)
            return 1
        return 1 + sum(self._weight(item) for item in value)  # light: at most _LIGHT_TUPLE

    def _is_heavy(self, value: object) -> bool:
        return self._weight(value) > _LIGHT_TUPLE

    def _note_keys(self, container: SDict | SSet, keys: Sequence[object], at: int) -> None:
        """Report keys whose hashes collide so much that inserting them is quadratic."""
        lim = self.ctx.limits
        if all(type(key) is str for key in keys):
            # The common case, on the hot path: a text key weighs 1 and its hash differs
            # in every process, so KeyHashes would count nothing for it.
            self._add_hash_work(len(keys), at)
            return
        weights = [self._weight(key) for key in keys]
        self._add_hash_work(sum(weights), at)
        keys = [_BIG if w > _LIGHT_TUPLE else key for key, w in zip(keys, weights, strict=True)]
        if container.hashes is None:
            container.hashes = pickle_cost.KeyHashes()
        problem = container.hashes.note(keys, computed=_is_computed_key,
                                        max_equal=lim.max_equal_key_hashes,
                                        max_unknown=lim.max_computed_keys)
        if problem:
            self.ctx.add(SUSPICIOUS, "resource", problem, at)

    def _add_hash_work(self, items: int, at: int) -> None:
        """Charge *items* hashed key items; report once when the total is out of bounds."""
        ctx = self.ctx
        ctx.hash_work += items
        if ctx.hash_work > ctx.limits.max_key_hash_work and not ctx.hash_work_seen:
            ctx.hash_work_seen = True
            ctx.add(SUSPICIOUS, "resource", f"dict/set keys total {ctx.hash_work} "
                    "tuple items to hash, far more than the pickle holds", at)

    def _alloc_budget(self) -> int:
        lim = self.ctx.limits
        return max(lim.min_alloc_budget, lim.alloc_per_pickle_byte * len(self.data))

    def _check_memo_key(self, key: object, at: int) -> None:
        """The C unpickler's memo is an array sized by the largest key (16 bytes a key)."""
        if isinstance(key, int) and key * 16 > self._alloc_budget():
            self.ctx.add(SUSPICIOUS, "resource", f"memo key {key} makes the C unpickler "
                         f"allocate {key * 16} bytes for its memo", at)

    def _charge(self, func: object, args: object, at: int, *, init: bool) -> None:
        """Report a call whose allocation or CPU is out of proportion to the pickle."""
        if not isinstance(func, Global):
            return
        self._check_state_setter(func, args, at)
        if func.real == ("builtins", "str") and isinstance(args, tuple) and args \
                and isinstance(args[0], (tuple, SList, SDict, SSet)):
            self.ctx.add(SUSPICIOUS, "resource", "builtins.str of a container renders all of "
                         "it (exponential when its items are shared)", at, *func.real)
        cost = pickle_cost.estimate(*func.real, args, init=init, computed=_is_computed,
                                    itemsize=_itemsize)
        if cost is not None:
            self._charge_cost(cost, at, func.real)

    def _charge_cost(self, cost: pickle_cost.Cost, at: int, pair: tuple[str, str]) -> None:
        """Add ``cost`` to the walk's budget; a ``resource`` finding when it is exceeded."""
        lim = self.ctx.limits
        budget = self._alloc_budget()
        if cost.kind == "unbounded":
            reason = "refused"
        elif cost.amount == pickle_cost.UNKNOWN:
            reason = "its size is computed at load time, so it cannot be bounded"
        elif cost.kind == "cpu":
            if cost.amount <= lim.max_decimal_exponent:
                return
            reason = f"an exponent above {lim.max_decimal_exponent} costs CPU time"
        else:
            self.ctx.allocated += cost.amount
            if cost.amount <= budget and self.ctx.allocated <= budget:
                return
            reason = (f"{cost.amount} bytes ({self.ctx.allocated} in total so far) exceed "
                      f"the budget of {budget} for a {len(self.data)}-byte pickle")
        self.ctx.add(SUSPICIOUS, "resource", f"{cost.what}: {reason}", at, *pair)

    def _check_array_state(self, array: Obj, state: object, at: int) -> None:
        """``ndarray.__setstate__((version, shape, dtype, fortran, data))``.

        numpy allocates shape x itemsize, and for object arrays reads ``len(shape)``
        items from the list without checking its length: a shorter list makes it read
        past the list's end (numpy 2.4 crashes the process).
        """
        if not (isinstance(array.func, Global) and isinstance(state, tuple)):
            return
        if array.func.real in _ARRAY_MAKERS and len(state) in (4, 5):
            shape, dtype, _fortran, data = state[-4:]
        elif array.func.real == _MASKED_ARRAY_MAKER and len(state) == 7:
            # MaskedArray.__setstate__ hands (shape, dtype, fortran, data) to ndarray's
            shape, dtype, _fortran, data = state[1:5]
        else:
            return
        count = pickle_cost.shape_elements(shape)
        self._charge_cost(pickle_cost.Cost("memory", count * _itemsize(dtype),
                                           f"array state of shape {pickle_cost.show(shape)}"),
                          at, array.func.real)
        try:
            has_object = _dtype_info(dtype)[1]
        except ValueError:
            has_object = True  # not a plain dtype: assume the worst
        if not has_object:
            return
        if isinstance(data, SList):
            if data.length < count:
                self.ctx.add(DANGEROUS, "array-state", f"object array state lists "
                             f"{data.length} items for {count} elements: numpy reads past "
                             "the end of the list (a crash, or worse)", at)
        elif _is_computed(data):
            self.ctx.add(SUSPICIOUS, "array-state", "object array state whose item list is "
                         "computed at load time: its length cannot be checked", at)

    def _refuse_global_target(self, target: object, opname: str, at: int) -> None:
        """Item and append opcodes on an imported object mutate it for the whole process."""
        if isinstance(target, Global):
            self.ctx.add(DANGEROUS, "global-mutation",
                         f"{opname} writes into the imported object "
                         f"{target.real[0]}.{target.real[1]} itself (shared by the whole "
                         "process), not into an instance", at, *target.real)

    def _check_slot_state(self, state: object, at: int) -> None:
        """BUILD's ``(state, slotstate)`` form calls ``setattr`` for each slot item.

        On an instance, ``setattr(obj, "__class__", X)`` retypes it and dunder names reach
        the type machinery; legitimate slot states only name plain attributes.
        """
        # Only the (dict-or-None, slots) shape is a slot state; other 2-tuples go to a
        # __setstate__ (numpy's RandomState, for one).
        if not (isinstance(state, tuple) and len(state) == 2) \
                or not (state[0] is None or isinstance(state[0], SDict)):
            return
        slots = state[1]
        computed_dict = isinstance(slots, Obj) and isinstance(slots.func, Global) \
            and slots.func.real in _DICT_TYPES
        if computed_dict or (isinstance(slots, SDict) and slots.truncated):
            self.ctx.add(SUSPICIOUS, "build-slots", "BUILD slot state whose attribute names "
                         "the scanner cannot see (not a plain dict)", at)
            return
        if not isinstance(slots, SDict):
            return
        for key in slots.d:
            if isinstance(key, (Obj, _Opaque, Global)):
                self.ctx.add(SUSPICIOUS, "build-slots", "BUILD slot state with an attribute "
                             f"name computed at load time ({_describe(key)})", at)
            elif isinstance(key, str) and key.startswith("__") and key.endswith("__"):
                self.ctx.add(DANGEROUS, "build-slots", f"BUILD slot state sets the special "
                             f"attribute {key!r} (setattr on the object)", at)

    @staticmethod
    def _text_value(value: object, error: str, at: int) -> object:
        """A value from :mod:`pickle_text`: refused lines raise, huge numerals are opaque."""
        if value is pickle_text.REJECTED:
            raise MalformedPickle(error, at)
        return _BIG if value is pickle_text.LARGE else value

    def _need(self, pos: int, n: int, what: str) -> int:
        if n < 0 or pos + n > self.end:
            raise MalformedPickle(
                f"truncated pickle: {what} needs {n} bytes, {max(self.end - pos, 0)} left", pos)
        return pos + n

    def _import(self, module: str, name: str, offset: int, opname: str) -> Global:
        ctx = self.ctx
        module, name = _shorten(module, ctx.limits.max_name_len), \
            _shorten(name, ctx.limits.max_name_len)
        real = allowlist.normalise(module, name, self.proto)
        allowed, severity = allowlist.classify(module, name, self.proto,
                                               extra_allowed=ctx.extra_allowed,
                                               joblib=self.joblib)
        ctx.imports.append(ImportRecord(real[0], real[1], offset, allowed, ctx.member))
        if not allowed:
            alias = "" if real == (module, name) else f" (written as {module}.{name})"
            ctx.add(severity or SUSPICIOUS, "import",
                    f"{opname} imports {real[0]}.{real[1]}{alias}, which is not in the "
                    "allow-list", offset, real[0], real[1])
        return Global(module, name, real, offset)

    def _skip_joblib_array(self, wrapper: Obj, pos: int, frame_end: int, op_at: int) -> int:
        self.ctx.joblib_arrays += 1
        state = wrapper.state
        if not isinstance(state, SDict):
            raise MalformedPickle("joblib array wrapper without a state dict", op_at)
        shape = state.d.get("shape")
        if not isinstance(shape, tuple) or not all(
                isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in shape):
            raise MalformedPickle("joblib array wrapper has no valid shape", op_at)
        try:
            itemsize, has_object = _dtype_info(state.d.get("dtype"))
        except ValueError as exc:
            raise MalformedPickle(f"joblib array: {exc}", op_at) from None
        if frame_end > pos:
            self.ctx.add(SUSPICIOUS, "frame-mismatch",
                         "joblib array data starts inside a pickle FRAME: joblib and the "
                         "pickle framer would read different bytes", pos)
        if has_object:
            # An object array is a complete nested pickle stream read by a plain Unpickler.
            return scan_stream(self.data, pos, self.ctx, joblib=False, end=self.end).end
        region = pos
        if state.d.get("numpy_array_alignment_bytes") is not None:
            pos = self._need(pos, 1, "joblib padding byte")
            pos = self._need(pos, self.data[pos - 1], "joblib padding")
        count = 1
        for dim in shape:
            count *= dim
        end = self._need(pos, count * itemsize, f"joblib array data ({count} x {itemsize} B)")
        self._shadow_pickle_load(region)
        return end

    def _shadow_pickle_load(self, start: int) -> None:
        """What would plain ``pickle.load`` do with the bytes joblib reads as array data?

        It keeps decoding them as opcodes. If they decode into an import outside the
        allow-list, joblib and pickle disagree about this file in a dangerous way.
        """
        shadow = self.ctx.trial()
        walker = _Walker(self.data, shadow, joblib=False, end=self.end)
        walker.proto = self.proto
        walker.lenient = True
        try:
            walker.run(start)
        except MalformedPickle:
            pass
        for finding in shadow.findings:
            if finding.kind == "import" and _IDENT.fullmatch(finding.module or "") \
                    and _NAME.fullmatch(finding.name or ""):
                self.ctx.add(finding.severity, "loader-mismatch",
                             f"bytes joblib reads as array data decode, for pickle.load, as "
                             f"opcodes importing {finding.module}.{finding.name}",
                             finding.offset, finding.module, finding.name)

    # -- the walk ------------------------------------------------------------------------
    def run(self, pos: int) -> StreamResult:  # one dispatch loop, on purpose
        data, ctx, end = self.data, self.ctx, self.end
        lim = ctx.limits
        cap = lim.max_tracked_container
        stack: list[object] = [OPAQUE] * 64 if self.lenient else []
        marks: list[int] = []
        memo: dict[object, object] = _LenientMemo() if self.lenient else {}
        # names reused across opcodes below; each holds whatever the stream pushed
        key: object
        module: object
        name: object
        frame_end = -1
        ops = 0
        floor = 0  # current mark: the stack may not be popped below it
        mark_obj = _Mark()

        def underflow(at: int) -> MalformedPickle:
            return MalformedPickle("pickle stack underflow", at)

        def pop_mark(at: int) -> list[object]:
            nonlocal floor
            if not marks:
                raise MalformedPickle("pickle MARK expected but missing", at)
            idx = marks.pop()
            items = stack[idx + 1:]
            del stack[idx:]
            floor = marks[-1] + 1 if marks else 0
            return items

        while True:
            if pos >= end:
                raise MalformedPickle("truncated pickle: stream ends without STOP", pos)
            at = pos
            op = data[pos]
            pos += 1
            ops += 1
            if not ops & 0xFFFF:
                if time.monotonic() > ctx.deadline:
                    raise MalformedPickle("scan time budget exceeded", at, scan_limit=True)
                if ops > lim.max_opcodes:
                    raise MalformedPickle("too many opcodes", at, scan_limit=True)
                if len(stack) > lim.max_stack:
                    raise MalformedPickle("pickle stack too large", at, scan_limit=True)
            if 0 <= frame_end <= at:
                frame_end = -1  # frame fully consumed: reads go to the file again
            # --- the hottest opcodes first, with inlined bounds checks ----------------------
            if op == 0x94:  # MEMOIZE
                if len(stack) <= floor:
                    raise underflow(at)
                if len(memo) >= lim.max_memo:
                    raise MalformedPickle("pickle memo too large", at, scan_limit=True)
                memo[len(memo)] = stack[-1]
            elif op == 0x8C:  # SHORT_BINUNICODE
                if pos >= end:
                    raise MalformedPickle("truncated pickle: SHORT_BINUNICODE length", at)
                n = data[pos]
                pos += 1 + n
                if pos > end:
                    raise MalformedPickle("truncated pickle: SHORT_BINUNICODE data", at)
                try:
                    stack.append(data[pos - n:pos].decode("utf-8", "surrogatepass"))
                except UnicodeDecodeError:
                    raise MalformedPickle("invalid UTF-8 in unicode string", at) from None
            elif op == 0x71:  # BINPUT
                if pos >= end:
                    raise MalformedPickle("truncated pickle: BINPUT", at)
                if len(stack) <= floor:
                    raise underflow(at)
                memo[data[pos]] = stack[-1]
                pos += 1
            elif op == 0x68:  # BINGET
                if pos >= end:
                    raise MalformedPickle("truncated pickle: BINGET", at)
                key = data[pos]
                pos += 1
                try:
                    stack.append(memo[key])
                except KeyError:
                    raise MalformedPickle(f"memo key {key} not found", at) from None
            elif op == 0x4B:  # BININT1
                if pos >= end:
                    raise MalformedPickle("truncated pickle: BININT1", at)
                stack.append(data[pos])
                pos += 1
            elif op == 0x47:  # BINFLOAT
                pos += 8
                if pos > end:
                    raise MalformedPickle("truncated pickle: BINFLOAT", at)
                stack.append(OPAQUE)
            elif op == 0x28:  # MARK
                marks.append(len(stack))
                stack.append(mark_obj)
                floor = len(stack)
            # --- memo -----------------------------------------------------------------
            elif op == 0x71 or op == 0x72 or op == 0x70:  # BINPUT, LONG_BINPUT, PUT
                key, pos = self._memo_key(op, pos, at, "PUT")
                if len(stack) <= floor:
                    raise underflow(at)
                self._check_memo_key(key, at)
                if key not in memo and len(memo) >= lim.max_memo:
                    raise MalformedPickle("pickle memo too large", at, scan_limit=True)
                memo[key] = stack[-1]
            elif op == 0x68 or op == 0x6A or op == 0x67:  # BINGET, LONG_BINGET, GET
                key, pos = self._memo_key(op, pos, at, "GET")
                try:
                    stack.append(memo[key])
                except KeyError:
                    raise MalformedPickle(f"memo key {key} not found", at) from None
            # --- scalars ----------------------------------------------------------------
            elif op == 0x4B:  # BININT1
                pos = self._need(pos, 1, "BININT1")
                stack.append(data[pos - 1])
            elif op == 0x4A:  # BININT
                pos = self._need(pos, 4, "BININT")
                stack.append(int.from_bytes(data[pos - 4:pos], "little", signed=True))
            elif op == 0x4D:  # BININT2
                pos = self._need(pos, 2, "BININT2")
                stack.append(int.from_bytes(data[pos - 2:pos], "little"))
            elif op == 0x8A or op == 0x8B:  # LONG1, LONG4
                if op == 0x8A:
                    pos = self._need(pos, 1, "LONG1")
                    n = data[pos - 1]
                else:
                    pos = self._need(pos, 4, "LONG4")
                    n = int.from_bytes(data[pos - 4:pos], "little", signed=True)
                    if n < 0:
                        raise MalformedPickle("LONG4 with negative length", at)
                pos = self._need(pos, n, "LONG")
                stack.append(int.from_bytes(data[pos - n:pos], "little", signed=True)
                             if n <= 64 else _BIG)
            elif op == 0x49 or op == 0x4C:  # INT, LONG (text)
                line, pos = self._line(pos)
                parse = pickle_text.parse_int if op == 0x49 else pickle_text.parse_long
                stack.append(self._text_value(parse(line), "INT/LONG argument is not an "
                                              "integer", at))
            elif op == 0x47:  # BINFLOAT
                pos = self._need(pos, 8, "BINFLOAT")
                stack.append(OPAQUE)
            elif op == 0x46:  # FLOAT
                line, pos = self._line(pos)
                self._text_value(pickle_text.parse_float(line), "FLOAT argument is not a "
                                 "number", at)
                stack.append(OPAQUE)
            elif op == 0x4E:
                stack.append(None)
            elif op == 0x88:
                stack.append(True)
            elif op == 0x89:
                stack.append(False)
            # --- strings and bytes --------------------------------------------------------
            elif op in (0x8C, 0x58, 0x8D, 0x55, 0x54, 0x43, 0x42, 0x8E, 0x96):
                if op == 0x8C or op == 0x55 or op == 0x43:
                    pos = self._need(pos, 1, "length")
                    n = data[pos - 1]
                elif op == 0x58 or op == 0x54 or op == 0x42:
                    pos = self._need(pos, 4, "length")
                    n = int.from_bytes(data[pos - 4:pos], "little", signed=(op == 0x54))
                else:
                    pos = self._need(pos, 8, "length")
                    n = int.from_bytes(data[pos - 8:pos], "little")
                pos = self._need(pos, n, "string/bytes argument")
                if n > lim.max_name_len:
                    stack.append(_BIG)
                elif op in (0x8C, 0x58, 0x8D):
                    try:
                        stack.append(codecs.decode(data[pos - n:pos], "utf-8", "surrogatepass"))
                    except UnicodeDecodeError:
                        raise MalformedPickle("invalid UTF-8 in unicode string", at) from None
                elif op == 0x55 or op == 0x54:
                    # 8-bit strings load as str under the common encodings (ASCII/latin1).
                    stack.append(bytes(data[pos - n:pos]).decode("latin-1"))
                else:
                    stack.append(bytes(data[pos - n:pos]))
            elif op == 0x53:  # STRING
                line, pos = self._line(pos)
                if len(line) < 2 or line[:1] != line[-1:] or line[:1] not in (b"'", b'"'):
                    raise MalformedPickle("STRING argument is not quoted", at)
                try:
                    with warnings.catch_warnings():  # invalid escapes warn, then load
                        warnings.simplefilter("ignore", DeprecationWarning)
                        text = codecs.escape_decode(line[1:-1])[0].decode("latin-1")
                except ValueError:
                    raise MalformedPickle("bad escape in STRING argument", at) from None
                stack.append(text if len(text) <= lim.max_name_len else _BIG)
            elif op == 0x56:  # UNICODE
                line, pos = self._line(pos)
                stack.append(_unicode_line(line, lim.max_name_len, at))
            elif op == 0x97:  # NEXT_BUFFER (out-of-band)
                ctx.add(INFO, "out-of-band-buffer",
                        "pickle expects out-of-band buffers (protocol 5)", at)
                stack.append(OPAQUE)
            elif op == 0x98:  # READONLY_BUFFER
                if len(stack) <= floor:
                    raise underflow(at)
            # --- containers ---------------------------------------------------------------
            elif op == 0x28:  # MARK
                marks.append(len(stack))
                stack.append(mark_obj)
                floor = len(stack)
            elif op == 0x74:  # TUPLE
                stack.append(self._tuple(pop_mark(at), at))
            elif op == 0x29:
                stack.append(())
            elif op == 0x85 or op == 0x86 or op == 0x87:  # TUPLE1..3
                n = op - 0x84
                if len(stack) - floor < n:
                    raise underflow(at)
                items = stack[-n:]
                del stack[-n:]
                stack.append(self._tuple(items, at))
            elif op == 0x5D:  # EMPTY_LIST
                stack.append(SList([]))
            elif op == 0x6C:  # LIST
                items = pop_mark(at)
                lst = SList(items[:cap], len(items))
                lst.truncated = len(items) > cap
                stack.append(lst)
            elif op == 0x61:  # APPEND
                if len(stack) - floor < 2:
                    raise underflow(at)
                value = stack.pop()
                target = stack[-1]
                self._refuse_global_target(target, "APPEND", at)
                if isinstance(target, SList):
                    target.length += 1
                    if len(target.items) < cap:
                        target.items.append(value)
                    else:
                        target.truncated = True
            elif op == 0x65:  # APPENDS
                items = pop_mark(at)
                if len(stack) <= floor:
                    raise underflow(at)
                target = stack[-1]
                self._refuse_global_target(target, "APPENDS", at)
                if isinstance(target, SList):
                    target.length += len(items)
                    room = cap - len(target.items)
                    target.items.extend(items[:max(room, 0)])
                    target.truncated |= len(items) > room
            elif op == 0x7D:  # EMPTY_DICT
                stack.append(SDict())
            elif op == 0x64 or op == 0x75:  # DICT, SETITEMS
                items = pop_mark(at)
                if len(items) % 2:
                    raise MalformedPickle("odd number of items for a dict", at)
                if op == 0x64:
                    target = SDict()
                    stack.append(target)
                else:
                    if len(stack) <= floor:
                        raise underflow(at)
                    target = stack[-1]
                    self._refuse_global_target(target, "SETITEMS", at)
                if isinstance(target, SDict):
                    self._note_keys(target, items[0::2], at)
                    for i in range(0, len(items), 2):
                        if len(target.d) >= cap:
                            target.truncated = True
                            break
                        key = items[i]
                        if type(key) is str or (not self._is_heavy(key) and _hashable(key)):
                            target.d[key] = items[i + 1]
            elif op == 0x73:  # SETITEM
                if len(stack) - floor < 3:
                    raise underflow(at)
                value = stack.pop()
                key = stack.pop()
                target = stack[-1]
                self._refuse_global_target(target, "SETITEM", at)
                if isinstance(target, SDict):
                    self._note_keys(target, (key,), at)
                    if len(target.d) < cap and (type(key) is str or (
                            not self._is_heavy(key) and _hashable(key))):
                        target.d[key] = value
                    else:
                        target.truncated = True
            elif op == 0x8F:  # EMPTY_SET
                stack.append(SSet())
            elif op == 0x90:  # ADDITEMS
                items = pop_mark(at)
                if len(stack) <= floor:
                    raise underflow(at)
                self._refuse_global_target(stack[-1], "ADDITEMS", at)
                if isinstance(stack[-1], SSet):
                    self._note_keys(stack[-1], items, at)
            elif op == 0x91:  # FROZENSET
                frozen = SSet()
                self._note_keys(frozen, pop_mark(at), at)
                stack.append(frozen)
            elif op == 0x30:  # POP
                if len(stack) > floor:
                    stack.pop()
                else:
                    pop_mark(at)
            elif op == 0x31:  # POP_MARK
                pop_mark(at)
            elif op == 0x32:  # DUP
                if len(stack) <= floor:
                    raise underflow(at)
                stack.append(stack[-1])
            # --- imports and calls ---------------------------------------------------------
            elif op == 0x63 or op == 0x69:  # GLOBAL, INST
                mod_line, pos = self._line(pos)
                name_line, pos = self._line(pos)
                try:
                    module, name = mod_line.decode("utf-8"), name_line.decode("utf-8")
                except UnicodeDecodeError:
                    raise MalformedPickle("GLOBAL names are not UTF-8", at) from None
                glob = self._import(module, name, at, "GLOBAL" if op == 0x63 else "INST")
                if op == 0x63:
                    stack.append(glob)
                else:
                    inst_args = tuple(pop_mark(at))
                    self._charge(glob, inst_args, at, init=bool(inst_args))
                    stack.append(Obj(glob, inst_args, at))
            elif op == 0x93:  # STACK_GLOBAL
                if len(stack) - floor < 2:
                    raise underflow(at)
                name = stack.pop()
                module = stack.pop()
                if not isinstance(module, str) or not isinstance(name, str):
                    ctx.add(DANGEROUS, "unresolved-global",
                            "STACK_GLOBAL with a module or name that is not a known string "
                            f"({pickle_cost.show(module)}, {pickle_cost.show(name)})", at)
                    stack.append(Global("?", "?", ("?", "?"), at))
                else:
                    stack.append(self._import(module, name, at, "STACK_GLOBAL"))
            elif op == 0x52:  # REDUCE
                if len(stack) - floor < 2:
                    raise underflow(at)
                args = stack.pop()
                func = stack.pop()
                if not isinstance(func, Global):
                    ctx.add(DANGEROUS, "call",
                            f"REDUCE calls a computed object ({_describe(func)}), not an "
                            "imported global", at)
                self._charge(func, args, at, init=True)
                stack.append(Obj(func, args, at))
            elif op == 0x81 or op == 0x92:  # NEWOBJ, NEWOBJ_EX
                need = 2 if op == 0x81 else 3
                if len(stack) - floor < need:
                    raise underflow(at)
                kwargs = stack.pop() if op == 0x92 else None
                args = stack.pop()
                cls = stack.pop()
                if not isinstance(cls, Global):
                    ctx.add(DANGEROUS, "call",
                            f"NEWOBJ instantiates a computed object ({_describe(cls)})", at)
                self._charge(cls, args, at, init=False)
                if isinstance(kwargs, SDict):
                    self._charge(cls, tuple(kwargs.d.values()), at, init=False)
                stack.append(Obj(cls, args, at))
            elif op == 0x6F:  # OBJ
                items = pop_mark(at)
                if not items:
                    raise MalformedPickle("OBJ without a class", at)
                if not isinstance(items[0], Global):
                    ctx.add(DANGEROUS, "call",
                            f"OBJ instantiates a computed object ({_describe(items[0])})", at)
                self._charge(items[0], tuple(items[1:]), at, init=len(items) > 1)
                stack.append(Obj(items[0], tuple(items[1:]), at))
            elif op == 0x62:  # BUILD
                if len(stack) - floor < 2:
                    raise underflow(at)
                state = stack.pop()
                target = stack[-1]
                if isinstance(target, Global):
                    ctx.add(DANGEROUS, "build-global",
                            f"BUILD sets attributes on the imported object "
                            f"{target.real[0]}.{target.real[1]} itself", at)
                elif isinstance(target, Obj):
                    target.state = state
                    self._check_slot_state(state, at)
                    self._check_array_state(target, state, at)
                    if self.joblib and _is_wrapper(target):
                        pos = self._skip_joblib_array(target, pos, frame_end, at)
                        stack[-1] = OPAQUE
                        frame_end = -1  # joblib reads the array from the file itself
            elif op == 0x82 or op == 0x83 or op == 0x84:  # EXT1, EXT2, EXT4
                width = {0x82: 1, 0x83: 2, 0x84: 4}[op]
                pos = self._need(pos, width, "EXT code")
                code = int.from_bytes(data[pos - width:pos], "little")
                ctx.add(SUSPICIOUS, "extension",
                        f"EXT{width} imports the object registered as extension code {code}; "
                        "its module and name cannot be checked", at)
                stack.append(Global("?", "?", ("?", "?"), at))
            elif op == 0x50 or op == 0x51:  # PERSID, BINPERSID
                if op == 0x50:
                    _, pos = self._line(pos)
                else:
                    if len(stack) <= floor:
                        raise underflow(at)
                    stack.pop()
                ctx.persistent_ids += 1
                stack.append(OPAQUE)
            # --- framing and protocol -------------------------------------------------------
            elif op == 0x80:  # PROTO
                pos = self._need(pos, 1, "PROTO")
                self.proto = data[pos - 1]
                if self.proto > 5:
                    raise MalformedPickle(f"unsupported pickle protocol {self.proto}", at)
            elif op == 0x95:  # FRAME
                pos = self._need(pos, 8, "FRAME")
                n = int.from_bytes(data[pos - 8:pos], "little")
                if frame_end > at:
                    ctx.add(SUSPICIOUS, "frame-mismatch",
                            "FRAME starts before the previous frame ended: the Python "
                            "unpickler rejects this stream, the C unpickler loads it", at)
                if pos + n > end:
                    # The C unpickler stops here; the Python one reads the short frame and
                    # goes on running its opcodes, so the walk goes on too.
                    ctx.add(MALFORMED, "malformed", f"FRAME of {n} bytes runs past the end "
                            "of data (the Python unpickler still runs the opcodes in it)", at)
                    n = end - pos
                frame_end = pos + n
                continue
            elif op == 0x2E:  # STOP
                if len(stack) <= floor:
                    raise underflow(at)
                if 0 <= frame_end and frame_end != pos:
                    ctx.add(SUSPICIOUS, "frame-mismatch",
                            "STOP inside a FRAME with unread bytes left in the frame", at)
                return StreamResult(pos, self.proto, stack[-1])
            else:
                raise MalformedPickle(f"invalid pickle opcode 0x{op:02x}", at)
            if 0 <= frame_end < pos:
                ctx.add(SUSPICIOUS, "frame-mismatch",
                        "opcode straddles a FRAME boundary: the Python unpickler rejects "
                        "this stream, the C unpickler loads it", at)
                frame_end = -1


_CODECS_ENCODE = ("_codecs", "encode")


def _itemsize(dtype: object, depth: int = 0) -> int:
    """The largest element size a symbolic ``numpy.dtype(...)`` may claim (at least 1).

    For costs only: the type code's digits, the state's itemsize and a subarray's shape
    times its base may disagree in a hostile pickle, so the largest counts.
    """
    if depth > 4 or not isinstance(dtype, Obj) or not isinstance(dtype.args, tuple) \
            or not dtype.args or not isinstance(dtype.args[0], str):
        return 1
    digits = "".join(ch for ch in dtype.args[0] if ch.isdigit())[:30]
    sizes = [int(digits) if digits else 1]
    state = dtype.state if isinstance(dtype.state, tuple) else ()
    if len(state) > 5 and isinstance(state[5], int):
        sizes.append(state[5])
    subarray = state[2] if len(state) > 2 else None
    if isinstance(subarray, tuple) and len(subarray) == 2:
        count = pickle_cost.shape_elements(subarray[1])
        sizes.append(count * _itemsize(subarray[0], depth + 1))
    return max(max(sizes), 1)


def _is_computed_key(value: object) -> bool:
    """A dict/set key whose hash the walker cannot compute (a call's result, a huge int)."""
    return isinstance(value, Obj) or value is _BIG


def _is_computed(value: object) -> bool:
    """A value that a call makes at load time (its size is unknown to the scanner).

    ``_codecs.encode(text, 'latin1')`` is how protocols 0-2 write bytes: data, not a size.
    """
    return isinstance(value, Obj) and not (isinstance(value.func, Global)
                                           and value.func.real == _CODECS_ENCODE)


def _shorten(text: str, max_len: int) -> str:
    """A name cut to ``max_len`` characters for reports (never allow-listed when cut)."""
    return text if len(text) <= max_len else text[:max_len] + "\u2026"


def _unicode_line(line: bytes, max_len: int, at: int) -> object:
    """The value of a ``UNICODE`` line: a short str, or opaque when long."""
    if len(line) > _MAX_VALIDATED_LINE:
        return _BIG  # not validated: reading on is the safe side
    try:
        text = line.decode("raw-unicode-escape")
    except UnicodeDecodeError:
        raise MalformedPickle("bad UNICODE argument", at) from None
    return text if len(text) <= max_len else _BIG


def _describe(value: object) -> str:
    if isinstance(value, Obj):
        if isinstance(value.func, Global):
            return f"result of {value.func.real[0]}.{value.func.real[1]}(...)"
        return "result of a call"
    if isinstance(value, (_Opaque, SList, SDict, SSet)):
        return type(value).__name__.lstrip("_").lower()
    return type(value).__name__


def scan_stream(data: Buffer, pos: int, ctx: ScanContext, *, joblib: bool = False,
                end: int | None = None) -> StreamResult:
    """Walk one pickle stream starting at ``pos``; raise :class:`MalformedPickle` if broken."""
    return _Walker(data, ctx, joblib=joblib, end=len(data) if end is None else end).run(pos)


def scan_pickle_blob(data: Buffer, ctx: ScanContext, *, joblib: bool = False, start: int = 0,
                     end: int | None = None, max_streams: int | None = None,
                     streams_before: int = 0) -> list[StreamResult]:
    """Scan every pickle stream concatenated in ``data[start:end]``.

    ``pickle.load`` called in a loop reads them all, so all are scanned. A broken stream
    (truncated, invalid opcode, underflow) is a ``malformed`` finding; the imports seen
    before the break are still reported, since an unpickler would already have run them.
    """
    end = len(data) if end is None else end
    ctx.pickle_blobs += 1
    limit = max_streams or ctx.limits.max_pickle_streams
    results: list[StreamResult] = []
    pos = start
    while pos < end:
        if len(results) >= limit:
            if max_streams is None:
                ctx.add(MALFORMED, "too-many-streams",
                        f"more than {limit} concatenated pickle streams", pos)
            break
        try:
            result = scan_stream(data, pos, ctx, joblib=joblib, end=end)
        except MalformedPickle as exc:
            done = streams_before + len(results)
            what = "pickle stream" if not done else \
                f"data after pickle stream {done} (ends at byte {pos})"
            kind = SCAN_LIMIT if exc.scan_limit else "malformed"
            ctx.add(MALFORMED, kind, f"{what}: {exc.detail}", exc.offset)
            break
        except RecursionError:
            ctx.add(MALFORMED, SCAN_LIMIT, "nesting too deep", pos)
            break
        results.append(result)
        pos = result.end
    if start >= end:
        ctx.add(MALFORMED, "empty", "empty pickle data", start)
    return results


def is_torch_legacy_magic(result: StreamResult) -> bool:
    """True when a stream's value is torch's legacy-format magic number."""
    return result.value == _TORCH_MAGIC
