"""Datasets: importers (IDX, NPZ, HDF5, image folders, CSV), generated demos, normalisation and
on-the-fly augmentation. Arrays are float32, channels-first with a batch axis; labels int64.
"""
from __future__ import annotations

import csv
import gzip
import math
import stat
import warnings
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from functools import cache
from pathlib import Path

import numpy as np

Progress = Callable[[int, int], None]
_IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
# Pillow picks a decoder by content; these are the only ones an image folder may use (never EPS,
# which runs Ghostscript).
_IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP")
MAX_IMAGE_PIXELS = 40_000_000  # per image, refused before decoding
MAX_CLASSES = 100_000
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_CSV_CHUNK = 4096


class DataError(ValueError):
    """Bad or unreadable data; the message names the file and the row, image or column at fault."""


def _read_bytes(path: Path) -> bytes:
    """A regular file's bytes, or DataError."""
    with _open(path) as f:
        try:
            return f.read()
        except OSError as exc:
            raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _regular(path: Path) -> None:
    """DataError unless path is a regular file (a FIFO or a device would block or never end)."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(mode):
        raise DataError(f"{path}: not a regular file")


def _open(path: Path):
    _regular(path)
    try:
        return path.open("rb")
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _check_fits(path: Path, what: str, nbytes: int) -> None:
    """DataError before allocating `nbytes` that this machine does not have."""
    from .network import format_bytes, machine_memory

    available = machine_memory()
    if available is not None and nbytes > available:
        raise DataError(f"{path}: {what} needs {format_bytes(nbytes)} of memory, more than the "
                        f"{format_bytes(available)} this machine has")


@dataclass
class Dataset:
    """x: float32 (N, C, *spatial), images in [0, 1]; y: int64 (N,); source: the spec string;
    where(i): how errors name sample i in the source ("row 12", "image 3", a file)."""

    x: np.ndarray
    y: np.ndarray
    class_names: list[str]
    source: str
    where: Callable[[int], str] = field(default=lambda i: f"sample {i}", repr=False,
                                        compare=False)
    flat: bool = False
    """Each sample came as a row of values (a CSV) whose shape was guessed (a square count as an
    image): any Input of as many values fits it."""

    def __len__(self) -> int:
        return len(self.y)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def subset(self, start: int, stop: int) -> Dataset:
        return Dataset(self.x[start:stop], self.y[start:stop], self.class_names, self.source,
                       lambda i: self.where(start + i), self.flat)


def samples_of(x: np.ndarray, shape) -> np.ndarray | None:
    """x [N, ...] as samples of `shape`: as they are, or reshaped when they differ from it only
    by axes of size 1 ([N, 1, 1, 1024] read from an [N, 1, 1024] array, for a [1, 1024] Input);
    None when they do not fit."""
    shape, have = tuple(shape), tuple(x.shape[1:])
    if have == shape:
        return x
    if x.ndim < 1 or [d for d in have if d != 1] != [d for d in shape if d != 1]:
        return None
    return x.reshape(len(x), *shape)


def fit_input(dataset: Dataset, shape, where: str) -> Dataset:
    """The dataset with samples of the network's Input `shape` (see samples_of); DataError when
    they do not fit."""
    x = samples_of(dataset.x, shape)
    values = math.prod(dataset.input_shape)
    if x is None and dataset.flat and math.prod(shape) == values:
        x = dataset.x.reshape(len(dataset.x), *shape)
    if x is None:
        rows = f" (rows of {values} values)" if dataset.flat else ""
        raise DataError(f"{where}: the data has samples of shape {list(dataset.input_shape)}"
                        f"{rows} but the network's Input expects {list(shape)}")
    return dataset if x is dataset.x else replace(dataset, x=x)


def check_labels(labels: Dataset | np.ndarray, outputs: int, where: str) -> None:
    """DataError naming the first label the network cannot output (outside 0..outputs-1), its
    row (as the dataset names it) and the output count."""
    y = labels.y if isinstance(labels, Dataset) else np.asarray(labels)
    bad = np.flatnonzero((y < 0) | (y >= outputs))
    if bad.size:
        row = labels.where(bad[0]) if isinstance(labels, Dataset) else f"sample {bad[0]}"
        raise DataError(f"{where}: {row}: label {y[bad[0]]} does not fit the network's "
                        f"{outputs} outputs (labels 0 to {outputs - 1})")


def parse_range(text: str, n: int) -> tuple[int, int]:
    """"A:B", "A:" or ":B" (negative values count from the end, as in slices) -> (start, stop)."""
    parts = text.strip().split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        start, stop = (int(p) if p.strip() else None for p in parts)
    except ValueError:
        raise DataError(f"bad range {text!r}: expected A:B, A: or :B with integers") from None
    if any(v is not None and not -n <= v <= n for v in (start, stop)):
        raise DataError(f"range {text!r} goes past the end of the data ({n} samples)")
    start, stop, _ = slice(start, stop).indices(n)
    if start >= stop:
        raise DataError(f"range {text!r} is empty for {n} samples")
    return start, stop


def same_source(a: str | None, b: str | None) -> bool:
    """Whether two data specs name the same data: the same text, or paths to one file or folder
    ("../data/mnist" and its absolute path)."""
    if not a or not b:
        return False
    if a == b:
        return True
    try:
        return Path(a).exists() and Path(b).exists() and Path(a).samefile(b)
    except OSError:
        return False


def unmixed_classes(y: np.ndarray, train_range, val_range, classes: int) -> list[int]:
    """The classes missing from the training range, or from a non-empty validation range: data
    stored class by class and split by position (the last 20% one class)."""
    train = np.bincount(y[slice(*train_range)], minlength=classes)
    val = np.bincount(y[slice(*val_range)], minlength=classes)
    validating = val_range[1] > val_range[0]
    return [k for k in range(classes) if train[k] == 0 or (validating and val[k] == 0)]


VAL_PERCENT = 20.0
"""The validation share of a data choice that names none (the last 20% validate)."""


def split_ranges(choice: dict, n: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Train and validation ranges of a data choice (TrainingSettings.data: "train_range",
    "val_range", "val_percent"): explicit "A:B" texts win over the validation percentage (20 by
    default: the first 80% train, the rest validate); overlapping ranges are refused."""
    train_text, val_text = choice.get("train_range") or "", choice.get("val_range") or ""
    percent = float(choice.get("val_percent", VAL_PERCENT))
    if train_text.strip():
        train = parse_range(train_text, n)
    else:
        train = (0, n - int(round(n * percent / 100)))
        if train[1] <= 0:
            raise DataError(f"a validation share of {percent:g}% leaves no training samples "
                            f"out of {n}")
    if val_text.strip():
        val = parse_range(val_text, n)
    elif train_text.strip():
        val = (0, 0)
    else:
        val = (train[1], n)
    if val[0] < val[1] and max(train[0], val[0]) < min(train[1], val[1]):
        raise DataError(f"the validation range {val[0]}:{val[1]} overlaps the training range "
                        f"{train[0]}:{train[1]}: validating on training samples measures "
                        f"nothing new (give both ranges)")
    return train, val


