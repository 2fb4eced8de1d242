"""SIREN numbers: 9 digits with a Luhn check digit (INSEE)."""

import re

# ASCII digits only: `\d` would take other scripts' digits, `$` a trailing newline.
_SIREN = re.compile(r"[0-9]{9}")


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
    return isinstance(value, str) and bool(_SIREN.fullmatch(value)) and luhn_ok(value)
