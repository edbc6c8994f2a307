"""Lazy, bounded-memory readers of arrays inside ``.npz`` files."""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np


class NpzArray:
    """One array of an ``.npz`` archive, read in row ranges without loading the whole array.

    ``np.load(path)[key]`` decompresses the whole member; a 224-px test split can be gigabytes. This reads the
    ``.npy`` header and then only the bytes of the rows asked for. The member stays open between reads, so reading
    a split front to back inflates it once; a backward jump in a compressed member re-inflates from the start.

    Args:
        path: The ``.npz`` file.
        key: Array name inside it (``test_images``).

    Raises:
        ValueError: If the file is missing, not a zip archive, lacks the key, or is truncated.
    """

    def __init__(self, path: str | Path, key: str):
        self.path, self.key = Path(path), key
        try:
            with zipfile.ZipFile(self.path) as archive, archive.open(f"{key}.npy") as member:
                version = np.lib.format.read_magic(member)
                read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
                if version not in read_header:
                    raise ValueError(f"unsupported .npy format version {version}")
                shape, fortran, dtype = read_header[version](member)
                self._offset = member.tell()
        except FileNotFoundError:
            raise ValueError(f"file not found: {self.path}") from None
        except KeyError:
            raise ValueError(f"{self.path} has no array {key!r}") from None
        except (zipfile.BadZipFile, zlib.error, ValueError, EOFError, OSError) as error:  # zlib: corrupt deflate data
            raise ValueError(f"cannot read {self.path} (truncated or corrupt?): {error}") from None
        if fortran:
            raise ValueError(f"{self.path}:{key} is Fortran-ordered; expected C order")
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self._row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        self._archive: zipfile.ZipFile | None = None
        self._member = None
        self._row = 0  # row at which the open member is positioned

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.update(_archive=None, _member=None, _row=0)
        return state

    def close(self) -> None:
        """Closes the open archive (reads reopen it)."""
        if self._archive is not None:
            self._archive.close()
        self._archive, self._member, self._row = None, None, 0

    def _seek(self, row: int) -> None:
        # A compressed member can only be read forward: keep it open and skip ahead; reopen to go back.
        if self._member is None or row < self._row:
            self.close()
            self._archive = zipfile.ZipFile(self.path)
            self._member = self._archive.open(f"{self.key}.npy")
            self._member.seek(self._offset)
        if row > self._row:
            self._member.seek((row - self._row) * self._row_bytes, 1)
        self._row = row

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: slice) -> np.ndarray:
        if not isinstance(rows, slice):
            raise TypeError("NpzArray supports row slices only")
        start, stop, step = rows.indices(len(self))
        if step != 1:
            raise ValueError("NpzArray supports contiguous row slices only")
        count = max(0, stop - start)
        try:
            self._seek(start)
            data = self._member.read(count * self._row_bytes)
            self._row = start + len(data) // self._row_bytes
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as error:  # zlib: corrupt deflate data
            self.close()
            raise ValueError(f"cannot read {self.path}:{self.key} (truncated or corrupt?): {error}") from None
        if len(data) != count * self._row_bytes:
            raise ValueError(f"{self.path}:{self.key} is truncated: rows {start}..{stop} are incomplete")
        return np.frombuffer(data, dtype=self.dtype).reshape((count, *self.shape[1:]))

    def read(self) -> np.ndarray:
        """The whole array (small arrays such as labels)."""
        return self[:]