def load_dataset(spec: str, *, image_size: tuple[int, int] | None = None, color: str | None = None,
                 seed: int = 0, progress: Progress | None = None) -> Dataset:
    """Load a file or folder (format from the path) or make a generated dataset ("shapes:2000").

    image_size (height, width) and color ("auto", "gray", "rgb") apply to image folders; seed to
    generated datasets; progress(done, total) is called while reading image folders and CSV rows.
    """
    spec = str(spec)
    path = Path(spec)
    if path.is_dir():
        if any("idx3" in p.name for p in path.iterdir()):
            ds = _load_idx(path)
        else:
            ds = _load_image_folder(path, image_size, color, progress)
    elif path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".npz":
            ds = _load_npz(path)
        elif suffix in (".h5", ".hdf5"):
            ds = _load_h5(path)
        elif suffix == ".csv":
            ds = _load_csv(path, progress)
        else:
            ds = _load_idx(path)
    else:
        name, _, size = spec.partition(":")
        if name not in GENERATED:
            raise DataError(f"unknown dataset {spec!r}: no such file or folder, and not a "
                            f"generated dataset ({', '.join(GENERATED)})")
        if size and not size.isdigit():
            raise DataError(f"bad dataset size in {spec!r}: expected {name}:N")
        if size and int(size) > MAX_GENERATED:
            raise DataError(f"{spec!r}: at most {MAX_GENERATED:,} samples are generated")
        ds = generate(name, int(size) if size else None, seed)
    ds.source = spec
    return ds


# Importers ---------------------------------------------------------------------------------------

