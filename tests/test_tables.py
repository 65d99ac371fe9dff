"""The one reader of id lists (`invite --exclude`, `replace --declined`) and of rate files
(`invite --response-rates`, `simulate --rates`): `sortition.core.tables`."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from sortition.core.errors import InputError
from sortition.core.tables import read_ids, read_rate_table


def test_ids_one_per_line(tmp_path):
    path = tmp_path / "ids.txt"
    path.write_bytes("\ufeffOC0010\n\n  OC0011  \r\nOC0010\nÉ-3\n".encode())
    found = read_ids(path, "declined file")
    assert found.ids == ["OC0010", "OC0011", "É-3"]  # file order, each once
    assert found.lines == {"OC0010": 1, "OC0011": 3, "É-3": 5}
    assert found.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    path.write_text("id\nb\na\n", encoding="utf-8")  # a first line `id` is a header
    assert read_ids(path, "declined file").ids == ["b", "a"]
    path.write_text("\n\n", encoding="utf-8")
    assert read_ids(path, "declined file").ids == []


@pytest.mark.parametrize("text", ["id,note\nb,x\n,y\na,\"q, r\"\nb,z\n",
                                  "note;id\nx;b\ny;\n\"q; r\";a\n",
                                  "\"id\"\tnote\nb\tx\na\ty\n"])
def test_ids_from_a_csv_any_delimiter(tmp_path, text):
    path = tmp_path / "ids.csv"
    path.write_text(text, encoding="utf-8")
    assert read_ids(path, "exclusion list").ids == ["b", "a"]


def test_ids_refused(tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text("name,phone\nx,1\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 1: a CSV declined file needs an 'id' column"):
        read_ids(path, "declined file")
    with pytest.raises(InputError, match="declined file not found"):
        read_ids(tmp_path / "missing.txt", "declined file")
    path.write_bytes("Zoé\n".encode("cp1252"))
    with pytest.raises(InputError, match="line 1: not valid utf-8"):
        read_ids(path, "declined file")
    assert read_ids(path, "exclusion list", "cp1252").ids == ["Zoé"]


def test_rates_range_and_checks(tmp_path):
    path = tmp_path / "rates.csv"
    path.write_text("feature;value;rate;note\ngender;man;0;x\n\nage;65+;1;y\n", encoding="utf-8")
    rates, sha = read_rate_table(path, "rates", zero=True)
    assert rates == {("gender", "man"): 0.0, ("age", "65+"): 1.0}
    assert sha == hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(InputError, match=r"row 1, column rate: '0' is not a number in \(0, 1\]"):
        read_rate_table(path, "rates", zero=False)
    with pytest.raises(InputError) as e:
        read_rate_table(path, "rates", zero=True,
                        check=lambda f, v: "column feature: no" if f == "age" else None)
    assert e.value.problems == [f"{path}, row 3, column feature: no"]
    path.write_text("feature,value,rate\n,man,0.5\ngender,,0.5\n", encoding="utf-8")
    with pytest.raises(InputError) as e:
        read_rate_table(path, "rates", zero=True)
    assert e.value.problems == [f"{path}, row 1, column feature: empty",
                                f"{path}, row 2, column value: empty"]


def test_given_text_files_must_be_regular_and_capped(tmp_path, monkeypatch):
    """Id lists, answers and rates files are read whole: a FIFO (which would block), a device
    (which would never end) and a folder are refused before they are opened, with one line
    naming the file; a link to a regular file is the user's own and is followed; a file over
    the cap is refused."""
    import os

    import sortition.core.tables as tables
    from sortition.core.limits import Cap
    from sortition.inputs.rates import load_rates

    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    for bad, kind in ((fifo, "a FIFO"), (tmp_path, "a folder"), (tmp_path / "none", None)):
        for read in (lambda p: read_ids(p, "declined file"), load_rates):
            with pytest.raises(InputError) as info:
                read(bad)
            assert str(bad) in str(info.value)
            assert (kind or "not found") in str(info.value), info.value
    if os.path.exists("/dev/zero"):
        with pytest.raises(InputError, match="a character device"):
            read_ids(Path("/dev/zero"), "declined file")
    real = tmp_path / "ids.txt"
    real.write_text("a\nb\n", encoding="utf-8")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    assert read_ids(link, "declined file").ids == ["a", "b"]
    monkeypatch.setattr(tables, "MAX_TEXT_BYTES", Cap(3, "a test cap"))
    with pytest.raises(InputError, match="more than 3 bytes"):
        read_ids(real, "declined file")
