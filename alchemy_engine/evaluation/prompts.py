"""The DreamBench prompt sets (DreamBooth, Ruiz et al. 2023: dataset/prompts_and_classes.txt).

25 prompts for objects and 25 for live subjects (pets); the first ten and the last five are
shared. ``{token} {class_noun}`` is the subject phrase ("sks dog"). CLIP-T compares an image with
its prompt *without* the rare token ("a dog in the jungle"), as the benchmark does: the token
means nothing to CLIP.
"""

from __future__ import annotations

import re
from pathlib import Path

from alchemy_engine.errors import InvalidRequest

_SHARED_HEAD = (
    "a {token} {class_noun} in the jungle",
    "a {token} {class_noun} in the snow",
    "a {token} {class_noun} on the beach",
    "a {token} {class_noun} on a cobblestone street",
    "a {token} {class_noun} on top of pink fabric",
    "a {token} {class_noun} on top of a wooden floor",
    "a {token} {class_noun} with a city in the background",
    "a {token} {class_noun} with a mountain in the background",
    "a {token} {class_noun} with a blue house in the background",
    "a {token} {class_noun} on top of a purple rug in a forest",
)
_SHARED_TAIL = (
    "a red {token} {class_noun}",
    "a purple {token} {class_noun}",
    "a shiny {token} {class_noun}",
    "a wet {token} {class_noun}",
    "a cube shaped {token} {class_noun}",
)
OBJECT_PROMPTS = _SHARED_HEAD + (
    "a {token} {class_noun} with a wheat field in the background",
    "a {token} {class_noun} with a tree and autumn leaves in the background",
    "a {token} {class_noun} with the Eiffel Tower in the background",
    "a {token} {class_noun} floating on top of water",
    "a {token} {class_noun} floating in an ocean of milk",
    "a {token} {class_noun} on top of green grass with sunflowers around it",
    "a {token} {class_noun} on top of a mirror",
    "a {token} {class_noun} on top of the sidewalk in a crowded street",
    "a {token} {class_noun} on top of a dirt road",
    "a {token} {class_noun} on top of a white rug",
) + _SHARED_TAIL
LIVE_PROMPTS = _SHARED_HEAD + (
    "a {token} {class_noun} wearing a red hat",
    "a {token} {class_noun} wearing a santa hat",
    "a {token} {class_noun} wearing a rainbow scarf",
    "a {token} {class_noun} wearing a black top hat and a monocle",
    "a {token} {class_noun} in a chef outfit",
    "a {token} {class_noun} in a firefighter outfit",
    "a {token} {class_noun} in a police outfit",
    "a {token} {class_noun} wearing pink glasses",
    "a {token} {class_noun} wearing a yellow shirt",
    "a {token} {class_noun} in a purple wizard outfit",
) + _SHARED_TAIL

# DreamBench's live subjects are pets; other animals and people get the same (clothing) prompts.
LIVE_NOUNS = frozenset("""dog puppy cat kitten pet animal bird parrot horse rabbit bunny hamster guinea pig
    person man woman boy girl child baby kid lady guy""".split())
PREVIEW_INDICES = (0, 2, 6, 20, 1, 7, 23, 12)  # varied scenes for the per-checkpoint score
SETS = ("auto", "live", "object")


def is_live(class_noun: str) -> bool:
    return class_noun.strip().lower().split()[-1] in LIVE_NOUNS if class_noun.strip() else False


def templates(which: str, class_noun: str) -> tuple[str, ...]:
    """``"auto"`` picks the live set for pets and people, the object set otherwise."""
    if which == "auto":
        which = "live" if is_live(class_noun) else "object"
    if which == "live":
        return LIVE_PROMPTS
    if which == "object":
        return OBJECT_PROMPTS
    return read_prompt_file(Path(which))


def read_prompt_file(path: Path) -> tuple[str, ...]:
    """One prompt a line (``{token}`` and ``{class_noun}`` are filled in); blanks and ``#`` lines skipped."""
    if not path.is_file():
        raise InvalidRequest(f"prompts must be 'live', 'object' or a text file of prompts; {path} is none of these")
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    found = tuple(line for line in lines if line and not line.startswith("#"))
    if not found:
        raise InvalidRequest(f"{path} holds no prompts (one a line; {{token}} and {{class_noun}} are filled in)")
    return found


def fill(template: str, token: str, class_noun: str) -> str:
    return template.replace("{token}", token).replace("{class_noun}", class_noun)


def prompt_set(which: str, token: str, class_noun: str) -> list[str]:
    return [fill(t, token, class_noun) for t in templates(which, class_noun)]


def preview_prompts(count: int, token: str, class_noun: str) -> list[str]:
    """The fixed prompts scored at every training checkpoint (varied scenes, same every time)."""
    chosen = templates("auto", class_noun)
    return [fill(chosen[i], token, class_noun) for i in PREVIEW_INDICES[:count]]


def without_token(prompt: str, token: str) -> str:
    """The prompt CLIP-T compares with: the rare token removed ("a sks dog" → "a dog")."""
    if not token:
        return prompt
    cleaned = re.sub(rf"(?<![\w-]){re.escape(token)}(?![\w-])\s*", "", prompt)
    return re.sub(r"\s{2,}", " ", cleaned).strip()


def class_prompt(class_noun: str) -> str:
    """What PRES generates: the plain class prompt, with the LoRA loaded."""
    article = "an" if class_noun[:1].lower() in "aeiou" else "a"
    return f"{article} {class_noun}"
