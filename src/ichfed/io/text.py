"""Small settings files (site.json, a model's config.json, a study file), read with a size cap:
a settings file is kilobytes, so a larger one is refused before it is read into memory."""

from pathlib import Path

from ichfed.errors import InputError

MAX_SETTINGS_BYTES = 1024 * 1024


def read_settings_text(path: Path) -> str:
    """The file's text; one InputError line when it is not a small, readable UTF-8 file."""
    try:
        if not path.is_file():
            raise InputError(path, "is not a regular file")
        size = path.stat().st_size
        if size > MAX_SETTINGS_BYTES:
            raise InputError(path, f"is {size:,} bytes; a settings file is at most "
                                   f"{MAX_SETTINGS_BYTES:,}")
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(path, "is not UTF-8 text") from exc
    except OSError as exc:
        raise InputError(path, f"cannot be read ({exc.strerror or exc})") from exc
