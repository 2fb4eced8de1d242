"""SIREN numbers: 9 digits with a Luhn check digit (INSEE)."""

import re

_SIREN = re.compile(r"^\d{9}$")


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 1:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


def is_valid_siren(value: str) -> bool:
    return bool(_SIREN.match(value)) and luhn_ok(value)
