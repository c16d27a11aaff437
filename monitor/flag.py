"""Flag clauses of a policy or terms document by category (see `monitor.categories`).

Two signals, both CPU-only, offline and deterministic:

1. For the ten categories with enough labels, one logistic regression each over feature blocks of
   the clause and its neighbouring sentences (TF-IDF word n-grams and WordLlama sentence
   embeddings, see "Model" below), trained offline by `tools/train_flagger.py` with scikit-learn
   and shipped as numpy arrays in `monitor/data/flagger.npz`. No scikit-learn at run time.
2. Hand-written patterns grounded in legal drafting conventions (DOMAIN.md) decide alone for the
   rare categories (data-sale, indemnification, content-license, monitoring-duty), whose few
   recall-only examples cannot train a model, and for the extra categories without labels. For
   the model categories they only locate the evidence quoted inside a flagged clause.

Everything returned by the public functions is plain JSON-able data or small dataclasses.
"""

from __future__ import annotations

import difflib
import hashlib
import heapq
import io
import json
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache, wraps
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TextIO, TypeVar

import numpy as np

from monitor.categories import CATEGORIES

Stance = Literal["allows", "denies", "conditional"]
_T = TypeVar("_T")

MODEL_RESOURCE = "flagger.npz"
FEATURE_VERSION = 2  # bump when `ngrams()`/`embed()` change; the model file records the version

# ---------------------------------------------------------------------------------------------
# Data types


@dataclass(frozen=True)
class Clause:
    text: str
    heading: str  # nearest headings, outermost first, joined by " > "
    line: int  # 0-based line of the document the clause comes from
    start: int  # offsets of the clause in the document text
    end: int


@dataclass(frozen=True)
class Flag:
    category: str
    start: int  # evidence offsets into the clause text
    end: int
    evidence: str
    stance: Stance | None
    score: float  # margin of the model's logit over its threshold (0: pattern); higher = surer
    source: str  # "model", "pattern" or "model+pattern"


@dataclass(frozen=True)
class FlaggedClause:
    clause: Clause
    flags: list[Flag] = field(default_factory=list)

    @property
    def categories(self) -> list[str]:
        return [f.category for f in self.flags]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self.clause), "flags": [asdict(f) for f in self.flags]}


# ---------------------------------------------------------------------------------------------
# Clause splitting

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_LIST_MARK = re.compile(r"^\s*(?:[-*+•]|\(?\d{1,3}[.)]|\(?[a-z][.)])\s+")
# Sentence end: . ! ? (optionally closed by a quote/bracket) followed by space and a capital,
# digit, quote or bracket. Abbreviations are repaired afterwards.
_SENT_END = re.compile(r"(?<=[.!?])[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9])")
_ABBREV = re.compile(
    r"(?:\b(?:e\.g|i\.e|etc|inc|ltd|llc|co|corp|no|nos|sec|art|vs|v|mr|mrs|ms|dr|st|jr|sr|u\.s|"
    r"u\.k|e\.u|approx|incl|fig|para|cf)\.|\b[A-Z]\.)$",
    re.IGNORECASE,
)


def _sentences(line: str) -> Iterator[tuple[int, int]]:
    """Yield (start, end) spans of the sentences of one paragraph line."""
    start = 0
    for m in _SENT_END.finditer(line):
        head = line[start : m.start()].rstrip("\"'”’)]")
        # Only the end can match (`$`; the longest abbreviation is 7 characters, and `\b` looks
        # at the one before): the last 16 characters decide as the whole head would, without
        # rescanning a long paragraph at every candidate end.
        if _ABBREV.search(head[-16:]):
            continue  # "e.g. Foo", "Inc. The" ... not a sentence end
        yield start, m.start() + len(line[m.start() : m.end()].rstrip())
        start = m.end()
    if line[start:].strip():
        yield start, len(line.rstrip())


def split_clauses(text: str) -> list[Clause]:
    """Split a normalised Markdown-like document into sentence clauses with heading context.

    Headings (`# ...`) are not clauses themselves; each sentence keeps the chain of headings
    above it ("Terms > 12. Disputes > Arbitration") because a sentence such as "The decision is
    final." only makes sense under its heading.
    """
    clauses: list[Clause] = []
    stack: list[tuple[int, str]] = []  # (level, title)
    offset = 0
    for lineno, raw in enumerate(text.splitlines(keepends=True)):
        line = raw.rstrip("\r\n")
        m = _HEADING.match(line)
        if m:
            level = len(m.group(1))
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, m.group(2)))
        elif line.strip():
            heading = " > ".join(title for _, title in stack)
            mark = _LIST_MARK.match(line)
            base = mark.end() if mark else 0  # "- " / "1. " are layout, not clause text
            for s, e in _sentences(line[base:]):
                s, e = s + base, e + base
                s += len(line[s:e]) - len(line[s:e].lstrip())
                if e > s:
                    clauses.append(Clause(line[s:e], heading, lineno, offset + s, offset + e))
        offset += len(raw)
    return clauses


# ---------------------------------------------------------------------------------------------
# Features (shared with tools/train_flagger.py: training and run time must see the same ones)