def _make(path: Path, x, y, where: Callable[[int], str], class_names=None) -> Dataset:
    """Check and convert raw arrays: x to float32 channels-first (uint8 / 255), y to int64."""
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim == 0 or y.ndim == 0:
        raise DataError(f"{path}: x and y must be arrays of samples; got shapes {x.shape} and "
                        f"{y.shape}")
    if len(x) != len(y):
        raise DataError(f"{path}: {len(x)} samples in x but {len(y)} labels in y")
    if len(x) == 0:
        raise DataError(f"{path}: no samples")
    if x.dtype.kind not in "biuf":
        raise DataError(f"{path}: x must be numeric, got dtype {x.dtype}")
    if not 2 <= x.ndim <= 5:
        raise DataError(f"{path}: x must be (N, L), (N, H, W) or channels-first (N, C, ...) with "
                        f"up to 3 spatial axes, got shape {x.shape}")
    if x.ndim <= 3:
        x = x[:, None]
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255
    x = x.astype(np.float32, copy=False)
    bad = np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).all(axis=1))
    if bad.size:
        raise DataError(f"{path}: {where(bad[0])} contains NaN or infinity")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.dtype.kind not in "iuf":
        raise DataError(f"{path}: labels must be a 1-D integer array, got {y.dtype} {y.shape}")
    if y.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(y) | (y != np.round(y)))
        if bad.size:
            raise DataError(f"{path}: {where(bad[0])}: label {y[bad[0]]} is not a whole number")
    bad = np.flatnonzero(y < 0)
    if bad.size:
        raise DataError(f"{path}: {where(bad[0])}: label {int(y[bad[0]])} is negative")
    bad = np.flatnonzero(y >= MAX_CLASSES)
    if bad.size:
        raise DataError(f"{path}: {where(bad[0])}: label {int(y[bad[0]])} is over the limit of "
                        f"{MAX_CLASSES:,} classes")
    y = y.astype(np.int64)
    if class_names is None:
        class_names = [str(k) for k in range(int(y.max()) + 1)]
    bad = np.flatnonzero(y >= len(class_names))
    if bad.size:
        raise DataError(f"{path}: {where(bad[0])}: label {y[bad[0]]} is out of range for "
                        f"{len(class_names)} classes")
    return Dataset(x, y, list(class_names), str(path), where)


def _read_idx(path: Path) -> np.ndarray:
    """An IDX array, gzipped or not; the header's size is checked before the data is read."""
    with _open(path) as raw:
        try:
            magic = raw.read(2)
            raw.seek(0)
            f = gzip.GzipFile(fileobj=raw) if magic == b"\x1f\x8b" else raw
            head = f.read(4)
            if len(head) < 4 or head[:2] != b"\0\0" or head[2] not in _IDX_TYPES or not head[3]:
                raise DataError(f"{path}: not a recognised data file (expected IDX, .npz, .h5, "
                                f".csv or a folder of images)")
            dims = np.frombuffer(f.read(4 * head[3]), ">u4")
            if len(dims) < head[3]:
                raise DataError(f"{path}: IDX header is truncated")
            dims, dtype = tuple(int(d) for d in dims), np.dtype(_IDX_TYPES[head[2]])
            expected = math.prod(dims) * dtype.itemsize
            _check_fits(path, f"an array of shape {dims}", expected)
            data = f.read(expected + 1)
        except (OSError, EOFError, zlib.error) as exc:
            problem = f"cannot read ({exc.strerror})" if getattr(exc, "errno", None) \
                else f"broken file ({exc})"
            raise DataError(f"{path}: {problem}") from None
    if len(data) != expected:
        held = f"more than {expected}" if len(data) > expected else len(data)
        raise DataError(f"{path}: header says shape {dims} ({expected} bytes) but the file holds "
                        f"{held} bytes of data")
    return np.frombuffer(data, dtype).reshape(dims).astype(dtype.newbyteorder("="))


def _load_idx(path: Path) -> Dataset:
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if "idx3" in p.name)
        if len(found) != 1:
            raise DataError(f"{path}: expected one IDX images file (*idx3*), found "
                            f"{', '.join(p.name for p in found)}; give the file instead")
        path = found[0]
    x = _read_idx(path)
    twin = path.with_name(path.name.replace("images-idx3", "labels-idx1"))
    if twin == path or not twin.is_file():
        found = sorted(p for p in path.parent.iterdir()
                       if "labels" in p.name.lower() and "idx1" in p.name.lower())
        if len(found) != 1:
            raise DataError(f"{path}: cannot find its labels file: expected one *labels*idx1* file "
                            f"beside it, found {len(found)}")
        twin = found[0]
    y = _read_idx(twin)
    if x.ndim < 2 or y.ndim != 1:
        raise DataError(f"{path}: expected images with shape (N, ...) and labels (N,), got "
                        f"{x.shape} and {y.shape} in {twin.name}")
    if len(x) != len(y):
        raise DataError(f"{path}: {len(x)} images but {len(y)} labels in {twin.name}")
    return _make(path, x, y, lambda i: f"image {i}")


def _names(path: Path, values) -> list[str]:
    values = np.atleast_1d(values)
    if values.size > MAX_CLASSES:
        raise DataError(f"{path}: {values.size:,} class names, over the limit of {MAX_CLASSES:,} "
                        f"classes")
    return [v.decode(errors="replace") if isinstance(v, bytes) else str(v) for v in values]


def _npz_array(path: Path, z: zipfile.ZipFile, key: str) -> np.ndarray:
    """One member of an .npz, its declared shape checked against its stored size first (numpy
    allocates what the header declares before reading)."""
    member = z.getinfo(f"{key}.npy")
    fmt = np.lib.format
    try:
        with z.open(member) as f:
            version = fmt.read_magic(f)
            read_header = fmt.read_array_header_1_0 if version == (1, 0) \
                else fmt.read_array_header_2_0
            shape, _, dtype = read_header(f)
            header = f.tell()
            nbytes = math.prod(shape) * dtype.itemsize
            if dtype.hasobject:
                raise DataError(f"{path}: array {key!r} holds Python objects; expected numbers")
            if nbytes > member.file_size - header:
                raise DataError(f"{path}: array {key!r} declares shape {shape} ({nbytes} bytes) "
                                f"but holds {member.file_size - header} bytes")
            _check_fits(path, f"array {key!r} of shape {shape}", nbytes)
        with z.open(member) as f:
            return fmt.read_array(f, allow_pickle=False)
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(f"{path}: array {key!r} is damaged ({exc})") from None


