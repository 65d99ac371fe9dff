"""The draw: from a public seed and a published lottery to a panel, by a fixed public procedure.

Everything here is specified byte for byte in docs/draw-spec.md so that anyone can redo a draw
in another language and get the same panel. Randomness comes only from SHA-256 in counter mode
over the seed, the lottery's hash and a purpose label: no numpy RNG, no solver, no platform or
hash-order dependence. Only the standard library is used, on purpose.
"""

from __future__ import annotations

import hashlib
import operator
import struct
from collections.abc import Callable, MutableSequence, Sequence

SPEC = "sortition-draw-v1"

_DOMAIN = SPEC.encode("ascii")
_HEX = frozenset("0123456789abcdef")
_TWO64 = 1 << 64
_U64 = struct.Struct(">Q")

# Every stream label, here and nowhere else (docs/draw-spec.md section 4; a test compares this
# list with the specification's). Each use of randomness has its own label.
PANEL = "panel"  # the lottery panel, or the winning ticket (sections 5, 6)
PEOPLE = "people/"  # + the stratum index: people inside a stratum (section 7), `people_label`
CALLS = "calls"  # the people of the call list (section 14)
CALLS_ORDER = "calls/order"  # the order of the call list (section 14)
REPLACEMENTS = "replacements"  # the replacement lists (section 12)
SIMULATE = "simulate"  # the dropout simulation (section 13)
HOUSEHOLDS = "households"  # the household pre-draw (section 15)
DROPOUTS = "dropouts/"  # + the round: members released by `replace` (section 16), `dropouts_label`
LABELS = (PANEL, CALLS, CALLS_ORDER, REPLACEMENTS, SIMULATE, HOUSEHOLDS)  # whole labels
INDEXED_LABELS = (PEOPLE, DROPOUTS)  # prefixes, followed by a decimal number


def _check_hash(lottery_hash: str) -> bytes:
    if (not isinstance(lottery_hash, str) or len(lottery_hash) != 64
            or not set(lottery_hash) <= _HEX):
        raise ValueError("lottery hash must be 64 lowercase hexadecimal characters "
                         f"(the SHA-256 of lottery.json), got {lottery_hash!r}")
    return lottery_hash.encode("ascii")


def _check_seed(seed: bytes) -> bytes:
    if not isinstance(seed, bytes | bytearray):
        raise ValueError("seed must be bytes: use seed_bytes() on the seed text")
    if not seed:
        raise ValueError("the seed is empty: an empty seed is refused")
    return bytes(seed)


def _check_count(name: str, n: int) -> int:
    """n as a Python int; numpy integers are accepted, floats and booleans are not."""
    if isinstance(n, bool):
        raise ValueError(f"{name} must be an integer, got {n!r}")
    try:
        return operator.index(n)
    except TypeError:
        raise ValueError(f"{name} must be an integer, got {n!r}") from None


def _indexed_label(prefix: str, what: str, n: int) -> str:
    """`prefix` followed by n in decimal, without leading zeros (n a non-negative integer)."""
    n = _check_count(what, n)
    if n < 0:
        raise ValueError(f"{what} must be a non-negative integer, got {n!r}")
    return f"{prefix}{n}"


def people_label(stratum: int) -> str:
    """The label of the stream that chooses people inside a stratum (0-based index)."""
    return _indexed_label(PEOPLE, "stratum index", stratum)


def dropouts_label(round_: int) -> str:
    """The label reserved for drawing dropouts in a given round."""
    return _indexed_label(DROPOUTS, "round", round_)


def seed_bytes(seed: str) -> bytes:
    """The seed text's exact UTF-8 bytes: no normalisation, so what was published is what counts."""
    if not isinstance(seed, str):
        raise ValueError(f"seed must be text, got {type(seed).__name__}")
    if not seed:
        raise ValueError("the seed is empty: an empty seed is refused")
    return seed.encode("utf-8")


