"""File tools confined to one directory: ``file_tools(root)`` -> read_file, write_file, list_dir.

Confinement is enforced by construction, not by string checks alone:

* a path must be relative, without ``..`` components, backslashes or NUL bytes;
* it is resolved (symlinks followed) and must stay inside the root — a symlink (to a file or a
  directory) that leads outside the root is refused;
* the resolved path is then opened component by component from a descriptor of the root with
  ``O_NOFOLLOW`` (``openat``), so a symlink swapped in between the check and the open is refused
  too instead of followed;
* only regular files are read or written (no FIFOs or devices), a file with several hard links
  is never written, and reads, writes and listings are capped in size.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import Any

from ..base import Tool

__all__ = ["PathNotAllowedError", "file_tools"]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_OPENAT = (os.open in os.supports_dir_fd and os.mkdir in os.supports_dir_fd
           and os.stat in os.supports_dir_fd
           and os.scandir in os.supports_fd and bool(_NOFOLLOW and _DIRECTORY))


class PathNotAllowedError(PermissionError):
    """A path is refused: absolute, with ``..``, or leading outside the root."""


class _Root:
    """A directory and the rules for reaching files inside it."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        path = Path(root)
        if not path.is_dir():
            raise NotADirectoryError(f"file_tools: the root {str(root)!r} is not a directory")
        self.root = os.path.realpath(path)

    # -------------------------------------------------------------- paths

    def parts(self, path: str) -> list[str]:
        """The components of ``path`` relative to the root, after the syntactic checks."""
        if not isinstance(path, str):
            raise TypeError("the path must be a string")
        if "\x00" in path:
            raise ValueError(f"the path {path!r} contains a NUL byte")
        if "\\" in path:
            raise PathNotAllowedError(f"the path {path!r} contains a backslash; use '/'")
        if path.startswith("/") or os.path.isabs(path):
            raise PathNotAllowedError(
                f"the path {path!r} is absolute; give a path relative to the root directory")
        parts = [p for p in path.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise PathNotAllowedError(
                f"the path {path!r} contains '..'; paths must stay inside the root directory")
        return parts

    def resolve(self, path: str) -> list[str]:
        """Components of the real (symlink-free) path inside the root; refuses escapes."""
        real = os.path.realpath(os.path.join(self.root, *self.parts(path)))
        if real != self.root and not real.startswith(self.root.rstrip(os.sep) + os.sep):
            raise PathNotAllowedError(
                f"the path {path!r} leads outside the root directory (through a symlink)")
        rel = os.path.relpath(real, self.root)
        return [] if rel == "." else rel.split(os.sep)

    # -------------------------------------------------------------- descriptors

    def open_dir(self, parts: list[str], path: str, *, create: bool = False) -> int:
        """A descriptor of the directory ``parts`` (symlink-free components), opened with
        ``O_NOFOLLOW`` at each step; missing directories are created when ``create``."""
        if not _OPENAT:
            full = os.path.join(self.root, *parts)
            if create:
                os.makedirs(full, exist_ok=True)
            return os.open(full, os.O_RDONLY | _DIRECTORY)
        fd = os.open(self.root, os.O_RDONLY | _DIRECTORY)
        try:
            for part in parts:
                try:
                    new = os.open(part, os.O_RDONLY | _DIRECTORY | _NOFOLLOW, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise FileNotFoundError(f"no such directory: {path!r}") from None
                    os.mkdir(part, 0o755, dir_fd=fd)
                    new = os.open(part, os.O_RDONLY | _DIRECTORY | _NOFOLLOW, dir_fd=fd)
                except NotADirectoryError:  # also what O_NOFOLLOW|O_DIRECTORY gives a symlink
                    if stat.S_ISLNK(os.lstat(part, dir_fd=fd).st_mode):
                        raise PathNotAllowedError(
                            f"the path {path!r} changed while it was opened (a symlink "
                            f"appeared): refused") from None
                    raise NotADirectoryError(f"{path!r}: {part!r} is not a directory") from None
                except OSError as exc:  # ELOOP: a symlink appeared after the check
                    raise PathNotAllowedError(f"the path {path!r} changed while it was opened "
                                              f"(a symlink?): refused") from exc
                os.close(fd)
                fd = new
        except BaseException:
            os.close(fd)
            raise
        return fd

    def open_file(self, path: str, flags: int, *, create_dirs: bool = False) -> int:
        parts = self.resolve(path)
        if not parts:
            raise IsADirectoryError(f"{path!r} is the root directory, not a file")
        *dirs, name = parts
        if not _OPENAT:
            full = os.path.join(self.root, *parts)
            if create_dirs:
                os.makedirs(os.path.dirname(full), exist_ok=True)
            return os.open(full, flags | _NOFOLLOW)
        dir_fd = self.open_dir(dirs, path, create=create_dirs)
        try:
            return os.open(name, flags | _NOFOLLOW | _NONBLOCK, 0o644, dir_fd=dir_fd)
        except FileNotFoundError:
            raise FileNotFoundError(f"no such file: {path!r}") from None
        except IsADirectoryError:
            raise IsADirectoryError(f"{path!r} is a directory; use list_dir") from None
        except OSError as exc:
            if exc.errno in (getattr(os, "ELOOP", -1), getattr(os, "EMLINK", -1)):
                raise PathNotAllowedError(f"the path {path!r} changed while it was opened "
                                          f"(a symlink?): refused") from exc
            raise
        finally:
            os.close(dir_fd)


def _regular(fd: int, path: str) -> os.stat_result:
    st = os.fstat(fd)
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(f"{path!r} is a directory; use list_dir")
    if not stat.S_ISREG(st.st_mode):
        raise PathNotAllowedError(f"{path!r} is not a regular file")
    return st


def file_tools(root: str | os.PathLike[str], *, max_read_bytes: int = 100_000,
               max_write_bytes: int = 1_000_000, max_entries: int = 1_000,
               read_only: bool = False) -> list[Tool]:
    """Tools to read, write and list files inside ``root`` (and nowhere else).

    Args:
        root: the directory the tools are confined to (must exist).
        max_read_bytes: the most bytes ``read_file`` returns per call (longer files are cut,
            with a note saying how to read on with ``offset``).
        max_write_bytes: the largest content ``write_file`` accepts.
        max_entries: the most entries ``list_dir`` shows.
        read_only: leave ``write_file`` out.

    Returns:
        ``[read_file, write_file, list_dir]`` (``[read_file, list_dir]`` when ``read_only``).
    """
    base = _Root(root)

    def read_file(path: str, offset: int = 0) -> str:
        """Read a text file (UTF-8) inside the working directory.

        Args:
            path: the file's path, relative to the working directory (e.g. "notes/todo.txt").
            offset: the byte offset to start reading at (to read on in a long file).
        """
        if offset < 0:
            raise ValueError("offset must be >= 0")
        fd = base.open_file(path, os.O_RDONLY)
        try:
            size = _regular(fd, path).st_size
            if offset:
                os.lseek(fd, offset, os.SEEK_SET)
            chunks: list[bytes] = []
            remaining = max_read_bytes
            while remaining > 0:
                chunk = os.read(fd, min(remaining, 65_536))
                if not chunk:
                    break
                chunks.append(chunk)
                remaining -= len(chunk)
        finally:
            os.close(fd)
        data = b"".join(chunks)
        if b"\x00" in data[:8_192]:
            return f"[{path!r} is a binary file of {size} bytes; its content is not shown]"
        text = data.decode("utf-8", errors="replace")
        end = offset + len(data)
        if end < size:
            text += (f"\n[... truncated: {path!r} has {size} bytes; shown bytes {offset} to "
                     f"{end}; call read_file with offset={end} to read on]")
        return text

    def write_file(path: str, content: str, append: bool = False) -> str:
        """Write a text file (UTF-8) inside the working directory, creating folders as needed.

        Args:
            path: the file's path, relative to the working directory.
            content: the text to write.
            append: add to the end of the file instead of replacing its content.
        """
        data = content.encode("utf-8")
        if len(data) > max_write_bytes:
            raise ValueError(f"the content is too large ({len(data)} bytes; at most "
                             f"{max_write_bytes})")
        fd = base.open_file(path, os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else 0),
                            create_dirs=True)
        try:
            st = _regular(fd, path)
            if st.st_nlink > 1:
                raise PathNotAllowedError(f"{path!r} has several hard links; not writing it")
            if not append:
                os.ftruncate(fd, 0)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        return f"{'appended' if append else 'wrote'} {len(data)} bytes to {path!r}"

    def list_dir(path: str = ".") -> str:
        """List a directory inside the working directory (folders end with '/').

        Args:
            path: the directory's path, relative to the working directory ("." for itself).
        """
        parts = base.resolve(path)
        fd = base.open_dir(parts, path)
        try:
            lines: list[tuple[str, str]] = []
            target: Any = fd if _OPENAT else os.path.join(base.root, *parts)
            with os.scandir(target) as it:
                for entry in it:
                    if entry.is_symlink():
                        lines.append((entry.name, f"{entry.name}@ (symlink)"))
                    elif entry.is_dir(follow_symlinks=False):
                        lines.append((entry.name, f"{entry.name}/"))
                    else:
                        size = None
                        with contextlib.suppress(OSError):
                            size = entry.stat(follow_symlinks=False).st_size
                        shown = f" ({size} bytes)" if size is not None else ""
                        lines.append((entry.name, f"{entry.name}{shown}"))
        finally:
            os.close(fd)
        if not lines:
            return f"{path!r} is empty"
        lines.sort()
        out = [text for _, text in lines[:max_entries]]
        if len(lines) > max_entries:
            out.append(f"[... {len(lines) - max_entries} more entries not shown]")
        return "\n".join(out)

    tools = [Tool(read_file), Tool(write_file), Tool(list_dir)]
    return [t for t in tools if not (read_only and t.name == "write_file")]
