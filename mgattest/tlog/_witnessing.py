"""The log's side of witnessing: submit each new checkpoint to the configured witnesses
and keep the cosignatures they return (C2SP tlog-witness client).

:class:`CosignatureCollector` runs one background thread. After the log publishes a
checkpoint (:meth:`~CosignatureCollector.notify`), the thread submits the newest one to
each witness with a consistency proof from the size that witness last cosigned (0 at
first; a 409 answer names the witness's size, and the request is retried once from
there). Every request is bounded in time; appends never wait for witnesses. Only
cosignatures that verify with the witness's configured key are kept.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mgattest.errors import InputError, MgattestError
from mgattest.tlog._cosign import WitnessKey, parse_vkey, verify_cosignatures
from mgattest.tlog._witness import SIZE_CONTENT_TYPE, encode_request

if TYPE_CHECKING:
    from mgattest.tlog._log import TransparencyLog

DEFAULT_WITNESS_TIMEOUT = 5.0  # seconds per witness request (connect + answer)
KEPT_SIZES = 64  # cosigned checkpoints remembered (the newest sizes)
_log = logging.getLogger("mgattest.tlog.witnessing")


@dataclass(frozen=True)
class WitnessEndpoint:
    """A witness the log asks: its submission URL prefix and its verifier key."""

    url: str
    key: WitnessKey

    @classmethod
    def parse(cls, spec: str) -> "WitnessEndpoint":
        """``URL=VKEY`` (as ``--witness`` takes it)."""
        url, sep, vkey = spec.rpartition("=")
        if not sep or not url.startswith(("http://", "https://")):
            raise InputError(f"witness {spec[:80]!r} must be URL=VKEY with an http(s) URL",
                             what="witness")
        return cls(url.rstrip("/"), parse_vkey(vkey))


class WitnessRequestError(MgattestError):
    """A witness did not cosign (network failure, refusal, or an unverifiable answer)."""

    exit_code = 1


def request_cosignature(endpoint: WitnessEndpoint, note: str, new_size: int, old_size: int,
                        proof_from: Callable[[int], list[bytes]], *,
                        timeout: float = DEFAULT_WITNESS_TIMEOUT) -> tuple[int, list[str]]:
    """Submit ``note`` (size ``new_size``) to one witness, starting from ``old_size``.

    Returns (the size the witness now holds, its verified cosignature lines). On a 409
    the witness's size is adopted and the request retried once. Raises
    :class:`WitnessRequestError` when no verified cosignature comes back.
    """
    import requests  # noqa: PLC0415 - requests costs CLI start-up time; only network calls need it

    for _attempt in range(2):
        if old_size > new_size:
            raise WitnessRequestError(
                f"witness {endpoint.key.name} has cosigned size {old_size}, larger than this "
                f"log's {new_size}: it has seen another history of this log",
                what="witness", where=endpoint.url)
        proof = proof_from(old_size) if 0 < old_size < new_size else []
        try:
            resp = requests.post(f"{endpoint.url}/add-checkpoint",
                                 data=encode_request(old_size, proof, note),
                                 timeout=(timeout, timeout), allow_redirects=False)
        except requests.RequestException as exc:
            raise WitnessRequestError(f"witness {endpoint.key.name} unreachable: {exc}",
                                      what="witness", where=endpoint.url) from None
        if resp.status_code == 409 and resp.headers.get("content-type", "").startswith(
                SIZE_CONTENT_TYPE):
            text = resp.text.strip()
            if not text.isascii() or not text.isdigit() or len(text) > 20:
                break
            old_size = int(text)
            continue
        if resp.status_code != 200:
            raise WitnessRequestError(
                f"witness {endpoint.key.name} refused the checkpoint of size {new_size}: "
                f"HTTP {resp.status_code} {resp.text[:200].strip()}",
                what="witness", where=endpoint.url)
        own, problems = _verified_lines(endpoint, note, resp.text[:64 * 1024])
        if not own:
            raise WitnessRequestError(
                f"witness {endpoint.key.name} returned no cosignature that verifies with its "
                f"key ({'; '.join(problems) or 'none by that key'})",
                what="witness", where=endpoint.url)
        return new_size, own
    raise WitnessRequestError(f"witness {endpoint.key.name} kept answering 409 Conflict",
                              what="witness", where=endpoint.url)


def _verified_lines(endpoint: WitnessEndpoint, note: str, answer: str
                    ) -> tuple[list[str], list[str]]:
    """The lines of a witness's answer that are cosignatures of ``note`` verifying with its
    key (each checked alone, so a bad line beside a good one is dropped), and why others
    were dropped."""
    kept: list[str] = []
    problems: list[str] = []
    for line in (ln for ln in answer.split("\n") if ln):
        try:
            outcome = verify_cosignatures(note + line + "\n", [endpoint.key])
        except MgattestError as exc:
            problems.append(f"malformed line: {exc.message}")
            continue
        if outcome.verified:
            kept.append(line)
        else:
            problems.extend(outcome.rejected)
    return kept, problems


class CosignatureCollector:
    """Collects witness cosignatures for the log's newest checkpoint, in the background."""

    def __init__(self, open_log: Callable[[], "TransparencyLog"],
                 witnesses: Sequence[WitnessEndpoint], *,
                 timeout: float = DEFAULT_WITNESS_TIMEOUT) -> None:
        self._open_log = open_log
        self.witnesses = tuple(witnesses)
        self.timeout = timeout
        self._known = {w.url: 0 for w in self.witnesses}  # size each witness last cosigned
        self._lines: OrderedDict[int, list[str]] = OrderedDict()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_errors: dict[str, str] = {}  # witness URL → why its last request failed

    def start(self) -> None:
        """Start the background thread and witness the current checkpoint."""
        if self._thread is None and self.witnesses:
            self._thread = threading.Thread(target=self._run, name="mgattest-log-witnessing",
                                            daemon=True)
            self._thread.start()
            self.notify()

    def stop(self) -> None:
        """Stop the thread (waits at most one request timeout per witness)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout * (len(self.witnesses) + 1))

    def notify(self) -> None:
        """A new checkpoint was published: witness it soon. Never blocks."""
        self._wake.set()

    def lines_for(self, size: int) -> list[str]:
        """The verified cosignature lines collected for the checkpoint of ``size``."""
        with self._lock:
            return list(self._lines.get(size, ()))

    def latest_size(self) -> int | None:
        """The largest size that has at least one cosignature."""
        with self._lock:
            return max(self._lines) if self._lines else None

    def _run(self) -> None:
        log = self._open_log()
        witnessed = -1
        try:
            while not self._stop.is_set():
                self._wake.wait()
                self._wake.clear()
                if self._stop.is_set():
                    break
                try:
                    size = log.size
                    if size != witnessed:
                        self._collect(log, size)
                        witnessed = size
                except MgattestError as exc:  # a log read failed: try again next time
                    _log.warning("witnessing stopped for this checkpoint: %s", exc.message)
        finally:
            log.close()

    def _collect(self, log: "TransparencyLog", size: int) -> None:
        note = log.signed_checkpoint(size)
        lines: list[str] = []
        for witness in self.witnesses:
            try:
                held, own = request_cosignature(
                    witness, note, size, self._known[witness.url],
                    lambda old: log.consistency_proof(old, size), timeout=self.timeout)
            except MgattestError as exc:
                self.last_errors[witness.url] = exc.message
                _log.warning("%s", exc.message)
                continue
            self._known[witness.url] = held
            self.last_errors.pop(witness.url, None)
            lines.extend(own)
        if lines:
            with self._lock:
                self._lines[size] = lines
                while len(self._lines) > KEPT_SIZES:
                    self._lines.popitem(last=False)