def _load_npz(path: Path) -> Dataset:
    with _open(path) as f:
        if f.read(6) == b"\x93NUMPY":
            raise DataError(f"{path}: a single .npy array named .npz; an .npz holds arrays x and y "
                            f"(numpy.savez(path, x=..., y=...))")
        try:
            with zipfile.ZipFile(f) as z:
                found = [name[:-4] for name in z.namelist() if name.endswith(".npy")]
                for key in ("x", "y"):
                    if key not in found:
                        raise DataError(f"{path}: missing array {key!r} (found: "
                                        f"{', '.join(found) or 'none'})")
                x, y = (_npz_array(path, z, key) for key in ("x", "y"))
                names = _names(path, _npz_array(path, z, "class_names")) if "class_names" in found \
                    else None
        except (OSError, zipfile.BadZipFile) as exc:
            raise DataError(f"{path}: not a readable .npz file ({exc})") from None
    return _make(path, x, y, lambda i: f"sample {i}", names)


def _h5_array(path: Path, f, key: str) -> np.ndarray:
    """Dataset `key`, refused when it reads another file (external link or storage, virtual)
    or declares more than the machine holds."""
    import h5py

    link = f.get(key, getlink=True)
    if isinstance(link, h5py.ExternalLink):
        raise DataError(f"{path}: dataset {key!r} is a link to another file ({link.filename}); "
                        f"a data file must hold its arrays")
    d = f.get(key)
    if not isinstance(d, h5py.Dataset):
        raise DataError(f"{path}: missing dataset {key!r} (found: {', '.join(f)})")
    if d.external or d.is_virtual:
        raise DataError(f"{path}: dataset {key!r} stores its data in other files; a data file "
                        f"must hold its arrays")
    if d.dtype.kind not in "biuf":
        raise DataError(f"{path}: dataset {key!r} must be numeric, got dtype {d.dtype}")
    _check_fits(path, f"dataset {key!r} of shape {d.shape}", math.prod(d.shape) * d.dtype.itemsize)
    return d[()]


def _load_h5(path: Path) -> Dataset:
    import h5py

    _regular(path)
    try:
        with h5py.File(path, "r") as f:
            x, y = _h5_array(path, f, "x"), _h5_array(path, f, "y")
            names = f.attrs.get("class_names", f["y"].attrs.get("class_names"))
            names = None if names is None else _names(path, names)
    except DataError:
        raise
    except (OSError, RuntimeError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: cannot read HDF5 ({exc})") from None
    return _make(path, x, y, lambda i: f"sample {i}", names)


def _load_image_folder(path: Path, image_size, color, progress) -> Dataset:
    mode = (color or "auto").lower()
    if mode not in ("auto", "gray", "rgb"):
        raise DataError(f"color must be auto, gray or rgb. Received: {color!r}")
    classes = sorted(d for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))
    if len(classes) > MAX_CLASSES:
        raise DataError(f"{path}: {len(classes):,} class folders, over the limit of "
                        f"{MAX_CLASSES:,} classes")
    files = []
    for k, folder in enumerate(classes):
        images = sorted(f for f in folder.iterdir() if f.suffix.lower() in _IMAGE_EXT)
        if not images:
            raise DataError(f"{folder}: class folder holds no images "
                            f"({', '.join(sorted(_IMAGE_EXT))})")
        files += [(f, k) for f in images]
    if not files:
        raise DataError(f"{path}: empty folder: expected one subfolder of images per class")
    # one fixed shuffled order, the same every time: ranges (the default last 20% validating)
    # then mix the classes instead of holding the last class folders only
    files = [files[i] for i in np.random.default_rng(0).permutation(len(files))]
    size = None if image_size is None else (int(image_size[1]), int(image_size[0]))
    n, buf, colour = len(files), None, False
    for i, (file, _) in enumerate(files):
        arr = _read_image(file, mode, size if image_size is not None else None)
        size = size or arr.shape[1::-1]
        if arr.shape[1::-1] != size:
            raise DataError(f"{file}: size {arr.shape[1]}x{arr.shape[0]}, expected "
                            f"{size[0]}x{size[1]} as the first image (resize the images to one "
                            f"size, or set the Train panel's Image size)")
        if buf is None:
            # the uint8 images, then their float32 copy
            _check_fits(path, f"{n} images of {size[0]}x{size[1]}", n * arr.size * 5)
            buf = np.empty((n, *arr.shape), np.uint8)
        buf[i] = arr
        if mode == "auto" and not colour:
            colour = bool((arr[..., 0] != arr[..., 1]).any() or (arr[..., 1] != arr[..., 2]).any())
        if progress and ((i + 1) % 256 == 0 or i + 1 == n):
            progress(i + 1, n)
    if mode == "auto" and not colour:
        buf = buf[..., 0]
    elif buf.ndim == 4:
        buf = buf.transpose(0, 3, 1, 2)
    y = np.array([k for _, k in files])
    return _make(path, buf, y, lambda i: str(files[i][0]), [d.name for d in classes])


