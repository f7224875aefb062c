"""ISO 6346 freight-container identification: check-digit computation and validation.

A container id is a 3-letter owner code, a category identifier (``U`` freight
container, ``J`` detachable equipment, ``Z`` trailer/chassis), a 6-digit serial
number and a check digit. The check digit is the sum of each character's value
times 2**position, modulo 11, with 10 mapped to 0. Letter values skip multiples
of 11 (A=10, B=12, ... K=21, L=23, ... V=34, W=35, ...). Ingest validates e-seal
ids with :func:`is_valid_iso6346`; the simulator generates ids with the same
functions, so both share one rule. :func:`canonical_container_id` is what the
decoders store as the subject id (upper case, no spaces), so ``csqu 305438 3``
and ``CSQU3054383`` are one container.
"""

from __future__ import annotations

import re

__all__ = ["canonical_container_id", "is_valid_iso6346", "iso6346_check_digit", "iso6346_remainder"]

_CODE10_RE = re.compile(r"^[A-Z]{3}[UJZ][0-9]{6}$")
_FULL_RE = re.compile(r"^[A-Z]{3}[UJZ][0-9]{7}$")
_SPACES = str.maketrans("", "", " -")


def _letter_values() -> dict[str, int]:
    values: dict[str, int] = {str(d): d for d in range(10)}
    v = 10
    for ch in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        if v % 11 == 0:
            v += 1
        values[ch] = v
        v += 1
    return values


_VALUES = _letter_values()


def iso6346_check_digit(code10: str) -> int:
    """Return the check digit (0-9) of the first 10 characters of an ISO 6346 id, e.g. ``"CSQU305438"`` -> 3.

    Raises ``ValueError`` naming the value when it is not owner code + U/J/Z + 6 digits.
    """
    return iso6346_remainder(code10) % 10


def iso6346_remainder(code10: str) -> int:
    """Return the weighted sum modulo 11 (0-10) of a 10-character prefix, before 10 is mapped to 0.

    Owners avoid serial numbers whose remainder is 10 (their check digit 0 collides with
    remainder 0), so a generator should skip them.
    """
    code = code10.strip().upper()
    if not _CODE10_RE.match(code):
        raise ValueError(
            f"{code10!r} is not an ISO 6346 prefix; expected 3 letters, U/J/Z and 6 digits such as 'CSQU305438'"
        )
    return sum(_VALUES[ch] << i for i, ch in enumerate(code)) % 11


def is_valid_iso6346(code: str) -> bool:
    """Return True when ``code`` is an 11-character ISO 6346 id whose check digit is correct."""
    if not isinstance(code, str):
        return False
    upper = code.strip().upper()
    if not _FULL_RE.match(upper):
        return False
    return iso6346_check_digit(upper[:10]) == int(upper[10])


def canonical_container_id(code: str) -> str | None:
    """Return ``code`` upper-cased without spaces or dashes if it is a valid ISO 6346 id, else ``None``.

    Container numbers are often printed grouped (``CSQU 305438 3``, ``CSQU-305438-3``);
    the grouping is not part of the id.

    >>> canonical_container_id("csqu 305438 3")
    'CSQU3054383'
    >>> canonical_container_id("CSQU3054384") is None
    True
    """
    if not isinstance(code, str):
        return None
    compact = code.translate(_SPACES).upper()
    return compact if is_valid_iso6346(compact) else None
