"""XMP sidecars: a photo's keywords where digiKam, darktable, Lightroom, PhotoPrism and Immich read them.

``wanwu tag SRC --xmp`` writes ``photo.jpg.xmp`` beside ``photo.jpg`` (darktable, digiKam; ``stem``: ``photo.xmp``,
Lightroom) and never opens the photo for writing. What it writes, from the image's record:

- ``dc:subject``: the everyday categories (the headline category and its ancestors scoring at least
  ``KEYWORD_MIN_SCORE``) and the fine top label, in Chinese, English or both;
- ``lr:hierarchicalSubject``: the same as a path, ``动物|狗|金毛寻回犬`` and ``animal|dog|golden retriever``;
- ``wanwu:keywords`` and ``wanwu:hierarchicalKeywords`` (``https://wanwu.dev/ns/1.0/``): the ones wanwu added, so
  that a later run replaces them and keeps everyone else's.

An existing sidecar is merged: every other property, namespace and keyword stays. One that cannot be parsed (or is
locked, unreadable, not a file) is left as it is, with a message: a user's metadata is never destroyed. Writes are
atomic (a temporary file beside it, then a rename). Standard library only (``xml.etree``).
"""

from __future__ import annotations

import io
import os
import stat
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from wanwu.store import atomic_file
from wanwu.tagging.records import top_category

X = "adobe:ns:meta/"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
DC = "http://purl.org/dc/elements/1.1/"
LR = "http://ns.adobe.com/lightroom/1.0/"
WANWU = "https://wanwu.dev/ns/1.0/"
PREFIXES = {"x": X, "rdf": RDF, "dc": DC, "lr": LR, "wanwu": WANWU}
NAMINGS = ("full", "stem")  # photo.jpg.xmp (darktable, digiKam) or photo.xmp (Lightroom)
LANGS = ("zh", "en", "both")
KEYWORD_MIN_SCORE = 0.3  # categories and the fine label below this are not keywords
MAX_SIDECAR_BYTES = 16 * 1024 * 1024  # larger is not a sidecar: left alone
_BEGIN = '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
_END = '\n<?xpacket end="w"?>\n'

# (the property, where wanwu records the values it added to it)
SUBJECT = (f"{{{DC}}}subject", f"{{{WANWU}}}keywords")
HIERARCHY = (f"{{{LR}}}hierarchicalSubject", f"{{{WANWU}}}hierarchicalKeywords")


class SidecarProblem(Exception):
    """A sidecar wanwu did not write (locked, unreadable, unparseable, a read-only folder): the message says which."""


@dataclass
class SidecarSummary:
    written: int = 0
    unchanged: int = 0  # already held these keywords
    empty: int = 0  # nothing to write (no confident keyword) and no sidecar to clean
    problems: list[str] = field(default_factory=list)  # one message per sidecar left alone

    def as_dict(self) -> dict:
        return {"written": self.written, "unchanged": self.unchanged, "empty": self.empty, "problems": self.problems}

    def line(self) -> str:
        return (f"XMP sidecars: written {self.written:,}, unchanged {self.unchanged:,}, "
                f"left alone {len(self.problems):,}")


def sidecar_path(image: str, naming: str = "full") -> str:
    """``photo.jpg`` -> ``photo.jpg.xmp`` (``full``) or ``photo.xmp`` (``stem``)."""
    if naming not in NAMINGS:
        raise ValueError(f"xmp naming must be one of {', '.join(NAMINGS)}, not {naming!r}")
    return f"{image}.xmp" if naming == "full" else f"{os.path.splitext(image)[0]}.xmp"


def keywords(record: dict, lang: str = "both") -> tuple[list[str], list[str]]:
    """``(dc:subject keywords, lr:hierarchicalSubject paths)`` for a record; none for an error or an unknown."""
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {', '.join(LANGS)}, not {lang!r}")
    if record.get("error") or record.get("unknown") or not record.get("predictions"):
        return [], []
    entries = {c["id"]: c for c in record.get("categories") or []}
    chain, node = [], top_category(record) or None
    while node is not None:
        if node["score"] >= KEYWORD_MIN_SCORE:
            chain.append(node)
        node = entries.get(node.get("parent"))  # type: ignore[arg-type]
    chain.reverse()  # the top level first
    top = record["predictions"][0]
    fine = [top] if top["score"] >= KEYWORD_MIN_SCORE else []
    subjects: list[str] = []
    paths: list[str] = []
    for language in (("zh", "en") if lang == "both" else (lang,)):
        key = "label_zh" if language == "zh" else "label"
        names = [_clean(n) for n in (e.get(key) for e in [*chain, *fine]) if n]
        names = [n for i, n in enumerate(names) if i == 0 or n != names[i - 1]]  # a fine label named as its category
        subjects += [n for n in names if n not in subjects]
        if names and "|".join(names) not in paths:
            paths.append("|".join(names))
    return subjects, paths


def _clean(name: str) -> str:
    return name.replace("|", "/").strip()  # "|" separates the levels of a hierarchical keyword