def _read_image(file: Path, mode: str, size: tuple[int, int] | None) -> np.ndarray:
    """One image as uint8 [H, W] or [H, W, 3], resized to size (width, height) when given; only
    image formats are decoded, and only within MAX_IMAGE_PIXELS."""
    from PIL import Image

    _regular(file)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(file, formats=_IMAGE_FORMATS) as im:
                width, height = im.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise DataError(f"{file}: {width}x{height} pixels, over the limit of "
                                    f"{MAX_IMAGE_PIXELS:,} pixels per image")
                im = im.convert("L" if mode == "gray" else "RGB")
                if size is not None and im.size != size:
                    im = im.resize(size, Image.Resampling.BILINEAR)
                return np.asarray(im)
    except DataError:
        raise
    except Image.UnidentifiedImageError:
        raise DataError(f"{file}: cannot read image: not in an image format read here "
                        f"({', '.join(_IMAGE_FORMATS)})") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DataError(f"{file}: over the limit of {MAX_IMAGE_PIXELS:,} pixels per image "
                        f"({str(exc).split(',')[0]})") from None
    except (OSError, ValueError, SyntaxError, EOFError, zlib.error) as exc:
        raise DataError(f"{file}: cannot read image ({exc})") from None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _csv_fault(path: Path, lines: list[str], first_row: int, names: list[str], delim: str) -> None:
    """Find the ragged row or non-numeric cell that numpy refused, and raise a DataError for it."""
    for r, cells in _csv_rows(path, lines, delim, first_row):
        if len(cells) != len(names):
            raise DataError(f"{path}: row {r} has {max(len(cells) - 1, 0)} values, expected "
                            f"{len(names) - 1}")
        for name, cell in zip(names, cells, strict=True):
            if not _is_number(cell):
                raise DataError(f"{path}: row {r}, column {name!r}: {cell!r} is not a number")


def _csv_rows(path: Path, lines: list[str], delim: str, first_row: int):
    """(row number, cells) of csv.reader, its errors (a cell over csv.field_size_limit(), a NUL)
    as DataError naming the row."""
    rows = csv.reader(lines, delimiter=delim)
    try:
        yield from enumerate(rows, first_row)
    except csv.Error as exc:
        raise DataError(f"{path}: row {first_row + max(rows.line_num - 1, 0)}: {exc}") from None


def _load_csv(path: Path, progress) -> Dataset:
    try:
        lines = _read_bytes(path).decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a UTF-8 text file ({exc})") from None
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise DataError(f"{path}: empty file")
    delim = next((d for d in ",;\t" if d in lines[0]), ",")
    first = next(_csv_rows(path, lines[:1], delim, 1))[1]
    header = not all(_is_number(c) for c in first)
    names = [c.strip() for c in first] if header else [f"column {j + 1}" for j in range(len(first))]
    label = next((j for j, c in enumerate(names) if "label" in c.lower()), 0) if header else 0
    body, first_row = (lines[1:], 2) if header else (lines, 1)
    if not body or len(names) < 2:
        raise DataError(f"{path}: expected a label column and value columns with at least one row")
    n = len(body)
    data = np.empty((n, len(names)), np.float32)
    options = {"delimiter": delim, "comments": None, "quotechar": '"', "ndmin": 2}
    integral = True
    for s in range(0, n, _CSV_CHUNK):
        chunk = body[s:s + _CSV_CHUNK]
        try:
            try:  # integer cells (MNIST-like files) parse about 8x faster than floats
                data[s:s + len(chunk)] = np.loadtxt(chunk, np.int64, **options)
            except ValueError:
                data[s:s + len(chunk)] = np.loadtxt(chunk, np.float32, **options)
                integral = False
        except ValueError as exc:
            _csv_fault(path, chunk, first_row + s, names, delim)
            raise DataError(f"{path}: rows {first_row + s}-{first_row + s + len(chunk) - 1}: "
                            f"{exc}") from None
        if progress:
            progress(s + len(chunk), n)
    x = np.delete(data, label, axis=1)
    if integral and 1 < x.max() <= 255 and x.min() >= 0:
        x /= 255
    side = math.isqrt(x.shape[1])
    x = x.reshape(n, side, side) if side > 1 and side * side == x.shape[1] else x
    return replace(_make(path, x, data[:, label], lambda i: f"row {i + first_row}"), flat=True)


