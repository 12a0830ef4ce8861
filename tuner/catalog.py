"""Find search-space files: the working directory's `search_spaces/` first, then the built-in ones."""

from __future__ import annotations

from pathlib import Path

from tuner.errors import TunerError, did_you_mean

LOCAL_DIR = Path("search_spaces")
# The built-in spaces are installed as a sibling of the tuner package, both in
# a wheel and in an editable install. Looking them up by import name instead
# would pick up a local search_spaces/ folder as a namespace package.
BUILTIN_DIR = Path(__file__).resolve().parent.parent / "search_spaces"


def space_dirs() -> list[Path]:
    """Return the folders searched for `NAME.yaml`, in order of precedence."""
    dirs = [LOCAL_DIR.resolve(), BUILTIN_DIR]
    return list(dict.fromkeys(d for d in dirs if d.is_dir()))


def available_spaces() -> dict[str, Path]:
    """Map each space name to its file; a local file hides a built-in one of the same name."""
    found: dict[str, Path] = {}
    for folder in space_dirs():
        for path in sorted(folder.glob("*.yaml")):
            found.setdefault(path.stem, path)
    return dict(sorted(found.items()))


def find_space(name: object) -> Path:
    """Return the file of space `name`, or a path given directly (ending in .yaml)."""
    if name is None or name == "":
        names = ", ".join(available_spaces()) or "none"
        raise TunerError(f"missing 'space'. Name one with space=NAME; available: {names}.")
    text = str(name)
    if text.endswith((".yaml", ".yml")):
        path = Path(text)
        if not path.is_file():
            raise TunerError(f"space file '{text}' not found. Give an existing .yaml file or a space name.")
        return path
    spaces = available_spaces()
    if text not in spaces:
        searched = ", ".join(str(d) for d in space_dirs())
        raise TunerError(
            f"unknown space '{text}'.{did_you_mean(text, spaces)} "
            f"Available: {', '.join(spaces) or 'none'} (searched {searched}). "
            f"Pick one of them or add search_spaces/{text}.yaml."
        )
    return spaces[text]


def display_path(path: Path) -> str:
    """Return the path as messages show it: relative to the working directory when inside it."""
    resolved = path.resolve()
    for base in (Path.cwd(), BUILTIN_DIR.parent):
        if resolved.is_relative_to(base):
            return str(resolved.relative_to(base))
    return str(path)