def merge(existing: bytes | None, subjects: list[str], paths: list[str], toolkit: str = "wanwu") -> bytes:
    """The sidecar ``existing`` (None: a new one) with wanwu's keywords replaced by these; everything else kept.

    Raises ``ValueError`` (``ET.ParseError`` is one) for a file that is not an XMP packet.
    """
    if existing is None:
        root = ET.Element(f"{{{X}}}xmpmeta", {f"{{{X}}}xmptk": toolkit})
        ET.SubElement(ET.SubElement(root, f"{{{RDF}}}RDF"), f"{{{RDF}}}Description", {f"{{{RDF}}}about": ""})
    else:
        root = _parse(existing)
    rdf = root if root.tag == f"{{{RDF}}}RDF" else root.find(f"{{{RDF}}}RDF") if root.tag == f"{{{X}}}xmpmeta" else None
    if rdf is None:
        raise ValueError(f"its root is {root.tag}, not x:xmpmeta or rdf:RDF")
    descriptions = rdf.findall(f"{{{RDF}}}Description") or [
        ET.SubElement(rdf, f"{{{RDF}}}Description", {f"{{{RDF}}}about": ""})]
    for (prop, ours), values in ((SUBJECT, subjects), (HIERARCHY, paths)):
        before = set(_values(descriptions, ours))
        foreign = [v for v in _values(descriptions, prop) if v not in before]
        added = [v for v in values if v not in foreign]
        _set_bag(descriptions, prop, foreign + added)
        _set_bag(descriptions, ours, added)
    ET.indent(root, space=" ")
    return (_BEGIN + ET.tostring(root, encoding="unicode") + _END).encode()


def _parse(data: bytes) -> ET.Element:
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise ValueError("it declares a DOCTYPE or entities, which a sidecar never needs")
    for _, (prefix, uri) in ET.iterparse(io.BytesIO(data), events=("start-ns",)):
        if prefix and PREFIXES.get(prefix, uri) == uri:
            try:  # keep the file's own prefixes when it is written back
                ET.register_namespace(prefix, uri)
            except ValueError:
                pass
    parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True, insert_pis=True))
    return ET.fromstring(data, parser)


def _values(descriptions: list[ET.Element], prop: str) -> list[str]:
    found = []
    for description in descriptions:
        for element in description.findall(prop):
            found += [li.text or "" for li in element.iter(f"{{{RDF}}}li")]
    return found


def _set_bag(descriptions: list[ET.Element], prop: str, values: list[str]) -> None:
    """``prop`` as one ``rdf:Bag`` of ``values`` in the first description that has it (else the first); none if empty."""
    holder = next((d for d in descriptions if d.find(prop) is not None), descriptions[0])
    for description in descriptions:
        for element in description.findall(prop):
            description.remove(element)
    if values:
        bag = ET.SubElement(ET.SubElement(holder, prop), f"{{{RDF}}}Bag")
        for value in values:
            ET.SubElement(bag, f"{{{RDF}}}li").text = value


for _prefix, _uri in PREFIXES.items():
    ET.register_namespace(_prefix, _uri)


def write_sidecar(image: str, record: dict, naming: str = "full", lang: str = "both", toolkit: str = "wanwu") -> str:
    """Write (or merge into) ``image``'s sidecar: ``written``, ``unchanged`` or ``empty`` (nothing to write).

    Raises ``SidecarProblem`` with a message for a sidecar it leaves alone.
    """
    path = sidecar_path(image, naming)
    subjects, paths = keywords(record, lang)
    old, mode = _read_existing(path)
    if old is None and not subjects:
        return "empty"
    try:
        new = merge(old, subjects, paths, toolkit)
    except (ValueError, SyntaxError) as err:  # ET.ParseError is a SyntaxError
        raise SidecarProblem(f"{_show(path)} is not XMP that wanwu can read ({err}); left as it is") from None
    if new == old:
        return "unchanged"
    try:
        with atomic_file(Path(path), in_store=False) as tmp:
            tmp.write_bytes(new)
            if mode is not None:
                os.chmod(tmp, mode)
    except OSError as err:
        raise SidecarProblem(f"cannot write {_show(path)}: {err.strerror or err}") from None
    return "written"


def _read_existing(path: str) -> tuple[bytes | None, int | None]:
    """The sidecar's bytes and permission bits; (None, None) if there is none."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None, None
    except OSError as err:
        raise SidecarProblem(f"cannot read {_show(path)}: {err.strerror}; left as it is") from None
    if not stat.S_ISREG(info.st_mode):
        raise SidecarProblem(f"{_show(path)} is not a regular file; left as it is")
    if not info.st_mode & 0o222:
        raise SidecarProblem(f"{_show(path)} is read-only (locked); left as it is")
    if info.st_size > MAX_SIDECAR_BYTES:
        raise SidecarProblem(f"{_show(path)} is {info.st_size:,} bytes, too large for a sidecar; left as it is")
    try:
        with open(path, "rb") as file:
            return file.read(), stat.S_IMODE(info.st_mode)
    except OSError as err:
        raise SidecarProblem(f"cannot read {_show(path)}: {err.strerror}; left as it is") from None


def _show(path: str) -> str:
    """A path for a message: a name that is not UTF-8 keeps its bytes as \\x escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def write_sidecars(records: Iterable[dict], base: str, naming: str = "full", lang: str = "both",
                   toolkit: str = "wanwu") -> SidecarSummary:
    """A sidecar for each successful record whose image still exists (paths relative to ``base``)."""
    summary, owners = SidecarSummary(), {}
    for record in records:
        image = os.path.join(base, record["path"])
        if record.get("error") or not os.path.isfile(image):
            continue  # a failed image, or one gone since: nothing to say about it
        side = sidecar_path(image, naming)
        if side in owners:
            summary.problems.append(f"{_show(side)} would be the sidecar of both {_show(owners[side])} and "
                                    f"{_show(record['path'])}; written for the first only (the default naming avoids this)")
            continue
        owners[side] = record["path"]
        try:
            outcome = write_sidecar(image, record, naming, lang, toolkit)
        except SidecarProblem as problem:
            summary.problems.append(str(problem))
            continue
        setattr(summary, outcome, getattr(summary, outcome) + 1)
    return summary
