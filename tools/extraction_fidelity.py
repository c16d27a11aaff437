"""How much of the policy the default extraction (no `select`) keeps, page by page.

    python tools/extraction_fidelity.py [CORPUS_HTML_DIR]   (default ../shared/corpus/html)

For every raw page of the corpus, paired with the Markdown Open Terms Archive extracted from it
with hand-written selectors, prints word recall (OTA's words we keep) and precision (our words OTA
kept), counted with multiplicity and as distinct words, on the visible wording (link and image
targets and Markdown markers removed). Exit status 1 if a page is under 0.95 on the counted figures.
"""

from __future__ import annotations

import collections
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.extract import extract_region, normalize_text  # noqa: E402

BAR = 0.95


def visible_words(markdown_text: str) -> collections.Counter[str]:
    text = re.sub(r"<br\s*/?>", " ", markdown_text)
    text = re.sub(r"\]\((?:[^()\s]|\([^()\s]*\))*(?:\s+\"[^\"]*\")?\)", "] ", text)
    return collections.Counter(re.findall(r"\w+", normalize_text(text).lower()))


def main(folder: Path) -> int:
    manifest = json.loads((folder / "manifest.json").read_text())
    short = 0
    for pair in manifest["pairs"]:
        html = (folder.parent / pair["html"]["file"]).read_text(errors="replace")
        markdown = (folder.parent / pair["markdown"]["file"]).read_text()
        text, region = extract_region(html)
        ours, theirs = visible_words(text), visible_words(markdown)
        shared = sum((ours & theirs).values())
        recall, precision = shared / sum(theirs.values()), shared / sum(ours.values())
        distinct = len(set(ours) & set(theirs))
        d_recall, d_precision = distinct / len(theirs), distinct / len(ours)
        below = min(recall, precision) < BAR
        short += below
        print(
            f"{pair['html']['file']:50s} {region:5s} recall {recall:.3f} precision {precision:.3f}"
            f"  distinct: recall {d_recall:.3f} precision {d_precision:.3f}"
            + ("  < 0.95" if below else "")
        )
    print(f"{len(manifest['pairs']) - short} of {len(manifest['pairs'])} pages at >= {BAR}")
    return 1 if short else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/corpus/html")))