# Generated datasets ------------------------------------------------------------------------------

def _balanced(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(np.arange(n) % k).astype(np.int64)


SHAPE_NAMES = ["circle", "square", "triangle", "cross"]


def _shape_masks(n: int, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Anti-aliased masks [n, size, size] of circles, squares, triangles and crosses with random
    size, position and rotation, and their labels."""
    y = _balanced(n, 4, rng)
    scale = size / 28
    r = rng.uniform(5.5 * scale, 9.5 * scale, n).astype(np.float32)
    cy, cx = (rng.uniform(r + 0.5, size - 1.5 - r).astype(np.float32) for _ in range(2))
    theta = rng.uniform(0, 2 * np.pi, n).astype(np.float32)
    g = np.arange(size, dtype=np.float32)
    dy = g[None, :, None] - cy[:, None, None]
    dx = g[None, None, :] - cx[:, None, None]
    cos, sin = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
    u, v, r = dx * cos + dy * sin, dy * cos - dx * sin, r[:, None, None]
    # Signed distances (negative inside); sizes roughly matched so area is not the only cue.
    sdf = [
        lambda u, v, r: np.hypot(u, v) - r,
        lambda u, v, r: np.maximum(abs(u), abs(v)) - 0.85 * r,
        lambda u, v, r: np.max([u * np.cos(a) + v * np.sin(a) for a in (np.pi / 2, 7 * np.pi / 6,
                                                                         11 * np.pi / 6)], axis=0)
        - 0.65 * r,
        lambda u, v, r: np.minimum(np.maximum(abs(u) - r, abs(v) - 0.3 * r),
                                   np.maximum(abs(v) - r, abs(u) - 0.3 * r)),
    ]
    mask = np.empty((n, size, size), np.float32)
    for k, f in enumerate(sdf):
        m = y == k
        mask[m] = np.clip(0.5 - f(u[m], v[m], r[m]), 0, 1)
    return mask, y


def _shapes(n: int = 6000, seed: int = 0) -> Dataset:
    """28x28 grayscale circle, square, triangle, cross; random size, position, rotation,
    contrast and noise."""
    rng = np.random.default_rng(seed)
    mask, y = _shape_masks(n, 28, rng)
    background = rng.uniform(0.0, 0.25, (n, 1, 1))
    level = rng.uniform(0.6, 1.0, (n, 1, 1))
    noise = rng.standard_normal((n, 28, 28)) * rng.uniform(0.02, 0.1, (n, 1, 1))
    x = np.clip(background + (level - background) * mask + noise, 0, 1).astype(np.float32)
    return Dataset(x[:, None], y, list(SHAPE_NAMES), "shapes")


def _shapes_rgb(n: int = 6000, seed: int = 0) -> Dataset:
    """32x32 RGB shapes: a random-coloured shape on a random-coloured background (colour says
    nothing about the class), for the 3-channel templates."""
    rng = np.random.default_rng(seed)
    mask, y = _shape_masks(n, 32, rng)
    background = rng.uniform(0.0, 1.0, (n, 3, 1, 1))
    colour = rng.uniform(0.0, 1.0, (n, 3, 1, 1))
    # keep the shape visible: push its colour away from the background where they are close
    close = np.abs(colour - background).max(axis=1, keepdims=True) < 0.35
    colour = np.where(close, 1.0 - background, colour)
    noise = rng.standard_normal((n, 3, 32, 32)) * rng.uniform(0.02, 0.08, (n, 1, 1, 1))
    x = background + (colour - background) * mask[:, None] + noise
    return Dataset(np.clip(x, 0, 1).astype(np.float32), y, list(SHAPE_NAMES), "shapes-rgb")


def _signals(n: int = 3000, seed: int = 0) -> Dataset:
    """1024 samples at 8 kHz: coloured noise, with a harmonic voice-like burst in class "voice"."""
    rng = np.random.default_rng(seed)
    length, rate = 1024, 8000.0
    y = _balanced(n, 2, rng)
    # Coloured background noise: white noise shaped by 1/f^alpha, alpha in [0, 1].
    spectrum = np.fft.rfft(rng.standard_normal((n, length)), axis=1)
    freq = np.fft.rfftfreq(length)
    spectrum[:, 1:] *= freq[1:] ** (-rng.uniform(0, 1, (n, 1)) / 2)
    noise = np.fft.irfft(spectrum, length, axis=1)
    noise *= rng.uniform(0.05, 0.3, (n, 1)) / noise.std(axis=1, keepdims=True)
    # A smooth (sin^2) burst with random onset and length in every sample: a harmonic tone for
    # "voice", a louder noise burst for half of "noise", so loudness alone does not tell them apart.
    span = rng.integers(200, 700, n)
    onset = rng.integers(0, length - span)
    phase = (np.arange(length) - onset[:, None]) / span[:, None]
    envelope = np.where((phase >= 0) & (phase <= 1), np.sin(np.pi * phase) ** 2, 0.0)
    burst = rng.standard_normal((n, length)) * 0.5 * (rng.random((n, 1)) < 0.5)
    voice = y == 1
    m = int(voice.sum())
    f0 = rng.uniform(100, 300, (m, 1, 1)).astype(np.float32)
    harmonics = np.arange(1, 7, dtype=np.float32)[None, :, None]
    weights = np.exp(-rng.uniform(0.3, 0.9, (m, 1, 1)) * (harmonics - 1)).astype(np.float32)
    start = rng.uniform(0, 2 * np.pi, (m, 6, 1)).astype(np.float32)
    t = np.arange(length, dtype=np.float32) / np.float32(rate)
    burst[voice] = (weights * np.sin(2 * np.pi * f0 * harmonics * t + start)).sum(axis=1)
    burst[voice] /= weights.sum(axis=1)
    x = noise + rng.uniform(0.3, 1.0, (n, 1)) * envelope * burst
    return Dataset(x[:, None].astype(np.float32), y, ["noise", "voice"], "signals")


def _volumes(n: int = 1500, seed: int = 0) -> Dataset:
    """16x16x16 solid gaussian blob, hollow shell, or rod along a random axis, with noise."""
    rng = np.random.default_rng(seed)
    y = _balanced(n, 3, rng)
    radius = rng.uniform(3.0, 5.5, (n, 1))
    centre = rng.uniform(radius + 1, 14 - radius, (n, 3)).astype(np.float32)[..., None, None, None]
    g = np.arange(16, dtype=np.float32)
    grid = np.stack(np.meshgrid(g, g, g, indexing="ij"))[None]
    delta = grid - centre
    dist2 = (delta ** 2).sum(axis=1)
    width = rng.uniform(0.6, 1.1, (n, 1, 1, 1))
    radius = radius[:, :, None, None]
    axis = rng.integers(0, 3, n)
    along = np.take_along_axis(delta, axis[:, None, None, None, None], axis=1)[:, 0]
    across2 = dist2 - along ** 2
    half = radius * rng.uniform(1.2, 1.8, (n, 1, 1, 1))
    shapes = np.where(y[:, None, None, None] == 0, np.exp(-dist2 / (2 * (0.55 * radius) ** 2)),
                      np.where(y[:, None, None, None] == 1,
                               np.exp(-(np.sqrt(dist2) - radius) ** 2 / (2 * width ** 2)),
                               np.exp(-across2 / (2 * width ** 2))
                               * np.clip(half - abs(along) + 0.5, 0, 1)))
    level = rng.uniform(0.5, 1.0, (n, 1, 1, 1))
    noise = rng.standard_normal((n, 16, 16, 16)) * rng.uniform(0.02, 0.12, (n, 1, 1, 1))
    x = np.clip(level * shapes + noise, 0, 1).astype(np.float32)
    return Dataset(x[:, None], y, ["blob", "shell", "rod"], "volumes")


MAX_GENERATED = 1_000_000
"""The most samples a generated dataset holds (the Train panel's limit too)."""
GENERATED: dict[str, Callable[..., Dataset]] = {
    "shapes": _shapes, "shapes-rgb": _shapes_rgb, "signals": _signals, "volumes": _volumes}


def generate(name: str, n: int | None = None, seed: int = 0) -> Dataset:
    """A generated dataset by name; n samples (default per dataset), bit-identical for a seed."""
    if name not in GENERATED:
        raise DataError(f"unknown generated dataset {name!r} (known: {', '.join(GENERATED)})")
    if n is not None and n < 1:
        raise DataError(f"{name}: the number of samples must be positive. Received: {n}")
    ds = GENERATED[name](seed=seed) if n is None else GENERATED[name](n, seed)
    ds.source = name if n is None else f"{name}:{n}"
    return ds


# Normalisation and augmentation ------------------------------------------------------------------

@dataclass
class Normalization:
    """Per-channel mean and standard deviation, fitted on the training range."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> Normalization:
        axes = (0, *range(2, x.ndim))
        std = x.std(axis=axes, dtype=np.float64)
        std[std < 1e-6] = 1.0  # a constant channel is only shifted
        return cls(x.mean(axis=axes, dtype=np.float64).astype(np.float32), std.astype(np.float32))

    def apply(self, x: np.ndarray) -> np.ndarray:
        if x.ndim < 2 or x.shape[1] != len(self.mean):
            raise DataError(f"normalization has {len(self.mean)} channels; input shape {x.shape} "
                            f"(batch, channels, ...) does not match")
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return ((x - self.mean.reshape(shape)) / self.std.reshape(shape)).astype(np.float32)

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> Normalization:
        try:
            mean, std = (np.asarray(d[k], np.float32).reshape(-1) for k in ("mean", "std"))
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"normalization: expected lists 'mean' and 'std', got {d!r}") from exc
        if len(mean) != len(std) or not (std > 0).all():
            raise DataError(f"normalization: mean and std must have the same length and std > 0, "
                            f"got {d!r}")
        return cls(mean, std)


def _augment(x, out, shift, flip, scale, offset):
    """out = (translate(flip(x)) - m) * scale + m + offset per sample, m its mean; x (B,C,D,H,W)."""
    nb, nc, nd, nh, nw = x.shape
    for b in range(nb):
        total = 0.0
        for c in range(nc):
            for d in range(nd):
                sd = d - shift[b, 0]
                for h in range(nh):
                    sh = h - shift[b, 1]
                    inside = 0 <= sd < nd and 0 <= sh < nh
                    for w in range(nw):
                        sw = w - shift[b, 2]
                        if flip[b]:
                            sw = nw - 1 - sw
                        v = x[b, c, sd, sh, sw] if inside and 0 <= sw < nw else np.float32(0)
                        out[b, c, d, h, w] = v
                        total += v
        mean = total / (nc * nd * nh * nw)
        add = mean * (1 - scale[b]) + offset[b]
        for c in range(nc):
            for d in range(nd):
                for h in range(nh):
                    for w in range(nw):
                        out[b, c, d, h, w] = out[b, c, d, h, w] * scale[b] + add


@cache
def _augment_kernel():
    """_augment compiled by numba (or loaded from its cache) on first use: importing numba takes
    longer than reading most datasets, and only augmentation needs it."""
    from numba import njit

    return njit(cache=True, nogil=True)(_augment)


@dataclass
class Augmentation:
    """Seeded on-the-fly augmentation of training batches (N, C, *spatial), 1 to 3 spatial axes.

    translate: max shift in pixels along each spatial axis (zero fill); hflip: flip the last axis
    with probability 1/2; brightness: add U(-b, b); contrast: scale around the sample's mean by
    U(1 - c, 1 + c).
    """

    translate: int = 0
    hflip: bool = False
    brightness: float = 0.0
    contrast: float = 0.0

    def __post_init__(self):
        if int(self.translate) != self.translate or self.translate < 0:
            raise DataError(f"translate must be a whole number >= 0. Received: {self.translate!r}")
        if not (self.brightness >= 0 and 0 <= self.contrast <= 1):
            raise DataError(f"brightness must be >= 0 and contrast in [0, 1]. Received: "
                            f"brightness={self.brightness!r}, contrast={self.contrast!r}")
        self.translate, self.hflip = int(self.translate), bool(self.hflip)
        self.brightness, self.contrast = float(self.brightness), float(self.contrast)

    @property
    def enabled(self) -> bool:
        return bool(self.translate or self.hflip or self.brightness or self.contrast)

    def apply(self, batch: np.ndarray, rng: np.random.Generator,
              out: np.ndarray | None = None) -> np.ndarray:
        """Augmented float32 copy of batch (written into out when given; out must not overlap)."""
        if not 3 <= batch.ndim <= 5:
            raise DataError(f"augmentation expects (N, C, L), (N, C, H, W) or (N, C, D, H, W). "
                            f"Received: {batch.shape}")
        if out is None:
            out = np.empty(batch.shape, np.float32)
        elif (out.shape != batch.shape or out.dtype != np.float32 or not out.flags.c_contiguous
              or np.may_share_memory(out, batch)):
            raise ValueError("out must be a separate contiguous float32 array of the batch's shape")
        if not self.enabled:
            out[...] = batch
            return out
        n, spatial = len(batch), batch.ndim - 2
        shift = np.zeros((n, 3), np.int64)
        if self.translate:
            shift[:, 3 - spatial:] = rng.integers(-self.translate, self.translate + 1, (n, spatial))
        flip = rng.random(n) < 0.5 if self.hflip else np.zeros(n, np.bool_)
        scale = (rng.uniform(1 - self.contrast, 1 + self.contrast, n) if self.contrast
                 else np.ones(n)).astype(np.float32)
        offset = (rng.uniform(-self.brightness, self.brightness, n) if self.brightness
                  else np.zeros(n)).astype(np.float32)
        view = (n, batch.shape[1]) + (1,) * (3 - spatial) + batch.shape[2:]
        x = np.ascontiguousarray(batch, np.float32).reshape(view)
        _augment_kernel()(x, out.reshape(view), shift, flip, scale, offset)
        return out

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Augmentation:
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise DataError(f"augmentation: unknown settings {sorted(unknown)}")
        return cls(**d)


def data_spec(dataset: Dataset, normalization: Normalization,
              train_range: tuple[int, int] | None, val_range: tuple[int, int] | None) -> dict:
    """The JSON "spec" stored under /data in model files (DESIGN.md 3.2)."""
    return {"source": dataset.source, "input_shape": list(dataset.input_shape),
            "class_names": list(dataset.class_names), "normalization": normalization.to_dict(),
            "train_range": list(train_range) if train_range else None,
            "val_range": list(val_range) if val_range else None}
