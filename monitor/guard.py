"""Checks between extraction and storage: is this text the policy, or a wall in front of it?

A bot wall, a login wall, a consent page or an error page served with status 200 must never become
a "new version" — an alert that cries wolf teaches reviewers to ignore alerts. These checks look at
the page itself (title and text patterns) and at how the text compares with the last version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Phrases of interstitials (bot checks, rate-limit and login walls, error pages), in the wordings
# the platforms and the big CDNs serve, in the languages a watchlist is likely to pin. A wall is
# decided on short texts only, and there only on the title or on a line that stands on its own
# (`wall_phrase`): a real policy may well say "log in" or "blocked" inside a sentence.
WALL_PATTERNS = [
    # en: bot checks and CDN interstitials
    r"captcha",
    r"verify (that )?you are (a )?human",
    r"are you a robot",
    r"not a robot",
    r"unusual traffic",
    r"checking (if the site connection is secure|your browser)",
    r"just a moment\.\.\.",
    r"attention required",
    r"access (is )?denied",
    r"request (was )?blocked",
    r"(sorry, )?you have been blocked",
    r"pardon our interruption",
    r"press (&|and) hold",
    r"one more step",
    r"security check",
    # en: rate-limit and login walls, error pages
    r"(this|the) (feature|function) is temporarily blocked",
    r"you.re temporarily blocked",
    r"(log|sign) ?in to (continue|see|view)",
    r"you must (log|sign) ?in",
    r"please enable (javascript|cookies)",
    r"(this|the) page (isn.t|is not) available",
    r"page not found",
    r"something went wrong",
    r"temporarily unavailable",
    r"too many requests",
    r"rate limit exceeded",
    r"(accept|allow) (all )?cookies to (continue|view)",
    # fr
    r"cette fonction(nalité)? est temporairement bloquée",
    r"vous (avez été|êtes) temporairement bloqué",
    r"vérifi(ez|cation) que vous (êtes|n.êtes pas) (un )?(humain|robot)",
    r"vérification de (votre navigateur|sécurité)",
    r"accès (refusé|interdit)",
    r"connectez-vous pour (continuer|voir|accéder)",
    r"vous devez vous connecter",
    r"(cette )?page (est )?introuvable",
    r"cette page n.est pas disponible",
    r"un problème (est survenu|s.est produit)",
    r"trop de requêtes",
    r"veuillez activer (javascript|les cookies)",
    # de
    r"diese funktion ist (vorübergehend|zurzeit) (blockiert|gesperrt)",
    r"(vorübergehend|temporär) (blockiert|gesperrt)",
    r"bestätige(n sie)?, dass (du|sie) (ein mensch|kein roboter)",
    r"zugriff verweigert",
    r"melde dich an, um|melden sie sich an, um",
    r"seite (wurde )?nicht gefunden",
    r"diese seite ist nicht verfügbar",
    r"etwas ist schiefgelaufen",
    r"zu viele anfragen",
    r"bitte aktiviere(n sie)? javascript",
    # es
    r"(esta función|esta funcionalidad) (está|se ha) bloquead[ao] temporalmente",
    r"(se te ha|has sido) bloquead[ao] temporalmente",
    r"verifica(r)? que (eres|es) (un )?humano",
    r"no soy un robot",
    r"acceso denegado",
    r"inicia sesión para (continuar|ver)",
    r"página no encontrada",
    r"esta página no está disponible",
    r"algo salió mal",
    r"demasiadas solicitudes",
    # it
    r"questa funzione è (temporaneamente )?bloccata",
    r"(sei stato|è stato) bloccat[ao] temporaneamente",
    r"verifica (di essere|che sei) (un essere umano|umano)",
    r"non sono un robot",
    r"accesso negato",
    r"accedi per (continuare|vedere)",
    r"pagina non trovata",
    r"questa pagina non è disponibile",
    r"si è verificato un (errore|problema)",
    r"troppe richieste",
    # pt
    r"(este recurso|esta funcionalidade|esta função) está (temporariamente )?bloquead[ao]",
    r"(você foi|foste) bloquead[ao] temporariamente",
    r"verifi(que|car) (se você é|que é) (um )?humano",
    r"não sou um robô",
    r"acesso negado",
    r"(faça|inicie) (login|sessão) para (continuar|ver)",
    r"página não encontrada",
    r"esta página não está disponível",
    r"algo deu errado",
    r"muitas (solicitações|requisições|pedidos)",
    # nl
    r"deze functie is tijdelijk geblokkeerd",
    r"(je bent|u bent) tijdelijk geblokkeerd",
    r"bevestig dat (je|u) een mens bent",
    r"ik ben geen robot",
    r"toegang geweigerd",
    r"log in om (verder te gaan|door te gaan)",
    r"pagina niet gevonden",
    r"deze pagina is niet beschikbaar",
    r"er is iets misgegaan",
    r"te veel (verzoeken|aanvragen)",
]
_WALL = re.compile("|".join(f"(?:{p})" for p in WALL_PATTERNS), re.IGNORECASE)
# A wall is short: past this many characters a page is taken to be content, whatever it says.
WALL_MAX_CHARS = 3000
# A wall's message stands on its own (a heading, a short message the phrase dominates); a
# policy's mention of the same words sits inside a longer sentence.
WALL_LINE_CHARS = 120
WALL_LINE_SHARE = 1 / 3


def _fold(text: str) -> str:
    # Curly apostrophes and non-breaking spaces, as platforms print them, match the plain ones.
    return text.replace("\u2019", "'").replace("\u00a0", " ").replace("\u202f", " ")


def wall_phrase(text: str, title: str = "") -> str | None:
    """The wall phrase a page reads as, or None. Only a short page can be a wall; on it, the
    phrase must be in the title or dominate a short line of its own (a heading, a message), so a
    short policy that mentions "blocked" or "log in" in a sentence is still a policy."""
    if len(text) > WALL_MAX_CHARS:
        return None
    match = _WALL.search(_fold(title or ""))
    if match:
        return match.group(0)
    for line in _fold(text).splitlines():
        line = line.strip().lstrip("#*-> ").strip()
        if line and len(line) <= WALL_LINE_CHARS:
            match = _WALL.search(line)
            if match and len(match.group(0)) >= WALL_LINE_SHARE * len(line):
                return match.group(0)
    return None


def wall_error(text: str, title: str = "") -> GuardError | None:
    """A `blocked` GuardError if the page reads as a wall (see `wall_phrase`)."""
    phrase = wall_phrase(text, title)
    if phrase is None:
        return None
    return GuardError(
        f"the page looks like a wall or an error page ({phrase!r}"
        f"{f', title {title!r}' if title else ''})",
        kind="blocked",
    )


class GuardError(Exception):
    """The text is not taken as a version; `kind` is "blocked" or "suspect"."""

    def __init__(self, message: str, *, kind: str):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Comparison:
    """How a new text relates to the last version, by blocks (lines)."""

    length_ratio: float
    shared_blocks: float

    @property
    def suspicious(self) -> bool:
        return self.length_ratio < SHRINK_LIMIT or self.shared_blocks < SHARED_LIMIT


# Shrinking by more than half, or keeping less than a quarter of its paragraphs, is rare for a
# real policy edit and common for a half-rendered or substituted page: such a text is fetched
# again before it is believed.
SHRINK_LIMIT = 0.5
SHARED_LIMIT = 0.25
# Below this fraction of the last version's length, the text is not believed at all.
COLLAPSE_LIMIT = 0.2


def compare(previous: str, new: str) -> Comparison:
    old_blocks = {line for line in previous.splitlines() if line.strip()}
    new_blocks = {line for line in new.splitlines() if line.strip()}
    shared = len(old_blocks & new_blocks) / len(old_blocks) if old_blocks else 1.0
    ratio = len(new) / len(previous) if previous else 1.0
    return Comparison(round(ratio, 3), round(shared, 3))


def check_text(text: str, title: str, previous: str | None) -> Comparison | None:
    """Raise GuardError for a wall or a collapsed text; otherwise return how the text compares
    with the previous version (None for a first version)."""
    wall = wall_error(text, title)
    if wall is not None:
        raise wall
    if previous is None:
        return None
    comparison = compare(previous, text)
    if comparison.length_ratio < COLLAPSE_LIMIT:
        raise GuardError(
            f"the text collapsed to {comparison.length_ratio:.0%} of the last version's length "
            f"({len(text):,} of {len(previous):,} characters)",
            kind="suspect",
        )
    return comparison