class Stream:
    """A labelled byte stream: SHA-256 in counter mode, identical on every platform.

    Each use of randomness gets its own label, so adding a new use never shifts the bytes of
    the existing ones.
    """

    def __init__(self, seed: bytes, lottery_hash: str, label: str) -> None:
        seed = _check_seed(seed)
        hash_ascii = _check_hash(lottery_hash)
        if not isinstance(label, str) or not label or not label.isascii():
            raise ValueError(f"label must be non-empty ASCII text, got {label!r}")
        label_ascii = label.encode("ascii")
        self.label = label
        # The fixed part of every block's message (section 2), hashed once: each block then
        # only adds its counter to a copy of this state.
        self._prefix = hashlib.sha256(_DOMAIN
                                      + struct.pack(">I", len(label_ascii)) + label_ascii
                                      + struct.pack(">I", len(hash_ascii)) + hash_ascii
                                      + struct.pack(">Q", len(seed)) + seed)
        self._counter = 0
        self._buffer = b""
        self._consumed = 0

    def block(self, k: int) -> bytes:
        """Block k of the stream (does not consume anything): useful for checking by hand."""
        if not 0 <= k < _TWO64:
            raise ValueError(f"block counter out of range: {k}")
        h = self._prefix.copy()
        h.update(_U64.pack(k))
        return h.digest()

    def blocks(self, first: int, last: int) -> bytes:
        """Blocks first … last of the stream, concatenated (consumes nothing): for reading
        many words at once, as the dropout simulation does."""
        if not 0 <= first <= last + 1 or last >= _TWO64:
            raise ValueError(f"block range out of range: {first} … {last}")
        prefix, pack = self._prefix, _U64.pack
        out = []
        for k in range(first, last + 1):
            h = prefix.copy()
            h.update(pack(k))
            out.append(h.digest())
        return b"".join(out)

    @property
    def consumed(self) -> int:
        """How many bytes have been read so far, so an audit can say where the draw stopped."""
        return self._consumed

    def read(self, n: int) -> bytes:
        """The next n bytes of the stream, in order."""
        n = _check_count("n", n)
        if n < 0:
            raise ValueError(f"cannot read a negative number of bytes: {n}")
        while len(self._buffer) < n:
            self._buffer += self.block(self._counter)
            self._counter += 1
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        self._consumed += n
        return out

    def below(self, n: int) -> int:
        """An exactly uniform integer in [0, n), by rejection sampling on 64-bit words."""
        n = _check_count("n", n)
        if n < 1 or n > _TWO64:
            raise ValueError(f"below(n) needs 1 <= n <= 2**64, got {n}")
        if n == 1:
            return 0
        limit = (_TWO64 // n) * n
        while True:
            x = int.from_bytes(self.read(8), "big")
            if x < limit:
                return x % n


def shuffle_prefix(a: MutableSequence, k: int, stream: Stream) -> None:
    """The first k steps of a Fisher–Yates shuffle of `a`, in place, reading `stream`
    (section 7): afterwards a[:k] are the people chosen, in the order chosen. With k = len(a)
    the whole of `a` is shuffled (the last step reads nothing)."""
    for i in range(k):
        j = i + stream.below(len(a) - i)
        a[i], a[j] = a[j], a[i]


def panel_index(weights: Sequence[int], denominator: int, seed: bytes,
                lottery_hash: str) -> int:
    """The 0-based index of the drawn panel; integer weights make the probabilities exact."""
    denominator = _check_count("denominator", denominator)
    if denominator < 1:
        raise ValueError(f"denominator must be at least 1, got {denominator}")
    ws = [_check_count("weight", w) for w in weights]
    if any(w < 0 for w in ws):
        raise ValueError("panel weights must be non-negative")
    if sum(ws) != denominator:
        raise ValueError(f"panel weights sum to {sum(ws)}, not to the denominator {denominator}")
    r = Stream(seed, lottery_hash, PANEL).below(denominator)
    total = 0
    for j, w in enumerate(ws):
        total += w
        if total > r:
            return j
    raise AssertionError("unreachable: weights sum to the denominator")


def ticket(m: int, seed: bytes, lottery_hash: str) -> int:
    """The 1-based winning ticket among m equally likely panels (the transparent lottery)."""
    m = _check_count("m", m)
    if m < 1:
        raise ValueError(f"the number of tickets must be at least 1, got {m}")
    return Stream(seed, lottery_hash, PANEL).below(m) + 1


def choose_in_stratum(members: Sequence[str], k: int, seed: bytes, lottery_hash: str,
                      stratum: int) -> list[str]:
    """k members of one stratum, in draw order; sorted first so input order cannot matter."""
    k = _check_count("k", k)
    ids = list(members)
    if not all(isinstance(m, str) for m in ids):
        raise ValueError("member ids must be text")
    a = sorted(ids, key=lambda m: m.encode("utf-8"))
    if any(a[i] == a[i + 1] for i in range(len(a) - 1)):
        raise ValueError(f"duplicate member ids in stratum {stratum}")
    if k < 0 or k > len(a):
        raise ValueError(f"cannot choose {k} people from a stratum of {len(a)}")
    shuffle_prefix(a, k, Stream(seed, lottery_hash, people_label(stratum)))
    return a[:k]


def draw_people(seats: Sequence[int],
                members: Sequence[Sequence[str]] | Callable[[int], Sequence[str]], seed: bytes,
                lottery_hash: str) -> list[tuple[int, str]]:
    """(stratum index, id) for everyone drawn, strata in index order, each in the order chosen.

    `members[s]`, or `members(s)` when it is a function (asked only for strata with seats),
    gives the ids of stratum s.
    """
    if not callable(members) and len(seats) != len(members):
        raise ValueError(f"{len(seats)} seat counts for {len(members)} strata")
    drawn: list[tuple[int, str]] = []
    for s, x in enumerate(seats):
        x = _check_count("seats", x)
        if x < 0:
            raise ValueError(f"stratum {s} has a negative number of seats: {x}")
        if x == 0:
            continue
        ids = members(s) if callable(members) else members[s]
        drawn.extend((s, person) for person in choose_in_stratum(ids, x, seed, lottery_hash, s))
    return drawn
