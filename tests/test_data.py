"""Tests for engine.data: importers, their error messages, generated datasets, normalisation,
augmentation and ranges."""
import gzip
import json
import os
import struct
import time
import zipfile
import zlib
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from engine.data import (
    GENERATED,
    Augmentation,
    DataError,
    Dataset,
    Normalization,
    check_labels,
    data_spec,
    fit_input,
    generate,
    load_dataset,
    parse_range,
)

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-10k"


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    code = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D}[array.dtype]
    raw = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw += array.tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def digits(n=12, h=5, w=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, h, w), dtype=np.uint8), np.arange(n, dtype=np.uint8) % 3


def write_csv(path: Path, rows, header=None) -> Path:
    lines = [",".join(header)] if header else []
    path.write_text("\n".join(lines + [",".join(str(v) for v in r) for r in rows]) + "\n")
    return path


def save_image(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


# IDX ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [False, True])
def test_idx_pair_from_file_and_folder(tmp_path, gz):
    x, y = digits()
    ext = ".gz" if gz else ""
    images = write_idx(tmp_path / f"train-images-idx3-ubyte{ext}", x, gz)
    write_idx(tmp_path / f"train-labels-idx1-ubyte{ext}", y, gz)
    for spec in (images, tmp_path):
        ds = load_dataset(str(spec))
        assert ds.x.shape == (12, 1, 5, 4) and ds.x.dtype == np.float32
        np.testing.assert_array_equal(ds.x[:, 0], x / np.float32(255))
        np.testing.assert_array_equal(ds.y, y)
        assert ds.y.dtype == np.int64 and ds.class_names == ["0", "1", "2"]
        assert ds.source == str(spec)


def test_idx_single_labels_file_and_other_dtypes(tmp_path):
    x = np.random.default_rng(1).random((6, 3, 3)).astype(">f4")
    images = write_idx(tmp_path / "scans.idx3", x)
    write_idx(tmp_path / "my-labels.idx1", np.array([0, 1, 2, 3, 4, 0], ">i4"))
    ds = load_dataset(str(images))
    np.testing.assert_array_equal(ds.x[:, 0], x)  # float data is not rescaled
    assert ds.num_classes == 5


def test_idx_errors(tmp_path):
    x, y = digits()
    images = write_idx(tmp_path / "a-images-idx3-ubyte", x)
    write_idx(tmp_path / "a-labels-idx1-ubyte", y[:-1])
    with pytest.raises(DataError, match=r"a-images-idx3-ubyte: 12 images but 11 labels in a-lab"):
        load_dataset(str(images))
    images.write_bytes(images.read_bytes()[:-5])
    with pytest.raises(DataError, match=r"a-images-idx3-ubyte: header says shape \(12, 5, 4\)"):
        load_dataset(str(images))
    write_idx(tmp_path / "b-images-idx3-ubyte", x)
    with pytest.raises(DataError, match=r"expected one IDX images file \(\*idx3\*\), found a-"):
        load_dataset(str(tmp_path))
    (tmp_path / "a-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match=r"b-images-idx3-ubyte: cannot find its labels file"):
        load_dataset(str(tmp_path / "b-images-idx3-ubyte"))
    odd = tmp_path / "other.bin"
    odd.write_bytes(b"hello world")
    with pytest.raises(DataError, match=r"other\.bin: not a recognised data file"):
        load_dataset(str(odd))


@pytest.mark.skipif(not MNIST.is_dir(), reason="shared MNIST test set not present")
def test_real_mnist_folder():
    ds = load_dataset(str(MNIST))
    assert ds.x.shape == (10000, 1, 28, 28) and ds.x.dtype == np.float32
    assert ds.x.min() == 0.0 and ds.x.max() == 1.0
    assert np.bincount(ds.y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert ds.class_names == [str(d) for d in range(10)] and ds.input_shape == (1, 28, 28)
    assert len(ds.subset(*parse_range("8000:", len(ds)))) == 2000


# NPZ and HDF5 ------------------------------------------------------------------------------------

def test_npz_adds_channel_axis_and_scales_uint8(tmp_path):
    x, y = digits()
    np.savez(tmp_path / "img.npz", x=x, y=y.astype(np.float64))
    ds = load_dataset(str(tmp_path / "img.npz"))
    assert ds.x.shape == (12, 1, 5, 4) and ds.x.max() <= 1.0 and ds.y.dtype == np.int64
    signals = np.random.default_rng(0).standard_normal((4, 10))
    np.savez(tmp_path / "sig.npz", x=signals, y=[0, 1, 1, 0], class_names=["off", "on"])
    ds = load_dataset(str(tmp_path / "sig.npz"))
    assert ds.x.shape == (4, 1, 10) and ds.class_names == ["off", "on"]
    np.testing.assert_allclose(ds.x[:, 0], signals, rtol=1e-6)
    np.savez(tmp_path / "vol.npz", x=np.zeros((2, 2, 3, 4, 5), np.float32), y=[0, 1])
    assert load_dataset(str(tmp_path / "vol.npz")).input_shape == (2, 3, 4, 5)


def test_h5_with_class_names(tmp_path):
    x, y = digits()
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["x"], f["y"] = x[:, None], y
        f.attrs["class_names"] = ["cat", "dog", "eel"]
    ds = load_dataset(str(tmp_path / "d.h5"))
    assert ds.x.shape == (12, 1, 5, 4) and ds.class_names == ["cat", "dog", "eel"]
    np.testing.assert_array_equal(ds.y, y)


def test_array_file_errors(tmp_path):
    np.savez(tmp_path / "noy.npz", x=np.zeros((3, 4)))
    with pytest.raises(DataError, match=r"noy\.npz: missing array 'y' \(found: x\)"):
        load_dataset(str(tmp_path / "noy.npz"))
    with h5py.File(tmp_path / "nox.h5", "w") as f:
        f["y"] = [0, 1]
    with pytest.raises(DataError, match=r"nox\.h5: missing dataset 'x' \(found: y\)"):
        load_dataset(str(tmp_path / "nox.h5"))
    cases = {
        "count": (np.zeros((3, 4)), [0, 1], r"count\.npz: 3 samples in x but 2 labels in y"),
        "neg": (np.zeros((3, 4)), [0, -1, 1], r"neg\.npz: sample 1: label -1 is negative"),
        "frac": (np.zeros((3, 4)), [0, 1, 1.5], r"frac\.npz: sample 2: label 1\.5 is not a whole"),
        "nan": (np.array([[0, 1.0], [np.nan, 0]]), [0, 1], r"nan\.npz: sample 1 contains NaN"),
        "text": (np.zeros((2, 4)), ["a", "b"], r"text\.npz: labels must be a 1-D integer array"),
    }
    for name, (x, y, message) in cases.items():
        np.savez(tmp_path / f"{name}.npz", x=x, y=y)
        with pytest.raises(DataError, match=message):
            load_dataset(str(tmp_path / f"{name}.npz"))
    with h5py.File(tmp_path / "range.h5", "w") as f:
        f["x"], f["y"] = np.zeros((3, 4)), [0, 2, 1]
        f["y"].attrs["class_names"] = ["a", "b"]
    with pytest.raises(DataError, match=r"range\.h5: sample 1: label 2 is out of range for 2"):
        load_dataset(str(tmp_path / "range.h5"))


# Image folders -----------------------------------------------------------------------------------

def test_image_folder_gray_and_colour(tmp_path):
    rng = np.random.default_rng(0)
    grays = [rng.integers(0, 256, (6, 5), dtype=np.uint8) for _ in range(4)]
    save_image(tmp_path / "g" / "b_zero" / "1.png", grays[0])
    save_image(tmp_path / "g" / "b_zero" / "2.bmp", grays[1])
    save_image(tmp_path / "g" / "a_one" / "x.png", grays[2])
    save_image(tmp_path / "g" / "a_one" / "y.gif", grays[3])
    calls = []
    ds = load_dataset(str(tmp_path / "g"), progress=lambda done, total: calls.append((done, total)))

    def at(name):   # images come in a fixed shuffled order; each names its file
        (index,) = [i for i in range(len(ds)) if ds.where(i).endswith(name)]
        return index

    assert ds.class_names == ["a_one", "b_zero"] and sorted(ds.y.tolist()) == [0, 0, 1, 1]
    assert ds.x.shape == (4, 1, 6, 5) and calls[-1] == (4, 4)
    assert ds.y[at("b_zero/1.png")] == 1 and ds.y[at("a_one/x.png")] == 0
    np.testing.assert_array_equal(ds.x[at("b_zero/1.png"), 0], grays[0] / np.float32(255))

    colour = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    save_image(tmp_path / "g" / "b_zero" / "3.png", colour)
    ds = load_dataset(str(tmp_path / "g"))
    assert ds.x.shape == (5, 3, 6, 5)
    np.testing.assert_array_equal(ds.x[at("3.png")], colour.transpose(2, 0, 1) / np.float32(255))
    np.testing.assert_array_equal(ds.x[at("x.png"), 1], grays[2] / np.float32(255))  # gray: RGB
    assert load_dataset(str(tmp_path / "g"), color="gray").x.shape == (5, 1, 6, 5)
    assert load_dataset(str(tmp_path / "g"), image_size=(8, 10)).x.shape == (5, 3, 8, 10)


def test_image_folder_classes_are_mixed_so_the_default_split_validates_on_all(tmp_path):
    """Read class by class, the last 20% held the last class only (validation accuracy 0)."""
    for name in ("circle", "square", "tri"):
        for k in range(15):
            save_image(tmp_path / "imgs" / name / f"{k:02d}.png", np.full((4, 4), 9 * k, np.uint8))
    ds = load_dataset(str(tmp_path / "imgs"))
    assert set(ds.y[36:].tolist()) == {0, 1, 2} and set(ds.y[:36].tolist()) == {0, 1, 2}
    np.testing.assert_array_equal(load_dataset(str(tmp_path / "imgs")).y, ds.y)   # fixed order


def test_image_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: empty folder"):
        load_dataset(str(tmp_path / "empty"))
    save_image(tmp_path / "f" / "a" / "1.png", np.zeros((4, 4), np.uint8))
    (tmp_path / "f" / "b").mkdir()
    with pytest.raises(DataError, match=r"f/b: class folder holds no images"):
        load_dataset(str(tmp_path / "f"))
    save_image(tmp_path / "f" / "b" / "2.png", np.zeros((4, 5), np.uint8))
    with pytest.raises(DataError, match=r"f/b/2\.png: size 5x4, expected 4x4"):
        load_dataset(str(tmp_path / "f"))
    assert load_dataset(str(tmp_path / "f"), image_size=(4, 4)).x.shape == (2, 1, 4, 4)
    (tmp_path / "f" / "b" / "3.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=r"f/b/3\.jpg: cannot read image"):
        load_dataset(str(tmp_path / "f"), image_size=(4, 4))


def png_header(width: int, height: int) -> bytes:
    """A grayscale PNG that declares width x height but holds one row: only a decoder notices."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I",
                                                                         zlib.crc32(kind + data))

    head = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head)
            + chunk(b"IDAT", zlib.compress(bytes(width + 1))) + chunk(b"IEND", b""))


def test_image_folders_decode_only_images_within_the_pixel_budget(tmp_path, monkeypatch):
    save_image(tmp_path / "f" / "a" / "0.png", np.zeros((4, 4), np.uint8))
    save_image(tmp_path / "f" / "b" / "0.png", np.zeros((4, 4), np.uint8))
    (tmp_path / "f" / "b" / "1.png").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 4 4")
    with pytest.raises(DataError, match=r"b/1\.png: cannot read image: not in an image format"):
        load_dataset(str(tmp_path / "f"))
    for width, message in [(7000, "7000x7000 pixels, over"), (30000, "over")]:
        (tmp_path / "f" / "b" / "1.png").write_bytes(png_header(width, width))
        # refused before decoding: a decoder would find the image truncated
        with pytest.raises(DataError, match=rf"b/1\.png: {message} the limit of 40,000,000 pixels "
                                            r"per image"):
            load_dataset(str(tmp_path / "f"))
    (tmp_path / "f" / "b" / "1.png").unlink()
    os.mkfifo(tmp_path / "f" / "b" / "2.png")
    with pytest.raises(DataError, match=r"b/2\.png: not a regular file"):
        load_dataset(str(tmp_path / "f"))
    (tmp_path / "f" / "b" / "2.png").unlink()
    monkeypatch.setattr("engine.network.machine_memory", lambda: 100)  # the folder's budget
    with pytest.raises(DataError, match=r"f: 2 images of 4x4 needs 480 bytes of memory, more "
                                        r"than the 100 bytes this machine has"):
        load_dataset(str(tmp_path / "f"))


# CSV ---------------------------------------------------------------------------------------------

def test_csv_with_header_square_images(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (7, 9))
    labels = np.arange(7) % 3
    rows = [[*p[:2], lab, *p[2:]] for p, lab in zip(pixels, labels, strict=True)]
    header = ["p0", "p1", "Label"] + [f"p{j}" for j in range(2, 9)]
    calls = []
    ds = load_dataset(str(write_csv(tmp_path / "d.csv", rows, header)),
                      progress=lambda done, total: calls.append((done, total)))
    assert ds.x.shape == (7, 1, 3, 3) and ds.x.dtype == np.float32 and calls[-1] == (7, 7)
    np.testing.assert_array_equal(ds.x.reshape(7, 9), pixels.astype(np.float32) / 255)
    np.testing.assert_array_equal(ds.y, labels)


def test_csv_without_header_signals(tmp_path):
    values = np.round(np.random.default_rng(0).standard_normal((4, 5)), 3)
    rows = [[lab, *v] for lab, v in zip([1, 0, 1, 0], values, strict=True)]
    ds = load_dataset(str(write_csv(tmp_path / "s.csv", rows)))
    assert ds.x.shape == (4, 1, 5) and ds.class_names == ["0", "1"]
    np.testing.assert_allclose(ds.x[:, 0], values, rtol=1e-6)  # not uint8-range: kept as is


def test_csv_rows_fit_any_input_of_as_many_values(tmp_path):
    """A row's square count reads as an image, yet a 1-D Input of 16 values (or [4, 2, 2]) takes
    it too; another count is refused naming the rows."""
    values = np.round(np.random.default_rng(0).standard_normal((4, 16)), 3)
    ds = load_dataset(str(write_csv(tmp_path / "s.csv", [[k % 2, *v] for k, v in
                                                         enumerate(values)])))
    assert ds.x.shape == (4, 1, 4, 4) and ds.flat
    np.testing.assert_allclose(fit_input(ds, (1, 16), "s.csv").x[:, 0], values, rtol=1e-6)
    assert fit_input(ds.subset(0, 2), (4, 2, 2), "s.csv").x.shape == (2, 4, 2, 2)
    with pytest.raises(DataError, match=r"\[1, 4, 4\] \(rows of 16 values\) but the network's "
                                        r"Input expects \[1, 15\]"):
        fit_input(ds, (1, 15), "s.csv")
    npz = Dataset(ds.x, ds.y, ds.class_names, "d.npz")   # shaped data keeps its shape
    with pytest.raises(DataError):
        fit_input(npz, (1, 16), "d.npz")


def test_csv_errors(tmp_path):
    header = ["label", "a", "b", "c", "d"]
    good = [[0, 1, 2, 3, 4]] * 20
    cases = {
        "ragged": (good[:16] + [[1, 2, 3, 4]] + good, r"row 18 has 3 values, expected 4"),
        "text": (good[:3] + [[1, 2, "x", 3, 4]], r"row 5, column 'b': 'x' is not a number"),
        "neg": (good[:2] + [[-1, 2, 2, 3, 4]], r"row 4: label -1 is negative"),
        "frac": ([[0.5, 2, 2, 3, 4]], r"row 2: label 0\.5 is not a whole number"),
    }
    (tmp_path / "blank.csv").write_text("label,a\n1,2\n\n3,4\n")
    with pytest.raises(DataError, match=r"blank\.csv: row 3 has 0 values, expected 1"):
        load_dataset(str(tmp_path / "blank.csv"))
    for name, (rows, message) in cases.items():
        with pytest.raises(DataError, match=rf"{name}\.csv: {message}"):
            load_dataset(str(write_csv(tmp_path / f"{name}.csv", rows, header)))
    with pytest.raises(DataError, match=r"only\.csv: expected a label column"):
        load_dataset(str(write_csv(tmp_path / "only.csv", [], header)))


def test_csv_rows_are_read_in_chunks(tmp_path):
    data = np.random.default_rng(0).integers(0, 256, (5000, 17))
    data[:, 0] %= 10
    path = tmp_path / "big.csv"
    np.savetxt(path, data, fmt="%d", delimiter=",")
    calls = []
    ds = load_dataset(str(path), progress=lambda done, total: calls.append((done, total)))
    assert ds.x.shape == (5000, 1, 4, 4) and len(calls) == 2 and calls[-1] == (5000, 5000)
    np.testing.assert_array_equal(ds.x.reshape(5000, 16), data[:, 1:].astype(np.float32) / 255)
    lines = path.read_text().splitlines()
    lines[4499] = lines[4499].replace(",", ",x", 1)
    path.write_text("\n".join(lines))
    with pytest.raises(DataError, match=r"big\.csv: row 4500, column 'column 2': 'x\d+' is not"):
        load_dataset(str(path))


# Damaged files, labels, shapes ------------------------------------------------------------------

def damaged_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """name -> (a damaged data file, what its error must say)."""
    x, y = digits()
    np.savez(tmp_path / "good.npz", x=x, y=y)
    raw = (tmp_path / "good.npz").read_bytes()
    (tmp_path / "trunc.npz").write_bytes(raw[:len(raw) // 2])
    np.save(tmp_path / "plain.npy", x)
    (tmp_path / "plain.npz").write_bytes((tmp_path / "plain.npy").read_bytes())
    np.savez(tmp_path / "zerod.npz", x=np.float32(1), y=np.int64(0))
    header = np.lib.format.header_data_from_array_1_0(np.zeros(1, np.float32))
    header["shape"] = (10**6, 10**6)
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as z:
        with z.open("x.npy", "w") as f:
            np.lib.format.write_array_header_1_0(f, header)
        z.writestr("y.npy", (tmp_path / "plain.npy").read_bytes())
    gz = tmp_path / "gz"
    gz.mkdir()
    write_idx(gz / "train-images-idx3-ubyte.gz", x, gz=True)
    write_idx(gz / "train-labels-idx1-ubyte.gz", y, gz=True)
    data = (gz / "train-images-idx3-ubyte.gz").read_bytes()
    (gz / "train-images-idx3-ubyte.gz").write_bytes(data[:len(data) // 2])
    save_image(tmp_path / "img" / "a" / "0.png", x[0])
    png = (tmp_path / "img" / "a" / "0.png").read_bytes()
    (tmp_path / "img" / "a" / "0.png").write_bytes(png[:len(png) // 2])
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["x"], f["y"] = x, y
    h5 = (tmp_path / "d.h5").read_bytes()
    (tmp_path / "d.h5").write_bytes(h5[:len(h5) // 2])
    with h5py.File(tmp_path / "ext.h5", "w") as f:
        f.create_dataset("x", (2, 4), np.uint8, external=[("/etc/hostname", 0, 8)])
        f["y"] = [0, 1]
    (tmp_path / "wide.csv").write_text("label," + "p" * 200_000 + "\n1,2\n")
    return {
        "truncated npz": (tmp_path / "trunc.npz", r"trunc\.npz: not a readable \.npz file"),
        ".npy named .npz": (tmp_path / "plain.npz", r"plain\.npz: a single \.npy array"),
        "0-d x": (tmp_path / "zerod.npz", r"zerod\.npz: x and y must be arrays of samples"),
        "npz declaring 4 TB": (tmp_path / "huge.npz",
                               r"huge\.npz: array 'x' declares shape \(1000000, 1000000\)"),
        "damaged IDX gzip": (gz / "train-images-idx3-ubyte.gz", r"idx3-ubyte\.gz: broken file"),
        "damaged PNG": (tmp_path / "img", r"a/0\.png: cannot read image"),
        "damaged HDF5": (tmp_path / "d.h5", r"d\.h5: cannot read HDF5"),
        "external HDF5 storage": (tmp_path / "ext.h5", r"ext\.h5: dataset 'x' stores its data in "
                                                      r"other files"),
        "CSV header cell over 128 KB": (tmp_path / "wide.csv", r"wide\.csv: row 1: field larger"),
        "/proc/self/mem": (Path("/proc/self/mem"), r"/proc/self/mem: cannot read"),
    }


def test_damaged_files_are_one_data_error_naming_the_file(tmp_path):
    for name, (path, message) in damaged_files(tmp_path).items():
        with pytest.raises(DataError, match=message) as caught:
            load_dataset(str(path))
        assert "\n" not in str(caught.value), name


def test_class_counts_are_bounded(tmp_path):
    x, _ = digits(4)
    for name, y, message in [("big", [0, 1, 10**9, 2], r"sample 2: label 1000000000 is over the "
                                                        r"limit of 100,000 classes"),
                             ("inf", [0, 1, np.inf, 2], r"sample 2: label inf is not a whole"),
                             ("neg", [0, -3, 1, 2], r"sample 1: label -3 is negative")]:
        np.savez(tmp_path / f"{name}.npz", x=x, y=y)
        with pytest.raises(DataError, match=rf"{name}\.npz: {message}"):
            load_dataset(str(tmp_path / f"{name}.npz"))
    write_csv(tmp_path / "big.csv", [[7, 1, 2], [10**9, 3, 4]], ["label", "a", "b"])
    with pytest.raises(DataError, match=r"big\.csv: row 3: label 1000000000 is over the limit"):
        load_dataset(str(tmp_path / "big.csv"))


def test_samples_that_fit_the_input_are_reshaped(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "sig.npz", x=rng.random((5, 1, 1024), np.float32), y=[0, 1, 0, 1, 0])
    ds = load_dataset(str(tmp_path / "sig.npz"))
    assert fit_input(ds, (1, 1024), "sig").x.shape == (5, 1, 1024)
    np.savez(tmp_path / "vol.npz", x=rng.random((2, 4, 4, 4), np.float32), y=[0, 1])
    ds = load_dataset(str(tmp_path / "vol.npz"))
    assert ds.input_shape == (4, 4, 4)  # read channels-first ...
    fitted = fit_input(ds, (1, 4, 4, 4), "vol")  # ... yet fits a one-channel 3D Input
    assert fitted.x.shape == (2, 1, 4, 4, 4) and fitted.y is ds.y
    assert fit_input(ds, (4, 4, 4), "vol") is ds
    with pytest.raises(DataError, match=r"vol: the data has samples of shape \[4, 4, 4\] but the "
                                        r"network's Input expects \[1, 4, 16\]"):
        fit_input(ds, (1, 4, 16), "vol")


def test_labels_are_checked_against_the_outputs(tmp_path):
    write_csv(tmp_path / "d.csv", [[0, 1, 2], [3, 1, 2], [1, 0, 0], [2, 5, 5]], ["label", "a", "b"])
    ds = load_dataset(str(tmp_path / "d.csv"))
    check_labels(ds, 4, "d.csv")
    with pytest.raises(DataError, match=r"d\.csv: row 3: label 3 does not fit the network's 3 "
                                        r"outputs \(labels 0 to 2\)"):
        check_labels(ds, 3, "d.csv")
    with pytest.raises(DataError, match=r"d\.csv: row 5: label 2"):  # rows of the file
        check_labels(ds.subset(2, 4), 2, "d.csv")
    with pytest.raises(DataError, match=r"y: sample 3: label 2"):
        check_labels(np.array([0, 1, 0, 2]), 2, "y")


# Specs and generated datasets ----------------------------------------------------------------

def test_unknown_spec_lists_generated_names(tmp_path):
    with pytest.raises(DataError,
                       match=r"unknown dataset 'nope'.*shapes, shapes-rgb, signals, volumes"):
        load_dataset("nope")
    with pytest.raises(DataError, match=r"bad dataset size in 'shapes:x'"):
        load_dataset("shapes:x")


@pytest.mark.parametrize("name, shape, size, classes", [
    ("shapes", (1, 28, 28), 6000, ["circle", "square", "triangle", "cross"]),
    ("shapes-rgb", (3, 32, 32), 6000, ["circle", "square", "triangle", "cross"]),
    ("signals", (1, 1024), 3000, ["noise", "voice"]),
    ("volumes", (1, 16, 16, 16), 1500, ["blob", "shell", "rod"]),
])
def test_generated(name, shape, size, classes):
    ds = generate(name)
    assert len(ds) == size and ds.input_shape == shape and ds.class_names == classes
    assert ds.x.dtype == np.float32 and ds.y.dtype == np.int64 and ds.source == name
    assert np.isfinite(ds.x).all() and ds.x.std() > 0.05
    assert np.bincount(ds.y).tolist() == [size // len(classes)] * len(classes)
    assert ds.y[:12].tolist() != sorted(ds.y[:12].tolist())  # shuffled
    if name != "signals":
        assert ds.x.min() >= 0 and ds.x.max() <= 1
    small = load_dataset(f"{name}:30", seed=5)
    again = generate(name, 30, seed=5)
    assert small.source == f"{name}:30" and len(small) == 30
    assert small.x.tobytes() == again.x.tobytes() and small.y.tobytes() == again.y.tobytes()
    assert not np.array_equal(generate(name, 30, seed=6).x, small.x)


def test_generated_names_and_bad_size():
    assert list(GENERATED) == ["shapes", "shapes-rgb", "signals", "volumes"]
    with pytest.raises(DataError, match="must be positive"):
        generate("shapes", 0)


# Normalisation, augmentation, ranges, spec -----------------------------------------------------

def test_normalization_round_trip():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((50, 3, 4, 4)) * [[[[2.0]], [[0.5]], [[0.0]]]] + 3).astype(np.float32)
    before = x.copy()
    norm = Normalization.fit(x)
    z = norm.apply(x)
    np.testing.assert_array_equal(x, before)
    assert z.dtype == np.float32 and z is not x
    np.testing.assert_allclose(z.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=(0, 2, 3)), [1, 1, 0], atol=1e-5)
    back = Normalization.from_dict(json.loads(json.dumps(norm.to_dict())))
    np.testing.assert_array_equal(back.apply(x), z)
    with pytest.raises(DataError, match="normalization has 3 channels"):
        norm.apply(x[:, :2])
    with pytest.raises(DataError, match="normalization: expected lists"):
        Normalization.from_dict({"mean": [0.0]})


def test_augmentation_deterministic_and_pure():
    x = generate("shapes", 64).x
    before = x.copy()
    aug = Augmentation(translate=3, hflip=True, brightness=0.1, contrast=0.2)
    a = aug.apply(x, np.random.default_rng(7))
    b = aug.apply(x, np.random.default_rng(7), out=np.empty_like(x))
    np.testing.assert_array_equal(x, before)
    assert a.shape == x.shape and a.dtype == np.float32 and np.array_equal(a, b)
    assert not np.array_equal(a, aug.apply(x, np.random.default_rng(8)))
    assert Augmentation.from_dict(json.loads(json.dumps(aug.to_dict()))) == aug
    assert aug.enabled and not Augmentation().enabled
    np.testing.assert_array_equal(Augmentation().apply(x, np.random.default_rng(0)), x)
    with pytest.raises(ValueError, match="out must be"):
        aug.apply(x, np.random.default_rng(0), out=x)
    with pytest.raises(DataError, match="translate"):
        Augmentation(translate=-1)


@pytest.mark.parametrize("shape", [(16, 2, 9), (16, 2, 5, 7), (16, 1, 3, 4, 5)])
def test_augmentation_flip_and_translate(shape):
    x = np.random.default_rng(0).random(shape).astype(np.float32)
    flipped = Augmentation(hflip=True).apply(x, np.random.default_rng(0))
    same = [np.array_equal(f, s) for f, s in zip(flipped, x, strict=True)]
    mirrored = [np.array_equal(f, s[..., ::-1]) for f, s in zip(flipped, x, strict=True)]
    assert all(a or b for a, b in zip(same, mirrored, strict=True)) and any(same) and any(mirrored)
    moved = Augmentation(translate=2).apply(x, np.random.default_rng(0))
    assert moved.shape == x.shape
    offsets = list(np.ndindex(*(5,) * (len(shape) - 2)))
    for m, s in zip(moved, x, strict=True):  # a zero-filled shift of its input by at most 2
        assert any(np.array_equal(m, shifted(s, d)) for d in offsets)


def shifted(sample, offset):
    out = np.zeros_like(sample)
    src, dst = [slice(None)], [slice(None)]
    for n, d in zip(sample.shape[1:], np.subtract(offset, 2), strict=True):
        src.append(slice(max(0, -d), n - max(0, d)))
        dst.append(slice(max(0, d), n - max(0, -d)))
    out[tuple(dst)] = sample[tuple(src)]
    return out


def test_augmentation_is_fast():
    x = generate("shapes", 64).x
    aug, rng, out = Augmentation(2, True, 0.1, 0.1), np.random.default_rng(0), np.empty_like(x)
    aug.apply(x, rng, out)
    best = min(_timed(lambda: aug.apply(x, rng, out)) for _ in range(20))
    assert best < 1e-3


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def test_brightness_and_contrast_ranges():
    x = np.full((200, 1, 4, 4), 0.5, np.float32)
    x[:, :, 0] = 0.25
    out = Augmentation(brightness=0.1).apply(x, np.random.default_rng(0))
    shift = (out - x).reshape(200, -1)
    assert np.allclose(shift, shift[:, :1], atol=1e-6) and np.abs(shift).max() <= 0.1
    out = Augmentation(contrast=0.5).apply(x, np.random.default_rng(0))
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), x.mean(axis=(1, 2, 3)), atol=1e-6)
    spread = np.ptp(out.reshape(200, -1), axis=1) / 0.25
    assert spread.min() >= 0.5 - 1e-5 and spread.max() <= 1.5 + 1e-5 and spread.std() > 0.1


def test_parse_range():
    assert parse_range("0:8000", 10000) == (0, 8000)
    assert parse_range("8000:", 10000) == (8000, 10000)
    with pytest.raises(DataError, match="past the end of the data"):
        parse_range(":100", 50)   # a silent cut would report on fewer samples than asked
    with pytest.raises(DataError, match="past the end"):
        parse_range("-60:", 50)
    assert parse_range("-2000:", 10000) == (8000, 10000)
    assert parse_range(" 10 : -10 ", 100) == (10, 90)
    for bad in ("5", "a:b", "1:2:3", ""):
        with pytest.raises(DataError, match="bad range"):
            parse_range(bad, 10)
    with pytest.raises(DataError, match="empty"):
        parse_range("8:3", 10)


def test_dataset_subset_and_spec():
    ds = Dataset(np.zeros((10, 1, 4), np.float32), np.arange(10) % 2, ["a", "b"], "x.npz")
    part = ds.subset(2, 5)
    assert len(part) == 3 and part.input_shape == (1, 4) and part.num_classes == 2
    spec = data_spec(ds, Normalization.fit(ds.x), (0, 8), (8, 10))
    assert json.loads(json.dumps(spec)) == {
        "source": "x.npz", "input_shape": [1, 4], "class_names": ["a", "b"],
        "normalization": {"mean": [0.0], "std": [1.0]}, "train_range": [0, 8],
        "val_range": [8, 10]}


def test_unmixed_classes_names_the_classes_one_side_of_the_split_lacks():
    from engine.data import unmixed_classes

    y = np.arange(100) // 25   # stored class by class
    assert unmixed_classes(y, (0, 80), (80, 100), 4) == [0, 1, 2]   # validation: class 3 only
    assert unmixed_classes(y, (0, 60), (0, 0), 5) == [3, 4]        # no validation range
    assert unmixed_classes(np.arange(100) % 4, (0, 80), (80, 100), 4) == []
