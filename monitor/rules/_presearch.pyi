from collections.abc import Mapping
from collections.abc import Set as AbstractSet

def candidates(
    firsts: Mapping[str, tuple[bytes | str, ...]],
    keys: AbstractSet[str],
    words: AbstractSet[str],
    always: tuple[int, ...],
    /,
) -> list[int]: ...
