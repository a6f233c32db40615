"""A strict reading of RFC 5545 for the desk's feeds, written from the RFC's text.

Independent of the ``icalendar`` package that writes the feeds: it checks the octets
(CRLF line ends, lines of at most 75 octets folded with one space or tab, no multi-octet
character split across a fold), the content-line grammar (section 3.1), component nesting,
and the properties the RFC requires or limits (3.6, 3.6.1, 3.7, 3.8).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest

# 3.1: name = iana-token / x-name; iana-token = 1*(ALPHA / DIGIT / "-")
_NAME = re.compile(r"[A-Za-z0-9-]+")
# 3.1: param-value = paramtext / quoted-string; paramtext = *SAFE-CHAR
_PVAL = r'(?:"[^"\x00-\x08\x0a-\x1f\x7f]*"|[^";:,\x00-\x08\x0a-\x1f\x7f]*)'
_PARAM = re.compile(rf";([A-Za-z0-9-]+)=({_PVAL}(?:,{_PVAL})*)")
_UTC_DATE_TIME = re.compile(r"^\d{8}T\d{6}Z$")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class StrictError(AssertionError):
    """The text breaks RFC 5545; the message names the line and the rule."""


@dataclass
class Prop:
    """One content line: name, parameters, raw value."""

    name: str
    params: dict[str, str]
    value: str


@dataclass
class Component:
    """A BEGIN/END block with its properties and sub-components."""

    name: str
    props: list[Prop] = field(default_factory=list)
    children: list[Component] = field(default_factory=list)

    def all(self, name: str) -> list[Prop]:
        """Every property called ``name``."""
        return [p for p in self.props if p.name == name.upper()]

    def one(self, name: str) -> str:
        """The value of a property that must occur exactly once."""
        found = self.all(name)
        if len(found) != 1:
            raise StrictError(f"{self.name}: {name} must occur once, found {len(found)}")
        return found[0].value

    def walk(self, name: str) -> list[Component]:
        """Sub-components called ``name``, depth first."""
        out = []
        for c in self.children:
            if c.name == name:
                out.append(c)
            out.extend(c.walk(name))
        return out


def unfold(data: bytes) -> list[str]:
    """Physical lines checked (3.1) and unfolded into content lines."""
    if not data.endswith(b"\r\n"):
        raise StrictError("the stream must end with CRLF")
    physical = data[:-2].split(b"\r\n")
    logical: list[bytes] = []
    for n, line in enumerate(physical, 1):
        if b"\n" in line or b"\r" in line:
            raise StrictError(f"line {n}: bare CR or LF (every line ends with CRLF)")
        if len(line) > 75:
            raise StrictError(f"line {n}: {len(line)} octets; lines longer than 75 octets "
                              "must be folded")
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StrictError(f"line {n}: not UTF-8 on its own (a fold split a multi-octet "
                              f"character?): {exc}") from exc
        if line[:1] in (b" ", b"\t"):
            if not logical:
                raise StrictError(f"line {n}: a continuation before any content line")
            logical[-1] += line[1:]
        else:
            if not line:
                raise StrictError(f"line {n}: empty line")
            logical.append(line)
    return [x.decode("utf-8") for x in logical]


def parse_line(text: str) -> Prop:
    """A content line: ``name *(";" param) ":" value`` (3.1)."""
    m = _NAME.match(text)
    if m is None:
        raise StrictError(f"bad property name in {text!r}")
    name, pos = m.group(0).upper(), m.end()
    params: dict[str, str] = {}
    while pos < len(text) and text[pos] == ";":
        pm = _PARAM.match(text, pos)
        if pm is None:
            raise StrictError(f"{name}: bad parameter at {text[pos:pos + 30]!r}")
        params[pm.group(1).upper()] = pm.group(2)
        pos = pm.end()
    if pos >= len(text) or text[pos] != ":":
        raise StrictError(f"{name}: expected ':' after name and parameters in {text!r}")
    value = text[pos + 1:]
    if _CONTROL.search(value):
        raise StrictError(f"{name}: control character in the value")
    return Prop(name, params, value)


def parse(data: bytes) -> Component:
    """The VCALENDAR object, every rule below checked."""
    stack: list[Component] = []
    root: Component | None = None
    for text in unfold(data):
        prop = parse_line(text)
        if prop.name == "BEGIN":
            comp = Component(prop.value.upper())
            if stack:
                stack[-1].children.append(comp)
            elif root is not None:
                raise StrictError("more than one top-level object")
            else:
                root = comp
            stack.append(comp)
        elif prop.name == "END":
            if not stack or stack[-1].name != prop.value.upper():
                raise StrictError(f"END:{prop.value} does not close "
                                  f"{stack[-1].name if stack else 'anything'}")
            stack.pop()
        else:
            if not stack:
                raise StrictError(f"{prop.name} outside any component")
            stack[-1].props.append(prop)
    if stack or root is None:
        raise StrictError("unterminated or missing VCALENDAR")
    check(root)
    return root


def unescape_text(value: str) -> str:
    """A TEXT value (3.3.11): ``\\\\``, ``\\;``, ``\\,``, ``\\n``; bare ``;`` or ``,`` is wrong."""
    out, i = [], 0
    while i < len(value):
        ch = value[i]
        if ch == "\\":
            nxt = value[i + 1:i + 2]
            if nxt not in ("\\", ";", ",", "n", "N"):
                raise StrictError(f"bad escape \\{nxt} in TEXT {value!r}")
            out.append("\n" if nxt in "nN" else nxt)
            i += 2
            continue
        if ch in ";,":
            raise StrictError(f"unescaped {ch!r} in TEXT {value!r}")
        out.append(ch)
        i += 1
    return "".join(out)


_ONCE_EVENT = ("UID", "DTSTAMP", "DTSTART", "DTEND", "SEQUENCE", "STATUS", "SUMMARY",
               "LOCATION", "DESCRIPTION", "CREATED", "LAST-MODIFIED", "TRANSP", "CLASS")


def check(cal: Component) -> None:
    """The required and at-most-once properties (3.6, 3.6.1, 3.7, 3.8)."""
    if cal.name != "VCALENDAR":
        raise StrictError(f"top-level object is {cal.name}, not VCALENDAR")
    cal.one("PRODID")
    if cal.one("VERSION") != "2.0":
        raise StrictError("VERSION must be 2.0")
    uids = set()
    for ev in cal.walk("VEVENT"):
        uid = ev.one("UID")
        if uid in uids:
            raise StrictError(f"UID {uid} twice in one feed (no RECURRENCE-ID is used)")
        uids.add(uid)
        for name in _ONCE_EVENT:
            if len(ev.all(name)) > 1:
                raise StrictError(f"VEVENT {uid}: {name} more than once")
        if not _UTC_DATE_TIME.match(ev.one("DTSTAMP")):
            raise StrictError(f"VEVENT {uid}: DTSTAMP must be UTC date-time (3.8.7.2)")
        start, end = ev.one("DTSTART"), ev.one("DTEND")
        if ev.all("DURATION"):
            raise StrictError(f"VEVENT {uid}: DTEND and DURATION both present")
        for name, value in (("DTSTART", start), ("DTEND", end)):
            if not _UTC_DATE_TIME.match(value):
                raise StrictError(f"VEVENT {uid}: {name} {value!r} is not a UTC date-time")
        if end <= start:
            raise StrictError(f"VEVENT {uid}: DTEND must be after DTSTART")
        seq = ev.one("SEQUENCE")
        if not seq.isdigit():
            raise StrictError(f"VEVENT {uid}: SEQUENCE must be a non-negative integer")
        if ev.one("STATUS") not in ("TENTATIVE", "CONFIRMED", "CANCELLED"):
            raise StrictError(f"VEVENT {uid}: STATUS {ev.one('STATUS')} not allowed (3.8.1.11)")
        for name in ("SUMMARY", "LOCATION", "DESCRIPTION"):
            for p in ev.all(name):
                unescape_text(p.value)


# --- the reader itself: it must reject what the RFC forbids ---------------------------------


_GOOD = (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//y//EN\r\nBEGIN:VEVENT\r\n"
         b"UID:a@b\r\nDTSTAMP:20310501T000000Z\r\nDTSTART:20310504T000000Z\r\n"
         b"DTEND:20310504T040000Z\r\nSEQUENCE:0\r\nSTATUS:CONFIRMED\r\n"
         b"SUMMARY:Dune\\, part two\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")


def test_the_reader_accepts_a_minimal_valid_calendar() -> None:
    cal = parse(_GOOD)
    (ev,) = cal.walk("VEVENT")
    assert unescape_text(ev.one("SUMMARY")) == "Dune, part two"


def test_the_reader_unfolds_the_rfc_example() -> None:
    # RFC 5545 3.1: "DESCRIPTION:This is a lo" CRLF " ng description" ...
    folded = b"DESCRIPTION:This is a lo\r\n ng description\r\n  that exists on a long line.\r\n"
    assert unfold(folded) == ["DESCRIPTION:This is a long description that exists on a long "
                              "line."]


@pytest.mark.parametrize(("bad", "why"), [
    (_GOOD.replace(b"\r\n", b"\n"), "CRLF"),
    (_GOOD.replace(b"SUMMARY:Dune\\, part two", b"SUMMARY:" + b"x" * 70), "75 octets"),
    (_GOOD.replace(b"SUMMARY:Dune\\, part two",
                   b"SUMMARY:" + "长".encode() * 22 + b"\xe9\r\n \x95\xbf"), "UTF-8"),
    (_GOOD.replace(b"UID:a@b\r\n", b""), "UID must occur once"),
    (_GOOD.replace(b"DTSTAMP:20310501T000000Z", b"DTSTAMP:20310501T000000"), "DTSTAMP"),
    (_GOOD.replace(b"PRODID:-//x//y//EN\r\n", b""), "PRODID"),
    (_GOOD.replace(b"DTEND:20310504T040000Z", b"DTEND:20310503T040000Z"), "after DTSTART"),
    (_GOOD.replace(b"Dune\\, part", b"Dune, part"), "unescaped"),
    (_GOOD.replace(b"STATUS:CONFIRMED", b"STATUS:NEEDS-ACTION"), "not allowed"),
    (_GOOD.replace(b"END:VEVENT", b"END:VTODO"), "does not close"),
])
def test_the_reader_rejects_what_the_rfc_forbids(bad: bytes, why: str) -> None:
    with pytest.raises(StrictError, match=why):
        parse(bad)
