"""The README's shell examples, as a newcomer pastes them."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"
BLOCK = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)


def shell_blocks(section: str | None = None) -> list[str]:
    """Every ```sh block of the README, or of one `## section` only."""
    text = README.read_text()
    if section is not None:
        start = text.index(f"\n## {section}\n")
        end = text.find("\n## ", start + 1)
        text = text[start : end if end != -1 else None]
    return [match.group(1) for match in BLOCK.finditer(text)]
