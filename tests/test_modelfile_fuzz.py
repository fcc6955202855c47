"""Fuzzing model files (byte flips, truncation, zeroed blocks, edits made with h5py): whatever the
damage, load_model gives one ModelFileError or exactly the original content. The first read runs
in a child process, so a crash in libhdf5 cannot take pytest down; it fails the example."""
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from modeldamage import STRUCTURAL, content, edit, flip, model_with_every_part, truncate, zero

from engine.modelfile import ModelFileError, load_model, save_model

# Offsets near the start (superblock, object headers, attributes) or anywhere in the file.
OFFSET = st.one_of(st.integers(0, 8192), st.integers(0, 2**31))
DAMAGE = st.one_of(
    st.tuples(st.just("flip"), st.lists(st.tuples(OFFSET, st.integers(1, 255)), min_size=1,
                                        max_size=6)),
    st.tuples(st.just("truncate"), OFFSET),
    st.tuples(st.just("zero"), OFFSET, st.integers(1, 4096)),
    st.tuples(st.just("edit"), st.sampled_from(sorted(STRUCTURAL))),
)


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    """The file's folder, bytes and content (in a closure: hypothesis reprs its arguments)."""
    path = tmp_path_factory.mktemp("fuzz") / "m.h5"
    save_model(path, **model_with_every_part())
    save_model(path.with_name("other.h5"), **model_with_every_part())  # what links point at
    found = path, path.read_bytes(), content(load_model(path))
    return lambda: found


@settings(max_examples=100, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(damage=DAMAGE)
def test_damaged_files_give_one_error_or_the_original(original, damage):
    path, data, expected = original()
    kind, *args = damage
    target = path.with_name("damaged.h5")
    if kind == "edit":
        target.write_bytes(data)
        edit(target, args[0], path.parent)
    else:
        target.write_bytes({"flip": flip, "truncate": truncate, "zero": zero}[kind](data, *args))
    try:
        model = load_model(target)
    except ModelFileError as err:
        event(f"refused: {str(err)[len(str(target)) + 2:][:40]}")
        assert str(err).startswith(f"{target}: ") and "\n" not in str(err)
        assert "crashed the HDF5 library" not in str(err)
        assert "reading the file did not finish" not in str(err)
    else:
        event("loaded")
        assert content(model) == expected