_WORD = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?", re.IGNORECASE)
_NEGATED = re.compile(r"n['’]t$")


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens; "don't" -> "do", "not" so negation is one feature everywhere."""
    out: list[str] = []
    for m in _WORD.finditer(text):
        tok = m.group().lower().replace("’", "'")
        if _NEGATED.search(tok):
            stem = tok[:-3]
            out.extend((("will" if stem == "wo" else "can" if stem == "ca" else stem), "not"))
        elif tok.endswith("'s"):
            out.append(tok[:-2])
        elif tok.isdigit():
            out.append("<num>")  # section numbers and amounts carry no topic
        else:
            out.append(tok)
    return out


# ---------------------------------------------------------------------------------------------
# Domain patterns. Each is written from drafting conventions (how these clauses are phrased in
# contracts and policies, DOMAIN.md and the ToS;DR case titles), not from individual rows.

_W = r"(?:[\w'’\-]+[,;]?\s+)"  # one word and its trailing space, for "{0,n}" gaps

PATTERNS: dict[str, list[str]] = {
    "indemnification": [
        r"\bindemnif\w*",
        r"\bhold\s+" + _W + r"{0,12}harmless\b",
        # A release ("you release us ... from any claim") is the hold-harmless in other words.
        r"\breleas\w*\s+(?:us|[A-Z]\w+)\b.{0,300}?\bfrom\s+(?:any\s+and\s+all|any|all)\s+"
        r"(?:claims?|liabilit|demands?|damages)",
        # Survival clauses keep the indemnity (and other) obligations alive after the account is
        # closed: ToS;DR files them under indemnification, and they make the indemnity
        # open-ended in time, which is what a public body cannot accept.
        r"\bsurviv\w*\b.{0,120}\b(?:terminat\w*|expir\w*|clos\w+)",
        r"\b(?:terminat\w*|expir\w*)\b.{0,160}\b(?:surviv\w*|remain\s+in\s+(?:place|effect|force)|"
        r"continue\s+to\s+be\s+bound)",
    ],
    "governing-law": [
        r"\bgoverned\s+(?:" + _W + r"{0,6})?by\s+(?:" + _W + r"{0,4})?(?:the\s+)?laws?\b",
        r"\blaws?\s+of\s+(?:the\s+)?(?:state|province|commonwealth|country|republic)\s+of\b",
        r"\b(?:exclusive|non-exclusive|personal)\s+jurisdiction\b",
        r"\bjurisdiction\s+of\s+(?:the\s+)?(?:\w+\s+){0,3}courts?\b",
        r"\b(?:choice|conflicts?)\s+of\s+laws?\b",
        r"\bvenue\b",
        r"\b(?:state|federal|competent)\s+(?:or\s+(?:state|federal)\s+)?courts?\s+"
        r"(?:located|sitting|situated)?\s*(?:in|of|for)\b",
        r"\bcourts?\s+of\s+(?:the\s+)?[A-Z]\w+",
    ],
    "arbitration": [
        r"\barbitrat\w*",
        r"\bclass[\s-]+(?:action|wide|arbitration|or\s+representative)\w*",
        r"\brepresentative\s+(?:action|proceeding|capacity)s?\b",
        r"\b(?:trial\s+by\s+(?:a\s+)?jury|jury\s+trial)\b",
        r"\b(?:AAA|JAMS)\b",
        r"\b(?:one|1|two|2)\s*(?:\(\d\)\s*)?years?\s+(?:after|of)\s+.{0,60}"
        r"(?:claim|cause\s+of\s+action)\s+(?:arises|arose|accrues|accrued)",
    ],
    "terms-changes": [
        r"\b(?:may|can|will|might|reserves?\s+the\s+right\s+to)\s+(?:\w+\s+){0,4}"
        r"(?:change|modify|amend|revise|update|alter|vary)\w*\s+(?:\w+\s+){0,4}"
        r"(?:terms|agreement|conditions|policy|policies|contract|tos)\b",
        r"\b(?:changes?|modifications?|amendments?|revisions?|updates?)\s+(?:to|of)\s+"
        r"(?:these|this|the|our)\s+(?:\w+\s+){0,2}(?:terms|agreement|conditions|policy|contract)",
        r"\bcontinu\w+\s+(?:to\s+)?(?:use|access)\w*\s+.{0,120}?"
        r"(?:accept\w*|agree\w*|consent\w*|constitut\w+|deemed|bound)\b",
        r"\b(?:check|review|visit|consult)\s+(?:\w+\s+){0,4}(?:terms|page|policy|agreement)\s+"
        r"(?:\w+\s+){0,2}(?:periodically|regularly|from\s+time\s+to\s+time|frequently)",
        r"\blast\s+(?:updated|modified|revised)\b",
    ],
    "liability-limit": [
        r"\b(?:not|never)\s+(?:be\s+)?(?:held\s+)?(?:liable|responsible)\b",
        r"\blimitation\s+of\s+liability\b",
        r"\b(?:aggregate|total|maximum|entire)\s+liability\b",
        r"\bin\s+no\s+event\b",
        r"\b(?:indirect|incidental|consequential|special|punitive|exemplary)\s+"
        r"(?:or\s+\w+\s+)?(?:damages|loss)",
        r"\bas\s+is\b|\bas\s+available\b",
        r"\bdisclaim\w*",
        r"\bwithout\s+warrant\w*|\bno\s+warrant\w*|\bwarranties\s+of\s+merchantability",
        r"\b(?:accepts?|assumes?|bears?|have|has)\s+no\s+(?:\w+\s+){0,2}?"
        r"(?:liability|responsibility)",
        r"\b(?:only|solely)\s+(?:be\s+)?liable\b|\bunder\s+no\s+circumstances\b",
        r"\bforce\s+majeure\b|\blost\s+profits\b|\bloss\s+of\s+(?:profits?|data|revenue)",
        r"\b(?:can['’]?t|cannot|will\s+not|won['’]t|shall\s+not)\s+be\s+(?:held\s+)?"
        r"(?:responsible|liable)",
    ],
    "content-license": [
        r"\b(?:grant|give|grants|gives|granting)\s+(?:\w+\s+){0,8}?(?:a|an|the)?\s*"
        r"(?:[\w\-]+,?\s+(?:and\s+)?){0,10}(?:licen[cs]e|right)\b",
        r"\b(?:non-?exclusive|royalty[\s-]free|sub-?licen[cs]able|transferable|worldwide|"
        r"perpetual|irrevocable|fully[\s-]paid)\W+(?:\w+\W+){0,3}?(?:licen[cs]e|right)\b",
        r"\b(?:non-?exclusive|royalty[\s-]free|sub-?licen[cs]able|transferable|worldwide|"
        r"perpetual|irrevocable)\W+(?:and\s+)?(?:non-?exclusive|royalty[\s-]free|"
        r"sub-?licen[cs]able|transferable|worldwide|perpetual|irrevocable)\b",
        r"\b(?:use|host|store|reproduce|copy|modify|adapt|publish|translate|distribute|display|"
        r"perform|transmit)\W+(?:\w+\W+){0,2}(?:reproduce|copy|modify|adapt|publish|translate|"
        r"distribute|display|perform|create\s+derivative\s+works)\b.{0,80}"
        r"(?:create\s+derivative\s+works|distribute|display|publish|perform)",
        r"\blicen[cs]e\s+(?:\w+\s+){0,3}(?:your|user|member|subscriber)\s+content\b",
    ],
    "termination": [
        r"\b(?:may|can|will|reserves?\s+the\s+right\s+to|right\s+to)\s+(?:\w+,?\s+){0,4}"
        r"(?:suspend|terminate|disable|deactivate|close|cancel|block|ban|delete)\w*\s+"
        r"(?:\w+\s+){0,4}(?:account|access|accounts|membership|service|use|profile)",
        r"\b(?:may|can|will|reserves?\s+the\s+right\s+to|right\s+to)\s+(?:\w+,?\s+){0,4}"
        r"(?:remove|delete|take\s+down|refuse\s+to\s+post|edit|screen|block)\w*\s+"
        r"(?:\w+\s+){0,4}(?:content|posts?|material|uploads?|information)",
        r"\b(?:sole|absolute)\s+discretion\b",
        r"\bwith\s+or\s+without\s+(?:prior\s+)?(?:notice|cause)\b",
        r"\b(?:account|accounts|access|membership)\s+(?:\w+\s+){0,3}(?:may|will|can|shall)\s+"
        r"(?:\w+\s+){0,2}(?:be\s+)?(?:suspended|terminated|closed|cancell?ed|disabled|"
        r"restricted|blocked|deleted)",
        r"\b(?:suspension|termination|closure|cancellation|deactivation)\s+of\s+(?:your\s+)?"
        r"(?:account|access|membership|services?)",
        r"\b(?:suspensions?|bans?|banned|disqualif\w+)\b",
        r"\b(?:discontinue|stop\s+providing|cease\s+providing)\s+(?:\w+\s+){0,3}"
        r"(?:services?|products?|access)",
    ],
    "monitoring-duty": [
        r"\b(?:solely\s+|fully\s+|entirely\s+)?responsible\s+for\s+(?:\w+\s+){0,4}?"
        r"(?:maintain\w*|keeping|safeguard\w*|protect\w*|secur\w*|all\s+activit\w*|"
        r"any\s+activit\w*|activit\w*|all\s+use|any\s+use|the\s+use)",
        r"\b(?:notify|inform|tell|contact|alert)\s+(?:\w+\s+){0,3}(?:immediately|promptly|"
        r"right\s+away|at\s+once)?\s*(?:of|about|if|upon|in\s+the\s+event)\b\s*(?:\w+\s+){0,8}"
        r"(?:unauthori[sz]ed|breach|compromise|security|suspect\w*|lost|stolen|misuse)",
        r"\b(?:keep|maintain|safeguard|protect)\s+(?:\w+\s+){0,4}?(?:password|credentials?|"
        r"log-?in|account)s?\s+(?:\w+\s+){0,4}?(?:secure|safe|confidential|secret)",
        r"\bconfidentiality\s+of\s+(?:\w+\s+){0,2}(?:account|password|credentials|log-?in)",
        r"\bactivit(?:y|ies)\s+(?:that\s+)?(?:occurs?|happens?|takes?\s+place)?\s*"
        r"(?:under|on|through|via)\s+your\s+account",
        r"\b(?:monitor|police|supervise)\s+(?:\w+\s+){0,3}(?:use|account|users|activity)",
    ],
    "data-sale": [
        r"\b(?:sell|sells|selling|sold|rent|rents|renting|rented|trade|trades|traded|lease|"
        r"leases|leased)\b\s+(?:\w+\s+){0,6}?(?:personal|your|user|users|customer|member|"
        r"this|such|any)?\s*(?:information|data|info|details|lists?|email\s+address\w*)\b",
        r"\b(?:information|data|info|details)\s+(?:\w+\s+){0,4}?(?:is|are|be|will\s+be)\s+"
        r"(?:\w+\s+){0,2}(?:sold|rented|traded|leased)\b",
        r"\b(?:sale|selling|sell|sold)\s+of\s+(?:\w+\s+){0,2}(?:personal\s+)?"
        r"(?:information|data)\b",
        r"\bdo\s+not\s+sell\s+my\b",
        # Business transfer: user data passes to a buyer in a merger/sale of the business.
        r"\b(?:information|data|customer\s+lists?)\b.{0,250}?\b(?:merger|acquisition|"
        r"bankruptcy|reorgani[sz]ation|(?:sale|sell)\s+(?:\w+\s+){0,6}?(?:business|company|"
        r"assets))\b",
        r"\b(?:merger|acquisition|bankruptcy|reorgani[sz]ation|(?:sale|sell)\s+(?:\w+\s+){0,6}?"
        r"(?:business|company|assets))\b.{0,250}?\b(?:information|data|customer\s+lists?)\b",
    ],
    "data-location": [
        r"\b(?:transfer\w*|stor\w+|process\w*|host\w*|kept|maintain\w*|located)\s+(?:\w+\s+){0,6}?"
        r"(?:in|to|outside|within)\s+(?:\w+\s+){0,2}?(?:the\s+)?(?:united\s+states|u\.s\.?|usa|"
        r"other\s+countr\w+|countr(?:y|ies)|jurisdictions?|european|europe|eea|abroad|"
        r"your\s+(?:home\s+)?country|anywhere\s+in\s+the\s+world|servers?)",
        r"\b(?:transferr?\w*|stored|processed|sent|maintained|hosted)\b[\w\s,()]{0,60}?\b"
        r"(?:in|to|outside(?:\s+of)?)\s+(?:the\s+)?(?:united\s+states|u\.s\.|usa|"
        r"other\s+countr\w+|countries)",
        r"\b(?:international|cross[\s-]border|overseas)\s+(?:data\s+)?transfers?\b",
        r"\boutside\s+(?:of\s+)?(?:the\s+)?(?:united\s+states|eea|european|your\s+country|eu\b)",
    ],
    "assignment": [
        r"\b(?:may|can|right\s+to)\s+(?:\w+\s+){0,3}assign\w*\b(?:\s+\w+){0,8}\s+"
        r"(?:agreement|terms|rights|obligations|contract)",
        r"\b(?:assign|transfer)\w*\s+(?:\w+\s+){0,6}without\s+(?:your\s+)?(?:prior\s+)?"
        r"(?:consent|approval|notice)",
    ],
    "advertising-endorsement": [
        r"\b(?:show|display|serve|place|include|run)\w*\s+(?:\w+\s+){0,3}(?:ads|advertisements|"
        r"advertising|sponsored\s+content)\s+(?:\w+\s+){0,4}(?:next\s+to|alongside|near|on|in|"
        r"with|within)\s+(?:\w+\s+){0,3}(?:your\s+)?(?:content|pages?|profiles?|posts?|"
        r"channels?|videos?)",
        r"\b(?:use|display|show)\w*\s+(?:of\s+)?(?:your\s+)?(?:name|profile\s+picture|likeness|"
        r"photo|image|username)\w*\s+(?:\w+\s+){0,8}(?:ads|advertis\w+|sponsored|commercial)",
        r"\bwithout\s+(?:any\s+)?(?:compensation|payment)\s+to\s+you\b.{0,80}(?:ads|advertis)",
    ],
    "ad-tracking": [
        r"\b(?:interest[\s-]based|targeted|behaviou?ral|personali[sz]ed|tailored|relevant)\s+"
        r"(?:advertis\w+|ads|marketing)",
        r"\b(?:ad|advertising)\s+(?:networks?|partners?|exchanges?|servers?|companies)\b",
        r"\bnetwork\s+advertising\s+initiative\b|\bdigital\s+advertising\s+alliance\b",
        r"\b(?:across|on)\s+(?:other|third[\s-]party|different)\s+(?:web)?sites\b",
    ],
    "disclosure": [
        r"\b(?:share|disclose|provide|transfer|sell|release|make\s+available)\w*\s+"
        r"(?:\w+\s+){0,6}?(?:information|data)\s+(?:\w+\s+){0,4}?(?:with|to)\s+(?:\w+\s+){0,3}?"
        r"(?:third|affiliates?|partners?|service\s+providers?|vendors?|law\s+enforcement|"
        r"government|authorit)",
        r"\b(?:subpoena|court\s+order|legal\s+process|law\s+enforcement|government\s+requests?)",
        r"\bthird[\s-]part(?:y|ies)\b",
    ],
    "usage-recording": [
        r"\bcookies?\b|\bweb\s+beacons?\b|\bpixel\s+tags?\b|\bpixels?\b|\blocal\s+storage\b",
        r"\b(?:ip|internet\s+protocol)\s+address\w*",
        r"\blog\s+(?:files?|data|information)\b|\bbrowser\s+type\b|\bdevice\s+(?:id|identifiers?)\b",
        r"\b(?:pages?\s+(?:you\s+)?(?:visit|view)\w*|referr\w+\s+(?:url|page|site)s?|"
        r"clickstream|browsing\s+(?:history|activity))",
    ],
    "opt-out": [
        r"\bopt[\s-]?(?:out|in)\b|\bunsubscrib\w+|\bdo\s+not\s+track\b",
        r"\b(?:you\s+(?:can|may)|choose\s+(?:not\s+)?to|choice|choices)\b.{0,60}"
        r"(?:disable|decline|refuse|reject|turn\s+off|block|delete|settings|preferences)",
        r"\b(?:privacy|account|ad|advertising|cookie|browser)\s+(?:settings|preferences|controls)\b",
    ],
}

# Decisive patterns for model categories: phrasings that on their own say the clause is on the
# topic (the agreement to arbitrate itself, a choice of law), flagged whatever the model says.
STRONG_PATTERNS: dict[str, list[str]] = {
    "arbitration": [
        r"\b(?:resolv|settl|submit|decided|determined|means)\w*\s.{0,150}(?:binding|final)[\s,]+"
        r"(?:[\w\-]+[\s,]+){0,3}arbitration",
    ],
    "governing-law": [
        r"\bgoverned\s+(?:[\w,]+\s+){0,6}by\s+(?:[\w,]+\s+){0,4}laws?\b",
        r"\b(?:exclusive|personal)\s+jurisdiction\b",
        r"\bcourts?\s+(?:located|sitting|situated)\s+in\b",
    ],
    "terms-changes": [
        r"\b(?:may|can|will|might|reserves?\s+the\s+right\s+to)\s+(?:\w+\s+){0,4}"
        r"(?:change|modify|amend|revise|update|alter|vary)\w*\s+(?:\w+\s+){0,4}"
        r"(?:terms|agreement|conditions|contract|tos|prices?|fees?|services?|features?)\b",
        r"\breserves?\s+the\s+right\s+(?:\w+\s+){0,3}to\s+(?:\w+,?\s+){0,3}"
        r"(?:change|modify|amend|revise|alter|vary|update)",
    ],
    "data-location": [
        # Transfer frameworks only exist for data leaving the EU/Switzerland for the US.
        r"\b(?:safe\s+harbou?r|privacy\s+shield|standard\s+contractual\s+clauses|"
        r"binding\s+corporate\s+rules|adequacy\s+decision)\b",
    ],
}

# Categories the model cannot learn (too few labels, or none): their patterns decide alone.
PATTERN_ONLY = frozenset(
    {
        "data-sale",
        "indemnification",
        "content-license",
        "monitoring-duty",
        "assignment",
        "advertising-endorsement",
    }
)

_COMPILED: dict[str, list[re.Pattern[str]]] = {
    cat: [re.compile(p, re.IGNORECASE | re.DOTALL) for p in pats] for cat, pats in PATTERNS.items()
}
# One alternation per category answers "any hit?" in a single scan (throughput).
_ANY: dict[str, re.Pattern[str]] = {
    cat: re.compile("|".join(f"(?:{p})" for p in pats), re.IGNORECASE | re.DOTALL)
    for cat, pats in PATTERNS.items()
}


_STRONG: dict[str, re.Pattern[str]] = {
    cat: re.compile("|".join(f"(?:{p})" for p in pats), re.IGNORECASE | re.DOTALL)
    for cat, pats in STRONG_PATTERNS.items()
}
_STRONG_COMPILED: dict[str, list[re.Pattern[str]]] = {
    cat: [re.compile(p, re.IGNORECASE | re.DOTALL) for p in pats]
    for cat, pats in STRONG_PATTERNS.items()
}


def pattern_hits(text: str, categories: Iterable[str] | None = None) -> list[str]:
    """Categories (of `categories`, default all) whose (topic) domain patterns match the text."""
    wanted = _ANY if categories is None else {c: _ANY[c] for c in categories if c in _ANY}
    return [cat for cat, rx in wanted.items() if rx.search(text)]


@lru_cache(maxsize=8)
def _pattern_decided(model_categories: tuple[str, ...] | None) -> tuple[str, ...]:
    """The categories patterns decide: those the model cannot learn or does not have. Scanning
    only these is what `flag_inputs` used of a scan of every category (a third of its time was
    pattern scans whose hits it then ignored)."""
    return tuple(
        c
        for c in _ANY
        if c in PATTERN_ONLY or model_categories is None or c not in model_categories
    )


def _pattern_span(cat: str, text: str) -> tuple[int, int] | None:
    for rx in (*_STRONG_COMPILED.get(cat, ()), *_COMPILED.get(cat, ())):
        m = rx.search(text)
        if m and m.end() > m.start():
            return m.start(), m.end()
    return None


# ---------------------------------------------------------------------------------------------
# Model: one logistic regression per category over feature blocks (tools/train_flagger.py)
#
# Blocks, each L2-normalised on its own so no block drowns the others:
# - "clause", "prev", "next": TF-IDF of word unigrams + bigrams (`ngrams`) of the clause and of
#   the sentences before and after it. CLAUDETTE tags only the key sentence of a clause, and an
#   OPP-115 segment's topic is often set by its neighbours, so the context is a separate block
#   (the same words mean something else in the clause than next to it).
# - "emb_clause", "emb_prev", "emb_next": WordLlama sentence embeddings (MIT, weights shipped in
#   its wheel, loaded offline) of the same three texts: they carry paraphrases n-grams miss.
# Headings are not a block: the labelled rows have none, so their effect could not be measured.

TEXT_BLOCKS = ("clause", "prev", "next")
EMBED_BLOCKS = ("emb_clause", "emb_prev", "emb_next")
EMBED_DIM = 256


def ngrams(text: str) -> list[str]:
    """Word unigrams and bigrams of one text (the TF-IDF features, training and run time)."""
    toks = tokens(text)
    return list(dict.fromkeys([*toks, *(f"{a} {b}" for a, b in zip(toks, toks[1:], strict=False))]))


WORDLLAMA_CONFIG = "l2_supercat"
EMBED_BATCH = 64  # texts per tokenizer call, as WordLlama's own `embed`
EMBED_CHUNK_VALUES = 1 << 20  # token-vector values pooled at once (4 MB as float32)


class _Embedder:
    """WordLlama's `embed(texts, norm=True)`, reading its token-embedding matrix memory-mapped.

    WordLlama's loader copies the 32,000 x 256 half-precision matrix into a float32 array (about
    50 MB of the process, for the few hundred tokens a night's changes touch) and takes 0.5 s.
    Mapping the file and converting only the rows a batch uses gives the same float32 values
    (half to single precision is exact), then the same pooling and norm in the same order: the
    same embeddings (tests/test_flag.py compares them with WordLlama's), at a fraction of the
    memory and start. The weights and tokenizer still come from the installed `wordllama` wheel.
    """

    def __init__(self) -> None:
        import importlib.util

        from tokenizers import Tokenizer

        # The package's folder, without importing it: `import wordllama` alone costs 30 MB and
        # 0.45 s (its training and clustering code), none of which embedding needs.
        spec = importlib.util.find_spec("wordllama")
        if spec is None or not spec.submodule_search_locations:
            raise ModuleNotFoundError("wordllama is not installed (the flagger's embeddings)")
        root = Path(next(iter(spec.submodule_search_locations)))
        weights = root / "weights" / f"{WORDLLAMA_CONFIG}_{EMBED_DIM}.safetensors"
        tokenizer = root / "tokenizers" / f"{WORDLLAMA_CONFIG}_tokenizer_config.json"
        self.tokenizer = Tokenizer.from_file(str(tokenizer))
        self.tokenizer.enable_padding()
        self.tokenizer.no_truncation()
        self.matrix = _mapped_tensor(weights, "embedding.weight")

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.empty((len(texts), self.matrix.shape[1]), dtype=np.float32)
        for i in range(0, len(texts), EMBED_BATCH):
            encoded = self.tokenizer.encode_batch(
                list(texts[i : i + EMBED_BATCH]), is_pretokenized=False, add_special_tokens=False
            )
            ids = np.array([e.ids for e in encoded], dtype=np.int32)
            mask = np.array([e.attention_mask for e in encoded], dtype=np.float32)
            np.clip(ids, 0, self.matrix.shape[0] - 1, out=ids)
            # Pooled a few rows at a time: a batch's token vectors, padded to its longest text
            # (~300 tokens in long policies), were ~20 MB, and three such arrays at once were the
            # peak of a change night. Each row's sum and norm are the same computed apart.
            rows = max(1, EMBED_CHUNK_VALUES // (ids.shape[1] * self.matrix.shape[1]))
            for r in range(0, len(ids), rows):
                x = self.matrix[ids[r : r + rows]].astype(np.float32)
                m = mask[r : r + rows]
                total = np.maximum(m.sum(axis=1, keepdims=True), 1.0).astype(np.float32)
                pooled = np.sum(x * m[..., np.newaxis], axis=1, dtype=np.float32) / total
                pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
                out[i + r : i + r + pooled.shape[0]] = pooled
        return out


def _mapped_tensor(path: Path, name: str) -> np.ndarray:
    """One tensor of a .safetensors file as a read-only memory map. The format is an 8-byte
    little-endian header length, a JSON header (name -> dtype, shape, data offsets) and the
    data; the `safetensors` library has no numpy view that does not copy."""
    dtypes = {"F16": np.float16, "F32": np.float32}
    with open(path, "rb") as handle:
        size = int.from_bytes(handle.read(8), "little")
        entry = json.loads(handle.read(size))[name]
    start, end = entry["data_offsets"]
    dtype = np.dtype(dtypes[entry["dtype"]])
    shape = tuple(entry["shape"])
    if end - start != dtype.itemsize * math.prod(shape):
        raise ValueError(f"{path}: tensor {name} has a size that does not match its shape")
    return np.memmap(path, dtype=dtype, mode="r", offset=8 + size + start, shape=shape)


_loading = threading.Lock()


def _loaded_once(load: Callable[[], _T]) -> Callable[[], _T]:
    """`load()`, run once per process even when several threads ask at the same moment:
    `lru_cache` runs it in each (a run flags its held changes together once its browser has
    closed, and five threads built five models, ~50 MB each with the tokenizer)."""
    done: list[_T] = []

    @wraps(load)
    def get() -> _T:
        if not done:
            with _loading:
                if not done:
                    done.append(load())
        return done[0]

    return get


@_loaded_once
def _embedder() -> _Embedder:
    return _Embedder()


def embed(texts: Sequence[str]) -> np.ndarray:
    """L2-normalised sentence embeddings, zeros for empty texts (no neighbour)."""
    out = np.zeros((len(texts), EMBED_DIM), dtype=np.float32)
    idx = [i for i, t in enumerate(texts) if t.strip()]
    if idx:
        out[idx] = _embedder().embed([texts[i] for i in idx])
    return out


@dataclass(frozen=True)
class Model:
    version: str  # sha256 of the model file: part of every cache key
    categories: tuple[str, ...]
    bias: np.ndarray  # (K,)
    threshold: np.ndarray  # (K,) on the logit
    vocab: dict[str, dict[str, int]]  # text block -> feature -> row
    idf: dict[str, np.ndarray]  # text block -> (V,)
    weights: dict[str, np.ndarray]  # block -> (V or EMBED_DIM, K); text blocks pre-scaled by idf
    meta: dict[str, Any]


def load_model(raw: bytes) -> Model:
    """Build the run-time model from the .npz written by tools/train_flagger.py."""
    with np.load(io.BytesIO(raw), allow_pickle=False) as z:
        header = json.loads(bytes(z["header"]).decode())
        if header.get("feature_version") != FEATURE_VERSION:
            raise ValueError("flagger model was trained with other features; re-run train_flagger")
        vocab, idf, weights = {}, {}, {}
        for b in TEXT_BLOCKS:
            words = bytes(z[f"vocab_{b}"]).decode().split("\n")
            vocab[b] = {w: i for i, w in enumerate(words)}
            idf[b] = z[f"idf_{b}"].astype(np.float64)
            weights[b] = z[f"w_{b}"].astype(np.float64) * idf[b][:, None]
        for b in EMBED_BLOCKS:
            weights[b] = z[f"w_{b}"].astype(np.float64)
        return Model(
            version=hashlib.sha256(raw).hexdigest()[:16],
            categories=tuple(header["categories"]),
            bias=z["bias"].astype(np.float64),
            threshold=z["threshold"].astype(np.float64),
            vocab=vocab,
            idf={b: v**2 for b, v in idf.items()},  # squared: what the norm needs
            weights=weights,
            meta=header.get("meta", {}),
        )


@_loaded_once
def default_model() -> Model | None:
    """The shipped model, or None when it is missing (patterns then work alone)."""
    try:
        raw = resources.files("monitor").joinpath("data", MODEL_RESOURCE).read_bytes()
    except (FileNotFoundError, OSError):
        return None
    return load_model(raw)


def _text_block(model: Model, block: str, grams: list[list[str]]) -> np.ndarray:
    vocab, idf2, w = model.vocab[block], model.idf[block], model.weights[block]
    out = np.zeros((len(grams), len(model.categories)))
    for i, gs in enumerate(grams):
        idx = [j for j in (vocab.get(g) for g in gs) if j is not None]
        if idx:
            out[i] = w[idx].sum(axis=0) / math.sqrt(idf2[idx].sum())
    return out


def model_scores(model: Model, items: Sequence[ClauseInput]) -> np.ndarray:
    """Logits (n, K) of the model categories for a batch of clauses."""
    z = np.tile(model.bias, (len(items), 1))
    texts = {"clause": [i.text for i in items], "prev": [i.prev for i in items]}
    texts["next"] = [i.next for i in items]
    memo: dict[str, list[str]] = {}  # a clause's n-grams are its neighbours' context n-grams
    for b in TEXT_BLOCKS:
        grams = [memo[t] if t in memo else memo.setdefault(t, ngrams(t)) for t in texts[b]]
        z += _text_block(model, b, grams)
    uniq = list(dict.fromkeys(t for b in TEXT_BLOCKS for t in texts[b]))
    vecs = embed(uniq)
    row = {t: k for k, t in enumerate(uniq)}
    for b, eb in zip(TEXT_BLOCKS, EMBED_BLOCKS, strict=True):
        z += vecs[[row[t] for t in texts[b]]].astype(np.float64) @ model.weights[eb]
    return z


# ---------------------------------------------------------------------------------------------
# Stance

_NEG = re.compile(
    r"\b(?:not|never|no|nor|neither|don['’]t|doesn['’]t|won['’]t|cannot|can['’]t|"
    r"isn['’]t|aren['’]t|shall\s+not|without\s+your)\b",
    re.IGNORECASE,
)
_COND = re.compile(
    r"\b(?:unless|except|if|provided\s+that|subject\s+to|only\s+(?:if|when|with|after)|"
    r"with\s+your\s+(?:consent|permission)|upon\s+your\s+request|where\s+required)\b",
    re.IGNORECASE,
)
_ALLOW = re.compile(
    r"\b(?:may|might|can|will|shall|must|reserves?|agree[sd]?|grants?|permit\w*|allow\w*|"
    r"share[sd]?|sell[s]?|use[sd]?|collect\w*|disclose[sd]?|transfer\w*|track\w*|record\w*|"
    r"store[sd]?|process\w*|is|are)\b",
    re.IGNORECASE,
)


# Practices phrased with a negation: "we are not liable" *is* the limitation, not its denial.
_NEGATIVE_BY_NATURE = frozenset({"liability-limit"})


def stance(text: str, start: int, end: int, category: str = "") -> Stance | None:
    """Does the clause allow, deny or condition the practice found at text[start:end]?

    Negation is only read in the few words before the evidence (and inside it), so "we do not
    sell your data" denies while "we share data with partners who may not ..." does not.
    """
    before = text[max(0, start - 40) : start]
    head = before + " " + text[start:end][:60]
    if category not in _NEGATIVE_BY_NATURE and _NEG.search(head):
        return "conditional" if _COND.search(text[end:]) else "denies"
    if _COND.search(text):
        return "conditional"
    if _ALLOW.search(text):
        return "allows"
    return None


# ---------------------------------------------------------------------------------------------
# Flagging


@dataclass(frozen=True)
class ClauseInput:
    """What the flagger sees of a clause: its text, section headings and neighbours."""

    text: str
    heading: str = ""
    prev: str = ""  # the clause before it in the document ("" at the start)
    next: str = ""


def input_key(item: ClauseInput) -> str:
    """What `flag_inputs` reads of a clause (its text and both neighbours, not its heading),
    hashed: inputs with equal keys get equal flags, so caches may share flags between versions
    and documents by this key. Anything `flag_inputs` starts reading must be added here
    (tests/test_flag.py checks that the heading changes nothing)."""
    raw = f"{item.text}\0{item.prev}\0{item.next}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


# The flags of the clauses flagged last with the shipped model, by `input_key`. A night flags a
# change's new clauses (`change_flags`), then its report flags the new version's clauses for the
# checklist (`monitor.report.checklist`): the same inputs, so the same flags, asked for twice (a
# rewritten long policy: ~0.7 s of a 1.2 s report). Bounded: a long rewrite is ~1,000 clauses,
# and 4,096 entries hold a few megabytes. Flagging runs in threads (a night's changes): a lock
# guards the dictionary, never the flagging.
RECENT_MAX = 4096
_recent: OrderedDict[str, list[Flag]] = OrderedDict()
_recent_lock = threading.Lock()


def flag_inputs(items: Sequence[ClauseInput], model: Model | None = None) -> list[list[Flag]]:
    """Categories of a batch of clauses with evidence and stance, in registry order.

    Model categories are decided by the model alone (logit >= its category's threshold); the
    categories it cannot learn (`PATTERN_ONLY`) by their patterns. `score` is the logit's margin
    over the threshold (0 for pattern decisions): higher = more confident, used to order the
    checklist's evidence. With the shipped model (`model` None), inputs flagged lately are not
    flagged again (`_recent`); a model given explicitly is always run.
    """
    if model is not None:
        return _flag_batch(items, model)
    keys = [input_key(item) for item in items]
    with _recent_lock:
        found = {k: _recent[k] for k in keys if k in _recent}
    first: dict[str, int] = {}
    for i, k in enumerate(keys):
        if k not in found:
            first.setdefault(k, i)
    if first:
        fresh = _flag_batch([items[i] for i in first.values()], default_model())
        found.update(zip(first, fresh, strict=True))
    with _recent_lock:
        for k in keys:
            _recent[k] = found[k]
            _recent.move_to_end(k)
        while len(_recent) > RECENT_MAX:
            _recent.popitem(last=False)
    return [list(found[k]) for k in keys]


def _flag_batch(items: Sequence[ClauseInput], model: Model | None) -> list[list[Flag]]:
    """`flag_inputs` without the memo of recent inputs."""
    margins = (
        model_scores(model, items) - model.threshold
        if model is not None and items
        else np.zeros((len(items), 0))
    )
    by_pattern = _pattern_decided(model.categories if model is not None else None)
    out = []
    for item, row in zip(items, margins, strict=True):
        text = item.text
        decided: dict[str, tuple[float, str]] = {}
        if model is not None:
            for ci, m in enumerate(row):
                if m >= 0:
                    decided[model.categories[ci]] = (float(m), "model")
        for cat in pattern_hits(text, by_pattern):
            decided.setdefault(cat, (0.0, "pattern"))
        flags = []
        for cat in CATEGORIES:
            if cat not in decided:
                continue
            span = _pattern_span(cat, text) or (0, len(text))
            s, e = span
            score, source = decided[cat]
            flags.append(
                Flag(cat, s, e, text[s:e], stance(text, s, e, cat), round(score, 4), source)
            )
        out.append(flags)
    return out


def flag_clause(
    text: str, heading: str = "", model: Model | None = None, prev: str = "", next: str = ""
) -> list[Flag]:
    """Categories of one clause; give its neighbours (`prev`, `next`) when known."""
    return flag_inputs([ClauseInput(text, heading, prev, next)], model)[0]


def clause_inputs(clauses: Sequence[Clause]) -> list[ClauseInput]:
    """Each clause of a document with the clauses before and after it as context."""
    texts = [c.text for c in clauses]
    return [
        ClauseInput(
            c.text, c.heading, texts[i - 1] if i else "", texts[i + 1] if i + 1 < len(texts) else ""
        )
        for i, c in enumerate(clauses)
    ]


def flag_text(text: str) -> list[FlaggedClause]:
    """Flag every clause of a document version (clauses without flags included)."""
    clauses = split_clauses(text)
    flags = flag_inputs(clause_inputs(clauses))
    return [FlaggedClause(c, f) for c, f in zip(clauses, flags, strict=True)]


def flag_records(rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Add "labels" (category ids) to each row that has a "text"; keep every other key.

    Rows with a "doc" and "pos" are flagged with their neighbours as context, as clauses of a
    document are at run time.
    """
    rows = list(rows)
    texted = [r for r in rows if isinstance(r.get("text"), str)]
    labels = iter(flag_rows(texted))
    for row in rows:
        if isinstance(row.get("text"), str):
            row = {**row, "labels": next(labels)}
        yield row


def row_contexts(rows: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    """(previous, next) text of each labelled row: its neighbours by `pos` in the same document.

    Labelled rows come one sentence (or segment) a line with their position in the document, so
    the neighbours a clause has at run time (the clauses before and after it) can be rebuilt.
    """
    by_doc: dict[tuple[Any, Any], dict[int, str]] = {}
    for row in rows:
        pos = row.get("pos")
        if isinstance(pos, int):
            by_doc.setdefault((row.get("source"), row.get("doc")), {})[pos] = row["text"]
    out = []
    for row in rows:
        pos = row.get("pos")
        if not isinstance(pos, int):
            out.append(("", ""))
            continue
        doc = by_doc[(row.get("source"), row.get("doc"))]
        out.append((doc.get(pos - 1, ""), doc.get(pos + 1, "")))
    return out


def flag_rows(rows: Sequence[dict[str, Any]]) -> list[list[str]]:
    """Category ids of labelled rows, each flagged with its neighbours as context."""
    ctx = row_contexts(rows)
    items = [
        ClauseInput(r["text"], r["heading"] if isinstance(r.get("heading"), str) else "", p, n)
        for r, (p, n) in zip(rows, ctx, strict=True)
    ]
    return [[f.category for f in flags] for flags in flag_inputs(items)]


def flag_file(inp: TextIO, out: TextIO) -> int:
    """JSONL in, JSONL out (for `tos-monitor flag`); returns the number of rows written."""
    rows = (json.loads(line) for line in inp if line.strip())
    n = 0
    for row in flag_records(rows):
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
        n += 1
    return n


# ---------------------------------------------------------------------------------------------
# Changes between two versions

MODIFIED_MIN_SIMILARITY = 0.5


def _clause_entry(fc: FlaggedClause) -> dict[str, Any]:
    return {
        "text": fc.clause.text,
        "heading": fc.clause.heading,
        "categories": fc.categories,
        "flags": [asdict(f) for f in fc.flags],
    }


def _pair_modified(
    old: list[FlaggedClause], new: list[FlaggedClause]
) -> tuple[list[tuple[FlaggedClause, FlaggedClause, float]], list[int], list[int]]:
    """Greedily pair the most similar leftover clauses; return pairs and unpaired indexes.

    The greedy order is every pair's ratio, highest first, ties by index: (-ratio, i, j). The
    full ratio is costly (a rewritten 160 KB policy spent 1.7 s on 2,000 of them), so pairs wait
    in a heap under an upper bound of their ratio and get their ratio only when they reach the
    top with both clauses still free. A bound sorts before a ratio of the same value, so a pair
    is taken only when nothing unresolved could rank before it: the pairs are those of ranking
    every ratio, and a test compares the two on random texts.
    """
    old_words = [set(tokens(fc.clause.text)) for fc in old]
    new_words = [set(tokens(fc.clause.text)) for fc in new]
    # One matcher per new clause, the new text always second (the ratio is not symmetric):
    # SequenceMatcher keeps what it indexed of its second sequence across `set_seq1`.
    matchers = [difflib.SequenceMatcher(None, "", fc.clause.text) for fc in new]
    queue: list[tuple[float, int, int, int]] = []  # (-value, 1 if the ratio else 0, i, j)
    for j, nw in enumerate(new_words):
        matcher = matchers[j]
        for i, ow in enumerate(old_words):
            shared = len(ow & nw)
            union = len(ow) + len(nw) - shared
            # Cheap word-overlap filter before the character-level ratio.
            if not union or shared / union < MODIFIED_MIN_SIMILARITY / 2:
                continue
            matcher.set_seq1(old[i].clause.text)
            # difflib's own upper bounds of ratio(): lengths, then character counts.
            if matcher.real_quick_ratio() < MODIFIED_MIN_SIMILARITY:
                continue
            bound = matcher.quick_ratio()
            if bound >= MODIFIED_MIN_SIMILARITY:
                queue.append((-bound, 0, i, j))
    heapq.heapify(queue)
    used_old: set[int] = set()
    used_new: set[int] = set()
    pairs = []
    while queue:
        value, exact, i, j = heapq.heappop(queue)
        if i in used_old or j in used_new:
            continue
        if not exact:
            matchers[j].set_seq1(old[i].clause.text)
            ratio = matchers[j].ratio()
            if ratio >= MODIFIED_MIN_SIMILARITY:
                heapq.heappush(queue, (-ratio, 1, i, j))
            continue
        used_old.add(i)
        used_new.add(j)
        pairs.append((old[i], new[j], round(-value, 3)))
    pairs.sort(key=lambda p: p[1].clause.start)
    rest_old = [i for i in range(len(old)) if i not in used_old]
    rest_new = [j for j in range(len(new)) if j not in used_new]
    return pairs, rest_old, rest_new


def _flag_some(clauses: list[Clause], indexes: list[int]) -> list[FlaggedClause]:
    """The clauses at `indexes`, flagged with their neighbours in `clauses`, in one batch."""
    inputs = clause_inputs(clauses)
    flags = flag_inputs([inputs[i] for i in indexes]) if indexes else []
    return [FlaggedClause(clauses[i], f) for i, f in zip(indexes, flags, strict=True)]


def change_flags(old_text: str, new_text: str) -> dict[str, Any]:
    """Flagged clauses added, removed or modified between two versions of a document.

    Clauses are matched by exact text first (a moved sentence is not a change); the leftovers are
    paired by similarity as "modified", the rest are "added"/"removed". `summary` holds one line
    per (change, category), e.g. "modified clause on data-sale", for alert subjects.
    """
    old = split_clauses(old_text)
    new = split_clauses(new_text)
    remaining: dict[str, list[int]] = {}
    for i, clause in enumerate(old):
        remaining.setdefault(clause.text, []).append(i)
    matched_old: set[int] = set()
    new_left: list[int] = []
    for j, clause in enumerate(new):
        idxs = remaining.get(clause.text)
        if idxs:
            matched_old.add(idxs.pop(0))
        else:
            new_left.append(j)
    old_left = [i for i in range(len(old)) if i not in matched_old]
    # Only the clauses no exact match explains are flagged, each with its own neighbours as in
    # `flag_text`: a clause's flags depend on nothing else, so this is what flagging both whole
    # texts gives for them, at the cost of the change instead of two documents (a night with
    # five changes spent ~9 s flagging clauses the result never used).
    left_old = _flag_some(old, old_left)
    left_new = _flag_some(new, new_left)
    pairs, rest_old, rest_new = _pair_modified(left_old, left_new)

    added = [_clause_entry(left_new[j]) for j in rest_new]
    removed = [_clause_entry(left_old[i]) for i in rest_old]
    modified: list[dict[str, Any]] = []
    for o, n, ratio in pairs:
        cats = [c for c in CATEGORIES if c in o.categories or c in n.categories]
        modified.append(
            {
                "old": _clause_entry(o),
                "new": _clause_entry(n),
                "heading": n.clause.heading,
                "categories": cats,
                "similarity": ratio,
            }
        )
    by_category: dict[str, dict[str, int]] = {}
    for kind, entries in (("added", added), ("removed", removed), ("modified", modified)):
        for entry in entries:
            for cat in entry["categories"]:
                by_category.setdefault(cat, {"added": 0, "removed": 0, "modified": 0})[kind] += 1
    ordered = {c: by_category[c] for c in CATEGORIES if c in by_category}
    summary = [
        f"{kind} clause on {cat}" if n == 1 else f"{n} {kind} clauses on {cat}"
        for cat, counts in ordered.items()
        for kind, n in counts.items()
        if n
    ]
    return {
        "added": added,
        "removed": removed,
        "modified": modified,
        "by_category": ordered,
        "summary": summary,
    }


# ---------------------------------------------------------------------------------------------
# Reviewer checklist

CHECKLIST_EVIDENCE = 3  # clauses quoted per question
# For these the question is "does it say where/what", so a denial is still an answer "yes".
_ANY_MENTION_IS_YES = frozenset({"data-location"})


def checklist(text: str) -> list[dict[str, Any]]:
    """One answer per category question: "yes", "no" or "unclear", with quoted evidence.

    "yes" when some clause allows the practice (outright or on conditions); "no" when every
    clause found denies it ("we do not sell your personal information"); "unclear" when nothing
    was found: silence is not a promise, so it is never turned into "no".
    """
    return checklist_from_flags((fc.clause, fc.flags) for fc in flag_text(text))


def checklist_from_flags(flagged: Iterable[tuple[Clause, list[Flag]]]) -> list[dict[str, Any]]:
    """`checklist` from clauses already flagged (lets callers cache flags per clause)."""
    found: dict[str, list[tuple[Flag, Clause]]] = {}
    for clause, flags in flagged:
        for f in flags:
            found.setdefault(f.category, []).append((f, clause))
    return [_answer(cat.id, found.get(cat.id, [])) for cat in CATEGORIES.values()]


def _answer(category: str, items: list[tuple[Flag, Clause]]) -> dict[str, Any]:
    cat = CATEGORIES[category]
    stances = [f.stance for f, _ in items]
    if not items:
        answer = "unclear"
    elif cat.id in _ANY_MENTION_IS_YES or any(s != "denies" for s in stances):
        answer = "yes"
    else:
        answer = "no"

    def supports(s: str | None) -> bool:
        return s == "denies" if answer == "no" else s != "denies"

    # Best evidence first: clauses that support the answer, then by confidence.
    best = sorted(items, key=lambda it: (not supports(it[0].stance), -it[0].score))
    return {
        "category": cat.id,
        "family": cat.family,
        "severity": cat.severity,
        "question": cat.question,
        "answer": answer,
        "conditional": any(s == "conditional" for s in stances),
        "evidence": [
            {
                "clause": clause.text,
                "heading": clause.heading,
                "quote": f.evidence,
                "stance": f.stance,
                "score": f.score,
            }
            for f, clause in best[:CHECKLIST_EVIDENCE]
        ],
    }
