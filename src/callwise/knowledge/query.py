"""Query clean-up for spoken questions: drop fillers, greetings and question stems before retrieval.

A caller says "um, hi, so how do I, like, get my money back?"; what should be searched is
"get my money back". Fillers ("um", "you know"), greetings and politeness ("hi", "thanks") and the
stem of the question ("how do I", "is there a way to", "can you tell me") carry no topic. BM25
mostly ignores them already (stop words, low idf), but a sentence embedding does not: they pull
the query vector towards every other question-shaped text. Codes, numbers and every content word
are kept, and a query that would become empty is returned unchanged.
"""

from __future__ import annotations

import re

_FILLERS = re.compile(
    r"\b(?:u+m+|u+h+|e+r+m*|h+m+|a+h+|oh|okay|ok|yeah|yep|well|so|like|actually|basically|just|really|"
    r"you know|i mean|kind of|sort of|i guess|i think|please|thanks|thank you|hi|hello|hey|"
    r"good (?:morning|afternoon|evening))\b[,.]?",
    re.IGNORECASE,
)
_STEMS = re.compile(
    r"^(?:(?:and|but|also|so)\s+)?(?:"
    r"(?:can|could|would) you (?:please )?(?:tell|show|explain to|help) me(?: with)?(?: how to| how| what| why| if| whether)?|"
    r"i (?:want|need|would like|'d like|was wondering|wonder|have a question)(?: to know)?(?: about| how to| how| if| whether| why)?|"
    r"i'm (?:trying|looking|wondering)(?: to| for| how| if| whether)?(?: find out)?(?: how to| how)?|"
    r"is there (?:a way|any way|anything|something|a command|a function|an option|a setting)(?: to| that| for| i can)?|"
    r"do you (?:know|have)(?: how to| how| if| whether| a way to)?|"
    r"how (?:do|can|should|would) (?:i|we|you|one)|how to|"
    r"what(?:'s| is) the (?:best |right |proper |easiest |quickest )?(?:way|command|function) to|"
    r"tell me(?: about| how to| how)?"
    r")\b\s*",
    re.IGNORECASE,
)
# Whether PageRetriever cleans queries before searching. Measured (dev questions, mean over the public
# manuals, BM25): nDCG@10 0.500 -> 0.518, right page first 0.336 -> 0.355; Orbitly hybrid 0.939 -> 0.944.
CLEAN_BY_DEFAULT = True
_SPACE = re.compile(r"\s+")
_TRIM = re.compile(r"^[\s,.;:!?-]+|[\s,;:-]+$")


def clean_query(query: str) -> str:
    """The topic of a spoken or typed question; the original when nothing would be left."""
    text = _FILLERS.sub(" ", query)
    text = _TRIM.sub("", _SPACE.sub(" ", text))
    for _ in range(2):  # "so, um, can you tell me how do I ..." has two stems once the fillers are gone
        stripped = _TRIM.sub("", _STEMS.sub("", text, count=1))
        if stripped == text:
            break
        text = stripped
    return text if len(re.findall(r"\w+", text)) >= 1 else query.strip()
