"""A list file (``.txt``/``.lst``) as a SOURCE: the images it names, in its order (the first column
of ``image label`` pairs), relative to the list's folder."""

from __future__ import annotations

from pathlib import Path

from lightseg_cli.sources import open_source
from lightseg_cli.sources.resolve import listed_files

from .conftest import SHIPPED, make_image


def test_list_file_names_its_images(cli, tmp_path: Path) -> None:
    for name in ("b", "a"):
        make_image(tmp_path / "imgs" / f"{name}.png")
    (tmp_path / "set.txt").write_text("# val\nimgs/b.png labels/b.png\n\nimgs/a.png labels/a.png\nclips/c.mp4\n")
    assert [p.relative_to(tmp_path).as_posix() for p in listed_files(str(tmp_path / "set.txt"))] == \
        ["imgs/b.png", "imgs/a.png", "clips/c.mp4"]
    src = open_source(str(tmp_path / "set.txt"))
    assert (src.info.kind, src.info.name, src.names) == ("images", "set", ["b", "a"])
    r = cli("run", tmp_path / "set.txt", *SHIPPED, "--size", "160x128", "--out", tmp_path / "out", "--json")
    assert r.code == 0 and r.json()["frames"] == 2, r.err
    assert sorted(p.name for p in (tmp_path / "out" / "masks").iterdir()) == ["a.png", "b.png"]


def test_missing_or_empty_list_is_one_line(cli, tmp_path: Path) -> None:
    (tmp_path / "empty.lst").write_text("# nothing\n")
    for spec, why in ((tmp_path / "gone.txt", "no such list file"), (tmp_path / "empty.lst", "names no image")):
        r = cli("run", spec, *SHIPPED)
        assert r.code == 3 and why in r.err and len(r.err.strip().splitlines()) == 1, r.err
